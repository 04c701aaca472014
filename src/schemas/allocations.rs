//! Allocation bodies per microversion and the allocation views (upstream
//! `schemas/allocation.py`). Schemas are built the way upstream derives
//! them, each version from the previous one, keeping upstream's key order.

use indexmap::IndexMap;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use super::common::{CONSUMER_TYPE_PATTERN, GROUP_PATTERN_1_33, RC_PATTERN, UUID_PATTERN};
use crate::http::microversion::{self as mv, Microversion};

fn resources_schema() -> Value {
    json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": {
            RC_PATTERN: {"type": "integer", "minimum": 1}
        },
        "additionalProperties": false
    })
}

fn identity_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

/// `PUT /allocations/{consumer_uuid}` before 1.8: the list form.
pub static PUT_ALLOCATIONS_1_0: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "allocations": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "resource_provider": {
                            "type": "object",
                            "properties": {
                                "uuid": {"type": "string", "format": "uuid"}
                            },
                            "additionalProperties": false,
                            "required": ["uuid"]
                        },
                        "resources": resources_schema()
                    },
                    "required": ["resource_provider", "resources"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["allocations"],
        "additionalProperties": false
    })
});

/// 1.8 to 1.11: the list form with required project and user.
pub static PUT_ALLOCATIONS_1_8: LazyLock<Value> = LazyLock::new(|| {
    let mut schema = PUT_ALLOCATIONS_1_0.clone();
    schema["properties"]["project_id"] = identity_schema();
    schema["properties"]["user_id"] = identity_schema();
    push_required(&mut schema, &["project_id", "user_id"]);
    schema
});

/// 1.12 to 1.27: the dict form, keyed by provider uuid.
pub static PUT_ALLOCATIONS_1_12: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "allocations": {
                "type": "object",
                "minProperties": 1,
                "patternProperties": {
                    UUID_PATTERN: {
                        "type": "object",
                        "properties": {
                            "generation": {"type": "integer"},
                            "resources": resources_schema()
                        },
                        "required": ["resources"],
                        "additionalProperties": false
                    }
                },
                "additionalProperties": false
            },
            "project_id": identity_schema(),
            "user_id": identity_schema()
        },
        "additionalProperties": false,
        "required": ["allocations", "project_id", "user_id"]
    })
});

/// The 1.12 form where `allocations` may be empty (POST, and PUT from 1.28).
static DELETABLE_ALLOCATIONS: LazyLock<Value> = LazyLock::new(|| {
    let mut schema = PUT_ALLOCATIONS_1_12.clone();
    schema["properties"]["allocations"]["minProperties"] = json!(0);
    schema
});

fn with_consumer_generation(base: &Value) -> Value {
    let mut schema = base.clone();
    schema["properties"]["consumer_generation"] =
        json!({"type": ["integer", "null"], "additionalProperties": false});
    push_required(&mut schema, &["consumer_generation"]);
    schema
}

/// 1.28 to 1.33: a required consumer generation; empty allocations allowed.
pub static PUT_ALLOCATIONS_1_28: LazyLock<Value> =
    LazyLock::new(|| with_consumer_generation(&DELETABLE_ALLOCATIONS));

/// 1.34 to 1.37: an optional (ignored) `mappings`.
pub static PUT_ALLOCATIONS_1_34: LazyLock<Value> = LazyLock::new(|| {
    let mut schema = PUT_ALLOCATIONS_1_28.clone();
    schema["properties"]["mappings"] = json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": {
            GROUP_PATTERN_1_33: {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "format": "uuid"}
            }
        }
    });
    schema
});

/// 1.38 on: a required consumer type.
pub static PUT_ALLOCATIONS_1_38: LazyLock<Value> = LazyLock::new(|| {
    let mut schema = PUT_ALLOCATIONS_1_34.clone();
    schema["properties"]["consumer_type"] = json!({
        "type": "string",
        "pattern": CONSUMER_TYPE_PATTERN,
        "minLength": 1,
        "maxLength": 255
    });
    push_required(&mut schema, &["consumer_type"]);
    schema
});

fn post_schema(per_consumer: &Value) -> Value {
    json!({
        "type": "object",
        "minProperties": 1,
        "additionalProperties": false,
        "patternProperties": {
            UUID_PATTERN: per_consumer
        }
    })
}

pub static POST_ALLOCATIONS_1_13: LazyLock<Value> =
    LazyLock::new(|| post_schema(&DELETABLE_ALLOCATIONS));
pub static POST_ALLOCATIONS_1_28: LazyLock<Value> =
    LazyLock::new(|| post_schema(&PUT_ALLOCATIONS_1_28));
pub static POST_ALLOCATIONS_1_34: LazyLock<Value> =
    LazyLock::new(|| post_schema(&PUT_ALLOCATIONS_1_34));
pub static POST_ALLOCATIONS_1_38: LazyLock<Value> =
    LazyLock::new(|| post_schema(&PUT_ALLOCATIONS_1_38));

fn push_required(schema: &mut Value, names: &[&str]) {
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend(names.iter().map(|name| json!(name)));
    }
}

/// The schema of `PUT /allocations/{consumer_uuid}` at `version`.
pub fn put_schema(version: Microversion) -> &'static Value {
    if version.at_least(mv::CONSUMER_TYPES) {
        &PUT_ALLOCATIONS_1_38
    } else if version.at_least(mv::MAPPINGS) {
        &PUT_ALLOCATIONS_1_34
    } else if version.at_least(mv::CONSUMER_GENERATIONS) {
        &PUT_ALLOCATIONS_1_28
    } else if version.at_least(mv::ALLOCATIONS_DICT) {
        &PUT_ALLOCATIONS_1_12
    } else if version.at_least(mv::PROJECT_USER_REQUIRED) {
        &PUT_ALLOCATIONS_1_8
    } else {
        &PUT_ALLOCATIONS_1_0
    }
}

/// The schema of `POST /allocations` at `version` (1.13 on).
pub fn post_schema_for(version: Microversion) -> &'static Value {
    if version.at_least(mv::CONSUMER_TYPES) {
        &POST_ALLOCATIONS_1_38
    } else if version.at_least(mv::MAPPINGS) {
        &POST_ALLOCATIONS_1_34
    } else if version.at_least(mv::CONSUMER_GENERATIONS) {
        &POST_ALLOCATIONS_1_28
    } else {
        &POST_ALLOCATIONS_1_13
    }
}

/// Amounts by resource class name.
/// By resource class, in the order the rows were written: upstream builds
/// these dicts from a query without `ORDER BY`, which PostgreSQL answers in
/// insertion order, and clients print them in that order.
pub type Resources = IndexMap<String, i64>;

/// One provider's part of a consumer's allocations.
#[derive(Serialize)]
pub struct ProviderAllocationView {
    pub generation: i32,
    pub resources: Resources,
}

/// `GET /allocations/{consumer_uuid}`.
#[derive(Serialize)]
pub struct ConsumerAllocationsView {
    pub allocations: IndexMap<String, ProviderAllocationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_generation: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_type: Option<String>,
}

/// One consumer's part of a provider's allocations.
#[derive(Serialize)]
pub struct ConsumerResourcesView {
    pub resources: Resources,
    /// Shown from 1.28.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_generation: Option<i32>,
}

/// `GET /resource_providers/{uuid}/allocations`.
#[derive(Serialize)]
pub struct ProviderAllocationsView {
    pub allocations: IndexMap<String, ConsumerResourcesView>,
    pub resource_provider_generation: i32,
}
