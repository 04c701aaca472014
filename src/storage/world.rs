//! What the in-memory `World` of allocation candidates is loaded from: the
//! provider change log (`provider_changes`, filled by triggers, see the
//! `change_log` migration) and bulk reads of providers, inventories,
//! usages, traits, aggregates and the name tables, either for every
//! provider or for a batch of them. No upstream counterpart: upstream
//! queries the database on every request.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Uuid as SqlUuid, Varchar};
use uuid::Uuid;

use super::Connection;
use super::inventories::{InventoryValues, NumberColumns};
use super::prepared::Prepared;

/// Which providers a bulk read covers.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    All,
    Providers(&'a [i32]),
}

/// One answer row of `changes_since`: the snapshot's facts, and one change
/// (absent when nothing matched).
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// `pg_snapshot_xmin` of the statement's snapshot: every transaction
    /// with a lower id had ended when the rows were read.
    #[diesel(sql_type = BigInt)]
    pub xmin: i64,
    /// Every change at or below this seq has been pruned.
    #[diesel(sql_type = BigInt)]
    pub pruned_through: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub seq: Option<i64>,
    /// The provider changed; `None` on a change row means "the class or
    /// trait names changed".
    #[diesel(sql_type = Nullable<Integer>)]
    pub provider_id: Option<i32>,
    /// When asked for: a transaction id assigned while the statement ran
    /// (after its snapshot was taken), the same on every row.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub fresh_xid: Option<i64>,
}

