//! A provider's aggregates: read and replaced as a whole. From 1.19 the
//! write carries the provider generation and bumps it. Answers to
//! upstream's `objects/resource_provider.py` (`get_aggregates`,
//! `_set_aggregates`).

use uuid::Uuid;

use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage;
use crate::storage::Connection;
use crate::storage::aggregates as store;
use crate::storage::resource_providers::ProviderRow;

/// The provider and its aggregates.
pub fn list_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(ProviderRow, Vec<Uuid>), DomainError> {
    let provider = providers::find(connection, provider_uuid)?;
    let aggregates = store::list_for_provider(connection, provider.id)?;
    Ok((provider, aggregates))
}

/// Replaces the aggregates of `provider`. With `generation` (1.19 on) the
/// client's generation must be current and the write bumps it; without,
/// the generation is left alone, as upstream does before 1.19.
pub fn set_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
    aggregates: &[Uuid],
    generation: Option<i64>,
) -> Result<ProviderRow, DomainError> {
    storage::write_transaction(connection, |connection| {
        let mut provider = providers::find(connection, provider_uuid)?;
        if let Some(expected) = generation {
            providers::check_generation(&provider, expected, providers::GENERATION_CHANGED)?;
        }
        let ids = store::ensure(connection, aggregates)?;
        let expected = generation.map(|_| provider.generation);
        if let Some(bumped) = store::replace_and_bump(connection, provider.id, expected, &ids)? {
            provider.generation = bumped.ok_or_else(|| {
                DomainError::conflict(
                    ErrorCode::ConcurrentUpdate,
                    "Another thread concurrently updated the data. Please retry your update",
                )
            })?;
        }
        Ok(provider)
    })
}
