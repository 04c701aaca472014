//! Resource provider operations: create, show, rename and re-parent,
//! delete, and the filtered list (upstream `objects/resource_provider.py`).

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::capacity::Limits;
use crate::errors::{DomainError, ErrorCode};
use crate::schemas::query::{MemberOf, RequiredTraits};
use crate::storage;
use crate::storage::Connection;
use crate::storage::resource_providers::{
    self as store, Duplicate, NewProvider, ProviderFilter, ProviderRow,
};

/// The provider named by a path's `{uuid}`; 404 when absent or not a UUID.
pub fn find(connection: &mut Connection, uuid: &str) -> Result<ProviderRow, DomainError> {
    let parsed = parse_uuid(uuid)?;
    store::get_by_uuid(connection, parsed)?.ok_or_else(|| not_found(uuid))
}

/// As `find`, with the provider's row locked until the transaction ends,
/// for a write that changes the provider's inventories or traits before
/// it moves the generation: every writer takes the provider's row before
/// its other rows, so two writers on one provider queue instead of
/// deadlocking, and the generation read is the newest committed.
pub fn find_for_write(connection: &mut Connection, uuid: &str) -> Result<ProviderRow, DomainError> {
    let parsed = parse_uuid(uuid)?;
    store::get_by_uuid_locked(connection, parsed)?.ok_or_else(|| not_found(uuid))
}

/// A path's `{uuid}`; 404 when it is not a UUID (it names no provider).
pub fn parse_uuid(uuid: &str) -> Result<Uuid, DomainError> {
    Uuid::parse_str(uuid).map_err(|_| not_found(uuid))
}

/// 404: no provider has the path's `{uuid}`.
pub fn not_found(uuid: &str) -> DomainError {
    DomainError::not_found(format!("No resource provider with uuid {uuid} found"))
}

/// The generation compare-and-swap for a provider this transaction changed.
/// A lost race is `placement.concurrent_update`.
pub fn bump_generation(
    connection: &mut Connection,
    provider: &ProviderRow,
) -> Result<i32, DomainError> {
    store::bump_generation(connection, provider.id, provider.generation)?
        .ok_or_else(DomainError::concurrent_update)
}

/// Upstream's text for a stale provider generation in the traits and
/// aggregates handlers.
pub const GENERATION_CHANGED: &str =
    "Resource provider's generation already changed. Please update the generation and try again.";

/// 409 `conflict_text` unless the client's generation is the provider's
/// current one (upstream's handlers word it differently).
pub fn check_generation(
    current: i32,
    expected: i64,
    conflict_text: &str,
) -> Result<(), DomainError> {
    if i64::from(current) == expected {
        Ok(())
    } else {
        Err(DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            conflict_text,
        ))
    }
}

/// A provider with the uuids of its parent and root.
#[derive(Debug, Clone)]
pub struct Provider {
    pub row: ProviderRow,
    pub parent_uuid: Option<Uuid>,
    pub root_uuid: Uuid,
}

/// Attaches parent and root uuids to provider rows with one lookup.
fn with_tree(
    connection: &mut Connection,
    rows: Vec<ProviderRow>,
) -> Result<Vec<Provider>, DomainError> {
    let mut wanted: Vec<i32> = rows
        .iter()
        .flat_map(|row| {
            row.parent_provider_id
                .into_iter()
                .chain([row.root_provider_id])
        })
        .filter(|id| !rows.iter().any(|row| row.id == *id))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut uuids = if wanted.is_empty() {
        HashMap::new()
    } else {
        store::uuids_by_id(connection, &wanted)?
    };
    uuids.extend(rows.iter().map(|row| (row.id, row.uuid)));
    Ok(rows
        .into_iter()
        .map(|row| Provider {
            parent_uuid: row
                .parent_provider_id
                .and_then(|id| uuids.get(&id).copied()),
            root_uuid: uuids
                .get(&row.root_provider_id)
                .copied()
                .unwrap_or(row.uuid),
            row,
        })
        .collect())
}

