//! TEMPORARY interface placeholder, replaced by the real enforcer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defaults {
    Legacy,
    Secure,
}
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user_id: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub system_scope: Option<String>,
}
pub struct Target {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
}
#[derive(Debug, thiserror::Error)]
#[error("policy")]
pub struct PolicyError;
pub struct Enforcer;
impl Enforcer {
    pub fn from_file(
        _defaults: Defaults,
        _path: Option<&std::path::Path>,
    ) -> Result<Enforcer, PolicyError> {
        Ok(Enforcer)
    }
    pub fn authorize(&self, _action: &str, credentials: &Credentials, _target: &Target) -> bool {
        credentials.roles.iter().any(|r| r == "admin")
    }
}
pub mod actions {
    pub const RESOURCE_PROVIDERS_LIST: &str = "placement:resource_providers:list";
    pub const RESOURCE_PROVIDERS_CREATE: &str = "placement:resource_providers:create";
    pub const RESOURCE_PROVIDERS_SHOW: &str = "placement:resource_providers:show";
    pub const RESOURCE_PROVIDERS_UPDATE: &str = "placement:resource_providers:update";
    pub const RESOURCE_PROVIDERS_DELETE: &str = "placement:resource_providers:delete";
    pub const INVENTORIES_LIST: &str = "placement:resource_providers:inventories:list";
    pub const INVENTORIES_CREATE: &str = "placement:resource_providers:inventories:create";
    pub const INVENTORIES_SHOW: &str = "placement:resource_providers:inventories:show";
    pub const INVENTORIES_UPDATE: &str = "placement:resource_providers:inventories:update";
    pub const INVENTORIES_DELETE: &str = "placement:resource_providers:inventories:delete";
    pub const AGGREGATES_LIST: &str = "placement:resource_providers:aggregates:list";
    pub const AGGREGATES_UPDATE: &str = "placement:resource_providers:aggregates:update";
    pub const RESOURCE_PROVIDER_ALLOCATIONS_LIST: &str =
        "placement:resource_providers:allocations:list";
    pub const ALLOCATIONS_LIST: &str = "placement:allocations:list";
    pub const ALLOCATIONS_MANAGE: &str = "placement:allocations:manage";
    pub const ALLOCATIONS_UPDATE: &str = "placement:allocations:update";
    pub const ALLOCATIONS_DELETE: &str = "placement:allocations:delete";
    pub const ALLOCATION_CANDIDATES_LIST: &str = "placement:allocation_candidates:list";
    pub const RESHAPER_RESHAPE: &str = "placement:reshaper:reshape";
    pub const RESOURCE_CLASSES_LIST: &str = "placement:resource_classes:list";
    pub const RESOURCE_CLASSES_CREATE: &str = "placement:resource_classes:create";
    pub const RESOURCE_CLASSES_SHOW: &str = "placement:resource_classes:show";
    pub const RESOURCE_CLASSES_UPDATE: &str = "placement:resource_classes:update";
    pub const RESOURCE_CLASSES_DELETE: &str = "placement:resource_classes:delete";
    pub const RESOURCE_PROVIDER_TRAITS_LIST: &str = "placement:resource_providers:traits:list";
    pub const RESOURCE_PROVIDER_TRAITS_UPDATE: &str = "placement:resource_providers:traits:update";
    pub const RESOURCE_PROVIDER_TRAITS_DELETE: &str = "placement:resource_providers:traits:delete";
    pub const TRAITS_LIST: &str = "placement:traits:list";
    pub const TRAITS_SHOW: &str = "placement:traits:show";
    pub const TRAITS_UPDATE: &str = "placement:traits:update";
    pub const TRAITS_DELETE: &str = "placement:traits:delete";
    pub const RESOURCE_PROVIDER_USAGES: &str = "placement:resource_providers:usages";
    pub const TOTAL_USAGES: &str = "placement:usages";
}
