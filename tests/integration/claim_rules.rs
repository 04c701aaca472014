//! Claims through `PUT /allocations/{consumer}`: capacity and unit
//! constraints, the over-capacity exemption, consumer generations.

use serde_json::{Value, json};

use crate::support::http::{Client, Reply};
use crate::support::{TestServer, provider_with_inventory};

fn claim(
    client: &Client,
    consumer: &str,
    provider: &str,
    resources: Value,
    generation: Value,
) -> Reply {
    client.put(
        &format!("/allocations/{consumer}"),
        &json!({
            "allocations": {provider: {"resources": resources}},
            "project_id": "project", "user_id": "user",
            "consumer_generation": generation, "consumer_type": "INSTANCE"
        }),
    )
}

fn new_consumer() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn vcpu_used(client: &Client, provider: &str) -> i64 {
    client
        .get(&format!("/resource_providers/{provider}/usages"))
        .body["usages"]["VCPU"]
        .as_i64()
        .unwrap_or(-1)
}

#[test]
fn capacity_is_total_minus_reserved_times_ratio() {
    let server = TestServer::start();
    let client = server.client();
    // (10 - 2) * 1.5 = 12
    let provider = provider_with_inventory(
        &client,
        "cn1",
        json!({"VCPU": {"total": 10, "reserved": 2, "allocation_ratio": 1.5}}),
    );
    assert_eq!(
        claim(
            &client,
            &new_consumer(),
            &provider,
            json!({"VCPU": 8}),
            json!(null)
        )
        .status,
        204
    );
    assert_eq!(
        claim(
            &client,
            &new_consumer(),
            &provider,
            json!({"VCPU": 4}),
            json!(null)
        )
        .status,
        204
    );
    let beyond = claim(
        &client,
        &new_consumer(),
        &provider,
        json!({"VCPU": 1}),
        json!(null),
    );
    assert_eq!(beyond.status, 409);
    assert_eq!(beyond.error_code(), "placement.undefined_code");
    assert!(
        beyond
            .error_detail()
            .contains("The requested amount would exceed the capacity")
    );
    assert_eq!(vcpu_used(&client, &provider), 12);
}

#[test]
fn min_max_and_step_are_enforced() {
    let server = TestServer::start();
    let client = server.client();
    let provider = provider_with_inventory(
        &client,
        "cn1",
        json!({"VCPU": {"total": 64, "min_unit": 2, "max_unit": 16, "step_size": 2}}),
    );
    for amount in [1, 3, 18] {
        let refused = claim(
            &client,
            &new_consumer(),
            &provider,
            json!({"VCPU": amount}),
            json!(null),
        );
        assert_eq!(refused.status, 409, "amount {amount}");
        assert!(
            refused
                .error_detail()
                .contains("would violate inventory constraints")
        );
    }
    for amount in [2, 16] {
        let accepted = claim(
            &client,
            &new_consumer(),
            &provider,
            json!({"VCPU": amount}),
            json!(null),
        );
        assert_eq!(accepted.status, 204, "amount {amount}: {:?}", accepted.body);
    }
    assert_eq!(vcpu_used(&client, &provider), 18);
}

#[test]
fn an_over_capacity_provider_accepts_writes_that_do_not_worsen_it() {
    let server = TestServer::start();
    let client = server.client();
    let provider = provider_with_inventory(&client, "cn1", json!({"VCPU": {"total": 10}}));
    let consumer = new_consumer();
    assert_eq!(
        claim(
            &client,
            &consumer,
            &provider,
            json!({"VCPU": 8}),
            json!(null)
        )
        .status,
        204
    );
    // The operator reserves more: capacity 4, usage 8.
    let generation =
        client.get(&format!("/resource_providers/{provider}")).body["generation"].clone();
    let reserve = client.put(
        &format!("/resource_providers/{provider}/inventories"),
        &json!({"resource_provider_generation": generation, "inventories": {"VCPU": {"total": 10, "reserved": 6}}}),
    );
    assert_eq!(reserve.status, 200, "{:?}", reserve.body);
    let shrink = claim(&client, &consumer, &provider, json!({"VCPU": 6}), json!(1));
    assert_eq!(
        shrink.status, 204,
        "shrinking an overage is allowed: {:?}",
        shrink.body
    );
    let grow = claim(&client, &consumer, &provider, json!({"VCPU": 7}), json!(2));
    assert_eq!(grow.status, 409, "growing an overage is refused");
    let other = claim(
        &client,
        &new_consumer(),
        &provider,
        json!({"VCPU": 1}),
        json!(null),
    );
    assert_eq!(other.status, 409, "a new consumer makes it worse");
    assert_eq!(vcpu_used(&client, &provider), 6);
}

