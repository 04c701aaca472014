//! PostgreSQL clusters of a test's own, on spare ports under a scratch
//! directory: a primary, a streaming standby made with `pg_basebackup -R`,
//! and the stops, starts and promotions a failover test needs. Everything
//! a test made is stopped and removed when its `Scratch` is dropped, on
//! failure too; what a killed run left behind is removed by the next one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::prelude::*;

use super::Count;

/// The superuser every cluster is made with (trust authentication on
/// 127.0.0.1 only).
pub const SUPERUSER: &str = "postgres";
/// Where scratch directories are made: `<temp>/<PREFIX><pid>-<label>-...`.
const PREFIX: &str = "placement-pg-";

/// The PostgreSQL server binaries, and the user to run them as.
#[derive(Clone, Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// `runuser` and `postgres` when the tests run as root: PostgreSQL
    /// refuses to run as root, so its commands go through `runuser`.
    run_as: Option<(PathBuf, String)>,
}

impl Postgres {
    /// The binaries of `$PLACEMENT_TEST_PG_BIN`, else of the newest
    /// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else of
    /// `initdb` on the `PATH`; the reason when there are none to use.
    pub fn find() -> Result<Postgres, String> {
        let bin = bin_dir().ok_or_else(|| {
            "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup): none in \
             $PLACEMENT_TEST_PG_BIN, /usr/lib/postgresql/*/bin or on the PATH"
                .to_owned()
        })?;
        let run_as = if is_root() {
            let Some(runuser) = which("runuser")
                .or_else(|| Some(PathBuf::from("/usr/sbin/runuser")).filter(|path| path.is_file()))
            else {
                return Err("running as root, and no runuser to run PostgreSQL as postgres".into());
            };
            let known = Command::new("id")
                .args(["-u", SUPERUSER])
                .output()
                .is_ok_and(|output| output.status.success());
            if !known {
                return Err("running as root, and there is no postgres user to run it as".into());
            }
            Some((runuser, SUPERUSER.to_owned()))
        } else {
            None
        };
        Ok(Postgres { bin, run_as })
    }

    /// `tool args...`, as the PostgreSQL user; panics with its output when
    /// it fails.
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let output = self.try_run(tool, args);
        assert!(
            output.status.success(),
            "{tool} {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some((runuser, user)) => {
                let mut command = Command::new(runuser);
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        // A caller's PGDATA, PGPORT or PGHOST must not redirect the tools.
        for variable in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE"] {
            command.env_remove(variable);
        }
        command
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()))
    }
}

