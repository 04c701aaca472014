//! The route table: every path of the API with its methods, the
//! microversion each appeared at and what content negotiation it does. The
//! same table answers 404 for unknown paths and 405 with `Allow` for known
//! paths with another method. Answers to upstream's `ROUTE_DECLARATIONS`
//! in `placement/handler.py`.

use std::collections::HashMap;

use actix_web::HttpResponse;
use actix_web::http::{Method, StatusCode};
use futures_util::future::LocalBoxFuture;

use super::Request;
use super::handlers::{
    aggregates, allocation_candidates, allocations, changes, claims, extensions, inventories,
    reshaper, resource_classes, resource_providers, root, traits, usages,
};
use super::microversion::{self as mv, Microversion};
use crate::errors::ApiError;

pub type HandlerFuture = LocalBoxFuture<'static, Result<HttpResponse, ApiError>>;
pub type Handler = fn(Request) -> HandlerFuture;

/// The detail of the 405 an operation's version gate gives
/// (`DELETE .../inventories` before 1.5): none, as upstream's
/// `version_handler` raises a bare `HTTPMethodNotAllowed`.
pub const METHOD_NOT_ALLOWED_DETAIL: &str = "";

/// The detail of the 405 for a method a path does not have (upstream's
/// `handle_405`), which also carries `Allow`.
pub const WRONG_METHOD_DETAIL: &str = "The method specified is not allowed for this resource.";

/// What the dispatcher checks before the handler runs.
#[derive(Clone, Copy)]
pub enum Content {
    /// The response is JSON: the Accept header must admit it (406).
    AcceptJson,
    /// The request carries a JSON body (415 otherwise).
    JsonBody,
    /// Nothing (bodiless requests with bodiless or optional responses).
    Unchecked,
}

pub struct Operation {
    pub method: Method,
    pub handler: Handler,
    /// The first microversion serving this operation.
    pub since: Microversion,
    /// The status below `since`: 404, or 405 for `DELETE .../inventories`.
    pub missing_status: StatusCode,
    pub content: Content,
}

pub struct Route {
    /// As written in the table (`/resource_providers/{uuid}`): the route
    /// label of metrics and logs.
    pub pattern: &'static str,
    segments: Vec<Segment>,
    operations: Vec<Operation>,
}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

macro_rules! op {
    ($method:ident, $since:expr, $content:ident, $handler:path) => {
        Operation {
            method: Method::$method,
            handler: |request| Box::pin($handler(request)),
            since: $since,
            missing_status: StatusCode::NOT_FOUND,
            content: Content::$content,
        }
    };
}

fn route(pattern: &'static str, operations: Vec<Operation>) -> Route {
    let segments = pattern
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name),
                None => Segment::Literal(segment),
            },
        )
        .collect();
    Route {
        pattern,
        segments,
        operations,
    }
}

