//! Content negotiation and body parsing: Accept (406), Content-Type (415),
//! Content-Length sanity, JSON parsing and schema validation, with
//! upstream's texts (`placement/util.py`: `check_accept`,
//! `require_content`, `extract_json`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};

use crate::errors::ApiError;
use crate::schemas::validator;

const JSON: &str = "application/json";

/// 406 unless the Accept header (if any) admits `application/json`, as
/// webob's `acceptable_offers(['application/json'])` decides it.
pub fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(());
    };
    if accept.trim().is_empty() || accept_quality(accept, "application", "json") > 0.0 {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Only {JSON} is provided"),
        ))
    }
}

/// The quality an Accept header gives the media type `kind/sub`: that of
/// the most specific media range matching it (`kind/sub`, then `kind/*`,
/// then `*/*`), 0 when none does; as webob's `acceptable_offers`.
pub fn accept_quality(accept: &str, kind: &str, sub: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((range_kind, range_sub)) = parts.next().and_then(|media| media.split_once('/'))
        else {
            continue;
        };
        let (range_kind, range_sub) = (range_kind.trim(), range_sub.trim());
        let quality = parts
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().ok())
            })
            .next()
            .unwrap_or(Some(1.0));
        let Some(quality) = quality else { continue };
        let specificity =
            if range_kind.eq_ignore_ascii_case(kind) && range_sub.eq_ignore_ascii_case(sub) {
                3
            } else if range_kind.eq_ignore_ascii_case(kind) && range_sub == "*" {
                2
            } else if range_kind == "*" && range_sub == "*" {
                1
            } else {
                continue;
            };
        if best.is_none_or(|(seen, _)| specificity > seen) {
            best = Some((specificity, quality));
        }
    }
    best.map_or(0.0, |(_, quality)| quality)
}

/// 415 unless the request's media type is `application/json`.
pub fn require_json_content(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|value| !value.is_empty());
    match content_type {
        // Media types are case-insensitive (webob compares them as sent).
        Some(media) if media.eq_ignore_ascii_case(JSON) => Ok(()),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "The media type {} is not supported, use {JSON}",
                other.as_deref().unwrap_or("None")
            ),
        )),
    }
}

/// A body needs a Content-Type, as upstream's `PlacementHandler` insists
/// (`not environ.get('CONTENT_TYPE')`: an empty one is none).
pub fn check_content_length(headers: &HeaderMap, body_length: usize) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .filter(|value| !value.as_bytes().trim_ascii().is_empty());
    if body_length > 0 && content_type.is_none() {
        return Err(ApiError::bad_request(
            "content-type header required when content-length > 0",
        ));
    }
    Ok(())
}

/// Parses a JSON body and validates it against `schema`. A body upstream
/// could not read is refused with the words of Python's `json.loads` (or
/// of its UTF-8 decoder), which upstream's `extract_json` passes on.
pub fn parse_json(body: &[u8], schema: &serde_json::Value) -> Result<serde_json::Value, ApiError> {
    if let Err(reason) = super::pyjson::check(body) {
        return Err(ApiError::bad_request(format!("Malformed JSON: {reason}")));
    }
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
    fn malformed_json_is_worded_as_python_words_it() {
        let words = |body: &[u8]| crate::http::pyjson::check(body).err();
        assert_eq!(
            words(b"\"\\u1234").as_deref(),
            Some("Invalid \\uXXXX escape: line 1 column 3 (char 2)")
        );
        assert_eq!(
            words("[\"\u{e9}\",\n x]".as_bytes()).as_deref(),
            Some("Expecting value: line 2 column 2 (char 7)")
        );
        assert_eq!(
            words(b"\xff").as_deref(),
            Some("'utf-8' codec can't decode byte 0xff in position 0: invalid start byte")
        );
        assert_eq!(words(b"[NaN, -Infinity]"), None);
        // Too deep for the scanner: serde_json's limit answers.
        assert_eq!(words(&[b'['; 100_000]), None);
        assert!(parse_json(&[b'['; 100_000], &serde_json::json!({})).is_err());
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
