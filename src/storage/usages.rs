//! Usage sums: per provider (over its inventories) and per project/user
//! (over consumers' allocations), optionally grouped by consumer type.
//! Answers to upstream's `objects/usage.py`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Varchar};

use super::Connection;

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct ClassUsageRow {
    #[diesel(sql_type = Varchar)]
    pub resource_class: String,
    #[diesel(sql_type = BigInt)]
    pub used: i64,
}

/// Usage of every class a provider has inventory of, 0 when nothing is
/// allocated.
///
/// ```sql
/// SELECT rc.name AS resource_class, COALESCE(SUM(a.used), 0)::bigint AS used
/// FROM inventories i
/// JOIN resource_classes rc ON rc.id = i.resource_class_id
/// LEFT JOIN allocations a ON a.resource_provider_id = i.resource_provider_id
///                        AND a.resource_class_id = i.resource_class_id
/// WHERE i.resource_provider_id = $1
/// GROUP BY rc.name
/// ```
pub fn for_provider(
    connection: &mut Connection,
    provider_id: i32,
) -> QueryResult<Vec<ClassUsageRow>> {
    diesel::sql_query(
        "SELECT rc.name AS resource_class, COALESCE(SUM(a.used), 0)::bigint AS used \
         FROM inventories i \
         JOIN resource_classes rc ON rc.id = i.resource_class_id \
         LEFT JOIN allocations a ON a.resource_provider_id = i.resource_provider_id \
                                AND a.resource_class_id = i.resource_class_id \
         WHERE i.resource_provider_id = $1 \
         GROUP BY rc.name ORDER BY rc.name",
    )
    .bind::<Integer, _>(provider_id)
    .load(connection)
}

/// How the allocations of a project are grouped by consumer type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeGrouping {
    /// No grouping (before 1.38): one group whose key is `None`.
    None,
    /// One group per consumer type; consumers without one under `unknown`.
    ByType,
    /// Every consumer in one group keyed `all`.
    All,
    /// Only consumers without a type, keyed `unknown`.
    Unknown,
    /// Only consumers of the named type.
    Named(String),
}

impl TypeGrouping {
    /// The SQL of the group key and of the extra filter; fixed text only
    /// (the name of `Named` is bound as `$3`).
    fn sql(&self) -> (&'static str, &'static str) {
        match self {
            TypeGrouping::None => ("NULL::varchar", ""),
            TypeGrouping::ByType => ("COALESCE(ct.name, 'unknown')", ""),
            TypeGrouping::All => ("'all'::varchar", ""),
            TypeGrouping::Unknown => ("'unknown'::varchar", "AND c.consumer_type_id IS NULL"),
            TypeGrouping::Named(_) => ("ct.name", ""),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            TypeGrouping::Named(name) => Some(name),
            _ => None,
        }
    }
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct GroupUsageRow {
    #[diesel(sql_type = Nullable<Varchar>)]
    pub consumer_type: Option<String>,
    #[diesel(sql_type = Varchar)]
    pub resource_class: String,
    #[diesel(sql_type = BigInt)]
    pub used: i64,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
pub struct GroupCountRow {
    #[diesel(sql_type = Nullable<Varchar>)]
    pub consumer_type: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub consumers: i64,
}

/// The allocations of a project's consumers (optionally one user's, and
/// optionally of one consumer type `$3`).
const FROM_SCOPE: &str = "FROM allocations a \
     JOIN consumers c ON c.uuid = a.consumer_id \
     JOIN projects p ON p.id = c.project_id \
     JOIN users u ON u.id = c.user_id \
     LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id";
const WHERE_SCOPE: &str = "WHERE p.external_id = $1 \
       AND ($2::varchar IS NULL OR u.external_id = $2) \
       AND ($3::varchar IS NULL OR ct.name = $3)";

/// Usage sums of a project's (and optionally a user's) consumers per
/// group and class.
///
/// ```sql
/// SELECT <group key> AS consumer_type, rc.name AS resource_class,
///        SUM(a.used)::bigint AS used
/// FROM allocations a
/// JOIN consumers c ON c.uuid = a.consumer_id
/// JOIN projects p ON p.id = c.project_id
/// JOIN users u ON u.id = c.user_id
/// LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id
/// JOIN resource_classes rc ON rc.id = a.resource_class_id
/// WHERE p.external_id = $1 AND ($2 IS NULL OR u.external_id = $2)
///   AND ($3 IS NULL OR ct.name = $3) <AND c.consumer_type_id IS NULL for unknown>
/// GROUP BY 1, rc.name
/// ```
pub fn for_project(
    connection: &mut Connection,
    project_id: &str,
    user_id: Option<&str>,
    grouping: &TypeGrouping,
) -> QueryResult<Vec<GroupUsageRow>> {
    let (key, filter) = grouping.sql();
    diesel::sql_query(format!(
        "SELECT {key} AS consumer_type, rc.name AS resource_class, \
                SUM(a.used)::bigint AS used \
         {FROM_SCOPE} JOIN resource_classes rc ON rc.id = a.resource_class_id \
         {WHERE_SCOPE} {filter} \
         GROUP BY 1, rc.name ORDER BY 1, rc.name"
    ))
    .bind::<Varchar, _>(project_id)
    .bind::<Nullable<Varchar>, _>(user_id)
    .bind::<Nullable<Varchar>, _>(grouping.name())
    .load(connection)
}

/// The number of distinct consumers of each group of `for_project`.
///
/// ```sql
/// SELECT <group key> AS consumer_type, COUNT(DISTINCT a.consumer_id) AS consumers
/// FROM ... (as for_project) GROUP BY 1
/// ```
pub fn consumer_counts(
    connection: &mut Connection,
    project_id: &str,
    user_id: Option<&str>,
    grouping: &TypeGrouping,
) -> QueryResult<Vec<GroupCountRow>> {
    let (key, filter) = grouping.sql();
    diesel::sql_query(format!(
        "SELECT {key} AS consumer_type, COUNT(DISTINCT a.consumer_id) AS consumers \
         {FROM_SCOPE} {WHERE_SCOPE} {filter} GROUP BY 1"
    ))
    .bind::<Varchar, _>(project_id)
    .bind::<Nullable<Varchar>, _>(user_id)
    .bind::<Nullable<Varchar>, _>(grouping.name())
    .load(connection)
}
