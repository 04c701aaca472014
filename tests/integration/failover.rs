//! The server through a PostgreSQL failover and an outage, as separate
//! `placement serve` processes on clusters of the test's own
//! (`support::clusters`): claims acknowledged before a synchronous
//! standby is promoted are all there after it, nothing is over-allocated,
//! each process's candidates view stays exact, and while no database can
//! be reached requests are answered 503 within `pool_timeout` and served
//! again once one can, without a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::{PgConnection, QueryableByName};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::clusters::{self, Cluster, Postgres, SUPERUSER, Scratch};
use crate::support::http::Client;
use crate::support::provider_with_inventory;

/// Consumer types came at 1.38; claims and candidates are made at it.
const MICROVERSION: &str = "1.38";
/// Seconds a request waits for a pooled connection (`[placement_database]
/// pool_timeout`).
const POOL_TIMEOUT: u64 = 2;
const PROVIDERS: usize = 4;
/// VCPU per provider: more than the load claims, so that only the final
/// fill makes providers full.
const CAPACITY: i64 = 100_000;
/// Client threads, spread over the server processes.
const CLIENTS: usize = 8;
/// How long nobody notices the primary is gone before the standby is
/// promoted: the servers see refused connections, then a standby that
/// refuses writes, before they see a primary again.
const DETECTION: Duration = Duration::from_secs(1);

/// The PostgreSQL binaries, or `None` after saying why `test` is skipped.
fn postgres_or_skip(test: &str) -> Option<Postgres> {
    match Postgres::find() {
        Ok(postgres) => Some(postgres),
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

/// A `placement serve` process on `connection`, killed when dropped; its
/// log is printed when the test fails.
struct Placement {
    name: String,
    child: Child,
    base: String,
    log: PathBuf,
}

impl Placement {
    /// Starts one without waiting for it; `ready` waits.
    fn spawn(name: &str, connection: &str, scratch: &Scratch) -> Placement {
        let port = clusters::free_port();
        let log = scratch.file(&format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("create server log");
        let child = Command::new(env!("CARGO_BIN_EXE_placement"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("OS_PLACEMENT_DATABASE__CONNECTION", connection)
            .env(
                "OS_PLACEMENT_DATABASE__POOL_TIMEOUT",
                POOL_TIMEOUT.to_string(),
            )
            .env("OS_PLACEMENT_DATABASE__MAX_POOL_SIZE", "8")
            .env("OS_API__AUTH_STRATEGY", "noauth2")
            .env("PORT", port.to_string())
            .env("RBAC", "legacy")
            .env("PLACEMENT_WORKERS", "2")
            .env("PLACEMENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start placement");
        scratch.note_process(name, child.id());
        Placement {
            name: name.to_owned(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits until it answers `GET /` (migrations done).
    fn ready(self) -> Placement {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/", self.base)).call().is_ok() {
                return self;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start", self.name);
    }

    fn client(&self) -> Client {
        Client::new(&self.base).at(MICROVERSION)
    }

    fn api(&self) -> Api {
        Api::new(&self.base)
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log (tail) ---\n{}",
                self.name,
                clusters::tail(&self.log, 40)
            );
        }
    }
}

/// Prints a cluster's log when the test fails.
struct LogOnFailure<'a>(&'a Cluster<'a>);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} log (tail) ---\n{}",
                self.0.name,
                clusters::tail(&self.0.log(), 30)
            );
        }
    }
}

/// A client for the load: bounded waits, and transport errors answered
/// as status 0 rather than a panic.
#[derive(Clone)]
struct Api {
    base: String,
    agent: ureq::Agent,
}

struct Answer {
    /// 0 when no HTTP answer came.
    status: u16,
    body: Value,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(2))
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("x-auth-token", "admin")
            .set(
                "openstack-api-version",
                &format!("placement {MICROVERSION}"),
            )
            .set("accept", "application/json");
        let result = match body {
            Some(body) => request
                .set("content-type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => {
                return Answer {
                    status: 0,
                    body: Value::String(error.to_string()),
                };
            }
        };
        let status = response.status();
        let body = response
            .into_string()
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        Answer { status, body }
    }
}