#[test]
fn consumer_generations_guard_concurrent_updates_of_one_consumer() {
    let server = TestServer::start();
    let client = server.client();
    let provider = provider_with_inventory(&client, "cn1", json!({"VCPU": {"total": 10}}));
    let consumer = new_consumer();
    assert_eq!(
        claim(
            &client,
            &consumer,
            &provider,
            json!({"VCPU": 1}),
            json!(null)
        )
        .status,
        204
    );
    // null means "I expect no consumer": it exists now.
    let again = claim(
        &client,
        &consumer,
        &provider,
        json!({"VCPU": 2}),
        json!(null),
    );
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "placement.concurrent_update");
    assert!(
        again
            .error_detail()
            .contains("consumer generation conflict")
    );
    let current = client.get(&format!("/allocations/{consumer}"));
    assert_eq!(current.body["consumer_generation"], 1);
    let stale = claim(&client, &consumer, &provider, json!({"VCPU": 2}), json!(5));
    assert_eq!(stale.status, 409);
    assert!(
        stale
            .error_detail()
            .contains("consumer generation conflict")
    );
    let updated = claim(&client, &consumer, &provider, json!({"VCPU": 2}), json!(1));
    assert_eq!(updated.status, 204);
    assert_eq!(
        client.get(&format!("/allocations/{consumer}")).body["consumer_generation"],
        2
    );
    // The safe delete: empty allocations at the current generation.
    let delete = client.put(
        &format!("/allocations/{consumer}"),
        &json!({"allocations": {}, "project_id": "project", "user_id": "user",
                "consumer_generation": 2, "consumer_type": "INSTANCE"}),
    );
    assert_eq!(delete.status, 204);
    assert_eq!(vcpu_used(&client, &provider), 0);
    assert_eq!(
        client.get(&format!("/allocations/{consumer}")).body["allocations"],
        json!({})
    );
}

#[test]
fn a_refused_claim_changes_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let small = provider_with_inventory(&client, "small", json!({"VCPU": {"total": 2}}));
    let large = provider_with_inventory(&client, "large", json!({"VCPU": {"total": 100}}));
    let generation_before =
        client.get(&format!("/resource_providers/{large}")).body["generation"].clone();
    let consumer = new_consumer();
    let reply = client.put(
        &format!("/allocations/{consumer}"),
        &json!({
            "allocations": {
                large.as_str(): {"resources": {"VCPU": 10}},
                small.as_str(): {"resources": {"VCPU": 3}}
            },
            "project_id": "project", "user_id": "user",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(reply.status, 409);
    assert_eq!(vcpu_used(&client, &large), 0);
    assert_eq!(
        client.get(&format!("/resource_providers/{large}")).body["generation"],
        generation_before
    );
}

/// Upstream checks the allocations of a write one by one in request order,
/// each with the amounts of its (provider, class) so far, and answers with
/// the first that fails: here a class the second provider lacks, met
/// before the second consumer's amount takes the first provider past its
/// capacity. (Found by tools/differential.)
#[test]
fn the_first_failing_allocation_in_request_order_is_the_answer() {
    let server = TestServer::start();
    let client = server.client().at("1.37");
    let small = provider_with_inventory(&client, "small", json!({"DISK_GB": {"total": 1}}));
    let other = provider_with_inventory(&client, "other", json!({"DISK_GB": {"total": 10}}));
    let (first, second) = (new_consumer(), new_consumer());
    let reply = client.post(
        "/allocations",
        &json!({
            first.clone(): {
                "allocations": {
                    small.clone(): {"resources": {"DISK_GB": 1}},
                    other.clone(): {"resources": {"DISK_GB": 1, "VCPU": 1}}
                },
                "project_id": "p", "user_id": "u", "consumer_generation": null
            },
            second: {
                "allocations": {small.clone(): {"resources": {"DISK_GB": 1}}},
                "project_id": "p", "user_id": "u", "consumer_generation": null
            }
        }),
    );
    assert_eq!(reply.status, 409, "{:?}", reply.body);
    assert_eq!(
        reply.error_detail(),
        format!(
            "There was a conflict when trying to complete your request.\n\n Unable to allocate \
             inventory: Inventory for 'VCPU' on resource provider '{other}' invalid.  "
        )
    );
    let swapped = client.put(
        &format!("/allocations/{first}"),
        &json!({
            "allocations": {small.clone(): {"resources": {"DISK_GB": 1}}},
            "project_id": "p", "user_id": "u", "consumer_generation": null
        }),
    );
    assert_eq!(swapped.status, 204);
}
