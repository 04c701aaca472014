//! Keystone token authentication, as keystonemiddleware 13's `auth_token`:
//! the server logs in as its service user (`[keystone_authtoken]`), finds
//! the identity endpoint in that token's catalog, validates each caller's
//! token with `GET /v3/auth/tokens` and builds the identity from the
//! validated token alone, never from headers the caller sent. Validations
//! are cached by a hash of the token until `token_cache_time` or the
//! token's expiry, and requests racing with one new token share one
//! validation. Answers to `keystonemiddleware/auth_token/__init__.py`,
//! `_identity.py` and keystoneauth1's password plugin.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::config::{KeystoneConfig, Named};
use crate::policy::{Credentials, ServiceCredentials};
use crate::telemetry::{Metrics, ValidationResult};

/// keystoneauth renews its token when less than this is left of it.
const MIN_TOKEN_LIFE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Why the Keystone client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `[keystone_authtoken]` lacks what the service user's login needs.
    #[error("{0}")]
    Misconfigured(String),
    #[error("cannot read [keystone_authtoken] cafile {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot build the Keystone HTTP client: {0}")]
    Client(String),
}

/// What went wrong asking Keystone.
#[derive(Debug, thiserror::Error)]
enum KeystoneError {
    /// Keystone says the token is not valid (404).
    #[error("token not valid")]
    Invalid,
    /// The service user's own token was refused (401).
    #[error("Keystone refused the service token")]
    ServiceTokenRefused,
    /// Unreachable, timed out, or an unexpected answer.
    #[error("{0}")]
    Unavailable(String),
}

/// The service user's session: its token and where to validate tokens.
#[derive(Clone)]
struct ServiceSession {
    token: String,
    expires_at: DateTime<Utc>,
    /// The identity endpoint's v3 root, without a trailing slash.
    identity_url: String,
}

#[derive(Debug, Deserialize)]
struct TokenDocument {
    token: Token,
}

