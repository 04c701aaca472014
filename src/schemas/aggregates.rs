//! Provider aggregate bodies and views (upstream `schemas/aggregate.py`).

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

fn aggregate_list() -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "uniqueItems": true
    })
}

/// `PUT /resource_providers/{uuid}/aggregates`, 1.1 to 1.18: a bare list.
pub static SET_AGGREGATES_1_1: LazyLock<Value> = LazyLock::new(aggregate_list);

/// From 1.19: the list with the provider generation.
pub static SET_AGGREGATES_1_19: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "aggregates": aggregate_list(),
            "resource_provider_generation": {"type": "integer"}
        },
        "required": ["aggregates", "resource_provider_generation"],
        "additionalProperties": false
    })
});

#[derive(Serialize)]
pub struct AggregatesView {
    pub aggregates: Vec<String>,
    /// Shown from 1.19.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_generation: Option<i32>,
}
