//! `/resource_providers/{uuid}/inventories[/{resource_class}]` (upstream
//! `handlers/inventory.py`).

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::domain::inventories::{self as domain, Inventory, ReservedRule, limits_of};
use crate::domain::resource_providers as providers;
use crate::errors::{ApiError, DomainError};
use crate::http::{Request, microversion as mv, newest};
use crate::policy::actions;
use crate::schemas::inventories::{
    CREATE_INVENTORY, CreateInventory, InventoriesView, InventoryView, REPLACE_INVENTORIES,
    ReplaceInventories, UPDATE_INVENTORY, UpdateInventory,
};

fn reserved_rule(request: &Request) -> ReservedRule {
    if request.version.at_least(mv::RESERVED_EQUALS_TOTAL) {
        ReservedRule::UpToTotal
    } else {
        ReservedRule::BelowTotal
    }
}

/// GET handlers report a missing provider with the object's message twice,
/// as upstream's `get_inventories` and `get_inventory` wrap it.
fn provider_not_found_twice(error: DomainError) -> DomainError {
    match error {
        DomainError::NotFound(detail) => DomainError::not_found(format!("{detail} : {detail}")),
        other => other,
    }
}

/// The path of one inventory (the dispatcher makes `Location` absolute).
fn inventory_url(provider_uuid: &str, class: &str) -> String {
    format!("/resource_providers/{provider_uuid}/inventories/{class}")
}

/// Parses and validates the body into `T`. Upstream looks the provider up
/// before reading the body, so a bad body to a missing provider is a 404:
/// on a bad body the provider is checked first.
async fn read_body<T: DeserializeOwned>(
    request: &Request,
    schema: &serde_json::Value,
    provider_uuid: &str,
) -> Result<T, ApiError> {
    let parsed = request.json_body(schema).and_then(|data| {
        serde_json::from_value(data)
            .map_err(|error| ApiError::bad_request(format!("JSON does not validate: {error}")))
    });
    match parsed {
        Ok(body) => Ok(body),
        Err(error) => {
            let uuid = provider_uuid.to_owned();
            request
                .state
                .db
                .run(move |connection| providers::find(connection, &uuid).map(|_| ()))
                .await?;
            Err(error)
        }
    }
}

/// `GET /resource_providers/{uuid}/inventories`: every inventory of the
/// provider by class. 200; 404.
pub async fn get_inventories(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_LIST)?;
    let uuid = request.path_param("uuid").to_owned();
    let (provider, rows) = request
        .state
        .db
        .run(move |connection| domain::list(connection, &uuid).map_err(provider_not_found_twice))
        .await?;
    let mut last_modified = None;
    let mut inventories = BTreeMap::new();
    for (row, class) in &rows {
        last_modified = newest(last_modified, row.created_at, row.updated_at);
        inventories.insert(class.clone(), InventoryView::new(&limits_of(row), None));
    }
    let body = InventoriesView {
        resource_provider_generation: provider.generation,
        inventories,
    };
    // No inventory, no time: upstream's `_send_inventories` sends none.
    Ok(super::without_last_modified(
        request.json_ok(&body, last_modified),
        last_modified,
    ))
}

/// `GET /resource_providers/{uuid}/inventories/{resource_class}`. 200;
/// 404 for a missing provider or inventory.
pub async fn get_inventory(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_SHOW)?;
    let uuid = request.path_param("uuid").to_owned();
    let class = request.path_param("resource_class").to_owned();
    let (lookup_uuid, lookup_class) = (uuid.clone(), class.clone());
    let (provider, row) = request
        .state
        .db
        .run(move |connection| {
            domain::get(connection, &lookup_uuid, &lookup_class).map_err(provider_not_found_twice)
        })
        .await?;
    let Some(row) = row else {
        return Err(ApiError::not_found(format!(
            "No inventory of class {class} for {uuid}"
        )));
    };
    Ok(request.json_ok(
        &InventoryView::new(&limits_of(&row), Some(provider.generation)),
        newest(None, row.created_at, row.updated_at),
    ))
}

