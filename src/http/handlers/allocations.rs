//! `/allocations`, `/allocations/{consumer_uuid}` and
//! `/resource_providers/{uuid}/allocations` (upstream
//! `handlers/allocation.py`).

use indexmap::IndexMap;

use actix_web::HttpResponse;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::allocations::{self as domain, ConsumerAllocations, Origin, ProviderResources};
use crate::domain::consumers::{ConsumerIdentity, ExpectedGeneration};
use crate::errors::{ApiError, DomainError, ErrorCode};
use crate::http::microversion as mv;
use crate::http::{Request, newest};
use crate::policy::actions;
use crate::schemas::allocations::{
    ConsumerAllocationsView, ConsumerResourcesView, ProviderAllocationView,
    ProviderAllocationsView, post_schema_for, put_schema,
};
use crate::telemetry::ClaimOutcome;

/// The type shown for consumers written before 1.38.
const UNKNOWN_CONSUMER_TYPE: &str = "unknown";

fn malformed_body() -> ApiError {
    ApiError::bad_request("JSON does not validate: malformed allocations")
}

fn parse_resources(value: &Value) -> Result<Vec<(String, i64)>, ApiError> {
    let map = value.as_object().ok_or_else(malformed_body)?;
    map.iter()
        .map(|(class, amount)| {
            amount
                .as_i64()
                .map(|amount| (class.clone(), amount))
                .ok_or_else(malformed_body)
        })
        .collect()
}

/// The allocations of a body: the list form before 1.12, then the dict
/// form keyed by provider uuid. A provider named twice keeps the last.
fn parse_allocations(value: &Value, dict_form: bool) -> Result<Vec<ProviderResources>, ApiError> {
    let mut parts: Vec<ProviderResources> = Vec::new();
    let mut push = |provider_uuid: String, resources: Vec<(String, i64)>| {
        parts.retain(|part| part.provider_uuid != provider_uuid);
        parts.push(ProviderResources {
            provider_uuid,
            resources,
        });
    };
    if dict_form {
        for (provider, part) in value.as_object().ok_or_else(malformed_body)? {
            push(provider.clone(), parse_resources(&part["resources"])?);
        }
    } else {
        for item in value.as_array().ok_or_else(malformed_body)? {
            let provider = item["resource_provider"]["uuid"]
                .as_str()
                .ok_or_else(malformed_body)?;
            push(provider.to_owned(), parse_resources(&item["resources"])?);
        }
    }
    Ok(parts)
}

fn optional_string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// One consumer's write from its (validated) body at the request's version.
pub(crate) fn consumer_write(
    request: &Request,
    consumer_uuid: Uuid,
    body: &Value,
    allow_empty: bool,
) -> Result<ConsumerAllocations, ApiError> {
    let version = request.version;
    let allocations =
        parse_allocations(&body["allocations"], version.at_least(mv::ALLOCATIONS_DICT))?;
    let config = &request.state.config;
    let project_user_required = version.at_least(mv::PROJECT_USER_REQUIRED);
    if project_user_required && (body.get("project_id").is_none() || body.get("user_id").is_none())
    {
        return Err(malformed_body());
    }
    let identity = match optional_string(&body["project_id"]) {
        Some(project_id) => ConsumerIdentity {
            project_id,
            user_id: optional_string(&body["user_id"]).ok_or_else(malformed_body)?,
            consumer_type: None,
        },
        None => ConsumerIdentity {
            project_id: config.incomplete_consumer_project_id.clone(),
            user_id: config.incomplete_consumer_user_id.clone(),
            consumer_type: None,
        },
    };
    let identity = ConsumerIdentity {
        consumer_type: if version.at_least(mv::CONSUMER_TYPES) {
            Some(optional_string(&body["consumer_type"]).ok_or_else(malformed_body)?)
        } else {
            None
        },
        ..identity
    };
    let expected_generation = if version.at_least(mv::CONSUMER_GENERATIONS) {
        match body.get("consumer_generation") {
            None => return Err(malformed_body()),
            Some(Value::Null) => ExpectedGeneration::Absent,
            Some(value) => ExpectedGeneration::Is(value.as_i64().ok_or_else(malformed_body)?),
        }
    } else {
        ExpectedGeneration::Unchecked
    };
    if allocations.is_empty() && !allow_empty {
        return Err(malformed_body());
    }
    Ok(ConsumerAllocations {
        consumer_uuid,
        identity,
        expected_generation,
        allocations,
    })
}

/// `GET /allocations/{consumer_uuid}`: 200 always, `{"allocations": {}}`
/// for an unknown consumer. Project and user from 1.12, consumer
/// generation from 1.28, consumer type from 1.38.
pub async fn list_for_consumer(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::ALLOCATIONS_LIST)?;
    let consumer_uuid = request.path_param("consumer_uuid").to_owned();
    let rows = request
        .state
        .db
        .run(move |connection| domain::list_for_consumer(connection, &consumer_uuid))
        .await?;
    let version = request.version;
    let mut view = ConsumerAllocationsView {
        allocations: IndexMap::new(),
        project_id: None,
        user_id: None,
        consumer_generation: None,
        consumer_type: None,
    };
    let mut last_modified = None;
    for row in &rows {
        last_modified = newest(last_modified, row.created_at, row.updated_at);
        view.allocations
            .entry(row.provider_uuid.to_string())
            .or_insert_with(|| ProviderAllocationView {
                generation: row.provider_generation,
                resources: IndexMap::new(),
            })
            .resources
            .insert(row.resource_class.clone(), row.used);
    }
    if let Some(first) = rows.first()
        && version.at_least(mv::ALLOCATIONS_DICT)
    {
        view.project_id = Some(first.project_external_id.clone());
        view.user_id = Some(first.user_external_id.clone());
        if version.at_least(mv::CONSUMER_GENERATIONS) {
            view.consumer_generation = Some(first.consumer_generation);
        }
        if version.at_least(mv::CONSUMER_TYPES) {
            view.consumer_type = Some(
                first
                    .consumer_type
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_CONSUMER_TYPE.to_owned()),
            );
        }
    }
    Ok(request.json_ok(&view, last_modified))
}

