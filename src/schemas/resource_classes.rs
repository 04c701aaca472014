//! Resource class bodies (upstream `schemas/resource_class.py`).

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use super::common::CUSTOM_RC_PATTERN;

/// `POST /resource_classes`, and `PUT /resource_classes/{name}` before 1.7.
pub static CREATE_RESOURCE_CLASS: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": CUSTOM_RC_PATTERN, "maxLength": 255}
        },
        "required": ["name"],
        "additionalProperties": false
    })
});

#[derive(Serialize)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

#[derive(Serialize)]
pub struct ResourceClassView {
    pub name: String,
    pub links: Vec<Link>,
}

impl ResourceClassView {
    pub fn new(name: &str) -> Self {
        ResourceClassView {
            name: name.to_owned(),
            links: vec![Link {
                rel: "self",
                href: format!("/resource_classes/{name}"),
            }],
        }
    }
}

#[derive(Serialize)]
pub struct ResourceClassesView {
    pub resource_classes: Vec<ResourceClassView>,
}
