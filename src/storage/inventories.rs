//! Queries on `inventories`, and the allocation look-ups that guard
//! inventory changes (classes in use, current usage per class).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable};
use diesel::upsert::excluded;

use super::Connection;
use super::prepared::Prepared;
use super::schema::{inventories, resource_classes};

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = inventories)]
pub struct InventoryRow {
    pub id: i32,
    pub resource_provider_id: i32,
    pub resource_class_id: i32,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// The values of one inventory record as written (and as read by name,
/// embedded in wider rows).
#[derive(QueryableByName, Clone, Copy, Debug, PartialEq)]
pub struct InventoryValues {
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    #[diesel(sql_type = BigInt)]
    pub reserved: i64,
    #[diesel(sql_type = BigInt)]
    pub min_unit: i64,
    #[diesel(sql_type = BigInt)]
    pub max_unit: i64,
    #[diesel(sql_type = BigInt)]
    pub step_size: i64,
    #[diesel(sql_type = Double)]
    pub allocation_ratio: f64,
}

/// The numeric columns of the one-row-per-fact reads
/// (`allocations::WriteStateRow`, `world::RefreshRow`): an inventory's
/// values in `n1`..`n5` and `ratio`, a usage in `n1` (and `n2`).
#[derive(QueryableByName, Clone, Copy, Debug, Default, PartialEq)]
pub struct NumberColumns {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n1: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n2: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n3: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n4: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n5: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub ratio: Option<f64>,
}

impl NumberColumns {
    /// The columns of an inventory row, read as its values.
    pub fn inventory_values(&self) -> InventoryValues {
        InventoryValues {
            total: self.n1.unwrap_or_default(),
            reserved: self.n2.unwrap_or_default(),
            min_unit: self.n3.unwrap_or_default(),
            max_unit: self.n4.unwrap_or_default(),
            step_size: self.n5.unwrap_or_default(),
            allocation_ratio: self.ratio.unwrap_or_default(),
        }
    }
}

/// The inventories of one provider with their class names, by class id.
pub fn list_for_provider(
    connection: &mut Connection,
    provider_id: i32,
) -> QueryResult<Vec<(InventoryRow, String)>> {
    inventories::table
        .inner_join(resource_classes::table)
        .filter(inventories::resource_provider_id.eq(provider_id))
        .order(inventories::resource_class_id)
        .select((InventoryRow::as_select(), resource_classes::name))
        .load(connection)
}

/// The inventory of one class on one provider, looked up by class name.
pub fn get_for_provider(
    connection: &mut Connection,
    provider_id: i32,
    class_name: &str,
) -> QueryResult<Option<InventoryRow>> {
    inventories::table
        .inner_join(resource_classes::table)
        .filter(inventories::resource_provider_id.eq(provider_id))
        .filter(resource_classes::name.eq(class_name))
        .select(InventoryRow::as_select())
        .first(connection)
        .optional()
}

/// Inserts one inventory; an existing one of the same class is a unique
/// violation.
pub fn insert(
    connection: &mut Connection,
    provider_id: i32,
    class_id: i32,
    limits: &InventoryValues,
) -> QueryResult<InventoryRow> {
    diesel::insert_into(inventories::table)
        .values(new_values(provider_id, class_id, limits))
        .returning(InventoryRow::as_returning())
        .get_result(connection)
}

/// Overwrites the limits of an existing inventory; `None` when the
/// provider has no inventory of that class.
pub fn update(
    connection: &mut Connection,
    provider_id: i32,
    class_id: i32,
    limits: &InventoryValues,
) -> QueryResult<Option<InventoryRow>> {
    diesel::update(
        inventories::table
            .filter(inventories::resource_provider_id.eq(provider_id))
            .filter(inventories::resource_class_id.eq(class_id)),
    )
    .set((
        inventories::total.eq(limits.total),
        inventories::reserved.eq(limits.reserved),
        inventories::min_unit.eq(limits.min_unit),
        inventories::max_unit.eq(limits.max_unit),
        inventories::step_size.eq(limits.step_size),
        inventories::allocation_ratio.eq(limits.allocation_ratio),
        inventories::updated_at.eq(diesel::dsl::now),
    ))
    .returning(InventoryRow::as_returning())
    .get_result(connection)
    .optional()
}

/// Inserts or overwrites several inventories of one provider in one
/// statement; `updated_at` is set only on rows that existed.
///
/// ```sql
/// INSERT INTO inventories (resource_provider_id, resource_class_id, total, ...)
/// VALUES (...), (...)
/// ON CONFLICT (resource_provider_id, resource_class_id) DO UPDATE
/// SET total = excluded.total, ..., updated_at = now()
/// ```
pub fn upsert(
    connection: &mut Connection,
    provider_id: i32,
    records: &[(i32, InventoryValues)],
) -> QueryResult<usize> {
    if records.is_empty() {
        return Ok(0);
    }
    let rows: Vec<_> = records
        .iter()
        .map(|(class_id, limits)| new_values(provider_id, *class_id, limits))
        .collect();
    diesel::insert_into(inventories::table)
        .values(&rows)
        .on_conflict((
            inventories::resource_provider_id,
            inventories::resource_class_id,
        ))
        .do_update()
        .set((
            inventories::total.eq(excluded(inventories::total)),
            inventories::reserved.eq(excluded(inventories::reserved)),
            inventories::min_unit.eq(excluded(inventories::min_unit)),
            inventories::max_unit.eq(excluded(inventories::max_unit)),
            inventories::step_size.eq(excluded(inventories::step_size)),
            inventories::allocation_ratio.eq(excluded(inventories::allocation_ratio)),
            inventories::updated_at.eq(diesel::dsl::now),
        ))
        .execute(connection)
}

/// Deletes the provider's inventories of the given classes; returns how
/// many rows went.
pub fn delete(
    connection: &mut Connection,
    provider_id: i32,
    class_ids: &[i32],
) -> QueryResult<usize> {
    diesel::delete(
        inventories::table
            .filter(inventories::resource_provider_id.eq(provider_id))
            .filter(inventories::resource_class_id.eq_any(class_ids)),
    )
    .execute(connection)
}

#[allow(clippy::type_complexity)]
fn new_values(
    provider_id: i32,
    class_id: i32,
    limits: &InventoryValues,
) -> (
    diesel::dsl::Eq<inventories::resource_provider_id, i32>,
    diesel::dsl::Eq<inventories::resource_class_id, i32>,
    diesel::dsl::Eq<inventories::total, i64>,
    diesel::dsl::Eq<inventories::reserved, i64>,
    diesel::dsl::Eq<inventories::min_unit, i64>,
    diesel::dsl::Eq<inventories::max_unit, i64>,
    diesel::dsl::Eq<inventories::step_size, i64>,
    diesel::dsl::Eq<inventories::allocation_ratio, f64>,
) {
    (
        inventories::resource_provider_id.eq(provider_id),
        inventories::resource_class_id.eq(class_id),
        inventories::total.eq(limits.total),
        inventories::reserved.eq(limits.reserved),
        inventories::min_unit.eq(limits.min_unit),
        inventories::max_unit.eq(limits.max_unit),
        inventories::step_size.eq(limits.step_size),
        inventories::allocation_ratio.eq(limits.allocation_ratio),
    )
}

#[derive(QueryableByName)]
struct ClassUsage {
    #[diesel(sql_type = Integer)]
    resource_class_id: i32,
    #[diesel(sql_type = BigInt)]
    used: i64,
}

/// How much of each of the given classes is allocated from a provider;
/// classes without allocations are absent. An inventory of a class present
/// here is in use and may not be deleted.
///
/// ```sql
/// SELECT resource_class_id, SUM(used)::bigint AS used
/// FROM allocations
/// WHERE resource_provider_id = $1 AND resource_class_id = ANY($2)
/// GROUP BY resource_class_id ORDER BY resource_class_id
/// ```
pub fn usage_by_class(
    connection: &mut Connection,
    provider_id: i32,
    class_ids: &[i32],
) -> QueryResult<Vec<(i32, i64)>> {
    if class_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ClassUsage> = diesel::sql_query(
        "SELECT resource_class_id, SUM(used)::bigint AS used \
         FROM allocations \
         WHERE resource_provider_id = $1 AND resource_class_id = ANY($2) \
         GROUP BY resource_class_id ORDER BY resource_class_id",
    )
    .bind::<Integer, _>(provider_id)
    .bind::<Array<Integer>, _>(class_ids)
    .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.resource_class_id, row.used))
        .collect())
}

