//! The standard resource classes (os-resource-classes 1.1.0) and traits
//! (os-traits 3.9.0), pinned in `data/` and synced at start-up. Answers to
//! upstream's `ensure_sync` in `objects/trait.py` and `objects/resource_class.py`.

use diesel::prelude::*;

use super::schema::{resource_classes, traits};
use super::{Connection, StorageError};

const STANDARD_RESOURCE_CLASSES: &str = include_str!("../../data/standard_resource_classes.txt");
const STANDARD_TRAITS: &str = include_str!("../../data/standard_traits.txt");

fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Standard resource class names; a class's id is its index here.
pub fn standard_resource_classes() -> Vec<&'static str> {
    data_lines(STANDARD_RESOURCE_CLASSES).collect()
}

/// Standard trait names.
pub fn standard_traits() -> Vec<&'static str> {
    data_lines(STANDARD_TRAITS).collect()
}

/// Inserts whatever standard class or trait is missing. Idempotent, and
/// safe when several processes run it at once (`ON CONFLICT DO NOTHING`).
pub fn sync(connection: &mut Connection) -> Result<(), StorageError> {
    let classes: Vec<_> = standard_resource_classes()
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let id = i32::try_from(index).unwrap_or(i32::MAX);
            (resource_classes::id.eq(id), resource_classes::name.eq(name))
        })
        .collect();
    diesel::insert_into(resource_classes::table)
        .values(&classes)
        .on_conflict_do_nothing()
        .execute(connection)?;
    let trait_rows: Vec<_> = standard_traits()
        .into_iter()
        .map(|name| traits::name.eq(name))
        .collect();
    diesel::insert_into(traits::table)
        .values(&trait_rows)
        .on_conflict_do_nothing()
        .execute(connection)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_lists_have_upstream_counts() {
        assert_eq!(standard_resource_classes().len(), 21);
        assert_eq!(standard_resource_classes()[0], "VCPU");
        assert_eq!(standard_traits().len(), 377);
    }
}
