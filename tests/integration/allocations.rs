//! Allocation writes: capacity, consumer generations, and above all no
//! over-allocation when many clients write at once. Providers and
//! inventories are written straight into the database so that these tests
//! depend only on the allocation endpoints.

use diesel::prelude::*;
use serde_json::{Value, json};

use crate::support::TestServer;

const PROVIDER: &str = "7b3f4b0a-0000-4000-8000-000000000001";

/// `PROVIDER` with `total` VCPU, straight into the database.
fn provider_with_vcpus(server: &TestServer, total: i64) {
    root_with_vcpus(server, 1, PROVIDER, total);
}

/// A root provider with `total` VCPU (class id 0), straight into the
/// database.
fn root_with_vcpus(server: &TestServer, id: i32, uuid: &str, total: i64) {
    let mut connection = server.database.connection();
    diesel::sql_query(format!(
        "INSERT INTO resource_providers (id, uuid, name, root_provider_id) \
         VALUES ({id}, '{uuid}', 'rp{id}', {id})"
    ))
    .execute(&mut connection)
    .expect("insert provider");
    diesel::sql_query(format!(
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, \
         min_unit, max_unit, step_size, allocation_ratio) \
         VALUES ({id}, 0, {total}, 0, 1, {total}, 1, 1.0)"
    ))
    .execute(&mut connection)
    .expect("insert inventory");
}

fn claim(vcpus: i64, generation: Value) -> Value {
    json!({
        "allocations": {PROVIDER: {"resources": {"VCPU": vcpus}}},
        "project_id": "project",
        "user_id": "user",
        "consumer_generation": generation,
        "consumer_type": "INSTANCE"
    })
}

#[test]
fn concurrent_claims_never_exceed_capacity() {
    let server = TestServer::start_with(|config| {
        config.workers = 2;
        config.pool_size = 8;
    });
    provider_with_vcpus(&server, 10);
    let client = server.client();
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let consumer = uuid::Uuid::new_v4();
                let reply = client.put(&format!("/allocations/{consumer}"), &claim(1, Value::Null));
                (reply.status, reply.error_code())
            })
        })
        .collect();
    let outcomes: Vec<(u16, String)> = threads
        .into_iter()
        .map(|thread| thread.join().expect("thread"))
        .collect();
    let granted = outcomes.iter().filter(|(status, _)| *status == 204).count();
    assert!(
        outcomes
            .iter()
            .all(|(status, _)| *status == 204 || *status == 409),
        "{outcomes:?}"
    );
    assert!(granted <= 10, "{granted} claims granted on 10 VCPU");
    let usages = client.get(&format!("/resource_providers/{PROVIDER}/allocations"));
    let allocated: i64 = usages.body["allocations"]
        .as_object()
        .expect("allocations")
        .values()
        .map(|consumer| consumer["resources"]["VCPU"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(allocated as usize, granted);
}

#[test]
fn consumer_generation_guards_rewrites() {
    let server = TestServer::start();
    provider_with_vcpus(&server, 8);
    let client = server.client();
    let path = "/allocations/0c1f6a1e-0000-4000-8000-000000000001";
    assert_eq!(client.put(path, &claim(2, json!(3))).status, 409);
    assert_eq!(client.put(path, &claim(2, Value::Null)).status, 204);
    let shown = client.get(path);
    assert_eq!(shown.body["consumer_generation"], 1);
    assert_eq!(shown.body["consumer_type"], "INSTANCE");
    let stale = client.put(path, &claim(3, Value::Null));
    assert_eq!(stale.status, 409);
    assert_eq!(stale.error_code(), "placement.concurrent_update");
    assert!(
        stale
            .error_detail()
            .contains("consumer generation conflict - expected 1 but got None")
    );
    let too_much = client.put(path, &claim(9, json!(1)));
    assert_eq!(too_much.status, 409);
    assert!(
        too_much
            .error_detail()
            .contains("would violate inventory constraints")
    );
    // Safe delete: empty allocations with the current generation.
    let mut empty = claim(1, json!(1));
    empty["allocations"] = json!({});
    assert_eq!(client.put(path, &empty).status, 204);
    assert_eq!(client.get(path).body, json!({"allocations": {}}));
    assert_eq!(client.delete(path).status, 404);
}

/// Two batch writes, each naming one provider and emptying a consumer that
/// holds allocations on the other, race round after round: every provider
/// either write moves a generation of is locked up front in one order, so
/// they queue instead of deadlocking (PostgreSQL would abort one of them
/// after `deadlock_timeout`, a 500).
#[test]
fn crossing_batch_writes_do_not_deadlock() {
    const SECOND: &str = "7b3f4b0a-0000-4000-8000-000000000002";
    let server = TestServer::start_with(|config| {
        config.workers = 2;
        config.pool_size = 4;
    });
    provider_with_vcpus(&server, 1000);
    root_with_vcpus(&server, 2, SECOND, 1000);
    let client = server.client();
    let on = |provider: &str| {
        json!({
            "allocations": {provider: {"resources": {"VCPU": 1}}},
            "project_id": "project",
            "user_id": "user",
            "consumer_generation": Value::Null,
            "consumer_type": "INSTANCE"
        })
    };
    let emptied = json!({
        "allocations": {},
        "project_id": "project",
        "user_id": "user",
        "consumer_generation": 1,
        "consumer_type": "INSTANCE"
    });
    for _ in 0..12 {
        let (on_first, on_second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(
            client
                .put(&format!("/allocations/{on_first}"), &on(PROVIDER))
                .status,
            204
        );
        assert_eq!(
            client
                .put(&format!("/allocations/{on_second}"), &on(SECOND))
                .status,
            204
        );
        let to_first = json!({
            on_second.to_string(): emptied.clone(),
            uuid::Uuid::new_v4().to_string(): on(PROVIDER),
        });
        let to_second = json!({
            on_first.to_string(): emptied.clone(),
            uuid::Uuid::new_v4().to_string(): on(SECOND),
        });
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writers: Vec<_> = [to_first, to_second]
            .into_iter()
            .map(|body| {
                let (client, barrier) = (client.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    client.post("/allocations", &body).status
                })
            })
            .collect();
        let statuses: Vec<u16> = writers
            .into_iter()
            .map(|writer| writer.join().expect("writer"))
            .collect();
        assert_eq!(statuses, vec![204, 204]);
    }
}

/// A provider with VCPU (class 0) and MEMORY_MB (class 1), straight into
/// the database.
fn root_with_vcpus_and_memory(server: &TestServer, id: i32, uuid: &str) {
    root_with_vcpus(server, id, uuid, 64);
    diesel::sql_query(format!(
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, \
         min_unit, max_unit, step_size, allocation_ratio) \
         VALUES ({id}, 1, 65536, 0, 1, 65536, 1, 1.0)"
    ))
    .execute(&mut server.database.connection())
    .expect("insert inventory");
}

