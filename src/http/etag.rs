//! `ETag` and `If-None-Match` on the GETs a cache polls (providers,
//! inventories, usages, allocation candidates), an extension: the tag is
//! a hash of the body at the request's microversion, so it changes
//! exactly when the answer does; a request naming it gets 304 and no
//! body. Nothing else about these responses changes.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use sha2::{Digest, Sha256};

/// The route patterns whose 200s carry a tag.
const TAGGED: &[&str] = &[
    "/resource_providers",
    "/resource_providers/{uuid}",
    "/resource_providers/{uuid}/inventories",
    "/resource_providers/{uuid}/inventories/{resource_class}",
    "/resource_providers/{uuid}/usages",
    "/usages",
    "/allocation_candidates",
];

/// Tags a GET 200 of a tagged route, and turns it into a 304 when
/// `If-None-Match` names the tag.
pub fn apply(
    method: &Method,
    route: &str,
    if_none_match: Option<&HeaderValue>,
    response: HttpResponse,
) -> HttpResponse {
    if method != Method::GET || response.status() != StatusCode::OK || !TAGGED.contains(&route) {
        return response;
    }
    let (head, body) = response.into_parts();
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        // A streamed body (none of these routes has one) stays untagged.
        Err(body) => return head.set_body(body),
    };
    let digest = Sha256::digest(&bytes);
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let matched = if_none_match
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| names(value, &tag));
    let Ok(tag_value) = HeaderValue::from_str(&tag) else {
        return head.set_body(BoxBody::new(bytes));
    };
    if matched {
        let mut not_modified = HttpResponse::NotModified().finish();
        for (name, value) in head.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                not_modified
                    .headers_mut()
                    .append(name.clone(), value.clone());
            }
        }
        not_modified.headers_mut().insert(header::ETAG, tag_value);
        return not_modified;
    }
    let mut response = head.set_body(BoxBody::new(bytes));
    response.headers_mut().insert(header::ETAG, tag_value);
    response
}

/// True when an `If-None-Match` value names `tag` (weakly, as RFC 9110
/// compares for this header) or is `*`.
fn names(value: &str, tag: &str) -> bool {
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(names("\"a\"", "\"a\""));
        assert!(names("\"b\", W/\"a\"", "\"a\""));
        assert!(names("*", "\"a\""));
        assert!(!names("\"b\"", "\"a\""));
        assert!(!names("a", "\"a\""));
    }

    #[test]
    fn only_tagged_gets_are_tagged() {
        let ok = || HttpResponse::Ok().body("{}");
        let tagged = apply(&Method::GET, "/usages", None, ok());
        let tag = tagged.headers().get(header::ETAG).cloned();
        assert!(tag.is_some());
        assert!(
            apply(&Method::GET, "/traits", None, ok())
                .headers()
                .get(header::ETAG)
                .is_none()
        );
        assert!(
            apply(&Method::PUT, "/usages", None, ok())
                .headers()
                .get(header::ETAG)
                .is_none()
        );
        let again = apply(&Method::GET, "/usages", tag.as_ref(), ok());
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers().get(header::ETAG), tag.as_ref());
        let other = HttpResponse::Ok().body("{\"x\": 1}");
        assert_eq!(
            apply(&Method::GET, "/usages", tag.as_ref(), other).status(),
            StatusCode::OK
        );
    }
}
