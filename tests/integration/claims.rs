//! Concurrent claims through several server processes on one database:
//! no provider may end up over capacity, and every accepted claim must
//! show in the usages, whether it was checked against a process's view
//! or read from the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::http::Client;
use crate::support::process::ServerProcess;
use crate::support::{TestDatabase, provider_with_inventory};

const PROCESSES: usize = 3;
const CLIENTS: usize = 32;
const PROVIDERS: usize = 4;
/// Capacity per provider: (total - reserved) * ratio = (12 - 2) * 2.0.
const VCPU_CAPACITY: i64 = 20;

#[test]
fn many_clients_on_several_processes_never_over_allocate() {
    let database = TestDatabase::new();
    let processes: Vec<ServerProcess> = (0..PROCESSES)
        .map(|_| ServerProcess::start(&database.url(), 8))
        .collect();
    let admin = processes[0].client.clone();
    let providers: Vec<String> = (0..PROVIDERS)
        .map(|index| {
            provider_with_inventory(
                &admin,
                &format!("compute-{index}"),
                json!({
                    "VCPU": {"total": 12, "reserved": 2, "allocation_ratio": 2.0},
                    "MEMORY_MB": {"total": 65536, "max_unit": 65536}
                }),
            )
        })
        .collect();
    let providers = Arc::new(providers);
    let clients: Vec<Client> = processes
        .iter()
        .map(|process| process.client.clone())
        .collect();
    let attempted = Arc::new(AtomicUsize::new(0));
    let conflicts = Arc::new(AtomicUsize::new(0));
    let capacity_refusals = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);

    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let client = clients[worker % clients.len()].clone();
            let providers = Arc::clone(&providers);
            let attempted = Arc::clone(&attempted);
            let conflicts = Arc::clone(&conflicts);
            let capacity_refusals = Arc::clone(&capacity_refusals);
            let unexpected = Arc::clone(&unexpected);
            std::thread::spawn(move || {
                let mut accepted = vec![0i64; providers.len()];
                let mut full = vec![false; providers.len()];
                let mut turn = worker;
                while !full.iter().all(|done| *done) && Instant::now() < deadline {
                    turn = (turn + 1) % providers.len();
                    if full[turn] {
                        continue;
                    }
                    let consumer = uuid::Uuid::new_v4();
                    let body = json!({
                        "allocations": {providers[turn].as_str(): {"resources": {"VCPU": 1, "MEMORY_MB": 256}}},
                        "project_id": "claims-project",
                        "user_id": "claims-user",
                        "consumer_generation": null,
                        "consumer_type": "INSTANCE"
                    });
                    // As a scheduler does: candidates first, which keeps
                    // this process's view fresh enough that most claims
                    // are checked against it and written in one
                    // statement, while the other processes' claims keep
                    // making it stale.
                    let candidates =
                        client.get("/allocation_candidates?resources=VCPU:1,MEMORY_MB:256");
                    if candidates.status != 200 {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                    attempted.fetch_add(1, Ordering::Relaxed);
                    let reply = client.put(&format!("/allocations/{consumer}"), &body);
                    match (reply.status, reply.error_code().as_str()) {
                        (204, _) => accepted[turn] += 1,
                        (409, "placement.concurrent_update") => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        (409, _) => {
                            capacity_refusals.fetch_add(1, Ordering::Relaxed);
                            full[turn] = true;
                        }
                        _ => {
                            unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                accepted
            })
        })
        .collect();

    let mut accepted = vec![0i64; PROVIDERS];
    for worker in workers {
        for (total, count) in accepted
            .iter_mut()
            .zip(worker.join().expect("client thread"))
        {
            *total += count;
        }
    }
    let accepted_total: i64 = accepted.iter().sum();
    eprintln!(
        "claims: {PROCESSES} processes, {CLIENTS} clients, attempted {}, accepted {accepted_total}, \
         409 generation conflicts {}, 409 capacity {}, unexpected {}",
        attempted.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
        capacity_refusals.load(Ordering::Relaxed),
        unexpected.load(Ordering::Relaxed),
    );
    assert_eq!(
        unexpected.load(Ordering::Relaxed),
        0,
        "only 204 and 409 are expected"
    );
    for (uuid, accepted) in providers.iter().zip(&accepted) {
        let usages = admin.get(&format!("/resource_providers/{uuid}/usages"));
        let used = usages.body["usages"]["VCPU"].as_i64().unwrap_or(-1);
        assert!(
            used <= VCPU_CAPACITY,
            "provider {uuid} over capacity: {used}"
        );
        assert_eq!(used, *accepted, "every 204 shows in the usage of {uuid}");
        assert_eq!(used, VCPU_CAPACITY, "clients stop only when {uuid} is full");
    }
    let project = admin.get("/usages?project_id=claims-project");
    assert_eq!(
        project.body["usages"]["INSTANCE"]["VCPU"].as_i64(),
        Some(accepted_total),
        "{:?}",
        project.body
    );
}
