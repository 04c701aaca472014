//! Allocation writes and reads. A write replaces the allocations of one or
//! more consumers atomically: each attempt is one fresh READ COMMITTED
//! transaction that reads the providers' generations first, then their
//! inventories and usage, checks capacity, rewrites the rows and moves
//! every involved provider one generation on by compare-and-swap. A lost
//! race rolls the attempt back and the write is redone in a new
//! transaction (never inside the same one, whose reads would be stale).
//! Answers to upstream's `objects/allocation.py` (`replace_all`,
//! `_set_allocations`, `_check_capacity_exceeded`) and
//! `handlers/allocation.py`.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use crate::domain::capacity::{self, Limits, Refusal};
use crate::domain::consumers::{self, ConsumerIdentity, ExpectedGeneration, Recorded};
use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage::Connection;
use crate::storage::allocations::{
    self as store, AllocationRow, ConsumerAllocationRow, NewAllocation, ProviderAllocationRow,
};
use crate::storage::consumers::{self as consumer_store, ConsumerRow};
use crate::storage::resource_classes;
use crate::storage::resource_providers::ProviderRow;

/// One provider's share of a consumer's new allocations.
#[derive(Clone, Debug)]
pub struct ProviderResources {
    /// As the client wrote it (errors quote it back).
    pub provider_uuid: String,
    /// (resource class name, amount), amounts ≥ 1.
    pub resources: Vec<(String, i64)>,
}

/// The new allocations of one consumer; empty removes them all.
#[derive(Clone, Debug)]
pub struct ConsumerAllocations {
    pub consumer_uuid: Uuid,
    pub identity: ConsumerIdentity,
    pub expected_generation: ExpectedGeneration,
    pub allocations: Vec<ProviderResources>,
}

/// Which request writes: upstream words some errors differently for
/// `PUT /allocations/{uuid}` and `POST /allocations`.
#[derive(Clone, Copy, Debug)]
pub enum Origin {
    Consumer(Uuid),
    Batch,
}

/// Why one attempt stopped.
enum AttemptError {
    /// Lost a race to a concurrent writer: redo in a new transaction.
    Retry,
    Failed(DomainError),
}

impl From<DomainError> for AttemptError {
    fn from(error: DomainError) -> Self {
        AttemptError::Failed(error)
    }
}

impl From<diesel::result::Error> for AttemptError {
    fn from(error: diesel::result::Error) -> Self {
        AttemptError::Failed(error.into())
    }
}

fn provider_conflict() -> DomainError {
    DomainError::conflict(
        ErrorCode::ConcurrentUpdate,
        "Inventory and/or allocations changed while attempting to allocate: Another thread \
         concurrently updated the resource provider data. Please retry your update",
    )
}

/// Replaces the allocations of `writes`' consumers, retrying on provider
/// generation conflicts up to `attempts` transactions in all.
pub fn replace_all(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    origin: Origin,
    attempts: u32,
) -> Result<(), DomainError> {
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        let outcome = connection
            .build_transaction()
            .read_committed()
            .run(|transaction| write_attempt(transaction, writes, origin));
        match outcome {
            Ok(()) => return Ok(()),
            Err(AttemptError::Failed(error)) => return Err(error),
            Err(AttemptError::Retry) => {
                tracing::debug!(
                    attempt,
                    "retrying allocations write on resource provider generation conflict"
                );
            }
        }
    }
    tracing::warn!(attempts, "exceeded retry limit on allocations write");
    Err(provider_conflict())
}

/// Replaces allocations inside a transaction the caller owns (the
/// reshaper): the same checks as `replace_all`, without retry; a lost race
/// is a `placement.concurrent_update` conflict and the caller's
/// transaction must roll back.
pub fn replace_in_transaction(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    origin: Origin,
) -> Result<(), DomainError> {
    write_attempt(connection, writes, origin).map_err(|error| match error {
        AttemptError::Retry => provider_conflict(),
        AttemptError::Failed(error) => error,
    })
}

fn invalid_inventory(resource_class: &str, provider: &str) -> DomainError {
    DomainError::conflict(
        ErrorCode::Undefined,
        format!(
            "Unable to allocate inventory: Inventory for '{resource_class}' on resource \
             provider '{provider}' invalid."
        ),
    )
}

