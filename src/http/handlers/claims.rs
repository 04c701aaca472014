//! `POST /claims` (this server's extension): select and claim in one
//! request. The body's `query` is validated and parsed as
//! `GET /allocation_candidates` at 1.39 would take it, with the same
//! errors; names are resolved against the view; `domain::claims` places
//! and writes; the answer is rendered as candidates are.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::Value;
use uuid::Uuid;

use super::allocation_candidates::resolve;
use crate::domain::claim_queue::{Order, Resolved};
use crate::domain::claims::{self as domain, Claim, NewConsumer};
use crate::domain::consumers::ConsumerIdentity;
use crate::errors::{ApiError, DomainError};
use crate::http::Request;
use crate::http::microversion as mv;
use crate::http::query::Query;
use crate::policy::actions;
use crate::schemas::allocation_candidates::{
    CandidatesBody, CandidatesQuery, ResponseForm, list_query_schema, parse_candidates_query,
};
use crate::schemas::claims::{CLAIMS_BODY, ClaimView, ClaimsView, PreviewView};
use crate::state::AppState;
use crate::storage::{Connection, StorageError};
use crate::view::affinity::{Policy, Rules, ServerGroup};
use crate::view::placement::{self, Placement};
use crate::view::rank::{Ranked, Weigher};
use crate::view::request::{Candidates, EngineOptions};
use crate::view::rng::Rng;
use crate::view::world::{AggregateId, World};

/// The body, checked and parsed before the view is read.
struct Parsed {
    consumers: Vec<NewConsumer>,
    query: CandidatesQuery,
    weighers: Vec<(String, f64)>,
    shuffle_best: bool,
    host_subset_size: usize,
    alternates: usize,
    alternates_within: Option<Vec<Uuid>>,
    rules: Rules,
    dry_run: bool,
}

fn uuids(value: &Value) -> Vec<Uuid> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().and_then(|text| Uuid::parse_str(text).ok()))
        .collect()
}

fn count(value: &Value, default: usize) -> usize {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(default)
}

/// The `query` object as query-string pairs: a list is a repeated
/// parameter.
fn query_pairs(query: &Value) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (name, value) in query.as_object().into_iter().flatten() {
        match value {
            Value::Array(items) => {
                for item in items {
                    pairs.push((name.clone(), item.as_str().unwrap_or_default().to_owned()));
                }
            }
            other => pairs.push((name.clone(), other.as_str().unwrap_or_default().to_owned())),
        }
    }
    pairs
}

