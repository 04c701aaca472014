//! Content negotiation and body parsing: Accept (406), Content-Type (415),
//! Content-Length sanity, JSON parsing and schema validation, with
//! upstream's texts (`placement/util.py`: `check_accept`,
//! `require_content`, `extract_json`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};

use crate::errors::ApiError;
use crate::schemas::validator;

const JSON: &str = "application/json";

/// 406 unless the Accept header (if any) admits `application/json`.
pub fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(());
    };
    if accept.trim().is_empty() {
        return Ok(());
    }
    let acceptable = accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|param| {
            param
                .trim()
                .strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused && matches!(media.as_str(), JSON | "application/*" | "*/*")
    });
    if acceptable {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Only {JSON} is provided"),
        ))
    }
}

/// 415 unless the request's media type is `application/json`.
pub fn require_json_content(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|value| !value.is_empty());
    match content_type {
        Some(media) if media == JSON => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "The media type {} is not supported, use {JSON}",
                other.as_deref().unwrap_or("None")
            ),
        )),
    }
}

/// A body needs a Content-Type, as upstream's `PlacementHandler` insists.
pub fn check_content_length(headers: &HeaderMap, body_length: usize) -> Result<(), ApiError> {
    if body_length > 0 && headers.get(header::CONTENT_TYPE).is_none() {
        return Err(ApiError::bad_request(
            "content-type header required when content-length > 0",
        ));
    }
    Ok(())
}

/// Parses a JSON body and validates it against `schema`.
pub fn parse_json(body: &[u8], schema: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
    let data: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("Malformed JSON: {error}")))?;
    validate_value(&data, schema)?;
    Ok(data)
}

/// Validates an already-built value (such as a name taken from the path)
/// as if it had been the request body.
pub fn validate_value(
    data: &serde_json::Value,
    schema: &serde_json::Value,
) -> Result<(), ApiError> {
    validator::validate(schema, data)
        .map_err(|error| ApiError::bad_request(format!("JSON does not validate: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        map
    }

    #[test]
    fn accept_rules() {
        assert!(check_accept(&HeaderMap::new()).is_ok());
        assert!(check_accept(&with("accept", "application/json")).is_ok());
        assert!(
            check_accept(&with(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            ))
            .is_ok()
        );
        assert!(check_accept(&with("accept", "text/plain")).is_err());
        assert!(
            check_accept(&with(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9"
            ))
            .is_err()
        );
    }

    #[test]
    fn content_type_rules() {
        assert!(require_json_content(&with("content-type", "application/json")).is_ok());
        assert!(
            require_json_content(&with("content-type", "application/json; charset=utf-8")).is_ok()
        );
        let error = require_json_content(&HeaderMap::new()).err();
        assert_eq!(
            error.map(|error| error.detail),
            Some("The media type None is not supported, use application/json".to_owned())
        );
    }
}
