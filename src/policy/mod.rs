//! Authorization: placement's policy rules, oslo.policy-style YAML overrides,
//! and enforcement with token-scope checks. Answers to upstream
//! `placement/policy.py`, `placement/policies/` and `oslo_policy/policy.py`.

mod check;
mod rules;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use check::{Check, Context};

pub use rules::actions;

/// Which default check strings apply (oslo.policy `enforce_new_defaults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaults {
    /// `enforce_new_defaults = False`: a rule not overridden by the file
    /// also accepts its deprecated check string.
    Legacy,
    /// `enforce_new_defaults = True`: only the new check strings.
    Secure,
}

/// Who is asking: the policy values of the request context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The authenticated user.
    pub user_id: String,
    /// The token's project; None for a system-scoped token.
    pub project_id: Option<String>,
    /// Role names as sent (matched case-insensitively by `role:` checks).
    pub roles: Vec<String>,
    /// `Some("all")` for a system-scoped token.
    pub system_scope: Option<String>,
    /// The token's domain, for a domain-scoped token.
    pub domain_id: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_domain_id: Option<String>,
    /// Keystone's `is_admin_project` (true when the token does not say).
    pub is_admin_project: bool,
    /// The identity of a valid `X-Service-Token`, if one came along.
    pub service: Option<ServiceCredentials>,
}

/// The service user's half of a request that carried an `X-Service-Token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCredentials {
    pub user_id: String,
    pub user_domain_id: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_id: Option<String>,
    pub roles: Vec<String>,
}

/// What is acted upon; `%(key)s` in check strings is filled from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Owning project (the queried one for `GET /usages`); None renders as
    /// `None`, as Python's `%` does.
    pub project_id: Option<String>,
    /// Owning user; None when the target has no `user_id` key at all
    /// (upstream's `GET /usages` passes only the project), so that a check
    /// naming `%(user_id)s` fails, as oslo.policy's `KeyError` makes it.
    pub user_id: Option<String>,
}