/// The changes after `after`, plus those of `gaps` (seqs below `after`
/// not seen yet), with the snapshot's xmin and the pruning mark, in one
/// statement so they describe one snapshot; and, when `want_xid`, a fresh
/// transaction id (assigned while the statement runs, so after every gap
/// seen by an earlier refresh: the watermark of those gaps). When nothing
/// changed this is one row from two index probes (the primary key of
/// `provider_changes` and of `provider_changes_pruned`). The query lives
/// in the `provider_changes_since` function, whose plan is made once per
/// session (see its migration).
///
/// ```sql
/// SELECT xmin, pruned_through, fresh_xid, seq, provider_id
/// FROM provider_changes_since($1, $2, $3) ORDER BY seq
/// ```
pub fn changes_since(
    connection: &mut Connection,
    after: i64,
    gaps: &[i64],
    want_xid: bool,
) -> QueryResult<Vec<ChangeRow>> {
    Prepared(
        diesel::sql_query(
            "SELECT xmin, pruned_through, fresh_xid, seq, provider_id \
             FROM provider_changes_since($1, $2, $3) ORDER BY seq",
        )
        .bind::<BigInt, _>(after)
        .bind::<Array<BigInt>, _>(gaps)
        .bind::<Bool, _>(want_xid),
    )
    .load(connection)
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct LogHeadRow {
    #[diesel(sql_type = BigInt)]
    pub last_seq: i64,
    #[diesel(sql_type = BigInt)]
    pub pruned_through: i64,
}

/// The newest change and the pruning mark, for a full load (run in the
/// load's snapshot).
///
/// ```sql
/// SELECT COALESCE((SELECT max(seq) FROM provider_changes), 0) AS last_seq,
///        through AS pruned_through
/// FROM provider_changes_pruned
/// ```
pub fn log_head(connection: &mut Connection) -> QueryResult<LogHeadRow> {
    diesel::sql_query(
        "SELECT COALESCE((SELECT max(seq) FROM provider_changes), 0)::bigint AS last_seq, \
                through AS pruned_through \
         FROM provider_changes_pruned",
    )
    .get_result(connection)
}

#[derive(QueryableByName)]
struct SeqRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// The seqs present in `(after, through]`, ascending.
pub fn seqs_between(
    connection: &mut Connection,
    after: i64,
    through: i64,
) -> QueryResult<Vec<i64>> {
    let rows: Vec<SeqRow> = diesel::sql_query(
        "SELECT seq FROM provider_changes WHERE seq > $1 AND seq <= $2 ORDER BY seq",
    )
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(through)
    .load(connection)?;
    Ok(rows.into_iter().map(|row| row.seq).collect())
}

#[derive(QueryableByName)]
struct XidRow {
    #[diesel(sql_type = BigInt)]
    xid: i64,
}

/// A fresh transaction id, larger than that of every transaction that had
/// written anything before this call. Used as the watermark of the gaps
/// seen just before: once the snapshot xmin passes it, their writers have
/// all ended. Must run outside a transaction (it commits an empty one).
///
/// ```sql
/// SELECT pg_current_xact_id()::text::bigint AS xid
/// ```
pub fn fresh_transaction_id(connection: &mut Connection) -> QueryResult<i64> {
    let row: XidRow = diesel::sql_query("SELECT pg_current_xact_id()::text::bigint AS xid")
        .get_result(connection)?;
    Ok(row.xid)
}

/// Deletes the changes older than `max_age_seconds` (every seq up to the
/// newest such one) and raises the pruning mark to match, in one
/// statement so that readers see both or neither.
///
/// ```sql
/// WITH cut AS (
///     SELECT max(seq) AS through FROM provider_changes
///     WHERE changed_at < now() - make_interval(secs => $1)
/// ), gone AS (
///     DELETE FROM provider_changes WHERE seq <= (SELECT through FROM cut)
/// )
/// UPDATE provider_changes_pruned p SET through = cut.through
/// FROM cut WHERE cut.through > p.through
/// ```
pub fn prune(connection: &mut Connection, max_age_seconds: f64) -> QueryResult<usize> {
    diesel::sql_query(
        "WITH cut AS ( \
             SELECT max(seq) AS through FROM provider_changes \
             WHERE changed_at < now() - make_interval(secs => $1) \
         ), gone AS ( \
             DELETE FROM provider_changes WHERE seq <= (SELECT through FROM cut) \
         ) \
         UPDATE provider_changes_pruned p SET through = cut.through \
         FROM cut WHERE cut.through > p.through",
    )
    .bind::<Double, _>(max_age_seconds)
    .execute(connection)
}

// --- bulk reads ---------------------------------------------------------

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    #[diesel(sql_type = Integer)]
    pub id: i32,
    #[diesel(sql_type = SqlUuid)]
    pub uuid: Uuid,
    #[diesel(sql_type = Integer)]
    pub generation: i32,
    #[diesel(sql_type = Nullable<Integer>)]
    pub parent_provider_id: Option<i32>,
    #[diesel(sql_type = Integer)]
    pub root_provider_id: i32,
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub struct InventoryRow {
    #[diesel(sql_type = Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = Integer)]
    pub resource_class_id: i32,
    #[diesel(embed)]
    pub values: InventoryValues,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    #[diesel(sql_type = Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = Integer)]
    pub resource_class_id: i32,
    #[diesel(sql_type = BigInt)]
    pub used: i64,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct TraitLinkRow {
    #[diesel(sql_type = Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = Integer)]
    pub trait_id: i32,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct AggregateLinkRow {
    #[diesel(sql_type = Integer)]
    pub resource_provider_id: i32,
    #[diesel(sql_type = Integer)]
    pub aggregate_id: i32,
    #[diesel(sql_type = SqlUuid)]
    pub aggregate_uuid: Uuid,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct NameRow {
    #[diesel(sql_type = Integer)]
    pub id: i32,
    #[diesel(sql_type = Varchar)]
    pub name: String,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct AggregateRow {
    #[diesel(sql_type = Integer)]
    pub id: i32,
    #[diesel(sql_type = SqlUuid)]
    pub uuid: Uuid,
}

/// Everything the `World` holds about some providers, read in one
/// snapshot by `load`.
#[derive(Debug, Default)]
pub struct ProviderData {
    pub providers: Vec<ProviderRow>,
    pub inventories: Vec<InventoryRow>,
    pub usages: Vec<UsageRow>,
    pub traits: Vec<TraitLinkRow>,
    pub aggregates: Vec<AggregateLinkRow>,
}

/// `select`, restricted to `scope` by `column = ANY($1)`, then `tail`.
fn load_scoped<T>(
    connection: &mut Connection,
    select: &str,
    column: &str,
    tail: &str,
    scope: Scope<'_>,
) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Pg> + 'static,
{
    match scope {
        Scope::All => diesel::sql_query(format!("{select} {tail}")).load(connection),
        Scope::Providers(ids) => {
            diesel::sql_query(format!("{select} WHERE {column} = ANY($1) {tail}"))
                .bind::<Array<Integer>, _>(ids)
                .load(connection)
        }
    }
}

/// Reads the providers of `scope` with their inventories, usages, traits
/// and aggregates: five queries, each a scan (all) or index probes by
/// provider id (some). Run it in one snapshot (a repeatable-read
/// transaction) for a consistent picture.
///
/// ```sql
/// SELECT id, uuid, generation, parent_provider_id, root_provider_id
/// FROM resource_providers WHERE id = ANY($1);
/// SELECT resource_provider_id, resource_class_id, total, reserved, min_unit,
///        max_unit, step_size, allocation_ratio
/// FROM inventories WHERE resource_provider_id = ANY($1);
/// SELECT resource_provider_id, resource_class_id, SUM(used)::bigint AS used
/// FROM allocations WHERE resource_provider_id = ANY($1)
/// GROUP BY resource_provider_id, resource_class_id;
/// SELECT resource_provider_id, trait_id
/// FROM resource_provider_traits WHERE resource_provider_id = ANY($1);
/// SELECT rpa.resource_provider_id, rpa.aggregate_id, pa.uuid AS aggregate_uuid
/// FROM resource_provider_aggregates rpa
/// JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id
/// WHERE rpa.resource_provider_id = ANY($1);
/// ```
pub fn load(connection: &mut Connection, scope: Scope<'_>) -> QueryResult<ProviderData> {
    Ok(ProviderData {
        providers: load_scoped(
            connection,
            "SELECT id, uuid, generation, parent_provider_id, root_provider_id \
             FROM resource_providers",
            "id",
            "",
            scope,
        )?,
        inventories: load_scoped(
            connection,
            "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit, \
                    max_unit, step_size, allocation_ratio \
             FROM inventories",
            "resource_provider_id",
            "",
            scope,
        )?,
        usages: load_scoped(
            connection,
            "SELECT resource_provider_id, resource_class_id, SUM(used)::bigint AS used \
             FROM allocations",
            "resource_provider_id",
            "GROUP BY resource_provider_id, resource_class_id",
            scope,
        )?,
        traits: load_scoped(
            connection,
            "SELECT resource_provider_id, trait_id FROM resource_provider_traits",
            "resource_provider_id",
            "",
            scope,
        )?,
        aggregates: load_scoped(
            connection,
            "SELECT rpa.resource_provider_id, rpa.aggregate_id, pa.uuid AS aggregate_uuid \
             FROM resource_provider_aggregates rpa \
             JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id",
            "rpa.resource_provider_id",
            "",
            scope,
        )?,
    })
}

/// The name tables: classes, traits and aggregates.
#[derive(Debug, Default)]
pub struct Names {
    pub classes: Vec<NameRow>,
    pub traits: Vec<NameRow>,
    pub aggregates: Vec<AggregateRow>,
}

/// Reads every class, trait and aggregate.
///
/// ```sql
/// SELECT id, name FROM resource_classes;
/// SELECT id, name FROM traits;
/// SELECT id, uuid FROM placement_aggregates;
/// ```
pub fn load_names(connection: &mut Connection) -> QueryResult<Names> {
    Ok(Names {
        classes: diesel::sql_query("SELECT id, name FROM resource_classes").load(connection)?,
        traits: diesel::sql_query("SELECT id, name FROM traits").load(connection)?,
        aggregates: diesel::sql_query("SELECT id, uuid FROM placement_aggregates")
            .load(connection)?,
    })
}

// --- rows of one reload --------------------------------------------------

/// What one row of `load_changed` carries; see `RefreshRow`.
pub mod kind {
    pub const PROVIDER: i32 = 2;
    pub const INVENTORY: i32 = 3;
    pub const USAGE: i32 = 4;
    pub const TRAIT_LINK: i32 = 5;
    pub const AGGREGATE_LINK: i32 = 6;
}

/// One row of `load_changed`, its columns meaning, by `kind`:
///
/// | kind | id | ref_id | root_id | generation | uuid | name | n1..n5, ratio |
/// | --- | --- | --- | --- | --- | --- | --- | --- |
/// | PROVIDER | provider | parent | root | generation | uuid | | |
/// | INVENTORY | provider | class | | | | | total, reserved, min_unit, max_unit, step_size, ratio |
/// | USAGE | provider | class | | | | | used |
/// | TRAIT_LINK | provider | trait | | | | | |
/// | AGGREGATE_LINK | provider | aggregate | | | aggregate uuid | | |
#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub struct RefreshRow {
    #[diesel(sql_type = Integer)]
    pub kind: i32,
    #[diesel(sql_type = Nullable<Integer>)]
    pub id: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub ref_id: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub root_id: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub generation: Option<i32>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub uuid: Option<Uuid>,
    #[diesel(sql_type = Nullable<Varchar>)]
    pub name: Option<String>,
    #[diesel(embed)]
    pub numbers: NumberColumns,
}

/// What the `World` holds about the providers `ids` (their rows,
/// inventories, usage, trait and aggregate links), in one statement (one
/// snapshot, one round trip), as `RefreshRow`s of kinds PROVIDER to
/// AGGREGATE_LINK: the function `provider_rows` (migration
/// `..._provider_rows_function`), whose plan is made once per session.
///
/// ```sql
/// SELECT PROVIDER, ... FROM resource_providers WHERE id = ANY($1)
/// UNION ALL SELECT INVENTORY, ... FROM inventories WHERE resource_provider_id = ANY($1)
/// UNION ALL SELECT USAGE, resource_provider_id, resource_class_id, SUM(used)
///           FROM allocations WHERE resource_provider_id = ANY($1) GROUP BY 2, 3
/// UNION ALL SELECT TRAIT_LINK, ... FROM resource_provider_traits WHERE ...
/// UNION ALL SELECT AGGREGATE_LINK, ..., pa.uuid FROM resource_provider_aggregates rpa
///           JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id WHERE ...
/// ```
pub fn load_changed(connection: &mut Connection, ids: &[i32]) -> QueryResult<Vec<RefreshRow>> {
    const SQL: &str = "SELECT kind, id, ref_id, root_id, generation, uuid, name, \
                n1, n2, n3, n4, n5, ratio FROM provider_rows($1)";
    Prepared(diesel::sql_query(SQL).bind::<Array<Integer>, _>(ids)).load(connection)
}