#[derive(Debug, Clone, Deserialize)]
struct Entity {
    id: String,
    #[serde(default)]
    domain: Option<Box<Entity>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Role {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct AccessRule {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ApplicationCredential {
    #[serde(default)]
    access_rules: Option<Vec<AccessRule>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Endpoint {
    interface: String,
    url: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

/// The parts of a v3 token document this server reads.
#[derive(Debug, Clone, Deserialize)]
struct Token {
    expires_at: String,
    user: Entity,
    #[serde(default)]
    project: Option<Entity>,
    #[serde(default)]
    domain: Option<Entity>,
    #[serde(default)]
    system: Option<serde_json::Value>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    is_admin_project: Option<bool>,
    #[serde(default)]
    application_credential: Option<ApplicationCredential>,
    #[serde(default)]
    catalog: Option<Vec<CatalogEntry>>,
}

/// A token Keystone confirmed, as cached.
#[derive(Debug)]
struct Validated {
    token: Token,
    expires_at: DateTime<Utc>,
    /// How long the cache may keep it.
    keep_for: Duration,
}

impl Validated {
    fn role_names(&self) -> Vec<String> {
        self.token
            .roles
            .iter()
            .map(|role| role.name.clone())
            .collect()
    }

    fn credentials(&self) -> Credentials {
        let token = &self.token;
        let system_scope = token
            .system
            .as_ref()
            .and_then(|system| system.get("all"))
            .and_then(serde_json::Value::as_bool)
            .filter(|all| *all)
            .map(|_| "all".to_owned());
        Credentials {
            user_id: token.user.id.clone(),
            project_id: token.project.as_ref().map(|project| project.id.clone()),
            roles: self.role_names(),
            system_scope,
            domain_id: token.domain.as_ref().map(|domain| domain.id.clone()),
            user_domain_id: token.user.domain.as_ref().map(|domain| domain.id.clone()),
            project_domain_id: token
                .project
                .as_ref()
                .and_then(|project| project.domain.as_ref())
                .map(|domain| domain.id.clone()),
            is_admin_project: token.is_admin_project.unwrap_or(true),
            service: None,
        }
    }
}

struct ExpireWhenValidationSays;

impl moka::Expiry<[u8; 32], Arc<Validated>> for ExpireWhenValidationSays {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Validated>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.keep_for)
    }
}

pub struct Keystone {
    config: KeystoneConfig,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<ServiceSession>>,
    cache: Option<moka::future::Cache<[u8; 32], Arc<Validated>>>,
    /// The `WWW-Authenticate` value of every 401.
    www_authenticate: std::sync::RwLock<String>,
    metrics: Arc<Metrics>,
}

impl Keystone {
    pub fn new(config: KeystoneConfig, metrics: Arc<Metrics>) -> Result<Keystone, SetupError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("placement-rs/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(config.insecure);
        if let Some(path) = &config.cafile {
            let pem = std::fs::read(path).map_err(|error| SetupError::CaFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                SetupError::CaFile {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                }
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|error| SetupError::Client(error.to_string()))?;
        let cache = config.token_cache_time.map(|_| {
            moka::future::Cache::builder()
                .max_capacity(config.token_cache_size)
                .expire_after(ExpireWhenValidationSays)
                .build()
        });
        let www_authenticate = config
            .www_authenticate_uri
            .clone()
            .unwrap_or_else(|| config.auth_url.clone());
        Ok(Keystone {
            config,
            http,
            session: tokio::sync::Mutex::new(None),
            cache,
            www_authenticate: std::sync::RwLock::new(format!(
                "Keystone uri=\"{www_authenticate}\""
            )),
            metrics,
        })
    }

    /// The `WWW-Authenticate` header a 401 carries.
    pub fn www_authenticate(&self) -> String {
        match self.www_authenticate.read() {
            Ok(value) => value.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Logs in as the service user now: for start-up and the upgrade check.
    pub async fn check_service_login(&self) -> Result<String, String> {
        self.service_session(None)
            .await
            .map(|session| session.identity_url)
            .map_err(|error| error.to_string())
    }

    /// The identity of a request, from its validated token(s).
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
    ) -> Result<Credentials, AuthError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let user_token = header("x-auth-token")
            .or_else(|| header("x-storage-token"))
            .ok_or(AuthError::Unauthorized)?;
        // The service token is judged first: a valid one with a service
        // role lets the user's token be checked with `allow_expired`.
        let service = match header("x-service-token") {
            None => None,
            Some(token) => {
                let validated = self.validated(token, false).await?;
                self.check_access_rules(&validated, method, path)?;
                let roles = validated.role_names();
                let has_service_role = roles.iter().any(|role| {
                    self.config
                        .service_token_roles
                        .iter()
                        .any(|wanted| wanted.eq_ignore_ascii_case(role))
                });
                if !has_service_role && self.config.service_token_roles_required {
                    tracing::warn!("a service token without any of service_token_roles refused");
                    return Err(AuthError::Unauthorized);
                }
                let credentials = validated.credentials();
                Some((
                    ServiceCredentials {
                        user_id: credentials.user_id,
                        user_domain_id: credentials.user_domain_id,
                        project_id: credentials.project_id,
                        project_domain_id: credentials.project_domain_id,
                        roles,
                    },
                    has_service_role,
                ))
            }
        };
        let allow_expired = service.as_ref().is_some_and(|(_, privileged)| *privileged);
        let validated = self.validated(user_token, allow_expired).await?;
        self.check_access_rules(&validated, method, path)?;
        let mut credentials = validated.credentials();
        if credentials.user_id.is_empty() {
            return Err(AuthError::Unauthorized);
        }
        credentials.service = service.map(|(service, _)| service);
        Ok(credentials)
    }

    /// The validation of `token`, from the cache or from Keystone.
    async fn validated(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<Arc<Validated>, AuthError> {
        let validated = match &self.cache {
            None => Arc::new(self.validate_remote(token, allow_expired).await?),
            Some(cache) => {
                let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                let fetched = AtomicBool::new(false);
                let outcome = cache
                    .try_get_with(key, async {
                        fetched.store(true, Ordering::Relaxed);
                        self.validate_remote(token, allow_expired)
                            .await
                            .map(Arc::new)
                    })
                    .await;
                self.metrics.token_cache(!fetched.load(Ordering::Relaxed));
                match outcome {
                    Ok(validated) => validated,
                    Err(error) => return Err((*error).clone()),
                }
            }
        };
        if !allow_expired && validated.expires_at <= Utc::now() {
            return Err(AuthError::Unauthorized);
        }
        Ok(validated)
    }

    /// Application-credential access rules (keystonemiddleware's
    /// `validate_allowed_request`): a token carrying rules may only make the
    /// requests they list for this `service_type`.
    fn check_access_rules(
        &self,
        validated: &Validated,
        method: &str,
        path: &str,
    ) -> Result<(), AuthError> {
        let Some(rules) = validated
            .token
            .application_credential
            .as_ref()
            .and_then(|credential| credential.access_rules.as_ref())
        else {
            return Ok(());
        };
        let Some(service_type) = self.config.service_type.as_deref() else {
            tracing::warn!(
                "a token with application credential access rules was refused: \
                 [keystone_authtoken] service_type is not set"
            );
            return Err(AuthError::Unauthorized);
        };
        let allowed = rules.iter().any(|rule| {
            rule.service.as_deref() == Some(service_type)
                && rule.method.as_deref() == Some(method)
                && rule
                    .path
                    .as_deref()
                    .is_some_and(|pattern| path_matches(pattern, path))
        });
        if allowed {
            Ok(())
        } else {
            Err(AuthError::Unauthorized)
        }
    }

    /// Asks Keystone about `token`, renewing the service token once if
    /// Keystone refuses it.
    async fn validate_remote(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<Validated, AuthError> {
        let started = Instant::now();
        let mut refused = None;
        let outcome = loop {
            let session = match self.service_session(refused.as_deref()).await {
                Ok(session) => session,
                Err(error) => break Err(error),
            };
            match self.ask_validation(&session, token, allow_expired).await {
                Err(KeystoneError::ServiceTokenRefused) if refused.is_none() => {
                    refused = Some(session.token);
                }
                other => break other,
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(validated) => {
                self.metrics
                    .keystone_validation(ValidationResult::Valid, seconds);
                Ok(validated)
            }
            Err(KeystoneError::Invalid) => {
                self.metrics
                    .keystone_validation(ValidationResult::Invalid, seconds);
                tracing::info!("authorization failed for token");
                Err(AuthError::Unauthorized)
            }
            Err(error) => {
                self.metrics
                    .keystone_validation(ValidationResult::Error, seconds);
                tracing::error!(%error, "unable to validate token");
                Err(AuthError::KeystoneUnavailable)
            }
        }
    }

    async fn ask_validation(
        &self,
        session: &ServiceSession,
        token: &str,
        allow_expired: bool,
    ) -> Result<Validated, KeystoneError> {
        let mut url = format!("{}/auth/tokens", session.identity_url);
        let mut query = Vec::new();
        if !self.config.include_service_catalog {
            query.push("nocatalog");
        }
        if allow_expired {
            query.push("allow_expired=1");
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let response = self
            .send(|| {
                self.http
                    .get(&url)
                    .header("X-Auth-Token", &session.token)
                    .header("X-Subject-Token", token)
                    .header("OpenStack-Identity-Access-Rules", "1")
                    .header("Accept", "application/json")
            })
            .await?;
        match response.status().as_u16() {
            200 => {
                let document: TokenDocument = response
                    .json()
                    .await
                    .map_err(|error| KeystoneError::Unavailable(format!("token body: {error}")))?;
                self.validated_from(document.token)
            }
            404 => Err(KeystoneError::Invalid),
            401 => Err(KeystoneError::ServiceTokenRefused),
            status => Err(KeystoneError::Unavailable(format!(
                "Keystone answered {status} to a token validation{}",
                if status == 403 {
                    " (the service user needs the `service` role)"
                } else {
                    ""
                }
            ))),
        }
    }

    fn validated_from(&self, token: Token) -> Result<Validated, KeystoneError> {
        let expires_at = parse_time(&token.expires_at)?;
        let cache_time = self.config.token_cache_time.unwrap_or_default();
        let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
        Ok(Validated {
            token,
            expires_at,
            keep_for: cache_time.min(left),
        })
    }

    /// The service user's session, logging in when there is none, when
    /// less than two minutes are left of it, or when Keystone refused the
    /// token `refused`.
    async fn service_session(
        &self,
        refused: Option<&str>,
    ) -> Result<ServiceSession, KeystoneError> {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref()
            && refused != Some(current.token.as_str())
            && current.expires_at - Utc::now() > MIN_TOKEN_LIFE
        {
            return Ok(current.clone());
        }
        let fresh = self.log_in().await?;
        if self.config.www_authenticate_uri.is_none()
            && let Ok(mut header) = self.www_authenticate.write()
        {
            *header = format!("Keystone uri=\"{}\"", fresh.identity_url);
        }
        *session = Some(fresh.clone());
        Ok(fresh)
    }

    /// keystoneauth's v3 password login, then the identity endpoint from
    /// the token's catalog.
    async fn log_in(&self) -> Result<ServiceSession, KeystoneError> {
        let auth_root = self.v3_root(&self.config.auth_url).await?;
        let named = |named: &Named| match named {
            Named::Id(id) => json!({ "id": id }),
            Named::Name(name) => json!({ "name": name }),
        };
        let mut user = match &self.config.user {
            Named::Id(id) => json!({ "id": id, "password": self.config.password }),
            Named::Name(name) => json!({
                "name": name,
                "password": self.config.password,
                "domain": named(&self.config.user_domain),
            }),
        };
        if matches!(self.config.user, Named::Id(_))
            && let Named::Id(domain) | Named::Name(domain) = &self.config.user_domain
            && domain.is_empty()
            && let Some(object) = user.as_object_mut()
        {
            object.remove("domain");
        }
        let project = match &self.config.project {
            Named::Id(id) => json!({ "id": id }),
            Named::Name(name) => {
                json!({ "name": name, "domain": named(&self.config.project_domain) })
            }
        };
        let body = json!({
            "auth": {
                "identity": { "methods": ["password"], "password": { "user": user } },
                "scope": { "project": project },
            }
        });
        let url = format!("{auth_root}/auth/tokens");
        let response = self
            .send(|| {
                self.http
                    .post(&url)
                    .json(&body)
                    .header("Accept", "application/json")
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(KeystoneError::Unavailable(format!(
                "the service user's login at {url} was answered {status}: check \
                 [keystone_authtoken] username, password, project_name and domains"
            )));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                KeystoneError::Unavailable("login answer without X-Subject-Token".to_owned())
            })?;
        let document: TokenDocument = response
            .json()
            .await
            .map_err(|error| KeystoneError::Unavailable(format!("login answer: {error}")))?;
        let expires_at = parse_time(&document.token.expires_at)?;
        let endpoint = self.identity_endpoint(document.token.catalog.as_deref().unwrap_or(&[]))?;
        let identity_url = self.v3_root(&endpoint).await?;
        tracing::info!(identity = %identity_url, "logged in to Keystone as the service user");
        Ok(ServiceSession {
            token,
            expires_at,
            identity_url,
        })
    }

    fn identity_endpoint(&self, catalog: &[CatalogEntry]) -> Result<String, KeystoneError> {
        let region = self.config.region_name.as_deref();
        catalog
            .iter()
            .filter(|entry| entry.service_type == "identity")
            .flat_map(|entry| &entry.endpoints)
            .find(|endpoint| {
                endpoint.interface == self.config.interface
                    && region.is_none_or(|region| {
                        endpoint.region_id.as_deref() == Some(region)
                            || endpoint.region.as_deref() == Some(region)
                    })
            })
            .map(|endpoint| endpoint.url.clone())
            .ok_or_else(|| {
                KeystoneError::Unavailable(format!(
                    "no identity endpoint with interface {} {} in the service token's catalog \
                     (check [keystone_authtoken] interface and region_name)",
                    self.config.interface,
                    region.map_or_else(String::new, |region| format!("in region {region}")),
                ))
            })
    }

    /// The v3 root of an identity URL: the URL itself when it ends in
    /// `/v3`, else what its version document points to.
    async fn v3_root(&self, url: &str) -> Result<String, KeystoneError> {
        let trimmed = url.trim_end_matches('/');
        if trimmed.ends_with("/v3") {
            return Ok(trimmed.to_owned());
        }
        let response = self
            .send(|| self.http.get(trimmed).header("Accept", "application/json"))
            .await?;
        // Keystone answers its root with 300 Multiple Choices.
        let document: serde_json::Value = response.json().await.map_err(|error| {
            KeystoneError::Unavailable(format!("version discovery at {trimmed}: {error}"))
        })?;
        let versions = match document.pointer("/versions/values") {
            Some(serde_json::Value::Array(values)) => values.clone(),
            _ => document.get("version").cloned().into_iter().collect(),
        };
        versions
            .iter()
            .filter(|version| {
                version
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|id| id.starts_with("v3"))
            })
            .filter_map(|version| version.get("links").and_then(serde_json::Value::as_array))
            .flatten()
            .find(|link| link.get("rel").and_then(serde_json::Value::as_str) == Some("self"))
            .and_then(|link| link.get("href").and_then(serde_json::Value::as_str))
            .map(|href| href.trim_end_matches('/').to_owned())
            .ok_or_else(|| KeystoneError::Unavailable(format!("no Identity v3 at {trimmed}")))
    }

    /// Sends a request, retrying a failed connection up to
    /// `http_request_max_retries` times with a growing pause.
    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, KeystoneError> {
        let mut pause = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            match request().send().await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_connect() && attempt < self.config.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) if error.is_timeout() => {
                    return Err(KeystoneError::Unavailable(format!(
                        "Keystone did not answer within [server] keystone_timeout: {error}"
                    )));
                }
                Err(error) => {
                    return Err(KeystoneError::Unavailable(format!(
                        "Keystone unreachable: {error}"
                    )));
                }
            }
        }
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, KeystoneError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| KeystoneError::Unavailable(format!("token expiry {text:?}: {error}")))
}

/// keystonemiddleware's `_path_matches`: `*` and `{name}` match one path
/// segment, `**` any number of them.
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut expression = String::from("^");
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("**") {
            expression.push_str(".*");
            rest = after;
        } else if let Some(after) = rest.strip_prefix('*') {
            expression.push_str("[^/]+");
            rest = after;
        } else if rest.starts_with('{')
            && let Some(end) = rest.find('}')
        {
            expression.push_str("[^/]+");
            rest = &rest[end + 1..];
        } else {
            let next = rest.chars().next().unwrap_or_default();
            expression.push_str(&regex::escape(&next.to_string()));
            rest = &rest[next.len_utf8()..];
        }
    }
    expression.push('$');
    regex::Regex::new(&expression).is_ok_and(|regex| regex.is_match(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rule_paths_match_as_keystonemiddleware() {
        assert!(path_matches("/resource_providers", "/resource_providers"));
        assert!(path_matches(
            "/resource_providers/*",
            "/resource_providers/abc"
        ));
        assert!(!path_matches(
            "/resource_providers/*",
            "/resource_providers/abc/inventories"
        ));
        assert!(path_matches(
            "/resource_providers/**",
            "/resource_providers/abc/inventories"
        ));
        assert!(path_matches(
            "/resource_providers/{uuid}/traits",
            "/resource_providers/x/traits"
        ));
        assert!(!path_matches("/traits", "/traits/CUSTOM_A"));
        assert!(!path_matches("/a.c", "/abc"));
    }

    fn token(body: serde_json::Value) -> Validated {
        let token: Token = serde_json::from_value(body).expect("token");
        Validated {
            expires_at: parse_time(&token.expires_at).expect("time"),
            token,
            keep_for: Duration::ZERO,
        }
    }

    #[test]
    fn credentials_come_from_the_token() {
        let project_scoped = token(json!({
            "expires_at": "2030-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
        }))
        .credentials();
        assert_eq!(project_scoped.user_id, "u1");
        assert_eq!(project_scoped.project_id.as_deref(), Some("p1"));
        assert_eq!(project_scoped.project_domain_id.as_deref(), Some("default"));
        assert_eq!(project_scoped.roles, vec!["member", "reader"]);
        assert_eq!(project_scoped.system_scope, None);
        assert!(project_scoped.is_admin_project, "absent means true");

        let system = token(json!({
            "expires_at": "2030-01-01T00:00:00Z",
            "user": {"id": "admin"},
            "system": {"all": true},
            "roles": [{"name": "admin"}],
        }))
        .credentials();
        assert_eq!(system.system_scope.as_deref(), Some("all"));
        assert_eq!(system.project_id, None);

        let domain = token(json!({
            "expires_at": "2030-01-01T00:00:00Z",
            "user": {"id": "admin"},
            "domain": {"id": "d1"},
            "is_admin_project": false,
        }))
        .credentials();
        assert_eq!(domain.domain_id.as_deref(), Some("d1"));
        assert!(!domain.is_admin_project);
    }
}
