//! Keystone authentication against a real Keystone (`../shared/keystone`):
//! the 401s, 403s and 503s a deployment sees, the token cache, composite
//! (service token) authentication, configuration from `placement.conf` and
//! the environment, and the `openstack` CLI finding the server through the
//! catalog. Behaviour is keystonemiddleware 13's in front of Placement 16
//! with the secure policy defaults.

use std::process::{Command, Output};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TestDatabase;
use crate::support::http::Reply;
use crate::support::keystone::{
    Keystone, PlacementConf, PlacementProcess, free_port, openstack_cli, request,
};

/// A Keystone-mode server on a database of its own.
struct Running {
    // Declared first, so dropped before the database.
    server: PlacementProcess,
    _database: TestDatabase,
}

impl std::ops::Deref for Running {
    type Target = PlacementProcess;

    fn deref(&self) -> &PlacementProcess {
        &self.server
    }
}

fn start(keystone: &Keystone, label: &str, adjust: impl FnOnce(&mut PlacementConf)) -> Running {
    let database = TestDatabase::new();
    let port = free_port();
    let mut conf = PlacementConf::new(keystone, &database.url(), port);
    adjust(&mut conf);
    Running {
        server: PlacementProcess::start(label, &conf, &[], port),
        _database: database,
    }
}

fn url(server: &PlacementProcess, path: &str) -> String {
    format!("{}{path}", server.base_url)
}

/// keystonemiddleware's 401: its own JSON body and the header naming
/// where to get a token.
#[track_caller]
fn assert_unauthorized(reply: &Reply, keystone: &Keystone, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(keystone.www_authenticate().as_str()),
        "{what}: WWW-Authenticate"
    );
    assert_eq!(
        reply.body,
        json!({"error": {"code": 401, "title": "Unauthorized",
                         "message": "The request you have made requires authentication."}}),
        "{what}: body"
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|value| value.starts_with("application/json")),
        "{what}: content type {:?}",
        reply.header("content-type")
    );
}

#[track_caller]
fn assert_status(reply: &Reply, status: u16, what: &str, server: &PlacementProcess) {
    assert_eq!(
        reply.status,
        status,
        "{what}: {reply:?}\nserver log:\n{}",
        server.log_tail()
    );
}

fn usages_path(project_id: &str) -> String {
    format!("/usages?project_id={project_id}")
}

/// Creates a provider as admin; its uuid.
fn create_provider(server: &PlacementProcess, keystone: &Keystone, name: &str) -> String {
    let reply = server
        .client(&keystone.admin_token)
        .post("/resource_providers", &json!({"name": name}));
    assert_status(&reply, 200, "admin creates a provider", server);
    crate::support::text(&reply.body, "/uuid")
}

/// Polls the access log until Keystone has logged `expected` validations
/// of `token` (gunicorn logs a request after answering it), then gives
/// stragglers a moment before counting.
fn settled_validations(keystone: &Keystone, token: &str, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while keystone.validations_of(token) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    keystone.validations_of(token)
}

#[test]
fn root_needs_no_token_and_everything_else_gets_keystones_401() {
    let keystone = Keystone::shared();
    let server = start(keystone, "no-token", |_| {});
    let root = request("GET", &url(&server, "/"), &[], None);
    assert_status(&root, 200, "GET / without a token", &server);
    assert_eq!(root.body["versions"][0]["id"], "v1.0");
    let root = request(
        "GET",
        &url(&server, "/"),
        &[("x-auth-token", "not-a-token")],
        None,
    );
    assert_status(&root, 200, "GET / with a bad token", &server);

    for (method, path) in [
        ("GET", "/resource_providers"),
        ("GET", "/traits"),
        ("GET", "/no/such/path"),
    ] {
        let reply = request(method, &url(&server, path), &[], None);
        assert_unauthorized(
            &reply,
            keystone,
            &format!("{method} {path} without a token"),
        );
    }
    let reply = request(
        "POST",
        &url(&server, "/resource_providers"),
        &[],
        Some(&json!({"name": "anonymous"})),
    );
    assert_unauthorized(&reply, keystone, "POST /resource_providers without a token");
    let reply = request(
        "GET",
        &url(&server, "/resource_providers"),
        &[("x-auth-token", "")],
        None,
    );
    assert_unauthorized(&reply, keystone, "an empty X-Auth-Token");
    // Identity headers without a token are not an identity.
    let reply = request(
        "GET",
        &url(&server, "/resource_providers"),
        &[
            ("x-identity-status", "Confirmed"),
            ("x-user-id", "admin"),
            ("x-project-id", keystone.demo_project_id.as_str()),
            ("x-roles", "admin,service"),
        ],
        None,
    );
    assert_unauthorized(&reply, keystone, "spoofed identity headers without a token");
}

