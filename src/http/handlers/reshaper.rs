//! `POST /reshaper` (upstream `handlers/reshaper.py`).

use actix_web::HttpResponse;
use serde::Deserialize;
use uuid::Uuid;

use super::allocations::consumer_write;
use crate::domain::reshaper::{self as domain, ProviderInventory};
use crate::errors::ApiError;
use crate::http::Request;
use crate::policy::actions;
use crate::schemas::inventories::ReplaceInventories;
use crate::schemas::reshaper::schema_for;

/// `POST /reshaper` (1.30): atomically replace the inventories of some
/// providers and the allocations of some consumers. 204; 400 bad body,
/// unknown provider (`placement.resource_provider.not_found`) or class;
/// 409 generation conflicts, inventory in use, capacity.
pub async fn reshape(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESHAPER_RESHAPE)?;
    let body = request.json_body(schema_for(request.version))?;
    let malformed = || ApiError::bad_request("JSON does not validate: malformed reshaper data");
    let mut requested = Vec::new();
    if let Some(entries) = body["inventories"].as_object() {
        for (provider_uuid, entry) in entries {
            let inventory = ReplaceInventories::deserialize(entry).map_err(|_| malformed())?;
            let records = inventory.records().map_err(|_| malformed())?;
            requested.push(ProviderInventory {
                provider_uuid: provider_uuid.clone(),
                generation: inventory.resource_provider_generation,
                records: records
                    .into_iter()
                    .map(|(class, fields)| (class, fields.limits()))
                    .collect(),
            });
        }
    }
    let mut writes = Vec::new();
    if let Some(consumers) = body["allocations"].as_object() {
        for (raw_uuid, data) in consumers {
            let consumer_uuid = Uuid::parse_str(raw_uuid).map_err(|_| {
                ApiError::bad_request(format!("Malformed consumer_uuid: {raw_uuid}"))
            })?;
            writes.push(consumer_write(&request, consumer_uuid, data, true)?);
        }
    }
    request
        .state
        .db
        .run(move |connection| domain::reshape(connection, &requested, &writes))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
