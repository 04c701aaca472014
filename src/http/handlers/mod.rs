//! One module per resource, handler names as upstream's. Each handler
//! reads top to bottom: policy, path, query or body, domain call, response.
//! The version gate and content negotiation ran before (see `routes`).

pub mod aggregates;
pub mod allocation_candidates;
pub mod allocations;
pub mod inventories;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod root;
pub mod traits;
pub mod usages;
