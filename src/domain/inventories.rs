//! Inventory operations: a provider's inventory is added, changed and
//! removed one class at a time or replaced as a whole, each write bumping
//! the provider's generation in the same transaction. Inventory of a class
//! with allocations cannot be removed; it may shrink below its usage (that
//! is only logged). Answers to upstream's `objects/inventory.py` and the
//! inventory parts of `objects/resource_provider.py`; the error texts are
//! those of `handlers/inventory.py`, which wraps the objects' exceptions.

use crate::domain::capacity::Limits;
use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage;
use crate::storage::inventories::{self as store, InventoryRow, InventoryValues};
use crate::storage::resource_classes as classes;
use crate::storage::resource_providers::ProviderRow;
use crate::storage::{Connection, is_unique_violation};

/// The largest integer an inventory field may hold (and `max_unit`'s
/// default).
pub const MAX_INT: i64 = 2_147_483_647;

/// One inventory record as a client writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub resource_class: String,
    pub limits: Limits,
}

/// Whether `reserved` may equal `total` (from microversion 1.26) or must
/// stay below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReservedRule {
    BelowTotal,
    UpToTotal,
}

/// The limits of a stored inventory.
pub fn limits_of(row: &InventoryRow) -> Limits {
    Limits {
        total: row.total,
        reserved: row.reserved,
        min_unit: row.min_unit,
        max_unit: row.max_unit,
        step_size: row.step_size,
        allocation_ratio: row.allocation_ratio,
    }
}

/// The limits of inventory values as stored.
pub fn limits_of_values(values: &InventoryValues) -> Limits {
    Limits {
        total: values.total,
        reserved: values.reserved,
        min_unit: values.min_unit,
        max_unit: values.max_unit,
        step_size: values.step_size,
        allocation_ratio: values.allocation_ratio,
    }
}

pub fn values_of(limits: &Limits) -> InventoryValues {
    InventoryValues {
        total: limits.total,
        reserved: limits.reserved,
        min_unit: limits.min_unit,
        max_unit: limits.max_unit,
        step_size: limits.step_size,
        allocation_ratio: limits.allocation_ratio,
    }
}

/// Capacity as upstream counts it: truncated to an integer.
fn whole_capacity(limits: &Limits) -> f64 {
    limits.capacity().trunc()
}

/// Refuses an inventory whose capacity is negative, or zero before 1.26.
/// The text is upstream's `InvalidInventoryCapacity` (callers add their
/// prefix).
pub fn check_capacity(
    provider_uuid: &str,
    inventory: &Inventory,
    rule: ReservedRule,
) -> Result<(), DomainError> {
    let capacity = whole_capacity(&inventory.limits);
    let (refused, relation) = match rule {
        ReservedRule::BelowTotal => (capacity <= 0.0, "greater than or equal to"),
        ReservedRule::UpToTotal => (capacity < 0.0, "greater than"),
    };
    if refused {
        Err(DomainError::bad_request(format!(
            "Invalid inventory for '{}' on resource provider '{provider_uuid}'. \
             The reserved value is {relation} total.",
            inventory.resource_class
        )))
    } else {
        Ok(())
    }
}

/// The ids of the named classes, in order; the first unknown name is a
/// `NotFound` with upstream's `ResourceClassNotFound` text (callers decide
/// its status).
pub fn resolve_classes(
    connection: &mut Connection,
    names: &[&str],
) -> Result<Vec<i32>, DomainError> {
    let ids = store::class_ids_by_name(connection, names)?;
    names
        .iter()
        .map(|name| {
            ids.get(*name)
                .copied()
                .ok_or_else(|| DomainError::not_found(format!("No such resource class {name}.")))
        })
        .collect()
}

/// The inventory handlers' text for a stale provider generation.
const GENERATION_CONFLICT: &str = "resource provider generation conflict";

/// Logs, as upstream does, the classes whose usage (`usage`, by class)
/// now exceeds the capacity just written (`records`). Such writes are
/// allowed.
fn warn_over_capacity(provider_uuid: &uuid::Uuid, records: &[(i32, Limits)], usage: &[(i32, i64)]) {
    for (class_id, used) in usage {
        let over = records
            .iter()
            .find(|(id, _)| id == class_id)
            .is_some_and(|(_, limits)| *used as f64 > whole_capacity(limits));
        if over {
            tracing::warn!(
                resource_provider.uuid = %provider_uuid,
                resource_class.id = class_id,
                "Resource provider is now over-capacity"
            );
        }
    }
}

