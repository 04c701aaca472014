//! `GET /allocation_candidates` (upstream `handlers/allocation_candidate.py`):
//! the query is validated and parsed per microversion, its names resolved
//! against the in-memory `World`, the engine run, and its answer rendered
//! in the microversion's shape.

use std::collections::{BTreeSet, HashMap};

use actix_web::HttpResponse;

use crate::config::GenerationStrategy;
use crate::errors::ApiError;
use crate::http::Request;
use crate::http::microversion::{self as mv, Microversion};
use crate::http::query::Query;
use crate::policy::actions;
use crate::schemas::allocation_candidates::{
    CandidatesBody, CandidatesQuery, GroupPolicyQuery, GroupQuery, ResponseForm, list_query_schema,
    parse_candidates_query,
};
use crate::schemas::query::{MemberOf, RequiredTraits};
use crate::view::engine;
use crate::view::request::{
    AggregateFilter, CandidateRequest, Candidates, EngineOptions, GroupPolicy, RequestGroup,
    TraitFilter,
};
use crate::view::world::{AggregateId, ClassId, TraitId, World};

/// `GET /allocation_candidates` (1.10): the allocation requests that
/// satisfy the request groups, and a summary of the providers involved.
/// 200 (possibly empty); 400 for a malformed query, an unknown resource
/// class or trait.
pub async fn list_allocation_candidates(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::ALLOCATION_CANDIDATES_LIST)?;
    let version = request.version;
    let query = Query::parse(request.query_string());
    query.validate(list_query_schema(version))?;
    let parsed = parse_candidates_query(query.pairs(), version)?;
    let config = &request.state.config;
    let options = EngineOptions {
        randomize: config.randomize_allocation_candidates,
        max_candidates: config.max_allocation_candidates,
        strategy: config.generation_strategy,
    };
    let state = request.state.clone();
    // One hop to the blocking pool: the freshness check on the connection
    // checked out there, the engine, and the body written under the same
    // read guard of the `World`.
    let body = request
        .state
        .db
        .run(move |connection| {
            let refresh_started = std::time::Instant::now();
            state.world.refresh(connection)?;
            state
                .metrics
                .view_refreshed(refresh_started.elapsed().as_secs_f64());
            let world = state.world.read();
            let candidates = match resolve(&world, &parsed, version)? {
                Some(candidate_request) => engine::generate(&world, &candidate_request, &options),
                None => Candidates::default(),
            };
            Ok::<_, ApiError>(render(&world, &parsed, &candidates, version).to_json())
        })
        .await?;
    Ok(request.json_bytes_ok(body, None))
}

// --- resolution ---------------------------------------------------------------

/// Resolves names to the `World`'s ids, raising upstream's errors in
/// upstream's order. `None` when upstream would stop early with no
/// candidates (no root with the `root_required` traits, a `member_of`
/// nothing satisfies, an unknown `in_tree` provider, a requested amount no
/// provider has room for); later names are then not checked, as upstream
/// does not look them up.
pub(crate) fn resolve(
    world: &World,
    query: &CandidatesQuery,
    version: Microversion,
) -> Result<Option<CandidateRequest>, ApiError> {
    let mut request = CandidateRequest {
        groups: Vec::with_capacity(query.groups.len()),
        group_policy: match query.group_policy {
            Some(GroupPolicyQuery::Isolate) => GroupPolicy::Isolate,
            _ => GroupPolicy::None,
        },
        same_subtree: query.same_subtree.clone(),
        root_traits: TraitFilter::default(),
        limit: query.limit,
        nested_aware: version.at_least(mv::NESTED_CANDIDATES),
    };
    if !query.root_required.is_empty() || !query.root_forbidden.is_empty() {
        let required = trait_ids(world, &query.root_required)?;
        let forbidden = trait_ids(world, &query.root_forbidden)?;
        let any_root = world.providers().any(|provider| {
            provider.parent.is_none()
                && required.iter().all(|id| provider.traits.contains(id))
                && !forbidden.iter().any(|id| provider.traits.contains(id))
        });
        if !any_root {
            return Ok(None);
        }
        request.root_traits = TraitFilter {
            all_of: required
                .into_iter()
                .map(|id| BTreeSet::from([id]))
                .collect(),
            forbidden: forbidden.into_iter().collect(),
        };
    }
    let mut unknown_aggregates = UnknownAggregates::default();
    for group in &query.groups {
        let resolved = resolve_group(world, group, &mut unknown_aggregates);
        match resolved {
            Ok(Some(group)) => request.groups.push(group),
            Ok(None) => return Ok(None),
            // Upstream looks a group's names up only once every group before
            // it has found candidates (each group's search context is made
            // after the previous group's search, which ends the request when
            // it finds nothing): with an earlier group finding nothing, the
            // answer is empty and this name is never looked at.
            Err(error) => {
                let earlier_found = request
                    .groups
                    .iter()
                    .all(|earlier| group_has_candidates(world, &request, earlier));
                return if earlier_found { Err(error) } else { Ok(None) };
            }
        }
    }
    Ok(Some(request))
}

