//! Queries on `allocations`, and the reads an allocation write needs about
//! providers and their inventories, each batched over every provider and
//! class the write touches.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::Connection;
use super::inventories::{InventoryValues, NumberColumns};
use super::prepared::Prepared;
use super::resource_providers::ProviderRow;
use super::schema::{
    allocations, consumer_types, consumers, inventories, projects, resource_classes,
    resource_providers, users,
};

/// One allocation of a consumer, with what `GET /allocations/{uuid}` shows.
#[derive(Queryable, Debug)]
pub struct ConsumerAllocationRow {
    pub provider_uuid: Uuid,
    pub provider_generation: i32,
    pub resource_class: String,
    pub used: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub consumer_generation: i32,
    pub project_external_id: String,
    pub user_external_id: String,
    pub consumer_type: Option<String>,
}

/// The allocations of one consumer.
///
/// ```sql
/// SELECT rp.uuid, rp.generation, rc.name, a.used, a.created_at, a.updated_at,
///        c.generation, p.external_id, u.external_id, ct.name
/// FROM allocations a
/// JOIN resource_providers rp ON rp.id = a.resource_provider_id
/// JOIN resource_classes rc ON rc.id = a.resource_class_id
/// JOIN consumers c ON c.uuid = a.consumer_id
/// JOIN projects p ON p.id = c.project_id
/// JOIN users u ON u.id = c.user_id
/// LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id
/// WHERE a.consumer_id = $1
/// ```
pub fn list_for_consumer(
    connection: &mut Connection,
    consumer_uuid: Uuid,
) -> QueryResult<Vec<ConsumerAllocationRow>> {
    allocations::table
        .inner_join(resource_providers::table)
        .inner_join(resource_classes::table)
        .inner_join(consumers::table.on(consumers::uuid.eq(allocations::consumer_id)))
        .inner_join(projects::table.on(projects::id.eq(consumers::project_id)))
        .inner_join(users::table.on(users::id.eq(consumers::user_id)))
        .left_join(
            consumer_types::table.on(consumer_types::id
                .nullable()
                .eq(consumers::consumer_type_id)),
        )
        .filter(allocations::consumer_id.eq(consumer_uuid))
        .select((
            resource_providers::uuid,
            resource_providers::generation,
            resource_classes::name,
            allocations::used,
            allocations::created_at,
            allocations::updated_at,
            consumers::generation,
            projects::external_id,
            users::external_id,
            consumer_types::name.nullable(),
        ))
        .order(allocations::id)
        .load(connection)
}

/// One allocation against a provider, with its consumer.
#[derive(Queryable, Debug)]
pub struct ProviderAllocationRow {
    pub consumer_uuid: Uuid,
    pub resource_class: String,
    pub used: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub consumer_generation: i32,
}

/// The allocations against one provider.
///
/// ```sql
/// SELECT c.uuid, rc.name, a.used, a.created_at, a.updated_at, c.generation
/// FROM allocations a
/// JOIN resource_classes rc ON rc.id = a.resource_class_id
/// JOIN consumers c ON c.uuid = a.consumer_id
/// WHERE a.resource_provider_id = $1
/// ```
pub fn list_for_provider(
    connection: &mut Connection,
    provider_id: i32,
) -> QueryResult<Vec<ProviderAllocationRow>> {
    allocations::table
        .inner_join(resource_classes::table)
        .inner_join(consumers::table.on(consumers::uuid.eq(allocations::consumer_id)))
        .filter(allocations::resource_provider_id.eq(provider_id))
        .select((
            consumers::uuid,
            resource_classes::name,
            allocations::used,
            allocations::created_at,
            allocations::updated_at,
            consumers::generation,
        ))
        .order(allocations::id)
        .load(connection)
}

/// An allocation row reduced to what a rewrite needs.
#[derive(Queryable, Clone, Debug)]
pub struct AllocationRow {
    pub resource_provider_id: i32,
    pub consumer_id: Uuid,
    pub resource_class_id: i32,
    pub used: i64,
}

