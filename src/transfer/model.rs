//! What the API shows of a database, built from its rows: per provider its
//! name, generation, parent, root, inventories, usages, traits and
//! aggregates; per consumer its project, user, type, generation and
//! allocations; the resource classes and traits. `--verify` builds it for
//! both databases and lists every difference; ids, which no answer shows,
//! are left out, and names stand for them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

use uuid::Uuid;

use super::dataset::{Dataset, Named};
use crate::storage::standard_data;

#[derive(Debug, Default, PartialEq)]
pub struct ApiView {
    pub resource_classes: BTreeSet<String>,
    pub traits: BTreeSet<String>,
    pub providers: BTreeMap<Uuid, ProviderView>,
    pub consumers: BTreeMap<Uuid, ConsumerView>,
}

#[derive(Debug, PartialEq)]
pub struct ProviderView {
    pub name: String,
    pub generation: i32,
    pub parent: Option<Uuid>,
    pub root: Option<Uuid>,
    pub inventories: BTreeMap<String, InventoryView>,
    pub usages: BTreeMap<String, i64>,
    pub traits: BTreeSet<String>,
    pub aggregates: BTreeSet<Uuid>,
}

#[derive(Debug, PartialEq)]
pub struct InventoryView {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

#[derive(Debug, PartialEq)]
pub struct ConsumerView {
    pub project: Option<String>,
    pub user: Option<String>,
    pub consumer_type: Option<String>,
    pub generation: i32,
    /// Provider uuid -> class -> amount.
    pub allocations: BTreeMap<Uuid, BTreeMap<String, i64>>,
}

/// A name for an id of `rows`, or the id itself when it has none (an
/// orphan left in), so that two databases still compare.
fn namer<'a>(rows: impl Iterator<Item = (i32, &'a str)>) -> impl Fn(i32) -> String {
    let names: HashMap<i32, String> = rows.map(|(id, name)| (id, name.to_owned())).collect();
    move |id| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

fn provider_mut<'a>(
    providers: &'a mut BTreeMap<Uuid, ProviderView>,
    uuids: &HashMap<i32, Uuid>,
    id: i32,
) -> Option<&'a mut ProviderView> {
    uuids.get(&id).and_then(|uuid| providers.get_mut(uuid))
}

/// The names of `rows` and the `standard` ones.
fn with_standard(rows: &[Named], standard: Vec<&str>) -> BTreeSet<String> {
    rows.iter()
        .map(|row| row.name.clone())
        .chain(standard.into_iter().map(str::to_owned))
        .collect()
}

