//! Protocol behaviour common to every endpoint: authentication,
//! microversion negotiation, routing errors and the error envelope.

use serde_json::json;

use crate::support::TestServer;

#[test]
fn root_needs_no_token_and_names_the_version_range() {
    let server = TestServer::start();
    let reply = server.client().as_user("").get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["versions"][0]["max_version"], "1.39");
    assert_eq!(reply.body["versions"][0]["min_version"], "1.0");
    assert_eq!(
        reply.header("openstack-api-version"),
        Some("placement 1.39")
    );
    assert_eq!(reply.header("vary"), Some("openstack-api-version"));
    assert!(
        reply
            .header("x-openstack-request-id")
            .is_some_and(|id| id.starts_with("req-"))
    );
}

#[test]
fn missing_token_is_401_everywhere_but_root() {
    let server = TestServer::start();
    let agent = ureq::AgentBuilder::new().build();
    let result = agent
        .get(&format!("{}/resource_classes", server.base_url))
        .call();
    match result {
        Err(ureq::Error::Status(status, _)) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
}

#[test]
fn version_negotiation_errors() {
    let server = TestServer::start();
    let too_new = server.client().at("1.40").get("/resource_classes");
    assert_eq!(too_new.status, 406);
    assert_eq!(too_new.body["errors"][0]["max_version"], "1.39");
    assert_eq!(too_new.body["errors"][0]["min_version"], "1.0");
    let malformed = server.client().at("one.two").get("/resource_classes");
    assert_eq!(malformed.status, 400);
    assert!(
        malformed
            .error_detail()
            .contains("invalid version string: one.two")
    );
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let server = TestServer::start();
    let client = server.client();
    assert_eq!(client.get("/no/such/path").status, 404);
    let reply = client.delete("/resource_classes");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, POST"));
}

#[test]
fn endpoint_newer_than_the_requested_version_is_404() {
    let server = TestServer::start();
    assert_eq!(
        server.client().at("1.1").get("/resource_classes").status,
        404
    );
    assert_eq!(
        server.client().at("1.2").get("/resource_classes").status,
        200
    );
}

#[test]
fn error_codes_appear_from_1_23() {
    let server = TestServer::start();
    let old = server
        .client()
        .at("1.22")
        .get("/resource_classes/CUSTOM_NOPE");
    assert_eq!(old.status, 404);
    assert!(old.body["errors"][0].get("code").is_none());
    let new = server
        .client()
        .at("1.23")
        .get("/resource_classes/CUSTOM_NOPE");
    assert_eq!(new.error_code(), "placement.undefined_code");
}

#[test]
fn malformed_json_and_wrong_media_types_change_nothing() {
    let server = TestServer::start();
    let client = server.client();
    let malformed = client.send_raw(
        "POST",
        "/resource_classes",
        "application/json",
        "{\"name\": ",
    );
    assert_eq!(malformed.status, 400);
    assert!(malformed.error_detail().contains("Malformed JSON"));
    let wrong_type = client.send_raw("POST", "/resource_classes", "text/plain", "name=CUSTOM_X");
    assert_eq!(wrong_type.status, 415);
    let invalid = client.post("/resource_classes", &json!({"name": "NOT_CUSTOM"}));
    assert_eq!(invalid.status, 400);
    assert!(invalid.error_detail().contains("JSON does not validate"));
    let too_long = client.post(
        "/resource_classes",
        &json!({"name": format!("CUSTOM_{}", "A".repeat(300))}),
    );
    assert_eq!(too_long.status, 400);
    assert!(
        too_long
            .error_detail()
            .contains("Failed validating 'maxLength'")
    );
    let unicode = client.post("/resource_classes", &json!({"name": "CUSTOM_ÄÖÜ"}));
    assert_eq!(unicode.status, 400);
    let classes = client.get("/resource_classes");
    assert_eq!(
        classes.body["resource_classes"].as_array().map(Vec::len),
        Some(21)
    );
}

#[test]
fn non_json_accept_is_406() {
    let server = TestServer::start();
    let agent = ureq::AgentBuilder::new().build();
    let result = agent
        .get(&format!("{}/resource_classes", server.base_url))
        .set("x-auth-token", "admin")
        .set("openstack-api-version", "placement latest")
        .set("accept", "text/plain")
        .call();
    match result {
        Err(ureq::Error::Status(status, _)) => assert_eq!(status, 406),
        other => panic!("expected 406, got {other:?}"),
    }
}

#[test]
fn policy_refuses_a_reader_to_create() {
    let server = TestServer::start();
    let reader = server.client().as_user("alice:project");
    let reply = reader.post("/resource_classes", &json!({"name": "CUSTOM_GPU"}));
    assert_eq!(reply.status, 403);
    assert!(
        reply
            .error_detail()
            .contains("placement:resource_classes:create")
    );
    assert_eq!(
        server.client().get("/resource_classes/CUSTOM_GPU").status,
        404
    );
}

#[test]
fn bodiless_put_creates_a_custom_class_once() {
    use diesel::prelude::*;
    let server = TestServer::start();
    let client = server.client();
    assert_eq!(
        client
            .put("/resource_classes/CUSTOM_FPGA_X", &json!(null))
            .status,
        201
    );
    assert_eq!(
        client
            .put("/resource_classes/CUSTOM_FPGA_X", &json!(null))
            .status,
        204
    );
    assert_eq!(
        client.put("/resource_classes/VCPU", &json!(null)).status,
        400
    );
    let mut connection = server.database.connection();
    let ids: Vec<i32> = placement::storage::schema::resource_classes::table
        .filter(placement::storage::schema::resource_classes::name.eq("CUSTOM_FPGA_X"))
        .select(placement::storage::schema::resource_classes::id)
        .load(&mut connection)
        .expect("query");
    assert_eq!(ids.len(), 1);
    assert!(ids[0] >= 10000, "custom ids start at 10000, got {}", ids[0]);
}
