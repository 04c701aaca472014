//! A real OpenStack Keystone for the Keystone-mode tests, started with
//! `../shared/keystone/start.sh`, and the `placement` binary run against it
//! from a `placement.conf` as a deployment writes one.
//!
//! Keystone's state lives in `$CARGO_TARGET_TMPDIR/keystone-<test pid>-<label>`.
//! Its access log also records each request's `X-Subject-Token`, so a test
//! counts the validations of one token however many tests share Keystone.
//! Every Keystone started here is stopped when the test process ends, by a
//! small watcher process, even when the process is killed; one a test owns
//! is stopped when it is dropped.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Client, Reply};

/// The access-log line of gunicorn's default format, with the subject token
/// appended. `GUNICORN_CMD_ARGS` reaches gunicorn without touching the
/// command line that Keystone parses as its own.
const GUNICORN_ARGS: &str = "--access-logformat '%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" subject=\"%({x-subject-token}i)s\"'";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/keystone/start.sh")
}

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("KS_VENV").unwrap_or_else(|_| "/tmp/keystone-venv".to_owned()))
}

fn state_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// A Keystone started by this test process.
pub struct Keystone {
    pub dir: PathBuf,
    pub port: u16,
    /// `$KS_DIR/env.sh`, as assignments.
    pub env: BTreeMap<String, String>,
    /// `KS_AUTH_URL`: `http://127.0.0.1:<port>/v3`.
    pub auth_url: String,
    pub demo_project_id: String,
    pub admin_token: String,
    pub service_token: String,
    pub demo_token: String,
    /// The port its catalog's `placement` endpoints name, held bound
    /// until a test takes it (`take_placement_port`).
    placement_port: u16,
    placement_reservation: Mutex<Option<TcpListener>>,
    /// Whether dropping it stops it (not for the shared one, which lives
    /// in a static).
    owned: bool,
}

/// A token Keystone issued, with its token document.
pub struct Issued {
    pub token: String,
    pub body: Value,
}

