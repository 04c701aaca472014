//! Queries on `consumers`, `projects`, `users` and `consumer_types`. The
//! get-or-create functions are race-safe: `INSERT ... ON CONFLICT DO
//! NOTHING`, then a fresh read (under READ COMMITTED each statement sees
//! what concurrent transactions committed before it).

use diesel::prelude::*;
use uuid::Uuid;

use super::Connection;
use super::schema::{consumer_types, consumers, projects, users};

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = consumers)]
pub struct ConsumerRow {
    pub id: i32,
    pub uuid: Uuid,
    pub project_id: i32,
    pub user_id: i32,
    pub generation: i32,
    pub consumer_type_id: Option<i32>,
}

/// The id of the row of `$table` whose `$column` is `$value`, created if
/// missing. Reads first so that the common case inserts nothing (and
/// spends no sequence value); a concurrent creator wins the insert and the
/// read after it finds its row.
///
/// ```sql
/// SELECT id FROM $table WHERE $column = $1;
/// -- when absent:
/// INSERT INTO $table ($column) VALUES ($1) ON CONFLICT DO NOTHING;
/// SELECT id FROM $table WHERE $column = $1;
/// ```
macro_rules! ensure_named_row {
    ($connection:expr, $table:ident, $column:ident, $value:expr) => {{
        let existing = $table::table
            .filter($table::$column.eq($value))
            .select($table::id)
            .first($connection)
            .optional()?;
        match existing {
            Some(id) => Ok(id),
            None => {
                diesel::insert_into($table::table)
                    .values($table::$column.eq($value))
                    .on_conflict_do_nothing()
                    .execute($connection)?;
                $table::table
                    .filter($table::$column.eq($value))
                    .select($table::id)
                    .first($connection)
            }
        }
    }};
}

/// The id of the project with this external id, created if missing.
pub fn ensure_project(connection: &mut Connection, external_id: &str) -> QueryResult<i32> {
    ensure_named_row!(connection, projects, external_id, external_id)
}

/// The id of the user with this external id, created if missing.
pub fn ensure_user(connection: &mut Connection, external_id: &str) -> QueryResult<i32> {
    ensure_named_row!(connection, users, external_id, external_id)
}

/// The id of the consumer type with this name, created if missing.
pub fn ensure_consumer_type(connection: &mut Connection, name: &str) -> QueryResult<i32> {
    ensure_named_row!(connection, consumer_types, name, name)
}

/// The existing consumers among `uuids`.
pub fn list_by_uuids(connection: &mut Connection, uuids: &[Uuid]) -> QueryResult<Vec<ConsumerRow>> {
    consumers::table
        .filter(consumers::uuid.eq_any(uuids))
        .select(ConsumerRow::as_select())
        .load(connection)
}

/// What a write sets on a consumer row.
pub struct ConsumerFields {
    pub project_id: i32,
    pub user_id: i32,
    /// `None` keeps the current type (writes before 1.38 carry none).
    pub consumer_type_id: Option<i32>,
}

/// Creates a consumer at generation 1 (created and written in one go).
/// `None` when a concurrent transaction created it first.
///
/// ```sql
/// INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation)
/// VALUES ($1, $2, $3, $4, 1) ON CONFLICT DO NOTHING RETURNING id
/// ```
pub fn insert(
    connection: &mut Connection,
    uuid: Uuid,
    fields: &ConsumerFields,
) -> QueryResult<Option<i32>> {
    diesel::insert_into(consumers::table)
        .values((
            consumers::uuid.eq(uuid),
            consumers::project_id.eq(fields.project_id),
            consumers::user_id.eq(fields.user_id),
            consumers::consumer_type_id.eq(fields.consumer_type_id),
            consumers::generation.eq(1),
        ))
        .on_conflict_do_nothing()
        .returning(consumers::id)
        .get_result(connection)
        .optional()
}

/// The consumer generation compare-and-swap, also applying the request's
/// project, user and type. `false` when the generation is no longer
/// `expected`.
///
/// ```sql
/// UPDATE consumers SET generation = $2 + 1, project_id = $3, user_id = $4,
///        consumer_type_id = COALESCE($5, consumer_type_id), updated_at = now()
/// WHERE id = $1 AND generation = $2
/// ```
pub fn bump_generation(
    connection: &mut Connection,
    consumer: &ConsumerRow,
    fields: &ConsumerFields,
) -> QueryResult<bool> {
    let consumer_type_id = fields.consumer_type_id.or(consumer.consumer_type_id);
    let updated = diesel::update(
        consumers::table
            .filter(consumers::id.eq(consumer.id))
            .filter(consumers::generation.eq(consumer.generation)),
    )
    .set((
        consumers::generation.eq(consumer.generation + 1),
        consumers::project_id.eq(fields.project_id),
        consumers::user_id.eq(fields.user_id),
        consumers::consumer_type_id.eq(consumer_type_id),
        consumers::updated_at.eq(diesel::dsl::now),
    ))
    .execute(connection)?;
    Ok(updated == 1)
}

pub fn delete_by_uuids(connection: &mut Connection, uuids: &[Uuid]) -> QueryResult<usize> {
    diesel::delete(consumers::table.filter(consumers::uuid.eq_any(uuids))).execute(connection)
}
