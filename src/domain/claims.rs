//! `POST /claims`: select and claim in one request. The consumers are
//! placed against the in-memory view (`view::placement`) and written with
//! the allocation write of `PUT /allocations` (`domain::allocations`), so
//! a claim never over-allocates, across processes. A write refused by the
//! database (the view was behind: another claim took the room) refreshes
//! the view and places again, up to the configured retries.
//!
//! Affinity rules are kept at claim time: a claim naming consumers (its
//! own, `different_host`, `same_host`, group members) first takes one
//! advisory lock per named consumer in its transaction, then reads where
//! they are from the database, places, and writes before the locks go
//! at commit. Two claims naming each other's consumers therefore run one
//! after the other, the second seeing the first's allocations.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use crate::domain::allocations::{self, ConsumerAllocations, Origin, ProviderResources};
use crate::domain::consumers::{ConsumerIdentity, ExpectedGeneration};
use crate::errors::{DomainError, ErrorCode};
use crate::storage::changes as store;
use crate::storage::consumers as consumer_store;
use crate::storage::{self, Connection};
use crate::view::affinity::{Constraints, Rules};
use crate::view::cache::WorldCache;
use crate::view::placement::{self, Placement, PlacementAsk, Shortfall};
use crate::view::request::{CandidateRequest, EngineOptions};
use crate::view::rng::Rng;
use crate::view::world::World;

/// One consumer to create with the claim.
#[derive(Clone, Debug)]
pub struct NewConsumer {
    pub uuid: Uuid,
    pub identity: ConsumerIdentity,
}

/// Everything a claim needs, names resolved against the view.
pub struct Claim<'a> {
    pub consumers: &'a [NewConsumer],
    pub request: &'a CandidateRequest,
    pub options: &'a EngineOptions,
    pub ask: PlacementAsk<'a>,
    pub rules: &'a Rules,
    /// Placements tried in all before giving up on contention.
    pub attempts: u32,
}

/// A claim written: each consumer's placement, as of the successful
/// attempt (provider ids of the view).
pub struct Claimed {
    pub placements: Vec<Placement>,
}

pub fn no_candidates() -> DomainError {
    DomainError::conflict(
        ErrorCode::ClaimNoCandidates,
        "No allocation candidate fits the request.",
    )
}

fn affinity_unmet() -> DomainError {
    DomainError::conflict(
        ErrorCode::ClaimAffinity,
        "Allocation candidates fit, but none meets the request's affinity rules \
         (different_host, same_host or server_group).",
    )
}

fn consumer_exists(uuid: Uuid) -> DomainError {
    DomainError::conflict(
        ErrorCode::ClaimConsumerExists,
        format!("Consumer {uuid} already exists."),
    )
}

pub(crate) fn contention(attempts: u32) -> DomainError {
    DomainError::conflict(
        ErrorCode::ClaimContention,
        format!(
            "The claim lost a race to concurrent writers {attempts} times in a row. \
             Please retry the request."
        ),
    )
}

fn shortfall(shortfall: Shortfall) -> DomainError {
    match shortfall {
        Shortfall::NothingFits(_) => no_candidates(),
        Shortfall::Affinity(_) => affinity_unmet(),
    }
}

/// `claim`'s consumers placed on `world` under `constraints`, with the
/// write that claims them.
pub(crate) fn place_with_writes(
    world: &World,
    claim: &Claim<'_>,
    constraints: &Constraints,
    rng: &mut Rng,
) -> Result<(Vec<Placement>, Vec<ConsumerAllocations>), DomainError> {
    let placements = placement::place(
        world,
        claim.request,
        claim.options,
        &claim.ask,
        constraints,
        claim.consumers.len(),
        rng,
    )
    .map_err(shortfall)?;
    let writes = writes_of(world, claim.consumers, &placements);
    Ok((placements, writes))
}

/// The write of `placements` for `consumers`: new consumers
/// (`consumer_generation: null`).
fn writes_of(
    world: &World,
    consumers: &[NewConsumer],
    placements: &[Placement],
) -> Vec<ConsumerAllocations> {
    consumers
        .iter()
        .zip(placements)
        .map(|(consumer, placement)| {
            let mut parts: Vec<ProviderResources> = Vec::new();
            for (provider, class, amount) in placement.claimed() {
                let uuid = world
                    .provider(*provider)
                    .map(|p| p.uuid.to_string())
                    .unwrap_or_default();
                let class = world.class_name(*class).unwrap_or_default().to_owned();
                match parts.last_mut() {
                    Some(last) if last.provider_uuid == uuid => {
                        last.resources.push((class, *amount))
                    }
                    _ => parts.push(ProviderResources {
                        provider_uuid: uuid,
                        resources: vec![(class, *amount)],
                    }),
                }
            }
            ConsumerAllocations {
                consumer_uuid: consumer.uuid,
                identity: consumer.identity.clone(),
                expected_generation: ExpectedGeneration::Absent,
                allocations: parts,
            }
        })
        .collect()
}

/// How one attempt ended.
enum Attempt {
    Written(Claimed),
    /// The database refused what the view allowed: refresh and retry.
    Stale,
}

/// Why an attempt under locks rolled back.
enum Rollback {
    Stale,
    Failed(DomainError),
}

impl From<diesel::result::Error> for Rollback {
    fn from(error: diesel::result::Error) -> Self {
        if storage::is_contention(&error) {
            Rollback::Stale
        } else {
            Rollback::Failed(error.into())
        }
    }
}

