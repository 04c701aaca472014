//! The in-memory `World` of allocation candidates follows the database:
//! writes through the API (of this process or another) show after a
//! refresh, a transaction that commits after a later one is not missed,
//! and a change log pruned past a process's position makes it reload.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Uuid as SqlUuid, Varchar};
use placement::view::cache::WorldCache;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::http::Client;
use crate::support::process::ServerProcess;
use crate::support::{TestDatabase, TestServer};

fn generation(client: &Client, provider: &str) -> i64 {
    let reply = client.get(&format!("/resource_providers/{provider}"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["generation"].as_i64().expect("generation")
}

fn create_provider(client: &Client, name: &str, parent: Option<&str>) -> String {
    let uuid = Uuid::new_v4().to_string();
    let mut body = json!({"name": name, "uuid": uuid});
    if let Some(parent) = parent {
        body["parent_provider_uuid"] = Value::from(parent);
    }
    let reply = client.post("/resource_providers", &body);
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    uuid
}

fn set_inventories(client: &Client, provider: &str, inventories: Value) {
    let reply = client.put(
        &format!("/resource_providers/{provider}/inventories"),
        &json!({
            "resource_provider_generation": generation(client, provider),
            "inventories": inventories,
        }),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn allocate(client: &Client, consumer: &str, allocations: Value) {
    let reply = client.put(
        &format!("/allocations/{consumer}"),
        &json!({
            "allocations": allocations,
            "consumer_generation": null,
            "project_id": Uuid::new_v4().to_string(),
            "user_id": Uuid::new_v4().to_string(),
            "consumer_type": "INSTANCE",
        }),
    );
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

fn parse(uuid: &str) -> Uuid {
    Uuid::parse_str(uuid).expect("uuid")
}

#[test]
fn api_writes_show_in_a_refreshed_world() {
    let server = TestServer::start();
    let client = server.client();
    let mut connection = server.database.connection();
    let cache = WorldCache::new();
    // A first refresh loads everything (nothing yet); what follows is
    // applied incrementally.
    cache.refresh(&mut connection).expect("first refresh");
    assert!(cache.read().is_empty());

    let root = create_provider(&client, "root", None);
    let child = create_provider(&client, "child", Some(&root));
    set_inventories(
        &client,
        &child,
        json!({
            "VCPU": {"total": 8, "reserved": 1, "allocation_ratio": 2.0},
            "MEMORY_MB": {"total": 4096, "step_size": 256, "max_unit": 2048}
        }),
    );
    assert_eq!(client.put("/traits/CUSTOM_FAST", &json!({})).status, 201);
    let traits = client.put(
        &format!("/resource_providers/{child}/traits"),
        &json!({
            "traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX2"],
            "resource_provider_generation": generation(&client, &child),
        }),
    );
    assert_eq!(traits.status, 200, "{:?}", traits.body);
    let aggregate = Uuid::new_v4().to_string();
    let aggregates = client.put(
        &format!("/resource_providers/{root}/aggregates"),
        &json!({
            "aggregates": [aggregate],
            "resource_provider_generation": generation(&client, &root),
        }),
    );
    assert_eq!(aggregates.status, 200, "{:?}", aggregates.body);
    let first = Uuid::new_v4().to_string();
    let second = Uuid::new_v4().to_string();
    allocate(
        &client,
        &first,
        json!({child.clone(): {"resources": {"VCPU": 2, "MEMORY_MB": 512}}}),
    );
    allocate(
        &client,
        &second,
        json!({child.clone(): {"resources": {"VCPU": 3}}}),
    );

    cache.refresh(&mut connection).expect("refresh");
    {
        let world = cache.read();
        assert_eq!(world.len(), 2);
        let vcpu = world.class_id("VCPU").expect("VCPU");
        let memory = world.class_id("MEMORY_MB").expect("MEMORY_MB");
        let fast = world.trait_id("CUSTOM_FAST").expect("custom trait named");
        let avx = world
            .trait_id("HW_CPU_X86_AVX2")
            .expect("standard trait named");
        let aggregate_id = world
            .aggregate_id(&parse(&aggregate))
            .expect("aggregate named");
        let root_view = world.provider_by_uuid(&parse(&root)).expect("root");
        let child_view = world.provider_by_uuid(&parse(&child)).expect("child");
        assert_eq!(child_view.parent, Some(root_view.id));
        assert_eq!(child_view.root, root_view.id);
        assert_eq!(root_view.root, root_view.id);
        assert_eq!(
            world.children(root_view.id).collect::<Vec<_>>(),
            vec![child_view.id]
        );
        assert_eq!(child_view.generation, generation(&client, &child) as i32);
        assert_eq!(root_view.generation, generation(&client, &root) as i32);
        let limits = *child_view.limits(vcpu).expect("VCPU inventory");
        assert_eq!((limits.total, limits.reserved), (8, 1));
        assert_eq!(limits.allocation_ratio, 2.0);
        assert_eq!(child_view.limits(memory).map(|l| l.step_size), Some(256));
        assert_eq!(child_view.used(vcpu), 5);
        assert_eq!(child_view.used(memory), 512);
        assert_eq!(child_view.traits, [fast, avx].into_iter().collect());
        assert_eq!(root_view.aggregates, [aggregate_id].into_iter().collect());
        assert_eq!(
            world.members(aggregate_id).collect::<Vec<_>>(),
            vec![root_view.id]
        );
    }

    // Removals show too: an allocation, the traits, then a provider.
    assert_eq!(client.delete(&format!("/allocations/{first}")).status, 204);
    assert_eq!(
        client
            .delete(&format!("/resource_providers/{child}/traits"))
            .status,
        204
    );
    cache.refresh(&mut connection).expect("refresh");
    {
        let world = cache.read();
        let vcpu = world.class_id("VCPU").expect("VCPU");
        let memory = world.class_id("MEMORY_MB").expect("MEMORY_MB");
        let child_view = world.provider_by_uuid(&parse(&child)).expect("child");
        assert_eq!(child_view.used(vcpu), 3);
        assert_eq!(child_view.used(memory), 0);
        assert!(child_view.traits.is_empty());
    }
    assert_eq!(client.delete(&format!("/allocations/{second}")).status, 204);
    assert_eq!(
        client
            .delete(&format!("/resource_providers/{child}"))
            .status,
        204
    );
    cache.refresh(&mut connection).expect("refresh");
    let world = cache.read();
    assert!(world.provider_by_uuid(&parse(&child)).is_none());
    let root_view = world.provider_by_uuid(&parse(&root)).expect("root");
    assert_eq!(world.children(root_view.id).count(), 0);
    assert_eq!(world.len(), 1);
}

#[test]
fn a_second_cache_loads_what_the_first_applied() {
    let server = TestServer::start();
    let client = server.client();
    let provider = create_provider(&client, "compute", None);
    set_inventories(&client, &provider, json!({"VCPU": {"total": 4}}));
    allocate(
        &client,
        &Uuid::new_v4().to_string(),
        json!({provider.clone(): {"resources": {"VCPU": 1}}}),
    );
    let cache = WorldCache::new();
    cache
        .refresh(&mut server.database.connection())
        .expect("refresh");
    let world = cache.read();
    let vcpu = world.class_id("VCPU").expect("VCPU");
    let view = world.provider_by_uuid(&parse(&provider)).expect("provider");
    assert_eq!(view.used(vcpu), 1);
    assert_eq!(view.limits(vcpu).map(|l| l.total), Some(4));
}

/// Inserts a root provider by SQL on `connection`.
fn insert_provider(connection: &mut PgConnection, uuid: Uuid, name: &str) {
    diesel::sql_query(
        "WITH next AS (SELECT nextval('resource_providers_id_seq')::int AS id) \
         INSERT INTO resource_providers (id, uuid, name, root_provider_id) \
         SELECT id, $1, $2, id FROM next",
    )
    .bind::<SqlUuid, _>(uuid)
    .bind::<Varchar, _>(name)
    .execute(connection)
    .expect("insert provider");
}

fn sql(connection: &mut PgConnection, statement: &str) {
    diesel::sql_query(statement)
        .execute(connection)
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

#[test]
fn a_transaction_committing_after_a_later_one_is_not_missed() {
    let database = TestDatabase::new();
    let mut reader = database.connection();
    let mut slow = database.connection();
    let mut fast = database.connection();
    let cache = WorldCache::new();
    cache.refresh(&mut reader).expect("first refresh");

    let slow_uuid = Uuid::new_v4();
    let fast_uuid = Uuid::new_v4();
    let rolled_back = Uuid::new_v4();
    // `slow` takes its change seq first and stays open...
    sql(&mut slow, "BEGIN");
    insert_provider(&mut slow, slow_uuid, "slow");
    // ...one that will roll back takes the next...
    let mut aborted = database.connection();
    sql(&mut aborted, "BEGIN");
    insert_provider(&mut aborted, rolled_back, "rolled-back");
    // ...while `fast` takes a later one and commits.
    insert_provider(&mut fast, fast_uuid, "fast");
    cache.refresh(&mut reader).expect("refresh");
    {
        let world = cache.read();
        assert!(world.provider_by_uuid(&fast_uuid).is_some());
        assert!(world.provider_by_uuid(&slow_uuid).is_none());
    }
    sql(&mut aborted, "ROLLBACK");
    // Refreshes in between keep asking for the open seq.
    cache.refresh(&mut reader).expect("refresh");
    insert_provider(&mut fast, Uuid::new_v4(), "fast-2");
    cache.refresh(&mut reader).expect("refresh");
    assert!(cache.read().provider_by_uuid(&slow_uuid).is_none());

    sql(&mut slow, "COMMIT");
    cache.refresh(&mut reader).expect("refresh");
    let world = cache.read();
    assert!(world.provider_by_uuid(&slow_uuid).is_some());
    assert!(world.provider_by_uuid(&rolled_back).is_none());
    assert_eq!(world.len(), 3);
}

#[test]
fn a_change_log_pruned_past_the_cache_makes_it_reload() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let cache = WorldCache::new();
    cache.refresh(&mut connection).expect("first refresh");
    let early = Uuid::new_v4();
    insert_provider(&mut connection, early, "early");
    // Another process prunes the change row before this one saw it.
    sql(
        &mut connection,
        "WITH gone AS (DELETE FROM provider_changes RETURNING seq) \
         UPDATE provider_changes_pruned SET through = (SELECT max(seq) FROM gone)",
    );
    cache.refresh(&mut connection).expect("refresh");
    assert!(cache.read().provider_by_uuid(&early).is_some());
    // And it goes on incrementally from there.
    let later = Uuid::new_v4();
    insert_provider(&mut connection, later, "later");
    cache.refresh(&mut connection).expect("refresh");
    assert!(cache.read().provider_by_uuid(&later).is_some());
}

#[test]
fn a_claim_logs_one_change_per_provider() {
    let server = TestServer::start();
    let client = server.client();
    let provider = create_provider(&client, "compute", None);
    set_inventories(
        &client,
        &provider,
        json!({"VCPU": {"total": 4}, "MEMORY_MB": {"total": 1024}, "DISK_GB": {"total": 10}}),
    );
    let mut connection = server.database.connection();
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let count = |connection: &mut PgConnection| {
        diesel::sql_query("SELECT count(*) AS count FROM provider_changes")
            .get_result::<Count>(connection)
            .expect("count")
            .count
    };
    let before = count(&mut connection);
    allocate(
        &client,
        &Uuid::new_v4().to_string(),
        json!({provider.clone(): {"resources": {"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}}}),
    );
    let logged = count(&mut connection) - before;
    // One for the allocation rows, one for the generation bump: not one
    // per allocation row.
    assert!(logged <= 2, "{logged} change rows for one claim");
}

/// Writers on several connections, each holding its change seq open for a
/// while and some rolling back, race a cache refreshing all along: once
/// they are done, one more refresh must give exactly what a fresh full
/// load gives.
#[test]
fn incremental_refreshes_under_concurrent_writers_match_a_full_load() {
    const WRITERS: usize = 6;
    const ROUNDS: usize = 25;
    let database = TestDatabase::new();
    let cache = std::sync::Arc::new(WorldCache::new());
    let mut reader = database.connection();
    cache.refresh(&mut reader).expect("first refresh");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refresher = {
        let cache = cache.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                cache.refresh(&mut reader).expect("refresh");
                std::thread::sleep(Duration::from_millis(1));
            }
            reader
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let mut connection = database.connection();
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    sql(&mut connection, "BEGIN");
                    insert_provider(
                        &mut connection,
                        Uuid::new_v4(),
                        &format!("provider-{writer}-{round}"),
                    );
                    std::thread::sleep(Duration::from_millis(((writer + round) % 4) as u64));
                    sql(
                        &mut connection,
                        "INSERT INTO inventories (resource_provider_id, resource_class_id, \
                             total, reserved, min_unit, max_unit, step_size, allocation_ratio) \
                         SELECT currval('resource_providers_id_seq')::int, id, 8, 0, 1, 8, 1, 1.0 \
                         FROM resource_classes WHERE name = 'VCPU'",
                    );
                    sql(
                        &mut connection,
                        "INSERT INTO allocations (resource_provider_id, consumer_id, \
                             resource_class_id, used) \
                         SELECT currval('resource_providers_id_seq')::int, gen_random_uuid(), id, 2 \
                         FROM resource_classes WHERE name = 'VCPU'",
                    );
                    std::thread::sleep(Duration::from_millis((round % 3) as u64));
                    if round % 5 == writer % 5 {
                        sql(&mut connection, "ROLLBACK");
                    } else {
                        sql(&mut connection, "COMMIT");
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reader = refresher.join().expect("refresher");
    cache.refresh(&mut reader).expect("last refresh");

    let fresh = WorldCache::new();
    fresh.refresh(&mut reader).expect("full load");
    let (incremental, full) = (cache.read(), fresh.read());
    assert_eq!(full.len(), WRITERS * ROUNDS - WRITERS * ROUNDS / 5);
    assert_eq!(incremental.len(), full.len());
    for provider in full.providers() {
        assert_eq!(incremental.provider(provider.id), Some(provider));
    }
}

// --- several processes -----------------------------------------------------

fn candidate_providers(client: &Client, query: &str) -> Vec<String> {
    let reply = client.get(&format!("/allocation_candidates?{query}"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["provider_summaries"]
        .as_object()
        .map(|summaries| summaries.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn a_write_through_one_process_shows_in_candidates_of_another() {
    let database = TestDatabase::new();
    let writer = ServerProcess::start(&database.url(), 4);
    let reader = ServerProcess::start(&database.url(), 4);
    // Both have loaded their world; the reader has answered once.
    assert!(candidate_providers(&reader.client, "resources=VCPU:1").is_empty());

    let provider = create_provider(&writer.client, "compute", None);
    set_inventories(&writer.client, &provider, json!({"VCPU": {"total": 2}}));
    assert_eq!(
        candidate_providers(&reader.client, "resources=VCPU:1"),
        vec![provider.clone()]
    );

    // Using it up through the writer removes it from the reader's answer.
    allocate(
        &writer.client,
        &Uuid::new_v4().to_string(),
        json!({provider.clone(): {"resources": {"VCPU": 2}}}),
    );
    assert!(candidate_providers(&reader.client, "resources=VCPU:1").is_empty());

    // A new trait and its association, both through the writer.
    assert_eq!(
        writer.client.put("/traits/CUSTOM_GOLD", &json!({})).status,
        201
    );
    let other = create_provider(&writer.client, "gold", None);
    set_inventories(&writer.client, &other, json!({"VCPU": {"total": 2}}));
    let traits = writer.client.put(
        &format!("/resource_providers/{other}/traits"),
        &json!({
            "traits": ["CUSTOM_GOLD"],
            "resource_provider_generation": generation(&writer.client, &other),
        }),
    );
    assert_eq!(traits.status, 200, "{:?}", traits.body);
    assert_eq!(
        candidate_providers(&reader.client, "resources=VCPU:1&required=CUSTOM_GOLD"),
        vec![other]
    );
}