/// `POST /resource_providers/{uuid}/inventories`: add inventory of one
/// class. 201 with Location and the inventory; 400 (bad body, capacity,
/// unknown class); 404; 409 when the provider has that class already.
pub async fn create_inventory(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_CREATE)?;
    let uuid = request.path_param("uuid").to_owned();
    let body: CreateInventory = read_body(&request, &CREATE_INVENTORY, &uuid).await?;
    let inventory = Inventory {
        resource_class: body.resource_class,
        limits: body.fields.limits(),
    };
    let rule = reserved_rule(&request);
    let written = inventory.clone();
    let (provider, _) = request
        .state
        .db
        .run(move |connection| domain::create(connection, &uuid, &written, rule))
        .await?;
    let location = inventory_url(&provider.uuid.to_string(), &inventory.resource_class);
    let mut response = request.json_with_status(
        StatusCode::CREATED,
        &InventoryView::new(&inventory.limits, Some(provider.generation)),
        None,
    );
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `PUT /resource_providers/{uuid}/inventories`: replace all of the
/// provider's inventory. 200 with the inventories; 400 (bad body,
/// capacity, unknown class); 404; 409 (generation, or removing inventory
/// that is in use).
pub async fn set_inventories(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_UPDATE)?;
    let uuid = request.path_param("uuid").to_owned();
    let body: ReplaceInventories = read_body(&request, &REPLACE_INVENTORIES, &uuid).await?;
    let inventories: Vec<Inventory> = body
        .records()
        .map_err(|error| ApiError::bad_request(format!("JSON does not validate: {error}")))?
        .into_iter()
        .map(|(resource_class, fields)| Inventory {
            resource_class,
            limits: fields.limits(),
        })
        .collect();
    let generation = body.resource_provider_generation;
    let rule = reserved_rule(&request);
    let written = inventories.clone();
    let written_generation = request
        .state
        .db
        .run(move |connection| domain::replace_all(connection, &uuid, generation, &written, rule))
        .await?;
    let body = InventoriesView {
        resource_provider_generation: written_generation,
        inventories: inventories
            .iter()
            .map(|inventory| {
                (
                    inventory.resource_class.clone(),
                    InventoryView::new(&inventory.limits, None),
                )
            })
            .collect(),
    };
    // Upstream's times come from the rows just written ("now"), and there
    // is none when the provider is left without inventory.
    let modified = (!body.inventories.is_empty()).then(chrono::Utc::now);
    Ok(super::without_last_modified(
        request.json_ok(&body, modified),
        modified,
    ))
}

/// `PUT /resource_providers/{uuid}/inventories/{resource_class}`: change
/// one existing inventory. 200 with the inventory; 400 (bad body,
/// capacity, no such inventory); 404 (provider, class); 409 generation.
pub async fn update_inventory(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_UPDATE)?;
    let uuid = request.path_param("uuid").to_owned();
    let class = request.path_param("resource_class").to_owned();
    let body: UpdateInventory = read_body(&request, &UPDATE_INVENTORY, &uuid).await?;
    let inventory = Inventory {
        resource_class: class,
        limits: body.fields.limits(),
    };
    let generation = body.resource_provider_generation;
    let rule = reserved_rule(&request);
    let written = inventory.clone();
    let (provider, _) = request
        .state
        .db
        .run(move |connection| domain::update(connection, &uuid, generation, &written, rule))
        .await?;
    Ok(request.json_ok(
        &InventoryView::new(&inventory.limits, Some(provider.generation)),
        None,
    ))
}

/// `DELETE /resource_providers/{uuid}/inventories/{resource_class}`. 204;
/// 404 (provider, class, inventory); 409 (in use, generation).
pub async fn delete_inventory(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_DELETE)?;
    let uuid = request.path_param("uuid").to_owned();
    let class = request.path_param("resource_class").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete(connection, &uuid, &class))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /resource_providers/{uuid}/inventories` (1.5; 405 before):
/// remove all of the provider's inventory. 204; 404; 409 (in use,
/// generation).
pub async fn delete_inventories(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::INVENTORIES_DELETE)?;
    let uuid = request.path_param("uuid").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete_all(connection, &uuid))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
