//! The reshaper: move inventories and allocations between providers in one
//! transaction, as upstream's `objects/reshaper.py`. Inventories are first
//! widened (old and new classes together) so the moved allocations fit,
//! then the allocations are replaced, then the inventories narrowed to
//! what was asked, which refuses to drop a class still allocated.

use uuid::Uuid;

use crate::domain::allocations::{self, ConsumerAllocations, Origin};
use crate::domain::capacity::Limits;
use crate::domain::inventories;
use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage;
use crate::storage::Connection;
use crate::storage::allocations as allocation_store;
use crate::storage::inventories as inventory_store;

/// One provider's requested inventory.
pub struct ProviderInventory {
    pub provider_uuid: String,
    pub generation: i64,
    /// (class name, limits) in the body's order.
    pub records: Vec<(String, Limits)>,
}

/// Applies a reshape atomically.
pub fn reshape(
    connection: &mut Connection,
    requested: &[ProviderInventory],
    writes: &[ConsumerAllocations],
) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        // Every provider the reshape may move a generation of, locked up
        // front in id order as allocation writes lock theirs, so that the
        // two cannot deadlock.
        let provider_uuids: Vec<Uuid> = requested
            .iter()
            .map(|inventory| inventory.provider_uuid.as_str())
            .chain(allocations::named_providers(writes))
            .filter_map(|uuid| Uuid::parse_str(uuid).ok())
            .collect();
        let consumer_uuids: Vec<Uuid> = writes.iter().map(|write| write.consumer_uuid).collect();
        allocation_store::lock_providers(connection, &provider_uuids, &consumer_uuids)?;

        let mut targets = Vec::with_capacity(requested.len());
        for inventory in requested {
            let provider = providers::find(connection, &inventory.provider_uuid).map_err(
                |error| match error {
                    DomainError::NotFound(detail) => DomainError::BadRequest {
                        code: ErrorCode::ProviderNotFound,
                        detail: format!(
                            "Resource provider {} in inventories not found: {detail}",
                            inventory.provider_uuid
                        ),
                    },
                    other => other,
                },
            )?;
            if i64::from(provider.generation) != inventory.generation {
                return Err(DomainError::conflict(
                    ErrorCode::ConcurrentUpdate,
                    format!(
                        "resource provider generation conflict for provider {}: actual: {}, given: {}",
                        inventory.provider_uuid, provider.generation, inventory.generation
                    ),
                ));
            }
            let names: Vec<&str> = inventory
                .records
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            let class_ids = inventories::resolve_classes(connection, &names).map_err(|error| {
                error
                    .not_found_as_bad_request()
                    .prefixed("malformed reshaper data: ")
            })?;
            let records: Vec<(i32, Limits)> = class_ids
                .into_iter()
                .zip(inventory.records.iter().map(|(_, limits)| *limits))
                .collect();
            targets.push((provider, records));
        }

        // Interim inventory: what the provider has, overridden and extended
        // by what was asked, so allocations can move before classes go.
        for (provider, records) in &mut targets {
            if records.is_empty() {
                continue;
            }
            let mut interim: Vec<(i32, Limits)> =
                inventory_store::list_for_provider(connection, provider.id)?
                    .iter()
                    .map(|(row, _)| (row.resource_class_id, inventories::limits_of(row)))
                    .filter(|(class_id, _)| !records.iter().any(|(id, _)| id == class_id))
                    .collect();
            interim.extend(records.iter().copied());
            provider.generation = inventories::replace_all_in(connection, provider, &interim)
                .map_err(|error| {
                    error
                        .not_found_as_bad_request()
                        .prefixed("update conflict: ")
                })?;
        }

        allocations::replace_in_transaction(connection, writes, Origin::Batch).map_err(
            |error| match error {
                DomainError::Conflict {
                    code: ErrorCode::ConcurrentUpdate,
                    detail,
                } => DomainError::Conflict {
                    code: ErrorCode::ConcurrentUpdate,
                    detail,
                },
                other => other,
            },
        )?;

        for (provider, records) in &mut targets {
            // The allocation write bumped the generation of the providers
            // it touched: continue from the current one.
            let current = providers::find(connection, &provider.uuid.to_string())?;
            provider.generation = current.generation;
            inventories::replace_all_in(connection, provider, records).map_err(
                |error| match error {
                    DomainError::Conflict {
                        code: ErrorCode::InventoryInUse,
                        detail,
                    } => DomainError::Conflict {
                        code: ErrorCode::InventoryInUse,
                        detail: format!("update conflict: {detail}"),
                    },
                    other => other
                        .not_found_as_bad_request()
                        .prefixed("update conflict: "),
                },
            )?;
        }
        Ok(())
    })
}
