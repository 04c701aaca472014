//! Queries on `resource_providers`, including the generation
//! compare-and-swap every provider-changing write goes through, tree
//! moves, and the filtered list of `GET /resource_providers`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::Connection;
use super::schema::{
    allocations, inventories, placement_aggregates, resource_provider_aggregates,
    resource_provider_traits, resource_providers,
};

/// A provider's generation, as a statement moving it on answers it.
#[derive(QueryableByName)]
pub struct GenerationRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub generation: i32,
}

#[derive(Queryable, QueryableByName, Selectable, Clone, Debug)]
#[diesel(table_name = resource_providers)]
pub struct ProviderRow {
    pub id: i32,
    pub uuid: Uuid,
    pub name: String,
    pub generation: i32,
    pub root_provider_id: i32,
    pub parent_provider_id: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub fn get_by_uuid(connection: &mut Connection, uuid: Uuid) -> QueryResult<Option<ProviderRow>> {
    resource_providers::table
        .filter(resource_providers::uuid.eq(uuid))
        .select(ProviderRow::as_select())
        .first(connection)
        .optional()
}

/// As `get_by_uuid`, with the row locked until the transaction ends.
pub fn get_by_uuid_locked(
    connection: &mut Connection,
    uuid: Uuid,
) -> QueryResult<Option<ProviderRow>> {
    resource_providers::table
        .filter(resource_providers::uuid.eq(uuid))
        .select(ProviderRow::as_select())
        .for_no_key_update()
        .first(connection)
        .optional()
}

pub fn get_by_id(connection: &mut Connection, id: i32) -> QueryResult<Option<ProviderRow>> {
    resource_providers::table
        .find(id)
        .select(ProviderRow::as_select())
        .first(connection)
        .optional()
}

/// Moves a provider from generation `expected` to `expected + 1`.
/// Returns the new generation, or `None` when another writer got there
/// first (the row's generation is no longer `expected`).
///
/// ```sql
/// UPDATE resource_providers SET generation = $2 + 1, updated_at = now()
/// WHERE id = $1 AND generation = $2 RETURNING generation
/// ```
pub fn bump_generation(
    connection: &mut Connection,
    id: i32,
    expected: i32,
) -> QueryResult<Option<i32>> {
    diesel::update(
        resource_providers::table
            .filter(resource_providers::id.eq(id))
            .filter(resource_providers::generation.eq(expected)),
    )
    .set((
        resource_providers::generation.eq(expected + 1),
        resource_providers::updated_at.eq(diesel::dsl::now),
    ))
    .returning(resource_providers::generation)
    .get_result(connection)
    .optional()
}

/// A new provider. `root_provider_id` is `None` for a root, which then
/// becomes its own root.
pub struct NewProvider<'a> {
    pub uuid: Uuid,
    pub name: &'a str,
    pub parent_provider_id: Option<i32>,
    pub root_provider_id: Option<i32>,
}

/// Which unique constraint an insert or update broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    Uuid,
    Name,
}

/// The duplicated column of a unique violation on `resource_providers`.
pub fn duplicate_column(error: &diesel::result::Error) -> Option<Duplicate> {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            match info.constraint_name() {
                Some(name) if name.contains("uuid") => Some(Duplicate::Uuid),
                _ => Some(Duplicate::Name),
            }
        }
        _ => None,
    }
}

/// Inserts a provider, in one statement: the id is drawn in a sub-select
/// so that a root can name itself as its own root in the same row.
///
/// ```sql
/// INSERT INTO resource_providers (id, uuid, name, parent_provider_id, root_provider_id)
/// SELECT n.id, $1, $2, $3, COALESCE($4, n.id)
/// FROM (SELECT nextval(pg_get_serial_sequence('resource_providers', 'id'))::integer AS id) n
/// RETURNING id, uuid, name, generation, root_provider_id, parent_provider_id,
///           created_at, updated_at
/// ```
pub fn insert(connection: &mut Connection, new: &NewProvider<'_>) -> QueryResult<ProviderRow> {
    use diesel::sql_types::{Integer, Nullable, Text, Uuid as SqlUuid};
    const SQL: &str = "INSERT INTO resource_providers \
             (id, uuid, name, parent_provider_id, root_provider_id) \
         SELECT n.id, $1, $2, $3, COALESCE($4, n.id) \
         FROM (SELECT nextval(pg_get_serial_sequence('resource_providers', 'id'))::integer \
               AS id) n \
         RETURNING id, uuid, name, generation, root_provider_id, parent_provider_id, \
                   created_at, updated_at";
    super::prepared::Prepared(
        diesel::sql_query(SQL)
            .bind::<SqlUuid, _>(new.uuid)
            .bind::<Text, _>(new.name)
            .bind::<Nullable<Integer>, _>(new.parent_provider_id)
            .bind::<Nullable<Integer>, _>(new.root_provider_id),
    )
    .get_result(connection)
}

