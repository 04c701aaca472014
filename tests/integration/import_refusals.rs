//! `placement import` on small upstream databases built row by row (the
//! schema from upstream's `placement-manage db sync`, the standard data as
//! upstream's API writes it, then SQL): what it refuses (a schema behind
//! alembic revision 422ece571366, a target that is not empty, orphaned
//! rows) without writing anything, what it repairs (allocations without a
//! consumer row, skipped orphans) and what it reads as it is (nova-era
//! MariaDB tables in latin1 with an extra column and single-precision
//! ratios). Skipped, saying so, without upstream's virtualenv
//! (`../shared/bench/upstream/setup.sh`) or, for MariaDB, without MariaDB.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::http::Client;
use crate::support::process::ServerProcess;
use crate::support::upstream::{
    self, BareDatabase, INCOMPLETE, Kind, Run, UpstreamDatabase, mariadb, placement,
};

const RP1: &str = "30000000-0000-4000-8000-000000000001";
const RP2: &str = "30000000-0000-4000-8000-000000000002";
const AGG1: &str = "a3000000-0000-4000-8000-000000000001";
/// Two consumers with rows, of project-1 and user-1.
const C1: &str = "c3000000-0000-4000-8000-000000000001";
const C2: &str = "c3000000-0000-4000-8000-000000000002";
/// Consumers whose project (C4) or user (C5) has no row.
const C4: &str = "c3000000-0000-4000-8000-000000000004";
const C5: &str = "c3000000-0000-4000-8000-000000000005";
/// Allocations with no consumer row.
const C9: &str = "c3000000-0000-4000-8000-000000000009";

/// `true`, after saying so, when `test` cannot run on `kind` here.
fn skipped(test: &str, kind: Kind) -> bool {
    match upstream::unavailable(kind) {
        Some(reason) => {
            eprintln!("{test} ({kind:?}) SKIPPED: {reason}");
            true
        }
        None => false,
    }
}

/// Rows as upstream writes them, in SQL both PostgreSQL and MariaDB take:
/// a root (rp-1, generation 3) with a child (rp-2), VCPU (id 0) and
/// MEMORY_MB (1) on the root, a custom class (10000) on the child, a custom
/// and a standard trait and an aggregate on the root, and two consumers
/// (one of no type, one INSTANCE) with three allocations.
fn base_rows() -> String {
    format!(
        "INSERT INTO projects (id, external_id, created_at) VALUES (1, 'project-1', CURRENT_TIMESTAMP);
         INSERT INTO users (id, external_id, created_at) VALUES (1, 'user-1', CURRENT_TIMESTAMP);
         INSERT INTO consumer_types (id, name, created_at) VALUES (1, 'INSTANCE', CURRENT_TIMESTAMP);
         INSERT INTO resource_classes (id, name, created_at)
             VALUES (10000, 'CUSTOM_WIDGET', CURRENT_TIMESTAMP);
         INSERT INTO traits (name, created_at) VALUES ('CUSTOM_SHINY', CURRENT_TIMESTAMP);
         INSERT INTO resource_providers
             (id, uuid, name, generation, root_provider_id, parent_provider_id, created_at)
             VALUES (1, '{RP1}', 'rp-1', 3, 1, NULL, CURRENT_TIMESTAMP);
         INSERT INTO resource_providers
             (id, uuid, name, generation, root_provider_id, parent_provider_id, created_at)
             VALUES (2, '{RP2}', 'rp-2', 1, 1, 1, CURRENT_TIMESTAMP);
         INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved,
             min_unit, max_unit, step_size, allocation_ratio, created_at) VALUES
             (1, 0, 16, 2, 1, 8, 1, 4.0, CURRENT_TIMESTAMP),
             (1, 1, 32768, 512, 256, 16384, 256, 1.5, CURRENT_TIMESTAMP),
             (2, 10000, 4, 0, 1, 2, 1, 1.0, CURRENT_TIMESTAMP);
         INSERT INTO placement_aggregates (id, uuid, created_at)
             VALUES (1, '{AGG1}', CURRENT_TIMESTAMP);
         INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at)
             VALUES (1, 1, CURRENT_TIMESTAMP);
         INSERT INTO resource_provider_traits (trait_id, resource_provider_id, created_at)
             SELECT id, 1, CURRENT_TIMESTAMP FROM traits
             WHERE name IN ('CUSTOM_SHINY', 'HW_CPU_X86_AVX2');
         INSERT INTO consumers (id, uuid, project_id, user_id, generation, consumer_type_id,
             created_at) VALUES
             (1, '{C1}', 1, 1, 2, NULL, CURRENT_TIMESTAMP),
             (2, '{C2}', 1, 1, 1, 1, CURRENT_TIMESTAMP);
         INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used,
             created_at) VALUES
             (1, '{C1}', 0, 2, CURRENT_TIMESTAMP),
             (2, '{C1}', 10000, 1, CURRENT_TIMESTAMP),
             (1, '{C2}', 1, 1024, CURRENT_TIMESTAMP);"
    )
}

