//! The rules of Placement and the operations that apply them, each in an
//! explicit transaction. Pure rules (capacity, generations) are plain
//! functions over plain data.

pub mod aggregates;
pub mod allocations;
pub mod capacity;
pub mod changes;
pub mod claim_queue;
pub mod claims;
pub mod consumers;
pub mod inventories;
pub mod reshaper;
pub mod resource_classes;
pub mod resource_providers;
pub mod traits;
pub mod usages;
