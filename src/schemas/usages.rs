//! Usage query parameters and responses (upstream `schemas/usage.py` and
//! the serialisers of `handlers/usage.py`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Value, json};

use super::common::CONSUMER_TYPE_GET_PATTERN;

/// `GET /usages` query parameters, 1.9 to 1.37.
pub static TOTAL_USAGES_QUERY: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "project_id": {"type": "string", "minLength": 1, "maxLength": 255},
            "user_id": {"type": "string", "minLength": 1, "maxLength": 255}
        },
        "required": ["project_id"],
        "additionalProperties": false
    })
});

/// `GET /usages` query parameters from 1.38 (adds `consumer_type`).
pub static TOTAL_USAGES_QUERY_1_38: LazyLock<Value> = LazyLock::new(|| {
    let mut schema = TOTAL_USAGES_QUERY.clone();
    schema["properties"]["consumer_type"] = json!({
        "type": "string",
        "pattern": CONSUMER_TYPE_GET_PATTERN,
        "minLength": 1,
        "maxLength": 255
    });
    schema
});

/// `GET /resource_providers/{uuid}/usages`.
#[derive(Serialize, Debug)]
pub struct ProviderUsagesView {
    pub resource_provider_generation: i32,
    pub usages: BTreeMap<String, i64>,
}

/// `GET /usages` before 1.38: amount per class.
#[derive(Serialize, Debug)]
pub struct TotalUsagesView {
    pub usages: BTreeMap<String, i64>,
}

/// One consumer type's usage (1.38): amount per class and the number of
/// consumers.
#[derive(Serialize, Debug)]
pub struct ConsumerTypeUsageView {
    #[serde(flatten)]
    pub resources: BTreeMap<String, i64>,
    pub consumer_count: i64,
}

/// `GET /usages` from 1.38: usages by consumer type.
#[derive(Serialize, Debug)]
pub struct UsagesByConsumerTypeView {
    pub usages: BTreeMap<String, ConsumerTypeUsageView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_type_usage_is_flat() {
        let view = UsagesByConsumerTypeView {
            usages: BTreeMap::from([(
                "INSTANCE".to_owned(),
                ConsumerTypeUsageView {
                    resources: BTreeMap::from([("DISK_GB".to_owned(), 10)]),
                    consumer_count: 1,
                },
            )]),
        };
        assert_eq!(
            serde_json::to_value(view).expect("json"),
            json!({"usages": {"INSTANCE": {"DISK_GB": 10, "consumer_count": 1}}})
        );
    }
}
