//! Resource providers and their aggregates: tree moves, the filtered list
//! and the generation rules of aggregate writes.

use diesel::RunQueryDsl;
use serde_json::json;

use crate::support::{TestServer, text};

const A: &str = "11111111-1111-4111-8111-111111111111";
const B: &str = "22222222-2222-4222-8222-222222222222";
const C: &str = "33333333-3333-4333-8333-333333333333";

fn create(client: &crate::support::http::Client, name: &str, uuid: &str, parent: Option<&str>) {
    let reply = client.post(
        "/resource_providers",
        &json!({"name": name, "uuid": uuid, "parent_provider_uuid": parent}),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

/// Upstream's update handler answers with the `updated_at` of the
/// provider as it loaded it before saving: none for a child never changed
/// before, so no `last-modified` (a root has one from its creation, which
/// ends with an UPDATE of its root id); the time of its last change
/// otherwise. (Found by tools/differential.)
#[test]
fn updating_a_never_changed_child_has_no_last_modified() {
    let server = TestServer::start();
    let client = server.client();
    create(&client, "a", A, None);
    create(&client, "b", B, Some(A));
    let root = client.put(&format!("/resource_providers/{A}"), &json!({"name": "a2"}));
    assert_eq!(root.status, 200);
    assert!(root.header("last-modified").is_some());
    // Saving it unchanged writes nothing, so it stays never changed.
    for _ in 0..2 {
        let same = client.put(
            &format!("/resource_providers/{B}"),
            &json!({"name": "b", "parent_provider_uuid": A}),
        );
        assert_eq!(same.status, 200);
        assert_eq!(same.header("last-modified"), None);
    }
    let first = client.put(&format!("/resource_providers/{B}"), &json!({"name": "b2"}));
    assert_eq!(first.status, 200);
    assert_eq!(first.header("last-modified"), None);
    assert_eq!(first.header("cache-control"), Some("no-cache"));
    let second = client.put(&format!("/resource_providers/{B}"), &json!({"name": "b3"}));
    assert_eq!(second.status, 200);
    assert!(second.header("last-modified").is_some());
}

#[test]
fn unparenting_moves_the_whole_subtree_to_the_new_root() {
    let server = TestServer::start();
    let client = server.client();
    create(&client, "a", A, None);
    create(&client, "b", B, Some(A));
    create(&client, "c", C, Some(B));
    assert_eq!(
        text(
            &client.get(&format!("/resource_providers/{C}")).body,
            "/root_provider_uuid"
        ),
        A
    );

    let old = client.at("1.36").put(
        &format!("/resource_providers/{B}"),
        &json!({"name": "b", "parent_provider_uuid": null}),
    );
    assert_eq!(old.status, 400);
    assert!(
        old.error_detail()
            .contains("un-parenting a provider is not currently allowed")
    );

    let moved = client.put(
        &format!("/resource_providers/{B}"),
        &json!({"name": "b", "parent_provider_uuid": null}),
    );
    assert_eq!(moved.status, 200);
    assert_eq!(text(&moved.body, "/root_provider_uuid"), B);
    let child = client.get(&format!("/resource_providers/{C}"));
    assert_eq!(text(&child.body, "/root_provider_uuid"), B);
    assert_eq!(text(&child.body, "/parent_provider_uuid"), B);

    let looped = client.put(
        &format!("/resource_providers/{B}"),
        &json!({"name": "b", "parent_provider_uuid": C}),
    );
    assert_eq!(looped.status, 400);
    assert!(
        looped
            .error_detail()
            .contains("creating loop in the provider tree is not allowed.")
    );

    let parent = client.delete(&format!("/resource_providers/{B}"));
    assert_eq!(parent.status, 409);
    assert_eq!(
        parent.error_code(),
        "placement.resource_provider.cannot_delete_parent"
    );
}

#[test]
fn resources_filter_honours_usage_and_unit_limits() {
    let server = TestServer::start();
    let client = server.client();
    create(&client, "a", A, None);
    create(&client, "b", B, None);
    let mut connection = server.database.connection();
    diesel::sql_query(
        "INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved, \
         min_unit, max_unit, step_size, allocation_ratio) \
         SELECT id, 0, 8, 0, 1, 8, 1, 2.0 FROM resource_providers",
    )
    .execute(&mut connection)
    .expect("inventories");
    diesel::sql_query(
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used) \
         SELECT id, gen_random_uuid(), 0, 12 FROM resource_providers WHERE name = 'b'",
    )
    .execute(&mut connection)
    .expect("allocations");

    let names = |query: &str| -> Vec<String> {
        let reply = client.get(&format!("/resource_providers?{query}"));
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["resource_providers"]
            .as_array()
            .map(|providers| providers.iter().map(|p| text(p, "/name")).collect())
            .unwrap_or_default()
    };
    assert_eq!(names("resources=VCPU:4"), vec!["a", "b"]);
    assert_eq!(names("resources=VCPU:5"), vec!["a"]);
    assert_eq!(names("resources=VCPU:9"), Vec::<String>::new());
    assert_eq!(names("resources=MEMORY_MB:1"), Vec::<String>::new());
    let unknown = client.get("/resource_providers?resources=CUSTOM_NOPE:1");
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .error_detail()
            .contains("No such resource class CUSTOM_NOPE.")
    );
}

#[test]
fn aggregates_bump_the_generation_only_from_1_19() {
    let server = TestServer::start();
    let client = server.client();
    create(&client, "a", A, None);
    let path = format!("/resource_providers/{A}/aggregates");
    let old = client.at("1.18").put(&path, &json!([B]));
    assert_eq!(old.status, 200);
    assert_eq!(old.body, json!({"aggregates": [B]}));
    let stale = client.put(
        &path,
        &json!({"aggregates": [], "resource_provider_generation": 1}),
    );
    assert_eq!(stale.status, 409);
    assert_eq!(stale.error_code(), "placement.concurrent_update");
    let new = client.put(
        &path,
        &json!({"aggregates": [C], "resource_provider_generation": 0}),
    );
    assert_eq!(new.status, 200);
    assert_eq!(new.body["resource_provider_generation"], 1);

    let member = client.get(&format!("/resource_providers?member_of={C}"));
    assert_eq!(
        member.body["resource_providers"].as_array().map(Vec::len),
        Some(1)
    );
    let forbidden = client.get(&format!("/resource_providers?member_of=!{C}"));
    assert_eq!(
        forbidden.body["resource_providers"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}