impl From<DomainError> for Rollback {
    fn from(error: DomainError) -> Self {
        Rollback::Failed(error)
    }
}

/// Places and writes `claim`; the view is refreshed before each retry.
pub fn claim(
    connection: &mut Connection,
    view: &WorldCache,
    claim: &Claim<'_>,
    on_retry: &dyn Fn(),
) -> Result<Claimed, DomainError> {
    let mut rng = Rng::seeded();
    let attempts = claim.attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            on_retry();
            view.refresh(connection)?;
        }
        let outcome = if claim.rules.is_empty() {
            attempt_unlocked(connection, view, claim, &mut rng)?
        } else {
            match storage::write_transaction(connection, |transaction| {
                attempt_under_locks(transaction, view, claim, &mut rng)
            }) {
                Ok(claimed) => Attempt::Written(claimed),
                Err(Rollback::Stale) => Attempt::Stale,
                Err(Rollback::Failed(error)) => return Err(error),
            }
        };
        match outcome {
            Attempt::Written(claimed) => return Ok(claimed),
            Attempt::Stale => {
                tracing::debug!(attempt, "claim refused by the database; placing again");
            }
        }
    }
    Err(contention(attempts))
}

/// Without affinity rules: place on the view, then the allocation write
/// with its one-statement path and its own retries.
fn attempt_unlocked(
    connection: &mut Connection,
    view: &WorldCache,
    claim: &Claim<'_>,
    rng: &mut Rng,
) -> Result<Attempt, DomainError> {
    let (placements, writes) =
        place_with_writes(&view.read(), claim, &Constraints::default(), rng)?;
    let written = allocations::replace_all(connection, &writes, Origin::Batch, 1, view, &|| {});
    Ok(match settle(connection, claim, written)? {
        Settled::Written => Attempt::Written(Claimed { placements }),
        Settled::Stale => Attempt::Stale,
    })
}

/// With affinity rules, inside the caller's transaction: lock the named
/// consumers, read their hosts, place and write.
fn attempt_under_locks(
    transaction: &mut Connection,
    view: &WorldCache,
    claim: &Claim<'_>,
    rng: &mut Rng,
) -> Result<Claimed, Rollback> {
    let mut named = claim.rules.named_consumers();
    named.extend(claim.consumers.iter().map(|consumer| consumer.uuid));
    let mut keys: Vec<i32> = named.iter().map(lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    store::lock_keys(transaction, &keys)?;
    let named: Vec<Uuid> = named.into_iter().collect();
    let hosts_of = hosts_of(transaction, &named)?;
    if let Some(existing) = claim
        .consumers
        .iter()
        .find(|consumer| hosts_of.contains_key(&consumer.uuid))
    {
        return Err(consumer_exists(existing.uuid).into());
    }
    let constraints = Constraints::new(claim.rules, &hosts_of);
    let (placements, writes) = place_with_writes(&view.read(), claim, &constraints, rng)?;
    let written = allocations::replace_in_transaction(transaction, &writes, Origin::Batch);
    match settle(transaction, claim, written)? {
        Settled::Written => Ok(Claimed { placements }),
        Settled::Stale => Err(Rollback::Stale),
    }
}

enum Settled {
    Written,
    Stale,
}

/// What a write's result means for the claim.
fn settle(
    connection: &mut Connection,
    claim: &Claim<'_>,
    written: Result<(), DomainError>,
) -> Result<Settled, DomainError> {
    match written {
        Ok(()) => Ok(Settled::Written),
        Err(DomainError::Conflict { detail, .. })
            if detail.starts_with("consumer generation conflict") =>
        {
            let uuids: Vec<Uuid> = claim.consumers.iter().map(|c| c.uuid).collect();
            let existing = consumer_store::list_by_uuids(connection, &uuids)
                .ok()
                .and_then(|rows| rows.first().map(|row| row.uuid))
                .or_else(|| uuids.first().copied())
                .unwrap_or_default();
            Err(consumer_exists(existing))
        }
        // Capacity taken, a provider or inventory changed or gone since
        // the view was read, generation races past the retries.
        Err(DomainError::Conflict { .. } | DomainError::BadRequest { .. }) => Ok(Settled::Stale),
        Err(other) => Err(other),
    }
}

/// The affinity rules applied to where the named consumers are now, read
/// without locks (a `dry_run` claims nothing).
pub fn constraints_now(
    connection: &mut Connection,
    rules: &Rules,
) -> Result<Constraints, DomainError> {
    if rules.is_empty() {
        return Ok(Constraints::default());
    }
    let named: Vec<Uuid> = rules.named_consumers().into_iter().collect();
    Ok(Constraints::new(rules, &hosts_of(connection, &named)?))
}

fn hosts_of(
    connection: &mut Connection,
    consumers: &[Uuid],
) -> Result<HashMap<Uuid, BTreeSet<i32>>, DomainError> {
    let mut hosts: HashMap<Uuid, BTreeSet<i32>> = HashMap::new();
    for row in store::hosts_of(connection, consumers)? {
        hosts
            .entry(row.consumer_uuid)
            .or_default()
            .insert(row.root_provider_id);
    }
    Ok(hosts)
}

/// The advisory lock key of a consumer: 32 bits of its uuid (a collision
/// only makes two unrelated claims queue).
fn lock_key(uuid: &Uuid) -> i32 {
    let (high, low) = uuid.as_u64_pair();
    let folded = high ^ low;
    (folded ^ (folded >> 32)) as u32 as i32
}
