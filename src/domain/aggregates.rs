//! A provider's aggregates: read and replaced as a whole. From 1.19 the
//! write carries the provider generation and bumps it. Answers to
//! upstream's `objects/resource_provider.py` (`get_aggregates`,
//! `_set_aggregates`).

use uuid::Uuid;

use crate::domain::resource_providers as providers;
use crate::errors::DomainError;
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

/// How often a write whose new aggregate another writer created at the
/// same moment is run again; one more run sees that row.
const CREATION_RACE_RETRIES: usize = 3;

/// Replaces the aggregates of the provider. With `generation` (1.19 on)
/// the client's generation must be current and the write bumps it;
/// without, the generation is left alone, as upstream does before 1.19.
/// Returns the provider's generation after the write.
pub fn set_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
    aggregates: &[Uuid],
    generation: Option<i64>,
) -> Result<i32, DomainError> {
    let uuid = providers::parse_uuid(provider_uuid)?;
    let mut distinct = aggregates.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    for _ in 0..CREATION_RACE_RETRIES {
        let outcome = store::replace_for_provider_uuid(connection, uuid, generation, &distinct)?
            .ok_or_else(|| providers::not_found(provider_uuid))?;
        if let Some(expected) = generation {
            providers::check_generation(
                outcome.generation,
                expected,
                providers::GENERATION_CHANGED,
            )?;
        }
        if !outcome.complete {
            continue;
        }
        return match (generation, outcome.written) {
            (None, _) if outcome.applied => Ok(outcome.generation),
            (Some(_), Some(written)) => Ok(written),
            _ => Err(DomainError::concurrent_update()),
        };
    }
    Err(DomainError::concurrent_update())
}
