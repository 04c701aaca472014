//! Trait operations: custom traits can be created and deleted (not while a
//! provider has them); a provider's traits are replaced as a whole, bumping
//! its generation. Answers to upstream's `objects/trait.py`.

use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage;
use crate::storage::Connection;
use crate::storage::resource_providers::ProviderRow;
use crate::storage::traits::{self as store, TraitRow};

const CUSTOM_PREFIX: &str = "CUSTOM_";

pub fn get(connection: &mut Connection, name: &str) -> Result<TraitRow, DomainError> {
    store::get_by_name(connection, name)?
        .ok_or_else(|| DomainError::not_found(format!("No such trait(s): {name}.")))
}

pub fn delete(connection: &mut Connection, name: &str) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let row = get(connection, name)?;
        if !row.name.starts_with(CUSTOM_PREFIX) {
            return Err(DomainError::bad_request(format!(
                "Cannot delete standard trait {name}."
            )));
        }
        if store::is_associated(connection, row.id)? {
            return Err(DomainError::conflict(
                ErrorCode::Undefined,
                format!("The trait {name} is in use by a resource provider."),
            ));
        }
        store::delete(connection, row.id)?;
        Ok(())
    })
}

/// Looks up trait rows by name; a name that does not exist is a 400
/// listing every missing one.
pub fn resolve_names(
    connection: &mut Connection,
    names: &[String],
) -> Result<Vec<TraitRow>, DomainError> {
    let filter = store::TraitFilter {
        name_in: Some(names.to_vec()),
        ..store::TraitFilter::default()
    };
    let rows = store::list(connection, &filter)?;
    let missing: Vec<&str> = names
        .iter()
        .filter(|name| !rows.iter().any(|row| &row.name == *name))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(rows)
    } else {
        Err(DomainError::bad_request(format!(
            "No such trait {}",
            missing.join(", ")
        )))
    }
}

/// Replaces a provider's traits if its generation is still `generation`.
pub fn set_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
    generation: i64,
    names: &[String],
) -> Result<(ProviderRow, Vec<TraitRow>), DomainError> {
    storage::write_transaction(connection, |connection| {
        let mut provider = providers::find(connection, provider_uuid)?;
        providers::check_generation(&provider, generation, providers::GENERATION_CHANGED)?;
        let rows = resolve_names(connection, names)?;
        let mut ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
        ids.sort_unstable();
        ids.dedup();
        provider.generation =
            store::replace_and_bump(connection, provider.id, provider.generation, &ids)?
                .ok_or_else(concurrent_update)?;
        Ok((provider, rows))
    })
}

/// The compare-and-swap's lost race, as `providers::bump_generation` says it.
fn concurrent_update() -> DomainError {
    DomainError::conflict(
        ErrorCode::ConcurrentUpdate,
        "Another thread concurrently updated the data. Please retry your update",
    )
}

/// Removes every trait of a provider.
pub fn clear_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let provider = providers::find(connection, provider_uuid)?;
        store::replace_for_provider(connection, provider.id, &[])?;
        providers::bump_generation(connection, &provider)?;
        Ok(())
    })
}
