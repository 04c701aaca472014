//! The switchover from upstream Placement 16.0 to placement-rs and back,
//! end to end: upstream's own API fills an upstream database (PostgreSQL
//! or MariaDB) with what a cloud has (nested trees, sharing providers,
//! custom classes and traits, consumers of every microversion era, their
//! histories); `placement import` copies it into an empty database of
//! ours and `import --verify` finds no difference; upstream on the source
//! and placement-rs on the copy then answer the same GETs alike;
//! `placement export` writes the copy into a fresh upstream schema, which
//! upstream then serves alike too. A change made afterwards is what
//! `--verify` reports, and both sides keep taking writes. Skipped, saying
//! so, without upstream's virtualenv (`../shared/bench/upstream/setup.sh`)
//! or, for the MariaDB source, without MariaDB.

use serde_json::{Map, Value, json};

use crate::support::http::{Client, Reply};
use crate::support::process::ServerProcess;
use crate::support::upstream::{
    self, BareDatabase, INCOMPLETE, Kind, Probe, Run, Upstream, UpstreamDatabase, placement,
};

/// The latest microversion both servers serve.
const LATEST: &str = "1.39";

// Providers. A compute node modelled with NUMA nodes and devices below
// them, one without NUMA nodes, flat ones, sharing providers, Ironic-like
// nodes of one custom class, one with nothing but traits and aggregates,
// and two that are deleted.
const CN1: &str = "10000000-0000-4000-8000-000000000001";
const CN1_NUMA0: &str = "10000000-0000-4000-8000-000000000002";
const CN1_NUMA1: &str = "10000000-0000-4000-8000-000000000003";
const CN1_NUMA0_FPGA: &str = "10000000-0000-4000-8000-000000000004";
const CN1_NUMA1_FPGA: &str = "10000000-0000-4000-8000-000000000005";
const CN2: &str = "10000000-0000-4000-8000-000000000006";
const CN2_NUMA0: &str = "10000000-0000-4000-8000-000000000007";
const CN2_NUMA1: &str = "10000000-0000-4000-8000-000000000008";
const CN2_NUMA0_FPGA: &str = "10000000-0000-4000-8000-000000000009";
/// Deleted: a leaf of a tree.
const CN2_NUMA1_FPGA: &str = "10000000-0000-4000-8000-000000000010";
const CN3: &str = "10000000-0000-4000-8000-000000000011";
const CN4: &str = "10000000-0000-4000-8000-000000000012";
const CN5: &str = "10000000-0000-4000-8000-000000000013";
const SS1: &str = "10000000-0000-4000-8000-000000000014";
const SS2: &str = "10000000-0000-4000-8000-000000000015";
const BM1: &str = "10000000-0000-4000-8000-000000000016";
const BM2: &str = "10000000-0000-4000-8000-000000000017";
const LONELY: &str = "10000000-0000-4000-8000-000000000018";
/// Deleted: a root that had inventory, traits, an aggregate and an
/// allocation once.
const DOOMED: &str = "10000000-0000-4000-8000-000000000019";

/// The providers still there at the end.
const LIVE_PROVIDERS: usize = 17;

const AGG_A: &str = "a0000000-0000-4000-8000-00000000000a";
const AGG_B: &str = "a0000000-0000-4000-8000-00000000000b";
const AGG_C: &str = "a0000000-0000-4000-8000-00000000000c";
/// Only the deleted provider was in it.
const AGG_D: &str = "a0000000-0000-4000-8000-00000000000d";

const PROJECT_A: &str = "6b0b2c3e9d8a4f1e8c7b6a5d4e3f2a01";
const PROJECT_B: &str = "6b0b2c3e9d8a4f1e8c7b6a5d4e3f2a02";
const PROJECT_C: &str = "6b0b2c3e9d8a4f1e8c7b6a5d4e3f2a03";
const USER_X: &str = "2c4e6a8b0d1f4a3c5e7a9b1d3f5a7c01";
const USER_Y: &str = "2c4e6a8b0d1f4a3c5e7a9b1d3f5a7c02";
const USER_Z: &str = "2c4e6a8b0d1f4a3c5e7a9b1d3f5a7c03";

/// Every project with the users that have consumers in it.
const OWNERS: &[(&str, &[&str])] = &[
    (PROJECT_A, &[USER_X, USER_Y]),
    (PROJECT_B, &[USER_Y, USER_Z]),
    (PROJECT_C, &[USER_X, USER_Y, USER_Z]),
    (INCOMPLETE, &[INCOMPLETE]),
];

/// Consumer `n`'s uuid; 1-18 are written, 99 never is.
fn consumer(n: u32) -> String {
    format!("c0000000-0000-4000-8000-{n:012}")
}

const CONSUMERS: &[u32] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 99,
];

#[test]
fn postgres_source_imports_verifies_and_exports_back() {
    switchover(Kind::Postgres);
}

