//! Upstream Placement 16.0.0 beside placement-rs, for the tests of
//! `placement import` and `placement export`: databases in upstream's
//! schema on PostgreSQL or MariaDB (made by upstream's own
//! `placement-manage db sync`), the real upstream server on them
//! (`../shared/bench/upstream/server.sh`, uwsgi), bare target databases,
//! the commands run as processes, and a comparison of both servers'
//! answers to a list of GETs.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Map, Value};

use super::clusters::{free_port, tail};
use super::http::{Client, Reply};
use super::{Count, admin_url, url_for};

/// The project and user upstream gives consumers written before 1.8
/// (`[placement] incomplete_consumer_project_id` and `..._user_id`).
pub const INCOMPLETE: &str = "00000000-0000-0000-0000-000000000000";

/// Where setup.sh puts the virtualenv unless VENV says otherwise.
const DEFAULT_VENV: &str = "/tmp/placement-upstream-venv";
const SERVER_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/bench/upstream/server.sh"
);
const MARIADB_HOST: &str = "127.0.0.1";
const MARIADB_PORT: u16 = 3306;
const MARIADB_USER: &str = "root";

/// How long one `placement import`/`export` may take before the test
/// gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Upstream's standard resource classes and traits, written as its API
/// writes them when it starts (`deploy.update_database`), without
/// starting it.
const SYNC_STANDARD_DATA: &str = "\
from oslo_config import cfg
from placement import conf, db_api, deploy
config = cfg.ConfigOpts()
conf.register_opts(config)
config([], project='placement', default_config_files=[])
db_api.configure(config)
deploy.update_database(config)
";

pub fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_VENV), PathBuf::from)
}

/// The database server an upstream database lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
}

/// Why upstream on `kind` cannot be run here, if it cannot: the caller
/// skips its test, saying so.
pub fn unavailable(kind: Kind) -> Option<String> {
    let venv = venv();
    for tool in ["bin/uwsgi", "bin/placement-manage", "bin/python"] {
        let path = venv.join(tool);
        if !path.exists() {
            return Some(format!(
                "upstream's virtualenv is missing {} (run `bash ../shared/bench/upstream/setup.sh`, \
                 or set VENV)",
                path.display()
            ));
        }
    }
    if kind == Kind::MariaDb
        && let Err(error) = mariadb(None, "SELECT 1")
    {
        return Some(format!(
            "MariaDB cannot be used at {MARIADB_HOST}:{MARIADB_PORT} as {MARIADB_USER}: {error}"
        ));
    }
    None
}

/// A name for a database of this test process: `placement_test_<pid>_…`,
/// so that a later run drops it if this one is killed.
fn database_name() -> String {
    format!(
        "placement_test_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

fn postgres_admin() -> PgConnection {
    PgConnection::establish(&admin_url()).expect("connect to PostgreSQL as admin")
}

fn create_postgres_database(name: &str) {
    // template0 takes no connections, so creating from it never waits for
    // another session to leave.
    diesel::sql_query(format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
    ))
    .execute(&mut postgres_admin())
    .expect("create PostgreSQL database");
}

fn drop_postgres_database(name: &str) {
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut postgres_admin());
}

