//! Configuration: upstream's `placement.conf` (oslo.config conventions),
//! read through one option table (`options`) from files and the
//! environment (`sources`), validated once into a typed [`Config`]. A bad
//! value stops start-up with a message naming section, option and value.

pub mod options;
pub mod sample;
pub mod sources;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use options::{Kind, Opt};
pub use sources::{ConfigFiles, Settings};

use crate::policy::Defaults;

/// `[cors]`, as oslo.middleware's CORS filter reads it.
#[derive(Clone, Debug)]
pub struct CorsConfig {
    /// Empty: CORS is off.
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            allow_credentials: true,
            expose_headers: Vec::new(),
            max_age: None,
            allow_methods: ["GET", "PUT", "POST", "DELETE", "PATCH"]
                .map(str::to_owned)
                .to_vec(),
            allow_headers: Vec::new(),
        }
    }
}

/// How allocation candidates are enumerated when capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerationStrategy {
    DepthFirst,
    BreadthFirst,
}

/// `[keystone_authtoken]`, checked complete for `auth_strategy = keystone`.
#[derive(Clone, Debug)]
pub struct KeystoneConfig {
    pub auth_url: String,
    pub user: Named,
    pub password: String,
    pub user_domain: Named,
    pub project: Named,
    pub project_domain: Named,
    pub www_authenticate_uri: Option<String>,
    pub interface: String,
    pub region_name: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// `None`: validations are not cached (`token_cache_time = -1`).
    pub token_cache_time: Option<Duration>,
    pub token_cache_size: u64,
    pub include_service_catalog: bool,
    pub service_token_roles: Vec<String>,
    pub service_token_roles_required: bool,
    pub service_type: Option<String>,
    pub cafile: Option<PathBuf>,
    pub insecure: bool,
}

/// An entity Keystone knows by id or by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    Id(String),
    Name(String),
}

/// `[api] auth_strategy`.
#[derive(Clone, Debug)]
pub enum AuthStrategy {
    Keystone(Box<KeystoneConfig>),
    /// `keystone` with `[keystone_authtoken]` unusable: the server refuses
    /// to start with this message; commands that need no authentication
    /// (`migrate`) run.
    KeystoneMisconfigured(String),
    NoAuth2,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    /// Where `/metrics` is served: `None` off; `Some(None)` on the API port.
    pub metrics: Option<Option<SocketAddr>>,
    pub healthcheck: bool,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub database_url: String,
    pub pool_size: u32,
    pub pool_timeout: Duration,
    pub connection_recycle_time: Duration,
    /// Start-up attempts to reach the database; `None` keeps trying.
    pub connect_attempts: Option<u32>,
    pub connect_retry_interval: Duration,
    pub migrate_on_start: bool,
    pub auth: AuthStrategy,
    pub policy_defaults: Defaults,
    /// The policy file and the `policy_dirs` files, in the order applied.
    pub policy_files: Vec<PathBuf>,
    pub cors: CorsConfig,
    /// `[placement]allocation_conflict_retry_count`.
    pub allocation_conflict_retry_count: u32,
    /// `[placement]change_feed_retention`.
    pub change_feed_retention: u32,
    /// `[placement]incomplete_consumer_project_id` and `_user_id`.
    pub incomplete_consumer_project_id: String,
    pub incomplete_consumer_user_id: String,
    /// `[placement]randomize_allocation_candidates`.
    pub randomize_allocation_candidates: bool,
    /// `[placement]max_allocation_candidates`; `None` is unlimited (-1).
    pub max_allocation_candidates: Option<usize>,
    /// `[placement]allocation_candidates_generation_strategy`.
    pub generation_strategy: GenerationStrategy,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: [{section}] {option} = {value:?} (from {origin}): {reason}")]
    Invalid {
        section: &'static str,
        option: &'static str,
        value: String,
        origin: String,
        reason: String,
    },
    #[error("missing configuration: [{section}] {option} is required{because}")]
    Missing {
        section: &'static str,
        option: &'static str,
        because: String,
    },
    #[error("cannot read configuration file {path}: {reason}", path = path.display())]
    File { path: PathBuf, reason: String },
}