fn bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| {
        ["initdb", "pg_ctl", "pg_basebackup"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    if let Some(dir) = std::env::var_os("PLACEMENT_TEST_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|dir| has_tools(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    which("initdb")
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(|dir| has_tools(dir))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

/// A test's directory of clusters and logs. Dropping it stops every
/// cluster made in it (immediate shutdown) and removes it.
pub struct Scratch {
    pub dir: PathBuf,
    postgres: Postgres,
}

impl Scratch {
    pub fn new(postgres: Postgres, label: &str) -> Scratch {
        remove_leftovers(&postgres);
        let dir = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{label}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        if let Some((_, user)) = &postgres.run_as {
            let owned = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .is_ok_and(|status| status.success());
            assert!(owned, "cannot give {} to {user}", dir.display());
        }
        Scratch { dir, postgres }
    }

    /// A file name in the scratch directory (for logs).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Notes a process the test started (`<name>.pid`), so that a later
    /// run can stop it if this one is killed before it can.
    pub fn note_process(&self, name: &str, pid: u32) {
        std::fs::write(self.dir.join(format!("{name}.pid")), pid.to_string())
            .expect("write pid file");
    }

    /// A new cluster, started on a spare port: trust authentication on
    /// 127.0.0.1, replication allowed, no unix socket outside `dir`, and
    /// no fsync (a test's crash is a process's, not the machine's).
    pub fn primary(&self, name: &str) -> Cluster<'_> {
        let data = self.dir.join(name);
        let data_arg = data.display().to_string();
        self.postgres.run(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let cluster = Cluster {
            scratch: self,
            name: name.to_owned(),
            data,
            port: free_port(),
        };
        cluster.append_config(&format!(
            "listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             shared_buffers = 32MB\n\
             max_connections = 100\n",
            self.dir.display()
        ));
        cluster.start();
        cluster
    }

    /// A streaming standby of `primary`, from `pg_basebackup -R`, started
    /// on a spare port of its own.
    pub fn standby_of(&self, primary: &Cluster<'_>, name: &str) -> Cluster<'_> {
        let data = self.dir.join(name);
        let data_arg = data.display().to_string();
        let port = primary.port.to_string();
        self.postgres.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-D",
                &data_arg,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        let cluster = Cluster {
            scratch: self,
            name: name.to_owned(),
            data,
            port: free_port(),
        };
        cluster.append_config("");
        cluster.start();
        cluster
    }
}

impl Drop for Scratch {
    /// Kept when `$PLACEMENT_TEST_KEEP_SCRATCH` is set, for its logs (its
    /// clusters are stopped all the same).
    fn drop(&mut self) {
        if std::env::var_os("PLACEMENT_TEST_KEEP_SCRATCH").is_some() {
            eprintln!("kept {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the scratch directories of test processes no longer running,
/// stopping the clusters they left running first.
fn remove_leftovers(postgres: &Postgres) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id()
            || Path::new(&format!("/proc/{owner}")).exists()
            || std::env::var_os("PLACEMENT_TEST_KEEP_SCRATCH").is_some()
        {
            continue;
        }
        for file in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.join("postmaster.pid").exists() {
                let data = path.display().to_string();
                postgres.try_run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
            } else if path.extension().is_some_and(|extension| extension == "pid") {
                stop_noted_process(&path);
            }
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

/// Kills the process a `note_process` file names, if it still runs the
/// binary it was started as (the id may have been reused since).
fn stop_noted_process(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return;
    };
    let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|command| {
        let program = command.split(|byte| *byte == 0).next().unwrap_or_default();
        Path::new(&*String::from_utf8_lossy(program)).file_name()
            == Some(std::ffi::OsStr::new(env!("CARGO_PKG_NAME")))
    });
    if ours {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// One cluster in a `Scratch`; stopped (immediate shutdown) when dropped.
pub struct Cluster<'a> {
    scratch: &'a Scratch,
    pub name: String,
    data: PathBuf,
    pub port: u16,
}

impl Cluster<'_> {
    /// Appends `settings` and this cluster's port to `postgresql.conf`
    /// (later lines win; a standby's copy names its primary's port).
    fn append_config(&self, settings: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        write!(file, "\n{settings}port = {}\n", self.port).expect("write postgresql.conf");
    }

    fn data_arg(&self) -> String {
        self.data.display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data_arg();
        let log = self.log().display().to_string();
        let mut all = vec![args[0], "-D", &data, "-l", &log, "-w", "-t", "60"];
        all.extend_from_slice(&args[1..]);
        self.scratch.postgres.run("pg_ctl", &all);
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.scratch.dir.join(format!("{}.log", self.name))
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) {
        self.pg_ctl(&["start"]);
    }

    /// Stops the cluster at once, as a crash would: no checkpoint, every
    /// session cut.
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
    }

    /// Promotes a standby and waits until it accepts writes.
    pub fn promote(&self) {
        self.pg_ctl(&["promote"]);
    }

    /// A libpq URL for `database` on this cluster alone.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn connect(&self, database: &str) -> PgConnection {
        PgConnection::establish(&self.url(database))
            .unwrap_or_else(|error| panic!("connect to {}: {error}", self.name))
    }

    pub fn create_database(&self, database: &str) {
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut self.connect("postgres"))
            .expect("create database");
    }

    /// Makes every commit wait for a standby to have flushed it, and waits
    /// until one does. Set with `ALTER SYSTEM` after the base backup, so
    /// that the standby does not inherit it (promoted, it would then wait
    /// for a standby of its own forever).
    pub fn require_synchronous_standby(&self) {
        let mut connection = self.connect("postgres");
        diesel::sql_query("ALTER SYSTEM SET synchronous_standby_names = '*'")
            .execute(&mut connection)
            .expect("set synchronous_standby_names");
        diesel::sql_query("SELECT pg_reload_conf()")
            .execute(&mut connection)
            .expect("reload configuration");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synchronous = diesel::sql_query(
                "SELECT count(*) AS count FROM pg_stat_replication WHERE sync_state = 'sync'",
            )
            .get_result::<Count>(&mut connection)
            .map(|row| row.count)
            .unwrap_or(0);
            if synchronous > 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no synchronous standby of {} after 30 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let data = self.data_arg();
            self.scratch
                .postgres
                .try_run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
        }
    }
}

/// The last `lines` lines of `path`, for a failure's message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
