//! `POST /claims` raced through several server processes on one database,
//! for consumers of shared hard anti-affinity groups: the group rule and
//! capacity must hold across processes (no two members of a group on one
//! host, no provider over capacity), every 200 must show in the usages
//! and every refusal must write nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::http::Client;
use crate::support::process::ServerProcess;
use crate::support::{TestDatabase, provider_with_inventory};

const PROCESSES: usize = 3;
const CLIENTS: usize = 36;
/// Groups raced at once; each has `CLIENTS / GROUPS` clients, spread over
/// the processes.
const GROUPS: usize = 6;
/// Planned members of a group: more than the hosts, so that groups fill.
const MEMBERS: usize = 16;
/// Groups of one slot are raced one after another, a round each.
const ROUNDS: usize = 400;
const RUN: Duration = Duration::from_secs(25);
/// Large hosts: room for every member they can get.
const LARGE: usize = 8;
/// Small hosts fill early: (8 - 2) * 2.0 VCPU.
const SMALL: usize = 4;
const SMALL_VCPU_CAPACITY: i64 = 12;

/// One claim's outcome.
struct Outcome {
    round: usize,
    slot: usize,
    consumer: Uuid,
    status: u16,
    code: String,
    allocations: Value,
}

/// The outcomes that are neither a 200 nor a 409 with one of `codes`.
fn unexpected<'a>(outcomes: &'a [Outcome], codes: &[&str]) -> Vec<(u16, &'a str)> {
    outcomes
        .iter()
        .filter(|outcome| {
            !(outcome.status == 200
                || (outcome.status == 409 && codes.contains(&outcome.code.as_str())))
        })
        .map(|outcome| (outcome.status, outcome.code.as_str()))
        .collect()
}