/// The current allocations of some consumers.
pub fn list_for_consumers(
    connection: &mut Connection,
    consumer_uuids: &[Uuid],
) -> QueryResult<Vec<AllocationRow>> {
    allocations::table
        .filter(allocations::consumer_id.eq_any(consumer_uuids))
        .select((
            allocations::resource_provider_id,
            allocations::consumer_id,
            allocations::resource_class_id,
            allocations::used,
        ))
        .order(allocations::id)
        .load(connection)
}

pub fn delete_for_consumers(
    connection: &mut Connection,
    consumer_uuids: &[Uuid],
) -> QueryResult<usize> {
    diesel::delete(allocations::table.filter(allocations::consumer_id.eq_any(consumer_uuids)))
        .execute(connection)
}

#[derive(Insertable, Debug)]
#[diesel(table_name = allocations)]
pub struct NewAllocation {
    pub resource_provider_id: i32,
    pub consumer_id: Uuid,
    pub resource_class_id: i32,
    pub used: i64,
}

pub fn insert_all(connection: &mut Connection, rows: &[NewAllocation]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(allocations::table)
        .values(rows)
        .execute(connection)
}

/// Providers by uuid (with their generation at the time of the read).
pub fn providers_by_uuids(
    connection: &mut Connection,
    uuids: &[Uuid],
) -> QueryResult<Vec<ProviderRow>> {
    resource_providers::table
        .filter(resource_providers::uuid.eq_any(uuids))
        .select(ProviderRow::as_select())
        .load(connection)
}

/// Providers by id.
pub fn providers_by_ids(connection: &mut Connection, ids: &[i32]) -> QueryResult<Vec<ProviderRow>> {
    resource_providers::table
        .filter(resource_providers::id.eq_any(ids))
        .select(ProviderRow::as_select())
        .load(connection)
}

