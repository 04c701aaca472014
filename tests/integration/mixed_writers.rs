//! Many clients writing to the same few providers at once, every kind of
//! provider write mixed with claims, custom traits and classes created and
//! deleted, a provider deleted and created again: each request ends in a
//! 2xx or a 4xx (never a 5xx: no deadlock, no unmapped error), and no
//! provider ends up over capacity.

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use serde_json::{Value, json};

use crate::support::http::{Client, Reply};
use crate::support::{Count, TestServer, provider_with_inventory};

const PROVIDERS: usize = 3;
const CONSUMERS: usize = 6;
const CLIENTS: u64 = 8;
const REQUESTS_PER_CLIENT: usize = 250;

/// A small deterministic generator, one per client.
struct Dice(u64);

impl Dice {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn generation(client: &Client, provider: &str) -> Value {
    client.get(&format!("/resource_providers/{provider}")).body["generation"].clone()
}

/// One request of a randomly chosen kind; its name and reply.
fn one_request(client: &Client, dice: &mut Dice, providers: &[String]) -> (&'static str, Reply) {
    let provider = &providers[dice.below(providers.len())];
    let consumer = format!(
        "00000000-0000-0000-0000-00000000000{}",
        dice.below(CONSUMERS)
    );
    let base = format!("/resource_providers/{provider}");
    match dice.below(16) {
        0 => (
            "PUT inventories",
            client.put(
                &format!("{base}/inventories"),
                &json!({"resource_provider_generation": generation(client, provider),
                        "inventories": {"VCPU": {"total": 4 + dice.below(2) * 4},
                                        "DISK_GB": {"total": 100},
                                        "CUSTOM_MIXED": {"total": 10}}}),
            ),
        ),
        1 => (
            "PUT one inventory",
            client.put(
                &format!("{base}/inventories/VCPU"),
                &json!({"resource_provider_generation": generation(client, provider),
                        "total": 4 + dice.below(3) * 2}),
            ),
        ),
        2 => (
            "DELETE one inventory",
            client.delete(&format!("{base}/inventories/DISK_GB")),
        ),
        3 => (
            "POST inventory",
            client.post(
                &format!("{base}/inventories"),
                &json!({"resource_class": "DISK_GB", "total": 100}),
            ),
        ),
        4 => {
            let chosen = ["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE"][dice.below(2)];
            (
                "PUT traits",
                client.put(
                    &format!("{base}/traits"),
                    &json!({"resource_provider_generation": generation(client, provider),
                            "traits": [chosen]}),
                ),
            )
        }
        5 => ("DELETE traits", client.delete(&format!("{base}/traits"))),
        6 => (
            "PUT aggregates",
            client.put(
                &format!("{base}/aggregates"),
                &json!({"resource_provider_generation": generation(client, provider),
                        "aggregates": [format!("00000000-0000-0000-0000-0000000000a{}",
                                               dice.below(3))]}),
            ),
        ),
        7 => (
            "DELETE allocations",
            client.delete(&format!("/allocations/{consumer}")),
        ),
        8 => (
            "GET allocation_candidates",
            client.get("/allocation_candidates?resources=VCPU:1&limit=3"),
        ),
        10 => ("PUT trait", client.put("/traits/CUSTOM_MIXED", &json!({}))),
        11 => ("DELETE trait", client.delete("/traits/CUSTOM_MIXED")),
        12 => (
            "PUT traits with a custom one",
            client.put(
                &format!("{base}/traits"),
                &json!({"resource_provider_generation": generation(client, provider),
                        "traits": ["CUSTOM_MIXED"]}),
            ),
        ),
        13 => (
            "PUT resource class",
            client.put("/resource_classes/CUSTOM_MIXED", &json!({})),
        ),
        14 => (
            "DELETE resource class",
            client.delete("/resource_classes/CUSTOM_MIXED"),
        ),
        15 => {
            // The last provider comes and goes; the others stay.
            let leaving = &providers[providers.len() - 1];
            let reply = client.delete(&format!("/resource_providers/{leaving}"));
            if reply.status == 204 || reply.status == 404 {
                (
                    "POST resource provider",
                    client.post(
                        "/resource_providers",
                        &json!({"name": "coming-and-going", "uuid": leaving}),
                    ),
                )
            } else {
                ("DELETE resource provider", reply)
            }
        }
        _ => (
            "PUT allocations",
            client.put(
                &format!("/allocations/{consumer}"),
                &json!({"allocations": {provider: {"resources": {"VCPU": 1 + dice.below(2)}}},
                        "project_id": "project", "user_id": "user",
                        "consumer_generation": null, "consumer_type": "INSTANCE"}),
            ),
        ),
    }
}

#[test]
fn concurrent_writers_of_one_provider_get_no_5xx_and_never_over_allocate() {
    let server = TestServer::start();
    let client = server.client();
    let providers: Vec<String> = (0..PROVIDERS)
        .map(|index| {
            let uuid = uuid::Uuid::new_v4().to_string();
            let created = client.post(
                "/resource_providers",
                &json!({"name": format!("shared-{index}"), "uuid": uuid}),
            );
            assert_eq!(created.status, 200, "{:?}", created.body);
            uuid
        })
        .collect();

    let workers: Vec<_> = (0..CLIENTS)
        .map(|seed| {
            let (client, providers) = (client.clone(), providers.clone());
            std::thread::spawn(move || {
                let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (seed + 1));
                let mut failures = Vec::new();
                for _ in 0..REQUESTS_PER_CLIENT {
                    let (kind, reply) = one_request(&client, &mut dice, &providers);
                    if reply.status >= 500 {
                        failures.push(format!("{kind}: {} {:?}", reply.status, reply.body));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "{} 5xx: {failures:#?}", failures.len());

    for provider in &providers {
        let inventories = client.get(&format!("/resource_providers/{provider}/inventories"));
        let usages = client.get(&format!("/resource_providers/{provider}/usages"));
        let usages = usages.body["usages"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (class, used) in usages {
            let used = used.as_i64().unwrap_or(0);
            let inventory = &inventories.body["inventories"][&class];
            let capacity = (inventory["total"].as_i64().unwrap_or(0)
                - inventory["reserved"].as_i64().unwrap_or(0)) as f64
                * inventory["allocation_ratio"].as_f64().unwrap_or(0.0);
            assert!(
                used as f64 <= capacity,
                "{provider} {class}: {used} used, capacity {capacity}"
            );
        }
    }
}

/// A claim and the delete of its provider, started together, end one
/// after the other: the claim finds no provider, or the delete finds the
/// claim's allocations. No foreign key holds allocations to their
/// provider; the writers' lock order does.
#[test]
fn a_claim_racing_the_delete_of_its_provider_leaves_no_orphan() {
    const ROUNDS: usize = 60;
    let server = TestServer::start();
    let client = server.client();
    let mut both = 0;
    for round in 0..ROUNDS {
        let provider = provider_with_inventory(
            &client,
            &format!("racing-{round}"),
            json!({"VCPU": {"total": 8}}),
        );
        let start = Arc::new(Barrier::new(2));
        let claim = {
            let (client, start, provider) = (client.clone(), start.clone(), provider.clone());
            std::thread::spawn(move || {
                start.wait();
                client.put(
                    &format!("/allocations/{}", uuid::Uuid::new_v4()),
                    &json!({"allocations": {provider: {"resources": {"VCPU": 1}}},
                            "project_id": "project", "user_id": "user",
                            "consumer_generation": null, "consumer_type": "INSTANCE"}),
                )
            })
        };
        start.wait();
        let deleted = client.delete(&format!("/resource_providers/{provider}"));
        let claimed = claim.join().expect("claim thread");
        match (claimed.status, deleted.status) {
            (204, 409) => assert_eq!(deleted.error_code(), "placement.resource_provider.inuse"),
            (400 | 404 | 409, 204) => {}
            other => panic!("round {round}: claim and delete answered {other:?}"),
        }
        if claimed.status == 204 {
            both += 1;
        }
    }
    let orphans: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM allocations a \
         WHERE NOT EXISTS (SELECT 1 FROM resource_providers rp \
                           WHERE rp.id = a.resource_provider_id)",
    )
    .get_result(&mut server.database.connection())
    .expect("count orphans");
    assert_eq!(orphans.count, 0, "allocations without their provider");
    eprintln!("claim first in {both} of {ROUNDS} rounds");
}
