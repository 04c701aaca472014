//! Queries on `resource_classes`. Standard classes have the ids of their
//! position in os-resource-classes; custom ones come from a sequence
//! starting at `MIN_CUSTOM_ID`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Connection;
use super::schema::{inventories, resource_classes};

/// The first id of a custom resource class.
pub const MIN_CUSTOM_ID: i32 = 10000;

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = resource_classes)]
pub struct ResourceClassRow {
    pub id: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ResourceClassRow {
    pub fn is_standard(&self) -> bool {
        self.id < MIN_CUSTOM_ID
    }
}

pub fn list(connection: &mut Connection) -> QueryResult<Vec<ResourceClassRow>> {
    resource_classes::table
        .order(resource_classes::id)
        .select(ResourceClassRow::as_select())
        .load(connection)
}

pub fn get_by_name(
    connection: &mut Connection,
    name: &str,
) -> QueryResult<Option<ResourceClassRow>> {
    resource_classes::table
        .filter(resource_classes::name.eq(name))
        .select(ResourceClassRow::as_select())
        .first(connection)
        .optional()
}

/// Ids of the named classes; names that do not exist are absent.
pub fn ids_by_name(
    connection: &mut Connection,
    names: &[&str],
) -> QueryResult<HashMap<String, i32>> {
    let rows: Vec<(i32, String)> = resource_classes::table
        .filter(resource_classes::name.eq_any(names))
        .select((resource_classes::id, resource_classes::name))
        .load(connection)?;
    Ok(rows.into_iter().map(|(id, name)| (name, id)).collect())
}

/// Every class name by id.
pub fn names_by_id(connection: &mut Connection) -> QueryResult<HashMap<i32, String>> {
    let rows: Vec<(i32, String)> = resource_classes::table
        .select((resource_classes::id, resource_classes::name))
        .load(connection)?;
    Ok(rows.into_iter().collect())
}

/// Inserts a custom class; a name already taken is a unique violation.
pub fn insert_custom(connection: &mut Connection, name: &str) -> QueryResult<ResourceClassRow> {
    diesel::insert_into(resource_classes::table)
        .values((
            resource_classes::id.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
                "nextval('custom_resource_class_id_seq')::integer",
            )),
            resource_classes::name.eq(name),
        ))
        .returning(ResourceClassRow::as_returning())
        .get_result(connection)
}

pub fn rename(connection: &mut Connection, id: i32, name: &str) -> QueryResult<ResourceClassRow> {
    diesel::update(resource_classes::table.find(id))
        .set((
            resource_classes::name.eq(name),
            resource_classes::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ResourceClassRow::as_returning())
        .get_result(connection)
}

pub fn is_used_by_inventory(connection: &mut Connection, id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        inventories::table.filter(inventories::resource_class_id.eq(id)),
    ))
    .get_result(connection)
}

pub fn delete(connection: &mut Connection, id: i32) -> QueryResult<usize> {
    diesel::delete(resource_classes::table.find(id)).execute(connection)
}
