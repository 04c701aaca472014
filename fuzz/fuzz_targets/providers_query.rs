//! `GET /resource_providers` filters: the query parser, the list schema of
//! 1.18 and the value grammars (member_of, required, resources, in_tree)
//! under every combination of their microversion rules never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use placement::http::query::Query;
use placement::schemas::query::{
    MemberOfRules, TraitRules, parse_in_tree, parse_member_of, parse_required, parse_resources,
};
use placement::schemas::resource_providers::LIST_PROVIDERS_QUERY_1_18;

fuzz_target!(|data: &[u8]| {
    let Some((&rules, rest)) = data.split_first() else {
        return;
    };
    let query = Query::parse(&String::from_utf8_lossy(rest));
    let _ = query.validate(&LIST_PROVIDERS_QUERY_1_18);
    let member_of_rules = MemberOfRules {
        allow_multiple: rules & 1 != 0,
        allow_forbidden: rules & 2 != 0,
    };
    let trait_rules = TraitRules {
        allow_forbidden: rules & 4 != 0,
        allow_any: rules & 8 != 0,
    };
    let _ = parse_member_of(&query.get_all("member_of"), "", member_of_rules);
    let _ = parse_required(&query.get_all("required"), trait_rules);
    if let Some(resources) = query.get("resources") {
        let _ = parse_resources(resources);
    }
    if let Some(tree) = query.get("in_tree") {
        let _ = parse_in_tree(tree);
    }
});
