//! Queries on `allocations`, and the reads an allocation write needs about
//! providers and their inventories, each batched over every provider and
//! class the write touches.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer};
use uuid::Uuid;

use super::Connection;
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
