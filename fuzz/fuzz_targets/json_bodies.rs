//! Request bodies: JSON parsing and validation against the schemas of the
//! allocation, inventory, trait, aggregate, resource class, provider and
//! reshaper writes, at the microversion the first byte picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use placement::http::negotiation::parse_json;
use placement::schemas::{
    aggregates, allocations, inventories, reshaper, resource_classes, resource_providers, traits,
};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let version = common::version(first);
    let schemas: [&serde_json::Value; 11] = [
        allocations::put_schema(version),
        allocations::post_schema_for(version),
        &inventories::REPLACE_INVENTORIES,
        &inventories::CREATE_INVENTORY,
        &inventories::UPDATE_INVENTORY,
        &traits::SET_PROVIDER_TRAITS,
        &aggregates::SET_AGGREGATES_1_19,
        &resource_classes::CREATE_RESOURCE_CLASS,
        &resource_providers::CREATE_PROVIDER_1_14,
        &resource_providers::UPDATE_PROVIDER_1_14,
        reshaper::schema_for(version),
    ];
    let schema = schemas[usize::from(first) % schemas.len()];
    let _ = parse_json(body, schema);
});
