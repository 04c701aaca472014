//! `GET /changes` followed while several server processes write: a
//! follower that starts from the cursor taken before any write and
//! applies every change in order ends with exactly the providers and
//! generations the database holds. Also: a long poll answers as soon as
//! a change commits, an expired cursor is 410 and a bad one 400.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestDatabase;
use crate::support::http::{Client, Reply};
use crate::support::process::ServerProcess;

const PROCESSES: usize = 3;
const WRITERS: usize = 6;
const RUN: Duration = Duration::from_secs(12);

/// A `placement serve` as `ServerProcess` starts one, with extra
/// environment (configuration options as `OS_<SECTION>__<OPTION>`);
/// killed when dropped.
struct ConfiguredProcess {
    child: Child,
    client: Client,
}

impl ConfiguredProcess {
    fn start(database_url: &str, extra: &[(&str, &str)]) -> ConfiguredProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("free port");
        let mut command = Command::new(env!("CARGO_BIN_EXE_placement"));
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("RBAC", "legacy")
            .env("OS_API__AUTH_STRATEGY", "noauth2")
            .env("PLACEMENT_WORKERS", "2")
            .env("PLACEMENT_DB_POOL_SIZE", "4")
            .env("PLACEMENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start placement");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(&format!("{base}/")).call().is_ok() {
                return ConfiguredProcess {
                    child,
                    client: Client::new(&base),
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("server process did not start");
    }
}

impl Drop for ConfiguredProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator, one per writer.
struct Dice(u64);

impl Dice {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn cursor_of(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["cursor"]
        .as_str()
        .and_then(|cursor| cursor.parse().ok())
        .unwrap_or_else(|| panic!("cursor is a decimal string: {:?}", reply.body))
}

fn changes_of(reply: &Reply) -> Vec<Value> {
    reply.body["changes"].as_array().cloned().expect("changes")
}

fn create_provider(client: &Client, parent: Option<&str>) -> (String, Reply) {
    let uuid = Uuid::new_v4().to_string();
    let mut body = json!({"name": format!("feed-{uuid}"), "uuid": uuid});
    if let Some(parent) = parent {
        body["parent_provider_uuid"] = Value::from(parent);
    }
    let reply = client.post("/resource_providers", &body);
    (uuid, reply)
}

fn generation(client: &Client, provider: &str) -> Value {
    client.get(&format!("/resource_providers/{provider}")).body["generation"].clone()
}

/// What one writer keeps of its own providers.
#[derive(Default)]
struct Owned {
    providers: Vec<String>,
    /// Providers with VCPU, and the consumers holding some on each.
    with_inventory: HashMap<String, Vec<String>>,
    /// Children, which must go before their parents.
    parents: HashMap<String, String>,
}

/// One write of a randomly chosen kind; its name and reply.
fn one_write(client: &Client, dice: &mut Dice, owned: &mut Owned) -> (&'static str, Reply) {
    if owned.providers.len() < 2 || dice.below(8) == 0 {
        let parent = if !owned.providers.is_empty() && dice.below(3) == 0 {
            Some(owned.providers[dice.below(owned.providers.len())].clone())
        } else {
            None
        };
        let (uuid, reply) = create_provider(client, parent.as_deref());
        if reply.status == 200 {
            owned.providers.push(uuid.clone());
            if let Some(parent) = parent {
                owned.parents.insert(uuid, parent);
            }
        }
        return ("POST provider", reply);
    }
    let provider = owned.providers[dice.below(owned.providers.len())].clone();
    let base = format!("/resource_providers/{provider}");
    match dice.below(9) {
        0 | 1 => {
            let reply = client.put(
                &format!("{base}/inventories"),
                &json!({
                    "resource_provider_generation": generation(client, &provider),
                    "inventories": {"VCPU": {"total": 64 + dice.below(4) * 16},
                                    "MEMORY_MB": {"total": 65536}}
                }),
            );
            if reply.status == 200 {
                owned.with_inventory.entry(provider).or_default();
            }
            ("PUT inventories", reply)
        }
        2 => {
            let chosen = [
                "HW_CPU_X86_AVX2",
                "HW_CPU_X86_SSE",
                "COMPUTE_STATUS_DISABLED",
            ][dice.below(3)];
            (
                "PUT traits",
                client.put(
                    &format!("{base}/traits"),
                    &json!({"resource_provider_generation": generation(client, &provider),
                            "traits": [chosen]}),
                ),
            )
        }
        3 => (
            "PUT aggregates",
            client.put(
                &format!("{base}/aggregates"),
                &json!({"resource_provider_generation": generation(client, &provider),
                        "aggregates": [format!("00000000-0000-4000-8000-0000000000a{}",
                                               dice.below(3))]}),
            ),
        ),
        4 => (
            "PUT provider name",
            client.put(
                &base,
                &json!({"name": format!("renamed-{}", Uuid::new_v4())}),
            ),
        ),
        5 | 6 => {
            let mut targets: Vec<&String> = owned.with_inventory.keys().collect();
            targets.sort();
            let Some(target) = targets
                .get(dice.below(targets.len().max(1)))
                .map(|t| (*t).clone())
            else {
                return ("GET provider", client.get(&base));
            };
            let consumer = Uuid::new_v4().to_string();
            let reply = client.put(
                &format!("/allocations/{consumer}"),
                &json!({
                    "allocations": {target.as_str(): {"resources": {"VCPU": 1}}},
                    "project_id": "feed-project", "user_id": "feed-user",
                    "consumer_generation": null, "consumer_type": "INSTANCE"
                }),
            );
            if reply.status == 204
                && let Some(consumers) = owned.with_inventory.get_mut(&target)
            {
                consumers.push(consumer);
            }
            ("PUT allocations", reply)
        }
        7 => {
            let consumer = owned
                .with_inventory
                .values_mut()
                .find_map(|consumers| consumers.pop());
            match consumer {
                Some(consumer) => (
                    "DELETE allocations",
                    client.delete(&format!("/allocations/{consumer}")),
                ),
                None => ("GET provider", client.get(&base)),
            }
        }
        _ => {
            // A childless provider: its consumers go first.
            if owned.parents.values().any(|parent| *parent == provider) {
                return ("GET provider", client.get(&base));
            }
            for consumer in owned.with_inventory.remove(&provider).unwrap_or_default() {
                let reply = client.delete(&format!("/allocations/{consumer}"));
                assert!(reply.status < 500, "DELETE allocations: {:?}", reply.body);
            }
            let reply = client.delete(&base);
            if reply.status == 204 {
                owned.providers.retain(|kept| *kept != provider);
                owned.parents.remove(&provider);
            }
            ("DELETE provider", reply)
        }
    }
}

/// What the follower saw.
struct Followed {
    cache: HashMap<String, i64>,
    changes: usize,
    polls: usize,
}

/// Follows `GET /changes` from `cursor` through every process in turn,
/// until `done` is set and a poll without waiting comes back empty.
fn follow(clients: &[Client], mut cursor: u64, done: &AtomicBool) -> Followed {
    let mut cache: HashMap<String, i64> = HashMap::new();
    let mut deleted: HashMap<String, u64> = HashMap::new();
    let mut last_seq: Option<u64> = None;
    let mut changes = 0;
    let mut polls = 0;
    loop {
        let finishing = done.load(Ordering::SeqCst);
        let wait = if finishing { 0 } else { 5 };
        let client = &clients[polls % clients.len()];
        polls += 1;
        let reply = client.get(&format!("/changes?since={cursor}&wait={wait}"));
        let next = cursor_of(&reply);
        let batch = changes_of(&reply);
        assert!(next >= cursor, "cursor went back from {cursor} to {next}");
        for change in &batch {
            let seq = change["seq"].as_u64().expect("seq");
            assert!(seq > cursor, "change {seq} not after the cursor {cursor}");
            if let Some(last) = last_seq {
                assert!(
                    seq > last,
                    "seq {seq} after {last}: each change once, in order"
                );
            }
            last_seq = Some(seq);
            let uuid = change["resource_provider_uuid"]
                .as_str()
                .expect("resource_provider_uuid")
                .to_owned();
            assert!(
                !deleted.contains_key(&uuid),
                "change {seq} for {uuid}, deleted at {:?}",
                deleted.get(&uuid)
            );
            match &change["generation"] {
                Value::Null => {
                    cache.remove(&uuid);
                    deleted.insert(uuid, seq);
                }
                generation => {
                    let generation = generation.as_i64().expect("generation");
                    if let Some(previous) = cache.get(&uuid) {
                        assert!(
                            generation >= *previous,
                            "{uuid}: generation {generation} after {previous}"
                        );
                    }
                    cache.insert(uuid, generation);
                }
            }
            changes += 1;
        }
        if let Some(last) = batch.last().and_then(|change| change["seq"].as_u64()) {
            assert!(next >= last, "cursor {next} before the last change {last}");
        }
        cursor = next;
        if finishing && batch.is_empty() {
            return Followed {
                cache,
                changes,
                polls,
            };
        }
    }
}

/// Every provider and its generation, as the database has them now.
fn listed(client: &Client) -> HashMap<String, i64> {
    let reply = client.get("/resource_providers");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["resource_providers"]
        .as_array()
        .expect("resource_providers")
        .iter()
        .map(|provider| {
            (
                provider["uuid"].as_str().unwrap_or_default().to_owned(),
                provider["generation"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn follower_of_the_feed_ends_with_the_database() {
    let database = TestDatabase::new();
    let processes: Vec<ServerProcess> = (0..PROCESSES)
        .map(|_| ServerProcess::start(&database.url(), 8))
        .collect();
    let clients: Vec<Client> = processes
        .iter()
        .map(|process| process.client.clone())
        .collect();
    // The cursor first, before any write; then the (empty) listing.
    let start = clients[0].get("/changes");
    assert_eq!(changes_of(&start), Vec::<Value>::new());
    let start = cursor_of(&start);
    assert!(listed(&clients[0]).is_empty());

    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let (clients, done) = (clients.clone(), Arc::clone(&done));
        std::thread::spawn(move || follow(&clients, start, &done))
    };
    let writes = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + RUN;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let client = clients[writer % clients.len()].clone();
            let writes = Arc::clone(&writes);
            std::thread::spawn(move || {
                let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ ((writer as u64 + 1) * 0x2545_f491));
                let mut owned = Owned::default();
                let mut failures = Vec::new();
                while Instant::now() < deadline {
                    let (name, reply) = one_write(&client, &mut dice, &mut owned);
                    writes.fetch_add(1, Ordering::Relaxed);
                    if reply.status >= 500 {
                        failures.push(format!("{name}: {} {:?}", reply.status, reply.body));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("writer"))
        .collect();
    done.store(true, Ordering::SeqCst);
    let followed = follower.join().expect("follower");
    let database_view = listed(&clients[1]);
    eprintln!(
        "change feed: {} writes, {} changes in {} polls, {} providers at the end",
        writes.load(Ordering::Relaxed),
        followed.changes,
        followed.polls,
        database_view.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(!database_view.is_empty(), "the writers made providers");
    let mut missing: Vec<_> = database_view
        .iter()
        .filter(|(uuid, generation)| followed.cache.get(*uuid) != Some(*generation))
        .map(|(uuid, generation)| (uuid.clone(), *generation, followed.cache.get(uuid).copied()))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "(provider, database, feed): {missing:?}"
    );
    let mut extra: Vec<_> = followed
        .cache
        .keys()
        .filter(|uuid| !database_view.contains_key(*uuid))
        .cloned()
        .collect();
    extra.sort();
    assert!(
        extra.is_empty(),
        "in the feed, not in the database: {extra:?}"
    );
}

/// A long poll answers when a change commits in another process, not at
/// the end of its wait; with nothing happening it waits and comes back
/// empty.
#[test]
fn long_poll_returns_when_a_change_commits() {
    let database = TestDatabase::new();
    let waiting = ServerProcess::start(&database.url(), 4);
    let writing = ServerProcess::start(&database.url(), 4);
    let cursor = cursor_of(&waiting.client.get("/changes"));

    let started = Instant::now();
    let idle = waiting
        .client
        .get(&format!("/changes?since={cursor}&wait=1"));
    let idled = started.elapsed();
    assert_eq!(changes_of(&idle), Vec::<Value>::new());
    assert_eq!(cursor_of(&idle), cursor);
    assert!(idled >= Duration::from_millis(900), "waited only {idled:?}");
    assert!(
        idled < Duration::from_secs(5),
        "waited {idled:?} for wait=1"
    );

    for (name, client) in [
        ("another process", writing.client.clone()),
        ("the same process", waiting.client.clone()),
    ] {
        let cursor = cursor_of(&waiting.client.get("/changes"));
        let poller = {
            let client = waiting.client.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let reply = client.get(&format!("/changes?since={cursor}&wait=10"));
                (reply, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        let (uuid, created) = create_provider(&client, None);
        assert_eq!(created.status, 200, "{:?}", created.body);
        let (reply, took) = poller.join().expect("poller");
        assert!(
            took < Duration::from_secs(4),
            "write in {name}: the poll took {took:?}"
        );
        assert!(
            took >= Duration::from_millis(400),
            "{name}: answered before the write"
        );
        let changes = changes_of(&reply);
        assert_eq!(changes.len(), 1, "{name}: {changes:?}");
        assert_eq!(changes[0]["resource_provider_uuid"], uuid.as_str());
        assert_eq!(changes[0]["generation"], 0);
        assert_eq!(
            cursor_of(&reply),
            changes[0]["seq"].as_u64().unwrap_or_default(),
            "{name}"
        );
    }
}

/// A cursor older than the kept changes is 410 `cursor_expired`; a
/// recent one still answers.
#[test]
fn expired_cursor_is_410() {
    let database = TestDatabase::new();
    let server = ConfiguredProcess::start(
        &database.url(),
        &[("OS_PLACEMENT__CHANGE_FEED_RETENTION", "10")],
    );
    let client = &server.client;
    let old = cursor_of(&client.get("/changes"));
    // Pruning may lag the writes: keep writing until the old cursor
    // falls out of what is kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    let expired = loop {
        for _ in 0..15 {
            let (_, created) = create_provider(client, None);
            assert_eq!(created.status, 200, "{:?}", created.body);
        }
        let reply = client.get(&format!("/changes?since={old}"));
        if reply.status != 200 || Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(expired.status, 410, "{:?}", expired.body);
    assert_eq!(expired.error_code(), "placement.changes.cursor_expired");
    let waited = client.get(&format!("/changes?since={old}&wait=2"));
    assert_eq!(waited.status, 410, "a wait does not hide the expiry");

    let recent = cursor_of(&client.get("/changes"));
    let (_, created) = create_provider(client, None);
    assert_eq!(created.status, 200, "{:?}", created.body);
    let reply = client.get(&format!("/changes?since={recent}"));
    assert_eq!(changes_of(&reply).len(), 1, "{:?}", reply.body);
}

#[test]
fn bad_since_or_wait_is_400() {
    let database = TestDatabase::new();
    let server = ServerProcess::start(&database.url(), 4);
    let client = &server.client;
    for query in [
        "since=abc",
        "since=-1",
        "since=1.5",
        "since=",
        "since=0x10",
        "since=0&wait=abc",
        "since=0&wait=-1",
        "since=0&wait=61",
        "since=0&wait=1.5",
    ] {
        let reply = client.get(&format!("/changes?{query}"));
        assert_eq!(reply.status, 400, "{query}: {:?}", reply.body);
        assert!(
            !reply.error_detail().is_empty(),
            "{query}: {:?}",
            reply.body
        );
    }
    let fine = client.get("/changes?since=0&wait=0");
    assert_eq!(fine.status, 200, "{:?}", fine.body);
}

/// Every write that moves a provider's generation shows in the feed with
/// the new generation, a rewrite of what the provider already has
/// included: a follower's cached generation is then always the one the
/// next write must name. (A rewrite that moves no generation needs no
/// change.)
#[test]
fn every_generation_move_shows_in_the_feed() {
    let database = TestDatabase::new();
    let server = ServerProcess::start(&database.url(), 4);
    let client = &server.client;
    let mut cursor = cursor_of(&client.get("/changes"));
    let (provider, created) = create_provider(client, None);
    assert_eq!(created.status, 200, "{:?}", created.body);
    let base = format!("/resource_providers/{provider}");
    let mut followed = Value::Null;
    let mut failures = Vec::new();
    for step in 0..8 {
        let (name, reply) = match step / 2 {
            0 => (
                "PUT traits",
                client.put(
                    &format!("{base}/traits"),
                    &json!({"resource_provider_generation": generation(client, &provider),
                            "traits": ["HW_CPU_X86_AVX2"]}),
                ),
            ),
            1 => (
                "PUT aggregates",
                client.put(
                    &format!("{base}/aggregates"),
                    &json!({"resource_provider_generation": generation(client, &provider),
                            "aggregates": ["00000000-0000-4000-8000-0000000000a1"]}),
                ),
            ),
            2 => (
                "PUT inventories",
                client.put(
                    &format!("{base}/inventories"),
                    &json!({"resource_provider_generation": generation(client, &provider),
                            "inventories": {"VCPU": {"total": 8}}}),
                ),
            ),
            _ => (
                "PUT inventory",
                client.put(
                    &format!("{base}/inventories/VCPU"),
                    &json!({"resource_provider_generation": generation(client, &provider),
                            "total": 8}),
                ),
            ),
        };
        assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
        let feed = client.get(&format!("/changes?since={cursor}"));
        if let Some(change) = changes_of(&feed)
            .iter()
            .rev()
            .find(|change| change["resource_provider_uuid"] == provider.as_str())
        {
            followed = change["generation"].clone();
        }
        cursor = cursor_of(&feed);
        let now = generation(client, &provider);
        if followed != now {
            let again = if step % 2 == 1 {
                " (same content again)"
            } else {
                ""
            };
            failures.push(format!(
                "{name}{again}: generation {now}, feed says {followed}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
