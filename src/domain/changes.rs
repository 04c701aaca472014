//! `GET /changes`: the providers changed since a cursor, in commit order
//! (see `storage::changes` and migration `..._change_feed`).

use uuid::Uuid;

use crate::errors::DomainError;
use crate::storage::Connection;
use crate::storage::changes as store;

/// One provider change: its place in the feed, and the provider's
/// generation as the change committed it (`None`: deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub provider_uuid: Uuid,
    pub generation: Option<i32>,
}

/// What a follower gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The changes after the cursor (at most the page size), and the
    /// cursor to follow with.
    Changes { changes: Vec<Change>, cursor: i64 },
    /// The cursor is older than the feed keeps: relist.
    Expired,
}

/// The current cursor: everything committed so far is at or below it.
pub fn head(connection: &mut Connection) -> Result<i64, DomainError> {
    Ok(store::head(connection)?)
}

/// Up to `page` changes after `after`, keeping the newest `keep`.
pub fn since(
    connection: &mut Connection,
    after: i64,
    page: i64,
    keep: i64,
) -> Result<Feed, DomainError> {
    store::prune(connection, keep)?;
    let rows = store::since(connection, after, page)?;
    let pruned_through = rows.first().map_or(0, |row| row.pruned_through);
    if after < pruned_through {
        return Ok(Feed::Expired);
    }
    let changes: Vec<Change> = rows
        .into_iter()
        .filter_map(|row| {
            Some(Change {
                seq: row.seq?,
                provider_uuid: row.provider_uuid?,
                generation: row.generation,
            })
        })
        .collect();
    let cursor = changes.last().map_or(after, |change| change.seq);
    Ok(Feed::Changes { changes, cursor })
}
