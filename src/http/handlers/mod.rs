//! One module per resource, handler names as upstream's. Each handler
//! reads top to bottom: policy, path, query or body, domain call, response.
//! The version gate and content negotiation ran before (see `routes`).

pub mod aggregates;
pub mod allocation_candidates;
pub mod allocations;
pub mod changes;
pub mod claims;
pub mod extensions;
pub mod inventories;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod root;
pub mod traits;
pub mod usages;

/// A `json_ok` response without `last-modified`: for the answers where
/// upstream sets `response.last_modified = None` (no time to give), which
/// webob leaves out, while `cache-control: no-cache` stays.
pub fn without_last_modified(
    mut response: actix_web::HttpResponse,
    time: Option<chrono::DateTime<chrono::Utc>>,
) -> actix_web::HttpResponse {
    if time.is_none() {
        response
            .headers_mut()
            .remove(actix_web::http::header::LAST_MODIFIED);
    }
    response
}
