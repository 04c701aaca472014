//! Resource provider bodies, query parameters and views (upstream
//! `schemas/resource_provider.py` and `_serialize_provider`).

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

fn name() -> Value {
    json!({"type": "string", "maxLength": 200})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn parent() -> Value {
    json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]})
}

fn body(with_uuid: bool, with_parent: bool) -> Value {
    let mut properties = serde_json::Map::new();
    properties.insert("name".to_owned(), name());
    if with_uuid {
        properties.insert("uuid".to_owned(), uuid());
    }
    if with_parent {
        properties.insert("parent_provider_uuid".to_owned(), parent());
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": ["name"],
        "additionalProperties": false
    })
}

/// `POST /resource_providers` before 1.14.
pub static CREATE_PROVIDER: LazyLock<Value> = LazyLock::new(|| body(true, false));
/// `POST /resource_providers` from 1.14 (`parent_provider_uuid`).
pub static CREATE_PROVIDER_1_14: LazyLock<Value> = LazyLock::new(|| body(true, true));
/// `PUT /resource_providers/{uuid}` before 1.14.
pub static UPDATE_PROVIDER: LazyLock<Value> = LazyLock::new(|| body(false, false));
/// `PUT /resource_providers/{uuid}` from 1.14.
pub static UPDATE_PROVIDER_1_14: LazyLock<Value> = LazyLock::new(|| body(false, true));

fn list_query(properties: &[(&str, Value)]) -> Value {
    let mut map = serde_json::Map::new();
    for (key, value) in properties {
        map.insert((*key).to_owned(), value.clone());
    }
    json!({"type": "object", "properties": map, "additionalProperties": false})
}

fn string() -> Value {
    json!({"type": "string"})
}

/// `GET /resource_providers` query parameters, 1.0.
pub static LIST_PROVIDERS_QUERY_1_0: LazyLock<Value> =
    LazyLock::new(|| list_query(&[("name", string()), ("uuid", uuid())]));
/// 1.3 adds `member_of`.
pub static LIST_PROVIDERS_QUERY_1_3: LazyLock<Value> = LazyLock::new(|| {
    list_query(&[
        ("name", string()),
        ("uuid", uuid()),
        ("member_of", string()),
    ])
});
/// 1.4 adds `resources`.
pub static LIST_PROVIDERS_QUERY_1_4: LazyLock<Value> = LazyLock::new(|| {
    list_query(&[
        ("name", string()),
        ("uuid", uuid()),
        ("member_of", string()),
        ("resources", string()),
    ])
});
/// 1.14 adds `in_tree`.
pub static LIST_PROVIDERS_QUERY_1_14: LazyLock<Value> = LazyLock::new(|| {
    list_query(&[
        ("name", string()),
        ("uuid", uuid()),
        ("member_of", string()),
        ("resources", string()),
        ("in_tree", uuid()),
    ])
});
/// 1.18 adds `required`.
pub static LIST_PROVIDERS_QUERY_1_18: LazyLock<Value> = LazyLock::new(|| {
    list_query(&[
        ("name", string()),
        ("uuid", uuid()),
        ("member_of", string()),
        ("resources", string()),
        ("in_tree", uuid()),
        ("required", string()),
    ])
});

#[derive(Serialize)]
pub struct LinkView {
    pub rel: &'static str,
    pub href: String,
}

/// The tree fields shown from 1.14.
#[derive(Serialize)]
pub struct TreeView {
    pub parent_provider_uuid: Option<Uuid>,
    pub root_provider_uuid: Uuid,
}

#[derive(Serialize)]
pub struct ProviderView {
    pub uuid: Uuid,
    pub name: String,
    pub generation: i32,
    pub links: Vec<LinkView>,
    #[serde(flatten)]
    pub tree: Option<TreeView>,
}

#[derive(Serialize)]
pub struct ProvidersView {
    pub resource_providers: Vec<ProviderView>,
}
