//! Provider generations: the compare-and-swap that serialises writers, and
//! the server-side retry of allocation writes that lose it.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;

use crate::support::TestServer;
use crate::support::http::Reply;
use placement::storage::resource_providers::{bump_generation, get_by_uuid};

fn create_provider(server: &TestServer, name: &str) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let reply = server
        .client()
        .post("/resource_providers", &json!({"name": name, "uuid": uuid}));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    uuid
}

#[test]
fn two_connections_racing_on_one_generation_let_exactly_one_win() {
    let server = TestServer::start();
    let uuid = create_provider(&server, "raced");
    let parsed = uuid::Uuid::parse_str(&uuid).expect("uuid");
    let mut first = server.database.connection();
    let mut second = server.database.connection();
    let seen_first = get_by_uuid(&mut first, parsed).expect("read").expect("row");
    let seen_second = get_by_uuid(&mut second, parsed)
        .expect("read")
        .expect("row");
    assert_eq!(seen_first.generation, seen_second.generation);
    let won = bump_generation(&mut first, seen_first.id, seen_first.generation).expect("bump");
    let lost = bump_generation(&mut second, seen_second.id, seen_second.generation).expect("bump");
    assert_eq!(won, Some(seen_first.generation + 1));
    assert_eq!(lost, None);
}

#[test]
fn a_stale_generation_on_a_provider_write_is_a_409() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = create_provider(&server, "stale");
    let first = client.put(
        &format!("/resource_providers/{uuid}/traits"),
        &json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": 0}),
    );
    assert_eq!(first.status, 200);
    assert_eq!(first.body["resource_provider_generation"], 1);
    let stale = client.put(
        &format!("/resource_providers/{uuid}/traits"),
        &json!({"traits": [], "resource_provider_generation": 0}),
    );
    assert_eq!(stale.status, 409);
    assert_eq!(stale.error_code(), "placement.concurrent_update");
    let traits = client.get(&format!("/resource_providers/{uuid}/traits"));
    assert_eq!(traits.body["traits"], json!(["HW_CPU_X86_AVX2"]));
}

/// Upstream's `_set_traits` returns before `increment_generation` when
/// the set does not change: the same traits again, or none when there are
/// none (also through `DELETE .../traits`), leave the generation alone,
/// though a stale generation is still refused. (Found by
/// tools/differential.)
#[test]
fn setting_the_traits_a_provider_already_has_keeps_its_generation() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = create_provider(&server, "unchanged");
    let path = format!("/resource_providers/{uuid}/traits");
    let none_again = client.put(
        &path,
        &json!({"traits": [], "resource_provider_generation": 0}),
    );
    assert_eq!(none_again.status, 200);
    assert_eq!(none_again.body["resource_provider_generation"], 0);
    assert_eq!(client.delete(&path).status, 204);
    let changed = client.put(
        &path,
        &json!({"traits": ["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE2"], "resource_provider_generation": 0}),
    );
    assert_eq!(changed.body["resource_provider_generation"], 1);
    let same_again = client.put(
        &path,
        &json!({"traits": ["HW_CPU_X86_SSE2", "HW_CPU_X86_AVX2"], "resource_provider_generation": 1}),
    );
    assert_eq!(same_again.status, 200);
    assert_eq!(same_again.body["resource_provider_generation"], 1);
    let stale = client.put(
        &path,
        &json!({"traits": ["HW_CPU_X86_SSE2", "HW_CPU_X86_AVX2"], "resource_provider_generation": 0}),
    );
    assert_eq!(stale.status, 409);
    let provider = client.get(&format!("/resource_providers/{uuid}"));
    assert_eq!(provider.body["generation"], 1);
    assert_eq!(client.delete(&path).status, 204);
    let provider = client.get(&format!("/resource_providers/{uuid}"));
    assert_eq!(provider.body["generation"], 2);
}

/// Upstream names the unknown traits of a write as a set difference: a
/// name sent twice is named once. (Found by tools/differential.)
#[test]
fn an_unknown_trait_sent_twice_is_named_once() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = create_provider(&server, "twice");
    let reply = client.put(
        &format!("/resource_providers/{uuid}/traits"),
        &json!({"traits": ["CUSTOM_NOPE", "CUSTOM_NOPE"], "resource_provider_generation": 0}),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .error_detail()
            .ends_with("No such trait CUSTOM_NOPE  "),
        "{}",
        reply.error_detail()
    );
}

