//! The HTTP layer: one dispatcher in front of the route table, applying
//! upstream's middleware order (request id, auth, microversion, routing,
//! version gate, content negotiation) before a handler runs, and rendering
//! every error the same way. Answers to upstream's `deploy.py` and
//! `handler.py`.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::auth::{self, AuthError, Authenticator};
use crate::errors::ApiError;
use crate::policy::{Credentials, Target};
use crate::state::AppState;
use crate::telemetry;

pub mod cors;
pub mod error_envelope;
pub mod etag;
pub mod framing;
pub mod handlers;
pub mod microversion;
pub mod negotiation;
pub mod operations;
pub mod pyjson;
pub mod query;
pub mod routes;

use microversion::{Microversion, NegotiationError};

/// Everything a handler gets: the request, already authenticated and
/// negotiated.
pub struct Request {
    pub state: web::Data<AppState>,
    pub version: Microversion,
    pub credentials: Credentials,
    pub method: Method,
    path_params: HashMap<&'static str, String>,
    query_string: String,
    headers: HeaderMap,
    body: web::Bytes,
}

impl Request {
    /// A path segment named in the route pattern (percent-decoded).
    pub fn path_param(&self, name: &str) -> &str {
        self.path_params.get(name).map(String::as_str).unwrap_or("")
    }

    /// The raw query string.
    pub fn query_string(&self) -> &str {
        &self.query_string
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Checks a policy rule against the default target (the caller's own
    /// project and user), as upstream's `context.can(action)`.
    pub fn authorize(&self, action: &str) -> Result<(), ApiError> {
        self.authorize_on(action, &Target::of(&self.credentials))
    }

    /// Checks a policy rule against an explicit target.
    pub fn authorize_on(&self, action: &str, target: &Target) -> Result<(), ApiError> {
        if self
            .state
            .policy
            .authorize(action, &self.credentials, target)
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(action))
        }
    }

    /// Parses and validates the JSON body (see `negotiation::parse_json`).
    pub fn json_body(&self, schema: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
        negotiation::parse_json(&self.body, schema)
    }

    /// True when the version shows caching headers (1.15).
    pub fn wants_cache_headers(&self) -> bool {
        self.version.at_least(microversion::CACHE_HEADERS)
    }

    /// A 200 response with a JSON body and, from 1.15, `last-modified`
    /// (the given time, or now) and `cache-control: no-cache`.
    pub fn json_ok<T: Serialize>(
        &self,
        body: &T,
        last_modified: Option<DateTime<Utc>>,
    ) -> HttpResponse {
        self.json_with_status(StatusCode::OK, body, last_modified)
    }

    pub fn json_with_status<T: Serialize>(
        &self,
        status: StatusCode,
        body: &T,
        last_modified: Option<DateTime<Utc>>,
    ) -> HttpResponse {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.json_bytes_with_status(status, bytes, last_modified),
            Err(error) => {
                tracing::error!(%error, "response serialisation failed");
                HttpResponse::InternalServerError().finish()
            }
        }
    }

    /// `json_ok` for a body already serialised (by a handler that writes
    /// it while holding what it is made from).
    pub fn json_bytes_ok(
        &self,
        body: Vec<u8>,
        last_modified: Option<DateTime<Utc>>,
    ) -> HttpResponse {
        self.json_bytes_with_status(StatusCode::OK, body, last_modified)
    }

    fn json_bytes_with_status(
        &self,
        status: StatusCode,
        body: Vec<u8>,
        last_modified: Option<DateTime<Utc>>,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        if self.wants_cache_headers() {
            let modified = last_modified.unwrap_or_else(Utc::now);
            response.insert_header((header::LAST_MODIFIED, http_date(modified)));
            response.insert_header((header::CACHE_CONTROL, "no-cache"));
        }
        response.content_type("application/json").body(body)
    }
}

/// `Sat, 21 Nov 2026 06:10:27 GMT`.
pub fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The newest of an entity's timestamps, as upstream's `pick_last_modified`.
pub fn newest(
    current: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let candidate = updated_at.unwrap_or(created_at);
    Some(current.map_or(candidate, |current| current.max(candidate)))
}