/// Sets a provider's name, parent and root.
pub fn update(
    connection: &mut Connection,
    id: i32,
    name: &str,
    parent_provider_id: Option<i32>,
    root_provider_id: i32,
) -> QueryResult<ProviderRow> {
    diesel::update(resource_providers::table.find(id))
        .set((
            resource_providers::name.eq(name),
            resource_providers::parent_provider_id.eq(parent_provider_id),
            resource_providers::root_provider_id.eq(root_provider_id),
            resource_providers::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ProviderRow::as_returning())
        .get_result(connection)
}

/// Locks providers' rows until the transaction ends, in id order: the
/// order every write that changes several providers takes them in.
pub fn lock_by_ids(connection: &mut Connection, ids: &[i32]) -> QueryResult<Vec<i32>> {
    resource_providers::table
        .filter(resource_providers::id.eq_any(ids))
        .order(resource_providers::id)
        .select(resource_providers::id)
        .for_no_key_update()
        .load(connection)
}

/// Moves providers (a subtree being re-parented) to another root.
pub fn set_root(
    connection: &mut Connection,
    ids: &[i32],
    root_provider_id: i32,
) -> QueryResult<usize> {
    diesel::update(resource_providers::table.filter(resource_providers::id.eq_any(ids)))
        .set((
            resource_providers::root_provider_id.eq(root_provider_id),
            resource_providers::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)
}

/// `(id, parent_provider_id)` of every provider of a tree.
pub fn list_tree_links(
    connection: &mut Connection,
    root_provider_id: i32,
) -> QueryResult<Vec<(i32, Option<i32>)>> {
    resource_providers::table
        .filter(resource_providers::root_provider_id.eq(root_provider_id))
        .select((
            resource_providers::id,
            resource_providers::parent_provider_id,
        ))
        .load(connection)
}

pub fn has_children(connection: &mut Connection, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        resource_providers::table.filter(resource_providers::parent_provider_id.eq(id)),
    ))
    .get_result(connection)
}

pub fn has_allocations(connection: &mut Connection, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        allocations::table.filter(allocations::resource_provider_id.eq(id)),
    ))
    .get_result(connection)
}

/// Deletes a provider with its inventories, trait and aggregate links.
pub fn delete(connection: &mut Connection, id: i32) -> QueryResult<usize> {
    diesel::delete(inventories::table.filter(inventories::resource_provider_id.eq(id)))
        .execute(connection)?;
    diesel::delete(
        resource_provider_traits::table
            .filter(resource_provider_traits::resource_provider_id.eq(id)),
    )
    .execute(connection)?;
    diesel::delete(
        resource_provider_aggregates::table
            .filter(resource_provider_aggregates::resource_provider_id.eq(id)),
    )
    .execute(connection)?;
    diesel::delete(resource_providers::table.find(id)).execute(connection)
}

/// The uuids of the given providers, by id.
pub fn uuids_by_id(connection: &mut Connection, ids: &[i32]) -> QueryResult<HashMap<i32, Uuid>> {
    let rows: Vec<(i32, Uuid)> = resource_providers::table
        .filter(resource_providers::id.eq_any(ids))
        .select((resource_providers::id, resource_providers::uuid))
        .load(connection)?;
    Ok(rows.into_iter().collect())
}

/// The filters of `GET /resource_providers`, with names already resolved
/// to ids. Every condition is ANDed.
#[derive(Debug, Default)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<Uuid>,
    pub root_provider_id: Option<i32>,
    /// Each inner list: the provider has at least one of these traits.
    pub trait_groups: Vec<Vec<i32>>,
    pub forbidden_traits: Vec<i32>,
    /// Each inner list: the provider is in at least one of these aggregates.
    pub aggregate_groups: Vec<Vec<Uuid>>,
    pub forbidden_aggregates: Vec<Uuid>,
    /// The provider has an inventory of each of these classes.
    pub resource_class_ids: Vec<i32>,
}

