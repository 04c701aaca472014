//! `POST /claims` and `GET /changes`, this server's extensions: the body
//! and query schemas, and the response bodies. No upstream counterpart.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

/// `POST /claims` body.
pub static CLAIMS_BODY: LazyLock<Value> = LazyLock::new(|| {
    let uuid = json!({"type": "string", "format": "uuid"});
    let uuids = json!({"type": "array", "items": uuid, "uniqueItems": true, "maxItems": 1000});
    let external_id = json!({"type": "string", "minLength": 1, "maxLength": 255});
    let query_value = json!({"anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1}
    ]});
    json!({
        "type": "object",
        "properties": {
            "consumers": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "uuid": uuid,
                        "project_id": external_id,
                        "user_id": external_id,
                        "consumer_type": {
                            "type": "string",
                            "pattern": "^[A-Z0-9_]+$",
                            "minLength": 1,
                            "maxLength": 255
                        }
                    },
                    "required": ["uuid", "project_id", "user_id"],
                    "additionalProperties": false
                }
            },
            "query": {
                "type": "object",
                "additionalProperties": query_value
            },
            "weighers": {
                "type": "object",
                "additionalProperties": {"type": "number"}
            },
            "shuffle_best_same_weighed_hosts": {"type": "boolean"},
            "host_subset_size": {"type": "integer", "minimum": 1, "maximum": 1000},
            "alternates": {"type": "integer", "minimum": 0, "maximum": 1000},
            "alternates_within": uuids,
            "different_host": uuids,
            "same_host": uuids,
            "server_group": {
                "type": "object",
                "properties": {
                    "policy": {
                        "type": "string",
                        "enum": ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
                    },
                    "members": uuids,
                    "max_server_per_host": {"type": "integer", "minimum": 1, "maximum": 2147483647},
                    "weight_multiplier": {"type": "number"}
                },
                "required": ["policy"],
                "additionalProperties": false
            },
            "dry_run": {"type": "boolean"}
        },
        "required": ["query"],
        "additionalProperties": false
    })
});

/// `GET /changes` query.
pub static CHANGES_QUERY: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "since": {"type": "string", "pattern": "^[0-9]{1,18}$"},
            "wait": {"type": "string", "pattern": "^([0-9]|[1-5][0-9]|60)$"}
        },
        "additionalProperties": false
    })
});

/// One claim as answered.
#[derive(Serialize, Debug)]
pub struct ClaimView {
    pub consumer_uuid: String,
    pub allocations: Value,
    pub mappings: Value,
    pub consumer_generation: i32,
    pub weight: f64,
    pub alternates: Vec<Value>,
}

#[derive(Serialize, Debug)]
pub struct ClaimsView {
    pub claims: Vec<ClaimView>,
    pub provider_summaries: Value,
}

#[derive(Serialize, Debug)]
pub struct PreviewView {
    pub candidates: Vec<Value>,
    pub provider_summaries: Value,
}

#[derive(Serialize, Debug)]
pub struct ChangeView {
    pub seq: i64,
    pub resource_provider_uuid: String,
    pub generation: Option<i32>,
}

#[derive(Serialize, Debug)]
pub struct ChangesView {
    pub changes: Vec<ChangeView>,
    pub cursor: String,
}
