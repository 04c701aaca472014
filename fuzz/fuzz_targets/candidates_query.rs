//! `GET /allocation_candidates` query strings: parsing, the schema of the
//! microversion and the request grammar (groups, traits, member_of,
//! same_subtree) never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use placement::http::query::Query;
use placement::schemas::allocation_candidates::{list_query_schema, parse_candidates_query};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let version = common::version(first);
    let query = Query::parse(&String::from_utf8_lossy(rest));
    if query.validate(list_query_schema(version)).is_ok() {
        let _ = parse_candidates_query(query.pairs(), version);
    }
});
