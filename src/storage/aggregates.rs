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
/// the ids are read afterwards. When every one exists (the common case:
/// aggregates are shared) only the first read runs. `uuids` are distinct.
///
/// ```sql
/// SELECT id FROM placement_aggregates WHERE uuid = ANY($uuids);
/// -- when some are missing:
/// INSERT INTO placement_aggregates (uuid) VALUES ($1), ... ON CONFLICT DO NOTHING;
/// SELECT id FROM placement_aggregates WHERE uuid = ANY($uuids);
/// ```
pub fn ensure(connection: &mut Connection, uuids: &[Uuid]) -> QueryResult<Vec<i32>> {
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<i32> = placement_aggregates::table
        .filter(placement_aggregates::uuid.eq_any(uuids))
        .select(placement_aggregates::id)
        .load(connection)?;
    if known.len() == uuids.len() {
        return Ok(known);
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

/// Makes `aggregate_ids` the provider's aggregates and, when `expected`
/// is given, moves the provider from that generation on by
/// compare-and-swap, in one statement. `Some(None)` when the generation
/// moved (the caller rolls back); `None` when no bump was asked.
///
/// ```sql
/// WITH gone AS (
///     DELETE FROM resource_provider_aggregates
///     WHERE resource_provider_id = $1 AND aggregate_id <> ALL($4)
/// ), added AS (
///     INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id)
///     SELECT $1, a FROM unnest($4::integer[]) a ON CONFLICT DO NOTHING
/// )
/// UPDATE resource_providers SET generation = $2 + 1, updated_at = now()
/// WHERE id = $1 AND generation = $2 AND $3 RETURNING generation
/// ```
pub fn replace_and_bump(
    connection: &mut Connection,
    provider_id: i32,
    expected: Option<i32>,
    aggregate_ids: &[i32],
) -> QueryResult<Option<Option<i32>>> {
    use diesel::sql_types::{Array, Bool, Integer};
    const SQL: &str = "WITH gone AS ( \
             DELETE FROM resource_provider_aggregates \
             WHERE resource_provider_id = $1 AND aggregate_id <> ALL($4) \
         ), added AS ( \
             INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id) \
             SELECT $1, a FROM unnest($4::integer[]) a ON CONFLICT DO NOTHING \
         ) \
         UPDATE resource_providers SET generation = $2 + 1, updated_at = now() \
         WHERE id = $1 AND generation = $2 AND $3 RETURNING generation";
    let rows: Vec<super::resource_providers::GenerationRow> = super::prepared::Prepared(
        diesel::sql_query(SQL)
            .bind::<Integer, _>(provider_id)
            .bind::<Integer, _>(expected.unwrap_or_default())
            .bind::<Bool, _>(expected.is_some())
            .bind::<Array<Integer>, _>(aggregate_ids),
    )
    .load(connection)?;
    Ok(expected.map(|_| rows.first().map(|row| row.generation)))
}
