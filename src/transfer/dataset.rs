//! Every row of a Placement database, in upstream's shape: the form data
//! takes between reading one database and writing the other. Also the
//! checks an import makes of what it read (orphans, standard ids, consumer
//! rows), which are pure and need no database.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use uuid::Uuid;

use super::TransferError;
use crate::storage::standard_data;

/// A row's `created_at` / `updated_at`: naive UTC, as upstream stores them;
/// `None` where the column is NULL.
pub type Time = Option<NaiveDateTime>;

/// Upstream's first custom resource class id.
pub const MIN_CUSTOM_RESOURCE_CLASS_ID: i32 = 10000;

/// A row of `resource_classes`, `traits`, `consumer_types`, `projects` or
/// `users`: an id and a name (the external id for projects and users).
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub id: i32,
    pub name: String,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub id: i32,
    pub uuid: Uuid,
    pub name: String,
    pub generation: i32,
    pub root_provider_id: i32,
    pub parent_provider_id: Option<i32>,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub id: i32,
    pub resource_provider_id: i32,
    pub resource_class_id: i32,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub id: i32,
    pub uuid: Uuid,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A row of `resource_provider_traits` (`other_id` = `trait_id`) or
/// `resource_provider_aggregates` (`other_id` = `aggregate_id`).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub resource_provider_id: i32,
    pub other_id: i32,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    pub id: i32,
    pub uuid: Uuid,
    pub project_id: i32,
    pub user_id: i32,
    pub generation: i32,
    pub consumer_type_id: Option<i32>,
    pub created_at: Time,
    pub updated_at: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    pub id: i64,
    pub resource_provider_id: i32,
    pub consumer_id: Uuid,
    pub resource_class_id: i32,
    pub used: i64,
    pub created_at: Time,
    pub updated_at: Time,
}

/// The eleven tables of a Placement database (upstream's `alembic_version`
/// aside), each in id order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub resource_classes: Vec<Named>,
    pub traits: Vec<Named>,
    pub providers: Vec<Provider>,
    pub inventories: Vec<Inventory>,
    pub aggregates: Vec<Aggregate>,
    pub provider_traits: Vec<Link>,
    pub provider_aggregates: Vec<Link>,
    pub projects: Vec<Named>,
    pub users: Vec<Named>,
    pub consumer_types: Vec<Named>,
    pub consumers: Vec<Consumer>,
    pub allocations: Vec<Allocation>,
}

impl Dataset {
    pub fn row_count(&self) -> usize {
        self.counts().iter().map(|(_, count)| count).sum()
    }

    /// Rows per table, under the tables' names.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("resource_classes", self.resource_classes.len()),
            ("traits", self.traits.len()),
            ("resource_providers", self.providers.len()),
            ("inventories", self.inventories.len()),
            ("placement_aggregates", self.aggregates.len()),
            ("resource_provider_traits", self.provider_traits.len()),
            (
                "resource_provider_aggregates",
                self.provider_aggregates.len(),
            ),
            ("projects", self.projects.len()),
            ("users", self.users.len()),
            ("consumer_types", self.consumer_types.len()),
            ("consumers", self.consumers.len()),
            ("allocations", self.allocations.len()),
        ]
    }
}

/// How an import treats what it finds in the source.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Leave orphaned rows out (and report them) instead of refusing.
    pub skip_orphans: bool,
    /// The project and user external ids of the consumers made for
    /// allocations with no consumer row (`[placement]
    /// incomplete_consumer_project_id` and `_user_id`).
    pub incomplete_project: String,
    pub incomplete_user: String,
}

/// What `prepare` found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One line per orphaned row.
    pub orphans: Vec<String>,
    /// Rows left out: the orphans, and the allocations of orphaned consumers.
    pub skipped: usize,
    /// Consumers made for allocations that had no consumer row.
    pub incomplete_consumers: usize,
}

/// Checks a dataset read from an upstream database and completes it as
/// upstream itself would: refuses rows this server cannot hold (a provider
/// without a name, a standard resource class at another id than its
/// position, a parent or root that does not exist), reports orphans
/// (references to rows that do not exist; refused unless
/// `rules.skip_orphans`, which leaves them out), and makes the consumer
/// rows upstream's `create_incomplete_consumers` would make for
/// allocations that have none.
pub fn prepare(mut data: Dataset, rules: &Rules) -> Result<(Dataset, Report), TransferError> {
    check_standard_class_ids(&data)?;
    check_providers(&data)?;
    let mut report = Report::default();
    let rows_before = data.row_count();
    leave_out_orphans(&mut data, &mut report);
    report.skipped = rows_before - data.row_count();
    if !report.orphans.is_empty() && !rules.skip_orphans {
        let mut message = report.orphans.join("\n");
        message.push_str(&format!(
            "\nrefusing to import: {} orphaned rows (references to rows that do not exist); \
             --skip-orphans imports everything else and leaves them out",
            report.orphans.len()
        ));
        return Err(TransferError::Refused(message));
    }
    report.incomplete_consumers = complete_consumers(&mut data, rules);
    Ok((data, report))
}

