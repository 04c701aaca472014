//! The change feed of `GET /changes` (`change_feed`, filled at commit by
//! the trigger of migration `..._change_feed`) and the two reads
//! `POST /claims` makes under its affinity locks. No upstream counterpart.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Uuid as SqlUuid};
use uuid::Uuid;

use super::Connection;

/// One answer row of `since`: the pruning mark, and one change (absent
/// when nothing is newer than the cursor).
#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    #[diesel(sql_type = BigInt)]
    pub pruned_through: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub seq: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub provider_uuid: Option<Uuid>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub generation: Option<i32>,
}

/// The first `limit` changes after `after`, in seq (commit) order, with
/// the pruning mark, in one snapshot.
///
/// ```sql
/// SELECT p.through, c.seq, c.provider_uuid, c.generation
/// FROM change_feed_pruned p LEFT JOIN LATERAL (
///     SELECT seq, provider_uuid, generation FROM change_feed
///     WHERE seq > $1 AND provider_uuid IS NOT NULL ORDER BY seq LIMIT $2) c ON TRUE
/// ORDER BY c.seq
/// ```
pub fn since(connection: &mut Connection, after: i64, limit: i64) -> QueryResult<Vec<FeedRow>> {
    diesel::sql_query(
        "SELECT p.through AS pruned_through, c.seq, c.provider_uuid, c.generation \
         FROM change_feed_pruned p LEFT JOIN LATERAL ( \
             SELECT seq, provider_uuid, generation FROM change_feed \
             WHERE seq > $1 AND provider_uuid IS NOT NULL ORDER BY seq LIMIT $2) c ON TRUE \
         ORDER BY c.seq",
    )
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(connection)
}

#[derive(QueryableByName)]
struct CursorRow {
    #[diesel(sql_type = BigInt)]
    cursor: i64,
}

/// The newest seq committed (or the pruning mark when the feed is empty).
pub fn head(connection: &mut Connection) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT GREATEST((SELECT COALESCE(max(seq), 0) FROM change_feed), \
                         (SELECT through FROM change_feed_pruned))::bigint AS cursor",
    )
    .get_result::<CursorRow>(connection)
    .map(|row| row.cursor)
}

/// Deletes all but the newest `keep` rows and moves the pruning mark.
pub fn prune(connection: &mut Connection, keep: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "WITH gone AS (DELETE FROM change_feed \
                       WHERE seq <= (SELECT max(seq) FROM change_feed) - $1 RETURNING seq) \
         UPDATE change_feed_pruned SET through = GREATEST(through, (SELECT max(seq) FROM gone)) \
         WHERE EXISTS (SELECT 1 FROM gone)",
    )
    .bind::<BigInt, _>(keep)
    .execute(connection)
}

/// Takes, until the transaction ends, one advisory lock per key, in the
/// order given (callers sort them, so two claims naming the same
/// consumers queue and never deadlock). The keys live in a class of
/// two-key advisory locks of their own.
pub fn lock_keys(connection: &mut Connection, sorted_keys: &[i32]) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(1886151012, k) FROM unnest($1::int4[]) AS k")
        .bind::<Array<Integer>, _>(sorted_keys)
        .execute(connection)
        .map(|_| ())
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    #[diesel(sql_type = SqlUuid)]
    pub consumer_uuid: Uuid,
    #[diesel(sql_type = Integer)]
    pub root_provider_id: i32,
}

/// The hosts (root providers) each of `consumers` has allocations on.
pub fn hosts_of(connection: &mut Connection, consumers: &[Uuid]) -> QueryResult<Vec<HostRow>> {
    diesel::sql_query(
        "SELECT DISTINCT a.consumer_id AS consumer_uuid, rp.root_provider_id \
         FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id \
         WHERE a.consumer_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(consumers)
    .load(connection)
}