fn parse(body: &Value) -> Result<Parsed, ApiError> {
    let dry_run = body["dry_run"].as_bool().unwrap_or(false);
    if !dry_run && body.get("consumers").is_none() {
        return Err(ApiError::bad_request(
            "JSON does not validate: 'consumers' is a required property",
        ));
    }
    let pairs = query_pairs(&body["query"]);
    let query = Query::from_pairs(pairs);
    query.validate(list_query_schema(mv::MAX))?;
    let parsed_query = parse_candidates_query(query.pairs(), mv::MAX)?;

    let mut consumers = Vec::new();
    let mut seen = BTreeSet::new();
    for consumer in body["consumers"].as_array().into_iter().flatten() {
        let uuid = consumer["uuid"]
            .as_str()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| ApiError::bad_request("JSON does not validate: malformed consumer"))?;
        if !seen.insert(uuid) {
            return Err(ApiError::bad_request(format!(
                "Consumer {uuid} is named more than once."
            )));
        }
        let text = |key: &str| consumer[key].as_str().unwrap_or_default().to_owned();
        consumers.push(NewConsumer {
            uuid,
            identity: ConsumerIdentity {
                project_id: text("project_id"),
                user_id: text("user_id"),
                consumer_type: consumer["consumer_type"].as_str().map(str::to_owned),
            },
        });
    }

    let weighers = body["weighers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(class, multiplier)| (class.clone(), multiplier.as_f64().unwrap_or(0.0)))
        .collect();
    let group = &body["server_group"];
    let group = group["policy"].as_str().map(|policy| ServerGroup {
        policy: match policy {
            "affinity" => Policy::Affinity,
            "anti-affinity" => Policy::AntiAffinity {
                max_per_host: group["max_server_per_host"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(1),
            },
            "soft-affinity" => Policy::SoftAffinity,
            _ => Policy::SoftAntiAffinity,
        },
        members: uuids(&group["members"]),
        weight_multiplier: group["weight_multiplier"].as_f64().unwrap_or(1.0),
    });
    Ok(Parsed {
        consumers,
        query: parsed_query,
        weighers,
        shuffle_best: body["shuffle_best_same_weighed_hosts"]
            .as_bool()
            .unwrap_or(false),
        host_subset_size: count(&body["host_subset_size"], 1),
        alternates: count(&body["alternates"], 0),
        alternates_within: body.get("alternates_within").map(uuids),
        rules: Rules {
            different_host: uuids(&body["different_host"]),
            same_host: uuids(&body["same_host"]),
            group,
        },
        dry_run,
    })
}

fn weighers_of(world: &World, named: &[(String, f64)]) -> Result<Vec<Weigher>, ApiError> {
    named
        .iter()
        .map(|(name, multiplier)| {
            world
                .class_id(name)
                .map(|class| Weigher {
                    class,
                    multiplier: *multiplier,
                })
                .ok_or_else(|| {
                    ApiError::bad_request(format!("No such resource class {name} in weighers."))
                })
        })
        .collect()
}

/// A claim's query resolved against `world`.
fn resolved(world: &World, parsed: &Parsed, options: EngineOptions) -> Result<Resolved, ApiError> {
    Ok(Resolved {
        request: resolve(world, &parsed.query, mv::MAX)?,
        options,
        weighers: weighers_of(world, &parsed.weighers)?,
        limit: parsed.query.limit,
        alternates: parsed.alternates,
        alternates_within: parsed.alternates_within.as_ref().map(|uuids| {
            uuids
                .iter()
                .filter_map(|uuid| world.aggregate_id(uuid))
                .collect::<BTreeSet<AggregateId>>()
        }),
        shuffle_best: parsed.shuffle_best,
        host_subset_size: parsed.host_subset_size,
    })
}

/// `POST /claims`: 200 with the claims (or, for `dry_run`, the ranked
/// candidates); 400 for a bad body or query; 409 with a code of its own
/// when nothing fits, a consumer exists, affinity cannot be met or the
/// claim kept losing races.
pub async fn create_claims(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::CLAIMS_CREATE)?;
    let body = request.json_body(&CLAIMS_BODY)?;
    let parsed = parse(&body)?;
    let config = &request.state.config;
    let options = EngineOptions {
        randomize: false,
        max_candidates: config.max_allocation_candidates,
        strategy: config.generation_strategy,
    };
    let attempts = config.allocation_conflict_retry_count;
    let state = request.state.clone();
    let answer = if !parsed.dry_run && parsed.rules.is_empty() && parsed.consumers.len() == 1 {
        claim_in_batch(state, parsed, options, attempts).await?
    } else {
        request
            .state
            .db
            .run(move |connection| claim_or_preview(connection, &state, &parsed, options, attempts))
            .await?
    };
    Ok(request.json_bytes_ok(answer, None))
}

/// One new consumer without affinity rules: queued and written with the
/// claims that arrive with it (`domain::claim_queue`).
async fn claim_in_batch(
    state: Data<AppState>,
    parsed: Parsed,
    options: EngineOptions,
    attempts: u32,
) -> Result<Vec<u8>, ApiError> {
    let parsed = Arc::new(parsed);
    let order = Order {
        consumer: parsed.consumers[0].clone(),
        resolve: Box::new({
            let parsed = Arc::clone(&parsed);
            move |world| resolved(world, &parsed, options)
        }),
        attempts,
    };
    let (outcome, leadership) = state.claims.submit(order);
    if let Some(leadership) = leadership {
        // This request writes the batches, its own claim among them, in
        // a task of its own: its answer, as every other's, arrives through
        // `outcome` as soon as its batch is written, not when the queue
        // is empty.
        let leader = state.clone();
        actix_web::rt::spawn(async move {
            let db = leader.db.clone();
            let led = db
                .run(move |connection| {
                    leadership.lead(connection, &leader.world, &|| {
                        leader.metrics.conflict_retries(1)
                    });
                    Ok::<_, ApiError>(())
                })
                .await;
            if let Err(error) = led {
                tracing::warn!(detail = %error.detail, "could not write a batch of claims");
            }
        });
    }
    let claimed = outcome.await.map_err(|_| {
        ApiError::from(DomainError::Storage(StorageError::Unavailable(
            "the claim's batch could not be written".to_owned(),
        )))
    })??;
    let world = state.world.read();
    Ok(claims_json(&world, &parsed, &claimed.placements))
}