#[test]
fn mariadb_source_imports_verifies_and_exports_back() {
    switchover(Kind::MariaDb);
}

fn switchover(kind: Kind) {
    let label = match kind {
        Kind::Postgres => "switchover from PostgreSQL",
        Kind::MariaDb => "switchover from MariaDB",
    };
    if let Some(reason) = upstream::unavailable(kind) {
        eprintln!("{label} SKIPPED: {reason}");
        return;
    }
    let probes = probes();

    // 1. Upstream fills its database through its API.
    let source = UpstreamDatabase::create(kind);
    let upstream = Upstream::start(&source);
    populate(&upstream.client);
    check_population(&upstream.client);
    // Both spellings of each kind are accepted; the switchover uses one
    // for the source and the other for the export.
    let source_url = match kind {
        Kind::Postgres => source.url(),
        Kind::MariaDb => format!("mysql+pymysql://root@127.0.0.1/{}", source.name),
    };

    // 2. Import into an empty database of ours, then verify.
    let target = BareDatabase::create();
    let import = placement(&target.url(), &["import", "--from", &source_url]);
    import.assert_success();
    for table in ["resource_providers", "allocations"] {
        assert!(
            import.stdout.contains(table),
            "the import's summary names no {table}: {}",
            import.describe()
        );
    }
    assert_no_differences(&placement(
        &target.url(),
        &["import", "--verify", "--from", &source_url],
    ));

    // 3. Upstream on the source and placement-rs on the copy answer alike.
    let ours = ServerProcess::start(&target.url(), 4);
    upstream::assert_same_answers(
        &format!("{label}, after import"),
        &upstream.client,
        &ours.client,
        &probes,
    );
    drop(upstream);

    // 4. Export into a fresh upstream schema on the same kind of server;
    // upstream serves it alike.
    let exported = UpstreamDatabase::create(kind);
    exported.sync_schema();
    let export_url = match kind {
        Kind::Postgres => exported.sqlalchemy_url(),
        Kind::MariaDb => exported.url(),
    };
    placement(&target.url(), &["export", "--to", &export_url]).assert_success();
    let again = placement(&target.url(), &["export", "--to", &export_url]);
    again.assert_refused();
    assert!(
        !again.stderr.trim().is_empty(),
        "a refused export gives no reason: {}",
        again.describe()
    );
    assert_no_differences(&placement(
        &target.url(),
        &["export", "--verify", "--to", &export_url],
    ));
    let upstream_again = Upstream::start(&exported);
    upstream::assert_same_answers(
        &format!("{label}, after export back"),
        &upstream_again.client,
        &ours.client,
        &probes,
    );

    // 5. A change on one side is what --verify reports, both ways.
    change_an_inventory(&ours.client, CN3);
    for verify in [
        placement(
            &target.url(),
            &["import", "--verify", "--from", &source_url],
        ),
        placement(&target.url(), &["export", "--verify", "--to", &export_url]),
    ] {
        verify.assert_refused();
        let differences = verify.lines_starting("difference: ");
        assert!(
            differences
                .iter()
                .any(|line| line.contains(CN3) || line.contains("cn3")),
            "no difference names provider {CN3} (cn3), whose DISK_GB inventory changed: {}",
            verify.describe()
        );
    }

    // 6. Both sides take new rows of every kind: ids and sequences were
    // carried over above what was copied.
    writes_still_work(&ours.client, "20000000-0000-4000-8000-000000000001", 1);
    writes_still_work(
        &upstream_again.client,
        "20000000-0000-4000-8000-000000000002",
        2,
    );
}

/// A verify that found nothing: exit 0, `no differences`, no difference
/// line.
fn assert_no_differences(run: &Run) {
    run.assert_success();
    assert!(
        run.stdout.contains("no differences") && run.lines_starting("difference: ").is_empty(),
        "verify should report no differences: {}",
        run.describe()
    );
}

fn expect(reply: &Reply, status: u16, what: &str) {
    assert_eq!(
        reply.status, status,
        "{what}: expected {status}, got {} {}",
        reply.status, reply.body
    );
}

fn inventory(total: i64, reserved: i64, min: i64, max: i64, step: i64, ratio: f64) -> Value {
    json!({
        "total": total,
        "reserved": reserved,
        "min_unit": min,
        "max_unit": max,
        "step_size": step,
        "allocation_ratio": ratio,
    })
}

fn provider_generation(client: &Client, uuid: &str) -> Value {
    let reply = client
        .at(LATEST)
        .get(&format!("/resource_providers/{uuid}"));
    expect(&reply, 200, &format!("GET provider {uuid}"));
    reply.body["generation"].clone()
}

