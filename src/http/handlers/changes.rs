//! `GET /changes` (this server's extension): the providers changed since
//! a cursor, in commit order, with long polling (`wait`) and 410 for a
//! cursor older than the feed keeps.

use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::domain::changes::{self as domain, Feed};
use crate::errors::{ApiError, ErrorCode};
use crate::http::Request;
use crate::http::query::Query;
use crate::policy::actions;
use crate::schemas::claims::{CHANGES_QUERY, ChangeView, ChangesView};

/// Changes per answer; a follower pages on with the cursor.
const PAGE: i64 = 1000;
/// How often a waiting request looks for new changes: the feed is one
/// indexed read, so this bounds a change's delay, not the load.
const POLL: Duration = Duration::from_millis(50);

pub async fn list_changes(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::CHANGES_LIST)?;
    let query = Query::parse(request.query_string());
    query.validate(&CHANGES_QUERY)?;
    // The schema admits digits only, and at most 18 of them.
    let since: Option<i64> = query.get("since").and_then(|text| text.parse().ok());
    let wait = Duration::from_secs(
        query
            .get("wait")
            .and_then(|text| text.parse().ok())
            .unwrap_or(0),
    );
    let Some(since) = since else {
        let cursor = request.state.db.run(domain::head).await?;
        return Ok(request.json_ok(
            &ChangesView {
                changes: Vec::new(),
                cursor: cursor.to_string(),
            },
            None,
        ));
    };
    let keep = i64::from(request.state.config.change_feed_retention);
    let deadline = Instant::now() + wait;
    loop {
        let feed = request
            .state
            .db
            .run(move |connection| domain::since(connection, since, PAGE, keep))
            .await?;
        let (changes, cursor) = match feed {
            Feed::Expired => {
                return Err(ApiError::new(
                    StatusCode::GONE,
                    format!(
                        "Cursor {since} is older than the changes kept. List the resource \
                         providers again and follow the feed from a new cursor."
                    ),
                )
                .with_code(ErrorCode::ChangesCursorExpired));
            }
            Feed::Changes { changes, cursor } => (changes, cursor),
        };
        if !changes.is_empty() || Instant::now() >= deadline {
            let view = ChangesView {
                changes: changes
                    .into_iter()
                    .map(|change| ChangeView {
                        seq: change.seq,
                        resource_provider_uuid: change.provider_uuid.to_string(),
                        generation: change.generation,
                    })
                    .collect(),
                cursor: cursor.to_string(),
            };
            return Ok(request.json_ok(&view, None));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}