/// Runs `sql` with the `mysql` client on `database` (or none) and
/// returns what it printed, tab-separated without column names.
pub fn mariadb(database: Option<&str>, sql: &str) -> Result<String, String> {
    let mut command = Command::new("mysql");
    command
        .args([
            "--protocol=TCP",
            &format!("--host={MARIADB_HOST}"),
            &format!("--port={MARIADB_PORT}"),
            &format!("--user={MARIADB_USER}"),
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
        ])
        .args(database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot run the mysql client: {error}"))?;
    child
        .stdin
        .take()
        .expect("mysql stdin")
        .write_all(sql.as_bytes())
        .map_err(|error| format!("write to the mysql client: {error}"))?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("wait for the mysql client: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "mysql ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Drops the MariaDB databases of test processes that are no longer
/// running (a killed run), once per run.
fn drop_mariadb_leftovers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let proc = std::path::Path::new("/proc");
        if !proc.join("self").exists() {
            return;
        }
        let Ok(names) = mariadb(None, "SHOW DATABASES LIKE 'placement\\_test\\_%'") else {
            return;
        };
        for name in names.lines() {
            let owner = name
                .trim_start_matches("placement_test_")
                .split('_')
                .next()
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = owner
                && !proc.join(pid.to_string()).exists()
            {
                let _ = mariadb(None, &format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    });
}

/// A database of upstream's, empty until `sync_schema`, dropped when it
/// goes out of scope.
pub struct UpstreamDatabase {
    pub kind: Kind,
    pub name: String,
}

impl UpstreamDatabase {
    pub fn create(kind: Kind) -> UpstreamDatabase {
        let name = database_name();
        match kind {
            Kind::Postgres => create_postgres_database(&name),
            Kind::MariaDb => {
                drop_mariadb_leftovers();
                mariadb(
                    None,
                    &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
                )
                .expect("create MariaDB database");
            }
        }
        UpstreamDatabase { kind, name }
    }

    /// The database as `placement import --from` takes it, plain
    /// (`postgresql://…`, `mysql://…:3306/…`).
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Postgres => {
                let ours = url_for(&self.name);
                let rest = ours
                    .split_once("://")
                    .map_or(ours.as_str(), |(_, rest)| rest);
                format!("postgresql://{rest}")
            }
            Kind::MariaDb => format!(
                "mysql://{MARIADB_USER}@{MARIADB_HOST}:{MARIADB_PORT}/{}",
                self.name
            ),
        }
    }

    /// The database as upstream's configuration names it
    /// (`postgresql+psycopg2://…`, `mysql+pymysql://…`), which `placement
    /// import` and `export` take too.
    pub fn sqlalchemy_url(&self) -> String {
        let plain = self.url();
        let rest = plain
            .split_once("://")
            .map_or(plain.as_str(), |(_, rest)| rest);
        match self.kind {
            Kind::Postgres => format!("postgresql+psycopg2://{rest}"),
            Kind::MariaDb => format!("mysql+pymysql://{rest}"),
        }
    }

    /// The form `server.sh` takes in DATABASE_URL.
    fn server_url(&self) -> String {
        match self.kind {
            Kind::Postgres => url_for(&self.name),
            Kind::MariaDb => self.url(),
        }
    }

    /// Upstream's own schema, at its alembic head: `placement-manage db
    /// sync`.
    pub fn sync_schema(&self) {
        self.run_upstream(
            Command::new(venv().join("bin/placement-manage")).args(["db", "sync"]),
            "placement-manage db sync",
        );
    }

    /// The standard resource classes (ids by position) and traits, as
    /// upstream's API writes them at start-up.
    pub fn sync_standard_data(&self) {
        self.run_upstream(
            Command::new(venv().join("bin/python")).args(["-c", SYNC_STANDARD_DATA]),
            "upstream's standard data sync",
        );
    }

    fn run_upstream(&self, command: &mut Command, what: &str) {
        let output = command
            .env("OS_PLACEMENT_DATABASE__CONNECTION", self.sqlalchemy_url())
            .env_remove("OS_PLACEMENT_DATABASE__SYNC_ON_STARTUP")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("run {what}: {error}"));
        assert!(
            output.status.success(),
            "{what} on {} failed ({}):\n{}\n{}",
            self.sqlalchemy_url(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs SQL statements (`;`-separated) on the database.
    pub fn execute(&self, sql: &str) {
        match self.kind {
            Kind::Postgres => PgConnection::establish(&url_for(&self.name))
                .expect("connect to the upstream database")
                .batch_execute(sql)
                .unwrap_or_else(|error| panic!("SQL on {}: {error}\n{sql}", self.name)),
            Kind::MariaDb => {
                mariadb(Some(&self.name), sql)
                    .unwrap_or_else(|error| panic!("SQL on {}: {error}\n{sql}", self.name));
            }
        }
    }
}

impl Drop for UpstreamDatabase {
    fn drop(&mut self) {
        match self.kind {
            Kind::Postgres => drop_postgres_database(&self.name),
            Kind::MariaDb => {
                let _ = mariadb(None, &format!("DROP DATABASE IF EXISTS `{}`", self.name));
            }
        }
    }
}

/// A PostgreSQL database with nothing in it, not even this server's
/// schema: what `placement import` fills. Dropped when it goes out of
/// scope.
pub struct BareDatabase {
    pub name: String,
}

impl BareDatabase {
    pub fn create() -> BareDatabase {
        let name = database_name();
        create_postgres_database(&name);
        BareDatabase { name }
    }

    /// As `placement serve` takes it in DATABASE_URL.
    pub fn url(&self) -> String {
        url_for(&self.name)
    }

    /// The rows of `table`, 0 when the table does not exist (nothing was
    /// migrated).
    pub fn count(&self, table: &str) -> i64 {
        self.count_where(table, "TRUE")
    }

    /// The rows of `table` that match `condition`, 0 when the table does
    /// not exist.
    pub fn count_where(&self, table: &str, condition: &str) -> i64 {
        let mut connection =
            PgConnection::establish(&self.url()).expect("connect to the target database");
        let exists: Count = diesel::sql_query(format!(
            "SELECT count(*) AS count FROM pg_class WHERE oid = to_regclass('{table}')"
        ))
        .get_result(&mut connection)
        .expect("look the table up");
        if exists.count == 0 {
            return 0;
        }
        let rows: Count = diesel::sql_query(format!(
            "SELECT count(*) AS count FROM {table} WHERE {condition}"
        ))
        .get_result(&mut connection)
        .unwrap_or_else(|error| panic!("count {table}: {error}"));
        rows.count
    }
}

impl Drop for BareDatabase {
    fn drop(&mut self) {
        drop_postgres_database(&self.name);
    }
}

/// Upstream's API under uwsgi on one database, in a process group of its
/// own; SIGTERM to the group when dropped, then SIGKILL.
pub struct Upstream {
    child: Child,
    pub client: Client,
    log: PathBuf,
}

impl Upstream {
    /// Starts it (it syncs its schema and standard data first) and waits
    /// until it answers `GET /`.
    pub fn start(database: &UpstreamDatabase) -> Upstream {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "placement-upstream-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let output = File::create(&log).expect("create the upstream log");
        let child = Command::new("bash")
            .arg(SERVER_SCRIPT)
            .env("VENV", venv())
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database.server_url())
            .env("UWSGI_PROCESSES", "1")
            .env("UWSGI_THREADS", "4")
            .env("MAX_POOL_SIZE", "5")
            // uwsgi's HTTP router closes every connection after one answer
            // without saying so (HTTP/1.1, no `Connection: close`), so the
            // test client's next request on the pooled connection meets an
            // EOF; with --http-keepalive it still resets one now and then.
            // Saying so makes the client open a connection per request.
            .env("UWSGI_EXTRA", "--add-header Connection:close")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log handle"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("start upstream's server.sh");
        let base = format!("http://127.0.0.1:{port}");
        let mut server = Upstream {
            child,
            client: Client::new(&base),
            log,
        };
        let probe = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "upstream exited ({status}) before answering; its log:\n{}",
                    tail(&server.log, 40)
                );
            }
            if probe.get(&format!("{base}/")).call().is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "upstream did not answer within 120 s; its log:\n{}",
            tail(&server.log, 40)
        );
    }
}

fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let pid = self.child.id();
        signal_group(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Workers the master left behind, or the master itself.
        signal_group(pid, "KILL");
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("upstream's log is kept in {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// What a `placement` command did.
pub struct Run {
    pub command: String,
    /// None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both outputs, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Panics unless it exited 0.
    pub fn assert_success(&self) -> &Run {
        assert_eq!(self.code, Some(0), "{}", self.describe());
        self
    }

    /// Panics unless it exited 1.
    pub fn assert_refused(&self) -> &Run {
        assert_eq!(self.code, Some(1), "{}", self.describe());
        self
    }

    /// The lines of stdout and stderr that start with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|line| line.starts_with(prefix))
            .collect()
    }
}

/// Runs `placement ARGS` with `target` as its database (DATABASE_URL), as
/// an operator would, and waits for it.
pub fn placement(target: &str, args: &[&str]) -> Run {
    let scratch = std::env::temp_dir().join(format!(
        "placement-transfer-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let stdout_path = scratch.with_extension("stdout");
    let stderr_path = scratch.with_extension("stderr");
    let command = format!("placement {}", args.join(" "));
    let mut child = Command::new(env!("CARGO_BIN_EXE_placement"))
        .args(args)
        .env("DATABASE_URL", target)
        .env_remove("OS_PLACEMENT_DATABASE__CONNECTION")
        .env("OS_API__AUTH_STRATEGY", "noauth2")
        .env("RBAC", "legacy")
        .env("PLACEMENT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|error| panic!("run {command}: {error}"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for placement") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &PathBuf| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let _ = std::fs::remove_file(path);
        text
    };
    let run = Run {
        command,
        code: status.and_then(|status| status.code()),
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
    };
    assert!(
        status.is_some(),
        "gave up after {COMMAND_TIMEOUT:?}: {}",
        run.describe()
    );
    run
}

/// One GET both servers are asked.
pub struct Probe {
    pub version: &'static str,
    pub path: String,
    /// Upstream 16.0.0 answers this with a 500 on some databases (a bug of
    /// its, README of tools/differential): such an answer is skipped,
    /// saying so, rather than compared.
    pub upstream_may_fail: bool,
}

impl Probe {
    pub fn new(version: &'static str, path: impl Into<String>) -> Probe {
        Probe {
            version,
            path: path.into(),
            upstream_may_fail: false,
        }
    }

    pub fn upstream_may_fail(mut self) -> Probe {
        self.upstream_may_fail = true;
        self
    }
}

/// One answer that differs.
pub struct Difference {
    pub probe: String,
    pub upstream: Reply,
    pub ours: Reply,
    /// Where the canonical bodies first part (a JSON pointer and both
    /// values), or the two statuses.
    pub at: String,
}

/// Asks both servers every probe and compares status and body, the body
/// made canonical (`canonical`). Prints what was skipped, then the first
/// differences in full, and fails if there were any.
pub fn assert_same_answers(label: &str, upstream: &Client, ours: &Client, probes: &[Probe]) {
    let mut differences = Vec::new();
    let mut skipped = Vec::new();
    for probe in probes {
        let described = format!("GET {} at {}", probe.path, probe.version);
        let up = upstream.at(probe.version).get(&probe.path);
        if probe.upstream_may_fail && up.status >= 500 {
            skipped.push(format!(
                "{described}: upstream answered {} (a known upstream bug)",
                up.status
            ));
            continue;
        }
        let rs = ours.at(probe.version).get(&probe.path);
        let at = if up.status == rs.status {
            first_divergence(&canonical(&up.body), &canonical(&rs.body), String::new())
        } else {
            Some(format!(
                "status: upstream {}, ours {}",
                up.status, rs.status
            ))
        };
        if let Some(at) = at {
            differences.push(Difference {
                probe: described,
                upstream: up,
                ours: rs,
                at,
            });
        }
    }
    for line in skipped.iter().take(3) {
        eprintln!("{label}: skipped {line}");
    }
    if skipped.len() > 3 {
        eprintln!("{label}: … and {} more skipped alike", skipped.len() - 3);
    }
    eprintln!(
        "{label}: compared {} answers, {} skipped, {} differ",
        probes.len() - skipped.len(),
        skipped.len(),
        differences.len()
    );
    for difference in differences.iter().take(5) {
        eprintln!(
            "{label}: DIFFERENCE {}\n  first at {}\n  upstream {}: {}\n  ours     {}: {}",
            difference.probe,
            difference.at,
            difference.upstream.status,
            shorten(&canonical(&difference.upstream.body)),
            difference.ours.status,
            shorten(&canonical(&difference.ours.body)),
        );
    }
    let all: Vec<&str> = differences.iter().map(|d| d.probe.as_str()).collect();
    assert!(
        differences.is_empty(),
        "{label}: {} of {} answers differ between upstream and placement-rs \
         (the first are printed above): {all:?}",
        differences.len(),
        probes.len()
    );
}

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 6000 {
        let mut end = 6000;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &text[..end], text.len())
    } else {
        text
    }
}

