//! Trait operations: custom traits can be created and deleted (not while a
//! provider has them); a provider's traits are replaced as a whole, bumping
//! its generation. Answers to upstream's `objects/trait.py`.

use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage;
use crate::storage::Connection;
use crate::storage::resource_providers::ProviderRow;
use crate::storage::traits as store;
pub use crate::storage::traits::{TraitFilter, TraitRow};

const CUSTOM_PREFIX: &str = "CUSTOM_";

/// The traits `filter` selects.
pub fn list(
    connection: &mut Connection,
    filter: &TraitFilter,
) -> Result<Vec<TraitRow>, DomainError> {
    Ok(store::list(connection, filter)?)
}

/// A provider and its traits; 404 (in upstream's doubled words) for an
/// unknown provider.
pub fn list_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(ProviderRow, Vec<TraitRow>), DomainError> {
    let provider = providers::find(connection, provider_uuid).map_err(|error| match error {
        DomainError::NotFound(detail) => DomainError::not_found(format!("{detail}: {detail}")),
        other => other,
    })?;
    let rows = store::list_for_provider(connection, provider.id)?;
    Ok((provider, rows))
}

pub fn get(connection: &mut Connection, name: &str) -> Result<TraitRow, DomainError> {
    store::get_by_name(connection, name)?
        .ok_or_else(|| DomainError::not_found(format!("No such trait(s): {name}.")))
}

/// Creates a custom trait unless it exists: the row, and whether this call
/// created it. A trait deleted between finding it and reading it is
/// created again.
pub fn ensure(connection: &mut Connection, name: &str) -> Result<(TraitRow, bool), DomainError> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        if let Some(found) = store::ensure(connection, name)? {
            return Ok(found);
        }
    }
    Err(DomainError::concurrent_update())
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

/// 400 listing the `names` that have no row in `rows`, each once (upstream
/// names the difference of two sets).
fn missing_names(names: &[String], rows: &[TraitRow]) -> Result<(), DomainError> {
    let mut missing: Vec<&str> = Vec::new();
    for name in names {
        if !rows.iter().any(|row| &row.name == name) && !missing.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DomainError::bad_request(format!(
            "No such trait {}",
            missing.join(", ")
        )))
    }
}

/// Replaces a provider's traits if its generation is still `generation`.
/// Returns the provider's new generation and the trait rows. Checks in
/// upstream's order: the provider (404), its generation (409), the names
/// (400), then the compare-and-swap (409).
pub fn set_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
    generation: i64,
    names: &[String],
) -> Result<(i32, Vec<TraitRow>), DomainError> {
    let uuid = providers::parse_uuid(provider_uuid)?;
    let mut distinct = names.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let outcome = store::replace_for_provider_uuid(connection, uuid, generation, &distinct)?
        .ok_or_else(|| providers::not_found(provider_uuid))?;
    providers::check_generation(
        outcome.generation,
        generation,
        providers::GENERATION_CHANGED,
    )?;
    missing_names(names, &outcome.traits)?;
    let written = outcome.written.ok_or_else(DomainError::concurrent_update)?;
    Ok((written, outcome.traits))
}

/// Removes every trait of a provider.
pub fn clear_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let provider = providers::find_for_write(connection, provider_uuid)?;
        // As upstream's `set_traits([])`: no traits, no change, no bump.
        if store::replace_for_provider(connection, provider.id, &[])? > 0 {
            providers::bump_generation(connection, &provider)?;
        }
        Ok(())
    })
}