/// True when `group` on its own, under the request-wide root filter, has
/// at least one candidate (upstream's `_get_by_one_request` for it).
fn group_has_candidates(world: &World, request: &CandidateRequest, group: &RequestGroup) -> bool {
    let alone = CandidateRequest {
        groups: vec![group.clone()],
        group_policy: GroupPolicy::None,
        same_subtree: Vec::new(),
        root_traits: request.root_traits.clone(),
        limit: Some(1),
        nested_aware: request.nested_aware,
    };
    let options = EngineOptions {
        randomize: false,
        max_candidates: None,
        strategy: GenerationStrategy::DepthFirst,
    };
    !engine::generate(world, &alone, &options)
        .allocation_requests
        .is_empty()
}

/// One group's names resolved to the `World`'s ids, in upstream's order;
/// `None` when one of its filters rules everything out.
fn resolve_group(
    world: &World,
    group: &GroupQuery,
    unknown_aggregates: &mut UnknownAggregates,
) -> Result<Option<RequestGroup>, ApiError> {
    let mut resources = Vec::with_capacity(group.resources.len());
    for (name, amount) in &group.resources {
        let class = world.class_id(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid resource class in resources parameter: No such resource class {name}."
            ))
        })?;
        resources.push((class, *amount));
    }
    let member_of = aggregate_filter(world, &group.member_of, unknown_aggregates);
    if !member_of.all_of.is_empty() && !any_member(world, &member_of) {
        return Ok(None);
    }
    let traits = trait_filter(world, &group.required)?;
    let in_tree = match group.in_tree {
        Some(uuid) => match world.provider_by_uuid(&uuid) {
            Some(provider) => Some(provider.root),
            None => return Ok(None),
        },
        None => None,
    };
    let available = |(class, amount): &(ClassId, i64)| {
        world.providers().any(|provider| {
            in_tree.is_none_or(|root| provider.root == root)
                && provider.can_allocate(*class, *amount)
        })
    };
    if !resources.iter().all(available) {
        return Ok(None);
    }
    Ok(Some(RequestGroup {
        suffix: (!group.suffix.is_empty()).then(|| group.suffix.clone()),
        resources,
        traits,
        member_of,
        in_tree,
    }))
}

fn no_such_trait(name: &str) -> ApiError {
    ApiError::bad_request(format!("No such trait(s): {name}."))
}

fn trait_ids(world: &World, names: &[String]) -> Result<Vec<TraitId>, ApiError> {
    names
        .iter()
        .map(|name| world.trait_id(name).ok_or_else(|| no_such_trait(name)))
        .collect()
}

fn trait_filter(world: &World, required: &RequiredTraits) -> Result<TraitFilter, ApiError> {
    let mut filter = TraitFilter::default();
    for any_of in &required.all_of {
        filter
            .all_of
            .push(trait_ids(world, any_of)?.into_iter().collect());
    }
    filter.forbidden = trait_ids(world, &required.forbidden)?.into_iter().collect();
    Ok(filter)
}

/// Ids for aggregate uuids the `World` does not know: negative, distinct
/// per uuid, held by no provider.
#[derive(Default)]
struct UnknownAggregates(HashMap<uuid::Uuid, AggregateId>);

impl UnknownAggregates {
    fn id(&mut self, world: &World, uuid: &uuid::Uuid) -> AggregateId {
        if let Some(id) = world.aggregate_id(uuid) {
            return id;
        }
        let next = -1 - self.0.len() as AggregateId;
        *self.0.entry(*uuid).or_insert(next)
    }
}