fn one_with_tree(connection: &mut Connection, row: ProviderRow) -> Result<Provider, DomainError> {
    with_tree(connection, vec![row])?
        .pop()
        .ok_or_else(|| DomainError::not_found("No resource provider found"))
}

/// The provider named by a path's `{uuid}`, with its tree uuids.
pub fn show(connection: &mut Connection, uuid: &str) -> Result<Provider, DomainError> {
    let row = find(connection, uuid)?;
    one_with_tree(connection, row)
}

fn duplicate(error: diesel::result::Error, uuid: Uuid, name: &str) -> DomainError {
    match store::duplicate_column(&error) {
        Some(Duplicate::Uuid) => DomainError::conflict(
            ErrorCode::DuplicateName,
            format!("Conflicting resource provider uuid: {uuid} already exists."),
        ),
        Some(Duplicate::Name) => DomainError::conflict(
            ErrorCode::DuplicateName,
            format!("Conflicting resource provider name: {name} already exists."),
        ),
        None => error.into(),
    }
}

/// Creates a provider, as a root or under an existing parent (whose root
/// it shares). 400 for a bad parent; 409 `duplicate_name` when the name or
/// uuid is taken.
pub fn create(
    connection: &mut Connection,
    uuid: Uuid,
    name: &str,
    parent: Option<Uuid>,
) -> Result<Provider, DomainError> {
    let refuse = |reason: &str| {
        DomainError::bad_request(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create failed because: {reason}"
        ))
    };
    if name.is_empty() {
        return Err(refuse("name is required"));
    }
    if parent.is_none() {
        // A root: one statement, atomic on its own.
        let new = NewProvider {
            uuid,
            name,
            parent_provider_id: None,
            root_provider_id: None,
        };
        let row = store::insert(connection, &new).map_err(|error| duplicate(error, uuid, name))?;
        return one_with_tree(connection, row);
    }
    storage::write_transaction(connection, |connection| {
        let parent_row = match parent {
            Some(parent_uuid) if parent_uuid == uuid => {
                return Err(refuse(
                    "parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.",
                ));
            }
            Some(parent_uuid) => Some(
                store::get_by_uuid(connection, parent_uuid)?
                    .ok_or_else(|| refuse("parent provider UUID does not exist."))?,
            ),
            None => None,
        };
        let new = NewProvider {
            uuid,
            name,
            parent_provider_id: parent_row.as_ref().map(|row| row.id),
            root_provider_id: parent_row.as_ref().map(|row| row.root_provider_id),
        };
        let row = store::insert(connection, &new).map_err(|error| duplicate(error, uuid, name))?;
        one_with_tree(connection, row)
    })
}

/// The ids of `provider_id` and all its descendants, from the tree's links.
fn subtree(links: &[(i32, Option<i32>)], provider_id: i32) -> Vec<i32> {
    let mut found = vec![provider_id];
    let mut index = 0;
    while index < found.len() {
        let current = found[index];
        found.extend(
            links
                .iter()
                .filter(|(_, parent)| *parent == Some(current))
                .map(|(id, _)| *id),
        );
        index += 1;
    }
    found
}