/// webob completes a relative `Location` against the request's URL
/// (`http://` + the Host header, or the address the server listens on),
/// so upstream's clients always see an absolute one.
fn absolute_location(request: &HttpRequest, headers: &mut HeaderMap) {
    let Some(path) = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .filter(|location| location.starts_with('/'))
    else {
        return;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map_or_else(
            || request.app_config().local_addr().to_string(),
            str::to_owned,
        );
    if let Ok(value) = HeaderValue::from_str(&format!("http://{host}{path}")) {
        headers.insert(header::LOCATION, value);
    }
}

fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// An inbound `X-Openstack-Request-Id` of the form oslo.middleware
/// accepts as the global request id (`req-` and a UUID).
fn global_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-openstack-request-id")?.to_str().ok()?;
    let uuid = value.strip_prefix("req-")?;
    (uuid.len() == 36 && uuid::Uuid::parse_str(uuid).is_ok()).then(|| value.to_owned())
}

/// What the log line and metrics need from a request once answered.
#[derive(Default)]
struct Outcome {
    version: Option<Microversion>,
    credentials: Option<Credentials>,
}

/// The default service: every request of the API comes through here.
pub async fn dispatch(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let _in_flight = state.metrics.request_started();
    let request_id = new_request_id();
    let mut outcome = Outcome::default();
    let result = handle(&request, payload, state.clone(), &mut outcome).await;
    let route = match request.path() {
        "/healthcheck" => "/healthcheck",
        "/metrics" => "/metrics",
        path => routes::template(&state.routes, path),
    };
    let mut response = match result {
        Ok(response) => etag::apply(
            request.method(),
            route,
            request.headers().get(header::IF_NONE_MATCH),
            response,
        ),
        Err(Failure::Api {
            error,
            unacceptable_version,
        }) => error_envelope::render(
            &request,
            &error,
            outcome.version,
            &request_id,
            unacceptable_version,
        ),
        Err(Failure::Auth(AuthError::Unauthorized)) => match &state.auth {
            Authenticator::Keystone(keystone) => {
                error_envelope::keystone_unauthorized(&keystone.www_authenticate())
            }
            Authenticator::NoAuth2 => error_envelope::render(
                &request,
                &ApiError::new(StatusCode::UNAUTHORIZED, ""),
                outcome.version,
                &request_id,
                false,
            ),
        },
        Err(Failure::Auth(AuthError::KeystoneUnavailable)) => {
            error_envelope::keystone_unavailable()
        }
        Err(Failure::TooLarge) => {
            let error = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The request body is larger than {} bytes ([server] max_request_body_size).",
                    state.config.max_body_bytes
                ),
            );
            let mut response =
                error_envelope::render(&request, &error, outcome.version, &request_id, false);
            // The rest of the body stays unread: the connection cannot
            // carry another request.
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            response
        }
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(
            header::HeaderName::from_static("x-openstack-request-id"),
            value,
        );
    }
    let shown_version = outcome.version.unwrap_or(microversion::MIN);
    if let Ok(value) = HeaderValue::from_str(&format!("placement {shown_version}")) {
        headers.insert(header::HeaderName::from_static(microversion::HEADER), value);
    }
    headers.insert(header::VARY, HeaderValue::from_static(microversion::HEADER));
    absolute_location(&request, headers);
    // keystonemiddleware puts its header on every 401, whoever wrote it.
    if let Authenticator::Keystone(keystone) = &state.auth
        && response.status() == StatusCode::UNAUTHORIZED
        && !response.headers().contains_key(header::WWW_AUTHENTICATE)
        && let Ok(value) = HeaderValue::from_str(&keystone.www_authenticate())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    cors::add_response_headers(&state.config.cors, &request, response.headers_mut());
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state
        .metrics
        .request_finished(request.method().as_str(), route, status, seconds);
    let remote = request
        .peer_addr()
        .map_or_else(|| "-".to_owned(), |address| address.ip().to_string());
    let uri = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.path().to_owned(), |pq| pq.as_str().to_owned());
    let length = match actix_web::body::MessageBody::size(response.body()) {
        actix_web::body::BodySize::Sized(length) => Some(length),
        actix_web::body::BodySize::None => Some(0),
        actix_web::body::BodySize::Stream => None,
    };
    let credentials = outcome.credentials.as_ref();
    telemetry::RequestLogLine {
        remote_addr: &remote,
        method: request.method().as_str(),
        uri: &uri,
        route,
        status,
        length,
        microversion: outcome.version.map(|version| version.to_string()),
        request_id: &request_id,
        global_request_id: global_request_id(request.headers()).as_deref(),
        user_id: credentials.map(|credentials| credentials.user_id.as_str()),
        project_id: credentials.and_then(|credentials| credentials.project_id.as_deref()),
        seconds,
    }
    .emit(state.config.log_format);
    response
}

