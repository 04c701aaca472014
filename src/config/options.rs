//! The one table of every configuration option: its section and name as in
//! upstream's `placement.conf`, its type, default and help. The file
//! reader, the `OS_<SECTION>__<OPTION>` environment, `placement config
//! sample` and `placement serve --help` are all derived from it.

/// How an option's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    /// Never printed back (passwords, connection URLs).
    Secret,
    Bool,
    Integer,
    Float,
    /// Comma-separated, as oslo.config's `ListOpt`.
    List,
    Choice(&'static [&'static str]),
}

impl Kind {
    /// The words oslo-config-generator puts after an option's help.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::String | Kind::Choice(_) => "string value",
            Kind::Secret => "string value, secret",
            Kind::Bool => "boolean value",
            Kind::Integer => "integer value",
            Kind::Float => "floating point value",
            Kind::List => "list value",
        }
    }
}

/// An option's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// Unset.
    None,
    Text(&'static str),
    /// Computed at start-up; the text says how.
    Computed(&'static str),
}

/// An environment variable this server read before it read `placement.conf`,
/// kept because the conformance suite and the benchmark set them.
#[derive(Clone, Copy, Debug)]
pub struct Legacy {
    pub variable: &'static str,
    /// Turns the variable's value into the option's text (`None`: invalid).
    pub translate: fn(&str) -> Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Opt {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    pub help: &'static str,
    pub legacy: Option<Legacy>,
    /// Older names of the same option, `(section, name)`, still read.
    pub deprecated: &'static [(&'static str, &'static str)],
}

impl Opt {
    /// oslo.config's environment name, `OS_<SECTION>__<OPTION>`.
    pub fn environment_name(&self) -> String {
        format!(
            "OS_{}__{}",
            self.section.to_ascii_uppercase(),
            self.name.to_ascii_uppercase()
        )
    }
}

fn same(value: &str) -> Option<String> {
    Some(value.to_owned())
}

fn rbac_to_new_defaults(value: &str) -> Option<String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "secure" => Some("true".to_owned()),
        "legacy" => Some("false".to_owned()),
        _ => None,
    }
}

const fn legacy(variable: &'static str) -> Option<Legacy> {
    Some(Legacy {
        variable,
        translate: same,
    })
}

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    default: Default,
    help: &'static str,
) -> Opt {
    Opt {
        section,
        name,
        kind,
        default,
        help,
        legacy: None,
        deprecated: &[],
    }
}

const fn text(value: &'static str) -> Default {
    Default::Text(value)
}

use Kind::{Bool, Float, Integer, List, Secret};

const AUTH_STRATEGIES: &[&str] = &["keystone", "noauth2"];
const GENERATION_STRATEGIES: &[&str] = &["depth-first", "breadth-first"];
const LOG_FORMATS: &[&str] = &["text", "json"];
const AUTH_TYPES: &[&str] = &["password", "v3password"];
const INTERFACES: &[&str] = &["public", "internal", "admin"];
const TOKEN_BIND: &[&str] = &["disabled", "permissive", "strict", "required"];

