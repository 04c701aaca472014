//! placement-rs's policy decisions against upstream's own: every case
//! `tools/policy_matrix.py` records from upstream Placement 16.0.0's real
//! enforcer (oslo.policy, run in upstream's virtualenv) must get the same
//! answer from `placement::policy::Enforcer`. Skipped, with a line saying so,
//! when the virtualenv is missing (`../shared/bench/upstream/setup.sh`
//! installs it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use placement::policy::{Credentials, Defaults, Enforcer, ServiceCredentials, Target, actions};
use serde::Deserialize;
use serde_json::Value;

/// Where setup.sh puts the virtualenv unless VENV says otherwise.
const DEFAULT_VENV: &str = "/tmp/placement-upstream-venv";

/// What the script prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    /// Policy file name -> the YAML upstream loaded.
    files: BTreeMap<String, String>,
    cases: Vec<Case>,
}

/// One upstream decision and what it was made on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    rule: String,
    roles: String,
    scope: String,
    defaults: String,
    /// `none` or a key of `Matrix::files`.
    file: String,
    target_kind: String,
    credentials: PolicyValues,
    /// Kept raw: upstream tells an absent key from a None value, and a
    /// mismatch report should show which it was.
    target: serde_json::Map<String, Value>,
    allowed: bool,
}

/// oslo.context's `to_policy_values()`, key for key; an unknown key fails
/// the parse, so a new credential upstream cannot go unnoticed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyValues {
    user_id: String,
    user_domain_id: Option<String>,
    system_scope: Option<String>,
    domain_id: Option<String>,
    project_id: Option<String>,
    project_domain_id: Option<String>,
    roles: Vec<String>,
    is_admin_project: bool,
    service_user_id: Option<String>,
    service_user_domain_id: Option<String>,
    service_project_id: Option<String>,
    service_project_domain_id: Option<String>,
    service_roles: Vec<String>,
}

impl PolicyValues {
    fn to_credentials(&self) -> Credentials {
        // A service half exists only when a service token came along.
        let service = self
            .service_user_id
            .as_ref()
            .map(|user_id| ServiceCredentials {
                user_id: user_id.clone(),
                user_domain_id: self.service_user_domain_id.clone(),
                project_id: self.service_project_id.clone(),
                project_domain_id: self.service_project_domain_id.clone(),
                roles: self.service_roles.clone(),
            });
        // `service` is set apart so that the struct update stays: a field
        // Credentials gains later takes its default here rather than
        // breaking this build.
        let mut credentials = Credentials {
            user_id: self.user_id.clone(),
            project_id: self.project_id.clone(),
            roles: self.roles.clone(),
            system_scope: self.system_scope.clone(),
            domain_id: self.domain_id.clone(),
            user_domain_id: self.user_domain_id.clone(),
            project_domain_id: self.project_domain_id.clone(),
            is_admin_project: self.is_admin_project,
            ..Credentials::default()
        };
        credentials.service = service;
        credentials
    }
}

/// The target placement-rs gets for `raw`; an absent key and a None value
/// both become None, the only form `Target` has.
fn to_target(raw: &serde_json::Map<String, Value>) -> Result<Target, String> {
    let field = |key: &str| match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(other) => Err(format!("target {key} is not a string: {other}")),
    };
    if let Some(key) = raw
        .keys()
        .find(|key| !matches!(key.as_str(), "project_id" | "user_id"))
    {
        return Err(format!("target key {key:?} has no field in Target"));
    }
    Ok(Target {
        project_id: field("project_id")?,
        user_id: field("user_id")?,
    })
}

fn venv() -> PathBuf {
    std::env::var_os("VENV")
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_VENV), PathBuf::from)
}

/// Runs the script with the virtualenv's Python and parses its output.
fn upstream_matrix(python: &Path) -> Matrix {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/policy_matrix.py");
    let output = Command::new(python)
        .arg(&script)
        .output()
        .expect("run tools/policy_matrix.py");
    assert!(
        output.status.success(),
        "tools/policy_matrix.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parse the policy matrix JSON")
}