#[test]
fn malformed_invalid_and_revoked_tokens_get_401() {
    let keystone = Keystone::shared();
    let server = start(keystone, "invalid-tokens", |_| {});
    // A real Fernet token with one character changed in its payload.
    let mut tampered: Vec<char> = keystone.demo_token.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    // A real token, revoked before the server ever saw it.
    let revoked = keystone.project_token("demo", "demopass", "demo");
    keystone.revoke(&revoked);
    for (token, what) in [
        ("garbage", "a malformed token"),
        ("gAAAAABnot-a-fernet-token-at-all", "a Fernet-looking token"),
        (tampered.as_str(), "a tampered token"),
        (revoked.as_str(), "a revoked token"),
    ] {
        let reply = server.client(token).get("/resource_providers");
        assert_unauthorized(&reply, keystone, what);
    }
    // The valid token the tampered one came from still works.
    let reply = server
        .client(&keystone.demo_token)
        .at("1.9")
        .get(&usages_path(&keystone.demo_project_id));
    assert_status(&reply, 200, "the untampered token", &server);
}

#[test]
fn revoked_token_gets_401_when_the_cache_is_off() {
    let keystone = Keystone::shared();
    let server = start(keystone, "revocation", |conf| {
        conf.set("keystone_authtoken", "token_cache_time", "-1");
    });
    let used = keystone.project_token("demo", "demopass", "demo");
    let unused = keystone.project_token("demo", "demopass", "demo");
    let path = usages_path(&keystone.demo_project_id);
    let reply = server.client(&used).at("1.9").get(&path);
    assert_status(&reply, 200, "before revocation", &server);
    keystone.revoke(&used);
    keystone.revoke(&unused);
    let reply = server.client(&used).at("1.9").get(&path);
    assert_unauthorized(&reply, keystone, "a used token after revocation");
    let reply = server.client(&unused).at("1.9").get(&path);
    assert_unauthorized(&reply, keystone, "an unused token after revocation");
    assert_eq!(
        settled_validations(keystone, &used, 2),
        2,
        "with token_cache_time = -1 every request is validated at Keystone"
    );
}

/// The one test that stops Keystone, on a Keystone of its own: an outage
/// and the recovery, then a restart that makes tokens short-lived. (Named
/// to sort first, so that its Keystone starts beside the shared one.)
#[test]
fn absent_keystone_gives_503_until_it_returns_and_expired_tokens_get_401() {
    let keystone = Keystone::dedicated("restarts");
    let server = start(&keystone, "restarts", |_| {});
    outage_gives_503_and_recovery_needs_no_restart(&keystone, &server);
    expired_tokens_get_401_even_from_the_cache(&keystone, &server);
    keystone.stop();
}

fn outage_gives_503_and_recovery_needs_no_restart(keystone: &Keystone, server: &PlacementProcess) {
    let cached = keystone.project_token("admin", "adminpass", "admin");
    let unseen = keystone.project_token("admin", "adminpass", "admin");
    let reply = server.client(&cached).get("/resource_providers");
    assert_status(&reply, 200, "before the outage", server);

    keystone.stop();
    let began = Instant::now();
    let reply = server.client(&unseen).get("/resource_providers");
    let took = began.elapsed();
    assert_status(&reply, 503, "a new token while Keystone is down", server);
    let body = reply.body.to_string();
    assert!(
        body.contains("The Keystone service is temporarily unavailable."),
        "503 body: {body}"
    );
    assert!(took < Duration::from_secs(30), "the 503 took {took:?}");
    let reply = request("GET", &url(server, "/"), &[], None);
    assert_status(&reply, 200, "GET / while Keystone is down", server);
    let reply = server.client(&cached).get("/resource_providers");
    assert_status(
        &reply,
        200,
        "a token cached before the outage, while Keystone is down",
        server,
    );

    keystone.restart(None);
    let reply = server.client(&unseen).get("/resource_providers");
    assert_status(&reply, 200, "the new token once Keystone is back", server);
    let reply = server
        .client(&keystone.demo_token)
        .post("/resource_providers", &json!({"name": "after-outage"}));
    assert_status(
        &reply,
        403,
        "a member's write once Keystone is back",
        server,
    );
}

