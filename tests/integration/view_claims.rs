//! Claims checked against a process's in-memory view and written in one
//! statement on the condition that the check still holds in the database:
//! a view made stale by another writer must never let a claim through
//! that the database would refuse.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Uuid as SqlUuid};
use placement::domain::allocations::{self, ConsumerAllocations, Origin, ProviderResources};
use placement::domain::consumers::{ConsumerIdentity, ExpectedGeneration};
use placement::errors::DomainError;
use placement::storage::allocations::{
    BatchOutcome, ClaimWithinView, NewAllocation, UsageCeiling, claim_within_view,
    claims_within_view,
};
use placement::storage::inventories::InventoryValues;
use placement::view::cache::WorldCache;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::http::Client;
use crate::support::{Count, TestServer};

/// The standard class id of VCPU.
const VCPU: i32 = 0;

fn provider_with_vcpu(client: &Client, inventory: Value) -> String {
    let uuid = Uuid::new_v4().to_string();
    let created = client.post(
        "/resource_providers",
        &json!({"name": format!("compute-{uuid}"), "uuid": uuid}),
    );
    assert_eq!(created.status, 200, "{:?}", created.body);
    set_vcpu(client, &uuid, inventory);
    uuid
}

fn set_vcpu(client: &Client, provider: &str, inventory: Value) {
    let shown = client.get(&format!("/resource_providers/{provider}"));
    let reply = client.put(
        &format!("/resource_providers/{provider}/inventories"),
        &json!({
            "resource_provider_generation": shown.body["generation"],
            "inventories": {"VCPU": inventory},
        }),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn claim_over_http(client: &Client, provider: &str, vcpu: i64) {
    let reply = client.put(
        &format!("/allocations/{}", Uuid::new_v4()),
        &json!({
            "allocations": {provider: {"resources": {"VCPU": vcpu}}},
            "project_id": "project", "user_id": "user",
            "consumer_generation": null, "consumer_type": "INSTANCE"
        }),
    );
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

fn vcpu_used(client: &Client, provider: &str) -> i64 {
    let reply = client.get(&format!("/resource_providers/{provider}/usages"));
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["usages"]["VCPU"].as_i64().unwrap_or(0)
}

/// A claim of `vcpu` on `provider` for a new consumer, as the server
/// writes it, checked first against `view`.
fn claim_through(
    connection: &mut PgConnection,
    view: &WorldCache,
    provider: &str,
    vcpu: i64,
) -> Result<(), DomainError> {
    let consumer = Uuid::new_v4();
    let write = ConsumerAllocations {
        consumer_uuid: consumer,
        identity: ConsumerIdentity {
            project_id: "project".into(),
            user_id: "user".into(),
            consumer_type: Some("INSTANCE".into()),
        },
        expected_generation: ExpectedGeneration::Absent,
        allocations: vec![ProviderResources {
            provider_uuid: provider.to_owned(),
            resources: vec![("VCPU".into(), vcpu)],
        }],
    };
    allocations::replace_all(
        connection,
        &[write],
        Origin::Consumer(consumer),
        10,
        view,
        &|| {},
    )
}

fn assert_capacity_refusal(outcome: Result<(), DomainError>) {
    match outcome {
        Err(DomainError::Conflict { detail, .. }) => assert!(
            detail.contains("The requested amount would exceed the capacity."),
            "{detail}"
        ),
        other => panic!("expected a capacity conflict, got {other:?}"),
    }
}

#[test]
fn a_stale_view_never_lets_through_what_the_database_refuses() {
    let server = TestServer::start();
    let client = server.client();
    let mut connection = server.database.connection();
    let busy = provider_with_vcpu(&client, json!({"total": 4}));
    let shrunk = provider_with_vcpu(&client, json!({"total": 4}));
    let view = WorldCache::new();
    view.refresh(&mut connection).expect("load the view");

    // Another writer takes 3 of busy's 4 VCPU; the view still sees 0 used.
    claim_over_http(&client, &busy, 3);
    assert_capacity_refusal(claim_through(&mut connection, &view, &busy, 2));
    assert_eq!(vcpu_used(&client, &busy), 3);

    // What still fits goes through on the same stale view.
    claim_through(&mut connection, &view, &busy, 1).expect("1 more fits");
    assert_eq!(vcpu_used(&client, &busy), 4);

    // The inventory shrank since the view was read: 4 - 3 reserved.
    set_vcpu(&client, &shrunk, json!({"total": 4, "reserved": 3}));
    assert_capacity_refusal(claim_through(&mut connection, &view, &shrunk, 2));
    assert_eq!(vcpu_used(&client, &shrunk), 0);
}

#[derive(QueryableByName)]
struct ProviderState {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Integer)]
    generation: i32,
}

fn provider_state(connection: &mut PgConnection, provider: &str) -> ProviderState {
    diesel::sql_query("SELECT id, generation FROM resource_providers WHERE uuid = $1")
        .bind::<SqlUuid, _>(Uuid::parse_str(provider).expect("uuid"))
        .get_result(connection)
        .expect("provider row")
}

fn consumer_rows(connection: &mut PgConnection, consumer: Uuid) -> i64 {
    let row: Count = diesel::sql_query("SELECT count(*) AS count FROM consumers WHERE uuid = $1")
        .bind::<SqlUuid, _>(consumer)
        .get_result(connection)
        .expect("count");
    row.count
}

#[test]
fn claim_within_view_writes_only_while_the_check_holds() {
    let server = TestServer::start();
    let client = server.client();
    let mut connection = server.database.connection();
    let provider = provider_with_vcpu(&client, json!({"total": 8, "max_unit": 8}));
    // Creates the project and user rows too.
    claim_over_http(&client, &provider, 5);
    let before = provider_state(&mut connection, &provider);
    let inventory = InventoryValues {
        total: 8,
        reserved: 0,
        min_unit: 1,
        max_unit: 8,
        step_size: 1,
        allocation_ratio: 1.0,
    };
    let consumer = Uuid::new_v4();
    let rows = [NewAllocation {
        resource_provider_id: before.id,
        consumer_id: consumer,
        resource_class_id: VCPU,
        used: 3,
    }];
    let provider_ids = [before.id];
    let claim = |inventory: InventoryValues, most_usage: i64, project: &'static str| {
        let ceilings = vec![UsageCeiling {
            provider_id: before.id,
            generation: before.generation,
            class_id: VCPU,
            inventory,
            most_usage,
        }];
        (ceilings, project)
    };
    let attempt = |connection: &mut PgConnection,
                   (ceilings, project): (Vec<UsageCeiling>, &str)| {
        claim_within_view(
            connection,
            &ClaimWithinView {
                consumer_uuid: consumer,
                project_external_id: project,
                user_external_id: "user",
                consumer_type: Some("INSTANCE"),
                provider_ids: &provider_ids,
                ceilings: &ceilings,
                rows: &rows,
            },
        )
        .expect("statement runs")
    };

    let refused = [
        ("usage above the ceiling", claim(inventory, 4, "project")),
        (
            "inventory changed",
            claim(
                InventoryValues {
                    total: 9,
                    ..inventory
                },
                5,
                "project",
            ),
        ),
        ("unknown project", claim(inventory, 5, "no-such-project")),
    ];
    for (case, arguments) in refused {
        assert!(!attempt(&mut connection, arguments), "{case}");
        assert_eq!(consumer_rows(&mut connection, consumer), 0, "{case}");
        let now = provider_state(&mut connection, &provider);
        assert_eq!(now.generation, before.generation, "{case}");
        assert_eq!(vcpu_used(&client, &provider), 5, "{case}");
    }

    assert!(attempt(&mut connection, claim(inventory, 5, "project")));
    assert_eq!(consumer_rows(&mut connection, consumer), 1);
    assert_eq!(
        provider_state(&mut connection, &provider).generation,
        before.generation + 1
    );
    assert_eq!(vcpu_used(&client, &provider), 8);

    // The consumer exists now: a second claim for it is not this path's.
    assert!(!attempt(&mut connection, claim(inventory, 8, "project")));
    assert_eq!(vcpu_used(&client, &provider), 8);
}

