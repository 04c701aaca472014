//! Bad input of every kind gets a 4xx in Placement's error format (or a
//! 503 when the database is gone), never a 500, and changes nothing.

use diesel::prelude::*;
use serde_json::json;

use crate::support::TestServer;
use crate::support::http::Client;

fn provider(client: &Client) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let reply = client.post("/resource_providers", &json!({"name": "cn", "uuid": uuid}));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    uuid
}

fn generation(client: &Client, uuid: &str) -> serde_json::Value {
    client.get(&format!("/resource_providers/{uuid}")).body["generation"].clone()
}

#[test]
fn malformed_json_is_400() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = provider(&client);
    let reply = client.send_raw(
        "PUT",
        &format!("/resource_providers/{uuid}/inventories"),
        "application/json",
        "{\"inventories\": [",
    );
    assert_eq!(reply.status, 400);
    assert!(reply.error_detail().contains("Malformed JSON"));
    assert_eq!(generation(&client, &uuid), 0);
}

#[test]
fn schema_violations_are_400() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = provider(&client);
    let reply = client.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8, "bogus": 1}}}),
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .error_detail()
            .contains("Additional properties are not allowed")
    );
    assert_eq!(generation(&client, &uuid), 0);
}

#[test]
fn unknown_classes_and_traits_are_400() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = provider(&client);
    let class = client.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({"resource_provider_generation": 0, "inventories": {"CUSTOM_NOPE": {"total": 8}}}),
    );
    assert_eq!(class.status, 400, "{:?}", class.body);
    let trait_reply = client.put(
        &format!("/resource_providers/{uuid}/traits"),
        &json!({"resource_provider_generation": 0, "traits": ["CUSTOM_NOPE"]}),
    );
    assert_eq!(trait_reply.status, 400);
    let filter = client.get("/resource_providers?resources=CUSTOM_NOPE:1");
    assert_eq!(filter.status, 400);
    assert_eq!(generation(&client, &uuid), 0);
}

#[test]
fn bad_uuids_are_4xx() {
    let server = TestServer::start();
    let client = server.client();
    assert_eq!(client.get("/resource_providers/not-a-uuid").status, 404);
    let create = client.post(
        "/resource_providers",
        &json!({"name": "x", "uuid": "not-a-uuid"}),
    );
    assert_eq!(create.status, 400);
    let member_of = client.get("/resource_providers?member_of=not-a-uuid");
    assert_eq!(member_of.status, 400);
    let consumer = client.put(
        "/allocations/not-a-uuid",
        &json!({"allocations": {}, "project_id": "p", "user_id": "u",
                "consumer_generation": null, "consumer_type": "INSTANCE"}),
    );
    assert_eq!(consumer.status, 400);
}

#[test]
fn numbers_out_of_range_are_400() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = provider(&client);
    for total in [json!(0), json!(2_147_483_648_i64), json!(-1), json!("8")] {
        let reply = client.put(
            &format!("/resource_providers/{uuid}/inventories"),
            &json!({"resource_provider_generation": 0, "inventories": {"VCPU": {"total": total}}}),
        );
        assert_eq!(reply.status, 400, "total {total}");
    }
    assert_eq!(generation(&client, &uuid), 0);
}

#[test]
fn unicode_names_are_stored_and_bad_ones_refused() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = uuid::Uuid::new_v4().to_string();
    let created = client.post(
        "/resource_providers",
        &json!({"name": "∑ümmit ☃", "uuid": uuid}),
    );
    assert_eq!(created.status, 200);
    assert_eq!(
        client.get(&format!("/resource_providers/{uuid}")).body["name"],
        "∑ümmit ☃"
    );
    let trait_reply = client.put("/traits/CUSTOM_☃", &json!(null));
    assert_eq!(trait_reply.status, 400);
}

#[test]
fn a_database_that_went_away_is_503() {
    let server = TestServer::start();
    let client = server.client();
    let mut admin = diesel::PgConnection::establish(&crate::support::admin_url()).expect("admin");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        server.database.name
    ))
    .execute(&mut admin)
    .expect("terminate backends");
    diesel::sql_query(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        server.database.name
    ))
    .execute(&mut admin)
    .expect("refuse connections");
    let reply = client.get("/resource_classes");
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["status"], 503);
    diesel::sql_query(format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        server.database.name
    ))
    .execute(&mut admin)
    .expect("allow connections");
}

/// What osc-placement shows of an error: the detail's last line.
fn last_line(detail: &str) -> &str {
    detail.lines().last().unwrap_or_default()
}

#[test]
fn validation_errors_read_on_one_line_as_webob_renders_them() {
    let server = TestServer::start();
    let client = server.client().at("1.2");
    let reply = client.post("/resource_classes", &json!({"name": "fake_class"}));
    assert_eq!(reply.status, 400);
    let detail = reply.error_detail();
    assert!(
        last_line(&detail).starts_with(" JSON does not validate: 'fake_class' does not match"),
        "{detail:?}"
    );
    // The explanation, then webob's two newlines, then the rest on one line.
    assert_eq!(detail.matches('\n').count(), 2, "{detail:?}");

    let provider = uuid::Uuid::new_v4().to_string();
    let created = server.client().post(
        "/resource_providers",
        &json!({"name": "agg", "uuid": provider}),
    );
    assert_eq!(created.status, 200);
    let reply = server.client().at("1.19").put(
        &format!("/resource_providers/{provider}/aggregates"),
        &json!({"aggregates": ["abc"], "resource_provider_generation": 0}),
    );
    assert_eq!(reply.status, 400);
    let detail = reply.error_detail();
    assert!(
        last_line(&detail).contains("'abc' is not a 'uuid'"),
        "{detail:?}"
    );
    assert_eq!(detail.matches('\n').count(), 2, "{detail:?}");
}