/// Runs after the server has its service token (issued for an hour).
fn expired_tokens_get_401_even_from_the_cache(keystone: &Keystone, server: &PlacementProcess) {
    // Seconds new tokens live: long enough to use one on a loaded machine.
    const LIFETIME: u64 = 20;
    keystone.restart(Some(LIFETIME));
    let cached = keystone.issue(
        "demo",
        "demopass",
        json!({"project": {"name": "demo", "domain": {"name": "Default"}}}),
    );
    let unseen = keystone.project_token("demo", "demopass", "demo");
    let path = usages_path(&keystone.demo_project_id);
    let reply = server.client(&cached.token).at("1.9").get(&path);
    assert_status(&reply, 200, "a short-lived token while it lives", server);

    let expires_at = chrono::DateTime::parse_from_rfc3339(
        cached.body["token"]["expires_at"]
            .as_str()
            .expect("expires_at"),
    )
    .expect("expires_at is RFC 3339");
    let left = expires_at.signed_duration_since(chrono::Utc::now());
    let wait = left.to_std().unwrap_or_default() + Duration::from_millis(1500);
    assert!(
        wait < Duration::from_secs(LIFETIME + 5),
        "token lives {left}"
    );
    std::thread::sleep(wait);

    let reply = server.client(&cached.token).at("1.9").get(&path);
    assert_unauthorized(&reply, keystone, "an expired token validated before");
    let reply = server.client(&unseen).at("1.9").get(&path);
    assert_unauthorized(&reply, keystone, "an expired token never seen");
}

#[test]
fn member_reads_own_project_usages_but_may_not_touch_providers() {
    let keystone = Keystone::shared();
    let server = start(keystone, "member", |_| {});
    let demo = server.client(&keystone.demo_token);
    let reply = demo.post("/resource_providers", &json!({"name": "demo-provider"}));
    assert_status(&reply, 403, "member creates a provider", &server);
    assert!(
        reply
            .error_detail()
            .contains("placement:resource_providers:create"),
        "403 detail: {reply:?}"
    );
    let reply = demo.get("/resource_providers");
    assert_status(&reply, 403, "member lists providers", &server);
    let reply = demo.at("1.9").get(&usages_path(&keystone.demo_project_id));
    assert_status(&reply, 200, "member reads its project's usages", &server);
    assert_eq!(reply.body["usages"], json!({}));
    let other = uuid::Uuid::new_v4().simple().to_string();
    let reply = demo.at("1.9").get(&usages_path(&other));
    assert_status(
        &reply,
        403,
        "member reads another project's usages",
        &server,
    );
}

#[test]
fn spoofed_identity_headers_leave_a_member_a_member() {
    let keystone = Keystone::shared();
    let server = start(keystone, "spoofing", |_| {});
    let other = uuid::Uuid::new_v4().simple().to_string();
    let spoofed: Vec<(&str, &str)> = vec![
        ("x-auth-token", keystone.demo_token.as_str()),
        ("openstack-api-version", "placement 1.9"),
        ("x-identity-status", "Confirmed"),
        ("x-roles", "admin,service"),
        ("x-service-roles", "service"),
        ("x-service-identity-status", "Confirmed"),
        ("x-project-id", other.as_str()),
        ("x-project-name", "admin"),
        ("x-user-id", "admin"),
        ("x-user-name", "admin"),
        ("x-is-admin-project", "True"),
        ("openstack-system-scope", "all"),
    ];
    let reply = request(
        "POST",
        &url(&server, "/resource_providers"),
        &spoofed,
        Some(&json!({"name": "spoofed"})),
    );
    assert_status(&reply, 403, "member with X-Roles: admin creates", &server);
    let reply = request("GET", &url(&server, "/resource_providers"), &spoofed, None);
    assert_status(&reply, 403, "member with X-Roles: admin lists", &server);
    let reply = request("GET", &url(&server, &usages_path(&other)), &spoofed, None);
    assert_status(
        &reply,
        403,
        "usages of the project named in a spoofed X-Project-Id",
        &server,
    );
    let reply = request(
        "GET",
        &url(&server, &usages_path(&keystone.demo_project_id)),
        &spoofed,
        None,
    );
    assert_status(
        &reply,
        200,
        "usages of the token's own project (no spoofed system scope either)",
        &server,
    );
}