/// Builds placement-rs's enforcer for every (defaults, file) pair.
fn enforcers(
    files: &BTreeMap<String, String>,
) -> HashMap<(String, String), Result<Enforcer, String>> {
    let mut out = HashMap::new();
    for (defaults_name, defaults) in [("secure", Defaults::Secure), ("legacy", Defaults::Legacy)] {
        let mut sources: Vec<(&str, Option<&str>)> = vec![("none", None)];
        sources.extend(
            files
                .iter()
                .map(|(name, text)| (name.as_str(), Some(text.as_str()))),
        );
        for (file, yaml) in sources {
            let enforcer = Enforcer::new(defaults, yaml).map_err(|err| err.to_string());
            out.insert((defaults_name.to_owned(), file.to_owned()), enforcer);
        }
    }
    out
}

#[test]
fn policy_matrix_matches_upstream_oslo_policy() {
    let venv = venv();
    let python = venv.join("bin/python");
    if !python.exists() {
        println!(
            "policy matrix SKIPPED: upstream's virtualenv is missing ({}); \
             run `bash ../shared/bench/upstream/setup.sh` (or set VENV) to compare",
            venv.display()
        );
        return;
    }
    let started = Instant::now();
    let matrix = upstream_matrix(&python);
    let upstream_done = started.elapsed();
    let enforcers = enforcers(&matrix.files);

    let mut failures = Vec::new();
    // Every registered rule upstream has must be one placement-rs has, and
    // the other way round.
    let upstream_rules: BTreeSet<&str> = matrix.cases.iter().map(|c| c.rule.as_str()).collect();
    let our_rules: BTreeSet<&str> = actions::ALL.iter().copied().collect();
    for rule in upstream_rules.symmetric_difference(&our_rules) {
        failures.push(format!(
            "rule {rule:?} is registered on one side only (upstream: {}, placement-rs: {})",
            upstream_rules.contains(rule),
            our_rules.contains(rule)
        ));
    }
    for ((defaults, file), enforcer) in &enforcers {
        if let Err(err) = enforcer {
            failures.push(format!(
                "placement-rs refuses the {file:?} policy (defaults {defaults}), \
                 which upstream loads: {err}"
            ));
        }
    }

    let mut compared = 0usize;
    let mut mismatches = 0usize;
    for case in &matrix.cases {
        let key = (case.defaults.clone(), case.file.clone());
        let Some(Ok(enforcer)) = enforcers.get(&key) else {
            // Already reported above (or an unknown defaults/file name).
            if !enforcers.contains_key(&key) {
                failures.push(format!("case with unknown defaults/file {key:?}"));
            }
            continue;
        };
        let target = match to_target(&case.target) {
            Ok(target) => target,
            Err(err) => {
                failures.push(format!("{}: {err}", case.rule));
                continue;
            }
        };
        let ours = enforcer.authorize(&case.rule, &case.credentials.to_credentials(), &target);
        compared += 1;
        if ours != case.allowed {
            mismatches += 1;
            failures.push(format!(
                "MISMATCH rule={} roles={} scope={} defaults={} file={} target={} {}: \
                 upstream {}, placement-rs {}",
                case.rule,
                case.roles,
                case.scope,
                case.defaults,
                case.file,
                case.target_kind,
                Value::Object(case.target.clone()),
                verdict(case.allowed),
                verdict(ours),
            ));
        }
    }

    println!(
        "policy matrix: compared {compared} cases ({} rules, {} policy files incl. none, \
         2 default sets), {mismatches} mismatches; upstream took {:.1?}, total {:.1?}",
        upstream_rules.len(),
        matrix.files.len() + 1,
        upstream_done,
        started.elapsed()
    );
    for failure in &failures {
        println!("{failure}");
    }
    assert!(
        failures.is_empty(),
        "{} policy matrix failures ({mismatches} mismatching decisions); see the lines above",
        failures.len()
    );
    assert!(compared > 0, "the policy matrix had no cases");
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}