/// Capacity per class, `(total - reserved) * allocation_ratio`.
fn capacities(client: &Client, provider: &str) -> HashMap<String, i64> {
    let reply = client.get(&format!("/resource_providers/{provider}/inventories"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["inventories"]
        .as_object()
        .expect("inventories")
        .iter()
        .map(|(class, inventory)| {
            let total = inventory["total"].as_f64().unwrap_or(0.0);
            let reserved = inventory["reserved"].as_f64().unwrap_or(0.0);
            let ratio = inventory["allocation_ratio"].as_f64().unwrap_or(1.0);
            (class.clone(), ((total - reserved) * ratio).floor() as i64)
        })
        .collect()
}

fn usages(client: &Client, provider: &str) -> HashMap<String, i64> {
    let reply = client.get(&format!("/resource_providers/{provider}/usages"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["usages"]
        .as_object()
        .expect("usages")
        .iter()
        .map(|(class, used)| (class.clone(), used.as_i64().unwrap_or(-1)))
        .collect()
}

#[test]
fn anti_affinity_claims_racing_on_several_processes_hold() {
    let database = TestDatabase::new();
    let processes: Vec<ServerProcess> = (0..PROCESSES)
        .map(|_| ServerProcess::start(&database.url(), 8))
        .collect();
    let admin = processes[0].client.clone();
    let mut providers = Vec::new();
    for index in 0..LARGE {
        providers.push(provider_with_inventory(
            &admin,
            &format!("large-{index}"),
            json!({
                "VCPU": {"total": 100_000, "max_unit": 16},
                "MEMORY_MB": {"total": 1_048_576, "max_unit": 65536}
            }),
        ));
    }
    for index in 0..SMALL {
        providers.push(provider_with_inventory(
            &admin,
            &format!("small-{index}"),
            json!({
                "VCPU": {"total": 8, "reserved": 2, "allocation_ratio": 2.0},
                "MEMORY_MB": {"total": 1_048_576, "max_unit": 65536}
            }),
        ));
    }
    // Every member of every group, planned up front: each claim names
    // all of its group, so racing claims name each other.
    let groups: Arc<Vec<Vec<Vec<Uuid>>>> = Arc::new(
        (0..ROUNDS)
            .map(|_| {
                (0..GROUPS)
                    .map(|_| (0..MEMBERS).map(|_| Uuid::new_v4()).collect())
                    .collect()
            })
            .collect(),
    );
    let next: Arc<Vec<Vec<AtomicUsize>>> = Arc::new(
        (0..ROUNDS)
            .map(|_| (0..GROUPS).map(|_| AtomicUsize::new(0)).collect())
            .collect(),
    );
    let deadline = Instant::now() + RUN;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let slot = worker % GROUPS;
            // The clients of one slot go to different processes.
            let client = processes[(worker / GROUPS) % PROCESSES].client.clone();
            let groups = Arc::clone(&groups);
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let mut outcomes = Vec::new();
                let mut round = 0;
                while round < ROUNDS && Instant::now() < deadline {
                    let index = next[round][slot].fetch_add(1, Ordering::Relaxed);
                    if index >= MEMBERS {
                        round += 1;
                        continue;
                    }
                    let members = &groups[round][slot];
                    let consumer = members[index];
                    let reply = client.post(
                        "/claims",
                        &json!({
                            "consumers": [{
                                "uuid": consumer.to_string(),
                                "project_id": "race-project",
                                "user_id": "race-user",
                                "consumer_type": "INSTANCE"
                            }],
                            "query": {"resources": "VCPU:1,MEMORY_MB:128"},
                            "weighers": {"VCPU": 1.0},
                            "server_group": {
                                "policy": "anti-affinity",
                                "members": members.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                            }
                        }),
                    );
                    outcomes.push(Outcome {
                        round,
                        slot,
                        consumer,
                        status: reply.status,
                        code: reply.error_code(),
                        allocations: reply.body["claims"][0]["allocations"].clone(),
                    });
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("client thread"))
        .collect();

    let count = |status: u16, code: &str| {
        outcomes
            .iter()
            .filter(|outcome| outcome.status == status && outcome.code == code)
            .count()
    };
    let claimed = count(200, "");
    let affinity = count(409, "placement.claims.affinity");
    let no_candidates = count(409, "placement.claims.no_candidates");
    let contention = count(409, "placement.claims.contention");
    let unexpected = unexpected(
        &outcomes,
        &[
            "placement.claims.affinity",
            "placement.claims.no_candidates",
            "placement.claims.contention",
        ],
    );
    eprintln!(
        "claims: {PROCESSES} processes, {CLIENTS} clients, {} requests: 200 {claimed}, \
         409 affinity {affinity}, no_candidates {no_candidates}, contention {contention}, \
         unexpected {}",
        outcomes.len(),
        unexpected.len()
    );
    assert!(
        outcomes.iter().all(|outcome| outcome.status < 500),
        "no 5xx: {unexpected:?}"
    );
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert!(claimed > 0, "some claims succeed");
    assert!(affinity > 0, "groups fill their hosts");

    // Read back from the database: where each member is, and that every
    // refusal wrote nothing.
    let roots: HashMap<String, String> =
        admin.get("/resource_providers").body["resource_providers"]
            .as_array()
            .expect("providers")
            .iter()
            .map(|provider| {
                (
                    provider["uuid"].as_str().unwrap_or_default().to_owned(),
                    provider["root_provider_uuid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
    let mut hosts_of_group: HashMap<(usize, usize), HashSet<String>> = HashMap::new();
    let mut claimed_per_provider: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for outcome in &outcomes {
        let shown = admin.get(&format!("/allocations/{}", outcome.consumer));
        assert_eq!(shown.status, 200, "{:?}", shown.body);
        let allocations = shown.body["allocations"].as_object().expect("allocations");
        if outcome.status != 200 {
            assert!(
                allocations.is_empty(),
                "refused consumer {} ({}) has allocations {allocations:?}",
                outcome.consumer,
                outcome.code
            );
            continue;
        }
        assert_eq!(allocations.len(), 1, "{allocations:?}");
        for (provider, held) in allocations {
            assert_eq!(
                held["resources"],
                outcome.allocations[provider.as_str()]["resources"],
                "claim of {} as answered and as stored",
                outcome.consumer
            );
            let root = roots.get(provider).cloned().unwrap_or_default();
            assert!(!root.is_empty(), "unknown provider {provider}");
            assert!(
                hosts_of_group
                    .entry((outcome.round, outcome.slot))
                    .or_default()
                    .insert(root.clone()),
                "two members of group {}/{} on host {root}",
                outcome.round,
                outcome.slot
            );
            let sums = claimed_per_provider.entry(provider.clone()).or_default();
            for (class, amount) in held["resources"].as_object().expect("resources") {
                *sums.entry(class.clone()).or_default() += amount.as_i64().unwrap_or(0);
            }
        }
    }

    for (index, provider) in providers.iter().enumerate() {
        let capacity = capacities(&admin, provider);
        let used = usages(&admin, provider);
        for (class, used) in &used {
            let limit = capacity.get(class).copied().unwrap_or(0);
            assert!(
                *used <= limit,
                "provider {provider} over capacity in {class}: {used} > {limit}"
            );
        }
        let summed = claimed_per_provider.remove(provider).unwrap_or_default();
        for class in ["VCPU", "MEMORY_MB"] {
            assert_eq!(
                used.get(class).copied().unwrap_or(0),
                summed.get(class).copied().unwrap_or(0),
                "every 200 shows in the {class} usage of {provider}"
            );
        }
        if index >= LARGE {
            assert_eq!(
                used.get("VCPU").copied().unwrap_or(0),
                SMALL_VCPU_CAPACITY,
                "small host {provider} filled"
            );
        }
    }
    assert!(
        claimed_per_provider.is_empty(),
        "claims on unknown providers: {claimed_per_provider:?}"
    );
    let project = admin.get("/usages?project_id=race-project");
    assert_eq!(
        project.body["usages"]["INSTANCE"]["consumer_count"].as_u64(),
        Some(claimed as u64),
        "{:?}",
        project.body
    );
}

/// Claims without affinity rules are written in batches (one statement
/// for the claims a process received meanwhile): raced through several
/// processes until nothing fits, they fill every provider exactly, every
/// 200 shows in the usages, and a claim naming a consumer that exists is
/// refused and writes nothing.
#[test]
fn batched_claims_racing_on_several_processes_fill_capacity_exactly() {
    const PROVIDERS: usize = 6;
    const VCPU_PER_PROVIDER: i64 = 60;
    const PLAIN_CLIENTS: usize = 30;
    let database = TestDatabase::new();
    let processes: Vec<ServerProcess> = (0..PROCESSES)
        .map(|_| ServerProcess::start(&database.url(), 8))
        .collect();
    let admin = processes[0].client.clone();
    let providers: Vec<String> = (0..PROVIDERS)
        .map(|index| {
            provider_with_inventory(
                &admin,
                &format!("batch-{index}"),
                json!({
                    "VCPU": {"total": VCPU_PER_PROVIDER, "max_unit": 4},
                    "MEMORY_MB": {"total": 1_048_576, "max_unit": 65536}
                }),
            )
        })
        .collect();
    let claim = |client: &Client, consumer: Uuid| {
        client.post(
            "/claims",
            &json!({
                "consumers": [{
                    "uuid": consumer.to_string(),
                    "project_id": "batch-project",
                    "user_id": "batch-user",
                    "consumer_type": "INSTANCE"
                }],
                "query": {"resources": "VCPU:1,MEMORY_MB:64"},
                "weighers": {"VCPU": 1.0},
                "alternates": 2
            }),
        )
    };
    let deadline = Instant::now() + RUN;
    let workers: Vec<_> = (0..PLAIN_CLIENTS)
        .map(|worker| {
            let client = processes[worker % PROCESSES].client.clone();
            std::thread::spawn(move || {
                let mut outcomes: Vec<Outcome> = Vec::new();
                let mut duplicates: Vec<(u16, String)> = Vec::new();
                while Instant::now() < deadline {
                    let consumer = Uuid::new_v4();
                    let reply = claim(&client, consumer);
                    let code = reply.error_code();
                    let done = reply.status == 409 && code == "placement.claims.no_candidates";
                    if reply.status == 200 && outcomes.len().is_multiple_of(4) {
                        let again = claim(&client, consumer);
                        duplicates.push((again.status, again.error_code()));
                    }
                    outcomes.push(Outcome {
                        round: 0,
                        slot: worker,
                        consumer,
                        status: reply.status,
                        code,
                        allocations: reply.body["claims"][0]["allocations"].clone(),
                    });
                    if done {
                        break;
                    }
                }
                (outcomes, duplicates)
            })
        })
        .collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut duplicates: Vec<(u16, String)> = Vec::new();
    for worker in workers {
        let (mine, again) = worker.join().expect("client thread");
        outcomes.extend(mine);
        duplicates.extend(again);
    }

    let unexpected = unexpected(
        &outcomes,
        &[
            "placement.claims.no_candidates",
            "placement.claims.contention",
        ],
    );
    assert!(unexpected.is_empty(), "{unexpected:?}");
    // Placement comes first: once nothing fits, a duplicate is told so.
    for (status, code) in &duplicates {
        assert!(
            *status == 409
                && [
                    "placement.claims.consumer_exists",
                    "placement.claims.no_candidates"
                ]
                .contains(&code.as_str()),
            "a claim for an existing consumer: {status} {code}"
        );
    }
    assert!(
        duplicates
            .iter()
            .any(|(_, code)| code == "placement.claims.consumer_exists"),
        "{duplicates:?}"
    );
    let claimed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == 200).collect();
    eprintln!(
        "batched claims: {PROCESSES} processes, {PLAIN_CLIENTS} clients, {} requests, {} claimed, \
         {} duplicates refused",
        outcomes.len(),
        claimed.len(),
        duplicates.len()
    );
    assert_eq!(
        claimed.len() as i64,
        PROVIDERS as i64 * VCPU_PER_PROVIDER,
        "the claims fill the capacity exactly"
    );

    let mut claimed_per_provider: HashMap<String, i64> = HashMap::new();
    for outcome in &outcomes {
        let shown = admin.get(&format!("/allocations/{}", outcome.consumer));
        assert_eq!(shown.status, 200, "{:?}", shown.body);
        let allocations = shown.body["allocations"].as_object().expect("allocations");
        if outcome.status != 200 {
            assert!(
                allocations.is_empty(),
                "refused claim wrote {allocations:?}"
            );
            continue;
        }
        assert_eq!(allocations.len(), 1, "{allocations:?}");
        for (provider, held) in allocations {
            assert_eq!(
                held["resources"],
                outcome.allocations[provider.as_str()]["resources"],
                "claim as answered and as stored"
            );
            *claimed_per_provider.entry(provider.clone()).or_default() +=
                held["resources"]["VCPU"].as_i64().unwrap_or(0);
        }
    }
    for provider in &providers {
        let used = usages(&admin, provider);
        assert_eq!(used.get("VCPU").copied(), Some(VCPU_PER_PROVIDER));
        assert_eq!(
            claimed_per_provider.get(provider).copied(),
            Some(VCPU_PER_PROVIDER),
            "every 200 on {provider} shows in its usage"
        );
    }
    let project = admin.get("/usages?project_id=batch-project");
    assert_eq!(
        project.body["usages"]["INSTANCE"]["consumer_count"].as_u64(),
        Some(claimed.len() as u64),
        "{:?}",
        project.body
    );
}
