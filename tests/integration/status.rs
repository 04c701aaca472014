//! `placement status upgrade check` against real databases: healthy, with
//! upstream-era data, behind on migrations or standard data, with a JSON or
//! broken policy file, and unreachable.

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use placement::policy::Defaults;
use placement::status::{Code, Report, upgrade_check};

use crate::support::TestDatabase;

/// A policy file of its own for one test, removed when it goes out of scope.
struct PolicyFile(PathBuf);

impl PolicyFile {
    fn new(extension: &str, text: &str) -> PolicyFile {
        let path = std::env::temp_dir().join(format!(
            "placement-status-{}.{extension}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, text).expect("write policy file");
        PolicyFile(path)
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Each check's name and verdict, in order.
fn verdicts(report: &Report) -> Vec<(String, Code)> {
    match report {
        Report::Checked(results) => results
            .iter()
            .map(|result| (result.name.clone(), result.code))
            .collect(),
        Report::Error(message) => panic!("the checks did not run: {message}"),
    }
}

/// The details of the check called `name`.
fn details<'a>(report: &'a Report, name: &str) -> Option<&'a str> {
    match report {
        Report::Checked(results) => results
            .iter()
            .find(|result| result.name == name)
            .and_then(|result| result.details.as_deref()),
        Report::Error(_) => None,
    }
}

/// Every check with `Code::Success` but those named in `except`.
fn all_succeed_but(except: &[(&str, Code)]) -> Vec<(String, Code)> {
    [
        "Missing Root Provider IDs",
        "Incomplete Consumers",
        "Policy File JSON to YAML Migration",
        "Database Schema",
        "Standard Resource Classes and Traits",
        "Policy File",
    ]
    .iter()
    .map(|name| {
        let code = except
            .iter()
            .find(|(failing, _)| failing == name)
            .map_or(Code::Success, |(_, code)| *code);
        ((*name).to_owned(), code)
    })
    .collect()
}

#[test]
fn a_freshly_migrated_database_passes_every_check() {
    let database = TestDatabase::new();
    let policy = PolicyFile::new(
        "yaml",
        "\"placement:resource_providers:list\": \"role:admin\"\n",
    );
    let report = upgrade_check(
        &database.url(),
        std::slice::from_ref(&policy.0),
        Defaults::Secure,
    );
    assert_eq!(verdicts(&report), all_succeed_but(&[]));
    assert_eq!(report.exit_code(), 0);
    assert_eq!(
        report.render_table(),
        "\
+---------------------------------------------+
| Upgrade Check Results                       |
+---------------------------------------------+
| Check: Missing Root Provider IDs            |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+
| Check: Incomplete Consumers                 |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+
| Check: Policy File JSON to YAML Migration   |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+
| Check: Database Schema                      |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+
| Check: Standard Resource Classes and Traits |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+
| Check: Policy File                          |
| Result: Success                             |
| Details: None                               |
+---------------------------------------------+"
    );
    assert_eq!(
        report.render_json(),
        r#"{"name": "Upgrade Check Results", "checks": [{"check": "Missing Root Provider IDs", "result": 0, "details": null}, {"check": "Incomplete Consumers", "result": 0, "details": null}, {"check": "Policy File JSON to YAML Migration", "result": 0, "details": null}, {"check": "Database Schema", "result": 0, "details": null}, {"check": "Standard Resource Classes and Traits", "result": 0, "details": null}, {"check": "Policy File", "result": 0, "details": null}]}"#
    );
}

#[test]
fn allocations_without_a_consumer_row_are_a_warning_with_their_count() {
    let database = TestDatabase::new();
    // Three consumers' allocations, only the first with its consumers row;
    // the second has two allocations and counts once.
    database
        .connection()
        .batch_execute(
            "INSERT INTO resource_providers (id, uuid, name, root_provider_id) \
                 VALUES (1, gen_random_uuid(), 'compute', 1); \
             INSERT INTO projects (id, external_id) VALUES (1, 'project'); \
             INSERT INTO users (id, external_id) VALUES (1, 'user'); \
             INSERT INTO consumers (uuid, project_id, user_id) \
                 VALUES ('11111111-1111-1111-1111-111111111111', 1, 1); \
             INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used) \
                 VALUES (1, '11111111-1111-1111-1111-111111111111', 0, 1), \
                        (1, '22222222-2222-2222-2222-222222222222', 0, 1), \
                        (1, '22222222-2222-2222-2222-222222222222', 1, 512), \
                        (1, '33333333-3333-3333-3333-333333333333', 0, 2);",
        )
        .expect("insert upstream-era allocations");
    let report = upgrade_check(&database.url(), &[], Defaults::Secure);
    assert_eq!(
        verdicts(&report),
        all_succeed_but(&[("Incomplete Consumers", Code::Warning)])
    );
    assert_eq!(
        details(&report, "Incomplete Consumers"),
        Some(
            "There are 2 incomplete consumers table records for existing allocations. \
             Run upstream's \"placement-manage db online_data_migrations\" command on the \
             database this data came from, then copy it again: this server has no equivalent."
        )
    );
    assert_eq!(report.exit_code(), 1);
    assert!(
        report.render_table().contains(
            "| Check: Incomplete Consumers                                          |\n\
             | Result: Warning                                                      |\n\
             | Details: There are 2 incomplete consumers table records for existing |\n\
             |   allocations. Run upstream's \"placement-manage db                   |\n"
        ),
        "{}",
        report.render_table()
    );
}

#[test]
fn a_json_policy_file_is_a_failure() {
    let database = TestDatabase::new();
    let policy = PolicyFile::new(
        "yaml",
        "{\"placement:resource_providers:list\": \"role:admin\"}\n",
    );
    let report = upgrade_check(
        &database.url(),
        std::slice::from_ref(&policy.0),
        Defaults::Secure,
    );
    // JSON is YAML too: the server would load it, so only the migration
    // check fails.
    assert_eq!(
        verdicts(&report),
        all_succeed_but(&[("Policy File JSON to YAML Migration", Code::Failure)])
    );
    assert!(
        details(&report, "Policy File JSON to YAML Migration")
            .is_some_and(|text| text.starts_with("Your policy file is JSON-formatted")),
    );
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn a_policy_file_the_server_would_refuse_is_a_failure() {
    let database = TestDatabase::new();
    let policy = PolicyFile::new(
        "yaml",
        "\"placement:resource_providers:list\": \"rule:nope\"\n",
    );
    let report = upgrade_check(
        &database.url(),
        std::slice::from_ref(&policy.0),
        Defaults::Secure,
    );
    assert_eq!(
        verdicts(&report),
        all_succeed_but(&[("Policy File", Code::Failure)])
    );
    assert_eq!(
        details(&report, "Policy File"),
        Some(
            "policy rule \"placement:resource_providers:list\" references undefined rule \"nope\""
        )
    );
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn a_missing_migration_is_a_failure_naming_placement_migrate() {
    let database = TestDatabase::new();
    database
        .connection()
        .batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261121050000'")
        .expect("forget a migration");
    let report = upgrade_check(&database.url(), &[], Defaults::Secure);
    assert_eq!(
        verdicts(&report),
        all_succeed_but(&[("Database Schema", Code::Failure)])
    );
    assert_eq!(
        details(&report, "Database Schema"),
        Some(
            "1 database migration is not applied: 2026-11-21-050000_claim_within_view. \
             Run the \"placement migrate\" command."
        )
    );
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn missing_standard_names_are_a_warning() {
    let database = TestDatabase::new();
    database
        .connection()
        .batch_execute(
            "DELETE FROM resource_classes WHERE name = 'VGPU'; \
             DELETE FROM traits WHERE name IN ('HW_CPU_X86_AVX', 'HW_CPU_X86_AVX2');",
        )
        .expect("drop standard names");
    let report = upgrade_check(&database.url(), &[], Defaults::Secure);
    assert_eq!(
        verdicts(&report),
        all_succeed_but(&[("Standard Resource Classes and Traits", Code::Warning)])
    );
    assert_eq!(
        details(&report, "Standard Resource Classes and Traits"),
        Some(
            "1 standard resource class is missing: VGPU. \
             2 standard traits are missing: HW_CPU_X86_AVX, HW_CPU_X86_AVX2. \
             The \"placement migrate\" command or the server's next start adds them."
        )
    );
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn an_unreachable_database_is_an_error_with_exit_code_255() {
    // Nothing listens on port 1; the pool gives up after its timeout.
    let report = upgrade_check(
        "postgres://placement@127.0.0.1:1/placement",
        &[],
        Defaults::Secure,
    );
    assert!(matches!(report, Report::Error(_)), "{report:?}");
    assert_eq!(report.exit_code(), 255);
    assert!(
        report
            .render_table()
            .starts_with("Error:\ndatabase unavailable"),
        "{}",
        report.render_table()
    );
}

/// `placement status upgrade check [--json]` as an operator runs it.
fn run_command(database_url: &str, json: bool) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_placement"));
    command.args(["status", "upgrade", "check"]);
    if json {
        command.arg("--json");
    }
    let output = command
        .env("OS_PLACEMENT_DATABASE__CONNECTION", database_url)
        .env("OS_API__AUTH_STRATEGY", "noauth2")
        .env("OS_PLACEMENT_CONFIG_DIR", env!("CARGO_TARGET_TMPDIR"))
        .env("OS_SERVER__LOG_FILTER", "error")
        .output()
        .expect("run placement status");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_command_exits_0_when_healthy_and_1_with_an_incomplete_consumer() {
    let database = TestDatabase::new();
    let (code, table) = run_command(&database.url(), false);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.starts_with("+----"), "{table}");
    assert!(table.contains("| Check: Incomplete Consumers"), "{table}");
    database
        .connection()
        .batch_execute(
            "INSERT INTO resource_providers (id, uuid, name, root_provider_id) \
                 VALUES (1, gen_random_uuid(), 'compute', 1); \
             INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used) \
                 VALUES (1, '22222222-2222-2222-2222-222222222222', 0, 1);",
        )
        .expect("insert an allocation without its consumer");
    let (code, json) = run_command(&database.url(), true);
    assert_eq!(code, Some(1), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(report["name"], "Upgrade Check Results");
    let incomplete = report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["check"] == "Incomplete Consumers"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(incomplete["result"], 1, "{json}");
}
