//! `/resource_providers/{uuid}/aggregates` (upstream
//! `handlers/aggregate.py`).

use actix_web::HttpResponse;
use uuid::Uuid;

use crate::domain::aggregates as domain;
use crate::domain::resource_providers as providers;
use crate::errors::ApiError;
use crate::http::Request;
use crate::http::microversion as mv;
use crate::policy::actions;
use crate::schemas::aggregates::{AggregatesView, SET_AGGREGATES_1_1, SET_AGGREGATES_1_19};
use crate::schemas::query::parse_uuid_like;

fn respond(request: &Request, aggregates: Vec<String>, generation: i32) -> HttpResponse {
    let body = AggregatesView {
        aggregates,
        resource_provider_generation: request
            .version
            .at_least(mv::AGGREGATE_GENERATION)
            .then_some(generation),
    };
    // Upstream records no time for the associations: always "now".
    request.json_ok(&body, None)
}

/// The version gate of the aggregates endpoints, which upstream applies
/// after the Accept (GET) or Content-Type (PUT) check the dispatcher made.
fn before_1_1_not_found(request: &Request) -> Result<(), ApiError> {
    if request.version.at_least(mv::AGGREGATES) {
        Ok(())
    } else {
        Err(ApiError::resource_not_found())
    }
}

/// `GET /resource_providers/{uuid}/aggregates` (1.1): the provider's
/// aggregate uuids, with its generation from 1.19. 200; 404.
pub async fn get_aggregates(request: Request) -> Result<HttpResponse, ApiError> {
    before_1_1_not_found(&request)?;
    request.authorize(actions::AGGREGATES_LIST)?;
    let uuid = request.path_param("uuid").to_owned();
    let (provider, aggregates) = request
        .state
        .db
        .run(move |connection| domain::list_for_provider(connection, &uuid))
        .await?;
    let aggregates = aggregates.iter().map(Uuid::to_string).collect();
    Ok(respond(&request, aggregates, provider.generation))
}

/// `PUT /resource_providers/{uuid}/aggregates` (1.1): replace the
/// provider's aggregates. Before 1.19 the body is a bare list; from 1.19
/// it carries the generation, which must match and is bumped. 200; 400;
/// 404; 409 `concurrent_update`. Upstream looks the provider up before
/// reading the body, so on a bad body the provider is checked first.
pub async fn set_aggregates(request: Request) -> Result<HttpResponse, ApiError> {
    before_1_1_not_found(&request)?;
    request.authorize(actions::AGGREGATES_UPDATE)?;
    let uuid = request.path_param("uuid").to_owned();
    let AggregatesBody {
        given,
        aggregates,
        generation,
    } = match read_aggregates(&request) {
        Ok(body) => body,
        Err(error) => {
            let lookup = uuid.clone();
            request
                .state
                .db
                .run(move |connection| providers::find(connection, &lookup))
                .await?;
            return Err(error);
        }
    };
    let written_generation = request
        .state
        .db
        .run(move |connection| domain::set_for_provider(connection, &uuid, &aggregates, generation))
        .await?;
    Ok(respond(&request, given, written_generation))
}

/// The body of `set_aggregates`.
struct AggregatesBody {
    /// As given, for the response.
    given: Vec<String>,
    /// Parsed and distinct.
    aggregates: Vec<Uuid>,
    /// From 1.19 (-1 when absent, which never matches).
    generation: Option<i64>,
}

fn read_aggregates(request: &Request) -> Result<AggregatesBody, ApiError> {
    let with_generation = request.version.at_least(mv::AGGREGATE_GENERATION);
    let (list, generation) = if with_generation {
        let data = request.json_body(&SET_AGGREGATES_1_19)?;
        let generation = data["resource_provider_generation"].as_i64();
        (data["aggregates"].clone(), Some(generation.unwrap_or(-1)))
    } else {
        (request.json_body(&SET_AGGREGATES_1_1)?, None)
    };
    let given: Vec<String> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut aggregates: Vec<Uuid> = Vec::with_capacity(given.len());
    for text in &given {
        let parsed = parse_uuid_like(text).ok_or_else(|| {
            ApiError::bad_request(format!("JSON does not validate: '{text}' is not a 'uuid'"))
        })?;
        if !aggregates.contains(&parsed) {
            aggregates.push(parsed);
        }
    }
    Ok(AggregatesBody {
        given,
        aggregates,
        generation,
    })
}
