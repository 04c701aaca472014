//! Microversions: the `Microversion` type, the named feature gates, and
//! negotiation of the `OpenStack-API-Version` header. Answers to upstream's
//! `placement/microversion.py` and microversion-parse.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;

use crate::errors::ApiError;

/// A Placement API microversion, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    major: u32,
    minor: u32,
}

const fn v(major: u32, minor: u32) -> Microversion {
    Microversion { major, minor }
}

pub const MIN: Microversion = v(1, 0);
pub const MAX: Microversion = v(1, 39);

// Feature gates, named for what the microversion introduced.
pub const AGGREGATES: Microversion = v(1, 1);
pub const RESOURCE_CLASSES: Microversion = v(1, 2);
pub const MEMBER_OF_FILTER: Microversion = v(1, 3);
pub const RESOURCES_FILTER: Microversion = v(1, 4);
pub const DELETE_ALL_INVENTORIES: Microversion = v(1, 5);
pub const TRAITS: Microversion = v(1, 6);
pub const RESOURCE_CLASS_PUT_CREATES: Microversion = v(1, 7);
pub const PROJECT_USER_REQUIRED: Microversion = v(1, 8);
pub const USAGES: Microversion = v(1, 9);
pub const ALLOCATION_CANDIDATES: Microversion = v(1, 10);
pub const ALLOCATIONS_LINK: Microversion = v(1, 11);
pub const ALLOCATIONS_DICT: Microversion = v(1, 12);
pub const POST_ALLOCATIONS: Microversion = v(1, 13);
pub const NESTED_PROVIDERS: Microversion = v(1, 14);
pub const CACHE_HEADERS: Microversion = v(1, 15);
pub const CANDIDATES_LIMIT: Microversion = v(1, 16);
pub const CANDIDATES_REQUIRED: Microversion = v(1, 17);
pub const PROVIDERS_REQUIRED: Microversion = v(1, 18);
pub const AGGREGATE_GENERATION: Microversion = v(1, 19);
pub const CREATE_PROVIDER_RETURNS_BODY: Microversion = v(1, 20);
pub const CANDIDATES_MEMBER_OF: Microversion = v(1, 21);
pub const FORBIDDEN_TRAITS: Microversion = v(1, 22);
pub const ERROR_CODES: Microversion = v(1, 23);
pub const MULTIPLE_MEMBER_OF: Microversion = v(1, 24);
pub const GRANULAR_REQUESTS: Microversion = v(1, 25);
pub const RESERVED_EQUALS_TOTAL: Microversion = v(1, 26);
pub const ALL_CLASSES_IN_SUMMARIES: Microversion = v(1, 27);
pub const CONSUMER_GENERATIONS: Microversion = v(1, 28);
pub const NESTED_CANDIDATES: Microversion = v(1, 29);
pub const RESHAPER: Microversion = v(1, 30);
pub const CANDIDATES_IN_TREE: Microversion = v(1, 31);
pub const FORBIDDEN_AGGREGATES: Microversion = v(1, 32);
pub const STRING_SUFFIXES: Microversion = v(1, 33);
pub const MAPPINGS: Microversion = v(1, 34);
pub const ROOT_REQUIRED: Microversion = v(1, 35);
pub const SAME_SUBTREE: Microversion = v(1, 36);
pub const REPARENT_PROVIDERS: Microversion = v(1, 37);
pub const CONSUMER_TYPES: Microversion = v(1, 38);
pub const ANY_TRAITS: Microversion = v(1, 39);

const SERVICE_TYPE: &str = "placement";
pub const HEADER: &str = "openstack-api-version";

impl Microversion {
    /// True when this request's version includes `feature`.
    pub fn at_least(self, feature: Microversion) -> bool {
        self >= feature
    }
}

/// Python's `int(text)` in base 10, as microversion-parse calls it:
/// surrounding whitespace, an optional sign, digits with single
/// underscores between them. Values past `i64` saturate (they are out of
/// range either way). `None` where Python raises ValueError.
fn python_int(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let mut value: i64 = 0;
    for digit in digits.bytes().filter(u8::is_ascii_digit) {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'));
    }
    Some(if negative { -value } else { value })
}

