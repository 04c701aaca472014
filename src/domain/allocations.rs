//! Allocation writes and reads. A write replaces the allocations of one or
//! more consumers atomically: each attempt is one fresh READ COMMITTED
//! transaction that locks the providers' rows (those named and those the
//! consumers have allocations against), reads the named ones'
//! generations, inventories and usage, checks capacity, rewrites the rows
//! and moves every involved provider one generation on by compare-and-swap.
//! The locks make concurrent claims on one provider queue rather than
//! collide; the compare-and-swap still guards every write. A lost race
//! rolls the attempt back and the write is redone in a new transaction
//! (never inside the same one, whose reads would be stale). A claim that
//! creates one consumer is first checked against the in-memory view and
//! written by one statement on the condition that the check still holds
//! in the database (`claim_from_view`); when it does not, the full path
//! runs.
//! Answers to upstream's `objects/allocation.py` (`replace_all`,
//! `_set_allocations`, `_check_capacity_exceeded`) and
//! `handlers/allocation.py`.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use crate::domain::capacity::{self, Limits, Refusal};
use crate::domain::consumers::{self, ConsumerIdentity, ExpectedGeneration, Recorded};
use crate::domain::inventories::{limits_of_values, values_of};
use crate::domain::resource_providers as providers;
use crate::errors::{DomainError, ErrorCode};
use crate::storage::allocations::{
    self as store, AllocationRow, ClaimWithinView, ConsumerAllocationRow, Identities, Inserted,
    NewAllocation, NewConsumer, ProviderAllocationRow, UsageCeiling, WriteStateRow, state_kind,
};
use crate::storage::consumers::{self as consumer_store, ConsumerFields, ConsumerRow};
use crate::storage::inventories as inventory_store;
use crate::storage::resource_providers::{self as provider_store, ProviderRow};
use crate::storage::{self, Connection, StorageError};
use crate::view::cache::WorldCache;
use crate::view::world::World;

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
        // A concurrent writer (a deadlock broken, a class or provider
        // deleted under the write): the next attempt reads afresh.
        if storage::is_contention(&error) {
            AttemptError::Retry
        } else {
            AttemptError::Failed(error.into())
        }
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
/// generation conflicts up to `attempts` transactions in all. A claim
/// that creates one consumer is first checked against `view` and written
/// in one round trip if the check still holds in the database (see
/// `claim_from_view`). `on_retry` is told of each attempt redone.
pub fn replace_all(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    origin: Origin,
    attempts: u32,
    view: &WorldCache,
    on_retry: &dyn Fn(),
) -> Result<(), DomainError> {
    if claim_from_view(connection, writes, view)? {
        return Ok(());
    }
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        let outcome = storage::write_transaction(connection, |transaction| {
            write_attempt(transaction, writes, origin)
        });
        match outcome {
            Ok(()) => return Ok(()),
            Err(AttemptError::Failed(error)) => return Err(error),
            Err(AttemptError::Retry) => {
                on_retry();
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

/// A claim settled against the in-memory view: the providers to lock,
/// what each checked inventory must still be, and the rows to insert.
pub(crate) struct SettledClaim {
    provider_ids: Vec<i32>,
    ceilings: Vec<UsageCeiling>,
    rows: Vec<NewAllocation>,
}

impl SettledClaim {
    /// The conditional write of `write` (the one write it was settled
    /// from).
    pub(crate) fn as_claim<'a>(&'a self, write: &'a ConsumerAllocations) -> ClaimWithinView<'a> {
        ClaimWithinView {
            consumer_uuid: write.consumer_uuid,
            project_external_id: &write.identity.project_id,
            user_external_id: &write.identity.user_id,
            consumer_type: write.identity.consumer_type.as_deref(),
            provider_ids: &self.provider_ids,
            ceilings: &self.ceilings,
            rows: &self.rows,
        }
    }
}

/// Settles `writes` against the view when they create one consumer (no
/// generation of it expected) whose every provider, class and inventory
/// the view knows, and whose amounts pass the capacity check at the
/// view's usage. `None` leaves the write, and any error it deserves, to
/// the full path.
pub(crate) fn settle_against_view(
    world: &World,
    writes: &[ConsumerAllocations],
) -> Option<SettledClaim> {
    let [write] = writes else {
        return None;
    };
    if write.allocations.is_empty()
        || matches!(write.expected_generation, ExpectedGeneration::Is(_))
    {
        return None;
    }
    let mut provider_ids: HashMap<&str, i32> = HashMap::new();
    let mut class_ids: HashMap<String, i32> = HashMap::new();
    for part in &write.allocations {
        let uuid = Uuid::parse_str(&part.provider_uuid).ok()?;
        provider_ids.insert(&part.provider_uuid, world.provider_by_uuid(&uuid)?.id);
        for (class, _) in &part.resources {
            class_ids.insert(class.clone(), world.class_id(class)?);
        }
    }
    let (demands, rows) = demands_and_rows(writes, |name| provider_ids[name], &class_ids);
    let mut ceilings = Vec::with_capacity(demands.len());
    for demand in &demands {
        let provider = world.provider(demand.provider_id)?;
        let limits = provider.limits(demand.class_id)?;
        let most_usage = capacity::most_usage_admitting(limits, &demand.amounts)?;
        if provider.used(demand.class_id) > most_usage {
            return None;
        }
        ceilings.push(UsageCeiling {
            provider_id: demand.provider_id,
            generation: provider.generation,
            class_id: demand.class_id,
            inventory: values_of(limits),
            most_usage,
        });
    }
    let mut provider_ids: Vec<i32> = provider_ids.into_values().collect();
    provider_ids.sort_unstable();
    provider_ids.dedup();
    Some(SettledClaim {
        provider_ids,
        ceilings,
        rows,
    })
}

/// The fast path of a claim: checked against the view, written by one
/// statement on the condition that the check still holds in the database
/// (`claim_within_view`: the same inventories, usage at most the highest
/// the check allows). True when it wrote; false when the view could not
/// settle the write or the condition failed, having written nothing.
fn claim_from_view(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    view: &WorldCache,
) -> Result<bool, DomainError> {
    let (Some(settled), [write]) = (settle_against_view(&view.read(), writes), writes) else {
        return Ok(false);
    };
    match store::claim_within_view(connection, &settled.as_claim(write)).map_err(StorageError::from)
    {
        Ok(claimed) => {
            if !claimed {
                tracing::debug!("the view's check no longer holds; full allocation write");
            }
            Ok(claimed)
        }
        // The connection is gone: the full write would fail on it too.
        Err(lost @ StorageError::Unavailable(_)) => Err(lost.into()),
        Err(error) => {
            tracing::warn!(%error, "claim against the view failed; full allocation write");
            Ok(false)
        }
    }
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

/// A provider a write changes, as read at the start of the attempt.
#[derive(Clone, Copy, Debug)]
struct Involved {
    uuid: Uuid,
    generation: i32,
}

/// What `store::write_state` answered, sorted out.
#[derive(Default)]
struct WriteState {
    consumers: HashMap<Uuid, ConsumerRow>,
    providers: HashMap<Uuid, (i32, Involved)>,
    inventories: HashMap<(i32, i32), Limits>,
    /// (used by the others, used by everyone) per (provider, class).
    usage: HashMap<(i32, i32), (i64, i64)>,
    projects: HashMap<String, i32>,
    users: HashMap<String, i32>,
    consumer_types: HashMap<String, i32>,
}

impl WriteState {
    fn from_rows(rows: Vec<WriteStateRow>) -> WriteState {
        let mut state = WriteState::default();
        for row in rows {
            let class = row.a.unwrap_or_default();
            match row.kind {
                state_kind::CONSUMER => {
                    let uuid = row.uuid.unwrap_or_default();
                    state.consumers.insert(
                        uuid,
                        ConsumerRow {
                            id: row.id,
                            uuid,
                            project_id: row.a.unwrap_or_default(),
                            user_id: row.b.unwrap_or_default(),
                            generation: row.generation.unwrap_or_default(),
                            consumer_type_id: row.c,
                        },
                    );
                }
                state_kind::PROVIDER => {
                    let uuid = row.uuid.unwrap_or_default();
                    let generation = row.generation.unwrap_or_default();
                    state
                        .providers
                        .insert(uuid, (row.id, Involved { uuid, generation }));
                }
                state_kind::INVENTORY => {
                    state.inventories.insert(
                        (row.id, class),
                        limits_of_values(&row.numbers.inventory_values()),
                    );
                }
                state_kind::USAGE => {
                    state.usage.insert(
                        (row.id, class),
                        (
                            row.numbers.n2.unwrap_or_default(),
                            row.numbers.n1.unwrap_or_default(),
                        ),
                    );
                }
                state_kind::PROJECT => {
                    state.projects.insert(row.name.unwrap_or_default(), row.id);
                }
                state_kind::USER => {
                    state.users.insert(row.name.unwrap_or_default(), row.id);
                }
                state_kind::CONSUMER_TYPE => {
                    state
                        .consumer_types
                        .insert(row.name.unwrap_or_default(), row.id);
                }
                _ => {}
            }
        }
        state
    }

    /// The identity's ids when every row exists already.
    fn known_fields(&self, identity: &ConsumerIdentity) -> Option<ConsumerFields> {
        let consumer_type_id = match &identity.consumer_type {
            Some(name) => Some(*self.consumer_types.get(name)?),
            None => None,
        };
        Some(ConsumerFields {
            project_id: *self.projects.get(&identity.project_id)?,
            user_id: *self.users.get(&identity.user_id)?,
            consumer_type_id,
        })
    }
}

/// Distinct values, first occurrence first.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|value| seen.insert(*value)).collect()
}

/// One attempt of a write, inside the caller's transaction: every provider
/// it may bump is locked, one statement reads everything checked
/// (consumers, providers with their generations, inventories, usage,
/// identities), then the consumer rows are written,
/// the old allocations deleted (when a consumer existed), the new ones
/// inserted together with the first provider's generation bump, and any
/// further providers bumped in id order.
fn write_attempt(
    connection: &mut Connection,
    writes: &[ConsumerAllocations],
    origin: Origin,
) -> Result<(), AttemptError> {
    let consumer_uuids: Vec<Uuid> = writes.iter().map(|write| write.consumer_uuid).collect();
    let named = named_providers(writes);
    let parsed: Vec<Uuid> = named
        .iter()
        .filter_map(|name| Uuid::parse_str(name).ok())
        .collect();
    let class_names: Vec<&str> = distinct(
        writes
            .iter()
            .flat_map(|write| &write.allocations)
            .flat_map(|part| &part.resources)
            .map(|(name, _)| name.as_str()),
    );
    let class_ids = inventory_store::class_ids_by_name(connection, &class_names)?;
    let class_list: Vec<i32> = class_ids
        .values()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    store::lock_providers(connection, &parsed, &consumer_uuids)?;
    let projects = distinct(writes.iter().map(|w| w.identity.project_id.as_str()));
    let users = distinct(writes.iter().map(|w| w.identity.user_id.as_str()));
    let consumer_types = distinct(
        writes
            .iter()
            .filter_map(|w| w.identity.consumer_type.as_deref()),
    );
    let state = WriteState::from_rows(store::write_state(
        connection,
        &consumer_uuids,
        &parsed,
        &class_list,
        &Identities {
            projects: &projects,
            users: &users,
            consumer_types: &consumer_types,
        },
    )?);

    // Consumers first, as upstream: identities, then the generation checks.
    let mut fields = Vec::with_capacity(writes.len());
    for write in writes {
        fields.push(match state.known_fields(&write.identity) {
            Some(known) => known,
            None => consumers::resolve_identity(connection, &write.identity)?,
        });
    }
    let existing = &state.consumers;
    for write in writes {
        consumers::check_generation(
            existing.get(&write.consumer_uuid),
            write.expected_generation,
        )?;
    }

    // The providers named, with the generations read in the same snapshot
    // as the usage checked below.
    let mut provider_of_name: HashMap<&str, (i32, Involved)> = HashMap::new();
    for name in &named {
        match Uuid::parse_str(name)
            .ok()
            .and_then(|uuid| state.providers.get(&uuid))
        {
            Some(found) => {
                provider_of_name.insert(name, *found);
            }
            None => {
                return Err(DomainError::bad_request(format!(
                    "Allocation for resource provider '{name}' that does not exist."
                ))
                .into());
            }
        }
    }

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
    let emptied: HashSet<Uuid> = writes
        .iter()
        .filter(|write| write.allocations.is_empty())
        .map(|write| write.consumer_uuid)
        .collect();
    let mut involved: HashMap<i32, Involved> = provider_of_name.values().copied().collect();
    if !emptied.is_empty() {
        let emptied_list: Vec<Uuid> = emptied.iter().copied().collect();
        let previous = store::list_for_consumers(connection, &emptied_list)?;
        let emptied_provider_ids: Vec<i32> = previous
            .iter()
            .map(|row| row.resource_provider_id)
            .filter(|id| !involved.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !emptied_provider_ids.is_empty() {
            for row in store::providers_by_ids(connection, &emptied_provider_ids)? {
                involved.insert(
                    row.id,
                    Involved {
                        uuid: row.uuid,
                        generation: row.generation,
                    },
                );
            }
        }
    }

    let (demands, new_rows) = demands_and_rows(writes, |name| provider_of_name[name].0, &class_ids);
    check_capacity(
        &state,
        &demands,
        &new_rows,
        &involved,
        &class_ids,
        &class_list,
    )?;

    // Every involved provider moves on, in id order, the first in the
    // statement inserting the new rows; a lost race means our reads are
    // stale.
    let mut provider_ids: Vec<i32> = involved.keys().copied().collect();
    provider_ids.sort_unstable();

    // Consumers, in uuid order so concurrent writers lock alike. A single
    // new consumer is created in the statement inserting its rows.
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_by_key(|index| writes[*index].consumer_uuid);
    let mut created_with_rows = None;
    for index in order {
        let write = &writes[index];
        let current = existing.get(&write.consumer_uuid);
        if current.is_none() && write.allocations.is_empty() {
            continue;
        }
        if current.is_none() && writes.len() == 1 && !provider_ids.is_empty() {
            created_with_rows = Some(NewConsumer {
                uuid: write.consumer_uuid,
                fields: &fields[index],
            });
            continue;
        }
        match consumers::record_write(connection, write.consumer_uuid, current, &fields[index])? {
            Recorded::Done => {}
            Recorded::LostCreationRace => return Err(AttemptError::Retry),
        }
    }

    // A consumer that did not exist has no allocations: allocations are
    // only written together with their consumer row, and a concurrent
    // creator of the same consumer makes our creation lose the race.
    if !existing.is_empty() {
        store::delete_for_consumers(connection, &consumer_uuids)?;
    }

    match provider_ids.split_first() {
        None => {
            store::insert_all(connection, &new_rows)?;
        }
        Some((first, rest)) => {
            let inserted = store::insert_and_bump(
                connection,
                created_with_rows,
                &new_rows,
                *first,
                involved[first].generation,
            )?;
            if inserted != Inserted::Done {
                return Err(AttemptError::Retry);
            }
            for id in rest {
                if provider_store::bump_generation(connection, *id, involved[id].generation)?
                    .is_none()
                {
                    return Err(AttemptError::Retry);
                }
            }
        }
    }

    let emptied_list: Vec<Uuid> = emptied.into_iter().collect();
    if !emptied_list.is_empty() {
        consumer_store::delete_by_uuids(connection, &emptied_list)?;
    }
    Ok(())
}

/// The requested amounts per (provider, class), in request order, and the
/// allocation rows to insert.
fn demands_and_rows(
    writes: &[ConsumerAllocations],
    provider_id_of: impl Fn(&str) -> i32,
    class_ids: &HashMap<String, i32>,
) -> (Vec<Demand>, Vec<NewAllocation>) {
    let mut demands: Vec<Demand> = Vec::new();
    let mut rows = Vec::new();
    for write in writes {
        for part in &write.allocations {
            let provider_id = provider_id_of(&part.provider_uuid);
            for (class, amount) in &part.resources {
                let class_id = class_ids[class.as_str()];
                match demands
                    .iter_mut()
                    .find(|d| d.provider_id == provider_id && d.class_id == class_id)
                {
                    Some(demand) => demand.amounts.push(*amount),
                    None => demands.push(Demand {
                        provider_id,
                        class_id,
                        amounts: vec![*amount],
                    }),
                }
                rows.push(NewAllocation {
                    resource_provider_id: provider_id,
                    consumer_id: write.consumer_uuid,
                    resource_class_id: class_id,
                    used: *amount,
                });
            }
        }
    }
    (demands, rows)
}

/// The provider uuids a write names, first mention first.
pub(crate) fn named_providers(writes: &[ConsumerAllocations]) -> Vec<&str> {
    distinct(
        writes
            .iter()
            .flat_map(|write| &write.allocations)
            .map(|part| part.provider_uuid.as_str()),
    )
}

/// Upstream's `_check_capacity_exceeded` over the state read: every
/// provider must have inventory of the requested classes, and each
/// allocation, in request order, must find its inventory and accept its
/// amount and the amounts of the same (provider, class) before it, given
/// the others' usage; the first that does not is the answer.
fn check_capacity(
    state: &WriteState,
    demands: &[Demand],
    rows: &[NewAllocation],
    providers_by_id: &HashMap<i32, Involved>,
    class_ids: &HashMap<String, i32>,
    class_list: &[i32],
) -> Result<(), AttemptError> {
    if demands.is_empty() {
        return Ok(());
    }
    let class_name: HashMap<i32, &str> = class_ids
        .iter()
        .map(|(name, id)| (*id, name.as_str()))
        .collect();
    let inventories = &state.inventories;

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

    let mut so_far: HashMap<(i32, i32), Vec<i64>> = HashMap::new();
    for row in rows {
        let key = (row.resource_provider_id, row.resource_class_id);
        let class = class_name
            .get(&row.resource_class_id)
            .copied()
            .unwrap_or("");
        let provider = uuid_of(row.resource_provider_id);
        let Some(limits) = inventories.get(&key) else {
            return Err(invalid_inventory(class, &provider.to_string()).into());
        };
        let amounts = so_far.entry(key).or_default();
        amounts.push(row.used);
        let (used_by_others, previous) = state.usage.get(&key).copied().unwrap_or((0, 0));
        if let Err(refusal) = capacity::check_write(limits, amounts, used_by_others, previous) {
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
    storage::write_transaction(connection, |transaction| {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::view::world::{Capacities, Provider};

    const VCPU: i32 = 0;
    const DISK_GB: i32 = 2;

    fn provider_uuid(id: i32) -> Uuid {
        Uuid::from_u128(id as u128)
    }

    /// One root provider with 8 VCPU (ratio 2.0, so 16) of which `used`
    /// is taken, and no disk.
    fn world_with_vcpu_used(used: i64) -> World {
        let mut world = World::new();
        world.set_class(VCPU, "VCPU");
        world.set_class(DISK_GB, "DISK_GB");
        world.upsert_provider(Provider {
            id: 7,
            uuid: provider_uuid(7),
            generation: 3,
            parent: None,
            root: 7,
            capacities: Capacities::new(
                [(
                    VCPU,
                    Limits {
                        total: 8,
                        reserved: 0,
                        min_unit: 1,
                        max_unit: 8,
                        step_size: 1,
                        allocation_ratio: 2.0,
                    },
                )],
                [(VCPU, used)],
            ),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::new(),
        });
        world
    }

    fn new_consumer_claim(provider: Uuid, class: &str, amount: i64) -> ConsumerAllocations {
        ConsumerAllocations {
            consumer_uuid: Uuid::from_u128(99),
            identity: ConsumerIdentity {
                project_id: "project".into(),
                user_id: "user".into(),
                consumer_type: None,
            },
            expected_generation: ExpectedGeneration::Absent,
            allocations: vec![ProviderResources {
                provider_uuid: provider.to_string(),
                resources: vec![(class.to_owned(), amount)],
            }],
        }
    }

    #[test]
    fn a_claim_that_fits_the_view_carries_the_inventory_and_its_usage_ceiling() {
        let world = world_with_vcpu_used(10);
        let settled =
            settle_against_view(&world, &[new_consumer_claim(provider_uuid(7), "VCPU", 4)])
                .expect("fits: 10 + 4 <= 16");
        assert_eq!(settled.provider_ids, vec![7]);
        let [ceiling] = settled.ceilings.as_slice() else {
            panic!("one inventory checked");
        };
        assert_eq!((ceiling.provider_id, ceiling.class_id), (7, VCPU));
        assert_eq!(ceiling.generation, 3, "the view's, for the batch to trust");
        assert_eq!(ceiling.most_usage, 12, "16 - 4");
        assert_eq!(ceiling.inventory.total, 8);
        assert_eq!(ceiling.inventory.allocation_ratio, 2.0);
        let [row] = settled.rows.as_slice() else {
            panic!("one row");
        };
        assert_eq!(
            (row.resource_provider_id, row.resource_class_id, row.used),
            (7, VCPU, 4)
        );
    }

    #[test]
    fn anything_the_view_cannot_settle_goes_to_the_full_path() {
        let world = world_with_vcpu_used(10);
        let fits = new_consumer_claim(provider_uuid(7), "VCPU", 4);
        let over_capacity = new_consumer_claim(provider_uuid(7), "VCPU", 7);
        let unit_too_big = new_consumer_claim(provider_uuid(7), "VCPU", 9);
        let unknown_provider = new_consumer_claim(provider_uuid(8), "VCPU", 1);
        let no_inventory = new_consumer_claim(provider_uuid(7), "DISK_GB", 1);
        let unknown_class = new_consumer_claim(provider_uuid(7), "CUSTOM_NOPE", 1);
        let existing_consumer = ConsumerAllocations {
            expected_generation: ExpectedGeneration::Is(1),
            ..fits.clone()
        };
        let removal = ConsumerAllocations {
            allocations: Vec::new(),
            ..fits.clone()
        };
        for (case, writes) in [
            ("over capacity", vec![over_capacity]),
            ("above max_unit", vec![unit_too_big]),
            ("unknown provider", vec![unknown_provider]),
            ("no inventory of the class", vec![no_inventory]),
            ("unknown class", vec![unknown_class]),
            ("consumer expected to exist", vec![existing_consumer]),
            ("removal", vec![removal]),
            ("two consumers", vec![fits.clone(), fits.clone()]),
        ] {
            assert!(settle_against_view(&world, &writes).is_none(), "{case}");
        }
        assert!(settle_against_view(&world, &[fits]).is_some());
    }
}
