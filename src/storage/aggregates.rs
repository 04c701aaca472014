//! Queries on `placement_aggregates` and `resource_provider_aggregates`.
//! Aggregates have no API of their own: a row is created the first time a
//! provider is put in the aggregate.

use diesel::prelude::*;
use uuid::Uuid;

use super::Connection;
use super::schema::{placement_aggregates, resource_provider_aggregates};

/// The aggregates of one provider, in the order they were first seen.
pub fn list_for_provider(connection: &mut Connection, provider_id: i32) -> QueryResult<Vec<Uuid>> {
    placement_aggregates::table
        .inner_join(resource_provider_aggregates::table)
        .filter(resource_provider_aggregates::resource_provider_id.eq(provider_id))
        .select(placement_aggregates::uuid)
        .order(placement_aggregates::id)
        .load(connection)
}

/// The ids of the aggregates named, creating the rows that do not exist
/// yet. Safe against a concurrent creator: the insert ignores conflicts and
/// the ids are read afterwards.
///
/// ```sql
/// INSERT INTO placement_aggregates (uuid) VALUES ($1), ... ON CONFLICT DO NOTHING;
/// SELECT id FROM placement_aggregates WHERE uuid = ANY($uuids);
/// ```
pub fn ensure(connection: &mut Connection, uuids: &[Uuid]) -> QueryResult<Vec<i32>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<_> = uuids
        .iter()
        .map(|uuid| placement_aggregates::uuid.eq(*uuid))
        .collect();
    diesel::insert_into(placement_aggregates::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(connection)?;
    placement_aggregates::table
        .filter(placement_aggregates::uuid.eq_any(uuids))
        .select(placement_aggregates::id)
        .load(connection)
}

/// Makes `aggregate_ids` the provider's aggregates: links not wanted are
/// removed, missing ones added.
pub fn replace_for_provider(
    connection: &mut Connection,
    provider_id: i32,
    aggregate_ids: &[i32],
) -> QueryResult<()> {
    diesel::delete(
        resource_provider_aggregates::table
            .filter(resource_provider_aggregates::resource_provider_id.eq(provider_id))
            .filter(resource_provider_aggregates::aggregate_id.ne_all(aggregate_ids)),
    )
    .execute(connection)?;
    if aggregate_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = aggregate_ids
        .iter()
        .map(|aggregate_id| {
            (
                resource_provider_aggregates::resource_provider_id.eq(provider_id),
                resource_provider_aggregates::aggregate_id.eq(*aggregate_id),
            )
        })
        .collect();
    diesel::insert_into(resource_provider_aggregates::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(connection)?;
    Ok(())
}