#[test]
fn admin_passes_admin_rules() {
    let keystone = Keystone::shared();
    let server = start(keystone, "admin", |_| {});
    let admin = server.client(&keystone.admin_token);
    let uuid = create_provider(&server, keystone, "admin-provider");
    let reply = admin.get(&format!("/resource_providers/{uuid}"));
    assert_status(&reply, 200, "admin shows the provider", &server);
    assert_eq!(reply.body["name"], "admin-provider");
    let reply = admin.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &json!({"resource_provider_generation": 0,
                "inventories": {"VCPU": {"total": 8}}}),
    );
    assert_status(&reply, 200, "admin sets inventories", &server);
    let reply = admin.at("1.0").post(
        "/resource_providers",
        &json!({"name": "admin-provider-1.0"}),
    );
    assert_status(&reply, 201, "admin creates at 1.0", &server);
    let reply = admin.get("/resource_providers");
    assert_status(&reply, 200, "admin lists providers", &server);
    assert_eq!(
        reply.body["resource_providers"].as_array().map(Vec::len),
        Some(2)
    );
    let reply = admin.at("1.9").get(&usages_path(&keystone.demo_project_id));
    assert_status(&reply, 200, "admin reads a project's usages", &server);
    let reply = admin.delete(&format!("/resource_providers/{uuid}"));
    assert_status(&reply, 204, "admin deletes the provider", &server);
}

