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

    fn parse(text: &str) -> Option<Microversion> {
        if text == "latest" {
            return Some(MAX);
        }
        let (major, minor) = text.split_once('.')?;
        Some(v(major.parse().ok()?, minor.parse().ok()?))
    }
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

/// Reads the requested version from the headers: no header (or none for
/// this service) is 1.0; `latest` is the maximum; anything outside
/// `MIN..=MAX` is a 406.
pub fn negotiate(headers: &HeaderMap) -> Result<Microversion, NegotiationError> {
    let mut requested = None;
    for value in headers.get_all(HEADER) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut words = item.split_whitespace();
            if words
                .next()
                .is_some_and(|service| service.eq_ignore_ascii_case(SERVICE_TYPE))
            {
                requested = Some(words.collect::<Vec<_>>().join(" "));
            }
        }
    }
    let Some(requested) = requested else {
        return Ok(MIN);
    };
    let version = Microversion::parse(&requested).ok_or_else(|| {
        NegotiationError::Malformed(ApiError::bad_request(format!(
            "invalid version string: {requested}"
        )))
    })?;
    if version < MIN || version > MAX {
        return Err(NegotiationError::Unacceptable(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Unacceptable version header: {requested}"),
        )));
    }
    Ok(version)
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