fn check_standard_class_ids(data: &Dataset) -> Result<(), TransferError> {
    let standard: HashMap<&str, usize> = standard_data::standard_resource_classes()
        .into_iter()
        .enumerate()
        .map(|(index, name)| (name, index))
        .collect();
    let mut problems = Vec::new();
    for class in &data.resource_classes {
        let custom = class.name.starts_with("CUSTOM_");
        match standard.get(class.name.as_str()) {
            Some(&position) if usize::try_from(class.id).ok() != Some(position) => {
                problems.push(format!(
                    "resource class {} has id {}, but a standard class's id is its position in \
                     os-resource-classes ({position})",
                    class.name, class.id
                ));
            }
            _ if custom && class.id < MIN_CUSTOM_RESOURCE_CLASS_ID => problems.push(format!(
                "custom resource class {} has id {}, below {MIN_CUSTOM_RESOURCE_CLASS_ID}",
                class.name, class.id
            )),
            _ => {}
        }
    }
    refuse_if_any(problems)
}

fn check_providers(data: &Dataset) -> Result<(), TransferError> {
    let ids: HashSet<i32> = data.providers.iter().map(|p| p.id).collect();
    let mut problems = Vec::new();
    for provider in &data.providers {
        if !ids.contains(&provider.root_provider_id) {
            problems.push(format!(
                "resource provider {} (id {}) has root_provider_id {}, which does not exist",
                provider.uuid, provider.id, provider.root_provider_id
            ));
        }
        if let Some(parent) = provider.parent_provider_id
            && !ids.contains(&parent)
        {
            problems.push(format!(
                "resource provider {} (id {}) has parent_provider_id {parent}, which does not exist",
                provider.uuid, provider.id
            ));
        }
    }
    refuse_if_any(problems)
}

fn refuse_if_any(problems: Vec<String>) -> Result<(), TransferError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TransferError::Refused(problems.join("\n")))
    }
}

/// Takes the orphaned rows out of `data`, one report line each. A consumer
/// whose project, user or type does not exist goes with its allocations
/// (which would otherwise be given an incomplete consumer: another owner).
fn leave_out_orphans(data: &mut Dataset, report: &mut Report) {
    let providers: HashSet<i32> = data.providers.iter().map(|p| p.id).collect();
    let classes: HashSet<i32> = data.resource_classes.iter().map(|c| c.id).collect();
    let traits: HashSet<i32> = data.traits.iter().map(|t| t.id).collect();
    let aggregates: HashSet<i32> = data.aggregates.iter().map(|a| a.id).collect();
    let projects: HashSet<i32> = data.projects.iter().map(|p| p.id).collect();
    let users: HashSet<i32> = data.users.iter().map(|u| u.id).collect();
    let types: HashSet<i32> = data.consumer_types.iter().map(|t| t.id).collect();
    let orphans = &mut report.orphans;
    data.inventories.retain(|inventory| {
        resolves(
            orphans,
            "inventories",
            || format!("id {}", inventory.id),
            &[
                (
                    "resource_provider_id",
                    Some(inventory.resource_provider_id),
                    &providers,
                    "resource_providers",
                ),
                (
                    "resource_class_id",
                    Some(inventory.resource_class_id),
                    &classes,
                    "resource_classes",
                ),
            ],
        )
    });
    for (links, table, column, others, other_table) in [
        (
            &mut data.provider_traits,
            "resource_provider_traits",
            "trait_id",
            &traits,
            "traits",
        ),
        (
            &mut data.provider_aggregates,
            "resource_provider_aggregates",
            "aggregate_id",
            &aggregates,
            "placement_aggregates",
        ),
    ] {
        links.retain(|link| {
            resolves(
                orphans,
                table,
                || {
                    format!(
                        "(resource_provider_id {}, {column} {})",
                        link.resource_provider_id, link.other_id
                    )
                },
                &[
                    (
                        "resource_provider_id",
                        Some(link.resource_provider_id),
                        &providers,
                        "resource_providers",
                    ),
                    (column, Some(link.other_id), others, other_table),
                ],
            )
        });
    }
    let mut gone_consumers: HashSet<Uuid> = HashSet::new();
    data.consumers.retain(|consumer| {
        let keep = resolves(
            orphans,
            "consumers",
            || format!("id {} (uuid {})", consumer.id, consumer.uuid),
            &[
                (
                    "project_id",
                    Some(consumer.project_id),
                    &projects,
                    "projects",
                ),
                ("user_id", Some(consumer.user_id), &users, "users"),
                (
                    "consumer_type_id",
                    consumer.consumer_type_id,
                    &types,
                    "consumer_types",
                ),
            ],
        );
        if !keep {
            gone_consumers.insert(consumer.uuid);
        }
        keep
    });
    data.allocations.retain(|allocation| {
        let resolved = resolves(
            orphans,
            "allocations",
            || format!("id {} (consumer {})", allocation.id, allocation.consumer_id),
            &[
                (
                    "resource_provider_id",
                    Some(allocation.resource_provider_id),
                    &providers,
                    "resource_providers",
                ),
                (
                    "resource_class_id",
                    Some(allocation.resource_class_id),
                    &classes,
                    "resource_classes",
                ),
            ],
        );
        resolved && !gone_consumers.contains(&allocation.consumer_id)
    });
}