#[test]
fn only_the_service_user_may_reshape() {
    let keystone = Keystone::shared();
    let server = start(keystone, "reshaper", |_| {});
    let uuid = create_provider(&server, keystone, "reshaped");
    let body = json!({
        "inventories": {uuid.clone(): {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": 4}}}},
        "allocations": {}
    });
    for (token, who) in [
        (&keystone.demo_token, "a member"),
        (&keystone.admin_token, "admin (no service role)"),
    ] {
        let reply = server.client(token).at("1.30").post("/reshaper", &body);
        assert_status(&reply, 403, &format!("{who} reshapes"), &server);
    }
    let service = server.client(&keystone.service_token).at("1.30");
    let reply = service.post("/reshaper", &json!({"inventories": {}}));
    assert_status(&reply, 400, "the service user sends a bad body", &server);
    let reply = service.post("/reshaper", &body);
    assert_status(&reply, 204, "the service user reshapes", &server);
    let reply = server
        .client(&keystone.admin_token)
        .get(&format!("/resource_providers/{uuid}/inventories"));
    assert_status(&reply, 200, "inventories after the reshape", &server);
    assert_eq!(reply.body["inventories"]["VCPU"]["total"], 4);
    assert!(
        reply.body["resource_provider_generation"]
            .as_u64()
            .is_some_and(|generation| generation > 0),
        "the reshape bumped the generation: {reply:?}"
    );
}

#[test]
fn system_scoped_token_is_forbidden_every_placement_rule() {
    let keystone = Keystone::shared();
    let server = start(keystone, "system-scope", |_| {});
    let issued = keystone.issue("admin", "adminpass", json!({"system": {"all": true}}));
    assert_eq!(issued.body["token"]["system"]["all"], true, "system scope");
    let system = server.client(&issued.token);
    // A provider that exists, so that only policy can refuse.
    let provider = create_provider(&server, keystone, "system-target");
    let rp = format!("/resource_providers/{provider}");
    let consumer = format!("/allocations/{}", uuid::Uuid::new_v4());
    let usages = usages_path(&keystone.demo_project_id);
    // One request per placement rule.
    let forbidden: Vec<(&str, String)> = vec![
        ("GET", "/resource_providers".to_owned()),
        ("POST", "/resource_providers".to_owned()),
        ("GET", rp.clone()),
        ("PUT", rp.clone()),
        ("DELETE", rp.clone()),
        ("GET", format!("{rp}/inventories")),
        ("POST", format!("{rp}/inventories")),
        ("PUT", format!("{rp}/inventories")),
        ("DELETE", format!("{rp}/inventories")),
        ("GET", format!("{rp}/inventories/VCPU")),
        ("PUT", format!("{rp}/inventories/VCPU")),
        ("DELETE", format!("{rp}/inventories/VCPU")),
        ("GET", format!("{rp}/aggregates")),
        ("PUT", format!("{rp}/aggregates")),
        ("GET", format!("{rp}/traits")),
        ("PUT", format!("{rp}/traits")),
        ("DELETE", format!("{rp}/traits")),
        ("GET", format!("{rp}/allocations")),
        ("GET", format!("{rp}/usages")),
        ("GET", "/resource_classes".to_owned()),
        ("POST", "/resource_classes".to_owned()),
        ("GET", "/resource_classes/VCPU".to_owned()),
        ("PUT", "/resource_classes/CUSTOM_SYSTEM".to_owned()),
        ("DELETE", "/resource_classes/CUSTOM_SYSTEM".to_owned()),
        ("GET", "/traits".to_owned()),
        ("GET", "/traits/HW_CPU_X86_AVX".to_owned()),
        ("PUT", "/traits/CUSTOM_SYSTEM".to_owned()),
        ("DELETE", "/traits/CUSTOM_SYSTEM".to_owned()),
        ("POST", "/allocations".to_owned()),
        ("GET", consumer.clone()),
        ("PUT", consumer.clone()),
        ("DELETE", consumer),
        ("GET", "/allocation_candidates?resources=VCPU:1".to_owned()),
        ("GET", usages),
        ("POST", "/reshaper".to_owned()),
    ];
    for (method, path) in forbidden {
        let reply = match method {
            "GET" => system.get(&path),
            "DELETE" => system.delete(&path),
            _ => system.send(method, &path, &json!({})),
        };
        assert_status(
            &reply,
            403,
            &format!("system-scoped {method} {path}"),
            &server,
        );
    }
    // The same user scoped to a project is allowed.
    let reply = server
        .client(&keystone.admin_token)
        .get(&format!("{rp}/inventories"));
    assert_status(&reply, 200, "admin, project-scoped", &server);
    let reply = request(
        "GET",
        &url(&server, "/"),
        &[("x-auth-token", issued.token.as_str())],
        None,
    );
    assert_status(&reply, 200, "GET / with a system-scoped token", &server);
}

#[test]
fn service_token_must_carry_the_service_role() {
    let keystone = Keystone::shared();
    let server = start(keystone, "service-token", |_| {});
    let path = url(&server, "/resource_providers");
    let with = |user: Option<&str>, service: &str| -> Reply {
        let mut headers = vec![("x-service-token", service)];
        if let Some(user) = user {
            headers.push(("x-auth-token", user));
        }
        request("GET", &path, &headers, None)
    };
    let admin = Some(keystone.admin_token.as_str());
    let reply = with(admin, &keystone.demo_token);
    assert_unauthorized(&reply, keystone, "a service token without the service role");
    let reply = with(admin, "garbage");
    assert_unauthorized(&reply, keystone, "an invalid service token");
    let reply = with(None, &keystone.service_token);
    assert_unauthorized(&reply, keystone, "a service token without a user token");
    let reply = with(admin, &keystone.service_token);
    assert_status(&reply, 200, "admin with a valid service token", &server);
    // The service token vouches for the caller; it does not lend it roles.
    let reply = request(
        "POST",
        &path,
        &[
            ("x-auth-token", keystone.demo_token.as_str()),
            ("x-service-token", keystone.service_token.as_str()),
        ],
        Some(&json!({"name": "vouched"})),
    );
    assert_status(
        &reply,
        403,
        "a member with a valid service token writes",
        &server,
    );
}

#[test]
fn concurrent_requests_with_a_new_token_validate_it_once() {
    let keystone = Keystone::shared();
    let server = start(keystone, "cache", |_| {});
    let token = keystone.project_token("admin", "adminpass", "admin");
    assert_eq!(keystone.validations_of(&token), 0, "a new token");
    const REQUESTS: usize = 50;
    let barrier = Barrier::new(REQUESTS);
    let began = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..REQUESTS)
            .map(|_| {
                let client = server.client(&token);
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    client.get("/resource_providers").status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("request thread"))
            .collect()
    });
    let took = began.elapsed();
    assert!(
        statuses.iter().all(|status| *status == 200),
        "statuses: {statuses:?}\nserver log:\n{}",
        server.log_tail()
    );
    assert_eq!(
        settled_validations(keystone, &token, 1),
        1,
        "{REQUESTS} concurrent requests with one new token (took {took:?})"
    );
    let reply = server.client(&token).get("/resource_providers");
    assert_status(&reply, 200, "the same token again", &server);
    assert_eq!(
        settled_validations(keystone, &token, 1),
        1,
        "a request within token_cache_time is answered from the cache"
    );
}