impl Keystone {
    /// The Keystone most tests share, started on first use. Its catalog
    /// sends clients to `placement_port`, which only the CLI test listens on.
    pub fn shared() -> &'static Keystone {
        static SHARED: OnceLock<Keystone> = OnceLock::new();
        SHARED.get_or_init(|| {
            let reservation = TcpListener::bind("127.0.0.1:0").expect("reserve a port");
            let placement_port = reservation.local_addr().expect("address").port();
            let mut keystone = Keystone::start("shared", placement_port);
            keystone.placement_reservation = Mutex::new(Some(reservation));
            keystone.owned = false;
            keystone
        })
    }

    /// A Keystone of its own for a test that stops or reconfigures it;
    /// stopped when dropped.
    pub fn dedicated(label: &str) -> Keystone {
        Keystone::start(label, free_port())
    }

    fn start(label: &str, placement_port: u16) -> Keystone {
        remove_leftovers();
        let port = free_port();
        let dir = state_root().join(format!("keystone-{}-{label}", std::process::id()));
        let run = || {
            Command::new("bash")
                .arg(script())
                .env("KS_DIR", &dir)
                .env("KS_PORT", port.to_string())
                .env(
                    "PLACEMENT_URL",
                    format!("http://127.0.0.1:{placement_port}"),
                )
                .env("GUNICORN_CMD_ARGS", GUNICORN_ARGS)
                .stdin(Stdio::null())
                .output()
                .expect("run ../shared/keystone/start.sh")
        };
        // Stop it with this process, however that ends (start.sh itself
        // empties the directory first, and writes the pid file last).
        watch(&dir);
        // The first start installs the venv (when start.sh finds no
        // keystone-manage or gunicorn in it): two at once would collide.
        static INSTALLED: Mutex<bool> = Mutex::new(false);
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        *installed = *installed
            || ["keystone-manage", "gunicorn"]
                .iter()
                .all(|program| venv().join("bin").join(program).exists());
        let output = if *installed {
            drop(installed);
            run()
        } else {
            let output = run();
            *installed = output.status.success();
            output
        };
        if !output.status.success() {
            panic!(
                "start.sh failed ({}):\n{}\n{}\ngunicorn.log:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                tail(&dir.join("gunicorn.log"), 40)
            );
        }
        let env: BTreeMap<String, String> = fs::read_to_string(dir.join("env.sh"))
            .expect("read env.sh")
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        let value = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{key} in env.sh"))
        };
        let token = |key: &str| {
            fs::read_to_string(value(key))
                .expect("token file")
                .trim()
                .to_owned()
        };
        Keystone {
            auth_url: value("KS_AUTH_URL"),
            demo_project_id: value("KS_DEMO_PROJECT_ID"),
            admin_token: token("KS_ADMIN_TOKEN_FILE"),
            service_token: token("KS_SERVICE_TOKEN_FILE"),
            demo_token: token("KS_DEMO_TOKEN_FILE"),
            env,
            dir,
            port,
            placement_port,
            placement_reservation: Mutex::new(None),
            owned: true,
        }
    }

    /// The port the catalog sends clients to, freed for the server about
    /// to listen there.
    pub fn take_placement_port(&self) -> u16 {
        let mut reservation = self
            .placement_reservation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(reservation.take());
        self.placement_port
    }

    /// The `WWW-Authenticate` value a 401 must carry.
    pub fn www_authenticate(&self) -> String {
        format!("Keystone uri=\"{}\"", self.auth_url)
    }

    /// Issues a token for `scope` (Keystone's `scope` object) to a user of
    /// the Default domain.
    pub fn issue(&self, user: &str, password: &str, scope: Value) -> Issued {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": scope}});
        let response = ureq::post(&format!("{}/auth/tokens", self.auth_url))
            .timeout(Duration::from_secs(30))
            .set("content-type", "application/json")
            .send_string(&body.to_string())
            .unwrap_or_else(|error| panic!("issue a token to {user}: {error}"));
        let token = response
            .header("x-subject-token")
            .expect("X-Subject-Token")
            .to_owned();
        let body = response.into_json().expect("token document");
        Issued { token, body }
    }

    /// A new token scoped to `project` (Default domain).
    pub fn project_token(&self, user: &str, password: &str, project: &str) -> String {
        self.issue(
            user,
            password,
            json!({"project": {"name": project, "domain": {"name": "Default"}}}),
        )
        .token
    }

    /// Revokes `token` (`DELETE /v3/auth/tokens` as admin).
    pub fn revoke(&self, token: &str) {
        let response = ureq::delete(&format!("{}/auth/tokens", self.auth_url))
            .timeout(Duration::from_secs(30))
            .set("x-auth-token", &self.admin_token)
            .set("x-subject-token", token)
            .call()
            .expect("revoke a token");
        assert_eq!(response.status(), 204, "revocation");
    }

    /// How many times Keystone was asked to validate `token`
    /// (`GET /v3/auth/tokens` with it as the subject).
    pub fn validations_of(&self, token: &str) -> usize {
        let subject = format!("subject=\"{token}\"");
        fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("\"GET /v3/auth/tokens") && line.ends_with(&subject))
            .count()
    }

    /// Whether Keystone answers `GET /v3/` now.
    pub fn answers(&self) -> bool {
        ureq::get(&format!("{}/", self.auth_url))
            .timeout(Duration::from_secs(5))
            .call()
            .is_ok()
    }

    /// Stops gunicorn (as `start.sh stop`) and waits until it has exited.
    pub fn stop(&self) {
        let pid = fs::read_to_string(self.dir.join("gunicorn.pid")).unwrap_or_default();
        let status = Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("KS_DIR", &self.dir)
            .env("KS_PORT", self.port.to_string())
            .status()
            .expect("run start.sh stop");
        assert!(status.success(), "start.sh stop: {status}");
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while running(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                !running(pid),
                "gunicorn {pid} still runs 30 s after SIGTERM"
            );
        }
        assert!(!self.answers(), "Keystone still answers after stop");
    }

    /// Starts gunicorn again on the same state (no reset: users, tokens and
    /// Fernet keys stay), as start.sh does; with `expiration`, new tokens
    /// live that many seconds.
    pub fn restart(&self, expiration: Option<u64>) {
        self.stop();
        if let Some(seconds) = expiration {
            let path = self.dir.join("keystone.conf");
            let conf = fs::read_to_string(&path).expect("keystone.conf");
            let conf: Vec<String> = conf
                .lines()
                .map(|line| {
                    if line.starts_with("expiration =") {
                        format!("expiration = {seconds}")
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            fs::write(&path, conf.join("\n") + "\n").expect("write keystone.conf");
        }
        let path = format!(
            "{}:{}",
            venv().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = Command::new("bash")
            .arg("-c")
            .arg(
                "OS_KEYSTONE_CONFIG_DIR=$PWD setsid nohup gunicorn >> gunicorn.log 2>&1 < /dev/null &
                 echo $! > gunicorn.pid",
            )
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("GUNICORN_CMD_ARGS", GUNICORN_ARGS)
            .status()
            .expect("start gunicorn");
        assert!(status.success(), "start gunicorn: {status}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "Keystone did not come back; gunicorn.log:\n{}",
            tail(&self.dir.join("gunicorn.log"), 40)
        );
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .env("KS_DIR", &self.dir)
                .status();
        }
    }
}

/// Whether process `pid` runs (a zombie does not).
fn running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether `pid` is a gunicorn (so that a stale pid file never kills a
/// process that reused the number).
fn is_gunicorn(pid: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("gunicorn"))
}

/// Starts a detached watcher that stops the gunicorn of `dir` once this test
/// process has gone, however it ended.
fn watch(dir: &Path) {
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        pid=$(cat "$2/gunicorn.pid" 2>/dev/null) || exit 0
        case "$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null)" in
            *gunicorn*) kill "$pid" ;;
        esac
        rm -f "$2/gunicorn.pid""#;
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("keystone-watch")
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}

/// Removes the state of Keystones whose test process has gone, stopping a
/// gunicorn that still runs from it.
fn remove_leftovers() {
    let Ok(entries) = fs::read_dir(state_root()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name
            .strip_prefix("keystone-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        if let Ok(pid) = fs::read_to_string(entry.path().join("gunicorn.pid")) {
            let pid = pid.trim();
            if is_gunicorn(pid) {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `placement.conf` for Keystone mode as a deployment writes it.
pub struct PlacementConf {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl PlacementConf {
    /// The file for a server on `database_url` (given as `postgres://...`,
    /// written in the `postgresql+psycopg2://` form) listening on `port`.
    pub fn new(keystone: &Keystone, database_url: &str, port: u16) -> PlacementConf {
        let connection = database_url
            .strip_prefix("postgres://")
            .map(|rest| format!("postgresql+psycopg2://{rest}"))
            .unwrap_or_else(|| database_url.to_owned());
        let auth_url = keystone.auth_url.as_str();
        let mut conf = PlacementConf {
            sections: Vec::new(),
        };
        conf.set("api", "auth_strategy", "keystone").set(
            "placement_database",
            "connection",
            &connection,
        );
        let from_env = |key: &str| keystone.env.get(key).map_or("", String::as_str);
        for (option, value) in [
            ("www_authenticate_uri", auth_url),
            ("auth_url", auth_url),
            ("auth_type", "password"),
            ("project_domain_name", "Default"),
            ("user_domain_name", "Default"),
            ("project_name", from_env("KS_SERVICE_PROJECT")),
            ("username", from_env("KS_SERVICE_USER")),
            ("password", from_env("KS_SERVICE_PASSWORD")),
            ("region_name", "RegionOne"),
            ("interface", "public"),
            ("service_type", "placement"),
        ] {
            conf.set("keystone_authtoken", option, value);
        }
        conf.set("oslo_policy", "enforce_new_defaults", "true").set(
            "server",
            "port",
            &port.to_string(),
        );
        conf
    }

    /// Sets `option` of `[section]`, replacing a value it had.
    pub fn set(&mut self, section: &str, option: &str, value: &str) -> &mut PlacementConf {
        let index = match self.sections.iter().position(|(name, _)| name == section) {
            Some(index) => index,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let options = &mut self.sections[index].1;
        match options.iter_mut().find(|(name, _)| name == option) {
            Some(entry) => entry.1 = value.to_owned(),
            None => options.push((option.to_owned(), value.to_owned())),
        }
        self
    }

    /// Leaves `option` of `[section]` out.
    pub fn remove(&mut self, section: &str, option: &str) -> &mut PlacementConf {
        for (name, options) in &mut self.sections {
            if name == section {
                options.retain(|(name, _)| name != option);
            }
        }
        self
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        for (section, options) in &self.sections {
            text.push_str(&format!("[{section}]\n"));
            for (option, value) in options {
                text.push_str(&format!("{option} = {value}\n"));
            }
        }
        text
    }
}

/// `placement serve --config-file` as a separate process, killed when
/// dropped; its configuration and log are `<label>.conf` and `<label>.log`
/// in `$CARGO_TARGET_TMPDIR/keystone-<test pid>-servers`.
pub struct PlacementProcess {
    child: Child,
    pub base_url: String,
    pub log: PathBuf,
}

impl PlacementProcess {
    /// Writes `conf` to `<label>.conf`, starts the server with it and the
    /// environment `env`, and waits until `GET /` answers on `port`.
    pub fn start(
        label: &str,
        conf: &PlacementConf,
        env: &[(&str, &str)],
        port: u16,
    ) -> PlacementProcess {
        let dir = state_root().join(format!("keystone-{}-servers", std::process::id()));
        fs::create_dir_all(&dir).expect("create server dir");
        let config = dir.join(format!("{label}.conf"));
        fs::write(&config, conf.render()).expect("write placement.conf");
        let log = dir.join(format!("{label}.log"));
        let output = fs::File::create(&log).expect("create server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_placement"));
        command.arg("serve").arg("--config-file").arg(&config);
        // Only what this test sets reaches the server.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("OS_")
                || key.starts_with("PLACEMENT_")
                || matches!(&*key, "DATABASE_URL" | "PORT" | "RBAC")
            {
                command.env_remove(&*key);
            }
        }
        command.env("PLACEMENT_LOG", "info");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .spawn()
            .expect("start placement");
        let base_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "placement exited ({status}) before answering; log:\n{}",
                    tail(&log, 40)
                );
            }
            let probe = ureq::get(&format!("{base_url}/"))
                .timeout(Duration::from_secs(5))
                .call();
            match probe {
                Ok(_) | Err(ureq::Error::Status(..)) => {
                    return PlacementProcess {
                        child,
                        base_url,
                        log,
                    };
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("placement did not answer GET /; log:\n{}", tail(&log, 40));
    }

    /// A client sending `token` as `X-Auth-Token`.
    pub fn client(&self, token: &str) -> Client {
        Client::new(&self.base_url).as_user(token)
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }
}

impl Drop for PlacementProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with exactly `headers` (no token unless given), for the
/// cases the support client cannot send.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    let mut request = ureq::request(method, url)
        .timeout(Duration::from_secs(60))
        .set("accept", "application/json");
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request
            .set("content-type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: transport error: {error}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| Some((name.clone(), response.header(&name)?.to_owned())))
        .collect();
    let mut text = String::new();
    let _ = response.into_reader().read_to_string(&mut text);
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        body,
        headers,
    }
}

/// The `openstack` command (python-openstackclient with osc-placement) in
/// a venv of pinned versions, installed on first use and kept in
/// `$OSC_VENV` (default `/tmp/placement-openstackclient-venv`) for later runs.
pub fn openstack_cli() -> PathBuf {
    const PINS: &[&str] = &["python-openstackclient==10.5.0", "osc-placement==4.9.1"];
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    let venv = PathBuf::from(
        std::env::var("OSC_VENV")
            .unwrap_or_else(|_| "/tmp/placement-openstackclient-venv".to_owned()),
    );
    let marker = venv.join("placement-pins.txt");
    let openstack = venv.join("bin/openstack");
    let pins = PINS.join("\n");
    if openstack.exists() && fs::read_to_string(&marker).is_ok_and(|text| text == pins) {
        return openstack;
    }
    let output = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .output()
        .expect("run python3 -m venv");
    if !output.status.success() {
        fail("python3 -m venv", &output);
    }
    let output = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PINS)
        .output()
        .expect("run pip");
    if !output.status.success() {
        fail("pip install", &output);
    }
    fs::write(&marker, pins).expect("write the pins marker");
    openstack
}

fn fail(what: &str, output: &std::process::Output) -> ! {
    panic!(
        "cannot install the openstack CLI ({what}: {}); the test needs PyPI and python3-venv:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
