//! CORS, as oslo.middleware's CORS filter configured by `[cors]`: the
//! allowed origins, pre-flight answered here, the origin echoed on actual
//! requests. Off when no origin is configured (then OPTIONS is a 405).

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::config::CorsConfig;

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn allowed_origin<'a>(config: &CorsConfig, request: &'a HttpRequest) -> Option<&'a str> {
    header(request, "origin").filter(|origin| {
        config
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin || allowed == "*")
    })
}

/// Answers a CORS pre-flight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), or `None` for any other request.
pub fn preflight(config: &CorsConfig, request: &HttpRequest) -> Option<HttpResponse> {
    if config.allowed_origins.is_empty() {
        return None;
    }
    if request.method() != Method::OPTIONS
        || header(request, "origin").is_none()
        || header(request, "access-control-request-method").is_none()
    {
        return None;
    }
    let mut response = HttpResponse::Ok();
    let Some(origin) = allowed_origin(config, request) else {
        return Some(response.finish());
    };
    let method = header(request, "access-control-request-method").unwrap_or("");
    if !config.allow_methods.iter().any(|allowed| allowed == method) {
        return Some(response.finish());
    }
    let requested_headers: Vec<String> = header(request, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let all_allowed = requested_headers.iter().all(|name| {
        config
            .allow_headers
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
    });
    if !all_allowed {
        return Some(response.finish());
    }
    response.insert_header(("access-control-allow-origin", origin));
    response.insert_header(("access-control-allow-methods", method));
    if config.allow_credentials {
        response.insert_header(("access-control-allow-credentials", "true"));
    }
    if let Some(max_age) = config.max_age {
        response.insert_header(("access-control-max-age", max_age.to_string()));
    }
    if !requested_headers.is_empty() {
        response.insert_header(("access-control-allow-headers", requested_headers.join(",")));
    }
    response.insert_header((header::VARY, "Origin"));
    Some(response.finish())
}

/// Adds the CORS headers of an actual (non-pre-flight) request.
pub fn add_response_headers(config: &CorsConfig, request: &HttpRequest, headers: &mut HeaderMap) {
    let Some(origin) = allowed_origin(config, request) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(
            HeaderName::from_static("access-control-allow-origin"),
            value,
        );
        if config.allow_credentials {
            headers.insert(
                HeaderName::from_static("access-control-allow-credentials"),
                HeaderValue::from_static("true"),
            );
        }
        if !config.expose_headers.is_empty()
            && let Ok(value) = HeaderValue::from_str(&config.expose_headers.join(","))
        {
            headers.insert(
                HeaderName::from_static("access-control-expose-headers"),
                value,
            );
        }
        let vary = match headers
            .get(header::VARY)
            .and_then(|value| value.to_str().ok())
        {
            Some(existing) => format!("{existing},Origin"),
            None => "Origin".to_owned(),
        };
        if let Ok(value) = HeaderValue::from_str(&vary) {
            headers.insert(header::VARY, value);
        }
    }
}