/// A claim of 3 VCPU on `provider` for a new consumer, checked by a view
/// that held `generation` for the provider and saw usage of at most
/// `most_usage` before it.
fn batch_claim(
    connection: &mut PgConnection,
    provider: &ProviderState,
    generation: i32,
    most_usage: i64,
) -> placement::storage::allocations::BatchWritten {
    let consumer = Uuid::new_v4();
    let ceilings = [UsageCeiling {
        provider_id: provider.id,
        generation,
        class_id: VCPU,
        inventory: InventoryValues {
            total: 16,
            reserved: 0,
            min_unit: 1,
            max_unit: 16,
            step_size: 1,
            allocation_ratio: 1.0,
        },
        most_usage,
    }];
    let rows = [NewAllocation {
        resource_provider_id: provider.id,
        consumer_id: consumer,
        resource_class_id: VCPU,
        used: 3,
    }];
    claims_within_view(
        connection,
        &[ClaimWithinView {
            consumer_uuid: consumer,
            project_external_id: "project",
            user_external_id: "user",
            consumer_type: Some("INSTANCE"),
            provider_ids: &[provider.id],
            ceilings: &ceilings,
            rows: &rows,
        }],
    )
    .expect("statement runs")
}

#[test]
fn a_batch_sums_usage_only_where_the_generation_moved_and_logs_each_provider_once() {
    let server = TestServer::start();
    let client = server.client();
    let mut connection = server.database.connection();
    let provider = provider_with_vcpu(&client, json!({"total": 16, "max_unit": 16}));
    // Creates the project and user rows too.
    claim_over_http(&client, &provider, 3);
    let at = provider_state(&mut connection, &provider);

    // A view one generation behind is checked against the database: the
    // 3 VCPU used there leave no room under a ceiling of 2.
    let behind = batch_claim(&mut connection, &at, at.generation - 1, 2);
    assert_eq!(behind.outcomes, [BatchOutcome::Stale]);
    assert_eq!(vcpu_used(&client, &provider), 3);

    // Under a ceiling of 5 it fits; the view, behind, is not handed the
    // generation it would hold without the usage it has not seen.
    let behind = batch_claim(&mut connection, &at, at.generation - 1, 5);
    assert_eq!(behind.outcomes, [BatchOutcome::Written]);
    assert!(behind.generations.is_empty(), "{:?}", behind.generations);
    assert_eq!(vcpu_used(&client, &provider), 6);

    // A view at the provider's generation has seen every write that could
    // raise its usage: its check stands, and it learns the next generation.
    let at = provider_state(&mut connection, &provider);
    let current = batch_claim(&mut connection, &at, at.generation, 13);
    assert_eq!(current.outcomes, [BatchOutcome::Written]);
    assert_eq!(current.generations, [(at.id, at.generation + 1)]);
    assert_eq!(vcpu_used(&client, &provider), 9);
    // One change row for the provider, not one per table the claim wrote.
    assert_eq!(current.change_seqs.len(), 1, "{:?}", current.change_seqs);
}
