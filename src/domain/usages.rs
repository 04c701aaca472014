//! Usages: what is allocated from one provider, per class it has
//! inventory of, and what a project's (or a user's) consumers use in all,
//! grouped by consumer type from 1.38. Answers to upstream's
//! `objects/usage.py`.

use std::collections::BTreeMap;

use crate::domain::resource_providers as providers;
use crate::errors::DomainError;
use crate::storage::Connection;
use crate::storage::resource_providers::ProviderRow;
use crate::storage::usages::{self as store, ClassUsageRow};

pub use crate::storage::usages::TypeGrouping;

/// The consumer-type key of allocations whose consumer has no type.
pub const UNKNOWN_CONSUMER_TYPE: &str = "unknown";
/// The `consumer_type` filter value that puts every consumer in one group.
pub const ALL_CONSUMER_TYPES: &str = "all";

impl TypeGrouping {
    /// The grouping a 1.38 `consumer_type` query parameter asks for.
    pub fn from_filter(consumer_type: Option<&str>) -> TypeGrouping {
        match consumer_type {
            None => TypeGrouping::ByType,
            Some(ALL_CONSUMER_TYPES) => TypeGrouping::All,
            Some(UNKNOWN_CONSUMER_TYPE) => TypeGrouping::Unknown,
            Some(name) => TypeGrouping::Named(name.to_owned()),
        }
    }
}

/// The usages of one group of consumers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupUsage {
    /// Amount used per resource class.
    pub resources: BTreeMap<String, i64>,
    /// Distinct consumers in the group.
    pub consumer_count: i64,
}

/// A provider and the usage of each class it has inventory of.
pub fn for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(ProviderRow, Vec<ClassUsageRow>), DomainError> {
    let provider = providers::find(connection, provider_uuid)?;
    let usages = store::for_provider(connection, provider.id)?;
    Ok((provider, usages))
}

/// What a project's (or one user's) consumers use, per group of
/// `grouping` (the key is the consumer type, `all` or `unknown`; `None`
/// for `TypeGrouping::None`).
pub fn for_project(
    connection: &mut Connection,
    project_id: &str,
    user_id: Option<&str>,
    grouping: &TypeGrouping,
) -> Result<BTreeMap<Option<String>, GroupUsage>, DomainError> {
    connection
        .build_transaction()
        .read_only()
        .run(|connection| {
            let rows = store::for_project(connection, project_id, user_id, grouping)?;
            let mut groups: BTreeMap<Option<String>, GroupUsage> = BTreeMap::new();
            for row in rows {
                groups
                    .entry(row.consumer_type)
                    .or_default()
                    .resources
                    .insert(row.resource_class, row.used);
            }
            if *grouping != TypeGrouping::None && !groups.is_empty() {
                for count in store::consumer_counts(connection, project_id, user_id, grouping)? {
                    if let Some(group) = groups.get_mut(&count.consumer_type) {
                        group.consumer_count = count.consumers;
                    }
                }
            }
            Ok(groups)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_type_filters() {
        assert_eq!(TypeGrouping::from_filter(None), TypeGrouping::ByType);
        assert_eq!(TypeGrouping::from_filter(Some("all")), TypeGrouping::All);
        assert_eq!(
            TypeGrouping::from_filter(Some("unknown")),
            TypeGrouping::Unknown
        );
        // Only the lower-case keywords are keywords.
        assert_eq!(
            TypeGrouping::from_filter(Some("ALL")),
            TypeGrouping::Named("ALL".to_owned())
        );
        assert_eq!(
            TypeGrouping::from_filter(Some("PONY")),
            TypeGrouping::Named("PONY".to_owned())
        );
    }
}
