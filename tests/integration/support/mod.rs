//! Test support: a fresh PostgreSQL database per test, cloned from a
//! migrated template, and the real server started in-process on it.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use diesel::PgConnection;
use diesel::prelude::*;
use placement::config::Config;
use placement::server;
use placement::storage::Database;
use serde_json::Value;

pub mod clusters;
pub mod http;
pub mod keystone;
pub mod process;
pub mod upstream;

/// Admin connection used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("PLACEMENT_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
}

/// `admin_url()` with another database name.
pub fn url_for(database: &str) -> String {
    let admin = admin_url();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => admin,
    }
}

fn admin() -> PgConnection {
    PgConnection::establish(&admin_url()).expect("connect to PostgreSQL as admin")
}

/// A template database with the schema and standard data, made once per
/// test run.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("placement_test_template_{}", std::process::id());
        let mut admin = admin();
        drop_leftovers(&mut admin);
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .expect("drop old template");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create template");
        {
            let database = Database::connect(&url_for(&name), 1).expect("connect to template");
            server::prepare_database(&database, true).expect("migrate template");
        }
        name
    })
}

#[derive(QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops the templates and test databases of test processes that are no
/// longer running (a run that was killed, or the template every run
/// leaves): their names carry the process id. Only where `/proc` tells
/// which processes run.
fn drop_leftovers(admin: &mut PgConnection) {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let names: Vec<DatabaseName> = diesel::sql_query(
        "SELECT datname::text AS datname FROM pg_database \
         WHERE datname LIKE 'placement\\_test\\_%'",
    )
    .load(admin)
    .unwrap_or_default();
    for DatabaseName { datname } in names {
        let owner = datname
            .trim_start_matches("placement_test_")
            .trim_start_matches("template_")
            .split('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = owner
            && !proc.join(pid.to_string()).exists()
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
                .execute(admin);
        }
    }
}

/// A database of its own for one test, dropped when it goes out of scope.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        let template = template();
        let name = format!(
            "placement_test_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let mut admin = admin();
        // CREATE DATABASE ... TEMPLATE fails while another session is
        // connected to the template, which happens only briefly.
        let mut attempts = 0;
        loop {
            match diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut admin)
            {
                Ok(_) => break,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    let _ = error;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => panic!("create test database: {error}"),
            }
        }
        TestDatabase { name }
    }

    pub fn url(&self) -> String {
        url_for(&self.name)
    }

    pub fn connection(&self) -> PgConnection {
        PgConnection::establish(&self.url()).expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let mut admin = admin();
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin);
    }
}

/// Drops `name` at once, closing its connections: the database gone from
/// under a running server.
pub fn drop_database_now(name: &str) {
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin())
        .expect("drop database");
}

/// Configuration for a test server on `database`: upstream's defaults
/// with noauth2, legacy RBAC as the conformance suite, a small pool and
/// one worker.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::defaults_for(database_url);
    config.policy_defaults = placement::policy::Defaults::Legacy;
    config.pool_size = 4;
    config.workers = 1;
    config
}

/// The server running in this process on a fresh database.
pub struct TestServer {
    pub database: TestDatabase,
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// Starts a server whose configuration `adjust` may change.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let database = TestDatabase::new();
        let mut config = test_config(&database.url());
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let state = server::build_state(config).expect("server state");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server::build_server(state, listener).expect("server");
                let _ = sender.send(server.handle());
                let _ = server.await;
            });
        });
        let handle = receiver.recv().expect("server handle");
        TestServer {
            database,
            base_url: format!("http://{address}"),
            handle,
        }
    }

    pub fn client(&self) -> http::Client {
        http::Client::new(&self.base_url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop without waiting for the runtime thread: the database drop
        // that follows forces remaining connections closed.
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}

/// Creates a provider named `name` with `inventories` (a new uuid, its
/// first inventory write); answers its uuid.
pub fn provider_with_inventory(client: &http::Client, name: &str, inventories: Value) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let created = client.post(
        "/resource_providers",
        &serde_json::json!({"name": name, "uuid": uuid}),
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    let inventory = client.put(
        &format!("/resource_providers/{uuid}/inventories"),
        &serde_json::json!({"resource_provider_generation": 0, "inventories": inventories}),
    );
    assert_eq!(inventory.status, 200, "{:?}", inventory.body);
    uuid
}

/// The row of a `SELECT count(*) AS count ...`.
#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub count: i64,
}

/// A JSON value's field as a string, for short assertions.
pub fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .map(|field| match field {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}