#[test]
fn environment_overrides_the_config_file() {
    let keystone = Keystone::shared();
    let database = TestDatabase::new();
    let file_port = free_port();
    let port = free_port();
    let mut conf = PlacementConf::new(keystone, &database.url(), file_port);
    conf.set("keystone_authtoken", "password", "wrong-password")
        .set(
            "placement_database",
            "connection",
            "postgresql+psycopg2://root@127.0.0.1:1/no_such_database",
        );
    let connection = PlacementConf::new(keystone, &database.url(), port)
        .render()
        .lines()
        .find_map(|line| line.strip_prefix("connection = ").map(str::to_owned))
        .expect("connection line");
    let port_text = port.to_string();
    let server = PlacementProcess::start(
        "environment",
        &conf,
        &[
            ("OS_KEYSTONE_AUTHTOKEN__PASSWORD", "placementpass"),
            ("OS_PLACEMENT_DATABASE__CONNECTION", connection.as_str()),
            ("OS_SERVER__PORT", port_text.as_str()),
        ],
        port,
    );
    let reply = server.client(&keystone.admin_token).post(
        "/resource_providers",
        &json!({"name": "from-the-environment"}),
    );
    assert_status(
        &reply,
        200,
        "the service password and database from the environment",
        &server,
    );
    drop(server);

    // DATABASE_URL and PORT still configure a server whose file names neither.
    let port = free_port();
    let mut conf = PlacementConf::new(keystone, &database.url(), 0);
    conf.remove("placement_database", "connection")
        .remove("server", "port");
    let port_text = port.to_string();
    let database_url = database.url();
    let server = PlacementProcess::start(
        "legacy-environment",
        &conf,
        &[
            ("DATABASE_URL", database_url.as_str()),
            ("PORT", port_text.as_str()),
        ],
        port,
    );
    let reply = server
        .client(&keystone.admin_token)
        .get("/resource_providers");
    assert_status(&reply, 200, "DATABASE_URL and PORT", &server);
    assert_eq!(
        crate::support::text(&reply.body, "/resource_providers/0/name"),
        "from-the-environment",
        "the same database"
    );
}

/// Runs `openstack` with password authentication as `user` of `project`.
fn openstack(
    cli: &std::path::Path,
    keystone: &Keystone,
    user: &str,
    password: &str,
    project: &str,
    args: &[&str],
) -> Output {
    let mut command = Command::new(cli);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OS_") {
            command.env_remove(key);
        }
    }
    command
        .args(["--os-auth-url", &keystone.auth_url])
        .args(["--os-username", user, "--os-password", password])
        .args(["--os-project-name", project])
        .args(["--os-user-domain-name", "Default"])
        .args(["--os-project-domain-name", "Default"])
        .args(["--os-interface", "public", "--os-region-name", "RegionOne"])
        .args(args)
        .output()
        .expect("run openstack")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn openstack_cli_finds_placement_through_the_catalog() {
    let cli = openstack_cli();
    let keystone = Keystone::shared();
    // The shared Keystone's catalog names this port.
    let port = keystone.take_placement_port();
    let database = TestDatabase::new();
    let conf = PlacementConf::new(keystone, &database.url(), port);
    let server = PlacementProcess::start("openstack-cli", &conf, &[], port);
    let admin = |args: &[&str]| openstack(&cli, keystone, "admin", "adminpass", "admin", args);

    let created = admin(&[
        "resource",
        "provider",
        "create",
        "cli-provider-x",
        "-f",
        "json",
    ]);
    assert!(
        created.status.success(),
        "admin creates: {}\nserver log:\n{}",
        describe(&created),
        server.log_tail()
    );
    let provider: Value = serde_json::from_slice(&created.stdout).expect("JSON from create");
    assert_eq!(provider["name"], "cli-provider-x");

    let listed = admin(&["resource", "provider", "list", "-f", "json"]);
    assert!(
        listed.status.success(),
        "admin lists: {}",
        describe(&listed)
    );
    let providers: Value = serde_json::from_slice(&listed.stdout).expect("JSON from list");
    let names: Vec<&str> = providers
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|provider| provider["name"].as_str())
        .collect();
    assert_eq!(names, ["cli-provider-x"]);

    let refused = openstack(
        &cli,
        keystone,
        "demo",
        "demopass",
        "demo",
        &["resource", "provider", "create", "cli-provider-y"],
    );
    assert!(
        !refused.status.success(),
        "demo creates: {}",
        describe(&refused)
    );
    assert!(
        describe(&refused).contains("HTTP 403"),
        "demo's refusal: {}",
        describe(&refused)
    );
}