/// Renames a provider and, when `parent` is given, sets its parent (or
/// makes it a root with `Some(None)`). Before 1.37 a parent can only be
/// set where there was none. The moved subtree follows to the new root.
pub fn update(
    connection: &mut Connection,
    uuid: &str,
    name: &str,
    parent: Option<Option<Uuid>>,
    allow_reparenting: bool,
) -> Result<Provider, DomainError> {
    let refuse = |action: &str, reason: &str| {
        DomainError::bad_request(format!(
            "Unable to save resource provider {uuid}: Object action {action} failed because: {reason}"
        ))
    };
    storage::write_transaction(connection, |connection| {
        let current = find(connection, uuid)?;
        let mut parent_id = current.parent_provider_id;
        let mut root_id = current.root_provider_id;
        let mut moved: Vec<i32> = Vec::new();
        match parent {
            None => {}
            Some(Some(parent_uuid)) => {
                let parent_row = store::get_by_uuid(connection, parent_uuid)?
                    .ok_or_else(|| refuse("create", "parent provider UUID does not exist."))?;
                if current
                    .parent_provider_id
                    .is_some_and(|id| id != parent_row.id)
                    && !allow_reparenting
                {
                    return Err(refuse(
                        "update",
                        "re-parenting a provider is not currently allowed.",
                    ));
                }
                let links = store::list_tree_links(connection, current.root_provider_id)?;
                moved = subtree(&links, current.id);
                if moved.contains(&parent_row.id) {
                    return Err(refuse(
                        "update",
                        "creating loop in the provider tree is not allowed.",
                    ));
                }
                parent_id = Some(parent_row.id);
                root_id = parent_row.root_provider_id;
            }
            Some(None) if current.parent_provider_id.is_some() => {
                if !allow_reparenting {
                    return Err(refuse(
                        "update",
                        "un-parenting a provider is not currently allowed.",
                    ));
                }
                let links = store::list_tree_links(connection, current.root_provider_id)?;
                moved = subtree(&links, current.id);
                parent_id = None;
                root_id = current.id;
            }
            Some(None) => {}
        }
        // A moved subtree is rewritten row by row: take its rows in id
        // order first, as allocation writes do, so the two cannot deadlock.
        if moved.len() > 1 {
            store::lock_by_ids(connection, &moved)?;
        }
        // Nothing to change, nothing written (SQLAlchemy flushes no UPDATE
        // for an unchanged object): `updated_at` stays, which upstream's
        // next update answers with as `last-modified`.
        if name == current.name
            && parent_id == current.parent_provider_id
            && root_id == current.root_provider_id
        {
            return one_with_tree(connection, current);
        }
        let row =
            store::update(connection, current.id, name, parent_id, root_id).map_err(|error| {
                match store::duplicate_column(&error) {
                    Some(_) => DomainError::conflict(
                        ErrorCode::DuplicateName,
                        format!("Conflicting resource provider {name} already exists."),
                    ),
                    // Deleted since it was read.
                    None if matches!(error, diesel::result::Error::NotFound) => not_found(uuid),
                    None => error.into(),
                }
            })?;
        let descendants: Vec<i32> = moved.into_iter().filter(|id| *id != current.id).collect();
        if !descendants.is_empty() && root_id != current.root_provider_id {
            store::set_root(connection, &descendants, root_id)?;
        }
        one_with_tree(connection, row)
    })
}

/// Deletes a provider with its inventories, traits and aggregate links.
/// 409 while it has children or allocations.
pub fn delete(connection: &mut Connection, uuid: &str) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        // Locked first: the checks below then hold until the delete (a
        // claim takes the same row before it adds allocations), and the
        // provider's rows go after its own, in every writer's order.
        let provider = find_for_write(connection, uuid).map_err(|error| match error {
            DomainError::NotFound(_) => DomainError::not_found(format!(
                "No resource provider with uuid {uuid} found for delete"
            )),
            other => other,
        })?;
        if store::has_children(connection, provider.id)? {
            return Err(DomainError::conflict(
                ErrorCode::ProviderCannotDeleteParent,
                format!(
                    "Unable to delete parent resource provider {uuid}: It has child resource providers."
                ),
            ));
        }
        if store::has_allocations(connection, provider.id)? {
            return Err(DomainError::conflict(
                ErrorCode::ProviderInUse,
                format!(
                    "Unable to delete resource provider {uuid}: Resource provider has allocations."
                ),
            ));
        }
        store::delete(connection, provider.id)?;
        Ok(())
    })
}

/// The filters of `GET /resource_providers`, as parsed from the query.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub name: Option<String>,
    pub uuid: Option<Uuid>,
    pub in_tree: Option<Uuid>,
    pub member_of: MemberOf,
    pub required: RequiredTraits,
    pub resources: Vec<(String, i64)>,
}