/// Locks, until the transaction ends and in id order, the rows of the
/// providers a write names and of those the written consumers now have
/// allocations against: every provider the write may move a generation
/// of, taken in one order by every writer, so concurrent writers queue
/// instead of deadlocking. A write that holds them reads usage no other
/// claim can change before its commit: it does not lose the generation
/// compare-and-swap to a concurrent claim on the same provider, so hot
/// providers cost one attempt per claim instead of a retry storm. Unknown
/// uuids lock nothing. Answers the ids locked.
///
/// ```sql
/// SELECT id FROM resource_providers
/// WHERE id IN (SELECT id FROM resource_providers WHERE uuid = ANY($1)
///              UNION SELECT resource_provider_id FROM allocations
///                    WHERE consumer_id = ANY($2))
/// ORDER BY id FOR NO KEY UPDATE
/// ```
pub fn lock_providers(
    connection: &mut Connection,
    provider_uuids: &[Uuid],
    consumer_uuids: &[Uuid],
) -> QueryResult<Vec<i32>> {
    // Loaded, not executed: run through `execute` it was planned again on
    // every call (pg_stat_statements); loaded, once per session.
    // The union (not an OR) keeps both lookups on their indexes.
    let locked: Vec<LockedProvider> = Prepared(
        diesel::sql_query(
            "SELECT id FROM resource_providers \
             WHERE id IN (SELECT id FROM resource_providers WHERE uuid = ANY($1) \
                          UNION SELECT resource_provider_id FROM allocations \
                                WHERE consumer_id = ANY($2)) \
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind::<Array<SqlUuid>, _>(provider_uuids)
        .bind::<Array<SqlUuid>, _>(consumer_uuids),
    )
    .load(connection)?;
    Ok(locked.into_iter().map(|row| row.id).collect())
}

#[derive(QueryableByName)]
struct LockedProvider {
    #[diesel(sql_type = Integer)]
    id: i32,
}

/// The limits of one inventory record.
#[derive(Queryable, Clone, Debug)]
pub struct InventoryLimitsRow {
    pub resource_provider_id: i32,
    pub resource_class_id: i32,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

/// The inventories of the given providers (every class).
pub fn inventories_of(
    connection: &mut Connection,
    provider_ids: &[i32],
) -> QueryResult<Vec<InventoryLimitsRow>> {
    inventories::table
        .filter(inventories::resource_provider_id.eq_any(provider_ids))
        .select((
            inventories::resource_provider_id,
            inventories::resource_class_id,
            inventories::total,
            inventories::reserved,
            inventories::min_unit,
            inventories::max_unit,
            inventories::step_size,
            inventories::allocation_ratio,
        ))
        .load(connection)
}

/// Usage of one (provider, class): everyone's, and everyone's except the
/// consumers being rewritten.
#[derive(QueryableByName, Clone, Debug)]
pub struct UsageRow {
    #[diesel(sql_type = Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = Integer)]
    pub resource_class_id: i32,
    #[diesel(sql_type = BigInt)]
    pub used_total: i64,
    #[diesel(sql_type = BigInt)]
    pub used_by_others: i64,
}

/// Current usage per (provider, class) of the given providers and classes,
/// with and without the given consumers, in one pass.
///
/// ```sql
/// SELECT resource_provider_id, resource_class_id,
///        SUM(used)::bigint AS used_total,
///        COALESCE(SUM(used) FILTER (WHERE consumer_id <> ALL($3)), 0)::bigint
///            AS used_by_others
/// FROM allocations
/// WHERE resource_provider_id = ANY($1) AND resource_class_id = ANY($2)
/// GROUP BY resource_provider_id, resource_class_id
/// ```
pub fn usage_excluding(
    connection: &mut Connection,
    provider_ids: &[i32],
    class_ids: &[i32],
    excluded_consumers: &[Uuid],
) -> QueryResult<Vec<UsageRow>> {
    diesel::sql_query(
        "SELECT resource_provider_id, resource_class_id, \
                SUM(used)::bigint AS used_total, \
                COALESCE(SUM(used) FILTER (WHERE consumer_id <> ALL($3)), 0)::bigint \
                    AS used_by_others \
         FROM allocations \
         WHERE resource_provider_id = ANY($1) AND resource_class_id = ANY($2) \
         GROUP BY resource_provider_id, resource_class_id",
    )
    .bind::<Array<Integer>, _>(provider_ids)
    .bind::<Array<Integer>, _>(class_ids)
    .bind::<Array<diesel::sql_types::Uuid>, _>(excluded_consumers)
    .load(connection)
}

/// What a write reads before it checks anything, in one statement (one
/// snapshot): the consumers, the named providers with their generations,
/// and the inventories and usage of those providers in the requested
/// classes. One row per fact; the columns mean, by `kind`:
///
/// | kind | id | a | b | c | generation | uuid | n1..n5, ratio |
/// | --- | --- | --- | --- | --- | --- | --- | --- |
/// | 1 consumer | id | project | user | type | generation | uuid | |
/// | 2 provider | id | | | | generation | uuid | |
/// | 3 inventory | provider | class | | | | | total, reserved, min_unit, max_unit, step_size, ratio |
/// | 4 usage | provider | class | | | | | used by everyone, used by the others |
/// | 5 project, 6 user, 7 consumer type | id | | | | | | (`name`: external id / name) |
#[derive(QueryableByName, Clone, Debug)]
pub struct WriteStateRow {
    #[diesel(sql_type = Integer)]
    pub kind: i32,
    #[diesel(sql_type = Integer)]
    pub id: i32,
    #[diesel(sql_type = Nullable<Integer>)]
    pub a: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub b: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub c: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub generation: Option<i32>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub uuid: Option<Uuid>,
    #[diesel(embed)]
    pub numbers: NumberColumns,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
}

pub mod state_kind {
    pub const CONSUMER: i32 = 1;
    pub const PROVIDER: i32 = 2;
    pub const INVENTORY: i32 = 3;
    pub const USAGE: i32 = 4;
    pub const PROJECT: i32 = 5;
    pub const USER: i32 = 6;
    pub const CONSUMER_TYPE: i32 = 7;
}

/// The state an allocation write checks, in one round trip (see
/// `WriteStateRow`). Usage "by the others" leaves out the consumers being
/// rewritten. Also the ids of the projects, users and consumer types
/// named, when they exist (the caller creates the missing ones).
///
/// ```sql
/// WITH rp AS (SELECT id, uuid, generation FROM resource_providers WHERE uuid = ANY($2))
/// SELECT 1, id, project_id, user_id, consumer_type_id, generation, uuid, ...
/// FROM consumers WHERE uuid = ANY($1)
/// UNION ALL SELECT 2, id, ..., generation, uuid, ... FROM rp
/// UNION ALL SELECT 3, resource_provider_id, resource_class_id, ..., total, reserved,
///        min_unit, max_unit, step_size, allocation_ratio
/// FROM inventories WHERE resource_provider_id IN (SELECT id FROM rp)
///   AND resource_class_id = ANY($3)
/// UNION ALL SELECT 4, rp.id, u.* FROM rp CROSS JOIN LATERAL (
///     SELECT resource_class_id, SUM(used),
///            COALESCE(SUM(used) FILTER (WHERE consumer_id <> ALL($1)), 0)
///     FROM allocations WHERE resource_provider_id = rp.id AND resource_class_id = ANY($3)
///     GROUP BY resource_class_id) u      -- driven by the providers, whatever the plan
/// UNION ALL SELECT 5, id, ..., external_id FROM projects WHERE external_id = ANY($4)
/// UNION ALL SELECT 6, id, ..., external_id FROM users WHERE external_id = ANY($5)
/// UNION ALL SELECT 7, id, ..., name FROM consumer_types WHERE name = ANY($6)
/// ```
pub fn write_state(
    connection: &mut Connection,
    consumer_uuids: &[Uuid],
    provider_uuids: &[Uuid],
    class_ids: &[i32],
    identities: &Identities<'_>,
) -> QueryResult<Vec<WriteStateRow>> {
    const SQL: &str = "WITH rp AS ( \
             SELECT id, uuid, generation FROM resource_providers WHERE uuid = ANY($2) \
         ) \
         SELECT 1 AS kind, id, project_id AS a, user_id AS b, consumer_type_id AS c, \
                generation, uuid, NULL::bigint AS n1, NULL::bigint AS n2, NULL::bigint AS n3, \
                NULL::bigint AS n4, NULL::bigint AS n5, NULL::double precision AS ratio, \
                NULL::text AS name \
         FROM consumers WHERE uuid = ANY($1) \
         UNION ALL \
         SELECT 2, id, NULL, NULL, NULL, generation, uuid, NULL, NULL, NULL, NULL, NULL, NULL, \
                NULL \
         FROM rp \
         UNION ALL \
         SELECT 3, resource_provider_id, resource_class_id, NULL, NULL, NULL, NULL, \
                total, reserved, min_unit, max_unit, step_size, allocation_ratio, NULL \
         FROM inventories \
         WHERE resource_provider_id IN (SELECT id FROM rp) AND resource_class_id = ANY($3) \
         UNION ALL \
         SELECT 4, rp.id, u.resource_class_id, NULL, NULL, NULL, NULL, u.used_total, \
                u.used_by_others, NULL, NULL, NULL, NULL, NULL \
         FROM rp CROSS JOIN LATERAL ( \
             SELECT a.resource_class_id, SUM(a.used)::bigint AS used_total, \
                    COALESCE(SUM(a.used) FILTER (WHERE a.consumer_id <> ALL($1)), 0)::bigint \
                        AS used_by_others \
             FROM allocations a \
             WHERE a.resource_provider_id = rp.id AND a.resource_class_id = ANY($3) \
             GROUP BY a.resource_class_id \
         ) u \
         UNION ALL \
         SELECT 5, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                external_id::text \
         FROM projects WHERE external_id = ANY($4) \
         UNION ALL \
         SELECT 6, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                external_id::text \
         FROM users WHERE external_id = ANY($5) \
         UNION ALL \
         SELECT 7, id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                name::text \
         FROM consumer_types WHERE name = ANY($6)";
    Prepared(
        diesel::sql_query(SQL)
            .bind::<Array<SqlUuid>, _>(consumer_uuids)
            .bind::<Array<SqlUuid>, _>(provider_uuids)
            .bind::<Array<Integer>, _>(class_ids)
            .bind::<Array<Text>, _>(identities.projects)
            .bind::<Array<Text>, _>(identities.users)
            .bind::<Array<Text>, _>(identities.consumer_types),
    )
    .load(connection)
}

/// The project and user external ids and consumer type names a write
/// names.
pub struct Identities<'a> {
    pub projects: &'a [&'a str],
    pub users: &'a [&'a str],
    pub consumer_types: &'a [&'a str],
}