/// Reads typed values from the settings, naming the option in every error.
struct Reader<'a> {
    settings: &'a Settings,
}

impl Reader<'_> {
    fn option(section: &'static str, name: &'static str) -> &'static Opt {
        match options::find(section, name) {
            Some(option) => option,
            // The names below are all in the table; the unit tests read
            // every one of them, so this cannot happen at run time.
            None => unreachable!("[{section}] {name} is not in the option table"),
        }
    }

    /// The text set for the option, or its default; `None` when unset.
    fn raw(&self, section: &'static str, name: &'static str) -> Option<(String, String)> {
        let option = Self::option(section, name);
        match self.settings.get(option) {
            Some(setting) => Some((setting.value.trim().to_owned(), setting.origin.to_string())),
            None => match option.default {
                options::Default::Text(text) => Some((text.to_owned(), "the default".to_owned())),
                options::Default::None | options::Default::Computed(_) => None,
            },
        }
    }

    fn invalid(
        &self,
        section: &'static str,
        name: &'static str,
        reason: impl Into<String>,
    ) -> ConfigError {
        let option = Self::option(section, name);
        let (value, origin) = self.raw(section, name).unwrap_or_default();
        let value = if option.kind == Kind::Secret {
            "<secret>".to_owned()
        } else {
            value
        };
        ConfigError::Invalid {
            section,
            option: name,
            value,
            origin,
            reason: reason.into(),
        }
    }

    fn string(&self, section: &'static str, name: &'static str) -> Option<String> {
        self.raw(section, name)
            .map(|(value, _)| value)
            .filter(|value| !value.is_empty())
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        section: &'static str,
        name: &'static str,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.string(section, name) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|error: T::Err| self.invalid(section, name, error.to_string())),
        }
    }

    fn integer(&self, section: &'static str, name: &'static str) -> Result<i64, ConfigError> {
        self.parsed(section, name)?
            .ok_or_else(|| self.invalid(section, name, "expected an integer"))
    }

    fn bounded<T: TryFrom<i64>>(
        &self,
        section: &'static str,
        name: &'static str,
        min: i64,
    ) -> Result<T, ConfigError> {
        let value = self.integer(section, name)?;
        if value < min {
            return Err(self.invalid(section, name, format!("must be at least {min}")));
        }
        T::try_from(value).map_err(|_| self.invalid(section, name, "out of range"))
    }

    fn bool(&self, section: &'static str, name: &'static str) -> Result<bool, ConfigError> {
        match self.string(section, name) {
            None => Ok(false),
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(self.invalid(section, name, "expected true or false")),
            },
        }
    }

    fn list(&self, section: &'static str, name: &'static str) -> Vec<String> {
        self.string(section, name)
            .map(|value| {
                value
                    .split(',')
                    .map(|item| item.trim().to_owned())
                    .filter(|item| !item.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn choice(
        &self,
        section: &'static str,
        name: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.string(section, name) else {
            return Ok(None);
        };
        if let Kind::Choice(choices) = Self::option(section, name).kind
            && !choices.contains(&value.as_str())
        {
            return Err(self.invalid(
                section,
                name,
                format!("expected one of {}", choices.join(", ")),
            ));
        }
        Ok(Some(value))
    }

    fn seconds(&self, section: &'static str, name: &'static str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.bounded(section, name, 0)?))
    }
}

impl Config {
    /// Reads the configuration: the files (named or found), then the
    /// process environment.
    pub fn load(files: &ConfigFiles) -> Result<(Config, Vec<String>), ConfigError> {
        let settings = Settings::load(files, &|name| std::env::var(name).ok())?;
        let config = Config::from_settings(&settings, files)?;
        let mut warnings = settings.warnings.clone();
        if let Some(missing) = missing_policy_file(&settings, files, &config) {
            warnings.push(missing);
        }
        Ok((config, warnings))
    }

    /// The configuration `settings` describe.
    pub fn from_settings(settings: &Settings, files: &ConfigFiles) -> Result<Config, ConfigError> {
        let read = Reader { settings };
        let host = read.string("server", "bind_host").unwrap_or_default();
        let port: u16 = read.bounded("server", "port", 0)?;
        let bind: IpAddr = host
            .parse()
            .map_err(|_| read.invalid("server", "bind_host", "expected an IP address"))?;
        let workers = match read.string("server", "workers") {
            None => std::thread::available_parallelism().map_or(2, usize::from),
            Some(_) => read.bounded("server", "workers", 1)?,
        };
        let metrics = if read.bool("server", "metrics_enabled")? {
            match read.string("server", "metrics_listen") {
                None => Some(None),
                Some(address) => Some(Some(
                    address
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut found| found.next())
                        .ok_or_else(|| {
                            read.invalid("server", "metrics_listen", "expected host:port")
                        })?,
                )),
            }
        } else {
            None
        };
        let log_format = if read.bool("DEFAULT", "use_json")? {
            LogFormat::Json
        } else {
            match read.choice("server", "log_format")?.as_deref() {
                Some("json") => LogFormat::Json,
                _ => LogFormat::Text,
            }
        };
        let log_filter = if read.bool("DEFAULT", "debug")? {
            "debug".to_owned()
        } else {
            read.string("server", "log_filter")
                .unwrap_or_else(|| "info".to_owned())
        };
        let database_url = database_url(&read)?;
        let max_retries: i64 = read.integer("placement_database", "max_retries")?;
        let connect_attempts = match max_retries {
            -1 => None,
            n if n >= 0 => Some(u32::try_from(n).unwrap_or(u32::MAX).max(1)),
            _ => {
                return Err(read.invalid(
                    "placement_database",
                    "max_retries",
                    "must be -1 (keep trying) or at least 0",
                ));
            }
        };
        let max_candidates: i64 = read.integer("placement", "max_allocation_candidates")?;
        let max_allocation_candidates = match max_candidates {
            -1 => None,
            n if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => {
                return Err(read.invalid(
                    "placement",
                    "max_allocation_candidates",
                    "must be -1 (unlimited) or positive",
                ));
            }
        };
        let generation_strategy = match read
            .choice("placement", "allocation_candidates_generation_strategy")?
            .as_deref()
        {
            Some("breadth-first") => GenerationStrategy::BreadthFirst,
            _ => GenerationStrategy::DepthFirst,
        };
        let policy_defaults = if read.bool("oslo_policy", "enforce_new_defaults")? {
            Defaults::Secure
        } else {
            Defaults::Legacy
        };
        let max_age: i64 = read.integer("cors", "max_age")?;
        let cors = CorsConfig {
            allowed_origins: read.list("cors", "allowed_origin"),
            allow_credentials: read.bool("cors", "allow_credentials")?,
            expose_headers: read.list("cors", "expose_headers"),
            max_age: u32::try_from(max_age).ok(),
            allow_methods: read.list("cors", "allow_methods"),
            allow_headers: read.list("cors", "allow_headers"),
        };
        let auth = match read.choice("api", "auth_strategy")?.as_deref() {
            Some("noauth2") => AuthStrategy::NoAuth2,
            _ => match keystone(&read) {
                Ok(options) => AuthStrategy::Keystone(Box::new(options)),
                Err(error) => AuthStrategy::KeystoneMisconfigured(error.to_string()),
            },
        };
        Ok(Config {
            listen: SocketAddr::new(bind, port),
            workers,
            shutdown_timeout: read.seconds("server", "shutdown_timeout")?,
            max_body_bytes: read.bounded("server", "max_request_body_size", 1)?,
            metrics,
            healthcheck: read.bool("server", "healthcheck_enabled")?,
            log_filter,
            log_format,
            database_url,
            pool_size: read.bounded("placement_database", "max_pool_size", 1)?,
            pool_timeout: Duration::from_secs(read.bounded(
                "placement_database",
                "pool_timeout",
                1,
            )?),
            connection_recycle_time: read
                .seconds("placement_database", "connection_recycle_time")?,
            connect_attempts,
            connect_retry_interval: read.seconds("placement_database", "retry_interval")?,
            migrate_on_start: read.bool("placement_database", "sync_on_startup")?,
            auth,
            policy_defaults,
            policy_files: policy_files(&read, &settings.config_dirs(files))?,
            cors,
            allocation_conflict_retry_count: read.bounded(
                "placement",
                "allocation_conflict_retry_count",
                1,
            )?,
            change_feed_retention: read.bounded("placement", "change_feed_retention", 1)?,
            incomplete_consumer_project_id: read
                .string("placement", "incomplete_consumer_project_id")
                .unwrap_or_default(),
            incomplete_consumer_user_id: read
                .string("placement", "incomplete_consumer_user_id")
                .unwrap_or_default(),
            randomize_allocation_candidates: read
                .bool("placement", "randomize_allocation_candidates")?,
            max_allocation_candidates,
            generation_strategy,
        })
    }

    /// The table's defaults on `database_url`, with noauth2: for tests and
    /// tools that build a server in-process.
    pub fn defaults_for(database_url: &str) -> Config {
        let mut settings = Settings::default();
        settings.set_value("placement_database", "connection", database_url);
        settings.set_value("api", "auth_strategy", "noauth2");
        match Config::from_settings(&settings, &ConfigFiles::default()) {
            Ok(config) => config,
            Err(error) => unreachable!("the table's defaults are valid: {error}"),
        }
    }
}