/// The providers matching every filter. An unknown trait or resource class
/// is a 400; an unknown `in_tree` provider gives an empty list.
pub fn list(
    connection: &mut Connection,
    filter: &ListFilter,
) -> Result<Vec<Provider>, DomainError> {
    connection.build_transaction().read_only().run(|connection| {
        let mut query = ProviderFilter {
            name: filter.name.clone(),
            uuid: filter.uuid,
            forbidden_aggregates: filter.member_of.forbidden.clone(),
            aggregate_groups: filter.member_of.all_of.clone(),
            ..ProviderFilter::default()
        };
        if let Some(tree) = filter.in_tree {
            match store::get_by_uuid(connection, tree)? {
                Some(row) => query.root_provider_id = Some(row.root_provider_id),
                None => return Ok(Vec::new()),
            }
        }
        if !filter.required.is_empty() {
            let names = filter.required.names();
            let filter_names = crate::storage::traits::TraitFilter {
                name_in: Some(names.clone()),
                ..Default::default()
            };
            let ids: HashMap<String, i32> = crate::storage::traits::list(connection, &filter_names)?
                .into_iter()
                .map(|row| (row.name, row.id))
                .collect();
            if let Some(missing) = names.iter().find(|name| !ids.contains_key(*name)) {
                return Err(DomainError::bad_request(format!(
                    "Invalid trait(s) in \"required\" parameter: No such trait(s): {missing}."
                )));
            }
            let id_of = |name: &String| ids.get(name).copied().unwrap_or_default();
            query.trait_groups = filter
                .required
                .all_of
                .iter()
                .map(|group| group.iter().map(id_of).collect())
                .collect();
            query.forbidden_traits = filter.required.forbidden.iter().map(id_of).collect();
        }
        let mut amounts: Vec<(i32, i64)> = Vec::new();
        if !filter.resources.is_empty() {
            let names: Vec<&str> = filter.resources.iter().map(|(name, _)| name.as_str()).collect();
            let ids = crate::storage::resource_classes::ids_by_name(connection, &names)?;
            for (name, amount) in &filter.resources {
                let id = ids.get(name).ok_or_else(|| {
                    DomainError::bad_request(format!(
                        "Invalid resource class in resources parameter: No such resource class {name}."
                    ))
                })?;
                amounts.push((*id, *amount));
            }
            query.resource_class_ids = amounts.iter().map(|(id, _)| *id).collect();
        }
        let mut rows = store::list(connection, &query)?;
        if !amounts.is_empty() && !rows.is_empty() {
            let provider_ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
            let inventories =
                store::list_inventory_usage(connection, &provider_ids, &query.resource_class_ids)?;
            rows.retain(|row| {
                amounts.iter().all(|(class_id, amount)| {
                    inventories.iter().any(|inventory| {
                        inventory.resource_provider_id == row.id
                            && inventory.resource_class_id == *class_id
                            && Limits {
                                total: inventory.total,
                                reserved: inventory.reserved,
                                min_unit: inventory.min_unit,
                                max_unit: inventory.max_unit,
                                step_size: inventory.step_size,
                                allocation_ratio: inventory.allocation_ratio,
                            }
                            .can_allocate(inventory.used, *amount)
                    })
                })
            });
        }
        with_tree(connection, rows)
    })
}

#[cfg(test)]
mod tests {
    use super::subtree;

    #[test]
    fn subtree_collects_descendants_only() {
        // 1 -> 2 -> 3, 1 -> 4, 5 -> 6 (unrelated)
        let links = [
            (1, None),
            (2, Some(1)),
            (3, Some(2)),
            (4, Some(1)),
            (6, Some(5)),
        ];
        let mut found = subtree(&links, 2);
        found.sort_unstable();
        assert_eq!(found, vec![2, 3]);
        let mut found = subtree(&links, 1);
        found.sort_unstable();
        assert_eq!(found, vec![1, 2, 3, 4]);
    }
}
