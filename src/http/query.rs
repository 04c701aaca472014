//! Query strings: decoding into ordered pairs (repeats kept) and the
//! schema check upstream applies to `dict(req.GET)` (the last value of a
//! repeated key wins there).

use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::schemas::validator;

/// A decoded query string.
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(query_string: &str) -> Query {
        Query {
            pairs: form_urlencoded::parse(query_string.as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        }
    }

    /// From pairs already decoded (a query given as JSON).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query { pairs }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// Every value given for `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Validates the parameters as upstream's `validate_query_params`.
    pub fn validate(&self, schema: &Value) -> Result<(), ApiError> {
        let mut object = Map::new();
        for (key, value) in &self.pairs {
            object.insert(key.clone(), Value::String(value.clone()));
        }
        validator::validate(schema, &Value::Object(object)).map_err(|error| {
            ApiError::bad_request(format!("Invalid query string parameters: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_kept_and_last_wins() {
        let query = Query::parse("required=A&member_of=in%3Ax%2Cy&required=B");
        assert_eq!(query.get_all("required"), vec!["A", "B"]);
        assert_eq!(query.get("required"), Some("B"));
        assert_eq!(query.get("member_of"), Some("in:x,y"));
        assert_eq!(query.get("absent"), None);
    }
}