/// `[placement_database] connection`, as libpq takes it.
fn database_url(read: &Reader<'_>) -> Result<String, ConfigError> {
    const SECTION: &str = "placement_database";
    let url = read
        .string(SECTION, "connection")
        .ok_or(ConfigError::Missing {
            section: SECTION,
            option: "connection",
            because: " (or $DATABASE_URL), e.g. postgresql://placement:secret@127.0.0.1/placement"
                .to_owned(),
        })?;
    let url = match url.split_once("://") {
        // libpq keyword strings (`host=a,b dbname=...`) go as they are.
        None => return Ok(url),
        Some((scheme, rest)) => {
            let dialect = scheme.split('+').next().unwrap_or(scheme);
            match dialect {
                "postgresql" | "postgres" => format!("postgresql://{rest}"),
                "mysql" | "mariadb" => {
                    return Err(read.invalid(
                        SECTION,
                        "connection",
                        "this server stores its data in PostgreSQL; a MySQL/MariaDB URL \
                         cannot be used (give a postgresql:// URL)",
                    ));
                }
                _ => {
                    return Err(read.invalid(
                        SECTION,
                        "connection",
                        "expected a postgresql:// (or postgresql+psycopg2://) URL",
                    ));
                }
            }
        }
    };
    Ok(match read.string(SECTION, "connection_parameters") {
        Some(parameters) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}{}", parameters.trim_start_matches('?'))
        }
        None => url,
    })
}

