//! Queries on `resource_providers`, including the generation
//! compare-and-swap every provider-changing write goes through.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::Connection;
use super::schema::resource_providers;

#[derive(Queryable, Selectable, Clone, Debug)]
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