/// The keys of a JSON object, in the order they were sent.
fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn allocation_reads_list_providers_and_classes_in_the_order_written() {
    // osc-placement prints a consumer's remaining providers in the order
    // upstream returns them: the order its rows were written, not sorted.
    let server = TestServer::start();
    let later = "ffffffff-0000-4000-8000-000000000001";
    let earlier = "00000000-0000-4000-8000-000000000002";
    root_with_vcpus_and_memory(&server, 1, later);
    root_with_vcpus_and_memory(&server, 2, earlier);
    let consumer = uuid::Uuid::new_v4().to_string();
    let written = server.client().put(
        &format!("/allocations/{consumer}"),
        &json!({
            "allocations": {
                later: {"resources": {"VCPU": 1, "MEMORY_MB": 512}},
                earlier: {"resources": {"MEMORY_MB": 256, "VCPU": 2}},
            },
            "project_id": "project", "user_id": "user",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(written.status, 204, "{:?}", written.body);
    let read = server.client().get(&format!("/allocations/{consumer}"));
    assert_eq!(keys(&read.body["allocations"]), vec![later, earlier]);
    assert_eq!(
        keys(&read.body["allocations"][later]["resources"]),
        vec!["VCPU", "MEMORY_MB"]
    );
    assert_eq!(
        keys(&read.body["allocations"][earlier]["resources"]),
        vec!["MEMORY_MB", "VCPU"]
    );
    let by_provider = server
        .client()
        .get(&format!("/resource_providers/{earlier}/allocations"));
    assert_eq!(
        keys(&by_provider.body["allocations"][consumer.as_str()]["resources"]),
        vec!["MEMORY_MB", "VCPU"]
    );
}