/// The consumer's generation, null when it has no allocations.
fn consumer_generation(client: &Client, consumer: &str) -> Value {
    let reply = client.at(LATEST).get(&format!("/allocations/{consumer}"));
    expect(&reply, 200, &format!("GET allocations of {consumer}"));
    reply
        .body
        .get("consumer_generation")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Allocations in the dict form (1.12 on): provider -> resources.
fn claim(parts: &[(&str, &[(&str, i64)])]) -> Value {
    let mut allocations = Map::new();
    for (provider, resources) in parts {
        allocations.insert(
            (*provider).to_owned(),
            json!({ "resources": resources_of(resources) }),
        );
    }
    Value::Object(allocations)
}

/// Allocations in the list form of 1.0-1.11.
fn claim_list(parts: &[(&str, &[(&str, i64)])]) -> Value {
    parts
        .iter()
        .map(|(provider, resources)| {
            json!({
                "resource_provider": { "uuid": provider },
                "resources": resources_of(resources),
            })
        })
        .collect()
}

fn resources_of(resources: &[(&str, i64)]) -> Value {
    resources
        .iter()
        .map(|(class, amount)| ((*class).to_owned(), json!(amount)))
        .collect::<Map<String, Value>>()
        .into()
}

/// Writes a consumer's allocations as a client of 1.38 on does (with
/// `consumer_type`), or of 1.28-1.37 (without, so the type is unknown),
/// with the consumer's current generation.
fn put_allocations(
    client: &Client,
    consumer: &str,
    allocations: Value,
    (project, user): (&str, &str),
    consumer_type: Option<&str>,
) {
    let mut body = json!({
        "allocations": allocations,
        "project_id": project,
        "user_id": user,
        "consumer_generation": consumer_generation(client, consumer),
    });
    let version = match consumer_type {
        Some(name) => {
            body["consumer_type"] = json!(name);
            LATEST
        }
        None => "1.28",
    };
    let reply = client
        .at(version)
        .put(&format!("/allocations/{consumer}"), &body);
    expect(
        &reply,
        204,
        &format!("PUT allocations of {consumer} at {version}"),
    );
}

struct ProviderSpec {
    uuid: &'static str,
    name: &'static str,
    parent: Option<&'static str>,
    inventories: Value,
    traits: &'static [&'static str],
    aggregates: &'static [&'static str],
}

