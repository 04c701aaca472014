//! The scheduling extensions on one server: `GET /extensions`, `POST
//! /claims` (ranking by weighers, alternates, dry runs, several
//! consumers all or nothing, affinity rules, bad input) and ETags on
//! provider reads. Providers are made through the API, so what a claim
//! writes is read back the way a client would.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestServer;
use crate::support::http::{Client, Reply};

/// Every provider here has this much VCPU; the tests rank on memory.
const VCPUS: i64 = 64;

fn generation(client: &Client, provider: &str) -> i64 {
    let reply = client.get(&format!("/resource_providers/{provider}"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["generation"].as_i64().expect("generation")
}

/// A root provider with `VCPUS` VCPU and `memory` MEMORY_MB.
fn host(client: &Client, name: &str, memory: i64) -> String {
    let uuid = Uuid::new_v4().to_string();
    let created = client.post("/resource_providers", &json!({"name": name, "uuid": uuid}));
    assert_eq!(created.status, 200, "{:?}", created.body);
    let inventory = client.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({
            "resource_provider_generation": 0,
            "inventories": {
                "VCPU": {"total": VCPUS},
                "MEMORY_MB": {"total": memory, "max_unit": memory}
            }
        }),
    );
    assert_eq!(inventory.status, 200, "{:?}", inventory.body);
    uuid
}

fn set_aggregates(client: &Client, provider: &str, aggregates: &[&str]) {
    let reply = client.put(
        &format!("/resource_providers/{provider}/aggregates"),
        &json!({
            "resource_provider_generation": generation(client, provider),
            "aggregates": aggregates,
        }),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

/// A consumer of the claim body, of a fresh uuid.
fn consumer() -> (String, Value) {
    let uuid = Uuid::new_v4().to_string();
    let entry = json!({
        "uuid": uuid, "project_id": "sched-project", "user_id": "sched-user",
        "consumer_type": "INSTANCE"
    });
    (uuid, entry)
}

/// A claim of `memory` MB (and one VCPU) for `consumers`, spreading on
/// memory; `extra` keys are merged into the body.
fn claim_body(consumers: &[Value], memory: i64, extra: Value) -> Value {
    let mut body = json!({
        "consumers": consumers,
        "query": {"resources": format!("VCPU:1,MEMORY_MB:{memory}")},
        "weighers": {"MEMORY_MB": 1.0},
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            body.insert(key.clone(), value.clone());
        }
    }
    body
}

/// Claims one fresh consumer; its uuid and the reply, which must be 200.
fn claim_one(client: &Client, memory: i64, extra: Value) -> (String, Reply) {
    let (uuid, entry) = consumer();
    let reply = client.post("/claims", &claim_body(&[entry], memory, extra));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    (uuid, reply)
}

/// The one provider an allocations object names.
fn only_provider(allocations: &Value) -> String {
    let providers = allocations.as_object().expect("allocations object");
    assert_eq!(providers.len(), 1, "{allocations:?}");
    providers.keys().next().cloned().unwrap_or_default()
}

/// The provider the first claim of `reply` chose.
fn chosen(reply: &Reply) -> String {
    only_provider(&reply.body["claims"][0]["allocations"])
}

/// Where `consumer` has allocations, read back.
fn placed_on(client: &Client, consumer: &str) -> Vec<String> {
    let reply = client.get(&format!("/allocations/{consumer}"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["allocations"]
        .as_object()
        .map(|providers| providers.keys().cloned().collect())
        .unwrap_or_default()
}

fn memory_used(client: &Client, provider: &str) -> i64 {
    let reply = client.get(&format!("/resource_providers/{provider}/usages"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["usages"]["MEMORY_MB"].as_i64().unwrap_or(0)
}

fn weight(value: &Value) -> f64 {
    value["weight"].as_f64().expect("weight is a number")
}

#[test]
fn extensions_list_claims_and_changes_at_any_microversion() {
    let server = TestServer::start();
    for version in ["1.0", "1.39", "latest"] {
        let reply = server.client().at(version).get("/extensions");
        assert_eq!(reply.status, 200, "{version}: {:?}", reply.body);
        let extensions = reply.body["extensions"].as_array().expect("extensions");
        let find = |name: &str| {
            extensions
                .iter()
                .find(|extension| extension["name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(
            find("claims"),
            json!({"name": "claims", "href": "/claims", "methods": ["POST"]})
        );
        assert_eq!(
            find("changes"),
            json!({"name": "changes", "href": "/changes", "methods": ["GET"]})
        );
    }
}

/// Claims and the feed are for admins and services, as POST /allocations
/// is; any caller may ask which extensions there are.
#[test]
fn policy_keeps_claims_and_changes_to_admins() {
    let server = TestServer::start();
    let client = server.client();
    let provider = host(&client, "host", 65536);
    let reader = client.as_user("alice:project");
    assert_eq!(reader.get("/extensions").status, 200);
    let (uuid, entry) = consumer();
    let refused = reader.post("/claims", &claim_body(&[entry], 1024, json!({})));
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert!(
        refused.error_detail().contains("placement:claims:create"),
        "{:?}",
        refused.body
    );
    let feed = reader.get("/changes");
    assert_eq!(feed.status, 403, "{:?}", feed.body);
    assert!(
        feed.error_detail().contains("placement:changes:list"),
        "{:?}",
        feed.body
    );
    assert!(placed_on(&client, &uuid).is_empty());
    assert_eq!(memory_used(&client, &provider), 0);
}

/// The extensions add paths only: the advertised version range is
/// upstream's.
#[test]
fn root_still_reports_max_version_1_39() {
    let server = TestServer::start();
    let reply = server.client().get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["versions"][0]["max_version"], "1.39");
    assert_eq!(reply.body["versions"][0]["min_version"], "1.0");
}

/// A positive memory multiplier spreads (most free memory wins), a
/// negative one packs (least free memory that still fits wins), and the
/// free memory counts what is already allocated.
#[test]
fn claim_spreads_or_packs_by_the_weigher() {
    let server = TestServer::start();
    let client = server.client();
    let roomy = host(&client, "roomy", 8192);
    let middle = host(&client, "middle", 4096);
    let too_small = host(&client, "too-small", 1024);
    // Large, but mostly used: 3072 free, the fullest that fits 2048.
    let busy = host(&client, "busy", 16384);
    let filler = Uuid::new_v4().to_string();
    let filled = client.put(
        &format!("/allocations/{filler}"),
        &json!({
            "allocations": {busy.as_str(): {"resources": {"MEMORY_MB": 13312}}},
            "project_id": "other", "user_id": "other",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(filled.status, 204, "{:?}", filled.body);

    let (spread, reply) = claim_one(&client, 2048, json!({}));
    let claims = reply.body["claims"].as_array().expect("claims");
    assert_eq!(claims.len(), 1, "{:?}", reply.body);
    let claim = &claims[0];
    assert_eq!(claim["consumer_uuid"], spread.as_str());
    assert_eq!(chosen(&reply), roomy, "most free memory wins");
    assert_eq!(
        claim["allocations"][roomy.as_str()]["resources"],
        json!({"VCPU": 1, "MEMORY_MB": 2048})
    );
    assert_eq!(claim["mappings"][""], json!([roomy.as_str()]));
    assert_eq!(claim["consumer_generation"], 1);
    assert!((weight(claim) - 1.0).abs() < 1e-9, "{claim:?}");
    assert_eq!(claim["alternates"], json!([]));
    // The summary shows the provider as ranked, before the claim.
    let summary = &reply.body["provider_summaries"][roomy.as_str()];
    assert_eq!(
        summary["resources"]["MEMORY_MB"],
        json!({"capacity": 8192, "used": 0})
    );
    assert!(summary["traits"].is_array(), "{summary:?}");
    assert_eq!(summary["parent_provider_uuid"], Value::Null);
    assert_eq!(summary["root_provider_uuid"], roomy.as_str());

    let shown = client.get(&format!("/allocations/{spread}"));
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.body["allocations"][roomy.as_str()]["resources"],
        json!({"VCPU": 1, "MEMORY_MB": 2048})
    );
    assert_eq!(shown.body["consumer_generation"], 1);
    assert_eq!(shown.body["project_id"], "sched-project");
    assert_eq!(shown.body["user_id"], "sched-user");
    assert_eq!(shown.body["consumer_type"], "INSTANCE");
    assert_eq!(memory_used(&client, &roomy), 2048);
    let project = client.get("/usages?project_id=sched-project");
    assert_eq!(
        project.body["usages"]["INSTANCE"]["MEMORY_MB"], 2048,
        "{:?}",
        project.body
    );

    let (packed, reply) = claim_one(&client, 2048, json!({"weighers": {"MEMORY_MB": -1.0}}));
    assert_eq!(chosen(&reply), busy, "the fullest provider that fits wins");
    assert_eq!(placed_on(&client, &packed), vec![busy.clone()]);
    assert_eq!(memory_used(&client, &busy), 13312 + 2048);
    assert_eq!(memory_used(&client, &middle), 0);
    assert_eq!(memory_used(&client, &too_small), 0);
}

/// Alternates are the next-ranked hosts, best first, and are not
/// claimed; `alternates_within` keeps only hosts sharing one of the
/// named aggregates with the chosen host.
#[test]
fn alternates_are_ranked_unclaimed_and_kept_within_aggregates() {
    let server = TestServer::start();
    let client = server.client();
    let (cell_a, cell_b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let best = host(&client, "best", 8192);
    let second = host(&client, "second", 6144);
    let third = host(&client, "third", 4096);
    let fourth = host(&client, "fourth", 2048);
    set_aggregates(&client, &best, &[&cell_a]);
    set_aggregates(&client, &second, &[&cell_b]);
    set_aggregates(&client, &third, &[&cell_a]);
    let generations: Vec<i64> = [&second, &third, &fourth]
        .iter()
        .map(|provider| generation(&client, provider))
        .collect();

    let (_, reply) = claim_one(&client, 1024, json!({"alternates": 2}));
    let claim = &reply.body["claims"][0];
    assert_eq!(chosen(&reply), best);
    let alternates = claim["alternates"].as_array().expect("alternates");
    let hosts: Vec<String> = alternates
        .iter()
        .map(|alternate| only_provider(&alternate["allocations"]))
        .collect();
    assert_eq!(
        hosts,
        vec![second.clone(), third.clone()],
        "next-ranked, best first"
    );
    assert!(weight(claim) >= weight(&alternates[0]));
    assert!(weight(&alternates[0]) >= weight(&alternates[1]));
    for alternate in alternates {
        assert!(alternate["mappings"].is_object(), "{alternate:?}");
    }
    for provider in [&best, &second, &third] {
        assert!(
            reply.body["provider_summaries"][provider.as_str()].is_object(),
            "summary of {provider}: {:?}",
            reply.body["provider_summaries"]
        );
    }
    // Not claimed: no usage, no generation moved.
    for (provider, before) in [&second, &third, &fourth].iter().zip(&generations) {
        assert_eq!(memory_used(&client, provider), 0);
        assert_eq!(generation(&client, provider), *before);
    }

    // `second` is in cell B, but the chosen host is not: only `third`
    // shares a listed aggregate with it.
    let (_, reply) = claim_one(
        &client,
        1024,
        json!({"alternates": 3, "alternates_within": [cell_a, cell_b]}),
    );
    assert_eq!(chosen(&reply), best);
    let hosts: Vec<String> = reply.body["claims"][0]["alternates"]
        .as_array()
        .expect("alternates")
        .iter()
        .map(|alternate| only_provider(&alternate["allocations"]))
        .collect();
    assert_eq!(hosts, vec![third.clone()]);
    assert_eq!(memory_used(&client, &best), 2048);
    assert_eq!(memory_used(&client, &third), 0);
}

/// A dry run ranks first and then applies `limit`: the best two of five,
/// not the first two made; nothing is written.
#[test]
fn dry_run_ranks_then_limits_and_writes_nothing() {
    let server = TestServer::start();
    let client = server.client();
    // Made worst first.
    let providers: Vec<String> = (1..=5)
        .map(|index| host(&client, &format!("host-{index}"), 2048 * index))
        .collect();
    let generations: Vec<i64> = providers
        .iter()
        .map(|provider| generation(&client, provider))
        .collect();
    let ranked = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert!(reply.body.get("claims").is_none(), "{:?}", reply.body);
        let candidates = reply.body["candidates"].as_array().expect("candidates");
        for pair in candidates.windows(2) {
            assert!(
                weight(&pair[0]) >= weight(&pair[1]),
                "best first: {candidates:?}"
            );
        }
        for candidate in candidates {
            assert!(candidate["mappings"].is_object(), "{candidate:?}");
        }
        candidates
            .iter()
            .map(|candidate| only_provider(&candidate["allocations"]))
            .collect()
    };

    let limited = client.post(
        "/claims",
        &json!({
            "dry_run": true,
            "query": {"resources": "VCPU:1,MEMORY_MB:1024", "limit": "2"},
            "weighers": {"MEMORY_MB": 1.0},
        }),
    );
    assert_eq!(
        ranked(&limited),
        vec![providers[4].clone(), providers[3].clone()]
    );
    for provider in &providers[3..] {
        assert!(limited.body["provider_summaries"][provider.as_str()].is_object());
    }

    let all = client.post(
        "/claims",
        &json!({
            "dry_run": true,
            "query": {"resources": "VCPU:1,MEMORY_MB:1024"},
            "weighers": {"MEMORY_MB": 1.0},
        }),
    );
    let mut best_first = providers.clone();
    best_first.reverse();
    assert_eq!(ranked(&all), best_first);

    for (provider, before) in providers.iter().zip(&generations) {
        assert_eq!(memory_used(&client, provider), 0);
        assert_eq!(generation(&client, provider), *before);
    }
    let usages = client.get("/usages?project_id=sched-project");
    assert_eq!(usages.body["usages"], json!({}), "{:?}", usages.body);
}

/// Consumers of one request are placed in order, each seeing the usage
/// of those before it.
#[test]
fn several_consumers_are_placed_in_order_counting_each_other() {
    let server = TestServer::start();
    let client = server.client();
    let first_host = host(&client, "first", 4096);
    let second_host = host(&client, "second", 3072);
    let third_host = host(&client, "third", 1024);
    let (a, b, c) = (consumer(), consumer(), consumer());
    let reply = client.post(
        "/claims",
        &claim_body(&[a.1.clone(), b.1.clone(), c.1.clone()], 2048, json!({})),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let claims = reply.body["claims"].as_array().expect("claims");
    let order: Vec<&str> = claims
        .iter()
        .map(|claim| claim["consumer_uuid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(order, vec![a.0.as_str(), b.0.as_str(), c.0.as_str()]);
    let hosts: Vec<String> = claims
        .iter()
        .map(|claim| only_provider(&claim["allocations"]))
        .collect();
    // a: 4096 free beats 3072; then 2048 left on first, so b goes to
    // second (3072); then only first (2048 left) still fits c.
    assert_eq!(
        hosts,
        vec![first_host.clone(), second_host.clone(), first_host.clone()]
    );
    for claim in claims {
        assert_eq!(claim["consumer_generation"], 1);
    }
    assert_eq!(placed_on(&client, &a.0), vec![first_host.clone()]);
    assert_eq!(placed_on(&client, &b.0), vec![second_host.clone()]);
    assert_eq!(placed_on(&client, &c.0), vec![first_host.clone()]);
    assert_eq!(memory_used(&client, &first_host), 4096);
    assert_eq!(memory_used(&client, &second_host), 2048);
    assert_eq!(memory_used(&client, &third_host), 0);
}

/// When a later consumer cannot fit, the earlier ones are not written
/// either.
#[test]
fn several_consumers_are_all_or_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let only = host(&client, "only", 3072);
    let before = generation(&client, &only);
    let (a, b) = (consumer(), consumer());
    let reply = client.post("/claims", &claim_body(&[a.1, b.1], 2048, json!({})));
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "placement.claims.no_candidates");
    assert!(
        reply
            .error_detail()
            .contains("No allocation candidate fits the request."),
        "{:?}",
        reply.body
    );
    for uuid in [&a.0, &b.0] {
        assert!(placed_on(&client, uuid).is_empty(), "{uuid} was written");
    }
    assert_eq!(memory_used(&client, &only), 0);
    assert_eq!(generation(&client, &only), before);
}

/// A consumer that already exists is refused, and the request's other
/// consumers are not written.
#[test]
fn existing_consumer_is_409_consumer_exists() {
    let server = TestServer::start();
    let client = server.client();
    let provider = host(&client, "host", 65536);
    let existing = Uuid::new_v4().to_string();
    let written = client.put(
        &format!("/allocations/{existing}"),
        &json!({
            "allocations": {provider.as_str(): {"resources": {"VCPU": 1}}},
            "project_id": "sched-project", "user_id": "sched-user",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(written.status, 204, "{:?}", written.body);
    let fresh = consumer();
    let reply = client.post(
        "/claims",
        &claim_body(
            &[
                fresh.1,
                json!({"uuid": existing, "project_id": "sched-project", "user_id": "sched-user"}),
            ],
            1024,
            json!({}),
        ),
    );
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "placement.claims.consumer_exists");
    assert!(reply.error_detail().contains(&existing), "{:?}", reply.body);
    assert!(placed_on(&client, &fresh.0).is_empty());
    assert_eq!(memory_used(&client, &provider), 0);

    // One claimed by POST /claims is as existing.
    let (claimed, _) = claim_one(&client, 1024, json!({}));
    let again = client.post(
        "/claims",
        &claim_body(
            &[json!({"uuid": claimed, "project_id": "p", "user_id": "u"})],
            1024,
            json!({}),
        ),
    );
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.error_code(), "placement.claims.consumer_exists");
    assert_eq!(memory_used(&client, &provider), 1024);
}

/// A hard anti-affinity group spreads its members even against the
/// weigher, and a member with no host left is refused with
/// `placement.claims.affinity`, whether claimed alone or with others.
#[test]
fn anti_affinity_with_more_members_than_hosts_is_409_affinity() {
    let server = TestServer::start();
    let client = server.client();
    // The weigher alone would put every member on `big`.
    let big = host(&client, "big", 65536);
    let small = host(&client, "small", 8192);
    let members: Vec<(String, Value)> = (0..3).map(|_| consumer()).collect();
    let group = json!({
        "server_group": {
            "policy": "anti-affinity",
            "members": members.iter().map(|(uuid, _)| uuid.clone()).collect::<Vec<_>>(),
        }
    });
    let first = client.post(
        "/claims",
        &claim_body(&[members[0].1.clone()], 1024, group.clone()),
    );
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(chosen(&first), big);
    let second = client.post(
        "/claims",
        &claim_body(&[members[1].1.clone()], 1024, group.clone()),
    );
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(chosen(&second), small);
    let third = client.post("/claims", &claim_body(&[members[2].1.clone()], 1024, group));
    assert_eq!(third.status, 409, "{:?}", third.body);
    assert_eq!(third.error_code(), "placement.claims.affinity");
    assert!(placed_on(&client, &members[2].0).is_empty());

    // Three new members in one request on two hosts: nothing written.
    let together: Vec<(String, Value)> = (0..3).map(|_| consumer()).collect();
    let reply = client.post(
        "/claims",
        &claim_body(
            &together
                .iter()
                .map(|(_, entry)| entry.clone())
                .collect::<Vec<_>>(),
            1024,
            json!({"server_group": {
                "policy": "anti-affinity",
                "members": together.iter().map(|(uuid, _)| uuid.clone()).collect::<Vec<_>>(),
            }}),
        ),
    );
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "placement.claims.affinity");
    for (uuid, _) in &together {
        assert!(placed_on(&client, uuid).is_empty());
    }
    assert_eq!(memory_used(&client, &big), 1024);
    assert_eq!(memory_used(&client, &small), 1024);

    // With two per host allowed, four members fit on two hosts.
    let pairs: Vec<(String, Value)> = (0..4).map(|_| consumer()).collect();
    let reply = client.post(
        "/claims",
        &claim_body(
            &pairs
                .iter()
                .map(|(_, entry)| entry.clone())
                .collect::<Vec<_>>(),
            1024,
            json!({"server_group": {
                "policy": "anti-affinity",
                "max_server_per_host": 2,
                "members": pairs.iter().map(|(uuid, _)| uuid.clone()).collect::<Vec<_>>(),
            }}),
        ),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let on_big = pairs
        .iter()
        .filter(|(uuid, _)| placed_on(&client, uuid) == vec![big.clone()])
        .count();
    let on_small = pairs
        .iter()
        .filter(|(uuid, _)| placed_on(&client, uuid) == vec![small.clone()])
        .count();
    assert_eq!((on_big, on_small), (2, 2));
}

/// `different_host` avoids the hosts of the named consumers and
/// `same_host` requires one of them, both overriding the weigher.
#[test]
fn different_host_and_same_host_follow_the_named_consumers() {
    let server = TestServer::start();
    let client = server.client();
    let best = host(&client, "best", 16384);
    let second = host(&client, "second", 8192);
    let _third = host(&client, "third", 4096);
    let (first, reply) = claim_one(&client, 1024, json!({}));
    assert_eq!(chosen(&reply), best);
    let (elsewhere, reply) = claim_one(&client, 1024, json!({"different_host": [first]}));
    assert_eq!(chosen(&reply), second, "best host avoided");
    assert_eq!(placed_on(&client, &elsewhere), vec![second.clone()]);
    let (beside, reply) = claim_one(&client, 1024, json!({"same_host": [elsewhere]}));
    assert_eq!(chosen(&reply), second, "the named consumer's host");
    assert_eq!(placed_on(&client, &beside), vec![second.clone()]);
    // Nothing left that is both different from `best` and `second`'s
    // host: candidates fit, the rules refuse them.
    let (refused, entry) = consumer();
    let reply = client.post(
        "/claims",
        &claim_body(
            &[entry],
            1024,
            json!({"different_host": [first], "same_host": [first]}),
        ),
    );
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "placement.claims.affinity");
    assert!(placed_on(&client, &refused).is_empty());
}

/// Soft anti-affinity is a weigher: with a large multiplier it spreads
/// members that memory alone would stack on the biggest host.
#[test]
fn soft_anti_affinity_spreads_members() {
    let server = TestServer::start();
    let client = server.client();
    let best = host(&client, "best", 65536);
    let second = host(&client, "second", 16384);
    let third = host(&client, "third", 8192);
    // Without a group, memory keeps choosing `best`.
    for _ in 0..2 {
        let (_, reply) = claim_one(&client, 1024, json!({}));
        assert_eq!(chosen(&reply), best);
    }
    let members: Vec<(String, Value)> = (0..3).map(|_| consumer()).collect();
    let group = json!({"server_group": {
        "policy": "soft-anti-affinity",
        "weight_multiplier": 10.0,
        "members": members.iter().map(|(uuid, _)| uuid.clone()).collect::<Vec<_>>(),
    }});
    let mut hosts = Vec::new();
    for (uuid, entry) in &members {
        let reply = client.post(
            "/claims",
            &claim_body(std::slice::from_ref(entry), 1024, group.clone()),
        );
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        hosts.push(chosen(&reply));
        assert_eq!(placed_on(&client, uuid), vec![chosen(&reply)]);
    }
    assert_eq!(hosts, vec![best, second, third]);
}

/// Bad bodies are 400 in Placement's error format, never a 500, and
/// write nothing; a bad query gets exactly the detail GET
/// /allocation_candidates gives for it.
#[test]
fn bad_claims_are_400() {
    let server = TestServer::start();
    let client = server.client();
    let provider = host(&client, "host", 65536);
    let before = generation(&client, &provider);
    let (uuid, entry) = consumer();
    let single = |extra: Value| claim_body(std::slice::from_ref(&entry), 1024, extra);

    let unknown_key = client.post("/claims", &single(json!({"bogus": 1})));
    assert_eq!(unknown_key.status, 400, "{:?}", unknown_key.body);
    assert!(
        unknown_key
            .error_detail()
            .contains("JSON does not validate"),
        "{:?}",
        unknown_key.body
    );

    let get = client.get("/allocation_candidates?resources=VCPU:x");
    assert_eq!(get.status, 400, "{:?}", get.body);
    let mut bad_query = single(json!({}));
    bad_query["query"] = json!({"resources": "VCPU:x"});
    let posted = client.post("/claims", &bad_query);
    assert_eq!(posted.status, 400, "{:?}", posted.body);
    assert_eq!(posted.error_detail(), get.error_detail());

    let unknown_class = client.post(
        "/claims",
        &single(json!({"weighers": {"CUSTOM_NO_SUCH_CLASS": 1.0}})),
    );
    assert_eq!(unknown_class.status, 400, "{:?}", unknown_class.body);

    let mut no_query = single(json!({}));
    if let Some(body) = no_query.as_object_mut() {
        body.remove("query");
    }
    let without_consumers = json!({"query": {"resources": "VCPU:1"}});
    let twice = claim_body(&[entry.clone(), entry.clone()], 1024, json!({}));
    let too_many: Vec<Value> = (0..101).map(|_| consumer().1).collect();
    let others = [
        json!([]),
        json!("claims"),
        no_query,
        without_consumers,
        claim_body(&[], 1024, json!({})),
        claim_body(&too_many, 1024, json!({})),
        twice,
        claim_body(
            &[json!({"uuid": "not-a-uuid", "project_id": "p", "user_id": "u"})],
            1024,
            json!({}),
        ),
        claim_body(&[json!({"uuid": uuid, "project_id": "p"})], 1024, json!({})),
        single(json!({"query": {"resourcez": "VCPU:1"}})),
        single(json!({"query": "resources=VCPU:1"})),
        single(json!({"weighers": {"MEMORY_MB": "much"}})),
        single(json!({"weighers": ["MEMORY_MB"]})),
        single(json!({"alternates": -1})),
        single(json!({"host_subset_size": 0})),
        single(json!({"shuffle_best_same_weighed_hosts": "yes"})),
        single(json!({"alternates_within": ["not-a-uuid"]})),
        single(json!({"different_host": "abc"})),
        single(json!({"same_host": ["not-a-uuid"]})),
        single(json!({"dry_run": "no"})),
        single(json!({"server_group": {"policy": "sideways", "members": []}})),
        single(
            json!({"server_group": {"policy": "anti-affinity", "members": [], "max_server_per_host": 0}}),
        ),
    ];
    for body in &others {
        let reply = client.post("/claims", body);
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
        assert!(!reply.error_detail().is_empty(), "{body}: {:?}", reply.body);
    }
    let malformed = client.send_raw("POST", "/claims", "application/json", "{\"consumers\": [");
    assert_eq!(malformed.status, 400, "{:?}", malformed.body);

    assert!(placed_on(&client, &uuid).is_empty());
    assert_eq!(memory_used(&client, &provider), 0);
    assert_eq!(generation(&client, &provider), before);
}

/// A GET with an `If-None-Match` header; status, ETag and body text.
fn conditional_get(
    base_url: &str,
    path: &str,
    if_none_match: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = ureq::get(&format!("{base_url}{path}"))
        .set("x-auth-token", "admin")
        .set("openstack-api-version", "placement latest")
        .set("accept", "application/json");
    if let Some(tag) = if_none_match {
        request = request.set("if-none-match", tag);
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("transport error: {error}"),
    };
    let status = response.status();
    let etag = response.header("etag").map(str::to_owned);
    (status, etag, response.into_string().unwrap_or_default())
}

fn is_quoted_hex(tag: &str) -> bool {
    tag.len() > 2
        && tag.starts_with('"')
        && tag.ends_with('"')
        && tag[1..tag.len() - 1].chars().all(|c| c.is_ascii_hexdigit())
}

/// Provider reads carry an ETag; a matching If-None-Match gets 304 with
/// no body, and a change gives a new tag and a full answer.
#[test]
fn provider_reads_answer_304_to_a_matching_etag() {
    let server = TestServer::start();
    let client = server.client();
    let provider = host(&client, "tagged", 4096);
    let path = format!("/resource_providers/{provider}");
    let (status, tag, body) = conditional_get(&server.base_url, &path, None);
    assert_eq!(status, 200, "{body}");
    let tag = tag.expect("ETag on GET /resource_providers/{uuid}");
    assert!(is_quoted_hex(&tag), "{tag}");

    let (status, again, body) = conditional_get(&server.base_url, &path, Some(&tag));
    assert_eq!(status, 304);
    assert_eq!(body, "");
    assert_eq!(again.as_deref(), Some(tag.as_str()));
    let (status, _, _) = conditional_get(&server.base_url, &path, Some("*"));
    assert_eq!(status, 304);
    let listed = format!("\"0123abcd\", {tag}");
    let (status, _, _) = conditional_get(&server.base_url, &path, Some(&listed));
    assert_eq!(status, 304, "a list holding the tag");
    let (status, _, body) = conditional_get(&server.base_url, &path, Some("\"0123abcd\""));
    assert_eq!(status, 200, "another tag: {body}");

    let changed = client.put(
        &format!("{path}/inventories"),
        &json!({
            "resource_provider_generation": generation(&client, &provider),
            "inventories": {"VCPU": {"total": 32}}
        }),
    );
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let (status, fresh, body) = conditional_get(&server.base_url, &path, Some(&tag));
    assert_eq!(status, 200, "{body}");
    let fresh = fresh.expect("ETag after the change");
    assert_ne!(fresh, tag);
    let shown: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(shown["generation"], generation(&client, &provider));

    // The other GETs that carry a tag (api-ref/changes.md).
    for path in [
        "/resource_providers".to_owned(),
        format!("{path}/inventories"),
        format!("{path}/inventories/VCPU"),
        format!("{path}/usages"),
        "/usages?project_id=sched-project".to_owned(),
        "/allocation_candidates?resources=VCPU:1".to_owned(),
    ] {
        let (status, tag, body) = conditional_get(&server.base_url, &path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let tag = tag.unwrap_or_else(|| panic!("ETag on {path}"));
        assert!(is_quoted_hex(&tag), "{path}: {tag}");
        let (status, again, body) = conditional_get(&server.base_url, &path, Some(&tag));
        assert_eq!(status, 304, "{path}");
        assert_eq!(body, "", "{path}");
        assert_eq!(again.as_deref(), Some(tag.as_str()), "{path}");
    }
}
