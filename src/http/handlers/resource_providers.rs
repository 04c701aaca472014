//! `/resource_providers` and `/resource_providers/{uuid}` (upstream
//! `handlers/resource_provider.py`).

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::resource_providers::{self as domain, ListFilter, Provider};
use crate::errors::ApiError;
use crate::http::microversion::{self as mv, Microversion};
use crate::http::query::Query;
use crate::http::{Request, newest};
use crate::policy::actions;
use crate::schemas::query::{self as grammar, MemberOfRules, TraitRules};
use crate::schemas::resource_providers::{
    CREATE_PROVIDER, CREATE_PROVIDER_1_14, LIST_PROVIDERS_QUERY_1_0, LIST_PROVIDERS_QUERY_1_3,
    LIST_PROVIDERS_QUERY_1_4, LIST_PROVIDERS_QUERY_1_14, LIST_PROVIDERS_QUERY_1_18, LinkView,
    ProviderView, ProvidersView, TreeView, UPDATE_PROVIDER, UPDATE_PROVIDER_1_14,
};

/// `/resource_providers/{uuid}`.
pub fn provider_url(uuid: &Uuid) -> String {
    format!("/resource_providers/{uuid}")
}

fn links(uuid: &Uuid, version: Microversion) -> Vec<LinkView> {
    let url = provider_url(uuid);
    let mut relations = vec!["inventories", "usages"];
    if version.at_least(mv::AGGREGATES) {
        relations.push("aggregates");
    }
    if version.at_least(mv::TRAITS) {
        relations.push("traits");
    }
    if version.at_least(mv::ALLOCATIONS_LINK) {
        relations.push("allocations");
    }
    let mut links = vec![LinkView {
        rel: "self",
        href: url.clone(),
    }];
    links.extend(relations.into_iter().map(|rel| LinkView {
        rel,
        href: format!("{url}/{rel}"),
    }));
    links
}

/// The provider as shown at `version`.
pub fn view(provider: &Provider, version: Microversion) -> ProviderView {
    ProviderView {
        uuid: provider.row.uuid,
        name: provider.row.name.clone(),
        generation: provider.row.generation,
        links: links(&provider.row.uuid, version),
        tree: version.at_least(mv::NESTED_PROVIDERS).then_some(TreeView {
            parent_provider_uuid: provider.parent_uuid,
            root_provider_uuid: provider.root_uuid,
        }),
    }
}

fn last_modified(provider: &Provider) -> Option<chrono::DateTime<chrono::Utc>> {
    newest(None, provider.row.created_at, provider.row.updated_at)
}

/// A uuid from a body that passed the schema's `format: uuid`.
fn body_uuid(value: &Value, field: &str) -> Result<Option<Uuid>, ApiError> {
    match value.as_str() {
        None => Ok(None),
        Some(text) => grammar::parse_uuid_like(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "JSON does not validate: '{text}' is not a 'uuid' ... Failed validating 'format' in schema['properties']['{field}']"
            ))
        }),
    }
}

/// `POST /resource_providers`: create a provider. 201 with Location and
/// no body before 1.20, 200 with the provider and Location from 1.20; 400;
/// 409 `duplicate_name`.
pub async fn create_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDERS_CREATE)?;
    let version = request.version;
    let schema = if version.at_least(mv::NESTED_PROVIDERS) {
        &CREATE_PROVIDER_1_14
    } else {
        &CREATE_PROVIDER
    };
    let data = request.json_body(schema)?;
    let name = data["name"].as_str().unwrap_or_default().to_owned();
    let uuid = body_uuid(&data["uuid"], "uuid")?.unwrap_or_else(Uuid::new_v4);
    let parent = if version.at_least(mv::NESTED_PROVIDERS) {
        body_uuid(&data["parent_provider_uuid"], "parent_provider_uuid")?
    } else {
        None
    };
    let provider = request
        .state
        .db
        .run(move |connection| domain::create(connection, uuid, &name, parent))
        .await?;
    let location = provider_url(&provider.row.uuid);
    if version.at_least(mv::CREATE_PROVIDER_RETURNS_BODY) {
        let mut response = request.json_ok(&view(&provider, version), last_modified(&provider));
        if let Ok(value) = header::HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Ok(response)
    } else {
        Ok(HttpResponse::build(StatusCode::CREATED)
            .insert_header((header::LOCATION, location))
            .finish())
    }
}