/// A reference a row makes: its column, the id it holds (`None`: a NULL,
/// which refers to nothing), the ids that exist, and their table.
type Reference<'a> = (&'static str, Option<i32>, &'a HashSet<i32>, &'static str);

/// Whether every reference of a row resolves; each one that does not is
/// an orphan line, naming the row as `row` describes it (made only then:
/// most rows of a large table resolve).
fn resolves(
    orphans: &mut Vec<String>,
    table: &str,
    row: impl Fn() -> String,
    references: &[Reference<'_>],
) -> bool {
    let mut resolved = true;
    for &(column, value, existing, other) in references {
        if let Some(value) = value
            && !existing.contains(&value)
        {
            orphans.push(format!(
                "orphan: {table} {}: {column} {value} has no row in {other}",
                row()
            ));
            resolved = false;
        }
    }
    resolved
}

/// Makes a consumer row for every consumer uuid of `allocations` that has
/// none, as upstream's `create_incomplete_consumers` does: the configured
/// incomplete project and user (their rows made when missing), generation
/// 0, no type. Returns how many it made.
fn complete_consumers(data: &mut Dataset, rules: &Rules) -> usize {
    let known: HashSet<Uuid> = data.consumers.iter().map(|c| c.uuid).collect();
    let mut missing: Vec<Uuid> = Vec::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    for allocation in &data.allocations {
        if !known.contains(&allocation.consumer_id) && seen.insert(allocation.consumer_id) {
            missing.push(allocation.consumer_id);
        }
    }
    if missing.is_empty() {
        return 0;
    }
    let project_id = find_or_add(&mut data.projects, &rules.incomplete_project);
    let user_id = find_or_add(&mut data.users, &rules.incomplete_user);
    let first_id = data.consumers.iter().map(|c| c.id).max().unwrap_or(0) + 1;
    for (id, uuid) in (first_id..).zip(&missing) {
        data.consumers.push(Consumer {
            id,
            uuid: *uuid,
            project_id,
            user_id,
            generation: 0,
            consumer_type_id: None,
            created_at: None,
            updated_at: None,
        });
    }
    missing.len()
}

/// The id of the row named `name`, added (at the next id) if missing.
fn find_or_add(rows: &mut Vec<Named>, name: &str) -> i32 {
    if let Some(row) = rows.iter().find(|row| row.name == name) {
        return row.id;
    }
    let id = rows.iter().map(|row| row.id).max().unwrap_or(0) + 1;
    rows.push(Named {
        id,
        name: name.to_owned(),
        created_at: None,
        updated_at: None,
    });
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn named(id: i32, name: &str) -> Named {
        Named {
            id,
            name: name.to_owned(),
            created_at: None,
            updated_at: None,
        }
    }

    fn provider(id: i32, root: i32, parent: Option<i32>) -> Provider {
        Provider {
            id,
            uuid: uuid(id as u128),
            name: format!("rp{id}"),
            generation: 3,
            root_provider_id: root,
            parent_provider_id: parent,
            created_at: None,
            updated_at: None,
        }
    }

    fn allocation(id: i64, provider: i32, consumer: u128, class: i32) -> Allocation {
        Allocation {
            id,
            resource_provider_id: provider,
            consumer_id: uuid(consumer),
            resource_class_id: class,
            used: 1,
            created_at: None,
            updated_at: None,
        }
    }

    fn rules(skip_orphans: bool) -> Rules {
        Rules {
            skip_orphans,
            incomplete_project: "00000000-0000-0000-0000-000000000000".to_owned(),
            incomplete_user: "00000000-0000-0000-0000-000000000000".to_owned(),
        }
    }

    /// Two providers (a root and its child), VCPU, a custom class, one
    /// project and user, one consumer with an allocation.
    fn world() -> Dataset {
        Dataset {
            resource_classes: vec![named(0, "VCPU"), named(10000, "CUSTOM_FPGA")],
            providers: vec![provider(1, 1, None), provider(2, 1, Some(1))],
            projects: vec![named(1, "p")],
            users: vec![named(1, "u")],
            consumers: vec![Consumer {
                id: 7,
                uuid: uuid(100),
                project_id: 1,
                user_id: 1,
                generation: 4,
                consumer_type_id: None,
                created_at: None,
                updated_at: None,
            }],
            allocations: vec![allocation(1, 2, 100, 10000)],
            ..Dataset::default()
        }
    }

    #[test]
    fn a_sound_dataset_passes_unchanged() {
        let (data, report) = prepare(world(), &rules(false)).expect("present");
        assert_eq!(data, world());
        assert_eq!(report, Report::default());
    }

    #[test]
    fn orphans_are_refused_one_line_each_or_left_out() {
        let mut data = world();
        data.allocations.push(allocation(2, 99, 100, 0));
        data.allocations.push(allocation(3, 1, 100, 55));
        data.provider_aggregates.push(Link {
            resource_provider_id: 1,
            other_id: 5,
            created_at: None,
            updated_at: None,
        });
        data.consumers.push(Consumer {
            project_id: 9,
            id: 8,
            uuid: uuid(101),
            ..data.consumers[0].clone()
        });
        data.allocations.push(allocation(4, 1, 101, 0));

        let TransferError::Refused(message) =
            prepare(data.clone(), &rules(false)).expect_err("a refusal")
        else {
            panic!("not a refusal");
        };
        let orphan_lines: Vec<&str> = message
            .lines()
            .filter(|line| line.starts_with("orphan: "))
            .collect();
        assert_eq!(orphan_lines.len(), 4, "{message}");
        assert!(message.contains("allocations id 2 (consumer "), "{message}");
        assert!(message.contains("resource_provider_id 99 has no row in resource_providers"));
        assert!(message.contains("resource_class_id 55 has no row in resource_classes"));
        assert!(message.contains("aggregate_id 5 has no row in placement_aggregates"));
        assert!(message.contains("project_id 9 has no row in projects"));
        assert!(message.contains("--skip-orphans"));

        let (kept, report) = prepare(data, &rules(true)).expect("present");
        assert_eq!(kept.allocations, world().allocations);
        assert!(kept.provider_aggregates.is_empty());
        assert_eq!(kept.consumers, world().consumers);
        // Three orphaned rows, the orphaned consumer and its allocation.
        assert_eq!(report.orphans.len(), 4);
        assert_eq!(report.skipped, 5);
    }

    #[test]
    fn allocations_without_a_consumer_row_get_an_incomplete_consumer() {
        let mut data = world();
        data.allocations.push(allocation(2, 1, 200, 0));
        data.allocations.push(allocation(3, 2, 200, 0));
        let (data, report) = prepare(data, &rules(false)).expect("present");
        assert_eq!(report.incomplete_consumers, 1);
        let made = data
            .consumers
            .iter()
            .find(|c| c.uuid == uuid(200))
            .expect("present");
        assert_eq!(
            (made.id, made.generation, made.consumer_type_id),
            (8, 0, None)
        );
        let project = data
            .projects
            .iter()
            .find(|p| p.id == made.project_id)
            .expect("present");
        assert_eq!(project.name, "00000000-0000-0000-0000-000000000000");
        assert_eq!(project.id, 2);
        assert_eq!(
            data.users
                .iter()
                .find(|u| u.id == made.user_id)
                .expect("present")
                .id,
            2
        );
    }

    #[test]
    fn standard_class_ids_and_provider_trees_must_hold() {
        let mut data = world();
        data.resource_classes[0].id = 3;
        let error = prepare(data, &rules(true))
            .expect_err("a refusal")
            .to_string();
        assert!(error.contains("resource class VCPU has id 3"), "{error}");

        let mut data = world();
        data.resource_classes.push(named(12, "CUSTOM_LOW"));
        let error = prepare(data, &rules(true))
            .expect_err("a refusal")
            .to_string();
        assert!(
            error.contains("CUSTOM_LOW has id 12, below 10000"),
            "{error}"
        );

        let mut data = world();
        data.providers.push(provider(3, 3, Some(42)));
        let error = prepare(data, &rules(true))
            .expect_err("a refusal")
            .to_string();
        assert!(
            error.contains("parent_provider_id 42, which does not exist"),
            "{error}"
        );
    }
}