/// A provider and its inventories (with class names).
pub fn list(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(ProviderRow, Vec<(InventoryRow, String)>), DomainError> {
    let provider = providers::find(connection, provider_uuid)?;
    let rows = store::list_for_provider(connection, provider.id)?;
    Ok((provider, rows))
}

/// A provider and its inventory of one class, if any.
pub fn get(
    connection: &mut Connection,
    provider_uuid: &str,
    class_name: &str,
) -> Result<(ProviderRow, Option<InventoryRow>), DomainError> {
    let provider = providers::find(connection, provider_uuid)?;
    let row = store::get_for_provider(connection, provider.id, class_name)?;
    Ok((provider, row))
}

/// Adds inventory of a class the provider has none of (POST). Returns the
/// provider at its new generation and the new row.
pub fn create(
    connection: &mut Connection,
    provider_uuid: &str,
    inventory: &Inventory,
    rule: ReservedRule,
) -> Result<(ProviderRow, InventoryRow), DomainError> {
    storage::write_transaction(connection, |connection| {
        let mut provider = providers::find_for_write(connection, provider_uuid)?;
        let refused = format!(
            "Unable to create inventory for resource provider {}: ",
            provider.uuid
        );
        let conflict = "Update conflict: ";
        check_capacity(&provider.uuid.to_string(), inventory, rule)
            .map_err(|error| DomainError::prefixed(error, &refused))?;
        let class_id = resolve_classes(connection, &[inventory.resource_class.as_str()])
            .map_err(|error| DomainError::prefixed(error.not_found_as_bad_request(), &refused))?[0];
        let row = match store::insert(
            connection,
            provider.id,
            class_id,
            &values_of(&inventory.limits),
        ) {
            Ok(row) => row,
            Err(error) if is_unique_violation(&error) => {
                return Err(DomainError::conflict(
                    ErrorCode::ConcurrentUpdate,
                    format!(
                        "{conflict}Inventory for '{}' on resource provider '{}' already exists.",
                        inventory.resource_class, provider.uuid
                    ),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        provider.generation = providers::bump_generation(connection, &provider)
            .map_err(|error| DomainError::prefixed(error, conflict))?;
        Ok((provider, row))
    })
}

/// Changes the provider's existing inventory of one class (PUT of one
/// class), if the provider is still at `generation`.
pub fn update(
    connection: &mut Connection,
    provider_uuid: &str,
    generation: i64,
    inventory: &Inventory,
    rule: ReservedRule,
) -> Result<(ProviderRow, InventoryRow), DomainError> {
    storage::write_transaction(connection, |connection| {
        let mut provider = providers::find_for_write(connection, provider_uuid)?;
        providers::check_generation(provider.generation, generation, GENERATION_CONFLICT)?;
        check_capacity(&provider.uuid.to_string(), inventory, rule).map_err(|error| {
            DomainError::prefixed(
                error,
                &format!(
                    "Unable to update inventory for resource provider {}: ",
                    provider.uuid
                ),
            )
        })?;
        let class_id = resolve_classes(connection, &[inventory.resource_class.as_str()])?[0];
        let Some(row) = store::update(
            connection,
            provider.id,
            class_id,
            &values_of(&inventory.limits),
        )?
        else {
            return Err(DomainError::bad_request(format!(
                "No inventory record with resource class for resource provider {}: \
                 No inventory of class {} found.",
                provider.uuid, inventory.resource_class
            )));
        };
        let usage = store::usage_by_class(connection, provider.id, &[class_id])?;
        warn_over_capacity(&provider.uuid, &[(class_id, inventory.limits)], &usage);
        provider.generation = providers::bump_generation(connection, &provider)
            .map_err(|error| DomainError::prefixed(error, "update conflict: "))?;
        Ok((provider, row))
    })
}

/// Replaces the provider's whole inventory (PUT of all classes), if the
/// provider is still at `generation`. Returns its new generation. Errors
/// in upstream's order: the provider (404), its generation (409), the
/// records (400: capacity, unknown class), a removed class in use (409),
/// the compare-and-swap (409). The write is one statement
/// (`store::replace_all_for_uuid`); a bad record is answered after a read
/// of the provider, which the errors before it need.
pub fn replace_all(
    connection: &mut Connection,
    provider_uuid: &str,
    generation: i64,
    inventories: &[Inventory],
    rule: ReservedRule,
) -> Result<i32, DomainError> {
    let uuid = providers::parse_uuid(provider_uuid)?;
    let records = match records_of(connection, &uuid.to_string(), inventories, rule) {
        Ok(records) => records,
        Err(error) => {
            let provider = providers::find(connection, provider_uuid)?;
            providers::check_generation(provider.generation, generation, GENERATION_CONFLICT)?;
            return Err(error);
        }
    };
    let values: Vec<(i32, InventoryValues)> = records
        .iter()
        .map(|(class_id, limits)| (*class_id, values_of(limits)))
        .collect();
    let outcome = store::replace_all_for_uuid(connection, uuid, generation, &values)?
        .ok_or_else(|| providers::not_found(provider_uuid))?;
    providers::check_generation(outcome.generation, generation, GENERATION_CONFLICT)?;
    written_generation(connection, &uuid, &records, outcome)
        .map_err(|error| DomainError::prefixed(error, "update conflict: "))
}

/// The new generation from the answer of a whole-inventory write whose
/// generation matched, or why nothing was written: a class left out that
/// is in use, or a lost compare-and-swap. Logs classes now over capacity.
fn written_generation(
    connection: &mut Connection,
    provider_uuid: &uuid::Uuid,
    records: &[(i32, Limits)],
    outcome: store::ReplaceAllOutcome,
) -> Result<i32, DomainError> {
    if !outcome.in_use.is_empty() {
        return Err(in_use_error(connection, &outcome.in_use, provider_uuid)?);
    }
    let usage: Vec<(i32, i64)> = outcome
        .used_classes
        .iter()
        .copied()
        .zip(outcome.used_amounts.iter().copied())
        .collect();
    warn_over_capacity(provider_uuid, records, &usage);
    outcome.written.ok_or_else(DomainError::concurrent_update)
}

/// The checked records of a whole-inventory write, with their class ids.
fn records_of(
    connection: &mut Connection,
    provider_uuid: &str,
    inventories: &[Inventory],
    rule: ReservedRule,
) -> Result<Vec<(i32, Limits)>, DomainError> {
    for inventory in inventories {
        check_capacity(provider_uuid, inventory, rule).map_err(|error| {
            DomainError::prefixed(
                error,
                &format!("Unable to update inventory for resource provider {provider_uuid}: "),
            )
        })?;
    }
    let names: Vec<&str> = inventories
        .iter()
        .map(|inventory| inventory.resource_class.as_str())
        .collect();
    let class_ids = resolve_classes(connection, &names).map_err(|error| {
        DomainError::prefixed(
            error.not_found_as_bad_request(),
            &format!("Unknown resource class in inventory for resource provider {provider_uuid}: "),
        )
    })?;
    Ok(class_ids
        .into_iter()
        .zip(inventories.iter().map(|inventory| inventory.limits))
        .collect())
}

/// Replaces a provider's whole inventory with `records` (class id and
/// limits) inside the caller's transaction, and bumps the provider's
/// generation from `provider.generation`. Returns the new generation; a
/// caller replacing twice in one transaction passes the provider with that
/// generation the second time.
///
/// Capacity is not checked here (the reshaper does not check it). Errors,
/// with upstream's exception texts and no handler prefix: 409
/// `placement.inventory.inuse` when a class to remove has allocations
/// ("Inventory for 'A, B' on resource provider 'U' in use."), 409
/// `placement.concurrent_update` when the generation moved.
pub fn replace_all_in(
    connection: &mut Connection,
    provider: &ProviderRow,
    records: &[(i32, Limits)],
) -> Result<i32, DomainError> {
    let values: Vec<(i32, InventoryValues)> = records
        .iter()
        .map(|(class_id, limits)| (*class_id, values_of(limits)))
        .collect();
    let expected = i64::from(provider.generation);
    let outcome = store::replace_all_for_uuid(connection, provider.uuid, expected, &values)?
        .ok_or_else(|| providers::not_found(&provider.uuid.to_string()))?;
    if outcome.generation != provider.generation {
        return Err(DomainError::concurrent_update());
    }
    written_generation(connection, &provider.uuid, records, outcome)
}

/// 409 `placement.inventory.inuse` naming the classes `class_ids`.
fn in_use_error(
    connection: &mut Connection,
    class_ids: &[i32],
    provider_uuid: &uuid::Uuid,
) -> Result<DomainError, DomainError> {
    let names = classes::names_by_id(connection)?;
    let in_use: Vec<&str> = class_ids
        .iter()
        .map(|class_id| names.get(class_id).map_or("", String::as_str))
        .collect();
    Ok(DomainError::conflict(
        ErrorCode::InventoryInUse,
        format!(
            "Inventory for '{}' on resource provider '{provider_uuid}' in use.",
            in_use.join(", ")
        ),
    ))
}

/// Removes the provider's inventory of one class, unless allocated.
pub fn delete(
    connection: &mut Connection,
    provider_uuid: &str,
    class_name: &str,
) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let provider = providers::find_for_write(connection, provider_uuid)?;
        let not_found = format!("No inventory of class {class_name} found for delete: ");
        let conflict = format!("Unable to delete inventory of class {class_name}: ");
        let class_id = resolve_classes(connection, &[class_name])
            .map_err(|error| DomainError::prefixed(error, &not_found))?[0];
        if !store::usage_by_class(connection, provider.id, &[class_id])?.is_empty() {
            // Upstream answers this one with `concurrent_update`.
            return Err(DomainError::conflict(
                ErrorCode::ConcurrentUpdate,
                format!(
                    "{conflict}Inventory for '{class_name}' on resource provider '{}' in use.",
                    provider.uuid
                ),
            ));
        }
        if store::delete(connection, provider.id, &[class_id])? == 0 {
            return Err(DomainError::not_found(format!(
                "{not_found}No inventory of class {class_name} found for delete"
            )));
        }
        providers::bump_generation(connection, &provider)
            .map_err(|error| DomainError::prefixed(error, &conflict))?;
        Ok(())
    })
}

/// Removes all of a provider's inventory (1.5), unless any is allocated.
pub fn delete_all(connection: &mut Connection, provider_uuid: &str) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let provider = providers::find(connection, provider_uuid)?;
        replace_all_in(connection, &provider, &[]).map_err(|error| match error {
            DomainError::Conflict {
                code: ErrorCode::ConcurrentUpdate,
                ..
            } => DomainError::conflict(
                ErrorCode::ConcurrentUpdate,
                format!(
                    "Unable to delete inventory for resource provider {} because the \
                     inventory was updated by another process. Please retry your request.",
                    provider.uuid
                ),
            ),
            other => other,
        })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(total: i64, reserved: i64, allocation_ratio: f64) -> Inventory {
        Inventory {
            resource_class: "DISK_GB".to_owned(),
            limits: Limits {
                total,
                reserved,
                min_unit: 1,
                max_unit: MAX_INT,
                step_size: 1,
                allocation_ratio,
            },
        }
    }

    fn refused(inventory: &Inventory, rule: ReservedRule) -> Option<String> {
        check_capacity("u", inventory, rule)
            .err()
            .map(|error| error.to_string())
    }

    #[test]
    fn reserved_equal_to_total_only_from_1_26() {
        let full = inventory(253, 253, 1.0);
        assert_eq!(
            refused(&full, ReservedRule::BelowTotal).as_deref(),
            Some(
                "Invalid inventory for 'DISK_GB' on resource provider 'u'. \
                 The reserved value is greater than or equal to total."
            )
        );
        assert_eq!(refused(&full, ReservedRule::UpToTotal), None);
    }

    #[test]
    fn reserved_above_total_always_refused() {
        let over = inventory(253, 512, 1.0);
        assert!(refused(&over, ReservedRule::BelowTotal).is_some());
        assert_eq!(
            refused(&over, ReservedRule::UpToTotal).as_deref(),
            Some(
                "Invalid inventory for 'DISK_GB' on resource provider 'u'. \
                 The reserved value is greater than total."
            )
        );
    }

    #[test]
    fn capacity_is_truncated_as_upstream() {
        // (2 - 1) * 0.5 = 0.5, which upstream's int() makes 0.
        assert!(refused(&inventory(2, 1, 0.5), ReservedRule::BelowTotal).is_some());
        assert_eq!(
            refused(&inventory(4, 1, 0.5), ReservedRule::BelowTotal),
            None
        );
    }

    #[test]
    fn prefixes_keep_the_kind() {
        let error = DomainError::not_found("No such resource class X.").prefixed("p: ");
        assert!(
            matches!(&error, DomainError::NotFound(detail) if detail == "p: No such resource class X.")
        );
        let error = error.not_found_as_bad_request();
        assert!(matches!(error, DomainError::BadRequest { .. }));
    }
}
