//! Resource provider operations (upstream `objects/resource_provider.py`).

use uuid::Uuid;

use crate::errors::{DomainError, ErrorCode};
use crate::storage::Connection;
use crate::storage::resource_providers::{self as store, ProviderRow};

/// The provider named by a path's `{uuid}`; 404 when absent or not a UUID.
pub fn find(connection: &mut Connection, uuid: &str) -> Result<ProviderRow, DomainError> {
    let not_found =
        || DomainError::not_found(format!("No resource provider with uuid {uuid} found"));
    let parsed = Uuid::parse_str(uuid).map_err(|_| not_found())?;
    store::get_by_uuid(connection, parsed)?.ok_or_else(not_found)
}

/// The generation compare-and-swap for a provider this transaction changed.
/// A lost race is `placement.concurrent_update`.
pub fn bump_generation(
    connection: &mut Connection,
    provider: &ProviderRow,
) -> Result<i32, DomainError> {
    store::bump_generation(connection, provider.id, provider.generation)?.ok_or_else(|| {
        DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            "Another thread concurrently updated the data. Please retry your update",
        )
    })
}

/// 409 unless the client's generation is the provider's current one.
pub fn check_generation(provider: &ProviderRow, expected: i64) -> Result<(), DomainError> {
    if i64::from(provider.generation) == expected {
        Ok(())
    } else {
        Err(DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            "Resource provider's generation already changed. Please update the generation and try again.",
        ))
    }
}
