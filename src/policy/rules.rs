//! The policy rules placement registers: names, default check strings,
//! deprecated (legacy) check strings and scope types.
//! Answers to upstream `placement/policies/*.py`.

/// The name of every rule placement registers, so handlers never spell them.
pub mod actions {
    /// Base rule: placement admins.
    pub const ADMIN_API: &str = "admin_api";
    /// Base rule: service-to-service callers.
    pub const SERVICE_API: &str = "service_api";
    /// Base rule: admins or services.
    pub const ADMIN_OR_SERVICE_API: &str = "admin_or_service_api";
    /// Base rule: readers of the target project.
    pub const PROJECT_READER_API: &str = "project_reader_api";
    /// Base rule: admins, readers of the target project, or services.
    pub const ADMIN_OR_PROJECT_READER_OR_SERVICE_API: &str =
        "admin_or_project_reader_or_service_api";

    /// `GET /resource_providers`.
    pub const RESOURCE_PROVIDERS_LIST: &str = "placement:resource_providers:list";
    /// `POST /resource_providers`.
    pub const RESOURCE_PROVIDERS_CREATE: &str = "placement:resource_providers:create";
    /// `GET /resource_providers/{uuid}`.
    pub const RESOURCE_PROVIDERS_SHOW: &str = "placement:resource_providers:show";
    /// `PUT /resource_providers/{uuid}`.
    pub const RESOURCE_PROVIDERS_UPDATE: &str = "placement:resource_providers:update";
    /// `DELETE /resource_providers/{uuid}`.
    pub const RESOURCE_PROVIDERS_DELETE: &str = "placement:resource_providers:delete";

    /// `GET /resource_classes`.
    pub const RESOURCE_CLASSES_LIST: &str = "placement:resource_classes:list";
    /// `POST /resource_classes`.
    pub const RESOURCE_CLASSES_CREATE: &str = "placement:resource_classes:create";
    /// `GET /resource_classes/{name}`.
    pub const RESOURCE_CLASSES_SHOW: &str = "placement:resource_classes:show";
    /// `PUT /resource_classes/{name}`.
    pub const RESOURCE_CLASSES_UPDATE: &str = "placement:resource_classes:update";
    /// `DELETE /resource_classes/{name}`.
    pub const RESOURCE_CLASSES_DELETE: &str = "placement:resource_classes:delete";

    /// `GET /resource_providers/{uuid}/inventories`.
    pub const INVENTORIES_LIST: &str = "placement:resource_providers:inventories:list";
    /// `POST /resource_providers/{uuid}/inventories`.
    pub const INVENTORIES_CREATE: &str = "placement:resource_providers:inventories:create";
    /// `GET /resource_providers/{uuid}/inventories/{resource_class}`.
    pub const INVENTORIES_SHOW: &str = "placement:resource_providers:inventories:show";
    /// `PUT` of one or all inventories of a provider.
    pub const INVENTORIES_UPDATE: &str = "placement:resource_providers:inventories:update";
    /// `DELETE` of one or all inventories of a provider.
    pub const INVENTORIES_DELETE: &str = "placement:resource_providers:inventories:delete";

    /// `GET /resource_providers/{uuid}/aggregates`.
    pub const AGGREGATES_LIST: &str = "placement:resource_providers:aggregates:list";
    /// `PUT /resource_providers/{uuid}/aggregates`.
    pub const AGGREGATES_UPDATE: &str = "placement:resource_providers:aggregates:update";

    /// `GET /resource_providers/{uuid}/usages`.
    pub const RESOURCE_PROVIDER_USAGES: &str = "placement:resource_providers:usages";
    /// `GET /usages`; the target carries the queried `project_id`.
    pub const TOTAL_USAGES: &str = "placement:usages";

    /// `GET /traits`.
    pub const TRAITS_LIST: &str = "placement:traits:list";
    /// `GET /traits/{name}`.
    pub const TRAITS_SHOW: &str = "placement:traits:show";
    /// `PUT /traits/{name}`.
    pub const TRAITS_UPDATE: &str = "placement:traits:update";
    /// `DELETE /traits/{name}`.
    pub const TRAITS_DELETE: &str = "placement:traits:delete";
    /// `GET /resource_providers/{uuid}/traits`.
    pub const RESOURCE_PROVIDER_TRAITS_LIST: &str = "placement:resource_providers:traits:list";
    /// `PUT /resource_providers/{uuid}/traits`.
    pub const RESOURCE_PROVIDER_TRAITS_UPDATE: &str = "placement:resource_providers:traits:update";
    /// `DELETE /resource_providers/{uuid}/traits`.
    pub const RESOURCE_PROVIDER_TRAITS_DELETE: &str = "placement:resource_providers:traits:delete";

