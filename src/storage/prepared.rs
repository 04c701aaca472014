//! Raw SQL that PostgreSQL keeps prepared per connection. Diesel never
//! caches `sql_query` statements (it cannot know the text is fixed), so
//! every call would be parsed and planned again; the hot statements of the
//! write path and of the world refresh are fixed texts, and wrapping them
//! in `Prepared` lets diesel's statement cache key them by their text and
//! reuse the server-side prepared statement.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A raw SQL query (`diesel::sql_query(TEXT).bind(...)...`) whose text is
/// a constant: safe to keep prepared.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}