#[derive(QueryableByName)]
struct InsertedRow {
    #[diesel(sql_type = BigInt)]
    consumers: i64,
    #[diesel(sql_type = BigInt)]
    bumped: i64,
}

/// A consumer row to create along with its allocations.
pub struct NewConsumer<'a> {
    pub uuid: Uuid,
    pub fields: &'a super::consumers::ConsumerFields,
}

/// What `insert_and_bump` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    /// A concurrent transaction created the consumer first.
    LostConsumerRace,
    /// The provider's generation is no longer the one expected.
    LostProviderRace,
}

/// Inserts allocation rows and, in the same statement, moves one provider
/// from generation `expected` on by compare-and-swap (the write's first
/// provider in id order; any others are bumped one by one after), and
/// creates `consumer` at generation 1 when given (`ON CONFLICT DO
/// NOTHING`: a concurrent creator wins). Anything but `Done`: the caller
/// must roll back. The rows go in as arrays, so the texts are fixed and
/// stay prepared whatever their number.
///
/// ```sql
/// WITH c AS (
///     INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation)
///     SELECT $7, $8, $9, $10, 1 WHERE $11 ON CONFLICT DO NOTHING RETURNING id
/// ), added AS (
///     INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used)
///     SELECT * FROM unnest($1::integer[], $2::uuid[], $3::integer[], $4::bigint[])
/// ), bumped AS (
///     UPDATE resource_providers SET generation = $6 + 1, updated_at = now()
///     WHERE id = $5 AND generation = $6 RETURNING generation
/// )
/// SELECT (SELECT count(*) FROM c) AS consumers, (SELECT count(*) FROM bumped) AS bumped
/// ```
pub fn insert_and_bump(
    connection: &mut Connection,
    consumer: Option<NewConsumer<'_>>,
    rows: &[NewAllocation],
    provider_id: i32,
    expected: i32,
) -> QueryResult<Inserted> {
    const SQL: &str = "WITH c AS ( \
             INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation) \
             SELECT $7, $8, $9, $10, 1 WHERE $11 ON CONFLICT DO NOTHING RETURNING id \
         ), added AS ( \
             INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used) \
             SELECT * FROM unnest($1::integer[], $2::uuid[], $3::integer[], $4::bigint[]) \
         ), bumped AS ( \
             UPDATE resource_providers SET generation = $6 + 1, updated_at = now() \
             WHERE id = $5 AND generation = $6 RETURNING generation \
         ) \
         SELECT (SELECT count(*) FROM c) AS consumers, (SELECT count(*) FROM bumped) AS bumped";
    let providers: Vec<i32> = rows.iter().map(|row| row.resource_provider_id).collect();
    let consumers: Vec<Uuid> = rows.iter().map(|row| row.consumer_id).collect();
    let classes: Vec<i32> = rows.iter().map(|row| row.resource_class_id).collect();
    let amounts: Vec<i64> = rows.iter().map(|row| row.used).collect();
    let create = consumer.is_some();
    let (uuid, project_id, user_id, type_id) = match &consumer {
        Some(new) => (
            new.uuid,
            new.fields.project_id,
            new.fields.user_id,
            new.fields.consumer_type_id,
        ),
        None => (Uuid::nil(), 0, 0, None),
    };
    let row: InsertedRow = Prepared(
        diesel::sql_query(SQL)
            .bind::<Array<Integer>, _>(&providers)
            .bind::<Array<SqlUuid>, _>(&consumers)
            .bind::<Array<Integer>, _>(&classes)
            .bind::<Array<BigInt>, _>(&amounts)
            .bind::<Integer, _>(provider_id)
            .bind::<Integer, _>(expected)
            .bind::<SqlUuid, _>(uuid)
            .bind::<Integer, _>(project_id)
            .bind::<Integer, _>(user_id)
            .bind::<Nullable<Integer>, _>(type_id)
            .bind::<Bool, _>(create),
    )
    .get_result(connection)?;
    Ok(if create && row.consumers == 0 {
        Inserted::LostConsumerRace
    } else if row.bumped == 0 {
        Inserted::LostProviderRace
    } else {
        Inserted::Done
    })
}

