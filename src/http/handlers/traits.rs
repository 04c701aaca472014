//! `/traits` and `/resource_providers/{uuid}/traits` (upstream
//! `handlers/trait.py`).

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

use crate::domain::traits::{self as domain, TraitFilter, TraitRow};
use crate::errors::ApiError;
use crate::http::query::Query;
use crate::http::{Request, http_date, newest};
use crate::policy::actions;
use crate::schemas::traits::{
    CUSTOM_TRAIT, LIST_TRAITS_QUERY, ProviderTraitsView, SET_PROVIDER_TRAITS, TraitsView,
};
use crate::schemas::validator;

fn names_and_last_modified(
    rows: &[TraitRow],
) -> (Vec<String>, Option<chrono::DateTime<chrono::Utc>>) {
    let mut last_modified = None;
    let names = rows
        .iter()
        .map(|row| {
            last_modified = newest(last_modified, row.created_at, row.updated_at);
            row.name.clone()
        })
        .collect();
    (names, last_modified)
}

fn parse_name_filter(value: &str, filter: &mut TraitFilter) -> Result<(), ApiError> {
    let Some((operator, operand)) = value.split_once(':') else {
        return Err(ApiError::bad_request(format!(
            "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{value}\""
        )));
    };
    match operator {
        "in" => filter.name_in = Some(operand.split(',').map(str::to_owned).collect()),
        "startswith" => filter.prefix = Some(operand.to_owned()),
        _ => {}
    }
    Ok(())
}

/// `GET /traits` (1.6): filter by `name=in:a,b` or `name=startswith:P`
/// and `associated=true|false`. 200; 400 for bad parameters.
pub async fn list_traits(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::TRAITS_LIST)?;
    let query = Query::parse(request.query_string());
    query.validate(&LIST_TRAITS_QUERY)?;
    let mut filter = TraitFilter::default();
    if let Some(name) = query.get("name") {
        parse_name_filter(name, &mut filter)?;
    }
    if let Some(associated) = query.get("associated") {
        filter.associated = match associated.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                return Err(ApiError::bad_request(
                    "The query parameter \"associated\" only accepts \"true\" or \"false\"",
                ));
            }
        };
    }
    let rows = request
        .state
        .db
        .run(move |connection| domain::list(connection, &filter))
        .await?;
    let (traits, last_modified) = names_and_last_modified(&rows);
    Ok(request.json_ok(&TraitsView { traits }, last_modified))
}

/// `GET /traits/{name}` (1.6): 204 when it exists; 404.
pub async fn get_trait(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::TRAITS_SHOW)?;
    let name = request.path_param("name").to_owned();
    let row = request
        .state
        .db
        .run(move |connection| domain::get(connection, &name))
        .await?;
    let mut response = HttpResponse::NoContent();
    if request.wants_cache_headers() {
        response.insert_header((header::LAST_MODIFIED, http_date(row.created_at)));
        response.insert_header((header::CACHE_CONTROL, "no-cache"));
    }
    Ok(response.finish())
}

/// `PUT /traits/{name}` (1.6): create a custom trait (201) or confirm it
/// exists (204); 400 for a name that is not `CUSTOM_...`.
pub async fn put_trait(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::TRAITS_UPDATE)?;
    let name = request.path_param("name").to_owned();
    if validator::validate(&CUSTOM_TRAIT, &serde_json::Value::String(name.clone())).is_err() {
        return Err(ApiError::bad_request(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"",
        ));
    }
    let lookup = name.clone();
    let (row, created) = request
        .state
        .db
        .run(move |connection| domain::ensure(connection, &lookup))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    let mut response = HttpResponse::build(status);
    response.insert_header((header::LOCATION, format!("/traits/{name}")));
    if request.wants_cache_headers() {
        response.insert_header((header::LAST_MODIFIED, http_date(row.created_at)));
        response.insert_header((header::CACHE_CONTROL, "no-cache"));
    }
    Ok(response.finish())
}

/// `DELETE /traits/{name}` (1.6): 204; 400 standard; 404; 409 in use.
pub async fn delete_trait(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::TRAITS_DELETE)?;
    let name = request.path_param("name").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete(connection, &name))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /resource_providers/{uuid}/traits` (1.6). 200; 404.
pub async fn list_traits_for_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDER_TRAITS_LIST)?;
    let uuid = request.path_param("uuid").to_owned();
    let (provider, rows) = request
        .state
        .db
        .run(move |connection| domain::list_for_provider(connection, &uuid))
        .await?;
    let (traits, last_modified) = names_and_last_modified(&rows);
    Ok(request.json_ok(
        &ProviderTraitsView {
            traits,
            resource_provider_generation: provider.generation,
        },
        last_modified,
    ))
}

/// `PUT /resource_providers/{uuid}/traits` (1.6): replace the provider's
/// traits. 200; 400 unknown trait or bad body; 404; 409 generation.
pub async fn update_traits_for_resource_provider(
    request: Request,
) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDER_TRAITS_UPDATE)?;
    let uuid = request.path_param("uuid").to_owned();
    let data = request.json_body(&SET_PROVIDER_TRAITS)?;
    let generation = data["resource_provider_generation"].as_i64().unwrap_or(-1);
    let names: Vec<String> = data["traits"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let (provider_generation, rows) = request
        .state
        .db
        .run(move |connection| domain::set_for_provider(connection, &uuid, generation, &names))
        .await?;
    let (traits, last_modified) = names_and_last_modified(&rows);
    Ok(request.json_ok(
        &ProviderTraitsView {
            traits,
            resource_provider_generation: provider_generation,
        },
        last_modified,
    ))
}

/// `DELETE /resource_providers/{uuid}/traits` (1.6). 204; 404; 409.
pub async fn delete_traits_for_resource_provider(
    request: Request,
) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDER_TRAITS_DELETE)?;
    let uuid = request.path_param("uuid").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::clear_for_provider(connection, &uuid))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