#[test]
fn allocation_writes_give_up_after_the_configured_number_of_attempts() {
    let server = TestServer::start_with(|config| config.allocation_conflict_retry_count = 3);
    let client = server.client();
    let uuid = create_provider(&server, "contended");
    let inventory = client.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}),
    );
    assert_eq!(inventory.status, 200, "{:?}", inventory.body);
    // Make every generation compare-and-swap lose, as if another writer
    // always got there first, and count the attempts.
    server
        .database
        .connection()
        .batch_execute(
            "CREATE SEQUENCE cas_attempts;
             CREATE FUNCTION lose_cas() RETURNS trigger AS $$
             BEGIN
                 IF NEW.generation = OLD.generation + 1 THEN
                     PERFORM nextval('cas_attempts');
                     RETURN NULL;
                 END IF;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER lose_cas BEFORE UPDATE ON resource_providers
                 FOR EACH ROW EXECUTE FUNCTION lose_cas();",
        )
        .expect("install trigger");
    let consumer = uuid::Uuid::new_v4();
    let reply = client.put(
        &format!("/allocations/{consumer}"),
        &json!({
            "allocations": {uuid.as_str(): {"resources": {"VCPU": 1}}},
            "project_id": "p", "user_id": "u",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(reply.error_code(), "placement.concurrent_update");
    assert!(
        !reply
            .error_detail()
            .contains("consumer generation conflict")
    );
    // Sequences are not transactional: the count survives the rollbacks.
    #[derive(QueryableByName)]
    struct Attempts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last_value: i64,
    }
    let attempts = diesel::sql_query("SELECT last_value FROM cas_attempts")
        .get_result::<Attempts>(&mut server.database.connection())
        .expect("attempts");
    assert_eq!(attempts.last_value, 3, "one compare-and-swap per attempt");
    let usages = client.get(&format!("/resource_providers/{uuid}/usages"));
    assert_eq!(usages.body["usages"]["VCPU"], 0);
    let allocations = client.get(&format!("/allocations/{consumer}"));
    assert_eq!(allocations.body["allocations"], json!({}));
}

#[test]
fn a_refused_provider_write_changes_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = create_provider(&server, "refused");
    let traits = format!("/resource_providers/{uuid}/traits");
    let aggregates = format!("/resource_providers/{uuid}/aggregates");
    let first = client.put(
        &traits,
        &json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": 0}),
    );
    assert_eq!(first.status, 200);
    // The generation is checked before the names, as upstream does.
    let stale_and_unknown = client.put(
        &traits,
        &json!({"traits": ["CUSTOM_NOPE"], "resource_provider_generation": 0}),
    );
    assert_eq!(stale_and_unknown.status, 409);
    let unknown = client.put(
        &traits,
        &json!({"traits": ["HW_CPU_X86_SSE2", "CUSTOM_NOPE"], "resource_provider_generation": 1}),
    );
    assert_eq!(unknown.status, 400);
    assert!(unknown.error_detail().contains("No such trait CUSTOM_NOPE"));
    let stale_aggregates = client.put(
        &aggregates,
        &json!({"aggregates": [uuid::Uuid::new_v4()], "resource_provider_generation": 0}),
    );
    assert_eq!(stale_aggregates.status, 409);
    let missing = client.put(
        &format!("/resource_providers/{}/traits", uuid::Uuid::new_v4()),
        &json!({"traits": [], "resource_provider_generation": 0}),
    );
    assert_eq!(missing.status, 404);
    let shown = client.get(&traits);
    assert_eq!(shown.body["traits"], json!(["HW_CPU_X86_AVX2"]));
    assert_eq!(shown.body["resource_provider_generation"], 1);
    assert_eq!(client.get(&aggregates).body["aggregates"], json!([]));
    let mut connection = server.database.connection();
    let aggregate_rows: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM placement_aggregates)",
    ))
    .get_result(&mut connection)
    .expect("count");
    assert_eq!(aggregate_rows, 0, "a refused write created an aggregate");
}