/// A body as compared: request ids removed (they differ by design), keys
/// in name order, and every array sorted by its elements' canonical JSON,
/// so that lists compare as multisets (upstream orders providers, traits,
/// aggregates and candidates by database row order, which two databases
/// need not share).
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let keys: BTreeSet<&String> = map.keys().filter(|key| *key != "request_id").collect();
            let mut sorted = Map::new();
            for key in keys {
                sorted.insert(key.clone(), canonical(&map[key]));
            }
            Value::Object(sorted)
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            // Providers by uuid first, so that two lists line up entry by
            // entry when one provider differs.
            items.sort_by_cached_key(|item| {
                let uuid = item.get("uuid").and_then(Value::as_str).map(str::to_owned);
                (uuid, item.to_string())
            });
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// Where `a` and `b` first differ, if they do: a JSON pointer and the two
/// values there.
fn first_divergence(a: &Value, b: &Value, at: String) -> Option<String> {
    let missing = || "(absent)".to_owned();
    match (a, b) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            keys.into_iter().find_map(|key| {
                let here = format!("{at}/{key}");
                match (left.get(key), right.get(key)) {
                    (Some(l), Some(r)) => first_divergence(l, r, here),
                    (l, r) => Some(format!(
                        "{here}: upstream {}, ours {}",
                        l.map_or_else(missing, Value::to_string),
                        r.map_or_else(missing, Value::to_string)
                    )),
                }
            })
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .find_map(|(index, (l, r))| first_divergence(l, r, format!("{at}/{index}"))),
        (Value::Array(left), Value::Array(right)) => Some(format!(
            "{at}: upstream {} items, ours {}",
            left.len(),
            right.len()
        )),
        _ if a == b => None,
        _ => Some(format!(
            "{}: upstream {}, ours {}",
            if at.is_empty() { "/" } else { &at },
            shorten(a),
            shorten(b)
        )),
    }
}