/// One orphan of each kind: allocations of a provider (999) and of a class
/// (777) that have no row, inventories likewise (998, 776), a provider's
/// link to an aggregate (55) that has no row, and consumers whose project
/// (42) or user (43) has none.
fn orphan_rows() -> String {
    format!(
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used,
             created_at) VALUES
             (999, '{C1}', 0, 1, CURRENT_TIMESTAMP),
             (1, '{C2}', 777, 1, CURRENT_TIMESTAMP);
         INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved,
             min_unit, max_unit, step_size, allocation_ratio, created_at) VALUES
             (998, 0, 4, 0, 1, 4, 1, 1.0, CURRENT_TIMESTAMP),
             (1, 776, 4, 0, 1, 4, 1, 1.0, CURRENT_TIMESTAMP);
         INSERT INTO resource_provider_aggregates (resource_provider_id, aggregate_id, created_at)
             VALUES (1, 55, CURRENT_TIMESTAMP);
         INSERT INTO consumers (id, uuid, project_id, user_id, generation, consumer_type_id,
             created_at) VALUES
             (4, '{C4}', 42, 1, 0, NULL, CURRENT_TIMESTAMP),
             (5, '{C5}', 1, 43, 0, NULL, CURRENT_TIMESTAMP);"
    )
}

/// An upstream database at upstream's head with its standard data and
/// `base_rows`.
fn small_source(kind: Kind) -> UpstreamDatabase {
    let source = UpstreamDatabase::create(kind);
    source.sync_schema();
    source.sync_standard_data();
    source.execute(&base_rows());
    source
}

fn import(target: &BareDatabase, from: &str, extra: &[&str]) -> Run {
    let mut args = vec!["import", "--from", from];
    args.extend_from_slice(extra);
    placement(&target.url(), &args)
}

/// Nothing of the source's reached the target.
fn assert_target_empty(target: &BareDatabase, after: &Run) {
    for table in [
        "resource_providers",
        "consumers",
        "allocations",
        "inventories",
    ] {
        assert_eq!(
            target.count(table),
            0,
            "the refused import left rows in {table}: {}",
            after.describe()
        );
    }
}