/// A warning when the operator named a policy file that is not there
/// (oslo.policy then applies the defaults alone, and so does this server).
fn missing_policy_file(
    settings: &Settings,
    files: &ConfigFiles,
    config: &Config,
) -> Option<String> {
    let read = Reader { settings };
    let setting = settings.get(Reader::option("oslo_policy", "policy_file"))?;
    let name = read.string("oslo_policy", "policy_file")?;
    let found = resolve(
        Path::new(&name),
        &settings.config_dirs(files),
        Path::is_file,
    );
    (found.is_none() && !config.policy_files.iter().any(|path| path.ends_with(&name))).then(|| {
        format!(
            "[oslo_policy] policy_file = {name:?} (from {}) is not in {}: the default policy \
             applies",
            setting.origin,
            settings
                .config_dirs(files)
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The policy file and `policy_dirs` files, resolved as oslo.policy does:
/// a relative name against the configuration files' directories. A file
/// that is not there means the defaults alone, as with oslo.policy.
fn policy_files(read: &Reader<'_>, config_dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    const SECTION: &str = "oslo_policy";
    let mut files = Vec::new();
    if let Some(name) = read.string(SECTION, "policy_file")
        && let Some(path) = resolve(Path::new(&name), config_dirs, Path::is_file)
    {
        files.push(path);
    }
    for dir in read.list(SECTION, "policy_dirs") {
        if let Some(dir) = resolve(Path::new(&dir), config_dirs, Path::is_dir) {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|entry| entry.path())
                        .filter(|path| {
                            path.is_file()
                                && path.extension().is_some_and(|ext| {
                                    ext == "yaml" || ext == "yml" || ext == "json"
                                })
                        })
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            files.extend(found);
        }
    }
    Ok(files)
}

fn resolve(name: &Path, dirs: &[PathBuf], exists: fn(&Path) -> bool) -> Option<PathBuf> {
    if name.is_absolute() {
        return exists(name).then(|| name.to_path_buf());
    }
    dirs.iter()
        .map(|dir| dir.join(name))
        .chain(std::iter::once(name.to_path_buf()))
        .find(|path| exists(path))
}

/// `[keystone_authtoken]`, with everything the service user's login needs.
fn keystone(read: &Reader<'_>) -> Result<KeystoneConfig, ConfigError> {
    const SECTION: &str = "keystone_authtoken";
    let missing = |option: &'static str, because: &str| ConfigError::Missing {
        section: SECTION,
        option,
        because: format!(" with [api] auth_strategy = keystone{because}"),
    };
    if read.choice(SECTION, "auth_type")?.is_none() {
        return Err(missing("auth_type", " (set auth_type = password)"));
    }
    if read.bool(SECTION, "delay_auth_decision")? {
        return Err(read.invalid(
            SECTION,
            "delay_auth_decision",
            "Placement refuses requests without a valid token; set it to false",
        ));
    }
    let auth_url = read
        .string(SECTION, "auth_url")
        .ok_or_else(|| missing("auth_url", ""))?;
    url::Url::parse(&auth_url)
        .map_err(|error| read.invalid(SECTION, "auth_url", error.to_string()))?;
    let named = |id: &'static str, name: &'static str| {
        read.string(SECTION, id)
            .map(Named::Id)
            .or_else(|| read.string(SECTION, name).map(Named::Name))
    };
    let default_domain = read
        .string(SECTION, "default_domain_id")
        .map(Named::Id)
        .or_else(|| read.string(SECTION, "default_domain_name").map(Named::Name));
    let user = named("user_id", "username").ok_or_else(|| missing("username", " (or user_id)"))?;
    let password = read
        .string(SECTION, "password")
        .ok_or_else(|| missing("password", ""))?;
    let project = named("project_id", "project_name")
        .ok_or_else(|| missing("project_name", " (or project_id)"))?;
    // A user or project given by id needs no domain.
    let user_domain = match named("user_domain_id", "user_domain_name").or(default_domain.clone()) {
        Some(domain) => domain,
        None if matches!(user, Named::Id(_)) => Named::Id(String::new()),
        None => return Err(missing("user_domain_name", " (or user_domain_id)")),
    };
    let project_domain = match named("project_domain_id", "project_domain_name").or(default_domain)
    {
        Some(domain) => domain,
        None if matches!(project, Named::Id(_)) => Named::Id(String::new()),
        None => return Err(missing("project_domain_name", " (or project_domain_id)")),
    };
    let cache_time: i64 = read.integer(SECTION, "token_cache_time")?;
    let token_cache_time = match cache_time {
        n if n < 0 => None,
        n => Some(Duration::from_secs(n.unsigned_abs())),
    };
    let connect_timeout = match read.string(SECTION, "http_connect_timeout") {
        None => Duration::from_secs(10),
        Some(_) => Duration::from_secs(read.bounded(SECTION, "http_connect_timeout", 1)?),
    };
    let request_timeout: f64 = read.parsed("server", "keystone_timeout")?.unwrap_or(60.0);
    if !(request_timeout > 0.0 && request_timeout.is_finite()) {
        return Err(read.invalid("server", "keystone_timeout", "must be positive"));
    }
    Ok(KeystoneConfig {
        auth_url,
        user,
        password,
        user_domain,
        project,
        project_domain,
        www_authenticate_uri: read.string(SECTION, "www_authenticate_uri"),
        interface: read
            .choice(SECTION, "interface")?
            .unwrap_or_else(|| "internal".to_owned()),
        region_name: read.string(SECTION, "region_name"),
        connect_timeout,
        request_timeout: Duration::from_secs_f64(request_timeout),
        max_retries: read.bounded(SECTION, "http_request_max_retries", 0)?,
        token_cache_time,
        token_cache_size: read.bounded(SECTION, "token_cache_size", 1)?,
        include_service_catalog: read.bool(SECTION, "include_service_catalog")?,
        service_token_roles: read.list(SECTION, "service_token_roles"),
        service_token_roles_required: read.bool(SECTION, "service_token_roles_required")?,
        service_type: read.string(SECTION, "service_type"),
        cafile: read.string(SECTION, "cafile").map(PathBuf::from),
        insecure: read.bool(SECTION, "insecure")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&'static str, &'static str, &str)]) -> Result<Config, ConfigError> {
        let mut settings = Settings::default();
        settings.set_value("placement_database", "connection", "postgresql://db/p");
        for (section, name, value) in pairs {
            settings.set_value(section, name, value);
        }
        Config::from_settings(&settings, &ConfigFiles::default())
    }

    const KEYSTONE: &[(&str, &str, &str)] = &[
        ("keystone_authtoken", "auth_type", "password"),
        ("keystone_authtoken", "auth_url", "http://ks:5000/v3"),
        ("keystone_authtoken", "username", "placement"),
        ("keystone_authtoken", "password", "secret"),
        ("keystone_authtoken", "project_name", "service"),
        ("keystone_authtoken", "user_domain_name", "Default"),
        ("keystone_authtoken", "project_domain_id", "default"),
    ];

    fn keystone_problem(pairs: &[(&'static str, &'static str, &str)]) -> Option<String> {
        match config(pairs).map(|config| config.auth) {
            Ok(AuthStrategy::KeystoneMisconfigured(message)) => Some(message),
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        }
    }

    #[test]
    fn the_defaults_are_upstreams() {
        // Upstream's default strategy is keystone, which needs its options.
        let problem = keystone_problem(&[]);
        assert!(
            problem.is_some_and(|text| text.contains("[keystone_authtoken] auth_type")),
            "keystone is the default and names what is missing"
        );
        let config = Config::defaults_for("postgresql://db/p");
        assert_eq!(config.listen.port(), 8778);
        assert_eq!(config.pool_size, 16);
        assert_eq!(config.policy_defaults, Defaults::Secure);
        assert_eq!(config.allocation_conflict_retry_count, 10);
        assert!(config.migrate_on_start);
        assert!(config.cors.allowed_origins.is_empty());
    }

    #[test]
    fn keystone_options_complete_start_it() {
        let config = config(KEYSTONE).expect("complete");
        let AuthStrategy::Keystone(keystone) = config.auth else {
            panic!("keystone expected");
        };
        assert_eq!(keystone.user, Named::Name("placement".to_owned()));
        assert_eq!(keystone.project_domain, Named::Id("default".to_owned()));
        assert_eq!(keystone.token_cache_time, Some(Duration::from_secs(300)));
        assert_eq!(keystone.interface, "internal");
        assert!(keystone.service_token_roles_required);
    }

    #[test]
    fn each_missing_keystone_option_is_named() {
        for skipped in [
            "auth_url",
            "username",
            "password",
            "project_name",
            "user_domain_name",
        ] {
            let pairs: Vec<_> = KEYSTONE
                .iter()
                .copied()
                .filter(|(_, name, _)| *name != skipped)
                .collect();
            let problem = keystone_problem(&pairs);
            assert!(
                problem
                    .as_deref()
                    .is_some_and(|text| text.contains(skipped)),
                "{skipped}: {problem:?}"
            );
        }
    }

    #[test]
    fn connection_urls_in_upstreams_forms() {
        let url = |value: &str| {
            config(&[
                ("api", "auth_strategy", "noauth2"),
                ("placement_database", "connection", value),
            ])
            .map(|config| config.database_url)
            .map_err(|error| error.to_string())
        };
        assert_eq!(
            url("postgresql+psycopg2://u:p@h/db").as_deref(),
            Ok("postgresql://u:p@h/db")
        );
        assert_eq!(url("postgres://h/db").as_deref(), Ok("postgresql://h/db"));
        assert_eq!(url("host=a,b dbname=p").as_deref(), Ok("host=a,b dbname=p"));
        let mysql = url("mysql+pymysql://root:pw@h/placement")
            .err()
            .unwrap_or_default();
        assert!(
            mysql.contains("PostgreSQL") && mysql.contains("connection"),
            "{mysql}"
        );
        assert!(!mysql.contains("pw@"), "the secret is not printed: {mysql}");
    }

    #[test]
    fn invalid_values_name_section_option_and_value() {
        let error = config(&[
            ("api", "auth_strategy", "noauth2"),
            ("server", "port", "eighty"),
        ])
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
        assert!(error.contains("[server] port = \"eighty\""), "{error}");
        let error = config(&[("api", "auth_strategy", "noauth3")])
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("[api] auth_strategy") && error.contains("keystone, noauth2"));
    }

    #[test]
    fn a_missing_policy_file_means_the_defaults_and_a_warning() {
        let noauth = ("api", "auth_strategy", "noauth2");
        assert!(config(&[noauth]).is_ok_and(|config| config.policy_files.is_empty()));
        let mut settings = Settings::default();
        settings.set_value("placement_database", "connection", "postgresql://db/p");
        settings.set_value("api", "auth_strategy", "noauth2");
        settings.set_value("oslo_policy", "policy_file", "/nonexistent.yaml");
        let files = ConfigFiles::default();
        let config = Config::from_settings(&settings, &files).expect("valid");
        assert!(config.policy_files.is_empty());
        let warning = missing_policy_file(&settings, &files, &config).unwrap_or_default();
        assert!(warning.contains("[oslo_policy] policy_file"), "{warning}");
    }

    /// A placement.conf as kolla-ansible and upstream's install guide write
    /// it reads with no unknown option and no error.
    #[test]
    fn a_real_deployments_placement_conf_reads_cleanly() {
        let dir = std::env::temp_dir().join(format!("placement-kolla-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("placement.conf");
        std::fs::write(
            &path,
            "[DEFAULT]\ndebug = False\nlog_file = /var/log/kolla/placement/placement-api.log\n\
             state_path = /var/lib/placement\n\n\
             [api]\nauth_strategy = keystone\n\n\
             [placement_database]\nconnection = postgresql+psycopg2://placement:pw@db:5432/placement\n\
             max_retries = -1\nmax_pool_size = 8\nmax_overflow = 1000\n\n\
             [keystone_authtoken]\nservice_type = placement\nwww_authenticate_uri = https://ks:5000\n\
             auth_url = https://ks-internal:5000\nauth_type = password\nproject_domain_id = default\n\
             user_domain_id = default\nproject_name = service\nusername = placement\npassword = pw\n\
             region_name = RegionOne\nmemcache_security_strategy = ENCRYPT\n\
             memcache_secret_key = s3cr3t\nmemcached_servers = ctl1:11211,ctl2:11211\n\n\
             [oslo_middleware]\nenable_proxy_headers_parsing = True\n\n\
             [oslo_policy]\npolicy_file = policy.yaml\n",
        )
        .expect("write");
        let files = ConfigFiles {
            files: vec![path],
            dirs: Vec::new(),
        };
        let settings = Settings::load(&files, &|_| None).expect("reads");
        let config = Config::from_settings(&settings, &files).expect("valid");
        let AuthStrategy::Keystone(keystone) = &config.auth else {
            panic!("keystone expected: {:?}", config.auth);
        };
        assert_eq!(keystone.user_domain, Named::Id("default".to_owned()));
        assert_eq!(
            config.connect_attempts, None,
            "max_retries = -1 keeps trying"
        );
        assert_eq!(config.pool_size, 8);
        let unknown: Vec<_> = settings
            .warnings
            .iter()
            .filter(|w| w.contains("unknown"))
            .collect();
        assert!(unknown.is_empty(), "{unknown:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