#[test]
fn writers_creating_one_new_aggregate_at_once_both_join_it() {
    let server = TestServer::start();
    let providers = [
        create_provider(&server, "left"),
        create_provider(&server, "right"),
    ];
    let barrier = std::sync::Barrier::new(providers.len());
    let shared: Vec<uuid::Uuid> = (0..20).map(|_| uuid::Uuid::new_v4()).collect();
    // Each writer keeps its replies, so a failure cannot leave the other
    // waiting at the barrier.
    let replies: Vec<Vec<(u16, serde_json::Value)>> = std::thread::scope(|scope| {
        let writers: Vec<_> = providers
            .iter()
            .map(|provider| {
                let (client, barrier, shared) = (server.client(), &barrier, &shared);
                scope.spawn(move || {
                    shared
                        .iter()
                        .enumerate()
                        .map(|(generation, aggregate)| {
                            barrier.wait();
                            let reply = client.put(
                                &format!("/resource_providers/{provider}/aggregates"),
                                &json!({"aggregates": [aggregate], "resource_provider_generation": generation}),
                            );
                            (reply.status, reply.body)
                        })
                        .collect()
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|writer| writer.join().expect("writer"))
            .collect()
    });
    for (status, body) in replies.iter().flatten() {
        assert_eq!(*status, 200, "{body:?}");
    }
    let client = server.client();
    let left = client.get(&format!("/resource_providers/{}/aggregates", providers[0]));
    let right = client.get(&format!("/resource_providers/{}/aggregates", providers[1]));
    assert_eq!(left.body["aggregates"], right.body["aggregates"]);
    assert_eq!(left.body["resource_provider_generation"], 20);
}

/// Runs `first` and then `second` on their own threads while the test
/// holds the provider's row, so that they reach it in that order, then
/// lets them go; their replies.
fn queued_on_provider(
    server: &TestServer,
    uuid: &str,
    first: impl FnOnce() -> Reply + Send + 'static,
    second: impl FnOnce() -> Reply + Send + 'static,
) -> (Reply, Reply) {
    let mut holder = server.database.connection();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM resource_providers WHERE uuid = '{uuid}' FOR NO KEY UPDATE"
        ))
        .expect("lock the provider");
    let first = std::thread::spawn(first);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let second = std::thread::spawn(second);
    std::thread::sleep(std::time::Duration::from_millis(200));
    holder
        .batch_execute("COMMIT")
        .expect("release the provider");
    (
        first.join().expect("first writer"),
        second.join().expect("second writer"),
    )
}

#[test]
fn writers_of_one_providers_inventories_queue_instead_of_deadlocking() {
    let server = TestServer::start();
    let uuid = create_provider(&server, "contended");
    let client = server.client();
    let inventories = format!("/resource_providers/{uuid}/inventories");
    let first = client.put(
        &inventories,
        &json!({"resource_provider_generation": 0,
                "inventories": {"VCPU": {"total": 8}, "DISK_GB": {"total": 100}}}),
    );
    assert_eq!(first.status, 200, "{:?}", first.body);
    let generation = first.body["resource_provider_generation"].clone();

    // The whole-inventory write reaches the provider's row first.
    let (whole, one_class) = queued_on_provider(
        &server,
        &uuid,
        {
            let (client, path, generation) =
                (client.clone(), inventories.clone(), generation.clone());
            move || {
                client.put(
                    &path,
                    &json!({"resource_provider_generation": generation,
                            "inventories": {"VCPU": {"total": 16}, "DISK_GB": {"total": 100}}}),
                )
            }
        },
        {
            let (client, path) = (client.clone(), format!("{inventories}/VCPU"));
            move || {
                client.put(
                    &path,
                    &json!({"resource_provider_generation": generation, "total": 12}),
                )
            }
        },
    );

    // Had the one-class write changed its row before taking the
    // provider's, each would now wait for the other: a deadlock, and a
    // 500 for whichever PostgreSQL aborted.
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert_eq!(one_class.status, 409, "{:?}", one_class.body);
    assert_eq!(one_class.error_code(), "placement.concurrent_update");
    let shown = client.get(&inventories);
    assert_eq!(shown.body["inventories"]["VCPU"]["total"], 16);
}

#[test]
fn a_provider_deleted_while_its_inventory_is_written_waits_its_turn() {
    let server = TestServer::start();
    let uuid = create_provider(&server, "going");
    let client = server.client();
    let inventories = format!("/resource_providers/{uuid}/inventories");
    let first = client.put(
        &inventories,
        &json!({"resource_provider_generation": 0,
                "inventories": {"VCPU": {"total": 8}}}),
    );
    assert_eq!(first.status, 200, "{:?}", first.body);

    // The inventory write reaches the provider's row first.
    let (write, delete) = queued_on_provider(
        &server,
        &uuid,
        {
            let (client, path) = (client.clone(), inventories.clone());
            move || {
                client.put(
                    &path,
                    &json!({"resource_provider_generation": 1,
                            "inventories": {"VCPU": {"total": 16}}}),
                )
            }
        },
        {
            let (client, path) = (client.clone(), format!("/resource_providers/{uuid}"));
            move || client.delete(&path)
        },
    );

    // Had the delete removed the inventory rows before taking the
    // provider's row, the two would have deadlocked and PostgreSQL would
    // have failed one of them.
    assert_eq!(write.status, 200, "{:?}", write.body);
    assert_eq!(delete.status, 204, "{:?}", delete.body);
    assert_eq!(client.get(&inventories).status, 404);
}

#[test]
fn a_trait_deleted_while_a_provider_takes_it_is_a_409_not_a_500() {
    let server = TestServer::start();
    let uuid = create_provider(&server, "taking");
    let client = server.client();
    assert_eq!(
        client.put("/traits/CUSTOM_FLEETING", &json!({})).status,
        201
    );

    // The trait's delete is written but not committed when the provider's
    // traits are replaced: the write finds the trait, then its link waits
    // for the delete, which commits.
    let mut deleter = server.database.connection();
    deleter
        .batch_execute("BEGIN; DELETE FROM traits WHERE name = 'CUSTOM_FLEETING'")
        .expect("delete the trait");
    let write = {
        let (client, path) = (client.clone(), format!("/resource_providers/{uuid}/traits"));
        std::thread::spawn(move || {
            client.put(
                &path,
                &json!({"resource_provider_generation": 0, "traits": ["CUSTOM_FLEETING"]}),
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    deleter.batch_execute("COMMIT").expect("commit the delete");

    let write = write.join().expect("trait writer");
    assert_eq!(write.status, 409, "{:?}", write.body);
    assert_eq!(write.error_code(), "placement.concurrent_update");
    let shown = client.get(&format!("/resource_providers/{uuid}/traits"));
    assert_eq!(shown.body["traits"], json!([]));
    assert_eq!(shown.body["resource_provider_generation"], 0);
}