/// `DELETE /resource_providers/{uuid}`: 204; 404; 409 while the provider
/// has allocations (`resource_provider.inuse`) or children
/// (`resource_provider.cannot_delete_parent`).
pub async fn delete_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDERS_DELETE)?;
    let uuid = request.path_param("uuid").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete(connection, &uuid))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /resource_providers/{uuid}`: 200; 404.
pub async fn get_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDERS_SHOW)?;
    let uuid = request.path_param("uuid").to_owned();
    let provider = request
        .state
        .db
        .run(move |connection| domain::show(connection, &uuid))
        .await?;
    Ok(request.json_ok(&view(&provider, request.version), last_modified(&provider)))
}

fn list_schema(version: Microversion) -> &'static Value {
    if version.at_least(mv::PROVIDERS_REQUIRED) {
        &LIST_PROVIDERS_QUERY_1_18
    } else if version.at_least(mv::NESTED_PROVIDERS) {
        &LIST_PROVIDERS_QUERY_1_14
    } else if version.at_least(mv::RESOURCES_FILTER) {
        &LIST_PROVIDERS_QUERY_1_4
    } else if version.at_least(mv::MEMBER_OF_FILTER) {
        &LIST_PROVIDERS_QUERY_1_3
    } else {
        &LIST_PROVIDERS_QUERY_1_0
    }
}

/// A uuid query parameter that passed the schema's `format: uuid`.
fn query_uuid(value: &str) -> Result<Uuid, ApiError> {
    grammar::parse_uuid_like(value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid query string parameters: '{value}' is not a 'uuid'"
        ))
    })
}

/// Reads the filters of `GET /resource_providers` known at `version`.
fn list_filter(query: &Query, version: Microversion) -> Result<ListFilter, ApiError> {
    let mut filter = ListFilter {
        // As upstream, an empty name does not filter.
        name: query
            .get("name")
            .filter(|name| !name.is_empty())
            .map(str::to_owned),
        ..ListFilter::default()
    };
    if let Some(uuid) = query.get("uuid") {
        filter.uuid = Some(query_uuid(uuid)?);
    }
    let member_of = query.get_all("member_of");
    if version.at_least(mv::MEMBER_OF_FILTER) && !member_of.is_empty() {
        let rules = MemberOfRules {
            allow_multiple: version.at_least(mv::MULTIPLE_MEMBER_OF),
            allow_forbidden: version.at_least(mv::FORBIDDEN_AGGREGATES),
        };
        filter.member_of = grammar::parse_member_of(&member_of, "", rules)?;
    }
    let required = query.get_all("required");
    if version.at_least(mv::PROVIDERS_REQUIRED) && !required.is_empty() {
        let rules = TraitRules {
            allow_forbidden: version.at_least(mv::FORBIDDEN_TRAITS),
            allow_any: version.at_least(mv::ANY_TRAITS),
        };
        filter.required = grammar::parse_required(&required, rules)?;
    }
    if version.at_least(mv::NESTED_PROVIDERS)
        && let Some(tree) = query.get("in_tree")
    {
        filter.in_tree = Some(query_uuid(tree)?);
    }
    if version.at_least(mv::RESOURCES_FILTER)
        && let Some(resources) = query.get("resources")
    {
        filter.resources = grammar::parse_resources(resources)?;
    }
    Ok(filter)
}

/// `GET /resource_providers`: the providers matching `name`, `uuid`,
/// `member_of` (1.3), `resources` (1.4), `in_tree` (1.14) and `required`
/// (1.18). 200; 400 for a bad query, unknown trait or resource class.
pub async fn list_resource_providers(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDERS_LIST)?;
    let version = request.version;
    let query = Query::parse(request.query_string());
    query.validate(list_schema(version))?;
    let filter = list_filter(&query, version)?;
    let providers = request
        .state
        .db
        .run(move |connection| domain::list(connection, &filter))
        .await?;
    let mut modified = None;
    for provider in &providers {
        modified = newest(modified, provider.row.created_at, provider.row.updated_at);
    }
    let body = ProvidersView {
        resource_providers: providers
            .iter()
            .map(|provider| view(provider, version))
            .collect(),
    };
    Ok(request.json_ok(&body, modified))
}

/// `PUT /resource_providers/{uuid}`: rename and (1.14) re-parent. 200;
/// 400 for a bad parent or a loop; 404; 409 `duplicate_name`.
pub async fn update_resource_provider(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_PROVIDERS_UPDATE)?;
    let version = request.version;
    let uuid = request.path_param("uuid").to_owned();
    let lookup = uuid.clone();
    let before = request
        .state
        .db
        .run(move |connection| domain::find(connection, &lookup))
        .await?;
    let schema = if version.at_least(mv::NESTED_PROVIDERS) {
        &UPDATE_PROVIDER_1_14
    } else {
        &UPDATE_PROVIDER
    };
    let data = request.json_body(schema)?;
    let name = data["name"].as_str().unwrap_or_default().to_owned();
    let parent = match data.get("parent_provider_uuid") {
        Some(value) if version.at_least(mv::NESTED_PROVIDERS) => {
            Some(body_uuid(value, "parent_provider_uuid")?)
        }
        _ => None,
    };
    let allow_reparenting = version.at_least(mv::REPARENT_PROVIDERS);
    let provider = request
        .state
        .db
        .run(move |connection| domain::update(connection, &uuid, &name, parent, allow_reparenting))
        .await?;
    // Upstream answers with the `updated_at` of the provider it loaded
    // before saving (the object is not refreshed): a provider never
    // changed before has no `last-modified`, unless it was created as a
    // root, whose creation ends with an UPDATE setting its root id.
    let modified = before.updated_at.or_else(|| {
        before
            .parent_provider_id
            .is_none()
            .then_some(before.created_at)
    });
    Ok(super::without_last_modified(
        request.json_ok(&view(&provider, version), modified),
        modified,
    ))
}
