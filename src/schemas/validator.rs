//! TEMPORARY placeholder.
pub fn validate(_schema: &serde_json::Value, _instance: &serde_json::Value) -> Result<(), String> {
    Ok(())
}
