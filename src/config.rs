//! Configuration from the environment. Names follow the conformance
//! contract (`PORT`, `DATABASE_URL`, `RBAC`, `POLICY_FILE`, `CORS_*`) and
//! `PLACEMENT_*` for upstream's `[placement]` options. A bad value stops
//! start-up with a message naming the variable.

use std::env;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::policy::Defaults;

/// `[cors]`: the one allowed origin and the request headers a pre-flight
/// may ask for.
#[derive(Clone, Debug, Default)]
pub struct CorsConfig {
    pub allowed_origin: Option<String>,
    pub allow_headers: Vec<String>,
}

/// How allocation candidates are enumerated when capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenerationStrategy {
    DepthFirst,
    BreadthFirst,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub pool_size: u32,
    pub workers: usize,
    pub migrate_on_start: bool,
    pub policy_defaults: Defaults,
    pub policy_file: Option<PathBuf>,
    pub cors: CorsConfig,
    /// `[placement]allocation_conflict_retry_count`.
    pub allocation_conflict_retry_count: u32,
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

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

fn var(name: &'static str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|error: T::Err| ConfigError {
            variable: name,
            value,
            reason: error.to_string(),
        }),
    }
}

fn parse_bool(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError {
                variable: name,
                value,
                reason: "expected true or false".to_owned(),
            }),
        },
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let port: u16 = parse("PORT", 8778)?;
        let bind: IpAddr = parse("PLACEMENT_BIND_ADDRESS", IpAddr::from([127, 0, 0, 1]))?;
        let database_url = var("DATABASE_URL").ok_or_else(|| ConfigError {
            variable: "DATABASE_URL",
            value: String::new(),
            reason: "required, e.g. postgres://user@127.0.0.1:5432/placement".to_owned(),
        })?;
        let pool_size: u32 = parse("PLACEMENT_DB_POOL_SIZE", 16)?;
        if pool_size == 0 {
            return Err(ConfigError {
                variable: "PLACEMENT_DB_POOL_SIZE",
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        let default_workers = std::thread::available_parallelism().map_or(2, usize::from);
        let workers: usize = parse("PLACEMENT_WORKERS", default_workers)?;
        let policy_defaults = match var("RBAC")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("secure") => Defaults::Secure,
            Some("legacy") => Defaults::Legacy,
            Some(other) => {
                return Err(ConfigError {
                    variable: "RBAC",
                    value: other.to_owned(),
                    reason: "expected legacy or secure".to_owned(),
                });
            }
        };
        let max_candidates: i64 = parse("PLACEMENT_MAX_ALLOCATION_CANDIDATES", -1)?;
        let max_allocation_candidates = match max_candidates {
            -1 => None,
            n if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            n => {
                return Err(ConfigError {
                    variable: "PLACEMENT_MAX_ALLOCATION_CANDIDATES",
                    value: n.to_string(),
                    reason: "must be -1 (unlimited) or positive".to_owned(),
                });
            }
        };
        let generation_strategy =
            match var("PLACEMENT_ALLOCATION_CANDIDATES_GENERATION_STRATEGY").as_deref() {
                None | Some("depth-first") => GenerationStrategy::DepthFirst,
                Some("breadth-first") => GenerationStrategy::BreadthFirst,
                Some(other) => {
                    return Err(ConfigError {
                        variable: "PLACEMENT_ALLOCATION_CANDIDATES_GENERATION_STRATEGY",
                        value: other.to_owned(),
                        reason: "expected depth-first or breadth-first".to_owned(),
                    });
                }
            };
        let cors = CorsConfig {
            allowed_origin: var("CORS_ALLOWED_ORIGIN"),
            allow_headers: var("CORS_ALLOW_HEADERS")
                .map(|headers| {
                    headers
                        .split(',')
                        .map(|name| name.trim().to_owned())
                        .filter(|name| !name.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Config {
            listen: SocketAddr::new(bind, port),
            database_url,
            pool_size,
            workers: workers.max(1),
            migrate_on_start: parse_bool("PLACEMENT_MIGRATE_ON_START", true)?,
            policy_defaults,
            policy_file: var("POLICY_FILE").map(PathBuf::from),
            cors,
            allocation_conflict_retry_count: parse(
                "PLACEMENT_ALLOCATION_CONFLICT_RETRY_COUNT",
                10,
            )?,
            incomplete_consumer_project_id: var("PLACEMENT_INCOMPLETE_CONSUMER_PROJECT_ID")
                .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".to_owned()),
            incomplete_consumer_user_id: var("PLACEMENT_INCOMPLETE_CONSUMER_USER_ID")
                .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".to_owned()),
            randomize_allocation_candidates: parse_bool(
                "PLACEMENT_RANDOMIZE_ALLOCATION_CANDIDATES",
                false,
            )?,
            max_allocation_candidates,
            generation_strategy,
        })
    }
}
