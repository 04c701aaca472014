//! Trait bodies and query parameters (upstream `schemas/trait.py`).

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use super::common::CUSTOM_TRAIT_PATTERN;

/// `PUT /resource_providers/{uuid}/traits`.
pub static SET_PROVIDER_TRAITS: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "traits": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 255}
            },
            "resource_provider_generation": {"type": "integer"}
        },
        "required": ["traits", "resource_provider_generation"],
        "additionalProperties": false
    })
});

/// A custom trait name (`PUT /traits/{name}`), checked as upstream does.
pub static CUSTOM_TRAIT: LazyLock<Value> = LazyLock::new(
    || json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": CUSTOM_TRAIT_PATTERN}),
);

/// `GET /traits` query parameters.
pub static LIST_TRAITS_QUERY: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "associated": {"type": "string"}
        },
        "additionalProperties": false
    })
});

#[derive(Serialize)]
pub struct TraitsView {
    pub traits: Vec<String>,
}

#[derive(Serialize)]
pub struct ProviderTraitsView {
    pub traits: Vec<String>,
    pub resource_provider_generation: i32,
}