/// One inventory a claim was checked against: its values then, and the
/// most usage at which the check still passes.
pub struct UsageCeiling {
    pub provider_id: i32,
    /// The provider's generation in the view that made the check.
    pub generation: i32,
    pub class_id: i32,
    pub inventory: InventoryValues,
    pub most_usage: i64,
}

/// A new consumer's allocations, to be written only while the checks the
/// caller made against its own reading of the providers still hold.
pub struct ClaimWithinView<'a> {
    pub consumer_uuid: Uuid,
    pub project_external_id: &'a str,
    pub user_external_id: &'a str,
    pub consumer_type: Option<&'a str>,
    /// Ascending, each once.
    pub provider_ids: &'a [i32],
    pub ceilings: &'a [UsageCeiling],
    pub rows: &'a [NewAllocation],
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = Bool)]
    claimed: bool,
}

/// Writes `claim` in one round trip when, with the providers locked,
/// every checked inventory is unchanged and its usage at most its
/// ceiling, and the consumer (whose project, user and type must exist)
/// does not exist yet; answers false, having written nothing, otherwise.
/// See the `claim_within_view` migration.
///
/// ```sql
/// SELECT claim_within_view($1, ..., $17) AS claimed
/// ```
pub fn claim_within_view(
    connection: &mut Connection,
    claim: &ClaimWithinView<'_>,
) -> QueryResult<bool> {
    let ceilings = claim.ceilings;
    let column = |value: fn(&UsageCeiling) -> i64| ceilings.iter().map(value).collect::<Vec<_>>();
    let checked_providers: Vec<i32> = ceilings.iter().map(|c| c.provider_id).collect();
    let checked_classes: Vec<i32> = ceilings.iter().map(|c| c.class_id).collect();
    let ratios: Vec<f64> = ceilings
        .iter()
        .map(|c| c.inventory.allocation_ratio)
        .collect();
    let providers: Vec<i32> = claim
        .rows
        .iter()
        .map(|row| row.resource_provider_id)
        .collect();
    let classes: Vec<i32> = claim.rows.iter().map(|row| row.resource_class_id).collect();
    let amounts: Vec<i64> = claim.rows.iter().map(|row| row.used).collect();
    let row: ClaimedRow = Prepared(
        diesel::sql_query(
            "SELECT claim_within_view($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                                      $14, $15, $16, $17) AS claimed",
        )
        .bind::<SqlUuid, _>(claim.consumer_uuid)
        .bind::<Text, _>(claim.project_external_id)
        .bind::<Text, _>(claim.user_external_id)
        .bind::<Nullable<Text>, _>(claim.consumer_type)
        .bind::<Array<Integer>, _>(claim.provider_ids)
        .bind::<Array<Integer>, _>(&checked_providers)
        .bind::<Array<Integer>, _>(&checked_classes)
        .bind::<Array<BigInt>, _>(column(|c| c.inventory.total))
        .bind::<Array<BigInt>, _>(column(|c| c.inventory.reserved))
        .bind::<Array<BigInt>, _>(column(|c| c.inventory.min_unit))
        .bind::<Array<BigInt>, _>(column(|c| c.inventory.max_unit))
        .bind::<Array<BigInt>, _>(column(|c| c.inventory.step_size))
        .bind::<Array<Double>, _>(&ratios)
        .bind::<Array<BigInt>, _>(column(|c| c.most_usage))
        .bind::<Array<Integer>, _>(&providers)
        .bind::<Array<Integer>, _>(&classes)
        .bind::<Array<BigInt>, _>(&amounts),
    )
    .get_result(connection)?;
    Ok(row.claimed)
}

