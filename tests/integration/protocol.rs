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

/// One request with exactly these headers: status, content type, body.
fn raw(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let agent = ureq::AgentBuilder::new().build();
    let mut request = agent.request(method, &format!("{}{path}", server.base_url));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_string(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("transport error: {error}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    (
        status,
        content_type,
        response.into_string().unwrap_or_default(),
    )
}

/// microversion-parse's texts, which carry Python's own exception
/// messages, and its reading of the header: Python's `int()` for each
/// half, a lone service word ignored. (Found by tools/differential.)
#[test]
fn microversion_errors_read_as_microversion_parse_words_them() {
    let server = TestServer::start();
    let at = |version: &str| {
        let (status, _, body) = raw(
            &server,
            "GET",
            "/resource_providers",
            &[
                ("x-auth-token", "admin"),
                ("openstack-api-version", version),
            ],
            None,
        );
        let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        (status, crate::support::text(&body, "/errors/0/detail"))
    };
    let (status, detail) = at("placement pony");
    assert_eq!(status, 400);
    assert!(
        detail.ends_with(
            "\n\n Invalid microversion: invalid version string: pony; \
             invalid literal for int() with base 10: 'pony'  "
        ),
        "{detail:?}"
    );
    let (status, detail) = at("placement 1");
    assert_eq!(status, 400);
    assert!(
        detail.contains(
            "invalid version string: 1; Version.__new__() missing 1 required \
             positional argument: 'minor'"
        ),
        "{detail:?}"
    );
    let (status, detail) = at("placement -1.5");
    assert_eq!(status, 406);
    assert_eq!(
        detail,
        "The resource could not be generated that was acceptable to your browser \
         (content of type application/json. \n\n Invalid microversion: Unacceptable \
         version header: -1.5"
    );
    assert_eq!(at("placement").0, 200);
    assert_eq!(at("placement 1.0_5").0, 200);
}

/// An empty Content-Type is no Content-Type: upstream's handler refuses
/// the body with a 400 before any 415. (Found by tools/differential.)
#[test]
fn a_body_with_an_empty_content_type_is_a_400() {
    let server = TestServer::start();
    let (status, _, body) = raw(
        &server,
        "POST",
        "/resource_classes",
        &[
            ("x-auth-token", "admin"),
            ("openstack-api-version", "placement 1.2"),
            ("content-type", ""),
        ],
        Some(r#"{"name": "CUSTOM_X"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("content-type header required when content-length > 0"));
}

/// webob renders an error in what the Accept header prefers of html and
/// JSON, and as plain text when it admits neither; HTTPNotAcceptable's
/// template names the Accept header. (Found by tools/differential.)
#[test]
fn errors_follow_webobs_choice_of_format() {
    let server = TestServer::start();
    let get = |accept: &str| {
        raw(
            &server,
            "GET",
            "/traits",
            &[
                ("x-auth-token", "admin"),
                ("openstack-api-version", "placement 1.6"),
                ("accept", accept),
            ],
            None,
        )
    };
    let (status, content_type, body) = get("application/xml");
    assert_eq!(status, 406);
    assert_eq!(content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        body,
        "406 Not Acceptable\n\nThe resource could not be generated that was acceptable \
         to your browser (content of type application/xml. \n\n Only application/json \
         is provided"
    );
    let (_, content_type, body) = get("text/html");
    assert_eq!(content_type, "text/html; charset=UTF-8");
    assert!(body.contains("(content of type text/html. <br /><br />\nOnly application/json"));
    let (status, content_type, _) = raw(
        &server,
        "GET",
        "/traits/CUSTOM_NOPE",
        &[
            ("x-auth-token", "admin"),
            ("openstack-api-version", "placement 1.6"),
            ("accept", "*/*;q=0.5"),
        ],
        None,
    );
    assert_eq!(
        (status, content_type.as_str()),
        (404, "text/html; charset=UTF-8")
    );
}

/// noauth2's 401 is raised before Placement's error formatter exists:
/// webob's own JSON. (Found by tools/differential.)
#[test]
fn the_noauth2_401_is_webobs_own_json() {
    let server = TestServer::start();
    let (status, content_type, body) = raw(&server, "GET", "/resource_providers", &[], None);
    assert_eq!(status, 401);
    assert_eq!(content_type, "application/json");
    assert_eq!(
        body,
        "{\"message\": \"This server could not verify that you are authorized to access \
         the document you requested. Either you supplied the wrong credentials (e.g., bad \
         password), or your browser does not understand how to supply the credentials \
         required.<br /><br />\\n\\n\\n\", \"code\": \"401 Unauthorized\", \"title\": \
         \"Unauthorized\"}"
    );
}

/// HTTPMethodNotAllowed and HTTPUnsupportedMediaType have templates of
/// their own: nothing follows the detail, the media type is named as
/// sent (`None` when there is none), and the version gate's 405 has no
/// detail. (Found by tools/differential.)
#[test]
fn method_and_media_type_errors_use_webobs_own_templates() {
    let server = TestServer::start();
    let client = server.client();
    let detail = |reply: crate::support::http::Reply| reply.error_detail();
    assert_eq!(
        detail(client.send_raw("POST", "/resource_classes", "Text/Plain; charset=x", "{}")),
        "The request media type Text/Plain; charset=x is not supported by this server. \
         \n\n The media type Text/Plain is not supported, use application/json"
    );
    let (status, _, body) = raw(
        &server,
        "POST",
        "/resource_providers",
        &[
            ("x-auth-token", "admin"),
            ("openstack-api-version", "placement latest"),
        ],
        None,
    );
    assert_eq!(status, 415);
    assert!(
        body.contains(
            "The request media type None is not supported by this server. \\n\\n \
             The media type None is not supported, use application/json\""
        ),
        "{body}"
    );
    assert_eq!(
        detail(client.get("/allocations")),
        "The method GET is not allowed for this resource. \n\n \
         The method specified is not allowed for this resource."
    );
    let uuid = uuid::Uuid::new_v4();
    let gated = client
        .at("1.4")
        .delete(&format!("/resource_providers/{uuid}/inventories"));
    assert_eq!(gated.status, 405);
    assert_eq!(
        gated.error_detail(),
        "The method DELETE is not allowed for this resource. \n\n "
    );
}

/// Upstream passes on the words of Python's `json.loads` (and of its
/// UTF-8 decoder) for a body it cannot read. (Found by
/// tools/differential.)
#[test]
fn malformed_json_is_worded_as_pythons_json_module_words_it() {
    let server = TestServer::start();
    let client = server.client().at("1.2");
    let detail = |body: &str| {
        let reply = client.send_raw("POST", "/resource_classes", "application/json", body);
        assert_eq!(reply.status, 400);
        reply.error_detail()
    };
    for (body, words) in [
        ("", "Expecting value: line 1 column 1 (char 0)"),
        (
            "{'single': 'quotes'}",
            "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            "{\"name\": \"CUSTOM_X",
            "Unterminated string starting at: line 1 column 10 (char 9)",
        ),
        ("{\"name\": 1}}", "Extra data: line 1 column 12 (char 11)"),
        (
            "[1,\n 2 3]",
            "Expecting ',' delimiter: line 2 column 4 (char 7)",
        ),
        (
            "{\"a\" 1}",
            "Expecting ':' delimiter: line 1 column 6 (char 5)",
        ),
        ("\"\\x\"", "Invalid \\escape: line 1 column 2 (char 1)"),
    ] {
        assert_eq!(
            detail(body),
            format!(
                "The server could not comply with the request since it is either malformed \
                 or otherwise incorrect.\n\n Malformed JSON: {words}  "
            ),
            "{body:?}"
        );
    }
    let reply = client.send_raw("POST", "/resource_classes", "application/json", "\"\u{e9}");
    assert!(
        reply
            .error_detail()
            .contains("Unterminated string starting at: line 1 column 1 (char 0)")
    );
}

/// A path parameter is at least one character, as the Routes mapper's
/// `{name}`: `/traits/` and `/resource_providers/` are paths of no route,
/// a bare 404. (Found by tools/differential.)
#[test]
fn an_empty_path_parameter_matches_no_route() {
    let server = TestServer::start();
    let client = server.client();
    for path in ["/traits/", "/resource_providers/", "/allocations/"] {
        let reply = client.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.error_detail(),
            "The resource could not be found.\n\n   ",
            "{path}"
        );
    }
}

/// The aggregates endpoints check Accept or Content-Type before their
/// version, as upstream's decorators stack: below 1.1 a wrong media type
/// is a 415 (or 406), a right one the 404. (Found by tools/differential.)
#[test]
fn aggregates_check_media_types_before_their_version() {
    let server = TestServer::start();
    let client = server.client();
    let uuid = uuid::Uuid::new_v4().to_string();
    let created = client.post("/resource_providers", &json!({"name": "agg", "uuid": uuid}));
    assert_eq!(created.status, 200);
    let path = format!("/resource_providers/{uuid}/aggregates");
    let old = client.at("1.0");
    assert_eq!(old.send_raw("PUT", &path, "text/plain", "[]").status, 415);
    assert_eq!(old.put(&path, &json!([])).status, 404);
    let (status, _, _) = raw(
        &server,
        "GET",
        &path,
        &[
            ("x-auth-token", "admin"),
            ("openstack-api-version", "placement 1.0"),
            ("accept", "text/plain"),
        ],
        None,
    );
    assert_eq!(status, 406);
    assert_eq!(old.get(&path).status, 404);
    assert_eq!(client.at("1.1").get(&path).status, 200);
}

/// webob completes a relative `Location` against the request's URL, so
/// upstream's is always absolute: `http://` + the Host header + the path.
#[test]
fn location_headers_are_absolute_as_webob_makes_them() {
    let server = TestServer::start();
    let uuid = "5a9e3b1c-0000-4000-8000-000000000001";
    let created = server.client().at("1.0").post(
        "/resource_providers",
        &json!({"name": "located", "uuid": uuid}),
    );
    assert_eq!(created.status, 201);
    assert_eq!(
        created.header("location"),
        Some(format!("{}/resource_providers/{uuid}", server.base_url).as_str())
    );
    let class =
        server
            .client()
            .at("1.7")
            .send_raw("PUT", "/resource_classes/CUSTOM_LOCATED", "", "");
    assert_eq!(class.status, 201);
    assert_eq!(
        class.header("location"),
        Some(format!("{}/resource_classes/CUSTOM_LOCATED", server.base_url).as_str())
    );
    let inventory = server.client().post(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({"resource_provider_generation": 0, "resource_class": "VCPU", "total": 4}),
    );
    assert_eq!(inventory.status, 201);
    assert_eq!(
        inventory.header("location"),
        Some(
            format!(
                "{}/resource_providers/{uuid}/inventories/VCPU",
                server.base_url
            )
            .as_str()
        )
    );
}
