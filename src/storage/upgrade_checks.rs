//! The read-only queries of `placement status upgrade check`
//! (`crate::status`): what upstream's checks count, the migrations not yet
//! applied and the standard data not yet synced. Answers to the queries in
//! upstream's `placement/cmd/status.py`.

use std::collections::HashSet;

use diesel::dsl::{count, sql};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::{allocations, consumers, resource_classes, resource_providers, traits};
use super::standard_data::{standard_resource_classes, standard_traits};
use super::{Connection, StorageError};

diesel::table! {
    /// diesel's record of the migrations applied, one row per version.
    __diesel_schema_migrations (version) {
        version -> VarChar,
    }
}

/// How many providers have no root (upstream's
/// `_count_missing_root_provider_ids`). This schema makes the column NOT
/// NULL, so the answer is 0 here; the check still asks, as upstream's does.
///
/// ```sql
/// SELECT count(*) FROM resource_providers WHERE root_provider_id IS NULL
/// ```
pub fn count_missing_root_provider_ids(connection: &mut Connection) -> Result<i64, StorageError> {
    Ok(resource_providers::table
        .filter(resource_providers::root_provider_id.is_null())
        .count()
        .get_result(connection)?)
}

/// How many distinct consumers have allocations but no `consumers` row
/// (upstream's `_count_missing_consumers`).
///
/// ```sql
/// SELECT count(DISTINCT allocations.consumer_id)
/// FROM allocations LEFT JOIN consumers ON consumers.uuid = allocations.consumer_id
/// WHERE consumers.id IS NULL
/// ```
pub fn count_incomplete_consumers(connection: &mut Connection) -> Result<i64, StorageError> {
    Ok(allocations::table
        .left_join(consumers::table.on(consumers::uuid.eq(allocations::consumer_id)))
        .filter(consumers::id.nullable().is_null())
        .select(count(allocations::consumer_id).aggregate_distinct())
        .get_result(connection)?)
}

/// The names of the embedded migrations the database has not applied,
/// oldest first. Reads diesel's bookkeeping table rather than asking
/// `MigrationHarness`, which would create it on a database never migrated.
///
/// ```sql
/// SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL;
/// SELECT version FROM __diesel_schema_migrations;  -- when it exists
/// ```
pub fn pending_migrations(connection: &mut Connection) -> Result<Vec<String>, StorageError> {
    let tracked: bool = diesel::select(sql::<Bool>(
        "to_regclass('__diesel_schema_migrations') IS NOT NULL",
    ))
    .get_result(connection)?;
    let applied: HashSet<String> = if tracked {
        __diesel_schema_migrations::table
            .select(__diesel_schema_migrations::version)
            .load::<String>(connection)?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let embedded = MigrationSource::<Pg>::migrations(&super::migrations::MIGRATIONS)
        .map_err(|error| StorageError::Unavailable(format!("migrations unreadable: {error}")))?;
    Ok(embedded
        .iter()
        .filter(|migration| !applied.contains(&migration.name().version().to_string()))
        .map(|migration| migration.name().to_string())
        .collect())
}

/// The standard resource classes (`data/`) that have no row, in list order.
///
/// ```sql
/// SELECT name FROM resource_classes WHERE name = ANY($1)
/// ```
pub fn missing_standard_resource_classes(
    connection: &mut Connection,
) -> Result<Vec<&'static str>, StorageError> {
    let standard = standard_resource_classes();
    let present = resource_classes::table
        .filter(resource_classes::name.eq_any(&standard))
        .select(resource_classes::name)
        .load::<String>(connection)?;
    Ok(not_in(standard, present))
}

/// The standard traits (`data/`) that have no row, in list order.
///
/// ```sql
/// SELECT name FROM traits WHERE name = ANY($1)
/// ```
pub fn missing_standard_traits(
    connection: &mut Connection,
) -> Result<Vec<&'static str>, StorageError> {
    let standard = standard_traits();
    let present = traits::table
        .filter(traits::name.eq_any(&standard))
        .select(traits::name)
        .load::<String>(connection)?;
    Ok(not_in(standard, present))
}

/// The names of `standard` that `present` lacks, in `standard`'s order.
fn not_in(standard: Vec<&'static str>, present: Vec<String>) -> Vec<&'static str> {
    let present: HashSet<String> = present.into_iter().collect();
    standard
        .into_iter()
        .filter(|name| !present.contains(*name))
        .collect()
}