/// The providers matching every filter, in id order: one statement with a
/// subquery per condition.
///
/// ```sql
/// SELECT rp.* FROM resource_providers rp
/// WHERE rp.name = $name AND rp.uuid = $uuid AND rp.root_provider_id = $root
///   AND rp.id IN (SELECT resource_provider_id FROM resource_provider_traits
///                 WHERE trait_id = ANY($group))                -- per group
///   AND rp.id NOT IN (SELECT resource_provider_id FROM resource_provider_traits
///                     WHERE trait_id = ANY($forbidden))
///   AND rp.id IN (SELECT rpa.resource_provider_id FROM resource_provider_aggregates rpa
///                 JOIN placement_aggregates a ON a.id = rpa.aggregate_id
///                 WHERE a.uuid = ANY($group))                  -- per group
///   AND rp.id NOT IN (... a.uuid = ANY($forbidden))
///   AND rp.id IN (SELECT resource_provider_id FROM inventories
///                 WHERE resource_class_id = $rc)               -- per class
/// ORDER BY rp.id
/// ```
pub fn list(connection: &mut Connection, filter: &ProviderFilter) -> QueryResult<Vec<ProviderRow>> {
    let mut query = resource_providers::table
        .select(ProviderRow::as_select())
        .order(resource_providers::id)
        .into_boxed();
    if let Some(name) = &filter.name {
        query = query.filter(resource_providers::name.eq(name));
    }
    if let Some(uuid) = filter.uuid {
        query = query.filter(resource_providers::uuid.eq(uuid));
    }
    if let Some(root) = filter.root_provider_id {
        query = query.filter(resource_providers::root_provider_id.eq(root));
    }
    for group in &filter.trait_groups {
        query = query.filter(
            resource_providers::id.eq_any(
                resource_provider_traits::table
                    .filter(resource_provider_traits::trait_id.eq_any(group))
                    .select(resource_provider_traits::resource_provider_id),
            ),
        );
    }
    if !filter.forbidden_traits.is_empty() {
        query = query.filter(
            resource_providers::id.ne_all(
                resource_provider_traits::table
                    .filter(resource_provider_traits::trait_id.eq_any(&filter.forbidden_traits))
                    .select(resource_provider_traits::resource_provider_id),
            ),
        );
    }
    for group in &filter.aggregate_groups {
        query = query.filter(
            resource_providers::id.eq_any(
                resource_provider_aggregates::table
                    .inner_join(placement_aggregates::table)
                    .filter(placement_aggregates::uuid.eq_any(group))
                    .select(resource_provider_aggregates::resource_provider_id),
            ),
        );
    }
    if !filter.forbidden_aggregates.is_empty() {
        query = query.filter(
            resource_providers::id.ne_all(
                resource_provider_aggregates::table
                    .inner_join(placement_aggregates::table)
                    .filter(placement_aggregates::uuid.eq_any(&filter.forbidden_aggregates))
                    .select(resource_provider_aggregates::resource_provider_id),
            ),
        );
    }
    for class_id in &filter.resource_class_ids {
        query = query.filter(
            resource_providers::id.eq_any(
                inventories::table
                    .filter(inventories::resource_class_id.eq(*class_id))
                    .select(inventories::resource_provider_id),
            ),
        );
    }
    query.load(connection)
}

/// One inventory with its current usage, for capacity filtering.
#[derive(QueryableByName, Debug, Clone)]
pub struct InventoryUsageRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub resource_class_id: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub reserved: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub min_unit: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub max_unit: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub step_size: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub allocation_ratio: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub used: i64,
}

/// The inventories of the given classes on the given providers, each with
/// the sum of its allocations.
pub fn list_inventory_usage(
    connection: &mut Connection,
    provider_ids: &[i32],
    class_ids: &[i32],
) -> QueryResult<Vec<InventoryUsageRow>> {
    use diesel::sql_types::{Array, Integer};
    diesel::sql_query(
        "SELECT inv.resource_provider_id, inv.resource_class_id, inv.total, inv.reserved, \
                inv.min_unit, inv.max_unit, inv.step_size, inv.allocation_ratio, \
                COALESCE(usage.used, 0)::bigint AS used \
         FROM inventories inv \
         LEFT JOIN (SELECT resource_provider_id, resource_class_id, SUM(used) AS used \
                    FROM allocations \
                    WHERE resource_provider_id = ANY($1) AND resource_class_id = ANY($2) \
                    GROUP BY resource_provider_id, resource_class_id) usage \
           ON usage.resource_provider_id = inv.resource_provider_id \
          AND usage.resource_class_id = inv.resource_class_id \
         WHERE inv.resource_provider_id = ANY($1) AND inv.resource_class_id = ANY($2)",
    )
    .bind::<Array<Integer>, _>(provider_ids)
    .bind::<Array<Integer>, _>(class_ids)
    .load(connection)
}