impl Target {
    /// The target upstream uses when a handler passes none: the caller's
    /// own project and user.
    pub fn of(credentials: &Credentials) -> Self {
        Target {
            project_id: credentials.project_id.clone(),
            user_id: Some(credentials.user_id.clone()),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file named in the configuration.
        path: PathBuf,
        /// What the OS reported.
        source: std::io::Error,
    },
    /// The overrides are not valid YAML.
    #[error("invalid policy YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// The overrides are valid YAML but not a mapping of names to strings.
    #[error("invalid policy file: {0}")]
    Invalid(String),
    /// A check string does not parse.
    #[error("cannot parse policy rule {name:?} ({check_str:?}): {reason}")]
    Unparsable {
        /// The rule whose check string failed.
        name: String,
        /// The check string as written.
        check_str: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `rule:` reference names no rule (and no `default` rule exists).
    #[error("policy rule {rule:?} references undefined rule {referenced:?}")]
    UnknownRule {
        /// The rule holding the reference.
        rule: String,
        /// The undefined name.
        referenced: String,
    },
    /// Rules reference each other in a loop.
    #[error("policy rule {0:?} references itself through rule: checks")]
    Cycle(String),
}

/// The effective policy: defaults merged with overrides, ready to answer
/// authorization questions.
#[derive(Debug, Clone)]
pub struct Enforcer {
    /// Effective check of every rule, registered or defined by the file.
    rules: HashMap<String, Check>,
    /// scope_types of every registered rule (empty: any scope).
    scopes: HashMap<&'static str, &'static [&'static str]>,
}

impl Enforcer {
    /// Builds the policy from the registered defaults and optional YAML
    /// overrides (a mapping of rule name to check string).
    pub fn new(defaults: Defaults, overrides_yaml: Option<&str>) -> Result<Enforcer, PolicyError> {
        let file_rules = match overrides_yaml {
            Some(text) => parse_overrides(text)?,
            None => HashMap::new(),
        };
        Enforcer::with_overrides(defaults, file_rules)
    }

    fn with_overrides(
        defaults: Defaults,
        file_rules: HashMap<String, Check>,
    ) -> Result<Enforcer, PolicyError> {
        // As in oslo's load_rules: file rules first, then every registered
        // rule the file leaves alone.
        let mut rules = file_rules.clone();
        let mut scopes = HashMap::new();
        for default in rules::defaults() {
            scopes.insert(default.name, default.scope_types);
            if rules.contains_key(default.name) {
                continue;
            }
            let check = effective_default(defaults, &default, &file_rules)?;
            rules.insert(default.name.to_owned(), check);
        }
        validate_references(&rules)?;
        Ok(Enforcer { rules, scopes })
    }

    /// Like [`Enforcer::new`], reading the overrides from `path`; None or an
    /// empty path means no overrides.
    pub fn from_file(defaults: Defaults, path: Option<&Path>) -> Result<Enforcer, PolicyError> {
        let paths: Vec<PathBuf> = path
            .filter(|path| !path.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .into_iter()
            .collect();
        Enforcer::from_files(defaults, &paths)
    }

    /// The defaults with the overrides of each file in turn, a later file's
    /// rule replacing an earlier one's (oslo's `policy_file`, then
    /// `policy_dirs`).
    pub fn from_files(defaults: Defaults, paths: &[PathBuf]) -> Result<Enforcer, PolicyError> {
        let mut file_rules = HashMap::new();
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            file_rules.extend(parse_overrides(&text)?);
        }
        Enforcer::with_overrides(defaults, file_rules)
    }

    /// true when `action` (e.g. "placement:resource_providers:list") is allowed.
    ///
    /// Unregistered actions are refused (upstream raises PolicyNotRegistered),
    /// as is a token whose scope the rule's scope_types exclude (InvalidScope).
    pub fn authorize(&self, action: &str, credentials: &Credentials, target: &Target) -> bool {
        let Some(scope_types) = self.scopes.get(action) else {
            return false;
        };
        if !scope_types.is_empty() && !scope_types.contains(&token_scope(credentials)) {
            return false;
        }
        let ctx = Context {
            rules: &self.rules,
            credentials,
            target,
        };
        check::resolve(&self.rules, action).is_some_and(|rule| check::evaluate(rule, &ctx))
    }
}

/// The scope oslo derives from the credentials: system, else domain,
/// else project.
fn token_scope(credentials: &Credentials) -> &'static str {
    match credentials.system_scope.as_deref() {
        Some(scope) if !scope.is_empty() => "system",
        _ if credentials.domain_id.is_some() => "domain",
        _ => "project",
    }
}

fn parse_rule(name: &str, check_str: &str) -> Result<Check, PolicyError> {
    check::parse(check_str).map_err(|err| PolicyError::Unparsable {
        name: name.to_owned(),
        check_str: check_str.to_owned(),
        reason: err.to_string(),
    })
}

/// Parses the override YAML into checks by rule name.
fn parse_overrides(text: &str) -> Result<HashMap<String, Check>, PolicyError> {
    let mapping = match serde_yaml::from_str::<serde_yaml::Value>(text)? {
        // An empty document means no overrides, as with PyYAML's None.
        serde_yaml::Value::Null => return Ok(HashMap::new()),
        serde_yaml::Value::Mapping(mapping) => mapping,
        _ => {
            return Err(PolicyError::Invalid(
                "expected a mapping of rule names to check strings".to_owned(),
            ));
        }
    };
    let mut rules = HashMap::with_capacity(mapping.len());
    for (key, value) in mapping {
        let serde_yaml::Value::String(name) = key else {
            return Err(PolicyError::Invalid(format!(
                "rule name {key:?} is not a string"
            )));
        };
        let serde_yaml::Value::String(check_str) = value else {
            return Err(PolicyError::Invalid(format!(
                "rule {name:?} has a non-string check {value:?}"
            )));
        };
        let check = parse_rule(&name, &check_str)?;
        rules.insert(name, check);
    }
    Ok(rules)
}

/// The check a registered rule gets when the file does not override it
/// (oslo's `_handle_deprecated_rule`).
fn effective_default(
    defaults: Defaults,
    default: &rules::RuleDefault,
    file_rules: &HashMap<String, Check>,
) -> Result<Check, PolicyError> {
    let new = parse_rule(default.name, default.check_str)?;
    let Some(deprecated) = default.deprecated else {
        return Ok(new);
    };
    let old = parse_rule(deprecated.name, deprecated.check_str)?;
    // A file override of the deprecated rule's (different) name replaces the
    // new default, in either mode, unless it just restates the old check or
    // points at the new rule.
    if deprecated.name != default.name
        && let Some(file_check) = file_rules.get(deprecated.name)
        && *file_check != old
        && file_check.to_string() != format!("rule:{}", default.name)
    {
        return Ok(file_check.clone());
    }
    if defaults == Defaults::Legacy && deprecated.check_str != default.check_str {
        return Ok(Check::Or(vec![new, old]));
    }
    Ok(new)
}

/// Refuses `rule:` references to undefined rules and reference cycles, both
/// of which oslo only logs (then denies, or recurses until it errors).
fn validate_references(rules: &HashMap<String, Check>) -> Result<(), PolicyError> {
    let mut names: Vec<&String> = rules.keys().collect();
    // Sorted so the reported error does not depend on hash order.
    names.sort();
    let mut done = HashSet::new();
    for name in names {
        visit(rules, name, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

fn visit<'a>(
    rules: &'a HashMap<String, Check>,
    name: &'a str,
    path: &mut Vec<&'a str>,
    done: &mut HashSet<&'a str>,
) -> Result<(), PolicyError> {
    if done.contains(name) {
        return Ok(());
    }
    if path.contains(&name) {
        return Err(PolicyError::Cycle(name.to_owned()));
    }
    let Some(rule) = rules.get(name) else {
        return Ok(());
    };
    path.push(name);
    for referenced in rule.references() {
        let target = match rules.get_key_value(referenced) {
            Some((key, _)) => key.as_str(),
            None => match rules.get_key_value(check::DEFAULT_RULE) {
                Some((key, _)) => key.as_str(),
                None => {
                    return Err(PolicyError::UnknownRule {
                        rule: name.to_owned(),
                        referenced: referenced.to_owned(),
                    });
                }
            },
        };
        visit(rules, target, path, done)?;
    }
    path.pop();
    done.insert(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::actions::*;
    use super::*;

    /// The project the rbac gabbits query (`$ENVIRON['PROJECT_ID']`).
    const PROJECT: &str = "project-a";
    const OTHER_PROJECT: &str = "project-b";

    fn creds(project: Option<&str>, roles: &str, system: bool) -> Credentials {
        Credentials {
            user_id: "user".to_owned(),
            project_id: project.map(str::to_owned),
            roles: roles
                .split(',')
                .filter(|role| !role.is_empty())
                .map(str::to_owned)
                .collect(),
            system_scope: system.then(|| "all".to_owned()),
            is_admin_project: true,
            ..Credentials::default()
        }
    }

    /// The header sets of the `*-rbac.yaml` gabbits and the open-policy user.
    fn admin() -> Credentials {
        creds(Some("admin_project_id"), "admin", false)
    }
    fn service() -> Credentials {
        creds(Some("service_project_id"), "service", false)
    }
    fn system_admin() -> Credentials {
        creds(None, "admin,member,reader", true)
    }
    fn system_reader() -> Credentials {
        creds(None, "reader", true)
    }
    fn project_admin() -> Credentials {
        creds(Some(PROJECT), "admin,member,reader", false)
    }
    fn project_member() -> Credentials {
        creds(Some(PROJECT), "member,reader", false)
    }
    fn project_reader() -> Credentials {
        creds(Some(PROJECT), "reader", false)
    }
    fn other_member() -> Credentials {
        creds(Some(OTHER_PROJECT), "member,reader", false)
    }
    fn other_reader() -> Credentials {
        creds(Some(OTHER_PROJECT), "reader", false)
    }
    fn other_admin() -> Credentials {
        creds(Some(OTHER_PROJECT), "admin,member,reader", false)
    }
    /// `x-auth-token: user` with no roles (project defaults to the user).
    fn no_roles() -> Credentials {
        creds(Some("user"), "", false)
    }

    fn load(defaults: Defaults, yaml: Option<&str>) -> Enforcer {
        match Enforcer::new(defaults, yaml) {
            Ok(enforcer) => enforcer,
            Err(err) => panic!("policy failed to load: {err}"),
        }
    }

    /// Authorizes with upstream's default target: the caller's own project.
    fn allowed(enforcer: &Enforcer, action: &str, credentials: &Credentials) -> bool {
        enforcer.authorize(action, credentials, &Target::of(credentials))
    }

    /// `GET /usages?project_id=PROJECT`: the target is the queried project.
    fn usages_allowed(enforcer: &Enforcer, credentials: &Credentials) -> bool {
        let target = Target {
            project_id: Some(PROJECT.to_owned()),
            user_id: None,
        };
        enforcer.authorize(TOTAL_USAGES, credentials, &target)
    }

    fn open_policy_yaml() -> String {
        actions::ALL
            .iter()
            .filter(|name| **name != ADMIN_API)
            .map(|name| format!("\"{name}\": \"@\"\n"))
            .collect()
    }

    #[test]
    fn list_and_create_are_the_same_under_both_defaults() {
        for defaults in [Defaults::Secure, Defaults::Legacy] {
            let enforcer = load(defaults, None);
            for action in [
                RESOURCE_PROVIDERS_LIST,
                RESOURCE_PROVIDERS_CREATE,
                TRAITS_UPDATE,
            ] {
                let case = format!("{action} {defaults:?}");
                assert!(allowed(&enforcer, action, &admin()), "{case}");
                assert!(allowed(&enforcer, action, &service()), "{case}");
                assert!(allowed(&enforcer, action, &project_admin()), "{case}");
                assert!(!allowed(&enforcer, action, &system_admin()), "{case}");
                assert!(!allowed(&enforcer, action, &system_reader()), "{case}");
                assert!(!allowed(&enforcer, action, &project_member()), "{case}");
                assert!(!allowed(&enforcer, action, &project_reader()), "{case}");
                assert!(!allowed(&enforcer, action, &no_roles()), "{case}");
            }
        }
    }

    #[test]
    fn secure_total_usages_follow_the_queried_project() {
        let enforcer = load(Defaults::Secure, None);
        assert!(usages_allowed(&enforcer, &admin()));
        assert!(usages_allowed(&enforcer, &service()));
        assert!(usages_allowed(&enforcer, &project_admin()));
        assert!(usages_allowed(&enforcer, &project_member()));
        assert!(usages_allowed(&enforcer, &project_reader()));
        assert!(usages_allowed(&enforcer, &other_admin()));
        assert!(!usages_allowed(&enforcer, &other_member()));
        assert!(!usages_allowed(&enforcer, &other_reader()));
        assert!(!usages_allowed(&enforcer, &system_admin()));
        assert!(!usages_allowed(&enforcer, &system_reader()));
        assert!(!usages_allowed(&enforcer, &no_roles()));
    }

    #[test]
    fn legacy_total_usages() {
        let enforcer = load(Defaults::Legacy, None);
        assert!(usages_allowed(&enforcer, &admin()));
        assert!(usages_allowed(&enforcer, &service()));
        assert!(usages_allowed(&enforcer, &project_admin()));
        assert!(usages_allowed(&enforcer, &project_reader()));
        assert!(usages_allowed(&enforcer, &other_admin()));
        assert!(!usages_allowed(&enforcer, &other_member()));
        assert!(!usages_allowed(&enforcer, &system_admin()));
        assert!(!usages_allowed(&enforcer, &no_roles()));
    }

    #[test]
    fn reshaper_admits_admins_only_under_legacy_defaults() {
        let secure = load(Defaults::Secure, None);
        let legacy = load(Defaults::Legacy, None);
        assert!(allowed(&secure, RESHAPER_RESHAPE, &service()));
        assert!(!allowed(&secure, RESHAPER_RESHAPE, &admin()));
        assert!(!allowed(&secure, RESHAPER_RESHAPE, &project_admin()));
        assert!(allowed(&legacy, RESHAPER_RESHAPE, &service()));
        assert!(allowed(&legacy, RESHAPER_RESHAPE, &admin()));
        assert!(!allowed(&legacy, RESHAPER_RESHAPE, &project_member()));
        assert!(!allowed(&legacy, RESHAPER_RESHAPE, &system_admin()));
    }

    #[test]
    fn open_policy_file_admits_anyone_project_scoped() {
        let yaml = open_policy_yaml();
        for defaults in [Defaults::Legacy, Defaults::Secure] {
            let enforcer = load(defaults, Some(&yaml));
            for action in [
                RESOURCE_PROVIDERS_LIST,
                RESOURCE_PROVIDERS_CREATE,
                RESHAPER_RESHAPE,
            ] {
                assert!(allowed(&enforcer, action, &no_roles()), "{action}");
                assert!(allowed(&enforcer, action, &project_reader()), "{action}");
                // Overrides do not lift the scope check.
                assert!(!allowed(&enforcer, action, &system_admin()), "{action}");
            }
            assert!(usages_allowed(&enforcer, &no_roles()));
            assert!(usages_allowed(&enforcer, &other_reader()));
            assert!(!usages_allowed(&enforcer, &system_reader()));
            // admin_api itself keeps its default.
            assert!(allowed(&enforcer, ADMIN_API, &admin()));
            assert!(!allowed(&enforcer, ADMIN_API, &no_roles()));
        }
    }

    #[test]
    fn overriding_a_rule_drops_its_deprecated_fallback() {
        let enforcer = load(Defaults::Legacy, Some("service_api: role:foo"));
        let foo = creds(Some(PROJECT), "foo", false);
        assert!(allowed(&enforcer, RESHAPER_RESHAPE, &foo));
        assert!(!allowed(&enforcer, RESHAPER_RESHAPE, &admin()));
        assert!(!allowed(&enforcer, RESHAPER_RESHAPE, &service()));
    }

    #[test]
    fn rule_references_follow_overrides() {
        let yaml = "admin_api: role:superuser\n\"placement:traits:list\": rule:admin_api\n";
        let enforcer = load(Defaults::Secure, Some(yaml));
        let superuser = creds(Some(PROJECT), "superuser", false);
        assert!(allowed(&enforcer, TRAITS_LIST, &superuser));
        assert!(!allowed(&enforcer, TRAITS_LIST, &admin()));
        // Defaults spell out role:admin rather than referencing admin_api.
        assert!(allowed(&enforcer, TRAITS_SHOW, &admin()));
    }

    #[test]
    fn overriding_the_deprecated_rule_name_replaces_new_defaults() {
        // Upstream's DeprecatedRule is literally named "rule:admin_api"; a
        // file entry of that name replaces every rule deprecating it.
        let enforcer = load(Defaults::Secure, Some("\"rule:admin_api\": role:boss"));
        let boss = creds(Some(PROJECT), "boss", false);
        assert!(allowed(&enforcer, RESHAPER_RESHAPE, &boss));
        assert!(!allowed(&enforcer, RESHAPER_RESHAPE, &service()));
        assert!(allowed(&enforcer, RESOURCE_PROVIDERS_LIST, &boss));
        // Restating the deprecated check changes nothing.
        let enforcer = load(Defaults::Secure, Some("\"rule:admin_api\": role:admin"));
        assert!(!allowed(&enforcer, RESHAPER_RESHAPE, &admin()));
        assert!(allowed(&enforcer, RESHAPER_RESHAPE, &service()));
    }

    #[test]
    fn unknown_names_define_rules() {
        let yaml = "my_rule: role:auditor\n\"placement:traits:list\": rule:my_rule\n";
        let enforcer = load(Defaults::Secure, Some(yaml));
        let auditor = creds(Some(PROJECT), "auditor", false);
        assert!(allowed(&enforcer, TRAITS_LIST, &auditor));
        // Only registered rules can be authorized directly.
        assert!(!allowed(&enforcer, "my_rule", &auditor));
        assert!(!allowed(&enforcer, "placement:nothing", &admin()));
    }

    #[test]
    fn undefined_references_use_the_default_rule_when_present() {
        let yaml = "default: role:x\n\"placement:traits:list\": rule:nope\n";
        let enforcer = load(Defaults::Secure, Some(yaml));
        assert!(allowed(
            &enforcer,
            TRAITS_LIST,
            &creds(Some(PROJECT), "x", false)
        ));
        assert!(!allowed(&enforcer, TRAITS_LIST, &admin()));
    }

    #[test]
    fn empty_overrides_are_no_overrides() {
        for yaml in ["", "# nothing\n", "{}"] {
            let enforcer = load(Defaults::Secure, Some(yaml));
            assert!(!allowed(&enforcer, RESHAPER_RESHAPE, &admin()), "{yaml:?}");
            assert!(allowed(&enforcer, RESHAPER_RESHAPE, &service()), "{yaml:?}");
        }
    }

    #[test]
    fn bad_overrides_are_errors() {
        let cases = [
            ("a: [unclosed", "yaml"),
            ("- a\n- b\n", "invalid"),
            ("just a string", "invalid"),
            ("a: 1\n", "invalid"),
            ("a: [role:x]\n", "invalid"),
            ("a:\n", "invalid"),
            ("a: role:x role:y\n", "unparsable"),
            ("a: admin\n", "unparsable"),
            ("a: rule:missing\n", "unknown"),
            ("a: rule:b\nb: rule:a\n", "cycle"),
        ];
        for (yaml, kind) in cases {
            let got = match Enforcer::new(Defaults::Legacy, Some(yaml)) {
                Ok(_) => "ok",
                Err(PolicyError::Yaml(_)) => "yaml",
                Err(PolicyError::Invalid(_)) => "invalid",
                Err(PolicyError::Unparsable { .. }) => "unparsable",
                Err(PolicyError::UnknownRule { .. }) => "unknown",
                Err(PolicyError::Cycle(_)) => "cycle",
                Err(PolicyError::Read { .. }) => "read",
            };
            assert_eq!(got, kind, "{yaml:?}");
        }
    }

    #[test]
    fn from_file_reads_overrides() {
        let missing = Enforcer::from_file(Defaults::Secure, Some(Path::new("/nonexistent/p.yaml")));
        assert!(matches!(missing, Err(PolicyError::Read { .. })));
        for path in [None, Some(Path::new(""))] {
            let enforcer = Enforcer::from_file(Defaults::Secure, path);
            assert!(enforcer.is_ok_and(|e| !allowed(&e, TRAITS_LIST, &no_roles())));
        }
        let path = std::env::temp_dir().join(format!("policy-test-{}.yaml", std::process::id()));
        let written = std::fs::write(&path, open_policy_yaml());
        assert!(written.is_ok());
        let enforcer = Enforcer::from_file(Defaults::Secure, Some(&path));
        let _ = std::fs::remove_file(&path);
        assert!(enforcer.is_ok_and(|e| allowed(&e, TRAITS_LIST, &no_roles())));
    }

    #[test]
    fn every_action_is_registered() {
        let enforcer = load(Defaults::Secure, None);
        assert_eq!(
            enforcer.scopes.len(),
            actions::ALL.len() + actions::EXTENSIONS.len()
        );
        for action in actions::ALL.iter().chain(actions::EXTENSIONS) {
            assert!(enforcer.scopes.contains_key(action), "{action}");
            assert!(enforcer.rules.contains_key(*action), "{action}");
        }
    }

    #[test]
    fn project_reader_api_has_no_scope_check() {
        // The only rule without scope_types: a system token reaches its check.
        let enforcer = load(Defaults::Legacy, None);
        let target = Target::default();
        assert!(enforcer.authorize(PROJECT_READER_API, &system_admin(), &target));
        assert!(!enforcer.authorize(ADMIN_OR_SERVICE_API, &system_admin(), &target));
    }
}