/// How `claims_within_view` ended for one claim of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    Written,
    /// The consumer was not created: it exists, or its project, user or
    /// type is new (the full write path decides).
    ConsumerNotCreated,
    /// A checked inventory changed or its usage passed the ceiling.
    Stale,
}

#[derive(QueryableByName)]
struct BatchRow {
    #[diesel(sql_type = Array<diesel::sql_types::SmallInt>)]
    outcomes: Vec<i16>,
    #[diesel(sql_type = Array<BigInt>)]
    change_seqs: Vec<i64>,
    #[diesel(sql_type = Array<Integer>)]
    bumped_providers: Vec<i32>,
    #[diesel(sql_type = Array<Integer>)]
    generations: Vec<i32>,
}

/// What a batch wrote: each claim's outcome, in order, and what applying
/// it to a view takes.
#[derive(Debug)]
pub struct BatchWritten {
    pub outcomes: Vec<BatchOutcome>,
    /// The change-log rows the batch's transaction wrote.
    pub change_seqs: Vec<i64>,
    /// `(provider, generation)` as the batch left them, for the providers
    /// the view was at the generation of: a view behind on a provider has
    /// not seen all of its usage and must not take its generation.
    pub generations: Vec<(i32, i32)>,
}

/// Writes a batch of claims in one statement and one commit: each as
/// `claim_within_view` would, in order, counting the usage of the claims
/// written before it, except that the check of a provider still at the
/// view's generation stands without reading its usage. See the
/// `claim_batches` and `claims_trust_generations` migrations.
///
/// ```sql
/// SELECT outcomes, change_seqs, bumped_providers, generations
/// FROM claims_within_view($1, ..., $20)
/// ```
pub fn claims_within_view(
    connection: &mut Connection,
    claims: &[ClaimWithinView<'_>],
) -> QueryResult<BatchWritten> {
    let mut provider_ids: Vec<i32> = claims
        .iter()
        .flat_map(|claim| claim.provider_ids.iter().copied())
        .collect();
    provider_ids.sort_unstable();
    provider_ids.dedup();
    // Claims are numbered from 1, as PostgreSQL's arrays.
    let numbered = || (1..).zip(claims);
    let checked: Vec<(i32, &UsageCeiling)> = numbered()
        .flat_map(|(number, claim)| claim.ceilings.iter().map(move |ceiling| (number, ceiling)))
        .collect();
    let rows: Vec<(i32, &NewAllocation)> = numbered()
        .flat_map(|(number, claim)| claim.rows.iter().map(move |row| (number, row)))
        .collect();
    let inventory = |value: fn(&InventoryValues) -> i64| -> Vec<i64> {
        checked.iter().map(|(_, c)| value(&c.inventory)).collect()
    };
    let row: BatchRow = Prepared(
        diesel::sql_query(
            "SELECT outcomes, change_seqs, bumped_providers, generations \
             FROM claims_within_view($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                                     $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind::<Array<SqlUuid>, _>(claims.iter().map(|c| c.consumer_uuid).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            claims
                .iter()
                .map(|c| c.project_external_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            claims
                .iter()
                .map(|c| c.user_external_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            claims.iter().map(|c| c.consumer_type).collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(&provider_ids)
        .bind::<Array<Integer>, _>(checked.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(
            checked
                .iter()
                .map(|(_, c)| c.provider_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(
            checked
                .iter()
                .map(|(_, c)| c.generation)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(checked.iter().map(|(_, c)| c.class_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(inventory(|i| i.total))
        .bind::<Array<BigInt>, _>(inventory(|i| i.reserved))
        .bind::<Array<BigInt>, _>(inventory(|i| i.min_unit))
        .bind::<Array<BigInt>, _>(inventory(|i| i.max_unit))
        .bind::<Array<BigInt>, _>(inventory(|i| i.step_size))
        .bind::<Array<Double>, _>(
            checked
                .iter()
                .map(|(_, c)| c.inventory.allocation_ratio)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(
            checked
                .iter()
                .map(|(_, c)| c.most_usage)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(rows.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(
            rows.iter()
                .map(|(_, r)| r.resource_provider_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Integer>, _>(
            rows.iter()
                .map(|(_, r)| r.resource_class_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(rows.iter().map(|(_, r)| r.used).collect::<Vec<_>>()),
    )
    .get_result(connection)?;
    Ok(BatchWritten {
        outcomes: row
            .outcomes
            .into_iter()
            .map(|outcome| match outcome {
                0 => BatchOutcome::Written,
                1 => BatchOutcome::ConsumerNotCreated,
                _ => BatchOutcome::Stale,
            })
            .collect(),
        change_seqs: row.change_seqs,
        generations: row
            .bumped_providers
            .into_iter()
            .zip(row.generations)
            .collect(),
    })
}