/// Every option, in the order `config sample` prints them.
pub static OPTIONS: &[Opt] = &[
    // [DEFAULT]: the oslo.log options a deployment sets most.
    opt(
        "DEFAULT",
        "debug",
        Bool,
        text("false"),
        "Log at debug level (overrides [server] log_filter with `debug`).",
    ),
    opt(
        "DEFAULT",
        "use_json",
        Bool,
        text("false"),
        "Write log lines as JSON objects (the same as [server] log_format = json).",
    ),
    opt(
        "DEFAULT",
        "log_file",
        Kind::String,
        Default::None,
        "Accepted for compatibility; this server logs to standard error only.",
    ),
    opt(
        "DEFAULT",
        "log_dir",
        Kind::String,
        Default::None,
        "Accepted for compatibility; this server logs to standard error only.",
    ),
    opt(
        "DEFAULT",
        "state_path",
        Kind::String,
        Default::None,
        "Accepted for compatibility; this server keeps no state on disk.",
    ),
    // [api]
    Opt {
        deprecated: &[("DEFAULT", "auth_strategy")],
        ..opt(
            "api",
            "auth_strategy",
            Kind::Choice(AUTH_STRATEGIES),
            text("keystone"),
            "How requests are authenticated: `keystone` validates each token with Keystone \
             (see [keystone_authtoken]); `noauth2` trusts `X-Auth-Token: user[:project]` and \
             is for testing only.",
        )
    },
    // [placement_database]
    Opt {
        legacy: legacy("DATABASE_URL"),
        ..opt(
            "placement_database",
            "connection",
            Secret,
            Default::None,
            "The PostgreSQL database, as upstream writes it \
             (`postgresql+psycopg2://user:password@host/placement`) or as libpq takes it \
             (`postgresql://...`, or `host=a,b dbname=placement target_session_attrs=read-write`).",
        )
    },
    opt(
        "placement_database",
        "connection_parameters",
        Kind::String,
        text(""),
        "Extra query parameters appended to the connection URL (`key=value&...`).",
    ),
    Opt {
        legacy: legacy("PLACEMENT_MIGRATE_ON_START"),
        ..opt(
            "placement_database",
            "sync_on_startup",
            Bool,
            text("true"),
            "Apply the database migrations when the server starts (safe when several start \
             at once). Upstream's default is false; this server's migrations take a lock, so \
             it defaults to true.",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_DB_POOL_SIZE"),
        ..opt(
            "placement_database",
            "max_pool_size",
            Integer,
            text("16"),
            "Database connections each server process keeps at most.",
        )
    },
    opt(
        "placement_database",
        "max_overflow",
        Integer,
        Default::None,
        "Accepted for compatibility; the pool never grows past max_pool_size.",
    ),
    opt(
        "placement_database",
        "pool_timeout",
        Integer,
        text("10"),
        "Seconds a request waits for a free database connection before it is answered 503.",
    ),
    opt(
        "placement_database",
        "connection_recycle_time",
        Integer,
        text("3600"),
        "Seconds after which a pooled connection is closed and replaced.",
    ),
    opt(
        "placement_database",
        "max_retries",
        Integer,
        text("10"),
        "Attempts to reach the database at start-up (-1: keep trying).",
    ),
    opt(
        "placement_database",
        "retry_interval",
        Integer,
        text("10"),
        "Seconds between start-up attempts to reach the database.",
    ),
    // [placement]
    Opt {
        legacy: legacy("PLACEMENT_RANDOMIZE_ALLOCATION_CANDIDATES"),
        ..opt(
            "placement",
            "randomize_allocation_candidates",
            Bool,
            text("false"),
            "Return allocation candidates in random order rather than by provider.",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_INCOMPLETE_CONSUMER_PROJECT_ID"),
        ..opt(
            "placement",
            "incomplete_consumer_project_id",
            Kind::String,
            text("00000000-0000-0000-0000-000000000000"),
            "Project of consumers whose allocations were written before microversion 1.8.",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_INCOMPLETE_CONSUMER_USER_ID"),
        ..opt(
            "placement",
            "incomplete_consumer_user_id",
            Kind::String,
            text("00000000-0000-0000-0000-000000000000"),
            "User of consumers whose allocations were written before microversion 1.8.",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_ALLOCATION_CONFLICT_RETRY_COUNT"),
        ..opt(
            "placement",
            "allocation_conflict_retry_count",
            Integer,
            text("10"),
            "Attempts of an allocation write that loses a provider generation race.",
        )
    },
    opt(
        "placement",
        "change_feed_retention",
        Integer,
        text("100000"),
        "Provider changes GET /changes keeps (an extension of this server); a follower whose \
         cursor is older is answered 410 and relists.",
    ),
    Opt {
        legacy: legacy("PLACEMENT_MAX_ALLOCATION_CANDIDATES"),
        ..opt(
            "placement",
            "max_allocation_candidates",
            Integer,
            text("-1"),
            "Most allocation candidates generated per request (-1: no limit).",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_ALLOCATION_CANDIDATES_GENERATION_STRATEGY"),
        ..opt(
            "placement",
            "allocation_candidates_generation_strategy",
            Kind::Choice(GENERATION_STRATEGIES),
            text("depth-first"),
            "Order in which candidates are generated when max_allocation_candidates caps them.",
        )
    },
    opt(
        "oslo_middleware",
        "enable_proxy_headers_parsing",
        Bool,
        text("false"),
        "Accepted for compatibility; no answer carries a URL built from the request's scheme \
         or host, so there is nothing to rewrite (X-Forwarded-Prefix is not applied).",
    ),
    opt(
        "workarounds",
        "optimize_for_wide_provider_trees",
        Bool,
        text("false"),
        "Accepted for compatibility; wide trees never expand into every combination here.",
    ),
    // [oslo_policy]
    Opt {
        legacy: Some(Legacy {
            variable: "RBAC",
            translate: rbac_to_new_defaults,
        }),
        ..opt(
            "oslo_policy",
            "enforce_new_defaults",
            Bool,
            text("true"),
            "Only the new (secure) policy defaults; false also accepts the deprecated ones.",
        )
    },
    Opt {
        legacy: legacy("POLICY_FILE"),
        ..opt(
            "oslo_policy",
            "policy_file",
            Kind::String,
            text("policy.yaml"),
            "YAML file of policy rule overrides, relative to the configuration files' \
             directories. A missing default file means the defaults alone.",
        )
    },
    opt(
        "oslo_policy",
        "policy_default_rule",
        Kind::String,
        text("default"),
        "The rule a `rule:` reference to an undefined rule falls back to.",
    ),
    opt(
        "oslo_policy",
        "policy_dirs",
        List,
        text("policy.d"),
        "Directories (relative to the configuration files' directories) whose *.yaml files \
         override rules after policy_file, in name order.",
    ),
    // [cors]
    Opt {
        legacy: legacy("CORS_ALLOWED_ORIGIN"),
        ..opt(
            "cors",
            "allowed_origin",
            List,
            Default::None,
            "Origins allowed to make cross-origin requests; unset turns CORS off.",
        )
    },
    opt(
        "cors",
        "allow_credentials",
        Bool,
        text("true"),
        "Tell browsers the actual request may include credentials.",
    ),
    opt(
        "cors",
        "expose_headers",
        List,
        text(
            "X-Auth-Token,X-Openstack-Request-Id,X-Subject-Token,X-Service-Token,OpenStack-API-Version",
        ),
        "Response headers exposed to the browser.",
    ),
    opt(
        "cors",
        "max_age",
        Integer,
        text("3600"),
        "Seconds a browser may cache a pre-flight answer.",
    ),
    opt(
        "cors",
        "allow_methods",
        List,
        text("GET,PUT,POST,DELETE,PATCH"),
        "Methods a pre-flight may ask for.",
    ),
    Opt {
        legacy: legacy("CORS_ALLOW_HEADERS"),
        ..opt(
            "cors",
            "allow_headers",
            List,
            text(
                "X-Auth-Token,X-Openstack-Request-Id,X-Identity-Status,X-Roles,X-Service-Catalog,X-User-Id,X-Tenant-Id,OpenStack-API-Version",
            ),
            "Request headers a pre-flight may ask for.",
        )
    },
    // [keystone_authtoken]: keystonemiddleware's and keystoneauth's options.
    opt(
        "keystone_authtoken",
        "auth_type",
        Kind::Choice(AUTH_TYPES),
        Default::None,
        "How the service user logs in to Keystone; `password` is required with \
         auth_strategy = keystone.",
    ),
    opt(
        "keystone_authtoken",
        "auth_section",
        Kind::String,
        Default::None,
        "Accepted for compatibility; the options must be in [keystone_authtoken] itself.",
    ),
    opt(
        "keystone_authtoken",
        "auth_url",
        Kind::String,
        Default::None,
        "Keystone's URL for the service user's login (e.g. http://controller:5000/v3).",
    ),
    opt(
        "keystone_authtoken",
        "username",
        Kind::String,
        Default::None,
        "The service user's name (or user_id).",
    ),
    opt(
        "keystone_authtoken",
        "user_id",
        Kind::String,
        Default::None,
        "The service user's id.",
    ),
    opt(
        "keystone_authtoken",
        "password",
        Secret,
        Default::None,
        "The service user's password.",
    ),
    opt(
        "keystone_authtoken",
        "user_domain_name",
        Kind::String,
        Default::None,
        "Domain of the service user, by name.",
    ),
    opt(
        "keystone_authtoken",
        "user_domain_id",
        Kind::String,
        Default::None,
        "Domain of the service user, by id.",
    ),
    opt(
        "keystone_authtoken",
        "project_name",
        Kind::String,
        Default::None,
        "Project the service user's token is scoped to (or project_id).",
    ),
    opt(
        "keystone_authtoken",
        "project_id",
        Kind::String,
        Default::None,
        "Project the service user's token is scoped to, by id.",
    ),
    opt(
        "keystone_authtoken",
        "project_domain_name",
        Kind::String,
        Default::None,
        "Domain of the service project, by name.",
    ),
    opt(
        "keystone_authtoken",
        "project_domain_id",
        Kind::String,
        Default::None,
        "Domain of the service project, by id.",
    ),
    opt(
        "keystone_authtoken",
        "default_domain_id",
        Kind::String,
        Default::None,
        "Domain id used for the user and project when no other domain option is set.",
    ),
    opt(
        "keystone_authtoken",
        "default_domain_name",
        Kind::String,
        Default::None,
        "Domain name used for the user and project when no other domain option is set.",
    ),
    Opt {
        deprecated: &[("keystone_authtoken", "auth_uri")],
        ..opt(
            "keystone_authtoken",
            "www_authenticate_uri",
            Kind::String,
            Default::None,
            "Keystone's public URL, sent to clients in `WWW-Authenticate` with every 401. \
             Unset: the identity endpoint found in the catalog.",
        )
    },
    opt(
        "keystone_authtoken",
        "interface",
        Kind::Choice(INTERFACES),
        text("internal"),
        "Which catalog endpoint of the identity service tokens are validated at.",
    ),
    opt(
        "keystone_authtoken",
        "region_name",
        Kind::String,
        Default::None,
        "Region of the identity endpoint in the catalog.",
    ),
    opt(
        "keystone_authtoken",
        "http_connect_timeout",
        Integer,
        Default::None,
        "Seconds to wait for a connection to Keystone (unset: 10).",
    ),
    opt(
        "keystone_authtoken",
        "http_request_max_retries",
        Integer,
        text("3"),
        "Retries of a Keystone request whose connection failed.",
    ),
    opt(
        "keystone_authtoken",
        "token_cache_time",
        Integer,
        text("300"),
        "Seconds a validated token is reused without asking Keystone (-1: never cached).",
    ),
    opt(
        "keystone_authtoken",
        "token_cache_size",
        Integer,
        text("100000"),
        "Most validated tokens kept in memory (this server's own option).",
    ),
    opt(
        "keystone_authtoken",
        "include_service_catalog",
        Bool,
        text("true"),
        "Ask Keystone for the catalog when validating (false adds ?nocatalog).",
    ),
    opt(
        "keystone_authtoken",
        "service_token_roles",
        List,
        text("service"),
        "Roles an X-Service-Token must carry (any one of them).",
    ),
    opt(
        "keystone_authtoken",
        "service_token_roles_required",
        Bool,
        text("true"),
        "Refuse an X-Service-Token that carries none of service_token_roles.",
    ),
    opt(
        "keystone_authtoken",
        "service_type",
        Kind::String,
        Default::None,
        "This service's type in the catalog (`placement`), which application-credential \
         access rules are matched against; without it tokens carrying access rules are refused.",
    ),
    opt(
        "keystone_authtoken",
        "cafile",
        Kind::String,
        Default::None,
        "PEM file of CA certificates for Keystone's TLS.",
    ),
    opt(
        "keystone_authtoken",
        "certfile",
        Kind::String,
        Default::None,
        "Accepted for compatibility; client certificates are not sent.",
    ),
    opt(
        "keystone_authtoken",
        "keyfile",
        Kind::String,
        Default::None,
        "Accepted for compatibility; client certificates are not sent.",
    ),
    opt(
        "keystone_authtoken",
        "insecure",
        Bool,
        text("false"),
        "Do not verify Keystone's TLS certificate.",
    ),
    opt(
        "keystone_authtoken",
        "delay_auth_decision",
        Bool,
        text("false"),
        "Must stay false: Placement refuses requests without a valid token.",
    ),
    opt(
        "keystone_authtoken",
        "enforce_token_bind",
        Kind::Choice(TOKEN_BIND),
        text("permissive"),
        "Accepted for compatibility; bound tokens are not checked (as `permissive`).",
    ),
    opt(
        "keystone_authtoken",
        "auth_version",
        Kind::String,
        Default::None,
        "Accepted for compatibility; Identity v3 is always used.",
    ),
    opt(
        "keystone_authtoken",
        "memcached_servers",
        List,
        Default::None,
        "Accepted for compatibility; validated tokens are cached in this process's memory.",
    ),
    opt(
        "keystone_authtoken",
        "memcache_security_strategy",
        Kind::String,
        Default::None,
        "Accepted for compatibility (see memcached_servers).",
    ),
    opt(
        "keystone_authtoken",
        "memcache_secret_key",
        Secret,
        Default::None,
        "Accepted for compatibility (see memcached_servers).",
    ),
    // [server]: this server's own options.
    Opt {
        legacy: legacy("PLACEMENT_BIND_ADDRESS"),
        ..opt(
            "server",
            "bind_host",
            Kind::String,
            text("127.0.0.1"),
            "Address the API listens on.",
        )
    },
    Opt {
        legacy: legacy("PORT"),
        ..opt(
            "server",
            "port",
            Integer,
            text("8778"),
            "TCP port the API listens on.",
        )
    },
    Opt {
        legacy: legacy("PLACEMENT_WORKERS"),
        ..opt(
            "server",
            "workers",
            Integer,
            Default::Computed("the number of CPUs"),
            "HTTP worker threads.",
        )
    },
    opt(
        "server",
        "shutdown_timeout",
        Integer,
        text("30"),
        "Seconds in-flight requests get to finish after SIGTERM or SIGINT.",
    ),
    opt(
        "server",
        "max_request_body_size",
        Integer,
        text("67108864"),
        "Largest request body accepted, in bytes; larger ones are answered 413.",
    ),
    opt(
        "server",
        "metrics_enabled",
        Bool,
        text("true"),
        "Serve Prometheus metrics at /metrics.",
    ),
    opt(
        "server",
        "metrics_listen",
        Kind::String,
        Default::None,
        "host:port of a separate listener for /metrics, which needs no token. Unset: /metrics \
         is on the API port and needs a token that passes the `admin_api` rule.",
    ),
    opt(
        "server",
        "healthcheck_enabled",
        Bool,
        text("true"),
        "Answer /healthcheck (no token) as oslo.middleware's healthcheck does.",
    ),
    Opt {
        legacy: legacy("PLACEMENT_LOG"),
        ..opt(
            "server",
            "log_filter",
            Kind::String,
            text("info"),
            "Log filter in tracing's env-filter syntax (e.g. `info,placement::http=debug`).",
        )
    },
    opt(
        "server",
        "log_format",
        Kind::Choice(LOG_FORMATS),
        text("text"),
        "`text` lines as upstream's oslo.log writes them, or one `json` object per line.",
    ),
    opt(
        "server",
        "keystone_timeout",
        Float,
        text("60"),
        "Seconds a whole Keystone request may take before the caller is answered 503 \
         (keystonemiddleware sets no limit; a busy Keystone can take many seconds).",
    ),
];

/// The option `section`/`name`, if the table has it.
pub fn find(section: &str, name: &str) -> Option<&'static Opt> {
    OPTIONS
        .iter()
        .find(|option| option.section == section && option.name == name)
}

/// The option an older `section`/`name` now reads as.
pub fn find_deprecated(section: &str, name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|option| {
        option
            .deprecated
            .iter()
            .any(|(old_section, old_name)| *old_section == section && *old_name == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_is_named_once() {
        for (index, option) in OPTIONS.iter().enumerate() {
            let twin = OPTIONS[index + 1..]
                .iter()
                .any(|other| other.section == option.section && other.name == option.name);
            assert!(!twin, "[{}] {} twice", option.section, option.name);
        }
    }

    #[test]
    fn choice_defaults_are_choices() {
        for option in OPTIONS {
            if let (Kind::Choice(choices), Default::Text(default)) = (option.kind, option.default) {
                assert!(
                    choices.contains(&default),
                    "[{}] {}",
                    option.section,
                    option.name
                );
            }
        }
    }

    #[test]
    fn rbac_maps_to_new_defaults() {
        assert_eq!(rbac_to_new_defaults("legacy").as_deref(), Some("false"));
        assert_eq!(rbac_to_new_defaults("Secure").as_deref(), Some("true"));
        assert_eq!(rbac_to_new_defaults("strict"), None);
    }
}
