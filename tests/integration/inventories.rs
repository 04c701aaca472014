//! Inventory and usage rules against a real database, with providers,
//! consumers and allocations written directly (their endpoints live
//! elsewhere): whole-inventory replacement as the reshaper calls it,
//! refusal to remove allocated inventory, and usage grouping by consumer
//! type.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Uuid as SqlUuid};
use placement::domain::capacity::Limits;
use placement::domain::inventories::{self, Inventory, ReservedRule};
use placement::domain::usages::{self, TypeGrouping};
use placement::errors::{DomainError, ErrorCode};
use placement::storage::resource_classes;
use placement::storage::resource_providers::{self, ProviderRow};
use uuid::Uuid;

use crate::support::TestDatabase;

fn limits(total: i64) -> Limits {
    Limits {
        total,
        reserved: 0,
        min_unit: 1,
        max_unit: total,
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

fn provider(connection: &mut PgConnection, name: &str) -> ProviderRow {
    let uuid = Uuid::new_v4();
    diesel::sql_query(
        "INSERT INTO resource_providers (id, uuid, name, root_provider_id) \
         SELECT n, $1, $2, n FROM (SELECT nextval('resource_providers_id_seq')::int AS n) s",
    )
    .bind::<SqlUuid, _>(uuid)
    .bind::<diesel::sql_types::Varchar, _>(name)
    .execute(connection)
    .expect("insert provider");
    resource_providers::get_by_uuid(connection, uuid)
        .expect("read provider")
        .expect("provider exists")
}

fn class_id(connection: &mut PgConnection, name: &str) -> i32 {
    resource_classes::ids_by_name(connection, &[name]).expect("classes")[name]
}

/// A consumer of `project` (with an optional consumer type) allocating
/// `used` of `class` from `provider`.
fn allocate(
    connection: &mut PgConnection,
    provider: &ProviderRow,
    project: &str,
    consumer_type: Option<&str>,
    class: &str,
    used: i64,
) -> Uuid {
    let consumer = Uuid::new_v4();
    diesel::sql_query(
        "WITH p AS (INSERT INTO projects (external_id) VALUES ($1) \
                    ON CONFLICT (external_id) DO UPDATE SET external_id = excluded.external_id \
                    RETURNING id), \
              u AS (INSERT INTO users (external_id) VALUES ('user') \
                    ON CONFLICT (external_id) DO UPDATE SET external_id = excluded.external_id \
                    RETURNING id), \
              t AS (INSERT INTO consumer_types (name) SELECT $3 WHERE $3 IS NOT NULL \
                    ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id) \
         INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id) \
         SELECT $2, p.id, u.id, (SELECT id FROM t) FROM p, u",
    )
    .bind::<diesel::sql_types::Varchar, _>(project)
    .bind::<SqlUuid, _>(consumer)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Varchar>, _>(consumer_type)
    .execute(connection)
    .expect("insert consumer");
    let class = class_id(connection, class);
    diesel::sql_query(
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind::<Integer, _>(provider.id)
    .bind::<SqlUuid, _>(consumer)
    .bind::<Integer, _>(class)
    .bind::<diesel::sql_types::BigInt, _>(used)
    .execute(connection)
    .expect("insert allocation");
    consumer
}

fn inventory_classes(connection: &mut PgConnection, provider: &ProviderRow) -> Vec<String> {
    let (_, rows) =
        inventories::list(connection, &provider.uuid.to_string()).expect("list inventories");
    let mut classes: Vec<String> = rows.into_iter().map(|(_, class)| class).collect();
    classes.sort();
    classes
}

#[test]
fn replace_all_in_replaces_and_bumps_inside_the_callers_transaction() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let mut rp = provider(&mut connection, "cn1");
    let vcpu = class_id(&mut connection, "VCPU");
    let disk = class_id(&mut connection, "DISK_GB");
    let memory = class_id(&mut connection, "MEMORY_MB");

    let generation = connection
        .build_transaction()
        .run(|connection| {
            let first = inventories::replace_all_in(
                connection,
                &rp,
                &[(vcpu, limits(8)), (disk, limits(100))],
            )?;
            // A second replacement in the same transaction starts from the
            // generation the first one returned, as the reshaper does.
            let moved = ProviderRow {
                generation: first,
                ..rp.clone()
            };
            inventories::replace_all_in(
                connection,
                &moved,
                &[(disk, limits(50)), (memory, limits(1024))],
            )
        })
        .expect("replace twice");
    assert_eq!(generation, 2);
    assert_eq!(
        inventory_classes(&mut connection, &rp),
        ["DISK_GB", "MEMORY_MB"]
    );

    // A stale generation is a concurrent update.
    let error = inventories::replace_all_in(&mut connection, &rp, &[]).expect_err("stale");
    assert!(matches!(
        error,
        DomainError::Conflict {
            code: ErrorCode::ConcurrentUpdate,
            ..
        }
    ));
    rp.generation = generation;
    inventories::replace_all_in(&mut connection, &rp, &[]).expect("empty the inventory");
    assert!(inventory_classes(&mut connection, &rp).is_empty());
}

#[test]
fn allocated_inventory_cannot_be_removed_but_may_shrink() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let rp = provider(&mut connection, "cn1");
    let uuid = rp.uuid.to_string();
    let record = |class: &str, total: i64| Inventory {
        resource_class: class.to_owned(),
        limits: limits(total),
    };
    inventories::replace_all(
        &mut connection,
        &uuid,
        0,
        &[record("VCPU", 8), record("DISK_GB", 100)],
        ReservedRule::BelowTotal,
    )
    .expect("set inventory");
    allocate(&mut connection, &rp, "p1", None, "VCPU", 6);

    // Shrinking below usage is allowed (upstream only logs it).
    let generation = inventories::replace_all(
        &mut connection,
        &uuid,
        1,
        &[record("VCPU", 4), record("DISK_GB", 100)],
        ReservedRule::BelowTotal,
    )
    .expect("shrink below usage");
    assert_eq!(generation, 2);

    // Removing the allocated class is refused, whole or alone.
    let error = inventories::replace_all(
        &mut connection,
        &uuid,
        2,
        &[record("DISK_GB", 100)],
        ReservedRule::BelowTotal,
    )
    .expect_err("in use");
    match error {
        DomainError::Conflict { code, detail } => {
            assert_eq!(code, ErrorCode::InventoryInUse);
            assert_eq!(
                detail,
                format!(
                    "update conflict: Inventory for 'VCPU' on resource provider '{uuid}' in use."
                )
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        inventories::delete(&mut connection, &uuid, "VCPU"),
        Err(DomainError::Conflict { .. })
    ));
    assert!(matches!(
        inventories::delete_all(&mut connection, &uuid),
        Err(DomainError::Conflict {
            code: ErrorCode::InventoryInUse,
            ..
        })
    ));
    // The unallocated class goes.
    inventories::delete(&mut connection, &uuid, "DISK_GB").expect("delete unused");
    assert_eq!(inventory_classes(&mut connection, &rp), ["VCPU"]);

    let (_, usage) = usages::for_provider(&mut connection, &uuid).expect("usages");
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (usage[0].resource_class.as_str(), usage[0].used),
        ("VCPU", 6)
    );
}

#[test]
fn project_usages_group_by_consumer_type() {
    let database = TestDatabase::new();
    let mut connection = database.connection();
    let rp = provider(&mut connection, "cn1");
    let uuid = rp.uuid.to_string();
    inventories::replace_all(
        &mut connection,
        &uuid,
        0,
        &[
            Inventory {
                resource_class: "VCPU".to_owned(),
                limits: limits(100),
            },
            Inventory {
                resource_class: "DISK_GB".to_owned(),
                limits: limits(1000),
            },
        ],
        ReservedRule::BelowTotal,
    )
    .expect("set inventory");
    allocate(&mut connection, &rp, "p1", Some("INSTANCE"), "DISK_GB", 10);
    allocate(&mut connection, &rp, "p1", Some("PONY"), "DISK_GB", 10);
    allocate(&mut connection, &rp, "p1", None, "VCPU", 7);
    allocate(&mut connection, &rp, "p1", None, "DISK_GB", 20);
    allocate(&mut connection, &rp, "p2", None, "DISK_GB", 500);

    let mut usage = |grouping: TypeGrouping| {
        usages::for_project(&mut connection, "p1", None, &grouping).expect("usages")
    };
    let by_type = usage(TypeGrouping::ByType);
    let keys: Vec<Option<&str>> = by_type.keys().map(Option::as_deref).collect();
    assert_eq!(keys, [Some("INSTANCE"), Some("PONY"), Some("unknown")]);
    let unknown = &by_type[&Some("unknown".to_owned())];
    assert_eq!(unknown.consumer_count, 2);
    assert_eq!(unknown.resources["VCPU"], 7);
    assert_eq!(unknown.resources["DISK_GB"], 20);

    let all = usage(TypeGrouping::All);
    let all = &all[&Some("all".to_owned())];
    assert_eq!(all.consumer_count, 4);
    assert_eq!(all.resources["DISK_GB"], 40);

    let pony = usage(TypeGrouping::Named("PONY".to_owned()));
    assert_eq!(pony.len(), 1);
    assert_eq!(pony[&Some("PONY".to_owned())].consumer_count, 1);
    assert!(usage(TypeGrouping::Named("COW".to_owned())).is_empty());

    let plain = usage(TypeGrouping::None);
    assert_eq!(plain[&None].resources["DISK_GB"], 40);
    assert_eq!(plain[&None].resources["VCPU"], 7);
}

/// Upstream's `_send_inventories` takes `last-modified` from the
/// inventories it sends: with none there is no time and webob sends no
/// header (`cache-control` stays). (Found by tools/differential.)
#[test]
fn an_empty_inventory_answer_has_no_last_modified() {
    let server = crate::support::TestServer::start();
    let client = server.client();
    let uuid = Uuid::new_v4().to_string();
    let created = client.post(
        "/resource_providers",
        &serde_json::json!({"name": "bare", "uuid": uuid}),
    );
    assert_eq!(created.status, 200);
    let path = format!("/resource_providers/{uuid}/inventories");
    let empty = client.get(&path);
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("last-modified"), None);
    assert_eq!(empty.header("cache-control"), Some("no-cache"));
    let filled = client.put(
        &path,
        &serde_json::json!({"resource_provider_generation": 0,
                            "inventories": {"VCPU": {"total": 8}}}),
    );
    assert_eq!(filled.status, 200);
    assert!(filled.header("last-modified").is_some());
    assert!(client.get(&path).header("last-modified").is_some());
    let emptied = client.put(
        &path,
        &serde_json::json!({"resource_provider_generation": 1, "inventories": {}}),
    );
    assert_eq!(emptied.status, 200);
    assert_eq!(emptied.header("last-modified"), None);
    assert_eq!(emptied.header("cache-control"), Some("no-cache"));
}
