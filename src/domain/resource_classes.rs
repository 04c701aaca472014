//! Resource class operations and their rules: only `CUSTOM_` classes may
//! be created, renamed or deleted, and not while an inventory uses them.
//! Answers to upstream's `objects/resource_class.py`.

use crate::errors::DomainError;
use crate::storage;
use crate::storage::resource_classes::{self as store, ResourceClassRow};
use crate::storage::{Connection, is_unique_violation};

fn not_found(name: &str) -> DomainError {
    DomainError::not_found(format!("No such resource class {name}."))
}

pub fn get(connection: &mut Connection, name: &str) -> Result<ResourceClassRow, DomainError> {
    store::get_by_name(connection, name)?.ok_or_else(|| not_found(name))
}

/// Every class, standard and custom.
pub fn list(connection: &mut Connection) -> Result<Vec<ResourceClassRow>, DomainError> {
    Ok(store::list(connection)?)
}

/// Creates a custom class unless it exists (`PUT` from 1.7): true when
/// this call created it.
pub fn ensure(connection: &mut Connection, name: &str) -> Result<bool, DomainError> {
    if store::get_by_name(connection, name)?.is_some() {
        return Ok(false);
    }
    Ok(create(connection, name)?.is_some())
}

/// Creates a custom class; `Ok(None)` when the name is already taken.
pub fn create(
    connection: &mut Connection,
    name: &str,
) -> Result<Option<ResourceClassRow>, DomainError> {
    match store::insert_custom(connection, name) {
        Ok(row) => Ok(Some(row)),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Renames a custom class (microversions 1.2 to 1.6).
pub fn rename(
    connection: &mut Connection,
    name: &str,
    new_name: &str,
) -> Result<ResourceClassRow, DomainError> {
    storage::write_transaction(connection, |connection| {
        let row = get(connection, name)?;
        if row.is_standard() {
            return Err(DomainError::bad_request(format!(
                "Cannot update standard resource class {name}"
            )));
        }
        match store::rename(connection, row.id, new_name) {
            Ok(row) => Ok(row),
            Err(error) if is_unique_violation(&error) => Err(DomainError::conflict(
                crate::errors::ErrorCode::Undefined,
                format!("Resource class already exists: {new_name}"),
            )),
            Err(error) => Err(error.into()),
        }
    })
}

pub fn delete(connection: &mut Connection, name: &str) -> Result<(), DomainError> {
    storage::write_transaction(connection, |connection| {
        let row = get(connection, name)?;
        if row.is_standard() {
            return Err(DomainError::bad_request(format!(
                "Error in delete resource class: Cannot delete standard resource class {name}."
            )));
        }
        if store::is_used_by_inventory(connection, row.id)? {
            return Err(DomainError::conflict(
                crate::errors::ErrorCode::Undefined,
                format!(
                    "Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."
                ),
            ));
        }
        store::delete(connection, row.id)?;
        Ok(())
    })
}