fn provider_specs() -> Vec<ProviderSpec> {
    let numa = |uuid: &'static str,
                name: &'static str,
                parent: &'static str,
                vcpu: Value,
                memory: Value| ProviderSpec {
        uuid,
        name,
        parent: Some(parent),
        inventories: json!({ "VCPU": vcpu, "MEMORY_MB": memory }),
        traits: &["HW_NUMA_ROOT"],
        aggregates: &[],
    };
    let fpga = |uuid: &'static str,
                name: &'static str,
                parent: &'static str,
                total: i64,
                traits: &'static [&'static str]| ProviderSpec {
        uuid,
        name,
        parent: Some(parent),
        inventories: json!({ "CUSTOM_FPGA": inventory(total, 0, 1, 1, 1, 1.0) }),
        traits,
        aggregates: &[],
    };
    let gold = |uuid: &'static str, name: &'static str| ProviderSpec {
        uuid,
        name,
        parent: None,
        inventories: json!({ "CUSTOM_BAREMETAL_GOLD": inventory(1, 0, 1, 1, 1, 1.0) }),
        traits: &["CUSTOM_GOLD"],
        aggregates: &[],
    };
    vec![
        ProviderSpec {
            uuid: CN1,
            name: "cn1",
            parent: None,
            inventories: json!({}),
            traits: &["HW_CPU_X86_AVX2", "HW_CPU_X86_SSE", "CUSTOM_GOLD"],
            aggregates: &[AGG_A],
        },
        numa(
            CN1_NUMA0,
            "cn1_numa0",
            CN1,
            inventory(16, 1, 1, 8, 1, 16.0),
            inventory(32768, 512, 128, 16384, 128, 1.5),
        ),
        numa(
            CN1_NUMA1,
            "cn1_numa1",
            CN1,
            inventory(16, 0, 1, 8, 1, 4.0),
            inventory(32768, 1024, 256, 16384, 256, 1.1),
        ),
        fpga(
            CN1_NUMA0_FPGA,
            "cn1_numa0_fpga",
            CN1_NUMA0,
            2,
            &["CUSTOM_FPGA_INTEL"],
        ),
        fpga(CN1_NUMA1_FPGA, "cn1_numa1_fpga", CN1_NUMA1, 1, &[]),
        ProviderSpec {
            uuid: CN2,
            name: "cn2",
            parent: None,
            inventories: json!({ "DISK_GB": inventory(100, 0, 1, 100, 1, 1.0) }),
            traits: &["HW_CPU_X86_AVX2", "CUSTOM_RACK_1"],
            aggregates: &[AGG_A, AGG_B],
        },
        numa(
            CN2_NUMA0,
            "cn2_numa0",
            CN2,
            inventory(8, 0, 1, 8, 1, 2.0),
            inventory(16384, 0, 1, 16384, 1, 1.0),
        ),
        numa(
            CN2_NUMA1,
            "cn2_numa1",
            CN2,
            inventory(8, 2, 1, 8, 1, 2.0),
            inventory(16384, 0, 1, 16384, 1, 1.0),
        ),
        fpga(
            CN2_NUMA0_FPGA,
            "cn2_numa0_fpga",
            CN2_NUMA0,
            2,
            &["CUSTOM_FPGA_INTEL"],
        ),
        fpga(CN2_NUMA1_FPGA, "cn2_numa1_fpga", CN2_NUMA1, 1, &[]),
        ProviderSpec {
            uuid: CN3,
            name: "cn3",
            parent: None,
            inventories: json!({
                "VCPU": inventory(8, 0, 1, 8, 1, 4.0),
                "MEMORY_MB": inventory(16384, 2048, 1, 8192, 1, 1.5),
                "DISK_GB": inventory(500, 10, 5, 200, 5, 1.0),
            }),
            traits: &["HW_CPU_X86_SSE", "STORAGE_DISK_SSD"],
            aggregates: &[AGG_A, AGG_C],
        },
        ProviderSpec {
            uuid: CN4,
            name: "cn4",
            parent: None,
            inventories: json!({
                "VCPU": inventory(4, 0, 1, 4, 1, 1.0),
                "MEMORY_MB": inventory(8192, 0, 1, 8192, 1, 1.0),
                "DISK_GB": inventory(200, 0, 1, 200, 1, 1.0),
            }),
            traits: &["COMPUTE_STATUS_DISABLED", "CUSTOM_RACK_1"],
            aggregates: &[AGG_B],
        },
        ProviderSpec {
            uuid: CN5,
            name: "cn5",
            parent: None,
            inventories: json!({
                "VCPU": inventory(10, 0, 1, 10, 1, 1.1),
                "MEMORY_MB": inventory(4096, 0, 1, 2048, 1, 1.0),
            }),
            traits: &["HW_CPU_X86_AVX512F", "HW_CPU_X86_AVX2"],
            aggregates: &[],
        },
        ProviderSpec {
            uuid: SS1,
            name: "shared-storage-1",
            parent: None,
            inventories: json!({ "DISK_GB": inventory(10000, 100, 1, 2000, 1, 1.0) }),
            traits: &["MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD"],
            aggregates: &[AGG_A],
        },
        ProviderSpec {
            uuid: SS2,
            name: "shared-storage-2",
            parent: None,
            inventories: json!({
                "DISK_GB": inventory(2000, 0, 1, 2000, 1, 1.0),
                "IPV4_ADDRESS": inventory(254, 4, 1, 1, 1, 1.0),
            }),
            traits: &["MISC_SHARES_VIA_AGGREGATE"],
            aggregates: &[AGG_B],
        },
        gold(BM1, "baremetal-1"),
        gold(BM2, "baremetal-2"),
        ProviderSpec {
            uuid: LONELY,
            name: "lonely",
            parent: None,
            inventories: json!({}),
            traits: &["CUSTOM_RACK_1"],
            aggregates: &[AGG_C],
        },
        ProviderSpec {
            uuid: DOOMED,
            name: "doomed",
            parent: None,
            inventories: json!({ "VCPU": inventory(4, 0, 1, 4, 1, 1.0) }),
            traits: &["CUSTOM_GOLD"],
            aggregates: &[AGG_D],
        },
    ]
}

/// Every provider made, deleted ones included.
fn all_providers() -> Vec<&'static str> {
    provider_specs().iter().map(|spec| spec.uuid).collect()
}

fn set_traits(client: &Client, uuid: &str, traits: &[&str]) {
    let body = json!({
        "resource_provider_generation": provider_generation(client, uuid),
        "traits": traits,
    });
    let reply = client
        .at(LATEST)
        .put(&format!("/resource_providers/{uuid}/traits"), &body);
    expect(&reply, 200, &format!("PUT traits of {uuid}"));
}