/// The standard classes by name: their ids are their list positions, they
/// cannot be renamed or deleted, so they are known without a query.
static STANDARD_CLASS_IDS: std::sync::LazyLock<std::collections::HashMap<&'static str, i32>> =
    std::sync::LazyLock::new(|| {
        super::standard_data::standard_resource_classes()
            .into_iter()
            .enumerate()
            .filter_map(|(index, name)| i32::try_from(index).ok().map(|id| (name, id)))
            .collect()
    });

/// Ids of the named classes; names that do not exist are absent. Standard
/// names are answered from memory; only custom ones (which can come and
/// go) are looked up.
pub fn class_ids_by_name(
    connection: &mut Connection,
    names: &[&str],
) -> QueryResult<std::collections::HashMap<String, i32>> {
    let mut ids = std::collections::HashMap::with_capacity(names.len());
    let mut custom: Vec<&str> = Vec::new();
    for name in names {
        match STANDARD_CLASS_IDS.get(name) {
            Some(id) => {
                ids.insert((*name).to_owned(), *id);
            }
            None => custom.push(name),
        }
    }
    if !custom.is_empty() {
        ids.extend(super::resource_classes::ids_by_name(connection, &custom)?);
    }
    Ok(ids)
}

/// What one `replace_all_for_uuid` statement found and did.
#[derive(QueryableByName, Debug)]
pub struct ReplaceAllOutcome {
    /// The provider's generation as the statement first read it.
    #[diesel(sql_type = Integer)]
    pub generation: i32,
    /// Its generation after the write; `None` when nothing was written.
    #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
    pub written: Option<i32>,
    /// Classes with allocations that the new inventory leaves out (their
    /// inventory cannot be removed: nothing was written).
    #[diesel(sql_type = Array<Integer>)]
    pub in_use: Vec<i32>,
    /// The classes written that have allocations, and how much.
    #[diesel(sql_type = Array<Integer>)]
    pub used_classes: Vec<i32>,
    #[diesel(sql_type = Array<BigInt>)]
    pub used_amounts: Vec<i64>,
}