fn aggregate_filter(
    world: &World,
    member_of: &MemberOf,
    unknown: &mut UnknownAggregates,
) -> AggregateFilter {
    AggregateFilter {
        all_of: member_of
            .all_of
            .iter()
            .map(|any_of| any_of.iter().map(|uuid| unknown.id(world, uuid)).collect())
            .collect(),
        forbidden: member_of
            .forbidden
            .iter()
            .map(|uuid| unknown.id(world, uuid))
            .collect(),
    }
}

/// True when some provider is in one aggregate of every `all_of` entry
/// (upstream's `provider_ids_matching_aggregates` finding anything).
fn any_member(world: &World, filter: &AggregateFilter) -> bool {
    let Some((first, rest)) = filter.all_of.split_first() else {
        return true;
    };
    first
        .iter()
        .flat_map(|aggregate| world.members(*aggregate))
        .filter_map(|id| world.provider(id))
        .any(|provider| {
            rest.iter()
                .all(|any_of| any_of.iter().any(|id| provider.aggregates.contains(id)))
        })
}

// --- rendering ----------------------------------------------------------------

/// The response body as JSON, written from the engine's answer and the
/// `World` it was computed on.
fn render<'a>(
    world: &'a World,
    query: &CandidatesQuery,
    candidates: &'a Candidates,
    version: Microversion,
) -> CandidatesBody<'a> {
    let requested = query
        .groups
        .iter()
        .flat_map(|group| group.resources.iter().map(|(name, _)| name.as_str()));
    CandidatesBody::new(world, candidates, ResponseForm::at(version), requested)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::domain::capacity::Limits;
    use crate::schemas::allocation_candidates::parse_candidates_query;
    use crate::view::request::AllocationRequest;
    use crate::view::world::{Capacities, Provider};

    const VCPU: ClassId = 0;
    const DISK_GB: ClassId = 2;
    const AVX: TraitId = 5;

    fn limits(total: i64, reserved: i64, ratio: f64) -> Limits {
        Limits {
            total,
            reserved,
            min_unit: 1,
            max_unit: total,
            step_size: 1,
            allocation_ratio: ratio,
        }
    }

    /// A root (1) with a child (2), and an aggregate 9 holding the root.
    fn world() -> World {
        let mut world = World::new();
        world.set_class(VCPU, "VCPU");
        world.set_class(DISK_GB, "DISK_GB");
        world.set_trait(AVX, "HW_CPU_X86_AVX");
        world.set_aggregate(9, Uuid::from_u128(900));
        world.upsert_provider(Provider {
            id: 1,
            uuid: Uuid::from_u128(1),
            generation: 0,
            parent: None,
            root: 1,
            capacities: Capacities::new(
                [(VCPU, limits(8, 1, 1.5)), (DISK_GB, limits(100, 0, 1.0))],
                [(VCPU, 2)],
            ),
            traits: BTreeSet::from([AVX]),
            aggregates: BTreeSet::from([9]),
        });
        world.upsert_provider(Provider {
            id: 2,
            uuid: Uuid::from_u128(2),
            generation: 0,
            parent: Some(1),
            root: 1,
            capacities: Capacities::default(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::new(),
        });
        world
    }

    fn query(text: &str, version: Microversion) -> CandidatesQuery {
        let pairs = Query::parse(text).pairs().to_vec();
        parse_candidates_query(&pairs, version).unwrap()
    }

    fn candidates() -> Candidates {
        Candidates {
            allocation_requests: vec![AllocationRequest {
                allocations: 0..1,
                mappings: 0..1,
            }],
            amounts: vec![(1, VCPU, 2)],
            mapped: vec![(0, 1)],
            suffixes: vec![String::new()],
            summary_providers: BTreeSet::from([1, 2]),
        }
    }

    fn rendered(text: &str, version: Microversion) -> serde_json::Value {
        let world = world();
        let candidates = candidates();
        let body = render(&world, &query(text, version), &candidates, version);
        serde_json::from_slice(&body.to_json()).unwrap()
    }

    const ROOT: &str = "00000000-0000-0000-0000-000000000001";
    const CHILD: &str = "00000000-0000-0000-0000-000000000002";

    #[test]
    fn list_form_before_1_12() {
        let body = rendered("resources=VCPU:2", mv::ALLOCATION_CANDIDATES);
        assert_eq!(
            body["allocation_requests"],
            json!([{"allocations": [{"resource_provider": {"uuid": ROOT}, "resources": {"VCPU": 2}}]}])
        );
        assert_eq!(
            body["provider_summaries"][ROOT],
            json!({"resources": {"VCPU": {"capacity": 10, "used": 2}}})
        );
        assert_eq!(body["provider_summaries"][CHILD], json!({"resources": {}}));
    }

    #[test]
    fn dict_form_traits_all_classes_tree_and_mappings() {
        let body = rendered("resources=VCPU:2", mv::ALLOCATIONS_DICT);
        assert_eq!(
            body["allocation_requests"],
            json!([{"allocations": {ROOT: {"resources": {"VCPU": 2}}}}])
        );
        let body = rendered("resources=VCPU:2", mv::CANDIDATES_REQUIRED);
        assert_eq!(
            body["provider_summaries"][ROOT]["traits"],
            json!(["HW_CPU_X86_AVX"])
        );
        assert!(body["provider_summaries"][ROOT]["resources"]["DISK_GB"].is_null());
        let body = rendered("resources=VCPU:2", mv::ALL_CLASSES_IN_SUMMARIES);
        assert_eq!(
            body["provider_summaries"][ROOT]["resources"]["DISK_GB"],
            json!({"capacity": 100, "used": 0})
        );
        assert!(
            body["provider_summaries"][ROOT]
                .get("root_provider_uuid")
                .is_none()
        );
        let body = rendered("resources=VCPU:2", mv::NESTED_CANDIDATES);
        assert_eq!(
            body["provider_summaries"][CHILD],
            json!({"resources": {}, "traits": [], "parent_provider_uuid": ROOT, "root_provider_uuid": ROOT})
        );
        assert_eq!(
            body["provider_summaries"][ROOT]["parent_provider_uuid"],
            json!(null)
        );
        assert!(body["allocation_requests"][0].get("mappings").is_none());
        let body = rendered("resources=VCPU:2", mv::MAPPINGS);
        assert_eq!(
            body["allocation_requests"][0]["mappings"],
            json!({"": [ROOT]})
        );
    }

    /// Upstream makes a group's search context, which looks its names up,
    /// only after the groups before it found candidates: when one found
    /// none, a later unknown name is no 400 but an empty answer. (Found
    /// by tools/differential.)
    #[test]
    fn a_group_finding_nothing_hides_the_names_of_later_groups() {
        let world = world();
        let resolve_text = |text: &str| resolve(&world, &query(text, mv::MAX), mv::MAX);
        // The only VCPU is on the root, which has AVX.
        assert!(
            resolve_text(
                "resources=VCPU:1&required=!HW_CPU_X86_AVX&resources1=VCPU:1&required1=CUSTOM_NOPE"
            )
            .unwrap()
            .is_none()
        );
        assert!(
            resolve_text(
                "resources1=VCPU:1&required1=!HW_CPU_X86_AVX&resources2=MCPU:1&group_policy=none"
            )
            .unwrap()
            .is_none()
        );
        assert_eq!(
            resolve_text(
                "resources=VCPU:1&required=HW_CPU_X86_AVX&resources1=VCPU:1&required1=CUSTOM_NOPE"
            )
            .unwrap_err()
            .detail,
            "No such trait(s): CUSTOM_NOPE."
        );
    }

    #[test]
    fn resolution_errors_and_early_exits() {
        let world = world();
        let resolve_text = |text: &str| resolve(&world, &query(text, mv::MAX), mv::MAX);
        assert_eq!(
            resolve_text("resources=MCPU:1").unwrap_err().detail,
            "Invalid resource class in resources parameter: No such resource class MCPU."
        );
        assert_eq!(
            resolve_text("resources=VCPU:1&required=CUSTOM_NOPE")
                .unwrap_err()
                .detail,
            "No such trait(s): CUSTOM_NOPE."
        );
        assert_eq!(
            resolve_text("resources=VCPU:1&root_required=!CUSTOM_NOPE")
                .unwrap_err()
                .detail,
            "No such trait(s): CUSTOM_NOPE."
        );
        // No root without AVX: nothing, and the later unknown class is not looked up.
        assert!(
            resolve_text("resources=MCPU:1&root_required=!HW_CPU_X86_AVX")
                .unwrap()
                .is_none()
        );
        let unknown = Uuid::from_u128(77);
        assert!(
            resolve_text(&format!(
                "resources=VCPU:1&member_of={unknown}&resources1=MCPU:1"
            ))
            .unwrap()
            .is_none()
        );
        assert!(
            resolve_text("resources=VCPU:11&resources1=MCPU:1")
                .unwrap()
                .is_none()
        );
        assert!(
            resolve_text(&format!("resources=VCPU:1&in_tree={unknown}"))
                .unwrap()
                .is_none()
        );
        let known = Uuid::from_u128(900);
        let request = resolve_text(&format!(
            "resources=VCPU:1&member_of=in:{known},{unknown}&member_of=!{unknown}&in_tree={CHILD}&required=in:HW_CPU_X86_AVX"
        ))
        .unwrap()
        .unwrap();
        let group = &request.groups[0];
        assert_eq!(group.suffix, None);
        assert_eq!(group.resources, vec![(VCPU, 1)]);
        assert_eq!(group.member_of.all_of, vec![BTreeSet::from([9, -1])]);
        assert_eq!(group.member_of.forbidden, BTreeSet::from([-1]));
        assert_eq!(group.in_tree, Some(1));
        assert_eq!(group.traits.all_of, vec![BTreeSet::from([AVX])]);
        assert!(request.nested_aware);
    }

    /// The benchmark's flat query against `count` providers shaped like
    /// the benchmark's (three host types, all in one aggregate with the
    /// trait): the time of resolution, generation and rendering.
    fn flat_benchmark(count: i32, limit: Option<usize>) -> (usize, std::time::Duration) {
        const MEMORY_MB: ClassId = 1;
        let mut world = World::new();
        world.set_class(VCPU, "VCPU");
        world.set_class(MEMORY_MB, "MEMORY_MB");
        world.set_class(DISK_GB, "DISK_GB");
        world.set_trait(AVX, "HW_CPU_X86_AVX2");
        world.set_aggregate(9, Uuid::from_u128(900));
        for id in 1..=count {
            let scale = i64::from(id % 3 + 1);
            world.upsert_provider(Provider {
                id,
                uuid: Uuid::from_u128(id as u128),
                generation: 0,
                parent: None,
                root: id,
                capacities: Capacities::new(
                    [
                        (VCPU, limits(32 * scale, 0, 4.0)),
                        (MEMORY_MB, limits(131_072 * scale, 512, 1.0)),
                        (DISK_GB, limits(1024 * scale, 0, 1.0)),
                    ],
                    [],
                ),
                traits: BTreeSet::from([AVX]),
                aggregates: BTreeSet::from([9]),
            });
        }
        let mut text = format!(
            "resources=VCPU:1,DISK_GB:10,MEMORY_MB:256&member_of={}&required=HW_CPU_X86_AVX2",
            Uuid::from_u128(900)
        );
        if let Some(limit) = limit {
            text.push_str(&format!("&limit={limit}"));
        }
        let parsed = query(&text, mv::MAX);
        let options = EngineOptions {
            randomize: false,
            max_candidates: None,
            strategy: crate::config::GenerationStrategy::DepthFirst,
        };
        let started = std::time::Instant::now();
        let request = resolve(&world, &parsed, mv::MAX).unwrap().unwrap();
        let candidates = engine::generate(&world, &request, &options);
        let bytes = render(&world, &parsed, &candidates, mv::MAX).to_json();
        (bytes.len(), started.elapsed())
    }

    /// `cargo test --release -- --ignored --nocapture at_scale`.
    #[test]
    #[ignore = "a timing run; meaningful in release builds"]
    fn at_scale() {
        for (count, limit) in [
            (1_000, None),
            (1_000, Some(10)),
            (10_000, None),
            (100_000, Some(1000)),
        ] {
            let mut best = std::time::Duration::MAX;
            let mut size = 0;
            for _ in 0..5 {
                let (bytes, took) = flat_benchmark(count, limit);
                best = best.min(took);
                size = bytes;
            }
            eprintln!("{count} providers, limit {limit:?}: {best:?} ({size} bytes)");
        }
    }
}
