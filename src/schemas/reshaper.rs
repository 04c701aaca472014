//! `POST /reshaper` bodies per microversion (upstream `schemas/reshaper.py`):
//! per-provider inventories as `PUT .../inventories`, allocations as
//! `POST /allocations` of the same version but possibly empty.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::allocations::{POST_ALLOCATIONS_1_28, POST_ALLOCATIONS_1_34, POST_ALLOCATIONS_1_38};
use super::common::UUID_PATTERN;
use super::inventories::REPLACE_INVENTORIES;
use crate::http::microversion::{self as mv, Microversion};

fn reshaper_schema(allocations: &Value) -> Value {
    let mut allocations = allocations.clone();
    allocations["minProperties"] = json!(0);
    json!({
        "type": "object",
        "properties": {
            "inventories": {
                "type": "object",
                "patternProperties": {UUID_PATTERN: REPLACE_INVENTORIES.clone()},
                "minProperties": 1,
                "additionalProperties": false
            },
            "allocations": allocations
        },
        "required": ["inventories", "allocations"],
        "additionalProperties": false
    })
}

static RESHAPE_1_30: LazyLock<Value> = LazyLock::new(|| reshaper_schema(&POST_ALLOCATIONS_1_28));
static RESHAPE_1_34: LazyLock<Value> = LazyLock::new(|| reshaper_schema(&POST_ALLOCATIONS_1_34));
static RESHAPE_1_38: LazyLock<Value> = LazyLock::new(|| reshaper_schema(&POST_ALLOCATIONS_1_38));

/// The body schema at `version`.
pub fn schema_for(version: Microversion) -> &'static Value {
    if version.at_least(mv::CONSUMER_TYPES) {
        &RESHAPE_1_38
    } else if version.at_least(mv::MAPPINGS) {
        &RESHAPE_1_34
    } else {
        &RESHAPE_1_30
    }
}