fn refused(refusal: Refusal, resource_class: &str, provider: Uuid) -> DomainError {
    let reason = match refusal {
        Refusal::ConstraintsViolated => "would violate inventory constraints",
        Refusal::CapacityExceeded => "would exceed the capacity",
    };
    DomainError::conflict(
        ErrorCode::Undefined,
        format!(
            "Unable to allocate inventory: Unable to create allocation for '{resource_class}' \
             on resource provider '{provider}'. The requested amount {reason}."
        ),
    )
}

/// The requested amounts of one (provider, class), in request order.
struct Demand {
    provider_id: i32,
    class_id: i32,
    amounts: Vec<i64>,
}

/// One attempt of a write, inside the caller's transaction.
fn write_attempt(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    origin: Origin,
) -> Result<(), AttemptError> {
    let consumer_uuids: Vec<Uuid> = writes.iter().map(|write| write.consumer_uuid).collect();

    // Consumers first, as upstream: identities, then the generation checks.
    let mut fields = Vec::with_capacity(writes.len());
    for write in writes {
        fields.push(consumers::resolve_identity(connection, &write.identity)?);
    }
    let existing: HashMap<Uuid, ConsumerRow> =
        consumer_store::list_by_uuids(connection, &consumer_uuids)?
            .into_iter()
            .map(|row| (row.uuid, row))
            .collect();
    for write in writes {
        consumers::check_generation(
            existing.get(&write.consumer_uuid),
            write.expected_generation,
        )?;
    }

    // The providers named, read (with their generations) before anything
    // whose staleness the generation bump must catch.
    let named = named_providers(writes);
    let parsed: Vec<Uuid> = named
        .iter()
        .filter_map(|name| Uuid::parse_str(name).ok())
        .collect();
    let by_uuid: HashMap<Uuid, ProviderRow> = store::providers_by_uuids(connection, &parsed)?
        .into_iter()
        .map(|row| (row.uuid, row))
        .collect();
    let mut provider_of_name: HashMap<&str, ProviderRow> = HashMap::new();
    for name in &named {
        match Uuid::parse_str(name)
            .ok()
            .and_then(|uuid| by_uuid.get(&uuid))
        {
            Some(row) => {
                provider_of_name.insert(name, row.clone());
            }
            None => {
                return Err(DomainError::bad_request(format!(
                    "Allocation for resource provider '{name}' that does not exist."
                ))
                .into());
            }
        }
    }

    let class_names: Vec<&str> = {
        let mut seen = HashSet::new();
        writes
            .iter()
            .flat_map(|write| &write.allocations)
            .flat_map(|part| &part.resources)
            .map(|(name, _)| name.as_str())
            .filter(|name| seen.insert(*name))
            .collect()
    };
    let class_ids = resource_classes::ids_by_name(connection, &class_names)?;
    if let Some(missing) = class_names
        .iter()
        .find(|name| !class_ids.contains_key(**name))
    {
        let detail = match origin {
            Origin::Consumer(uuid) => format!(
                "Unable to allocate inventory for consumer {uuid}: No such resource class {missing}."
            ),
            Origin::Batch => {
                format!("Unable to allocate inventory No such resource class {missing}.")
            }
        };
        return Err(DomainError::bad_request(detail).into());
    }

    // Providers losing all of a consumer's allocations (an empty write)
    // change too, as upstream counts them.
    let previous = store::list_for_consumers(connection, &consumer_uuids)?;
    let emptied: HashSet<Uuid> = writes
        .iter()
        .filter(|write| write.allocations.is_empty())
        .map(|write| write.consumer_uuid)
        .collect();
    let mut involved: HashMap<i32, ProviderRow> = provider_of_name
        .values()
        .map(|row| (row.id, row.clone()))
        .collect();
    let emptied_provider_ids: Vec<i32> = previous
        .iter()
        .filter(|row| emptied.contains(&row.consumer_id))
        .map(|row| row.resource_provider_id)
        .filter(|id| !involved.contains_key(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !emptied_provider_ids.is_empty() {
        for row in store::providers_by_ids(connection, &emptied_provider_ids)? {
            involved.insert(row.id, row);
        }
    }

    // Demands per (provider, class), in request order.
    let mut demands: Vec<Demand> = Vec::new();
    let mut new_rows = Vec::new();
    for write in writes {
        for part in &write.allocations {
            let provider = &provider_of_name[part.provider_uuid.as_str()];
            for (class, amount) in &part.resources {
                let class_id = class_ids[class.as_str()];
                match demands
                    .iter_mut()
                    .find(|d| d.provider_id == provider.id && d.class_id == class_id)
                {
                    Some(demand) => demand.amounts.push(*amount),
                    None => demands.push(Demand {
                        provider_id: provider.id,
                        class_id,
                        amounts: vec![*amount],
                    }),
                }
                new_rows.push(NewAllocation {
                    resource_provider_id: provider.id,
                    consumer_id: write.consumer_uuid,
                    resource_class_id: class_id,
                    used: *amount,
                });
            }
        }
    }
    check_capacity(connection, &demands, &involved, &class_ids, &consumer_uuids)?;

    // Consumers, in uuid order so concurrent writers lock alike.
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_by_key(|index| writes[*index].consumer_uuid);
    for index in order {
        let write = &writes[index];
        let current = existing.get(&write.consumer_uuid);
        if current.is_none() && write.allocations.is_empty() {
            continue;
        }
        match consumers::record_write(connection, write.consumer_uuid, current, &fields[index])? {
            Recorded::Done => {}
            Recorded::LostCreationRace => return Err(AttemptError::Retry),
        }
    }

    store::delete_for_consumers(connection, &consumer_uuids)?;
    store::insert_all(connection, &new_rows)?;

    // Every involved provider moves on, in id order; a lost race means our
    // reads are stale.
    let mut provider_ids: Vec<i32> = involved.keys().copied().collect();
    provider_ids.sort_unstable();
    for id in provider_ids {
        match providers::bump_generation(connection, &involved[&id]) {
            Ok(_) => {}
            Err(DomainError::Conflict {
                code: ErrorCode::ConcurrentUpdate,
                ..
            }) => return Err(AttemptError::Retry),
            Err(other) => return Err(other.into()),
        }
    }

    let emptied_list: Vec<Uuid> = emptied.into_iter().collect();
    if !emptied_list.is_empty() {
        consumer_store::delete_by_uuids(connection, &emptied_list)?;
    }
    Ok(())
}

/// The provider uuids a write names, first mention first.
fn named_providers(writes: &[ConsumerAllocations]) -> Vec<&str> {
    let mut seen = HashSet::new();
    writes
        .iter()
        .flat_map(|write| &write.allocations)
        .map(|part| part.provider_uuid.as_str())
        .filter(|name| seen.insert(*name))
        .collect()
}

/// Upstream's `_check_capacity_exceeded` over batched reads: every
/// provider must have inventory of the requested classes, and each
/// (provider, class) must accept its amounts given the others' usage.
fn check_capacity(
    connection: &mut Connection,
    demands: &[Demand],
    providers_by_id: &HashMap<i32, ProviderRow>,
    class_ids: &HashMap<String, i32>,
    rewritten: &[Uuid],
) -> Result<(), AttemptError> {
    if demands.is_empty() {
        return Ok(());
    }
    let class_name: HashMap<i32, &str> = class_ids
        .iter()
        .map(|(name, id)| (*id, name.as_str()))
        .collect();
    let mut provider_ids: Vec<i32> = demands.iter().map(|d| d.provider_id).collect();
    provider_ids.dedup();
    let provider_ids: Vec<i32> = provider_ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let requested_classes: BTreeSet<i32> = demands.iter().map(|d| d.class_id).collect();
    let class_list: Vec<i32> = requested_classes.iter().copied().collect();

    let inventories: HashMap<(i32, i32), Limits> =
        store::inventories_of(connection, &provider_ids)?
            .into_iter()
            .filter(|row| requested_classes.contains(&row.resource_class_id))
            .map(|row| {
                (
                    (row.resource_provider_id, row.resource_class_id),
                    Limits {
                        total: row.total,
                        reserved: row.reserved,
                        min_unit: row.min_unit,
                        max_unit: row.max_unit,
                        step_size: row.step_size,
                        allocation_ratio: row.allocation_ratio,
                    },
                )
            })
            .collect();

    let uuid_of = |id: i32| {
        providers_by_id
            .get(&id)
            .map(|row| row.uuid)
            .unwrap_or_default()
    };
    let mut without_inventory: Vec<i32> = Vec::new();
    for demand in demands {
        let has_any = inventories
            .keys()
            .any(|(provider, _)| *provider == demand.provider_id);
        if !has_any && !without_inventory.contains(&demand.provider_id) {
            without_inventory.push(demand.provider_id);
        }
    }
    if !without_inventory.is_empty() {
        let classes = class_list
            .iter()
            .filter_map(|id| class_name.get(id).copied())
            .collect::<Vec<_>>()
            .join(", ");
        let providers = without_inventory
            .iter()
            .map(|id| uuid_of(*id).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid_inventory(&classes, &providers).into());
    }

    let usage: HashMap<(i32, i32), (i64, i64)> =
        store::usage_excluding(connection, &provider_ids, &class_list, rewritten)?
            .into_iter()
            .map(|row| {
                (
                    (row.resource_provider_id, row.resource_class_id),
                    (row.used_by_others, row.used_total),
                )
            })
            .collect();

    for demand in demands {
        let key = (demand.provider_id, demand.class_id);
        let class = class_name.get(&demand.class_id).copied().unwrap_or("");
        let provider = uuid_of(demand.provider_id);
        let Some(limits) = inventories.get(&key) else {
            return Err(invalid_inventory(class, &provider.to_string()).into());
        };
        let (used_by_others, previous) = usage.get(&key).copied().unwrap_or((0, 0));
        if let Err(refusal) =
            capacity::check_write(limits, &demand.amounts, used_by_others, previous)
        {
            tracing::warn!(
                resource_provider.uuid = %provider,
                resource_class = class,
                ?refusal,
                used = used_by_others,
                "allocation refused"
            );
            return Err(refused(refusal, class, provider).into());
        }
    }
    Ok(())
}

/// Removes every allocation of a consumer, and the consumer. 404 when it
/// has none. Like upstream, provider generations do not move.
pub fn delete_for_consumer(
    connection: &mut Connection,
    consumer_uuid: &str,
) -> Result<(), DomainError> {
    let not_found =
        || DomainError::not_found(format!("No allocations for consumer '{consumer_uuid}'"));
    let uuid = parse_consumer_uuid(consumer_uuid).ok_or_else(not_found)?;
    connection
        .build_transaction()
        .read_committed()
        .run(|transaction| {
            // The consumer row goes first: writers lock it before its
            // allocations, and so must we.
            consumer_store::delete_by_uuids(transaction, &[uuid])?;
            if store::delete_for_consumers(transaction, &[uuid])? == 0 {
                return Err(not_found());
            }
            Ok(())
        })
}

/// A consumer uuid as upstream matches it in reads: the hyphenated form.
fn parse_consumer_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::parse_str(text).ok()
}

/// The allocations of a consumer; none (not an error) for an unknown one.
pub fn list_for_consumer(
    connection: &mut Connection,
    consumer_uuid: &str,
) -> Result<Vec<ConsumerAllocationRow>, DomainError> {
    match parse_consumer_uuid(consumer_uuid) {
        Some(uuid) => Ok(store::list_for_consumer(connection, uuid)?),
        None => Ok(Vec::new()),
    }
}

/// A provider and the allocations against it; 404 for an unknown provider.
pub fn list_for_provider(
    connection: &mut Connection,
    provider_uuid: &str,
) -> Result<(ProviderRow, Vec<ProviderAllocationRow>), DomainError> {
    let provider = providers::find(connection, provider_uuid).map_err(|error| match error {
        DomainError::NotFound(detail) => DomainError::not_found(format!(
            "Resource provider '{provider_uuid}' not found: {detail}"
        )),
        other => other,
    })?;
    let rows = store::list_for_provider(connection, provider.id)?;
    Ok((provider, rows))
}

/// The current allocations of some consumers (for callers composing
/// writes, such as the reshaper).
pub fn current_for_consumers(
    connection: &mut Connection,
    consumer_uuids: &[Uuid],
) -> Result<Vec<AllocationRow>, DomainError> {
    Ok(store::list_for_consumers(connection, consumer_uuids)?)
}
