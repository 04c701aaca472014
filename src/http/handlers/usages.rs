//! `/resource_providers/{uuid}/usages` and `/usages` (upstream
//! `handlers/usage.py`). Usages are "now": `last-modified` is always the
//! time of the response.

use actix_web::HttpResponse;

use crate::domain::usages::{self as domain, TypeGrouping, UNKNOWN_CONSUMER_TYPE};
use crate::errors::{ApiError, DomainError};
use crate::http::query::Query;
use crate::http::{Request, microversion as mv};
use crate::policy::{Target, actions};
use crate::schemas::usages::{
    ConsumerTypeUsageView, ProviderUsagesView, TOTAL_USAGES_QUERY, TOTAL_USAGES_QUERY_1_38,
    TotalUsagesView, UsagesByConsumerTypeView,
};

/// `GET /resource_providers/{uuid}/usages`: usage of each class the
/// provider has inventory of (0 when unused). 200; 404.
pub async fn list_usages(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDER_USAGES)?;
    let uuid = request.path_param("uuid").to_owned();
    let (provider, rows) = request
        .state
        .db
        .run(move |connection| {
            domain::for_provider(connection, &uuid).map_err(|error| match error {
                DomainError::NotFound(detail) => {
                    DomainError::not_found(format!("{detail}: {detail}"))
                }
                other => other,
            })
        })
        .await?;
    let body = ProviderUsagesView {
        resource_provider_generation: provider.generation,
        usages: rows
            .into_iter()
            .map(|row| (row.resource_class, row.used))
            .collect(),
    };
    Ok(request.json_ok(&body, None))
}

/// `GET /usages?project_id=&user_id=` (1.9): what a project's (or a
/// user's) consumers use. From 1.38 grouped by consumer type with
/// `consumer_count`, and filtered by `consumer_type` (a type, `all` or
/// `unknown`). 200; 400 for bad parameters.
pub async fn get_total_usages(request: Request) -> Result<HttpResponse, ApiError> {
    let query = Query::parse(request.query_string());
    let project_id = query.get("project_id").map(str::to_owned);
    request.authorize_on(
        actions::TOTAL_USAGES,
        &Target {
            project_id: project_id.clone(),
            user_id: None,
        },
    )?;
    let by_consumer_type = request.version.at_least(mv::CONSUMER_TYPES);
    query.validate(if by_consumer_type {
        &TOTAL_USAGES_QUERY_1_38
    } else {
        &TOTAL_USAGES_QUERY
    })?;
    let Some(project_id) = project_id else {
        return Err(ApiError::bad_request(
            "Invalid query string parameters: 'project_id' is a required property",
        ));
    };
    let user_id = query.get("user_id").map(str::to_owned);
    let grouping = if by_consumer_type {
        TypeGrouping::from_filter(query.get("consumer_type"))
    } else {
        TypeGrouping::None
    };
    let groups = request
        .state
        .db
        .run(move |connection| {
            domain::for_project(connection, &project_id, user_id.as_deref(), &grouping)
        })
        .await?;
    if !by_consumer_type {
        let body = TotalUsagesView {
            usages: groups
                .into_values()
                .flat_map(|group| group.resources)
                .collect(),
        };
        return Ok(request.json_ok(&body, None));
    }
    let body = UsagesByConsumerTypeView {
        usages: groups
            .into_iter()
            .map(|(consumer_type, group)| {
                (
                    consumer_type.unwrap_or_else(|| UNKNOWN_CONSUMER_TYPE.to_owned()),
                    ConsumerTypeUsageView {
                        resources: group.resources,
                        consumer_count: group.consumer_count,
                    },
                )
            })
            .collect(),
    };
    Ok(request.json_ok(&body, None))
}