fn claim_body(provider: &str, vcpu: i64) -> Value {
    json!({
        "allocations": {provider: {"resources": {"VCPU": vcpu}}},
        "project_id": "failover-project",
        "user_id": "failover-user",
        "consumer_generation": null,
        "consumer_type": "INSTANCE"
    })
}

/// Creates `count` providers of `CAPACITY` VCPU through `client`.
fn create_providers(client: &Client, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            provider_with_inventory(
                client,
                &format!("failover-{index}"),
                json!({"VCPU": {"total": CAPACITY, "max_unit": CAPACITY}}),
            )
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Claim,
    Candidates,
    List,
}

/// One request of the load.
#[derive(Clone, Debug)]
struct Event {
    op: Op,
    started: Duration,
    finished: Duration,
    status: u16,
    /// Claims: the consumer, its provider's index and the VCPU asked.
    consumer: Option<Uuid>,
    provider: usize,
    vcpu: i64,
}

impl Event {
    fn took(&self) -> Duration {
        self.finished.saturating_sub(self.started)
    }

    /// No HTTP answer, or a server error: the write may or may not have
    /// been made.
    fn outcome_unknown(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

/// The times shared between the load threads and the test.
struct Clock {
    epoch: Instant,
    stop: AtomicBool,
    acknowledged: AtomicUsize,
    /// When (µs after `epoch`) the latest acknowledged claim was sent.
    latest_acknowledged_start: AtomicU64,
}

impl Clock {
    fn new() -> Arc<Clock> {
        Arc::new(Clock {
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            acknowledged: AtomicUsize::new(0),
            latest_acknowledged_start: AtomicU64::new(0),
        })
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Waits until a claim sent after `since` is acknowledged, or until
    /// `deadline` after `since`; true if one was.
    fn wait_for_claim_after(&self, since: Duration, deadline: Duration) -> bool {
        let since_micros = u64::try_from(since.as_micros()).unwrap_or(u64::MAX);
        while self.now() < since + deadline {
            if self.latest_acknowledged_start.load(Ordering::Relaxed) >= since_micros {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// Stops the load when dropped, so that a failing test leaves no client
/// thread behind.
struct StopLoad(Arc<Clock>);

impl Drop for StopLoad {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

/// What a scheduler does, until told to stop: candidates, then a claim on
/// one of them for a new consumer. Returns every request made.
fn claim_load(
    api: Api,
    providers: Arc<Vec<String>>,
    clock: Arc<Clock>,
    worker: usize,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut turn = worker;
    while !clock.stop.load(Ordering::Relaxed) {
        turn += 1;
        let started = clock.now();
        let candidates = api.call(
            "GET",
            "/allocation_candidates?resources=VCPU:1&limit=4",
            None,
        );
        events.push(Event {
            op: Op::Candidates,
            started,
            finished: clock.now(),
            status: candidates.status,
            consumer: None,
            provider: 0,
            vcpu: 0,
        });
        // A candidate when there are some; the next provider otherwise, so
        // that claims go on being tried while candidates fail.
        let offered: Vec<usize> = candidates.body["allocation_requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|request| request["allocations"].as_object()?.keys().next().cloned())
            .filter_map(|uuid| providers.iter().position(|known| *known == uuid))
            .collect();
        let provider = if offered.is_empty() {
            turn % providers.len()
        } else {
            offered[turn % offered.len()]
        };
        let consumer = Uuid::new_v4();
        let started = clock.now();
        let reply = api.call(
            "PUT",
            &format!("/allocations/{consumer}"),
            Some(&claim_body(&providers[provider], 1)),
        );
        let finished = clock.now();
        if reply.status == 204 {
            clock.acknowledged.fetch_add(1, Ordering::Relaxed);
            clock.latest_acknowledged_start.fetch_max(
                u64::try_from(started.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        } else if reply.status != 409 {
            // As a client backing off, briefly.
            std::thread::sleep(Duration::from_millis(10));
        }
        events.push(Event {
            op: Op::Claim,
            started,
            finished,
            status: reply.status,
            consumer: Some(consumer),
            provider,
            vcpu: 1,
        });
    }
    events
}

#[derive(QueryableByName)]
struct AllocationRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    consumer: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    provider: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
}

#[derive(QueryableByName)]
struct Overcommitted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Every allocation in the database, by consumer: (provider uuid, VCPU).
fn allocations_in(connection: &mut PgConnection) -> HashMap<Uuid, (String, i64)> {
    diesel::sql_query(
        "SELECT a.consumer_id::text AS consumer, rp.uuid::text AS provider, a.used \
         FROM allocations a JOIN resource_providers rp ON rp.id = a.resource_provider_id",
    )
    .load::<AllocationRow>(connection)
    .expect("read allocations")
    .into_iter()
    .map(|row| {
        let consumer = Uuid::parse_str(&row.consumer).expect("consumer uuid");
        (consumer, (row.provider, row.used))
    })
    .collect()
}

/// Inventories whose allocations exceed (total - reserved) * ratio.
fn overcommitted_in(connection: &mut PgConnection) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS count FROM inventories i \
         JOIN (SELECT resource_provider_id, resource_class_id, sum(used) AS used \
               FROM allocations GROUP BY 1, 2) u \
           USING (resource_provider_id, resource_class_id) \
         WHERE u.used > (i.total - i.reserved) * i.allocation_ratio",
    )
    .get_result::<Overcommitted>(connection)
    .expect("check capacity")
    .count
}

/// Statuses of `events`, e.g. `{503: 12}`.
fn by_status<'a>(events: impl Iterator<Item = &'a Event>) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.status).or_insert(0) += 1;
    }
    counts
}

/// How many candidates the process behind `client` offers for one VCPU,
/// and what each provider's summary says it has used (checking that it
/// says the capacity is `CAPACITY`).
fn candidate_usage(client: &Client) -> (usize, HashMap<String, i64>) {
    let reply = client.get("/allocation_candidates?resources=VCPU:1");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let requests = reply.body["allocation_requests"]
        .as_array()
        .map_or(0, Vec::len);
    let used = reply.body["provider_summaries"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(uuid, summary)| {
            let vcpu = &summary["resources"]["VCPU"];
            assert_eq!(vcpu["capacity"].as_i64(), Some(CAPACITY), "{summary}");
            (uuid.clone(), vcpu["used"].as_i64().unwrap_or(-1))
        })
        .collect();
    (requests, used)
}

#[test]
fn acknowledged_claims_survive_a_failover_to_a_synchronous_standby() {
    let Some(postgres) = postgres_or_skip("the failover test") else {
        return;
    };
    let test_started = Instant::now();
    let scratch = Scratch::new(postgres, "failover");
    let primary = scratch.primary("primary");
    let _primary_log = LogOnFailure(&primary);
    primary.create_database("placement");
    let standby = scratch.standby_of(&primary, "standby");
    let _standby_log = LogOnFailure(&standby);
    primary.require_synchronous_standby();
    let (first, second) = (primary.port, standby.port);
    // Both spellings libpq takes, one per process, passed to it as given.
    let keywords = format!(
        "host=127.0.0.1,127.0.0.1 port={first},{second} dbname=placement user={SUPERUSER} \
         target_session_attrs=read-write"
    );
    let url = format!(
        "postgresql://{SUPERUSER}@127.0.0.1:{first},127.0.0.1:{second}/placement\
         ?target_session_attrs=read-write"
    );
    let spawned = [
        Placement::spawn("placement-keywords", &keywords, &scratch),
        Placement::spawn("placement-url", &url, &scratch),
    ];
    let servers: Vec<Placement> = spawned.into_iter().map(Placement::ready).collect();
    let setup_took = test_started.elapsed();

    let providers = Arc::new(create_providers(&servers[0].client(), PROVIDERS));
    let clock = Clock::new();
    let _stop_load = StopLoad(Arc::clone(&clock));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let api = servers[worker % servers.len()].api();
            let providers = Arc::clone(&providers);
            let clock = Arc::clone(&clock);
            std::thread::spawn(move || claim_load(api, providers, clock, worker))
        })
        .collect();

    // Mid-load: once claims flow through both processes.
    while clock.now() < Duration::from_secs(2)
        || (clock.acknowledged.load(Ordering::Relaxed) < 200
            && clock.now() < Duration::from_secs(6))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_at = clock.now();
    primary.stop_immediate();
    let primary_down = clock.now();
    std::thread::sleep(DETECTION);
    let promote_from = clock.now();
    standby.promote();
    let promoted = clock.now();
    let recovered = clock.wait_for_claim_after(primary_down, Duration::from_secs(60));
    // Load after the failover, for stragglers and for the view to be
    // exercised against the new primary.
    std::thread::sleep(Duration::from_secs(3));
    clock.stop.store(true, Ordering::Relaxed);
    let mut events: Vec<Event> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("load thread"))
        .collect();
    events.sort_by_key(|event| event.finished);

    let everything = by_status(events.iter());
    assert!(
        recovered,
        "no claim succeeded within 60 s of the primary's stop: {everything:?}"
    );
    // The first claim sent once the old primary was gone (one sent while
    // pg_ctl was stopping it may still have reached it).
    let first_success = events
        .iter()
        .filter(|event| {
            event.op == Op::Claim && event.status == 204 && event.started >= primary_down
        })
        .map(|event| event.finished)
        .min()
        .expect("a claim after the stop");
    let unavailable = first_success - stopped_at;
    let in_window =
        |event: &&Event| event.finished >= stopped_at && event.finished <= first_success;
    let failed = |event: &&Event| !matches!(event.status, 200..=299 | 409);
    let window_claims = by_status(
        events
            .iter()
            .filter(in_window)
            .filter(failed)
            .filter(|event| event.op == Op::Claim),
    );
    let window_candidates = by_status(
        events
            .iter()
            .filter(in_window)
            .filter(failed)
            .filter(|event| event.op == Op::Candidates),
    );
    let stragglers = by_status(
        events
            .iter()
            .filter(|event| event.finished > first_success)
            .filter(failed),
    );
    let claims: Vec<&Event> = events
        .iter()
        .filter(|event| event.op == Op::Claim)
        .collect();
    let acknowledged: Vec<&Event> = claims.iter().copied().filter(|e| e.status == 204).collect();
    let unknown: Vec<&Event> = claims
        .iter()
        .copied()
        .filter(|event| event.outcome_unknown())
        .collect();
    let refused: Vec<&Event> = claims.iter().copied().filter(|e| e.status == 409).collect();

    // Against the new primary, directly.
    let mut database = standby.connect("placement");
    let stored = allocations_in(&mut database);
    let lost: Vec<&&Event> = acknowledged
        .iter()
        .filter(|event| {
            let consumer = event.consumer.expect("claims have consumers");
            stored.get(&consumer) != Some(&(providers[event.provider].clone(), event.vcpu))
        })
        .collect();
    let committed_unknown: Vec<&Event> = unknown
        .iter()
        .copied()
        .filter(|event| {
            event
                .consumer
                .is_some_and(|consumer| stored.contains_key(&consumer))
        })
        .collect();
    let refused_but_written = refused
        .iter()
        .filter(|event| {
            event
                .consumer
                .is_some_and(|consumer| stored.contains_key(&consumer))
        })
        .count();
    let overcommit = overcommitted_in(&mut database);
    let mut expected = vec![0i64; PROVIDERS];
    for event in acknowledged.iter().chain(&committed_unknown) {
        expected[event.provider] += event.vcpu;
    }

    eprintln!(
        "failover: setup {:.1} s; {} clients on {} processes; primary stopped at {:.2} s \
         (down after {:.2} s), promoted {:.2} s after the stop (pg_ctl promote {:.2} s); \
         UNAVAILABLE {:.2} s (from the stop to the first acknowledged claim sent after it, \
         {:.2} s after the promotion); \
         non-2xx/409 in the window: claims {window_claims:?}, candidates {window_candidates:?}; \
         after it: {stragglers:?}; all answers {everything:?}; claims {}, acknowledged {}, \
         LOST {}, outcome unknown {} (of which committed {}), refused {} (written {}); \
         OVERCOMMIT {overcommit}",
        setup_took.as_secs_f64(),
        CLIENTS,
        servers.len(),
        stopped_at.as_secs_f64(),
        (primary_down - stopped_at).as_secs_f64(),
        (promoted - stopped_at).as_secs_f64(),
        (promoted - promote_from).as_secs_f64(),
        unavailable.as_secs_f64(),
        first_success.saturating_sub(promoted).as_secs_f64(),
        claims.len(),
        acknowledged.len(),
        lost.len(),
        unknown.len(),
        committed_unknown.len(),
        refused.len(),
        refused_but_written,
    );

    assert!(
        everything
            .keys()
            .all(|status| matches!(status, 200 | 204 | 409 | 503)),
        "a failover may cost 503s, never 500s, other errors or unanswered requests: \
         {everything:?}"
    );
    assert!(
        acknowledged.len() > 100,
        "too few claims to tell: {}",
        acknowledged.len()
    );
    assert!(
        acknowledged.iter().any(|event| event.finished < stopped_at)
            && acknowledged.iter().any(|event| event.started > promoted),
        "claims were acknowledged both before the stop and after the promotion"
    );
    assert!(lost.is_empty(), "acknowledged claims lost: {}", lost.len());
    assert_eq!(refused_but_written, 0, "a refused claim was written");
    assert_eq!(overcommit, 0, "a provider is over capacity");
    assert!(
        unavailable < Duration::from_secs(20),
        "unavailable for {unavailable:?}"
    );
    let attempted: HashMap<Uuid, ()> = claims
        .iter()
        .filter_map(|event| event.consumer)
        .map(|consumer| (consumer, ()))
        .collect();
    assert!(
        stored
            .keys()
            .all(|consumer| attempted.contains_key(consumer)),
        "allocations nobody asked for"
    );

    // Usages through each process equal what was acknowledged (and what
    // was committed without an answer), and so does each process's view.
    for server in &servers {
        let client = server.client();
        for (uuid, expected) in providers.iter().zip(&expected) {
            let usages = client.get(&format!("/resource_providers/{uuid}/usages"));
            assert_eq!(usages.status, 200, "{:?}", usages.body);
            assert_eq!(
                usages.body["usages"]["VCPU"].as_i64(),
                Some(*expected),
                "usage of {uuid} through {}",
                server.name
            );
        }
        let (_, seen) = candidate_usage(&client);
        for (uuid, expected) in providers.iter().zip(&expected) {
            assert_eq!(
                seen.get(uuid),
                Some(expected),
                "{}'s candidates view of {uuid}",
                server.name
            );
        }
    }

    // Fill each provider through one process; the other's candidates
    // must drop it at once.
    for (index, (uuid, used)) in providers.iter().zip(&expected).enumerate() {
        let writer = servers[index % servers.len()].client();
        let reader = servers[(index + 1) % servers.len()].client();
        let (_, before) = candidate_usage(&reader);
        assert!(
            before.contains_key(uuid),
            "{uuid} is a candidate before it is full"
        );
        let fill = writer.put(
            &format!("/allocations/{}", Uuid::new_v4()),
            &claim_body(uuid, CAPACITY - used),
        );
        assert_eq!(fill.status, 204, "{:?}", fill.body);
        let (_, after) = candidate_usage(&reader);
        assert!(
            !after.contains_key(uuid),
            "a full {uuid} is still a candidate through the other process"
        );
    }
    for server in &servers {
        let client = server.client();
        let (requests, seen) = candidate_usage(&client);
        assert_eq!(
            (requests, seen.len()),
            (0, 0),
            "no candidates once every provider is full ({})",
            server.name
        );
        let refused = client.put(
            &format!("/allocations/{}", Uuid::new_v4()),
            &claim_body(&providers[0], 1),
        );
        assert_eq!(refused.status, 409, "{:?}", refused.body);
    }
    assert_eq!(
        overcommitted_in(&mut database),
        0,
        "over capacity after the fill"
    );
    for uuid in providers.iter() {
        let usages = servers[0]
            .client()
            .get(&format!("/resource_providers/{uuid}/usages"));
        assert_eq!(usages.body["usages"]["VCPU"].as_i64(), Some(CAPACITY));
    }
    eprintln!(
        "failover: test took {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
}

/// One loop of a client while the database is away: the three kinds of
/// request, each timed.
fn outage_load(api: Api, provider: String, clock: Arc<Clock>, worker: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut turn = worker;
    while !clock.stop.load(Ordering::Relaxed) {
        turn += 1;
        let started = clock.now();
        let (op, consumer, answer) = match turn % 3 {
            0 => (Op::List, None, api.call("GET", "/resource_providers", None)),
            1 => (
                Op::Candidates,
                None,
                api.call("GET", "/allocation_candidates?resources=VCPU:1", None),
            ),
            _ => {
                let consumer = Uuid::new_v4();
                let answer = api.call(
                    "PUT",
                    &format!("/allocations/{consumer}"),
                    Some(&claim_body(&provider, 1)),
                );
                (Op::Claim, Some(consumer), answer)
            }
        };
        let finished = clock.now();
        if op == Op::Claim && answer.status == 204 {
            clock.acknowledged.fetch_add(1, Ordering::Relaxed);
            clock.latest_acknowledged_start.fetch_max(
                u64::try_from(started.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        if !matches!(answer.status, 200..=299) {
            std::thread::sleep(Duration::from_millis(50));
        }
        events.push(Event {
            op,
            started,
            finished,
            status: answer.status,
            consumer,
            provider: 0,
            vcpu: 1,
        });
    }
    events
}

#[test]
fn requests_get_503_within_pool_timeout_while_the_database_is_down_then_recover() {
    let Some(postgres) = postgres_or_skip("the database outage test") else {
        return;
    };
    let test_started = Instant::now();
    let scratch = Scratch::new(postgres, "outage");
    let cluster = scratch.primary("only");
    let _cluster_log = LogOnFailure(&cluster);
    cluster.create_database("placement");
    let server = Placement::spawn(
        "placement-outage",
        &format!(
            "host=127.0.0.1 port={} dbname=placement user={SUPERUSER}",
            cluster.port
        ),
        &scratch,
    )
    .ready();
    let client = server.client();
    let provider = create_providers(&client, 1).remove(0);

    let clock = Clock::new();
    let _stop_load = StopLoad(Arc::clone(&clock));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let api = server.api();
            let provider = provider.clone();
            let clock = Arc::clone(&clock);
            std::thread::spawn(move || outage_load(api, provider, clock, worker))
        })
        .collect();
    // Pooled connections first, which the stop then breaks.
    std::thread::sleep(Duration::from_secs(1));
    let down_at = clock.now();
    cluster.stop_immediate();
    let down = clock.now();
    std::thread::sleep(Duration::from_secs(POOL_TIMEOUT * 3));
    let restart = clock.now();
    cluster.start();
    let up = clock.now();
    let recovered = clock.wait_for_claim_after(restart, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    clock.stop.store(true, Ordering::Relaxed);
    let mut events: Vec<Event> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("load thread"))
        .collect();
    events.sort_by_key(|event| event.finished);

    let bound = Duration::from_secs(POOL_TIMEOUT + 1);
    // Answered while the database was certainly down: sent after the stop
    // returned, answered before the start began (it accepts connections
    // a little before `pg_ctl start` notices).
    let outage: Vec<&Event> = events
        .iter()
        .filter(|event| event.started >= down && event.finished <= restart)
        .collect();
    let outage_statuses = by_status(outage.iter().copied());
    let slowest = outage
        .iter()
        .map(|event| event.took())
        .max()
        .unwrap_or_default();
    let slowest_anywhere = events.iter().map(Event::took).max().unwrap_or_default();
    let everything = by_status(events.iter());
    let first_success = events
        .iter()
        .filter(|event| event.status == 204 && event.started >= restart)
        .map(|event| event.finished)
        .min();
    let last_failure = events
        .iter()
        .filter(|event| !matches!(event.status, 200..=299))
        .map(|event| event.finished)
        .max()
        .unwrap_or_default();
    eprintln!(
        "outage: database down {:.2} s (pool_timeout {POOL_TIMEOUT} s); during it {} requests: \
         {outage_statuses:?}, slowest {:.2} s (bound {:.0} s), slowest of the run {:.2} s; \
         all answers {everything:?}; pg_ctl start took {:.2} s; RECOVERED {:.2} s after the \
         start began (first claim sent after it acknowledged), last failure answered {:.2} s \
         after it; test took {:.1} s",
        (restart - down_at).as_secs_f64(),
        outage.len(),
        slowest.as_secs_f64(),
        bound.as_secs_f64(),
        slowest_anywhere.as_secs_f64(),
        (up - restart).as_secs_f64(),
        first_success.map_or(f64::NAN, |at| (at.saturating_sub(restart)).as_secs_f64()),
        last_failure.saturating_sub(restart).as_secs_f64(),
        test_started.elapsed().as_secs_f64(),
    );
    assert!(
        outage.len() >= 4,
        "too few requests during the outage: {}",
        outage.len()
    );
    assert!(
        outage_statuses.keys().all(|status| *status == 503),
        "requests while the database is down are answered 503: {outage_statuses:?}"
    );
    assert!(
        slowest_anywhere < bound,
        "a request took {slowest_anywhere:?}, more than pool_timeout + 1 s"
    );
    assert!(
        everything
            .keys()
            .all(|status| matches!(status, 200 | 204 | 409 | 503)),
        "only successes, 409s and 503s: {everything:?}"
    );
    assert!(recovered, "no claim succeeded within 30 s of the restart");

    // Recovered for good, and the view exact: every acknowledged claim.
    let acknowledged: i64 = events
        .iter()
        .filter(|event| event.op == Op::Claim && event.status == 204)
        .map(|event| event.vcpu)
        .sum();
    let mut database = cluster.connect("placement");
    let stored = allocations_in(&mut database);
    let committed_unknown: i64 = events
        .iter()
        .filter(|event| event.op == Op::Claim && event.outcome_unknown())
        .filter(|event| {
            event
                .consumer
                .is_some_and(|consumer| stored.contains_key(&consumer))
        })
        .map(|event| event.vcpu)
        .sum();
    let usages = client.get(&format!("/resource_providers/{provider}/usages"));
    assert_eq!(usages.status, 200, "{:?}", usages.body);
    assert_eq!(
        usages.body["usages"]["VCPU"].as_i64(),
        Some(acknowledged + committed_unknown)
    );
    let (_, seen) = candidate_usage(&client);
    assert_eq!(
        seen.get(&provider),
        Some(&(acknowledged + committed_unknown))
    );
}
