//! Inventory bodies and responses (upstream `schemas/inventory.py` and
//! the serialisers of `handlers/inventory.py`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::common::RC_PATTERN;
use crate::domain::capacity::Limits;
use crate::domain::inventories::MAX_INT;

/// Upstream's `SQL_SP_FLOAT_MAX`: the largest single-precision float.
const SQL_SP_FLOAT_MAX: f64 = 3.40282e38;

fn record_properties() -> Map<String, Value> {
    let integer = |minimum: i64| json!({"type": "integer", "maximum": MAX_INT, "minimum": minimum});
    let mut properties = Map::new();
    properties.insert(
        "resource_provider_generation".to_owned(),
        json!({"type": "integer"}),
    );
    properties.insert("total".to_owned(), integer(1));
    properties.insert("reserved".to_owned(), integer(0));
    properties.insert("min_unit".to_owned(), integer(1));
    properties.insert("max_unit".to_owned(), integer(1));
    properties.insert("step_size".to_owned(), integer(1));
    properties.insert(
        "allocation_ratio".to_owned(),
        json!({"type": "number", "maximum": SQL_SP_FLOAT_MAX}),
    );
    properties
}

fn record_schema(properties: Map<String, Value>, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// `PUT /resource_providers/{uuid}/inventories/{resource_class}`.
pub static UPDATE_INVENTORY: LazyLock<Value> = LazyLock::new(|| {
    record_schema(
        record_properties(),
        &["total", "resource_provider_generation"],
    )
});

/// `POST /resource_providers/{uuid}/inventories`.
pub static CREATE_INVENTORY: LazyLock<Value> = LazyLock::new(|| {
    let mut properties = record_properties();
    properties.insert(
        "resource_class".to_owned(),
        json!({"type": "string", "pattern": RC_PATTERN}),
    );
    record_schema(properties, &["total", "resource_class"])
});

/// `PUT /resource_providers/{uuid}/inventories` (also used by the
/// reshaper for each provider).
pub static REPLACE_INVENTORIES: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "inventories": {
                "type": "object",
                "patternProperties": {
                    RC_PATTERN: record_schema(record_properties(), &["total"])
                }
            }
        },
        "required": ["resource_provider_generation", "inventories"],
        "additionalProperties": false
    })
});

fn default_one() -> i64 {
    1
}

fn default_max_unit() -> i64 {
    MAX_INT
}

fn default_allocation_ratio() -> f64 {
    1.0
}

/// The fields of one inventory record, with upstream's defaults.
#[derive(Deserialize, Clone, Copy, Debug)]
pub struct InventoryFields {
    pub total: i64,
    #[serde(default)]
    pub reserved: i64,
    #[serde(default = "default_one")]
    pub min_unit: i64,
    #[serde(default = "default_max_unit")]
    pub max_unit: i64,
    #[serde(default = "default_one")]
    pub step_size: i64,
    #[serde(default = "default_allocation_ratio")]
    pub allocation_ratio: f64,
}

impl InventoryFields {
    pub fn limits(&self) -> Limits {
        Limits {
            total: self.total,
            reserved: self.reserved,
            min_unit: self.min_unit,
            max_unit: self.max_unit,
            step_size: self.step_size,
            allocation_ratio: self.allocation_ratio,
        }
    }
}

/// `POST /resource_providers/{uuid}/inventories` (a generation given is
/// ignored, as upstream does).
#[derive(Deserialize, Debug)]
pub struct CreateInventory {
    pub resource_class: String,
    #[serde(flatten)]
    pub fields: InventoryFields,
}

/// `PUT /resource_providers/{uuid}/inventories/{resource_class}`.
#[derive(Deserialize, Debug)]
pub struct UpdateInventory {
    pub resource_provider_generation: i64,
    #[serde(flatten)]
    pub fields: InventoryFields,
}

/// `PUT /resource_providers/{uuid}/inventories`; the records keep the
/// body's order.
#[derive(Deserialize, Debug)]
pub struct ReplaceInventories {
    pub resource_provider_generation: i64,
    pub inventories: Map<String, Value>,
}

impl ReplaceInventories {
    /// The records with their classes, in the body's order.
    pub fn records(&self) -> Result<Vec<(String, InventoryFields)>, serde_json::Error> {
        self.inventories
            .iter()
            .map(|(class, record)| {
                InventoryFields::deserialize(record).map(|fields| (class.clone(), fields))
            })
            .collect()
    }
}

/// One inventory; the provider generation is shown for a single record
/// (and, as upstream, left out when it is 0).
#[derive(Serialize, Debug)]
pub struct InventoryView {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_provider_generation: Option<i32>,
}

impl InventoryView {
    pub fn new(limits: &Limits, generation: Option<i32>) -> InventoryView {
        InventoryView {
            total: limits.total,
            reserved: limits.reserved,
            min_unit: limits.min_unit,
            max_unit: limits.max_unit,
            step_size: limits.step_size,
            allocation_ratio: limits.allocation_ratio,
            resource_provider_generation: generation.filter(|generation| *generation != 0),
        }
    }
}

/// A provider's inventories by class.
#[derive(Serialize, Debug)]
pub struct InventoriesView {
    pub resource_provider_generation: i32,
    pub inventories: BTreeMap<String, InventoryView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let body: CreateInventory =
            serde_json::from_value(json!({"resource_class": "DISK_GB", "total": 5}))
                .expect("valid body");
        let limits = body.fields.limits();
        assert_eq!(
            limits,
            Limits {
                total: 5,
                reserved: 0,
                min_unit: 1,
                max_unit: 2_147_483_647,
                step_size: 1,
                allocation_ratio: 1.0,
            }
        );
    }

    #[test]
    fn records_keep_body_order() {
        let body: ReplaceInventories = serde_json::from_value(json!({
            "resource_provider_generation": 3,
            "inventories": {"VCPU": {"total": 8}, "DISK_GB": {"total": 10, "reserved": 2}}
        }))
        .expect("valid body");
        let records = body.records().expect("valid records");
        let classes: Vec<&str> = records.iter().map(|(class, _)| class.as_str()).collect();
        assert_eq!(classes, ["VCPU", "DISK_GB"]);
        assert_eq!(records[1].1.reserved, 2);
    }

    #[test]
    fn schema_keeps_upstream_key_order() {
        let properties = CREATE_INVENTORY["properties"]
            .as_object()
            .expect("properties");
        let keys: Vec<&str> = properties.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "resource_provider_generation",
                "total",
                "reserved",
                "min_unit",
                "max_unit",
                "step_size",
                "allocation_ratio",
                "resource_class"
            ]
        );
    }

    #[test]
    fn generation_zero_is_not_shown() {
        let limits = InventoryFields::deserialize(&json!({"total": 1}))
            .expect("valid")
            .limits();
        let shown = serde_json::to_value(InventoryView::new(&limits, Some(0))).expect("json");
        assert!(shown.get("resource_provider_generation").is_none());
        let shown = serde_json::to_value(InventoryView::new(&limits, Some(2))).expect("json");
        assert_eq!(shown["resource_provider_generation"], 2);
    }
}
