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

/// What one `replace_for_provider_uuid` statement found and did.
#[derive(QueryableByName, Debug)]
pub struct ProviderAggregatesWrite {
    /// The provider's generation as the statement first read it.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub generation: i32,
    /// Its generation after a checked write; `None` when none was done.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    pub written: Option<i32>,
    /// Whether the links were replaced.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub applied: bool,
    /// Whether the statement saw a row for every aggregate. It does not
    /// when another transaction created one of them first, committing
    /// after this statement's snapshot: the statement then writes no
    /// link and can simply be run again.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub complete: bool,
}

/// Makes the aggregates `uuids` (distinct) the aggregates of the provider
/// `uuid`, creating the aggregate rows that do not exist yet: one
/// statement, atomic without a transaction around it, so the write costs
/// one round trip. With `expected` (1.19 on) the provider must be at that
/// generation and the write bumps it; without, the generation is left
/// alone. `None` when there is no such provider; when a condition fails
/// no link is written and the answer says which.
///
/// ```sql
/// WITH provider AS (SELECT id, generation FROM resource_providers WHERE uuid = $1),
///      created AS (INSERT INTO placement_aggregates ... the missing ones,
///                  in uuid order so that two writers creating the same
///                  ones wait for each other instead of deadlocking,
///                  ON CONFLICT DO NOTHING RETURNING id),
///      wanted AS (the existing ids UNION ALL created),
///      bumped AS (UPDATE resource_providers ... WHERE $3 AND generation = $2
///                 AND every aggregate was seen RETURNING ...),
///      target AS (bumped, or the provider when no generation is checked),
///      gone AS (DELETE the links of target not wanted),
///      added AS (INSERT wanted x target ON CONFLICT DO NOTHING)
/// SELECT provider.generation, bumped.generation, target exists, complete
/// ```
pub fn replace_for_provider_uuid(
    connection: &mut Connection,
    uuid: Uuid,
    expected: Option<i64>,
    uuids: &[Uuid],
) -> QueryResult<Option<ProviderAggregatesWrite>> {
    use diesel::sql_types::{Array, BigInt, Bool, Uuid as SqlUuid};
    const SQL: &str = "WITH provider AS ( \
             SELECT id, generation FROM resource_providers WHERE uuid = $1 \
         ), created AS ( \
             INSERT INTO placement_aggregates (uuid) \
             SELECT u FROM unnest($4::uuid[]) u \
             WHERE EXISTS (SELECT 1 FROM provider WHERE NOT $3 OR generation = $2) \
               AND NOT EXISTS (SELECT 1 FROM placement_aggregates a WHERE a.uuid = u) \
             ORDER BY u \
             ON CONFLICT DO NOTHING RETURNING id \
         ), wanted AS ( \
             SELECT id FROM placement_aggregates WHERE uuid = ANY($4) \
             UNION ALL SELECT id FROM created \
         ), complete AS ( \
             SELECT (SELECT count(*) FROM wanted) = cardinality($4::uuid[]) AS complete \
         ), bumped AS ( \
             UPDATE resource_providers rp SET generation = rp.generation + 1, updated_at = now() \
             FROM provider, complete \
             WHERE rp.id = provider.id AND $3 AND rp.generation = $2 AND complete.complete \
             RETURNING rp.id, rp.generation \
         ), target AS ( \
             SELECT id FROM bumped \
             UNION ALL SELECT provider.id FROM provider, complete \
             WHERE NOT $3 AND complete.complete \
         ), gone AS ( \
             DELETE FROM resource_provider_aggregates link USING target \
             WHERE link.resource_provider_id = target.id \
               AND link.aggregate_id NOT IN (SELECT id FROM wanted) \
         ), added AS ( \
             INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id) \
             SELECT target.id, wanted.id FROM target, wanted ON CONFLICT DO NOTHING \
         ) \
         SELECT provider.generation, bumped.generation AS written, \
                EXISTS (SELECT 1 FROM target) AS applied, complete.complete \
         FROM provider CROSS JOIN complete LEFT JOIN bumped ON true";
    let rows: Vec<ProviderAggregatesWrite> = super::prepared::Prepared(
        diesel::sql_query(SQL)
            .bind::<SqlUuid, _>(uuid)
            .bind::<BigInt, _>(expected.unwrap_or_default())
            .bind::<Bool, _>(expected.is_some())
            .bind::<Array<SqlUuid>, _>(uuids),
    )
    .load(connection)?;
    Ok(rows.into_iter().next())
}