/// Replaces the whole inventory of the provider `uuid` with `records`, if
/// it is at generation `expected` and no class left out has allocations,
/// and bumps its generation: one statement, atomic without a transaction
/// around it, so the write costs one round trip. `None` when there is no
/// such provider. The records go in as arrays, so the text is fixed and
/// stays prepared.
///
/// The compare-and-swap guards the inventory changes: under READ
/// COMMITTED the `UPDATE` waits for a concurrent writer of the provider
/// row (an allocation write bumps it too) and checks the generation again
/// on the row that writer left, so the allocations read for the in-use
/// check cannot have changed unseen.
///
/// ```sql
/// WITH provider AS (SELECT id, generation FROM resource_providers WHERE uuid = $1),
///      wanted AS (SELECT * FROM unnest($3::integer[], $4::bigint[], ..., $9::float8[])),
///      usage AS (SELECT resource_class_id, sum(used) FROM allocations ... GROUP BY 1),
///      in_use AS (classes of usage not wanted),
///      bumped AS (UPDATE resource_providers ... WHERE generation = $2
///                 AND NOT EXISTS (SELECT 1 FROM in_use) RETURNING ...),
///      gone AS (DELETE FROM inventories ... classes of bumped not wanted),
///      up AS (INSERT INTO inventories ... wanted x bumped
///             ON CONFLICT (resource_provider_id, resource_class_id) DO UPDATE ...)
/// SELECT provider.generation, bumped.generation, in_use, usage of wanted classes
/// ```
pub fn replace_all_for_uuid(
    connection: &mut Connection,
    uuid: uuid::Uuid,
    expected: i64,
    records: &[(i32, InventoryValues)],
) -> QueryResult<Option<ReplaceAllOutcome>> {
    use diesel::sql_types::Uuid as SqlUuid;
    const SQL: &str = "WITH provider AS ( \
             SELECT id, generation FROM resource_providers WHERE uuid = $1 \
         ), wanted AS ( \
             SELECT * FROM unnest($3::integer[], $4::bigint[], $5::bigint[], $6::bigint[], \
                                  $7::bigint[], $8::bigint[], $9::float8[]) \
                 AS w(resource_class_id, total, reserved, min_unit, max_unit, step_size, \
                      allocation_ratio) \
         ), usage AS ( \
             SELECT a.resource_class_id, SUM(a.used)::bigint AS used \
             FROM allocations a JOIN provider ON a.resource_provider_id = provider.id \
             GROUP BY a.resource_class_id \
         ), in_use AS ( \
             SELECT resource_class_id FROM usage \
             WHERE resource_class_id NOT IN (SELECT resource_class_id FROM wanted) \
         ), bumped AS ( \
             UPDATE resource_providers rp SET generation = rp.generation + 1, updated_at = now() \
             FROM provider \
             WHERE rp.id = provider.id AND rp.generation = $2 \
               AND NOT EXISTS (SELECT 1 FROM in_use) \
             RETURNING rp.id, rp.generation \
         ), gone AS ( \
             DELETE FROM inventories i USING bumped \
             WHERE i.resource_provider_id = bumped.id \
               AND i.resource_class_id NOT IN (SELECT resource_class_id FROM wanted) \
         ), up AS ( \
             INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, \
                                      min_unit, max_unit, step_size, allocation_ratio) \
             SELECT bumped.id, wanted.* FROM bumped, wanted \
             ON CONFLICT (resource_provider_id, resource_class_id) DO UPDATE \
             SET total = excluded.total, reserved = excluded.reserved, \
                 min_unit = excluded.min_unit, max_unit = excluded.max_unit, \
                 step_size = excluded.step_size, allocation_ratio = excluded.allocation_ratio, \
                 updated_at = now() \
         ) \
         SELECT provider.generation, bumped.generation AS written, \
                ARRAY(SELECT resource_class_id FROM in_use ORDER BY 1) AS in_use, \
                ARRAY(SELECT resource_class_id FROM usage ORDER BY 1) AS used_classes, \
                ARRAY(SELECT used FROM usage ORDER BY resource_class_id) AS used_amounts \
         FROM provider LEFT JOIN bumped ON true";
    let column = |pick: fn(&InventoryValues) -> i64| -> Vec<i64> {
        records.iter().map(|(_, values)| pick(values)).collect()
    };
    let classes: Vec<i32> = records.iter().map(|(class_id, _)| *class_id).collect();
    let ratios: Vec<f64> = records
        .iter()
        .map(|(_, values)| values.allocation_ratio)
        .collect();
    let rows: Vec<ReplaceAllOutcome> = Prepared(
        diesel::sql_query(SQL)
            .bind::<SqlUuid, _>(uuid)
            .bind::<BigInt, _>(expected)
            .bind::<Array<Integer>, _>(&classes)
            .bind::<Array<BigInt>, _>(column(|v| v.total))
            .bind::<Array<BigInt>, _>(column(|v| v.reserved))
            .bind::<Array<BigInt>, _>(column(|v| v.min_unit))
            .bind::<Array<BigInt>, _>(column(|v| v.max_unit))
            .bind::<Array<BigInt>, _>(column(|v| v.step_size))
            .bind::<Array<Double>, _>(&ratios),
    )
    .load(connection)?;
    Ok(rows.into_iter().next())
}