    /// `POST /allocations`.
    pub const ALLOCATIONS_MANAGE: &str = "placement:allocations:manage";
    /// `GET /allocations/{consumer_uuid}`.
    pub const ALLOCATIONS_LIST: &str = "placement:allocations:list";
    /// `PUT /allocations/{consumer_uuid}`.
    pub const ALLOCATIONS_UPDATE: &str = "placement:allocations:update";
    /// `DELETE /allocations/{consumer_uuid}`.
    pub const ALLOCATIONS_DELETE: &str = "placement:allocations:delete";
    /// `GET /resource_providers/{uuid}/allocations`.
    pub const RESOURCE_PROVIDER_ALLOCATIONS_LIST: &str =
        "placement:resource_providers:allocations:list";

    /// `GET /allocation_candidates`.
    pub const ALLOCATION_CANDIDATES_LIST: &str = "placement:allocation_candidates:list";

    /// `POST /reshaper`.
    pub const RESHAPER_RESHAPE: &str = "placement:reshaper:reshape";

    /// `GET /extensions` (this server's extension).
    pub const EXTENSIONS_LIST: &str = "placement:extensions:list";
    /// `POST /claims` (this server's extension).
    pub const CLAIMS_CREATE: &str = "placement:claims:create";
    /// `GET /changes` (this server's extension).
    pub const CHANGES_LIST: &str = "placement:changes:list";

    /// The rules of this server's extensions, registered after upstream's.
    pub const EXTENSIONS: &[&str] = &[EXTENSIONS_LIST, CLAIMS_CREATE, CHANGES_LIST];

    /// Every rule upstream registers, in upstream's registration order.
    pub const ALL: &[&str] = &[
        ADMIN_API,
        SERVICE_API,
        ADMIN_OR_SERVICE_API,
        PROJECT_READER_API,
        ADMIN_OR_PROJECT_READER_OR_SERVICE_API,
        RESOURCE_PROVIDERS_LIST,
        RESOURCE_PROVIDERS_CREATE,
        RESOURCE_PROVIDERS_SHOW,
        RESOURCE_PROVIDERS_UPDATE,
        RESOURCE_PROVIDERS_DELETE,
        RESOURCE_CLASSES_LIST,
        RESOURCE_CLASSES_CREATE,
        RESOURCE_CLASSES_SHOW,
        RESOURCE_CLASSES_UPDATE,
        RESOURCE_CLASSES_DELETE,
        INVENTORIES_LIST,
        INVENTORIES_CREATE,
        INVENTORIES_SHOW,
        INVENTORIES_UPDATE,
        INVENTORIES_DELETE,
        AGGREGATES_LIST,
        AGGREGATES_UPDATE,
        RESOURCE_PROVIDER_USAGES,
        TOTAL_USAGES,
        TRAITS_LIST,
        TRAITS_SHOW,
        TRAITS_UPDATE,
        TRAITS_DELETE,
        RESOURCE_PROVIDER_TRAITS_LIST,
        RESOURCE_PROVIDER_TRAITS_UPDATE,
        RESOURCE_PROVIDER_TRAITS_DELETE,
        ALLOCATIONS_MANAGE,
        ALLOCATIONS_LIST,
        ALLOCATIONS_UPDATE,
        ALLOCATIONS_DELETE,
        RESOURCE_PROVIDER_ALLOCATIONS_LIST,
        ALLOCATION_CANDIDATES_LIST,
        RESHAPER_RESHAPE,
    ];
}

use actions::*;

/// An older check string a rule still honours under legacy defaults
/// (oslo.policy `DeprecatedRule`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeprecatedRule {
    pub name: &'static str,
    pub check_str: &'static str,
}

/// One registered rule (oslo.policy `RuleDefault`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleDefault {
    pub name: &'static str,
    pub check_str: &'static str,
    /// Empty means "no scope_types": any token scope passes.
    pub scope_types: &'static [&'static str],
    pub deprecated: Option<DeprecatedRule>,
}