impl ApiView {
    pub fn of(data: &Dataset) -> ApiView {
        let class = namer(
            data.resource_classes
                .iter()
                .map(|c| (c.id, c.name.as_str())),
        );
        let trait_name = namer(data.traits.iter().map(|t| (t.id, t.name.as_str())));
        let project = namer(data.projects.iter().map(|p| (p.id, p.name.as_str())));
        let user = namer(data.users.iter().map(|u| (u.id, u.name.as_str())));
        let kind = namer(data.consumer_types.iter().map(|t| (t.id, t.name.as_str())));
        let provider_uuid: HashMap<i32, Uuid> =
            data.providers.iter().map(|p| (p.id, p.uuid)).collect();
        let aggregate_uuid: HashMap<i32, Uuid> =
            data.aggregates.iter().map(|a| (a.id, a.uuid)).collect();

        let mut providers: BTreeMap<Uuid, ProviderView> = data
            .providers
            .iter()
            .map(|p| {
                let view = ProviderView {
                    name: p.name.clone(),
                    generation: p.generation,
                    parent: p
                        .parent_provider_id
                        .and_then(|id| provider_uuid.get(&id).copied()),
                    root: provider_uuid.get(&p.root_provider_id).copied(),
                    inventories: BTreeMap::new(),
                    usages: BTreeMap::new(),
                    traits: BTreeSet::new(),
                    aggregates: BTreeSet::new(),
                };
                (p.uuid, view)
            })
            .collect();
        for inventory in &data.inventories {
            if let Some(provider) = provider_mut(
                &mut providers,
                &provider_uuid,
                inventory.resource_provider_id,
            ) {
                provider.inventories.insert(
                    class(inventory.resource_class_id),
                    InventoryView {
                        total: inventory.total,
                        reserved: inventory.reserved,
                        min_unit: inventory.min_unit,
                        max_unit: inventory.max_unit,
                        step_size: inventory.step_size,
                        allocation_ratio: inventory.allocation_ratio,
                    },
                );
            }
        }
        for link in &data.provider_traits {
            if let Some(provider) =
                provider_mut(&mut providers, &provider_uuid, link.resource_provider_id)
            {
                provider.traits.insert(trait_name(link.other_id));
            }
        }
        for link in &data.provider_aggregates {
            if let (Some(provider), Some(aggregate)) = (
                provider_mut(&mut providers, &provider_uuid, link.resource_provider_id),
                aggregate_uuid.get(&link.other_id),
            ) {
                provider.aggregates.insert(*aggregate);
            }
        }
        for allocation in &data.allocations {
            if let Some(provider) = provider_mut(
                &mut providers,
                &provider_uuid,
                allocation.resource_provider_id,
            ) {
                *provider
                    .usages
                    .entry(class(allocation.resource_class_id))
                    .or_default() += allocation.used;
            }
        }

        let mut consumers: BTreeMap<Uuid, ConsumerView> = data
            .consumers
            .iter()
            .map(|c| {
                let view = ConsumerView {
                    project: Some(project(c.project_id)),
                    user: Some(user(c.user_id)),
                    consumer_type: c.consumer_type_id.map(&kind),
                    generation: c.generation,
                    allocations: BTreeMap::new(),
                };
                (c.uuid, view)
            })
            .collect();
        for allocation in &data.allocations {
            let consumer =
                consumers
                    .entry(allocation.consumer_id)
                    .or_insert_with(|| ConsumerView {
                        project: None,
                        user: None,
                        consumer_type: None,
                        generation: 0,
                        allocations: BTreeMap::new(),
                    });
            let provider = provider_uuid
                .get(&allocation.resource_provider_id)
                .copied()
                .unwrap_or_default();
            *consumer
                .allocations
                .entry(provider)
                .or_default()
                .entry(class(allocation.resource_class_id))
                .or_default() += allocation.used;
        }

        // Both servers add the standard classes and traits they lack when
        // they start, so a database's API shows them whether it has their
        // rows or not.
        let resource_classes = with_standard(
            &data.resource_classes,
            standard_data::standard_resource_classes(),
        );
        let traits = with_standard(&data.traits, standard_data::standard_traits());
        ApiView {
            resource_classes,
            traits,
            providers,
            consumers,
        }
    }
}

/// Every difference between `source` and `target`, a line each, naming
/// what differs and both values.
pub fn differences(source: &ApiView, target: &ApiView) -> Vec<String> {
    let mut out = Vec::new();
    set_differences(
        &mut out,
        "resource class",
        &source.resource_classes,
        &target.resource_classes,
    );
    set_differences(&mut out, "trait", &source.traits, &target.traits);
    map_differences(
        &mut out,
        "resource provider",
        &source.providers,
        &target.providers,
        |out, what, a, b| {
            field(out, what, "name", &a.name, &b.name);
            field(out, what, "generation", &a.generation, &b.generation);
            field(out, what, "parent", &a.parent, &b.parent);
            field(out, what, "root", &a.root, &b.root);
            map_differences(
                out,
                &format!("{what} inventory"),
                &a.inventories,
                &b.inventories,
                |out, what, a, b| {
                    field(out, what, "", a, b);
                },
            );
            map_differences(
                out,
                &format!("{what} usage"),
                &a.usages,
                &b.usages,
                |out, what, a, b| {
                    field(out, what, "", a, b);
                },
            );
            set_differences(out, &format!("{what} trait"), &a.traits, &b.traits);
            set_differences(
                out,
                &format!("{what} aggregate"),
                &a.aggregates,
                &b.aggregates,
            );
        },
    );
    map_differences(
        &mut out,
        "consumer",
        &source.consumers,
        &target.consumers,
        |out, what, a, b| {
            field(out, what, "project", &a.project, &b.project);
            field(out, what, "user", &a.user, &b.user);
            field(
                out,
                what,
                "consumer type",
                &a.consumer_type,
                &b.consumer_type,
            );
            field(out, what, "generation", &a.generation, &b.generation);
            field(out, what, "allocations", &a.allocations, &b.allocations);
        },
    );
    out
}

