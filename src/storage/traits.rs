//! Queries on `traits` and `resource_provider_traits`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Connection;
use super::schema::{resource_provider_traits, traits};

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = traits)]
pub struct TraitRow {
    pub id: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Filters of `GET /traits`.
#[derive(Default, Debug)]
pub struct TraitFilter {
    pub name_in: Option<Vec<String>>,
    pub prefix: Option<String>,
    /// Some(true): only traits some provider has; Some(false): only those
    /// none has.
    pub associated: Option<bool>,
}

pub fn list(connection: &mut Connection, filter: &TraitFilter) -> QueryResult<Vec<TraitRow>> {
    let mut query = traits::table.select(TraitRow::as_select()).into_boxed();
    if let Some(names) = &filter.name_in {
        query = query.filter(traits::name.eq_any(names));
    }
    if let Some(prefix) = &filter.prefix {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(traits::name.like(format!("{escaped}%")));
    }
    let associated = resource_provider_traits::table.select(resource_provider_traits::trait_id);
    match filter.associated {
        Some(true) => query = query.filter(traits::id.eq_any(associated)),
        Some(false) => query = query.filter(traits::id.ne_all(associated)),
        None => {}
    }
    query.order(traits::name).load(connection)
}

pub fn get_by_name(connection: &mut Connection, name: &str) -> QueryResult<Option<TraitRow>> {
    traits::table
        .filter(traits::name.eq(name))
        .select(TraitRow::as_select())
        .first(connection)
        .optional()
}

/// Inserts a trait unless it exists; returns the row either way, and
/// whether this call created it.
pub fn ensure(connection: &mut Connection, name: &str) -> QueryResult<(TraitRow, bool)> {
    let inserted = diesel::insert_into(traits::table)
        .values(traits::name.eq(name))
        .on_conflict_do_nothing()
        .returning(TraitRow::as_returning())
        .get_result(connection)
        .optional()?;
    match inserted {
        Some(row) => Ok((row, true)),
        None => traits::table
            .filter(traits::name.eq(name))
            .select(TraitRow::as_select())
            .first(connection)
            .map(|row| (row, false)),
    }
}

pub fn is_associated(connection: &mut Connection, trait_id: i32) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        resource_provider_traits::table.filter(resource_provider_traits::trait_id.eq(trait_id)),
    ))
    .get_result(connection)
}

pub fn delete(connection: &mut Connection, trait_id: i32) -> QueryResult<usize> {
    diesel::delete(traits::table.find(trait_id)).execute(connection)
}

/// The traits of one provider, by name.
pub fn list_for_provider(
    connection: &mut Connection,
    provider_id: i32,
) -> QueryResult<Vec<TraitRow>> {
    traits::table
        .inner_join(resource_provider_traits::table)
        .filter(resource_provider_traits::resource_provider_id.eq(provider_id))
        .select(TraitRow::as_select())
        .order(traits::name)
        .load(connection)
}

/// Replaces the traits of a provider with `trait_ids`.
pub fn replace_for_provider(
    connection: &mut Connection,
    provider_id: i32,
    trait_ids: &[i32],
) -> QueryResult<()> {
    diesel::delete(
        resource_provider_traits::table
            .filter(resource_provider_traits::resource_provider_id.eq(provider_id)),
    )
    .execute(connection)?;
    let rows: Vec<_> = trait_ids
        .iter()
        .map(|trait_id| {
            (
                resource_provider_traits::trait_id.eq(*trait_id),
                resource_provider_traits::resource_provider_id.eq(provider_id),
            )
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(resource_provider_traits::table)
            .values(&rows)
            .execute(connection)?;
    }
    Ok(())
}

/// Makes `trait_ids` the provider's traits (links not wanted removed,
/// missing ones added) and moves the provider from generation `expected`
/// on by compare-and-swap, in one statement. `None` when the generation
/// moved (the caller rolls back).
///
/// ```sql
/// WITH gone AS (
///     DELETE FROM resource_provider_traits
///     WHERE resource_provider_id = $1 AND trait_id <> ALL($3)
/// ), added AS (
///     INSERT INTO resource_provider_traits (trait_id, resource_provider_id)
///     SELECT t, $1 FROM unnest($3::integer[]) t ON CONFLICT DO NOTHING
/// )
/// UPDATE resource_providers SET generation = $2 + 1, updated_at = now()
/// WHERE id = $1 AND generation = $2 RETURNING generation
/// ```
pub fn replace_and_bump(
    connection: &mut Connection,
    provider_id: i32,
    expected: i32,
    trait_ids: &[i32],
) -> QueryResult<Option<i32>> {
    use diesel::sql_types::{Array, Integer};
    const SQL: &str = "WITH gone AS ( \
             DELETE FROM resource_provider_traits \
             WHERE resource_provider_id = $1 AND trait_id <> ALL($3) \
         ), added AS ( \
             INSERT INTO resource_provider_traits (trait_id, resource_provider_id) \
             SELECT t, $1 FROM unnest($3::integer[]) t ON CONFLICT DO NOTHING \
         ) \
         UPDATE resource_providers SET generation = $2 + 1, updated_at = now() \
         WHERE id = $1 AND generation = $2 RETURNING generation";
    let rows: Vec<super::resource_providers::GenerationRow> = super::prepared::Prepared(
        diesel::sql_query(SQL)
            .bind::<Integer, _>(provider_id)
            .bind::<Integer, _>(expected)
            .bind::<Array<Integer>, _>(trait_ids),
    )
    .load(connection)?;
    Ok(rows.first().map(|row| row.generation))
}