/// Fills upstream through its API, at the microversions the clients of
/// each era used.
fn populate(client: &Client) {
    let latest = client.at(LATEST);
    // Custom classes and traits, one of each deleted again: ids with a gap.
    for name in ["CUSTOM_FPGA", "CUSTOM_UNUSED", "CUSTOM_BAREMETAL_GOLD"] {
        let reply = latest.put(&format!("/resource_classes/{name}"), &Value::Null);
        expect(&reply, 201, &format!("PUT resource class {name}"));
    }
    expect(
        &latest.delete("/resource_classes/CUSTOM_UNUSED"),
        204,
        "DELETE resource class",
    );
    let reply = latest.post("/resource_classes", &json!({ "name": "CUSTOM_MAGIC" }));
    expect(&reply, 201, "POST resource class CUSTOM_MAGIC");
    for name in [
        "CUSTOM_FPGA_INTEL",
        "CUSTOM_OLD",
        "CUSTOM_RACK_1",
        "CUSTOM_GOLD",
    ] {
        let reply = latest.put(&format!("/traits/{name}"), &Value::Null);
        expect(&reply, 201, &format!("PUT trait {name}"));
    }
    expect(&latest.delete("/traits/CUSTOM_OLD"), 204, "DELETE trait");

    for spec in provider_specs() {
        let mut body = json!({ "uuid": spec.uuid, "name": spec.name });
        if let Some(parent) = spec.parent {
            body["parent_provider_uuid"] = json!(parent);
        }
        let reply = latest.post("/resource_providers", &body);
        expect(&reply, 200, &format!("POST provider {}", spec.name));
        if spec
            .inventories
            .as_object()
            .is_some_and(|map| !map.is_empty())
        {
            let body = json!({
                "resource_provider_generation": provider_generation(client, spec.uuid),
                "inventories": spec.inventories,
            });
            let reply = latest.put(
                &format!("/resource_providers/{}/inventories", spec.uuid),
                &body,
            );
            expect(&reply, 200, &format!("PUT inventories of {}", spec.name));
        }
        if !spec.traits.is_empty() {
            set_traits(client, spec.uuid, spec.traits);
        }
        if !spec.aggregates.is_empty() {
            let body = json!({
                "resource_provider_generation": provider_generation(client, spec.uuid),
                "aggregates": spec.aggregates,
            });
            let reply = latest.put(
                &format!("/resource_providers/{}/aggregates", spec.uuid),
                &body,
            );
            expect(&reply, 200, &format!("PUT aggregates of {}", spec.name));
        }
    }
    // Traits rewritten (generations move on), a provider renamed.
    set_traits(client, CN3, &["HW_CPU_X86_SSE"]);
    set_traits(client, CN3, &["HW_CPU_X86_SSE", "STORAGE_DISK_SSD"]);
    let reply = latest.put(
        &format!("/resource_providers/{CN5}"),
        &json!({ "name": "compute-5.example.org" }),
    );
    expect(&reply, 200, "rename cn5");

    let instance = Some("INSTANCE");
    let migration = Some("MIGRATION");
    let c = consumer;
    // c1: resized twice after its creation.
    for (vcpu, memory) in [(2, 2048), (3, 3072), (4, 3072)] {
        put_allocations(
            client,
            &c(1),
            claim(&[
                (CN1_NUMA0, &[("VCPU", vcpu), ("MEMORY_MB", memory)]),
                (SS1, &[("DISK_GB", 20)]),
            ]),
            (PROJECT_A, USER_X),
            instance,
        );
    }
    put_allocations(
        client,
        &c(2),
        claim(&[
            (CN1_NUMA1, &[("VCPU", 4), ("MEMORY_MB", 4096)]),
            (CN1_NUMA1_FPGA, &[("CUSTOM_FPGA", 1)]),
            (SS1, &[("DISK_GB", 40)]),
        ]),
        (PROJECT_A, USER_X),
        instance,
    );
    put_allocations(
        client,
        &c(3),
        claim(&[
            (CN1_NUMA0, &[("VCPU", 1), ("MEMORY_MB", 512)]),
            (CN1_NUMA0_FPGA, &[("CUSTOM_FPGA", 1)]),
        ]),
        (PROJECT_A, USER_Y),
        instance,
    );
    put_allocations(
        client,
        &c(4),
        claim(&[
            (CN2_NUMA0, &[("VCPU", 2), ("MEMORY_MB", 1024)]),
            (SS2, &[("DISK_GB", 30), ("IPV4_ADDRESS", 1)]),
        ]),
        (PROJECT_B, USER_Y),
        instance,
    );
    for vcpu in [2, 3] {
        put_allocations(
            client,
            &c(5),
            claim(&[
                (CN2_NUMA1, &[("VCPU", vcpu), ("MEMORY_MB", 1024)]),
                (SS1, &[("DISK_GB", 10)]),
            ]),
            (PROJECT_B, USER_Z),
            migration,
        );
    }
    put_allocations(
        client,
        &c(6),
        claim(&[(CN3, &[("VCPU", 2), ("MEMORY_MB", 2048), ("DISK_GB", 20)])]),
        (PROJECT_C, USER_Z),
        instance,
    );
    put_allocations(
        client,
        &c(7),
        claim(&[
            (CN4, &[("VCPU", 1), ("MEMORY_MB", 512)]),
            (SS2, &[("DISK_GB", 10)]),
        ]),
        (PROJECT_C, USER_Z),
        instance,
    );
    put_allocations(
        client,
        &c(8),
        claim(&[(BM2, &[("CUSTOM_BAREMETAL_GOLD", 1)])]),
        (PROJECT_A, USER_X),
        instance,
    );
    // c9: written at 1.28, so of no type.
    put_allocations(
        client,
        &c(9),
        claim(&[(CN3, &[("VCPU", 1), ("MEMORY_MB", 1024)])]),
        (PROJECT_B, USER_Y),
        None,
    );
    // c10 at 1.12, c11 at 1.8: owners but no generations.
    let reply = client.at("1.12").put(
        &format!("/allocations/{}", c(10)),
        &json!({
            "allocations": claim(&[(CN5, &[("VCPU", 2), ("MEMORY_MB", 1024)])]),
            "project_id": PROJECT_C,
            "user_id": USER_X,
        }),
    );
    expect(&reply, 204, "PUT allocations at 1.12");
    let reply = client.at("1.8").put(
        &format!("/allocations/{}", c(11)),
        &json!({
            "allocations": claim_list(&[(CN5, &[("VCPU", 1)])]),
            "project_id": PROJECT_A,
            "user_id": USER_Y,
        }),
    );
    expect(&reply, 204, "PUT allocations at 1.8");
    // c12 at 1.0 and c13 at 1.7: no owner, so upstream's incomplete one.
    let reply = client.at("1.0").put(
        &format!("/allocations/{}", c(12)),
        &json!({ "allocations": claim_list(&[(CN4, &[("VCPU", 1)])]) }),
    );
    expect(&reply, 204, "PUT allocations at 1.0");
    let reply = client.at("1.7").put(
        &format!("/allocations/{}", c(13)),
        &json!({
            "allocations": claim_list(&[
                (CN2_NUMA0, &[("MEMORY_MB", 512)]),
                (CN2_NUMA0_FPGA, &[("CUSTOM_FPGA", 1)]),
            ]),
        }),
    );
    expect(&reply, 204, "PUT allocations at 1.7");
    // c14: allocations deleted again.
    put_allocations(
        client,
        &c(14),
        claim(&[(CN3, &[("VCPU", 1)])]),
        (PROJECT_A, USER_X),
        instance,
    );
    expect(
        &latest.delete(&format!("/allocations/{}", c(14))),
        204,
        "DELETE allocations",
    );
    // c15 migrates from cn3 to cn2: the migration (c16) holds the source.
    put_allocations(
        client,
        &c(15),
        claim(&[(CN3, &[("VCPU", 1), ("MEMORY_MB", 512)])]),
        (PROJECT_B, USER_Z),
        instance,
    );
    let reply = latest.post(
        "/allocations",
        &json!({
            c(15): {
                "allocations": claim(&[(CN2_NUMA1, &[("VCPU", 1), ("MEMORY_MB", 512)])]),
                "project_id": PROJECT_B,
                "user_id": USER_Z,
                "consumer_generation": consumer_generation(client, &c(15)),
                "consumer_type": "INSTANCE",
            },
            c(16): {
                "allocations": claim(&[(CN3, &[("VCPU", 1), ("MEMORY_MB", 512)])]),
                "project_id": PROJECT_B,
                "user_id": USER_Z,
                "consumer_generation": null,
                "consumer_type": "MIGRATION",
            },
        }),
    );
    expect(&reply, 204, "POST /allocations (a migration)");
    // c17 changes owner and type.
    put_allocations(
        client,
        &c(17),
        claim(&[(CN1_NUMA1, &[("VCPU", 1), ("MEMORY_MB", 256)])]),
        (PROJECT_A, USER_X),
        instance,
    );
    put_allocations(
        client,
        &c(17),
        claim(&[(CN1_NUMA1, &[("VCPU", 2), ("MEMORY_MB", 512)])]),
        (PROJECT_C, USER_Y),
        migration,
    );
    put_allocations(
        client,
        &c(17),
        claim(&[
            (CN1_NUMA0, &[("VCPU", 1), ("MEMORY_MB", 256)]),
            (SS1, &[("DISK_GB", 5)]),
        ]),
        (PROJECT_C, USER_Y),
        instance,
    );
    // c18 used the doomed provider; then both go.
    put_allocations(
        client,
        &c(18),
        claim(&[(DOOMED, &[("VCPU", 1)])]),
        (PROJECT_A, USER_Y),
        instance,
    );
    expect(
        &latest.delete(&format!("/allocations/{}", c(18))),
        204,
        "DELETE allocations",
    );
    for uuid in [DOOMED, CN2_NUMA1_FPGA] {
        expect(
            &latest.delete(&format!("/resource_providers/{uuid}")),
            204,
            &format!("DELETE provider {uuid}"),
        );
    }
}