/// Python's `repr()` of a string, for the texts of its exceptions.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// microversion-parse's `parse_version_string`:
/// `Version(*(int(value) for value in text.split('.', 1)))`, with the
/// text of the exception it turns into a TypeError.
fn parse_version_string(text: &str) -> Result<(i64, i64), String> {
    let mut parts = text.splitn(2, '.');
    let major_text = parts.next().unwrap_or_default();
    let invalid = |part: &str| {
        format!(
            "invalid literal for int() with base 10: {}",
            python_repr(part)
        )
    };
    let major = python_int(major_text).ok_or_else(|| invalid(major_text))?;
    let Some(minor_text) = parts.next() else {
        return Err("Version.__new__() missing 1 required positional argument: 'minor'".to_owned());
    };
    let minor = python_int(minor_text).ok_or_else(|| invalid(minor_text))?;
    Ok((major, minor))
}

impl fmt::Display for Microversion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.major, self.minor)
    }
}

/// Why negotiation failed; the 406 variant makes the error carry
/// `min_version` and `max_version`.
#[derive(Debug)]
pub enum NegotiationError {
    Malformed(ApiError),
    Unacceptable(ApiError),
}

/// Reads the requested version from the headers as microversion-parse
/// does: the values of every `OpenStack-API-Version` header, joined by
/// commas, split on commas; the last item of two words whose first is
/// this service (any case) names the version, stripped. None is 1.0;
/// `latest` is the maximum; a version that is not two integers is a 400
/// and one outside `MIN..=MAX` a 406, with microversion-parse's texts.
pub fn negotiate(headers: &HeaderMap) -> Result<Microversion, NegotiationError> {
    let folded: Vec<String> = headers
        .get_all(HEADER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    let folded = folded.join(",");
    let requested = folded.split(',').rev().find_map(|item| {
        let item = item.trim();
        let (service, version) = item.split_once(char::is_whitespace)?;
        let version = version.trim();
        (!version.is_empty() && service.to_lowercase() == SERVICE_TYPE).then(|| version.to_owned())
    });
    let Some(requested) = requested else {
        return Ok(MIN);
    };
    if requested == "latest" {
        return Ok(MAX);
    }
    let (major, minor) = parse_version_string(&requested).map_err(|reason| {
        NegotiationError::Malformed(ApiError::bad_request(format!(
            "Invalid microversion: invalid version string: {requested}; {reason}"
        )))
    })?;
    let version = u32::try_from(major)
        .ok()
        .zip(u32::try_from(minor).ok())
        .map(|(major, minor)| v(major, minor))
        .filter(|version| (MIN..=MAX).contains(version));
    version.ok_or_else(|| {
        NegotiationError::Unacceptable(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Invalid microversion: Unacceptable version header: {requested}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static(HEADER),
            HeaderValue::from_str(value).expect("test header"),
        );
        map
    }

    #[test]
    fn absent_header_is_the_minimum() {
        assert_eq!(negotiate(&HeaderMap::new()).ok(), Some(MIN));
        assert_eq!(negotiate(&headers("compute 2.1")).ok(), Some(MIN));
    }

    #[test]
    fn latest_and_explicit_versions() {
        assert_eq!(negotiate(&headers("placement latest")).ok(), Some(MAX));
        assert_eq!(
            negotiate(&headers("placement 1.14")).ok(),
            Some(NESTED_PROVIDERS)
        );
        assert_eq!(
            negotiate(&headers("compute 2.1, placement 1.5")).ok(),
            Some(DELETE_ALL_INVENTORIES)
        );
    }

    #[test]
    fn malformed_and_out_of_range() {
        assert!(matches!(
            negotiate(&headers("placement pony.horse")),
            Err(NegotiationError::Malformed(_))
        ));
        assert!(matches!(
            negotiate(&headers("placement 1.2.3")),
            Err(NegotiationError::Malformed(_))
        ));
        assert!(matches!(
            negotiate(&headers("placement 0.5")),
            Err(NegotiationError::Unacceptable(_))
        ));
        assert!(matches!(
            negotiate(&headers("placement 1.40")),
            Err(NegotiationError::Unacceptable(_))
        ));
    }
}