/// Provider -> its resources in a `GET /allocations/{consumer}` body.
fn resources_by_provider(body: &Value) -> BTreeMap<String, Value> {
    body["allocations"]
        .as_object()
        .map(|allocations| {
            allocations
                .iter()
                .map(|(provider, entry)| (provider.clone(), entry["resources"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn get_ok(client: &Client, version: &str, path: &str) -> Value {
    let reply = client.at(version).get(path);
    assert_eq!(
        reply.status, 200,
        "GET {path} at {version}: {} {}",
        reply.status, reply.body
    );
    reply.body
}

fn sorted_strings(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    items
}

#[test]
fn old_schema_is_refused_with_the_command_to_run() {
    for kind in [Kind::Postgres, Kind::MariaDb] {
        if skipped("old_schema_is_refused_with_the_command_to_run", kind) {
            continue;
        }
        let source = small_source(kind);
        source.execute("UPDATE alembic_version SET version_num = 'b5c396305c25'");
        let from = match kind {
            Kind::Postgres => source.sqlalchemy_url(),
            Kind::MariaDb => source.url(),
        };
        let target = BareDatabase::create();
        let run = import(&target, &from, &[]);
        run.assert_refused();
        for fragment in ["422ece571366", "placement-manage db sync"] {
            assert!(
                run.stderr.contains(fragment),
                "the refusal ({kind:?}) should name {fragment:?}: {}",
                run.describe()
            );
        }
        assert_target_empty(&target, &run);
    }
}

#[test]
fn a_non_empty_target_is_refused() {
    if skipped("a_non_empty_target_is_refused", Kind::Postgres) {
        return;
    }
    let source = small_source(Kind::Postgres);
    let from = source.sqlalchemy_url();

    // The same import twice: the second finds the first's rows.
    let target = BareDatabase::create();
    import(&target, &from, &[]).assert_success();
    let counts = |target: &BareDatabase| {
        [
            "resource_providers",
            "consumers",
            "allocations",
            "inventories",
        ]
        .map(|t| target.count(t))
    };
    let before = counts(&target);
    assert_eq!(before, [2, 2, 3, 3], "rows after the first import");
    let again = import(&target, &from, &[]);
    again.assert_refused();
    assert!(
        again.stderr.contains("not empty"),
        "the refusal should say the target is not empty: {}",
        again.describe()
    );
    assert_eq!(counts(&target), before, "the refused import changed rows");

    // A database placement-rs already serves, with a provider of its own.
    let served = BareDatabase::create();
    {
        let server = ServerProcess::start(&served.url(), 2);
        let reply = server.client.at("1.39").post(
            "/resource_providers",
            &json!({ "name": "already-here", "uuid": "30000000-0000-4000-8000-0000000000ff" }),
        );
        assert_eq!(reply.status, 200, "create a provider: {}", reply.body);
    }
    let run = import(&served, &from, &[]);
    run.assert_refused();
    assert!(
        run.stderr.contains("not empty"),
        "the refusal should say the target is not empty: {}",
        run.describe()
    );
    assert_eq!(served.count("resource_providers"), 1, "{}", run.describe());
    assert_eq!(
        served.count_where("resource_providers", &format!("uuid = '{RP1}'")),
        0,
        "the refused import wrote a provider: {}",
        run.describe()
    );
}

#[test]
fn orphaned_rows_are_reported_and_nothing_is_written() {
    if skipped(
        "orphaned_rows_are_reported_and_nothing_is_written",
        Kind::Postgres,
    ) {
        return;
    }
    let source = small_source(Kind::Postgres);
    source.execute(&orphan_rows());
    let target = BareDatabase::create();
    let run = import(&target, &source.sqlalchemy_url(), &[]);
    run.assert_refused();
    assert!(
        run.stderr.contains("--skip-orphans"),
        "the refusal should offer --skip-orphans: {}",
        run.describe()
    );
    let orphan_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("orphan"))
        .collect();
    for (table, rows) in [
        ("allocations", 2),
        ("inventories", 2),
        ("resource_provider_aggregates", 1),
        ("consumers", 2),
    ] {
        let lines = orphan_lines
            .iter()
            .filter(|line| line.contains(table))
            .count();
        assert!(
            lines >= rows,
            "{rows} orphaned rows of {table}, {lines} lines report them: {}",
            run.describe()
        );
    }
    assert!(
        orphan_lines.len() >= 7,
        "7 orphaned rows, {} lines mention orphans: {}",
        orphan_lines.len(),
        run.describe()
    );
    assert_target_empty(&target, &run);
}

#[test]
fn skip_orphans_imports_the_rest() {
    if skipped("skip_orphans_imports_the_rest", Kind::Postgres) {
        return;
    }
    let source = small_source(Kind::Postgres);
    source.execute(&orphan_rows());
    let target = BareDatabase::create();
    let run = import(&target, &source.url(), &["--skip-orphans"]);
    run.assert_success();
    assert!(
        run.stdout.contains("skipped"),
        "the summary should say what was skipped: {}",
        run.describe()
    );
    assert_eq!(
        target.count_where("consumers", &format!("uuid IN ('{C4}', '{C5}')")),
        0,
        "consumers without a project or user row were imported"
    );

    let server = ServerProcess::start(&target.url(), 2);
    let client = &server.client;
    let providers = get_ok(client, "1.39", "/resource_providers");
    let mut seen: Vec<(String, Value, Value)> = providers["resource_providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|provider| {
            (
                provider["uuid"].as_str().unwrap_or_default().to_owned(),
                provider["generation"].clone(),
                provider["parent_provider_uuid"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (RP1.to_owned(), json!(3), Value::Null),
            (RP2.to_owned(), json!(1), json!(RP1)),
        ],
        "providers after the import"
    );

    let inventories = get_ok(
        client,
        "1.39",
        &format!("/resource_providers/{RP1}/inventories"),
    );
    assert_eq!(
        inventories,
        json!({
            "resource_provider_generation": 3,
            "inventories": {
                "VCPU": {
                    "total": 16, "reserved": 2, "min_unit": 1, "max_unit": 8,
                    "step_size": 1, "allocation_ratio": 4.0,
                },
                "MEMORY_MB": {
                    "total": 32768, "reserved": 512, "min_unit": 256, "max_unit": 16384,
                    "step_size": 256, "allocation_ratio": 1.5,
                },
            },
        }),
        "rp-1's inventories, without the one of a class that has no row"
    );
    let aggregates = get_ok(
        client,
        "1.19",
        &format!("/resource_providers/{RP1}/aggregates"),
    );
    assert_eq!(
        sorted_strings(&aggregates["aggregates"]),
        vec![AGG1.to_owned()],
        "rp-1's aggregates, without the one that has no row"
    );
    let traits = get_ok(client, "1.6", &format!("/resource_providers/{RP1}/traits"));
    assert_eq!(
        sorted_strings(&traits["traits"]),
        vec!["CUSTOM_SHINY".to_owned(), "HW_CPU_X86_AVX2".to_owned()]
    );

    let c1 = get_ok(client, "1.28", &format!("/allocations/{C1}"));
    assert_eq!(
        resources_by_provider(&c1),
        BTreeMap::from([
            (RP1.to_owned(), json!({ "VCPU": 2 })),
            (RP2.to_owned(), json!({ "CUSTOM_WIDGET": 1 })),
        ]),
        "C1's allocations, without the one on a provider that has no row"
    );
    assert_eq!(
        (
            &c1["consumer_generation"],
            &c1["project_id"],
            &c1["user_id"]
        ),
        (&json!(2), &json!("project-1"), &json!("user-1"))
    );
    let c2 = get_ok(client, "1.38", &format!("/allocations/{C2}"));
    assert_eq!(
        resources_by_provider(&c2),
        BTreeMap::from([(RP1.to_owned(), json!({ "MEMORY_MB": 1024 }))]),
        "C2's allocations, without the one of a class that has no row"
    );
    assert_eq!(c2["consumer_type"], json!("INSTANCE"));
    assert_eq!(c2["consumer_generation"], json!(1));

    let usages = get_ok(client, "1.39", &format!("/resource_providers/{RP1}/usages"));
    assert_eq!(usages["usages"], json!({ "VCPU": 2, "MEMORY_MB": 1024 }));
    let usages = get_ok(client, "1.9", "/usages?project_id=project-1");
    assert_eq!(
        usages["usages"],
        json!({ "VCPU": 2, "MEMORY_MB": 1024, "CUSTOM_WIDGET": 1 })
    );
}

#[test]
fn allocations_without_a_consumer_row_get_an_incomplete_consumer() {
    if skipped(
        "allocations_without_a_consumer_row_get_an_incomplete_consumer",
        Kind::Postgres,
    ) {
        return;
    }
    let source = small_source(Kind::Postgres);
    source.execute(&format!(
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used,
             created_at) VALUES
             (1, '{C9}', 0, 1, CURRENT_TIMESTAMP),
             (1, '{C9}', 1, 256, CURRENT_TIMESTAMP);"
    ));
    let target = BareDatabase::create();
    let run = import(&target, &source.sqlalchemy_url(), &[]);
    run.assert_success();
    assert!(
        run.stdout.contains("incomplete consumer"),
        "the summary should tell of the incomplete consumer made: {}",
        run.describe()
    );

    let server = ServerProcess::start(&target.url(), 2);
    let client = &server.client;
    let c9 = get_ok(client, "1.12", &format!("/allocations/{C9}"));
    assert_eq!(
        resources_by_provider(&c9),
        BTreeMap::from([(RP1.to_owned(), json!({ "VCPU": 1, "MEMORY_MB": 256 }))])
    );
    assert_eq!(
        (&c9["project_id"], &c9["user_id"]),
        (&json!(INCOMPLETE), &json!(INCOMPLETE)),
        "the consumer made for allocations without one: {c9}"
    );
    let c9 = get_ok(client, "1.38", &format!("/allocations/{C9}"));
    assert_eq!(c9["consumer_generation"], json!(0), "{c9}");
    // Upstream's create_incomplete_consumers gives no type.
    assert_eq!(c9["consumer_type"], json!("unknown"), "{c9}");
    let usages = get_ok(client, "1.9", &format!("/usages?project_id={INCOMPLETE}"));
    assert_eq!(usages["usages"], json!({ "VCPU": 1, "MEMORY_MB": 256 }));
    // The other consumers are as they were.
    let c1 = get_ok(client, "1.28", &format!("/allocations/{C1}"));
    assert_eq!(
        (&c1["project_id"], &c1["consumer_generation"]),
        (&json!("project-1"), &json!(2))
    );
    // Generation 0 is what the next write must name.
    let reply = client.at("1.28").put(
        &format!("/allocations/{C9}"),
        &json!({
            "allocations": { RP1: { "resources": { "VCPU": 2 } } },
            "project_id": "project-1",
            "user_id": "user-1",
            "consumer_generation": 0,
        }),
    );
    assert_eq!(
        reply.status, 204,
        "rewrite C9 at generation 0: {}",
        reply.body
    );
}

#[test]
fn mysql_latin1_tables_with_an_extra_column_import() {
    if skipped(
        "mysql_latin1_tables_with_an_extra_column_import",
        Kind::MariaDb,
    ) {
        return;
    }
    let source = UpstreamDatabase::create(Kind::MariaDb);
    source.sync_schema();
    source.sync_standard_data();
    // As nova_api made these tables: latin1, and a column placement never
    // had.
    let mut sql =
        String::from("ALTER TABLE resource_providers ADD COLUMN can_host INT DEFAULT 0;\n");
    for table in [
        "resource_providers",
        "inventories",
        "allocations",
        "consumers",
        "projects",
        "users",
        "resource_provider_aggregates",
        "placement_aggregates",
    ] {
        sql.push_str(&format!(
            "ALTER TABLE {table} CONVERT TO CHARACTER SET latin1;\n"
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO projects (id, external_id, created_at) VALUES (1, 'project-1', NOW());
         INSERT INTO users (id, external_id, created_at) VALUES (1, 'user-1', NOW());
         INSERT INTO resource_providers
             (id, uuid, name, generation, root_provider_id, parent_provider_id, can_host,
              created_at)
             VALUES (1, '{RP1}', 'café-1', 4, 1, NULL, 1, NOW());
         INSERT INTO inventories (resource_provider_id, resource_class_id, total, reserved,
             min_unit, max_unit, step_size, allocation_ratio, created_at) VALUES
             (1, 0, 10, 0, 1, 10, 1, 1.1, NOW()),
             (1, 1, 4096, 256, 1, 4096, 1, 16.0, NOW());
         INSERT INTO consumers (id, uuid, project_id, user_id, generation, consumer_type_id,
             created_at) VALUES (1, '{C1}', 1, 1, 1, NULL, NOW());
         INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used,
             created_at) VALUES (1, '{C1}', 0, 3, NOW());"
    ));
    source.execute(&sql);
    // The premises: the name is stored in latin1, the ratio in single
    // precision.
    let stored = mariadb(
        Some(&source.name),
        "SELECT HEX(name), allocation_ratio * 1 FROM resource_providers \
         JOIN inventories ON inventories.resource_provider_id = resource_providers.id \
         WHERE resource_class_id = 0",
    )
    .expect("read the source back");
    assert!(
        stored.starts_with("636166E92D31\t1.10000002"),
        "the source should hold café-1 in latin1 and 1.1 as a FLOAT: {stored:?}"
    );

    let target = BareDatabase::create();
    import(&target, &source.url(), &[]).assert_success();
    let server = ServerProcess::start(&target.url(), 2);
    let client = &server.client;
    let provider = get_ok(client, "1.39", &format!("/resource_providers/{RP1}"));
    assert_eq!(provider["name"], json!("café-1"), "{provider}");
    assert_eq!(provider["generation"], json!(4), "{provider}");
    let inventories = get_ok(
        client,
        "1.39",
        &format!("/resource_providers/{RP1}/inventories"),
    );
    let ratio = &inventories["inventories"]["VCPU"]["allocation_ratio"];
    assert_eq!(
        ratio.as_f64(),
        Some(1.1),
        "VCPU allocation_ratio should read 1.1, as upstream shows it: {inventories}"
    );
    assert_eq!(
        inventories["inventories"]["MEMORY_MB"]["allocation_ratio"].as_f64(),
        Some(16.0),
        "{inventories}"
    );
    let c1 = get_ok(client, "1.28", &format!("/allocations/{C1}"));
    assert_eq!(
        resources_by_provider(&c1),
        BTreeMap::from([(RP1.to_owned(), json!({ "VCPU": 3 }))])
    );
    assert_eq!(c1["project_id"], json!("project-1"));
    // The name is found by what it is.
    let found = get_ok(client, "1.39", "/resource_providers?name=caf%C3%A9-1");
    assert_eq!(
        found["resource_providers"]
            .as_array()
            .map(|providers| providers.len()),
        Some(1),
        "{found}"
    );
}