enum Failure {
    Api {
        error: ApiError,
        /// Set when the 406 came from version negotiation, so the body
        /// carries `min_version` and `max_version`.
        unacceptable_version: bool,
    },
    Auth(AuthError),
    /// The body is over `[server] max_request_body_size`.
    TooLarge,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::Api {
            error,
            unacceptable_version: false,
        }
    }
}

/// Reads the whole body, refusing one over `limit` bytes without reading
/// the rest of it.
async fn read_body(
    headers: &HeaderMap,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, Failure> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Failure::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            Failure::from(ApiError::bad_request(format!(
                "Cannot read the request body: {error}"
            )))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn handle(
    request: &HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    outcome: &mut Outcome,
) -> Result<HttpResponse, Failure> {
    if let Some(preflight) = cors::preflight(&state.config.cors, request) {
        return Ok(preflight);
    }
    let path = request.path();
    if path == "/healthcheck"
        && state.config.healthcheck
        && matches!(*request.method(), Method::GET | Method::HEAD)
    {
        return Ok(operations::healthcheck(request, &state).await);
    }
    let body = read_body(request.headers(), payload, state.config.max_body_bytes).await?;
    let is_root = path == "/" || path.is_empty();
    let credentials = if is_root {
        auth::anonymous()
    } else {
        let credentials = state
            .auth
            .authenticate(request.headers(), request.method().as_str(), path)
            .await
            .map_err(Failure::Auth)?;
        outcome.credentials = Some(credentials.clone());
        credentials
    };
    if path == "/metrics" && state.config.metrics == Some(None) {
        let allowed = state.policy.authorize(
            crate::policy::actions::ADMIN_API,
            &credentials,
            &Target::of(&credentials),
        );
        if !allowed {
            return Err(ApiError::forbidden(crate::policy::actions::ADMIN_API).into());
        }
        return Ok(operations::metrics(&state));
    }
    let version = match microversion::negotiate(request.headers()) {
        Ok(version) => version,
        Err(NegotiationError::Malformed(error)) => return Err(error.into()),
        Err(NegotiationError::Unacceptable(error)) => {
            return Err(Failure::Api {
                error,
                unacceptable_version: true,
            });
        }
    };
    outcome.version = Some(version);
    negotiation::check_content_length(request.headers(), body.len())?;
    let (operation, path_params) = routes::resolve(&state.routes, request.method(), path)?;
    if !version.at_least(operation.since) {
        return Err(ApiError::new(
            operation.missing_status,
            gate_detail(operation.missing_status),
        )
        .into());
    }
    match operation.content {
        routes::Content::AcceptJson => negotiation::check_accept(request.headers())?,
        routes::Content::JsonBody => negotiation::require_json_content(request.headers())?,
        routes::Content::Unchecked => {}
    }
    let handler = operation.handler;
    let request = Request {
        state: state.clone(),
        version,
        credentials,
        method: request.method().clone(),
        path_params,
        query_string: request.query_string().to_owned(),
        headers: request.headers().clone(),
        body,
    };
    Ok(handler(request).await?)
}

fn gate_detail(status: StatusCode) -> &'static str {
    if status == StatusCode::METHOD_NOT_ALLOWED {
        routes::METHOD_NOT_ALLOWED_DETAIL
    } else {
        ""
    }
}