fn field<T: PartialEq + Debug>(out: &mut Vec<String>, what: &str, name: &str, a: &T, b: &T) {
    if a != b {
        let name = if name.is_empty() {
            String::new()
        } else {
            format!(" {name}")
        };
        out.push(format!("{what}{name}: source {a:?}, target {b:?}"));
    }
}

fn set_differences<T: Ord + std::fmt::Display>(
    out: &mut Vec<String>,
    what: &str,
    source: &BTreeSet<T>,
    target: &BTreeSet<T>,
) {
    for only in source.difference(target) {
        out.push(format!("{what} {only}: only in the source"));
    }
    for only in target.difference(source) {
        out.push(format!("{what} {only}: only in the target"));
    }
}

fn map_differences<K: Ord + std::fmt::Display, V>(
    out: &mut Vec<String>,
    what: &str,
    source: &BTreeMap<K, V>,
    target: &BTreeMap<K, V>,
    compare: impl Fn(&mut Vec<String>, &str, &V, &V),
) {
    for (key, a) in source {
        match target.get(key) {
            Some(b) => compare(out, &format!("{what} {key}"), a, b),
            None => out.push(format!("{what} {key}: only in the source")),
        }
    }
    for key in target.keys().filter(|key| !source.contains_key(key)) {
        out.push(format!("{what} {key}: only in the target"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::dataset::{Allocation, Inventory, Provider};
    use super::*;

    fn data() -> Dataset {
        let provider = |id: i32, parent: Option<i32>| Provider {
            id,
            uuid: Uuid::from_u128(id as u128),
            name: format!("rp{id}"),
            generation: 1,
            root_provider_id: 1,
            parent_provider_id: parent,
            created_at: None,
            updated_at: None,
        };
        Dataset {
            resource_classes: vec![Named {
                id: 10000,
                name: "CUSTOM_X".to_owned(),
                created_at: None,
                updated_at: None,
            }],
            providers: vec![provider(1, None), provider(2, Some(1))],
            inventories: vec![Inventory {
                id: 1,
                resource_provider_id: 2,
                resource_class_id: 10000,
                total: 8,
                reserved: 0,
                min_unit: 1,
                max_unit: 8,
                step_size: 1,
                allocation_ratio: 1.5,
                created_at: None,
                updated_at: None,
            }],
            allocations: vec![
                Allocation {
                    id: 1,
                    resource_provider_id: 2,
                    consumer_id: Uuid::from_u128(9),
                    resource_class_id: 10000,
                    used: 2,
                    created_at: None,
                    updated_at: None,
                };
                2
            ],
            ..Dataset::default()
        }
    }

    #[test]
    fn the_view_sums_usages_and_names_what_ids_point_at() {
        let view = ApiView::of(&data());
        let child = &view.providers[&Uuid::from_u128(2)];
        assert_eq!(child.parent, Some(Uuid::from_u128(1)));
        assert_eq!(child.root, Some(Uuid::from_u128(1)));
        assert_eq!(child.usages["CUSTOM_X"], 4);
        assert_eq!(child.inventories["CUSTOM_X"].allocation_ratio, 1.5);
        assert!(view.resource_classes.contains("VCPU"));
        assert_eq!(
            view.consumers[&Uuid::from_u128(9)].allocations[&Uuid::from_u128(2)]["CUSTOM_X"],
            4
        );
    }

    #[test]
    fn equal_databases_have_no_differences_and_each_change_is_named() {
        assert!(differences(&ApiView::of(&data()), &ApiView::of(&data())).is_empty());
        let mut changed = data();
        changed.inventories[0].total = 9;
        changed.providers[0].generation = 2;
        changed.allocations.pop();
        let found = differences(&ApiView::of(&data()), &ApiView::of(&changed));
        let expected = [
            "resource provider 00000000-0000-0000-0000-000000000001 generation: source 1, target 2",
            "total: 8",
            "usage CUSTOM_X: source 4, target 2",
            "consumer 00000000-0000-0000-0000-000000000009 allocations",
        ];
        assert_eq!(found.len(), 4, "{found:#?}");
        for (line, fragment) in found.iter().zip(expected) {
            assert!(line.contains(fragment), "{line} lacks {fragment}");
        }
    }
}