const PROJECT: &[&str] = &["project"];

const ADMIN_OR_SERVICE: &str = "rule:admin_or_service_api";
const SERVICE: &str = "rule:service_api";
const ADMIN_OR_PROJECT_READER_OR_SERVICE: &str = "rule:admin_or_project_reader_or_service_api";

// Upstream really names this deprecated rule "rule:admin_api" (not
// "admin_api"); the name matters for oslo's renamed-rule handling.
const DEPRECATED_ADMIN: DeprecatedRule = DeprecatedRule {
    name: "rule:admin_api",
    check_str: "role:admin",
};

/// Every rule placement registers, in upstream's registration order, then
/// the extensions'.
pub(crate) fn defaults() -> Vec<RuleDefault> {
    actions::ALL
        .iter()
        .chain(actions::EXTENSIONS)
        .map(|name| default_for(name))
        .collect()
}

/// Upstream's `RuleDefault` for one registered name.
fn default_for(name: &'static str) -> RuleDefault {
    let (check_str, scope_types, deprecated) = match name {
        ADMIN_API => ("role:admin", PROJECT, None),
        SERVICE_API => ("role:service", PROJECT, Some(DEPRECATED_ADMIN)),
        ADMIN_OR_SERVICE_API => (
            "role:admin or role:service",
            PROJECT,
            Some(DEPRECATED_ADMIN),
        ),
        // Upstream gives this one no scope_types.
        PROJECT_READER_API => (
            "role:reader and project_id:%(project_id)s",
            &[][..],
            Some(DEPRECATED_ADMIN),
        ),
        ADMIN_OR_PROJECT_READER_OR_SERVICE_API => (
            "role:admin or rule:project_reader_api or role:service",
            PROJECT,
            Some(DEPRECATED_ADMIN),
        ),
        TOTAL_USAGES => (ADMIN_OR_PROJECT_READER_OR_SERVICE, PROJECT, None),
        RESHAPER_RESHAPE => (SERVICE, PROJECT, None),
        // Like `GET /`: any caller may learn what the server offers.
        EXTENSIONS_LIST => ("@", PROJECT, None),
        // Every other `placement:*` rule.
        _ => (ADMIN_OR_SERVICE, PROJECT, None),
    };
    RuleDefault {
        name,
        check_str,
        scope_types,
        deprecated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn registers_every_action_once_in_order() {
        let names: Vec<&str> = defaults().iter().map(|rule| rule.name).collect();
        assert_eq!(names[..actions::ALL.len()], *actions::ALL);
        assert_eq!(names[actions::ALL.len()..], *actions::EXTENSIONS);
        assert_eq!(actions::ALL.len(), 38);
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn only_project_reader_api_lacks_scope_types() {
        for rule in defaults() {
            if rule.name == PROJECT_READER_API {
                assert!(rule.scope_types.is_empty());
            } else {
                assert_eq!(rule.scope_types, ["project"], "{}", rule.name);
            }
        }
    }

    #[test]
    fn placement_rules_default_to_admin_or_service() {
        let rules = defaults();
        let admin_or_service: Vec<&str> = rules
            .iter()
            .filter(|rule| rule.check_str == "rule:admin_or_service_api")
            .map(|rule| rule.name)
            .collect();
        // The extensions' claims and changes rules join upstream's 31.
        assert_eq!(admin_or_service.len(), 33);
        assert!(
            admin_or_service
                .iter()
                .all(|name| name.starts_with("placement:"))
        );
        let deprecated: Vec<&str> = rules
            .iter()
            .filter(|rule| rule.deprecated.is_some())
            .map(|rule| rule.name)
            .collect();
        assert_eq!(
            deprecated,
            [
                SERVICE_API,
                ADMIN_OR_SERVICE_API,
                PROJECT_READER_API,
                ADMIN_OR_PROJECT_READER_OR_SERVICE_API
            ]
        );
    }

    #[test]
    fn reshaper_is_service_only_and_usages_project_readable() {
        let rules = defaults();
        let find = |name: &str| {
            rules
                .iter()
                .find(|rule| rule.name == name)
                .map(|r| r.check_str)
        };
        assert_eq!(find(RESHAPER_RESHAPE), Some("rule:service_api"));
        assert_eq!(
            find(TOTAL_USAGES),
            Some("rule:admin_or_project_reader_or_service_api")
        );
    }
}