/// `GET /resource_providers/{uuid}/allocations`: 200 with the allocations
/// by consumer; 404 for an unknown provider.
pub async fn list_for_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDER_ALLOCATIONS_LIST)?;
    let provider_uuid = request.path_param("uuid").to_owned();
    let (provider, rows) = request
        .state
        .db
        .run(move |connection| domain::list_for_provider(connection, &provider_uuid))
        .await?;
    let show_generation = request.version.at_least(mv::CONSUMER_GENERATIONS);
    let mut allocations = IndexMap::new();
    let mut last_modified = None;
    for row in &rows {
        last_modified = newest(last_modified, row.created_at, row.updated_at);
        allocations
            .entry(row.consumer_uuid.to_string())
            .or_insert_with(|| ConsumerResourcesView {
                resources: IndexMap::new(),
                consumer_generation: show_generation.then_some(row.consumer_generation),
            })
            .resources
            .insert(row.resource_class.clone(), row.used);
    }
    Ok(request.json_ok(
        &ProviderAllocationsView {
            allocations,
            resource_provider_generation: provider.generation,
        },
        last_modified,
    ))
}

/// `PUT /allocations/{consumer_uuid}`: replace one consumer's allocations.
/// 204; 400 bad body, unknown provider or class; 409 capacity,
/// constraints, missing inventory or a generation conflict.
pub async fn set_allocations_for_consumer(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::ALLOCATIONS_UPDATE)?;
    let raw_uuid = request.path_param("consumer_uuid");
    let consumer_uuid = Uuid::parse_str(raw_uuid)
        .map_err(|_| ApiError::bad_request(format!("Malformed consumer_uuid: {raw_uuid}")))?;
    let body = request.json_body(put_schema(request.version))?;
    let allow_empty = request.version.at_least(mv::CONSUMER_GENERATIONS);
    let write = consumer_write(&request, consumer_uuid, &body, allow_empty)?;
    write_allocations(&request, vec![write], Origin::Consumer(consumer_uuid)).await
}

/// `POST /allocations` (1.13): replace the allocations of several
/// consumers atomically; an empty `allocations` removes a consumer's.
/// 204; 400; 409.
pub async fn set_allocations(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::ALLOCATIONS_MANAGE)?;
    let body = request.json_body(post_schema_for(request.version))?;
    let consumers = body.as_object().ok_or_else(malformed_body)?;
    let mut writes = Vec::with_capacity(consumers.len());
    for (raw_uuid, data) in consumers {
        let consumer_uuid = Uuid::parse_str(raw_uuid)
            .map_err(|_| ApiError::bad_request(format!("Malformed consumer_uuid: {raw_uuid}")))?;
        writes.push(consumer_write(&request, consumer_uuid, data, true)?);
    }
    write_allocations(&request, writes, Origin::Batch).await
}

/// The write both endpoints end with: `domain::replace_all` with the
/// configured retries, counted in the claim metrics; 204.
async fn write_allocations(
    request: &Request,
    writes: Vec<ConsumerAllocations>,
    origin: Origin,
) -> Result<HttpResponse, ApiError> {
    let attempts = request.state.config.allocation_conflict_retry_count;
    let state = request.state.clone();
    let written = request
        .state
        .db
        .run(move |connection| {
            domain::replace_all(connection, &writes, origin, attempts, &state.world, &|| {
                state.metrics.conflict_retries(1)
            })
        })
        .await;
    count_claim(request, &written);
    written?;
    Ok(HttpResponse::NoContent().finish())
}

/// Counts an allocation write in `placement_claims_total` by how it ended.
fn count_claim(request: &Request, written: &Result<(), DomainError>) {
    let outcome = match written {
        Ok(()) => ClaimOutcome::Accepted,
        Err(DomainError::Conflict {
            code: ErrorCode::ConcurrentUpdate,
            detail,
        }) if detail.starts_with("consumer generation conflict") => ClaimOutcome::ConsumerConflict,
        Err(DomainError::Conflict {
            code: ErrorCode::ConcurrentUpdate,
            ..
        }) => ClaimOutcome::GenerationConflict,
        Err(DomainError::Conflict { .. }) => ClaimOutcome::Capacity,
        Err(_) => return,
    };
    request.state.metrics.claim(outcome);
}

/// `DELETE /allocations/{consumer_uuid}`: 204; 404 when it has none.
pub async fn delete_allocations(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::ALLOCATIONS_DELETE)?;
    let consumer_uuid = request.path_param("consumer_uuid").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete_for_consumer(connection, &consumer_uuid))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