/// Every route of the API.
pub fn table() -> Vec<Route> {
    let v1_0 = mv::MIN;
    let mut delete_inventories = op!(
        DELETE,
        mv::DELETE_ALL_INVENTORIES,
        Unchecked,
        inventories::delete_inventories
    );
    delete_inventories.missing_status = StatusCode::METHOD_NOT_ALLOWED;
    vec![
        route("/", vec![op!(GET, v1_0, Unchecked, root::home)]),
        route(
            "/resource_classes",
            vec![
                op!(
                    GET,
                    mv::RESOURCE_CLASSES,
                    AcceptJson,
                    resource_classes::list_resource_classes
                ),
                op!(
                    POST,
                    mv::RESOURCE_CLASSES,
                    JsonBody,
                    resource_classes::create_resource_class
                ),
            ],
        ),
        route(
            "/resource_classes/{name}",
            vec![
                op!(
                    GET,
                    mv::RESOURCE_CLASSES,
                    AcceptJson,
                    resource_classes::get_resource_class
                ),
                op!(
                    PUT,
                    mv::RESOURCE_CLASSES,
                    Unchecked,
                    resource_classes::update_resource_class
                ),
                op!(
                    DELETE,
                    mv::RESOURCE_CLASSES,
                    Unchecked,
                    resource_classes::delete_resource_class
                ),
            ],
        ),
        route(
            "/resource_providers",
            vec![
                op!(
                    GET,
                    v1_0,
                    AcceptJson,
                    resource_providers::list_resource_providers
                ),
                op!(
                    POST,
                    v1_0,
                    JsonBody,
                    resource_providers::create_resource_provider
                ),
            ],
        ),
        route(
            "/resource_providers/{uuid}",
            vec![
                op!(
                    GET,
                    v1_0,
                    AcceptJson,
                    resource_providers::get_resource_provider
                ),
                op!(
                    DELETE,
                    v1_0,
                    Unchecked,
                    resource_providers::delete_resource_provider
                ),
                op!(
                    PUT,
                    v1_0,
                    JsonBody,
                    resource_providers::update_resource_provider
                ),
            ],
        ),
        route(
            "/resource_providers/{uuid}/inventories",
            vec![
                op!(GET, v1_0, AcceptJson, inventories::get_inventories),
                op!(POST, v1_0, JsonBody, inventories::create_inventory),
                op!(PUT, v1_0, JsonBody, inventories::set_inventories),
                delete_inventories,
            ],
        ),
        route(
            "/resource_providers/{uuid}/inventories/{resource_class}",
            vec![
                op!(GET, v1_0, AcceptJson, inventories::get_inventory),
                op!(PUT, v1_0, JsonBody, inventories::update_inventory),
                op!(DELETE, v1_0, Unchecked, inventories::delete_inventory),
            ],
        ),
        route(
            "/resource_providers/{uuid}/usages",
            vec![op!(GET, v1_0, AcceptJson, usages::list_usages)],
        ),
        route(
            "/resource_providers/{uuid}/aggregates",
            vec![
                // Upstream's aggregates handlers check Accept or
                // Content-Type before their version (1.1): the handlers
                // answer the 404 below 1.1 themselves.
                op!(GET, v1_0, AcceptJson, aggregates::get_aggregates),
                op!(PUT, v1_0, JsonBody, aggregates::set_aggregates),
            ],
        ),
        route(
            "/resource_providers/{uuid}/allocations",
            vec![op!(
                GET,
                v1_0,
                AcceptJson,
                allocations::list_for_resource_provider
            )],
        ),
        route(
            "/allocations",
            vec![op!(
                POST,
                mv::POST_ALLOCATIONS,
                JsonBody,
                allocations::set_allocations
            )],
        ),
        route(
            "/allocations/{consumer_uuid}",
            vec![
                op!(GET, v1_0, AcceptJson, allocations::list_for_consumer),
                op!(
                    PUT,
                    v1_0,
                    JsonBody,
                    allocations::set_allocations_for_consumer
                ),
                op!(DELETE, v1_0, Unchecked, allocations::delete_allocations),
            ],
        ),
        route(
            "/allocation_candidates",
            vec![op!(
                GET,
                mv::ALLOCATION_CANDIDATES,
                AcceptJson,
                allocation_candidates::list_allocation_candidates
            )],
        ),
        route(
            "/traits",
            vec![op!(GET, mv::TRAITS, AcceptJson, traits::list_traits)],
        ),
        route(
            "/traits/{name}",
            vec![
                op!(GET, mv::TRAITS, Unchecked, traits::get_trait),
                op!(PUT, mv::TRAITS, Unchecked, traits::put_trait),
                op!(DELETE, mv::TRAITS, Unchecked, traits::delete_trait),
            ],
        ),
        route(
            "/resource_providers/{uuid}/traits",
            vec![
                op!(
                    GET,
                    mv::TRAITS,
                    AcceptJson,
                    traits::list_traits_for_resource_provider
                ),
                op!(
                    PUT,
                    mv::TRAITS,
                    JsonBody,
                    traits::update_traits_for_resource_provider
                ),
                op!(
                    DELETE,
                    mv::TRAITS,
                    Unchecked,
                    traits::delete_traits_for_resource_provider
                ),
            ],
        ),
        route(
            "/usages",
            vec![op!(GET, mv::USAGES, AcceptJson, usages::get_total_usages)],
        ),
        route(
            "/reshaper",
            vec![op!(POST, mv::RESHAPER, JsonBody, reshaper::reshape)],
        ),
        // This server's extensions: paths upstream does not have, served
        // at every microversion (see api-ref/extensions.md).
        route(
            "/extensions",
            vec![op!(GET, v1_0, AcceptJson, extensions::list_extensions)],
        ),
        route(
            "/claims",
            vec![op!(POST, v1_0, JsonBody, claims::create_claims)],
        ),
        route(
            "/changes",
            vec![op!(GET, v1_0, AcceptJson, changes::list_changes)],
        ),
    ]
}

fn matches(route: &Route, segments: &[&str]) -> Option<HashMap<&'static str, String>> {
    if route.segments.len() != segments.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (expected, actual) in route.segments.iter().zip(segments) {
        match expected {
            Segment::Literal(literal) if literal == actual => {}
            Segment::Literal(_) => return None,
            // As the Routes mapper's `{name}` (`[^/]+`): an empty segment
            // (`/traits/`) matches no route.
            Segment::Param(_) if actual.is_empty() => return None,
            Segment::Param(name) => {
                let decoded = percent_decode(actual)?;
                params.insert(*name, decoded);
            }
        }
    }
    Some(params)
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes: Vec<u8> =
        form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, value)| value.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

/// Finds the operation for `method` on `path`: 404 when no route matches
/// the path, 405 with `Allow` when the path matches but the method does not.
/// The pattern of the route `path` falls in, or `unmatched`: a label of
/// bounded cardinality for metrics and logs.
pub fn template(routes: &[Route], path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    routes
        .iter()
        .find(|route| {
            route.segments.len() == segments.len()
                && route
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(expected, actual)| match expected {
                        Segment::Literal(literal) => literal == actual,
                        Segment::Param(_) => true,
                    })
        })
        .map_or("unmatched", |route| route.pattern)
}

pub fn resolve<'a>(
    routes: &'a [Route],
    method: &Method,
    path: &str,
) -> Result<(&'a Operation, HashMap<&'static str, String>), ApiError> {
    let segments: Vec<&str> = if path == "/" || path.is_empty() {
        Vec::new()
    } else {
        match path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => return Err(ApiError::resource_not_found()),
        }
    };
    for route in routes {
        if let Some(params) = matches(route, &segments) {
            if let Some(operation) = route.operations.iter().find(|op| op.method == method) {
                return Ok((operation, params));
            }
            let allow = route
                .operations
                .iter()
                .map(|op| op.method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut error = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, WRONG_METHOD_DETAIL);
            error.headers.push(("allow", allow));
            return Err(error);
        }
    }
    Err(ApiError::resource_not_found())
}