/// The population is what the comparisons rest on: if it were not there,
/// two empty servers would agree.
fn check_population(client: &Client) {
    let latest = client.at(LATEST);
    let reply = latest.get("/resource_providers");
    expect(&reply, 200, "GET /resource_providers");
    let count = reply.body["resource_providers"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(count, LIVE_PROVIDERS, "providers upstream holds");
    let reply = client
        .at("1.12")
        .get(&format!("/allocations/{}", consumer(12)));
    expect(&reply, 200, "GET allocations of a pre-1.8 consumer");
    assert_eq!(
        reply.body["project_id"],
        json!(INCOMPLETE),
        "{}",
        reply.body
    );
    for (query, may_fail) in candidate_queries() {
        let reply = latest.get(&format!("/allocation_candidates?{query}"));
        if may_fail && reply.status >= 500 {
            continue;
        }
        expect(&reply, 200, &format!("GET /allocation_candidates?{query}"));
        let found = reply.body["allocation_requests"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(found > 0, "upstream finds no candidate for {query}");
    }
}

/// `GET /allocation_candidates` queries, each with whether upstream 16.0
/// may answer it with a 500 (forbidden traits in the unsuffixed group
/// with nested providers on PostgreSQL).
fn candidate_queries() -> Vec<(String, bool)> {
    let plain = |query: String| (query, false);
    vec![
        plain("resources=VCPU:1,MEMORY_MB:512".to_owned()),
        plain("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10".to_owned()),
        plain("resources=DISK_GB:100".to_owned()),
        plain("resources=VCPU:1,IPV4_ADDRESS:1".to_owned()),
        plain("resources=CUSTOM_BAREMETAL_GOLD:1".to_owned()),
        plain("resources=VCPU:1&required=HW_CPU_X86_AVX2".to_owned()),
        plain("resources=VCPU:1&required=in:HW_CPU_X86_SSE,HW_CPU_X86_AVX512F".to_owned()),
        ("resources=VCPU:1&required=!CUSTOM_RACK_1".to_owned(), true),
        plain("resources1=VCPU:1&required1=!CUSTOM_RACK_1".to_owned()),
        plain(format!("resources=VCPU:1,DISK_GB:5&member_of={AGG_B}")),
        plain(format!("resources=VCPU:1&member_of=in:{AGG_A},{AGG_C}")),
        plain(format!("resources=VCPU:1&member_of=!{AGG_B}")),
        plain(format!("resources=VCPU:1&in_tree={CN1}")),
        plain("resources=VCPU:1&root_required=CUSTOM_GOLD".to_owned()),
        (
            "resources=VCPU:1&root_required=!COMPUTE_STATUS_DISABLED".to_owned(),
            true,
        ),
        plain("resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate".to_owned()),
        plain("resources1=VCPU:1&resources2=VCPU:1&group_policy=none".to_owned()),
        plain(
            "resources=VCPU:1,MEMORY_MB:256&resources1=CUSTOM_FPGA:1\
             &required1=CUSTOM_FPGA_INTEL&group_policy=isolate"
                .to_owned(),
        ),
        plain(
            "resources_CPU=VCPU:1,MEMORY_MB:512&resources_ACC=CUSTOM_FPGA:1\
             &same_subtree=_CPU,_ACC&group_policy=none"
                .to_owned(),
        ),
        plain("resources=VCPU:1&required=HW_NUMA_ROOT".to_owned()),
    ]
}

/// The GETs both servers must answer alike.
fn probes() -> Vec<Probe> {
    let mut probes = Vec::new();
    for query in [
        String::new(),
        format!("?in_tree={CN1}"),
        format!("?member_of=in:{AGG_A},{AGG_B}"),
        "?required=HW_CPU_X86_AVX2".to_owned(),
        "?required=!CUSTOM_RACK_1".to_owned(),
        "?resources=DISK_GB:100".to_owned(),
        "?resources=VCPU:2,MEMORY_MB:1024".to_owned(),
        "?name=cn3".to_owned(),
        format!("?uuid={SS1}"),
    ] {
        probes.push(Probe::new(LATEST, format!("/resource_providers{query}")));
    }
    probes.push(Probe::new("1.0", "/resource_providers"));
    for uuid in all_providers() {
        let base = format!("/resource_providers/{uuid}");
        for tail in [
            "",
            "/inventories",
            "/usages",
            "/traits",
            "/aggregates",
            "/allocations",
        ] {
            probes.push(Probe::new(LATEST, format!("{base}{tail}")));
        }
        probes.push(Probe::new("1.0", base.clone()));
        probes.push(Probe::new("1.0", format!("{base}/allocations")));
    }
    for n in CONSUMERS {
        for version in [LATEST, "1.28", "1.12", "1.0"] {
            probes.push(Probe::new(
                version,
                format!("/allocations/{}", consumer(*n)),
            ));
        }
    }
    for (project, users) in OWNERS {
        let mut queries = vec![format!("project_id={project}")];
        queries.extend(
            users
                .iter()
                .map(|user| format!("project_id={project}&user_id={user}")),
        );
        for query in &queries {
            probes.push(Probe::new("1.37", format!("/usages?{query}")));
            probes.push(Probe::new(LATEST, format!("/usages?{query}")).upstream_may_fail());
            for consumer_type in ["INSTANCE", "MIGRATION", "all", "unknown"] {
                probes.push(
                    Probe::new(
                        LATEST,
                        format!("/usages?{query}&consumer_type={consumer_type}"),
                    )
                    .upstream_may_fail(),
                );
            }
        }
    }
    for path in [
        "/resource_classes",
        "/resource_classes/CUSTOM_FPGA",
        "/resource_classes/CUSTOM_MAGIC",
        "/resource_classes/CUSTOM_UNUSED",
        "/resource_classes/VCPU",
        "/traits",
        "/traits?name=startswith:CUSTOM_",
        "/traits?associated=true",
        "/traits?associated=false",
        "/traits/CUSTOM_GOLD",
        "/traits/CUSTOM_OLD",
    ] {
        probes.push(Probe::new(LATEST, path));
    }
    for (query, may_fail) in candidate_queries() {
        let probe = Probe::new(LATEST, format!("/allocation_candidates?{query}"));
        probes.push(if may_fail {
            probe.upstream_may_fail()
        } else {
            probe
        });
    }
    probes
}

/// Sets `uuid`'s DISK_GB total to another value.
fn change_an_inventory(client: &Client, uuid: &str) {
    let path = format!("/resource_providers/{uuid}/inventories/DISK_GB");
    let reply = client.at(LATEST).get(&path);
    expect(&reply, 200, "GET DISK_GB inventory");
    let mut body = reply.body.clone();
    let total = body["total"].as_i64().expect("total") + 100;
    body["total"] = json!(total);
    let reply = client.at(LATEST).put(&path, &body);
    expect(&reply, 200, "PUT DISK_GB inventory");
}

/// New rows of every table through `client`: provider, class, trait,
/// aggregate, inventory, project, user, consumer, allocation.
fn writes_still_work(client: &Client, provider: &str, n: u32) {
    let latest = client.at(LATEST);
    let class = format!("CUSTOM_AFTER_SWITCH_{n}");
    let trait_name = format!("CUSTOM_AFTER_SWITCH_{n}");
    expect(
        &latest.put(&format!("/resource_classes/{class}"), &Value::Null),
        201,
        "a new resource class",
    );
    expect(
        &latest.put(&format!("/traits/{trait_name}"), &Value::Null),
        201,
        "a new trait",
    );
    let reply = latest.post(
        "/resource_providers",
        &json!({ "uuid": provider, "name": format!("after-switch-{n}") }),
    );
    expect(&reply, 200, "a new provider");
    let reply = latest.put(
        &format!("/resource_providers/{provider}/inventories"),
        &json!({
            "resource_provider_generation": provider_generation(client, provider),
            "inventories": {
                "VCPU": inventory(4, 0, 1, 4, 1, 1.0),
                class.clone(): inventory(2, 0, 1, 2, 1, 1.0),
            },
        }),
    );
    expect(&reply, 200, "inventories of the new provider");
    set_traits(client, provider, &[&trait_name, "HW_CPU_X86_AVX2"]);
    let reply = latest.put(
        &format!("/resource_providers/{provider}/aggregates"),
        &json!({
            "resource_provider_generation": provider_generation(client, provider),
            "aggregates": [format!("b0000000-0000-4000-8000-{n:012}"), AGG_A],
        }),
    );
    expect(&reply, 200, "aggregates of the new provider");
    let fresh = format!("d0000000-0000-4000-8000-{n:012}");
    put_allocations(
        client,
        &fresh,
        claim(&[(provider, &[("VCPU", 1), (class.as_str(), 1)])]),
        ("a-project-after-the-switch", "a-user-after-the-switch"),
        Some("INSTANCE"),
    );
    // An existing consumer takes more.
    put_allocations(
        client,
        &consumer(6),
        claim(&[
            (CN3, &[("VCPU", 2), ("MEMORY_MB", 2048), ("DISK_GB", 20)]),
            (provider, &[("VCPU", 1)]),
        ]),
        (PROJECT_C, USER_Z),
        Some("INSTANCE"),
    );
    let reply = latest.get(&format!("/resource_providers/{provider}/usages"));
    expect(&reply, 200, "usages of the new provider");
    assert_eq!(
        reply.body["usages"],
        json!({ "VCPU": 2, class.clone(): 1 }),
        "usages of the new provider"
    );
    let reply = client
        .at("1.12")
        .get("/usages?project_id=a-project-after-the-switch");
    expect(&reply, 200, "usages of the new project");
    assert_eq!(reply.body["usages"], json!({ "VCPU": 1, class: 1 }));
}
