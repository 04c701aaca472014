//! The HTTP layer: one dispatcher in front of the route table, applying
//! upstream's middleware order (request id, auth, microversion, routing,
//! version gate, content negotiation) before a handler runs, and rendering
//! every error the same way. Answers to upstream's `deploy.py` and
//! `handler.py`.

use std::collections::HashMap;

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::errors::ApiError;
use crate::policy::{Credentials, Target};
use crate::state::AppState;

pub mod auth;
pub mod cors;
pub mod error_envelope;
pub mod framing;
pub mod handlers;
pub mod microversion;
pub mod negotiation;
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

fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// The default service: every request of the API comes through here.
pub async fn dispatch(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let request_id = new_request_id();
    let mut version = None;
    let outcome = handle(&request, body, state.clone(), &mut version).await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(Failure {
            error,
            unacceptable_version,
        }) => error_envelope::render(&request, &error, version, &request_id, unacceptable_version),
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(
            header::HeaderName::from_static("x-openstack-request-id"),
            value,
        );
    }
    let shown_version = version.unwrap_or(microversion::MIN);
    if let Ok(value) = HeaderValue::from_str(&format!("placement {shown_version}")) {
        headers.insert(header::HeaderName::from_static(microversion::HEADER), value);
    }
    headers.insert(header::VARY, HeaderValue::from_static(microversion::HEADER));
    cors::add_response_headers(&state.config.cors, &request, headers);
    tracing::info!(
        method = %request.method(),
        path = request.path(),
        status = response.status().as_u16(),
        microversion = %shown_version,
        request_id = %request_id,
        "request"
    );
    response
}

struct Failure {
    error: ApiError,
    /// Set when the 406 came from version negotiation, so the body carries
    /// `min_version` and `max_version`.
    unacceptable_version: bool,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            unacceptable_version: false,
        }
    }
}

async fn handle(
    request: &HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    version_out: &mut Option<Microversion>,
) -> Result<HttpResponse, Failure> {
    if let Some(preflight) = cors::preflight(&state.config.cors, request) {
        return Ok(preflight);
    }
    let path = request.path();
    let is_root = path == "/" || path.is_empty();
    let credentials = if is_root {
        None
    } else {
        Some(auth::authenticate(request.headers())?)
    };
    let version = match microversion::negotiate(request.headers()) {
        Ok(version) => version,
        Err(NegotiationError::Malformed(error)) => return Err(error.into()),
        Err(NegotiationError::Unacceptable(error)) => {
            return Err(Failure {
                error,
                unacceptable_version: true,
            });
        }
    };
    *version_out = Some(version);
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
        credentials: credentials.unwrap_or_else(auth::anonymous),
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