/// Everything but a batched claim: a `dry_run`, several consumers or
/// affinity rules.
fn claim_or_preview(
    connection: &mut Connection,
    state: &AppState,
    parsed: &Parsed,
    options: EngineOptions,
    attempts: u32,
) -> Result<Vec<u8>, ApiError> {
    state.world.refresh(connection)?;
    let resolved = resolved(&state.world.read(), parsed, options)?;
    let ask = resolved.ask();
    if parsed.dry_run {
        let constraints = domain::constraints_now(connection, &parsed.rules)?;
        let world = state.world.read();
        let Some(candidate_request) = &resolved.request else {
            return Ok(preview_json(&world, parsed, &Candidates::default(), &[]));
        };
        let (candidates, ranking) = placement::preview(
            &world,
            candidate_request,
            &options,
            &ask,
            &constraints,
            &mut Rng::seeded(),
        );
        return Ok(preview_json(&world, parsed, &candidates, &ranking.ranked));
    }
    let Some(candidate_request) = &resolved.request else {
        return Err(domain::no_candidates().into());
    };
    let claim = Claim {
        consumers: &parsed.consumers,
        request: candidate_request,
        options: &options,
        ask,
        rules: &parsed.rules,
        attempts,
    };
    let claimed = domain::claim(connection, &state.world, &claim, &|| {
        state.metrics.conflict_retries(1)
    })?;
    let world = state.world.read();
    Ok(claims_json(&world, parsed, &claimed.placements))
}

/// One rendered candidate set: its allocation requests and summaries, as
/// `GET /allocation_candidates` at 1.39 shows them.
fn rendered(world: &World, parsed: &Parsed, candidates: &Candidates, picks: &[usize]) -> Value {
    let subset = placement::subset(world, candidates, picks);
    let requested = parsed
        .query
        .groups
        .iter()
        .flat_map(|group| group.resources.iter().map(|(name, _)| name.as_str()));
    let body = CandidatesBody::new(world, &subset, ResponseForm::at(mv::MAX), requested).to_json();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// A rendered allocation request with its weight.
fn weighed(mut request: Value, ranked: &Ranked) -> Value {
    if let Some(object) = request.as_object_mut() {
        object.insert("weight".to_owned(), ranked.weight.into());
    }
    request
}

fn merge_summaries(into: &mut serde_json::Map<String, Value>, rendered: &mut Value) {
    if let Some(summaries) = rendered["provider_summaries"].as_object_mut() {
        into.append(summaries);
    }
}

fn preview_json(
    world: &World,
    parsed: &Parsed,
    candidates: &Candidates,
    ranked: &[Ranked],
) -> Vec<u8> {
    let picks: Vec<usize> = ranked.iter().map(|entry| entry.index).collect();
    let mut body = rendered(world, parsed, candidates, &picks);
    let requests = body["allocation_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let view = PreviewView {
        candidates: requests
            .into_iter()
            .zip(ranked)
            .map(|(request, entry)| weighed(request, entry))
            .collect(),
        provider_summaries: body["provider_summaries"].take(),
    };
    serde_json::to_vec(&view).unwrap_or_default()
}

fn claims_json(world: &World, parsed: &Parsed, placements: &[Placement]) -> Vec<u8> {
    let mut summaries = serde_json::Map::new();
    let mut claims = Vec::with_capacity(placements.len());
    for (consumer, placement) in parsed.consumers.iter().zip(placements) {
        let ranked: Vec<Ranked> = std::iter::once(placement.chosen)
            .chain(placement.alternates.iter().copied())
            .collect();
        let picks: Vec<usize> = ranked.iter().map(|entry| entry.index).collect();
        let mut body = rendered(world, parsed, &placement.candidates, &picks);
        merge_summaries(&mut summaries, &mut body);
        let mut requests = body["allocation_requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .zip(&ranked)
            .map(|(request, entry)| weighed(request, entry));
        let mut chosen = requests.next().unwrap_or(Value::Null);
        claims.push(ClaimView {
            consumer_uuid: consumer.uuid.to_string(),
            allocations: chosen["allocations"].take(),
            mappings: chosen["mappings"].take(),
            consumer_generation: 1,
            weight: placement.chosen.weight,
            alternates: requests.collect(),
        });
    }
    let view = ClaimsView {
        claims,
        provider_summaries: Value::Object(summaries),
    };
    serde_json::to_vec(&view).unwrap_or_default()
}
