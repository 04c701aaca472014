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

/// Inserts a trait unless it exists; returns the row and whether this
/// call created it, or `None` when the trait existed at the insert but
/// was deleted before it could be read.
pub fn ensure(connection: &mut Connection, name: &str) -> QueryResult<Option<(TraitRow, bool)>> {
    let inserted = diesel::insert_into(traits::table)
        .values(traits::name.eq(name))
        .on_conflict_do_nothing()
        .returning(TraitRow::as_returning())
        .get_result(connection)
        .optional()?;
    match inserted {
        Some(row) => Ok(Some((row, true))),
        None => Ok(get_by_name(connection, name)?.map(|row| (row, false))),
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

/// Replaces the traits of a provider with `trait_ids`; returns how many
/// links it removed.
pub fn replace_for_provider(
    connection: &mut Connection,
    provider_id: i32,
    trait_ids: &[i32],
) -> QueryResult<usize> {
    let removed = diesel::delete(
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
    Ok(removed)
}

/// What one `replace_for_provider_uuid` statement found and did.
#[derive(Debug)]
pub struct ProviderTraitsWrite {
    /// The provider's generation as the statement first read it.
    pub generation: i32,
    /// Its generation after the write; `None` when nothing was written.
    pub written: Option<i32>,
    /// The rows of the requested names that exist.
    pub traits: Vec<TraitRow>,
}

#[derive(QueryableByName)]
struct ProviderTraitsRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    generation: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    written: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    trait_id: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    updated_at: Option<DateTime<Utc>>,
}

/// Makes the traits named `names` (distinct) the traits of the provider
/// `uuid`, if it is at generation `expected` and every name exists, and
/// bumps its generation when that changes its set of traits (upstream's
/// `_set_traits` leaves provider and generation alone otherwise): one statement, atomic without a transaction
/// around it, so the write costs one round trip. `None` when there is no
/// such provider. When a condition fails nothing is written and the
/// answer says which: `written` is `None`, and `generation` and `traits`
/// tell a stale generation and unknown names apart from a lost race.
///
/// The compare-and-swap guards the link changes: under READ COMMITTED
/// the `UPDATE` waits for a concurrent writer of the provider row and
/// checks the generation again on the row it left.
///
/// ```sql
/// WITH provider AS (SELECT id, generation FROM resource_providers WHERE uuid = $1),
///      wanted AS (SELECT * FROM traits WHERE name = ANY($3)),
///      changed AS (SELECT links of provider not wanted OR wanted not linked),
///      bumped AS (UPDATE resource_providers ... generation + (changed ? 1 : 0) WHERE generation = $2
///                 AND (SELECT count(*) FROM wanted) = cardinality($3) RETURNING ...),
///      gone AS (DELETE FROM resource_provider_traits ... links of bumped not wanted),
///      added AS (INSERT INTO resource_provider_traits ... wanted x bumped ON CONFLICT DO NOTHING)
/// SELECT ... FROM provider LEFT JOIN bumped LEFT JOIN wanted
/// ```
pub fn replace_for_provider_uuid(
    connection: &mut Connection,
    uuid: uuid::Uuid,
    expected: i64,
    names: &[String],
) -> QueryResult<Option<ProviderTraitsWrite>> {
    use diesel::sql_types::{Array, BigInt, Text, Uuid as SqlUuid};
    const SQL: &str = "WITH provider AS ( \
             SELECT id, generation FROM resource_providers WHERE uuid = $1 \
         ), wanted AS ( \
             SELECT id, name, created_at, updated_at FROM traits WHERE name = ANY($3) \
         ), changed AS ( \
             SELECT EXISTS ( \
                 SELECT 1 FROM resource_provider_traits link, provider \
                 WHERE link.resource_provider_id = provider.id \
                   AND link.trait_id NOT IN (SELECT id FROM wanted) \
             ) OR EXISTS ( \
                 SELECT 1 FROM wanted, provider WHERE NOT EXISTS ( \
                     SELECT 1 FROM resource_provider_traits link \
                     WHERE link.resource_provider_id = provider.id AND link.trait_id = wanted.id) \
             ) AS yes \
         ), bumped AS ( \
             UPDATE resource_providers rp SET \
                 generation = rp.generation + CASE WHEN changed.yes THEN 1 ELSE 0 END, \
                 updated_at = CASE WHEN changed.yes THEN now() ELSE rp.updated_at END \
             FROM provider, changed \
             WHERE rp.id = provider.id AND rp.generation = $2 \
               AND (SELECT count(*) FROM wanted) = cardinality($3::text[]) \
             RETURNING rp.id, rp.generation \
         ), gone AS ( \
             DELETE FROM resource_provider_traits link USING bumped \
             WHERE link.resource_provider_id = bumped.id \
               AND link.trait_id NOT IN (SELECT id FROM wanted) \
         ), added AS ( \
             INSERT INTO resource_provider_traits (trait_id, resource_provider_id) \
             SELECT wanted.id, bumped.id FROM wanted, bumped ON CONFLICT DO NOTHING \
         ) \
         SELECT provider.generation, bumped.generation AS written, wanted.id AS trait_id, \
                wanted.name, wanted.created_at, wanted.updated_at \
         FROM provider LEFT JOIN bumped ON true LEFT JOIN wanted ON true";
    let rows: Vec<ProviderTraitsRow> = super::prepared::Prepared(
        diesel::sql_query(SQL)
            .bind::<SqlUuid, _>(uuid)
            .bind::<BigInt, _>(expected)
            .bind::<Array<Text>, _>(names),
    )
    .load(connection)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let (generation, written) = (first.generation, first.written);
    let traits = rows
        .into_iter()
        .filter_map(|row| {
            Some(TraitRow {
                id: row.trait_id?,
                name: row.name?,
                created_at: row.created_at?,
                updated_at: row.updated_at,
            })
        })
        .collect();
    Ok(Some(ProviderTraitsWrite {
        generation,
        written,
        traits,
    }))
}
