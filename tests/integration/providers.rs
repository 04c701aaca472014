//! Provider trees: parents, roots, and the re-parenting rules of 1.37.

use serde_json::json;

use crate::support::TestServer;
use crate::support::http::Client;

fn create(client: &Client, name: &str, parent: Option<&str>) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let reply = client.post(
        "/resource_providers",
        &json!({"name": name, "uuid": uuid, "parent_provider_uuid": parent}),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    uuid
}

fn update(
    client: &Client,
    uuid: &str,
    name: &str,
    parent: Option<&str>,
) -> crate::support::http::Reply {
    client.put(
        &format!("/resource_providers/{uuid}"),
        &json!({"name": name, "parent_provider_uuid": parent}),
    )
}

#[test]
fn children_share_their_parents_root() {
    let server = TestServer::start();
    let client = server.client();
    let root = create(&client, "root", None);
    let child = create(&client, "child", Some(&root));
    let grandchild = create(&client, "grandchild", Some(&child));
    let shown = client.get(&format!("/resource_providers/{grandchild}"));
    assert_eq!(shown.body["root_provider_uuid"], root.as_str());
    assert_eq!(shown.body["parent_provider_uuid"], child.as_str());
    let tree = client.get(&format!("/resource_providers?in_tree={child}"));
    assert_eq!(
        tree.body["resource_providers"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn before_1_37_a_parent_can_only_be_set_from_none() {
    let server = TestServer::start();
    let client = server.client().at("1.36");
    let first = create(&client, "first", None);
    let second = create(&client, "second", None);
    let orphan = create(&client, "orphan", None);
    assert_eq!(update(&client, &orphan, "orphan", Some(&first)).status, 200);
    let moved = update(&client, &orphan, "orphan", Some(&second));
    assert_eq!(moved.status, 400, "{:?}", moved.body);
    let unparented = update(&client, &orphan, "orphan", None);
    assert_eq!(unparented.status, 400, "{:?}", unparented.body);
}

#[test]
fn from_1_37_providers_move_with_their_subtree_but_not_into_it() {
    let server = TestServer::start();
    let client = server.client().at("1.37");
    let first = create(&client, "first", None);
    let second = create(&client, "second", None);
    let child = create(&client, "child", Some(&first));
    let grandchild = create(&client, "grandchild", Some(&child));

    assert_eq!(update(&client, &child, "child", Some(&second)).status, 200);
    let moved = client.get(&format!("/resource_providers/{grandchild}"));
    assert_eq!(
        moved.body["root_provider_uuid"],
        second.as_str(),
        "the subtree moves along"
    );

    let loop_attempt = update(&client, &child, "child", Some(&grandchild));
    assert_eq!(loop_attempt.status, 400);
    assert!(
        loop_attempt
            .error_detail()
            .contains("creating loop in the provider tree is not allowed.")
    );

    assert_eq!(update(&client, &child, "child", None).status, 200);
    let root = client.get(&format!("/resource_providers/{grandchild}"));
    assert_eq!(
        root.body["root_provider_uuid"],
        child.as_str(),
        "an un-parented provider is a root"
    );
}

#[test]
fn a_parent_with_children_cannot_be_deleted() {
    let server = TestServer::start();
    let client = server.client();
    let root = create(&client, "root", None);
    let child = create(&client, "child", Some(&root));
    let refused = client.delete(&format!("/resource_providers/{root}"));
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.error_code(),
        "placement.resource_provider.cannot_delete_parent"
    );
    assert_eq!(
        client
            .delete(&format!("/resource_providers/{child}"))
            .status,
        204
    );
    assert_eq!(
        client.delete(&format!("/resource_providers/{root}")).status,
        204
    );
}

/// A subtree whose root has a higher id than one of its members is moved
/// back and forth while claims name both: the move takes the subtree's
/// rows in id order, as claims do, so the two queue instead of deadlocking
/// (PostgreSQL would abort one of them after `deadlock_timeout`, a 500).
#[test]
fn moving_a_subtree_while_it_is_claimed_does_not_deadlock() {
    let server = TestServer::start_with(|config| {
        config.workers = 2;
        config.pool_size = 4;
    });
    let client = server.client();
    let older = create(&client, "older", None);
    let top = create(&client, "top", None);
    let (first_root, second_root) = (create(&client, "r1", None), create(&client, "r2", None));
    assert_eq!(update(&client, &older, "older", Some(&top)).status, 200);
    for uuid in [&older, &top] {
        let generation = client.get(&format!("/resource_providers/{uuid}")).body["generation"]
            .as_i64()
            .expect("generation");
        let inventory = client.put(
            &format!("/resource_providers/{uuid}/inventories"),
            &json!({
                "resource_provider_generation": generation,
                "inventories": {"VCPU": {"total": 1000}}
            }),
        );
        assert_eq!(inventory.status, 200, "{:?}", inventory.body);
    }
    for round in 0..12 {
        let new_root = if round % 2 == 0 {
            &first_root
        } else {
            &second_root
        };
        let claim = json!({
            "allocations": {
                older.as_str(): {"resources": {"VCPU": 1}},
                top.as_str(): {"resources": {"VCPU": 1}}
            },
            "project_id": "project",
            "user_id": "user",
            "consumer_generation": serde_json::Value::Null,
            "consumer_type": "INSTANCE"
        });
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let claimer = {
            let (client, barrier) = (client.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                client
                    .put(&format!("/allocations/{}", uuid::Uuid::new_v4()), &claim)
                    .status
            })
        };
        let mover = {
            let (client, barrier) = (client.clone(), barrier.clone());
            let (top, new_root) = (top.clone(), new_root.clone());
            std::thread::spawn(move || {
                barrier.wait();
                update(&client, &top, "top", Some(&new_root)).status
            })
        };
        let statuses = (
            claimer.join().expect("claimer"),
            mover.join().expect("mover"),
        );
        assert_eq!(statuses, (204, 200), "round {round}");
    }
}
