//! Group commit for `POST /claims`. Claims of one new consumer without
//! affinity rules (the scheduler's common case) wait in this queue; the
//! first to find nobody writing leads: it takes every claim waiting,
//! places them one after another on the view (each seeing the usage of
//! those before it, so concurrent claims spread instead of colliding on
//! the best host) and writes them all in one statement and one commit
//! (`claims_within_view`), then the claims that arrived meanwhile, until
//! the queue is empty. One refresh, one round trip and one commit serve a
//! whole batch, and the guarantee is that of a single claim: each is
//! written only if the database still agrees with the view's check.
//!
//! A claim the database refused because the view was behind is placed
//! again in the next batch, after a refresh; one whose consumer could not
//! be created on the fast path (it exists, or its project, user or type
//! is new) goes through `claims::claim`, which decides with the full
//! write path.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::allocations::{SettledClaim, settle_against_view};
use super::claims::{self, Claim, Claimed, NewConsumer};
use crate::domain::allocations::ConsumerAllocations;
use crate::errors::DomainError;
use crate::storage::Connection;
use crate::storage::StorageError;
use crate::storage::allocations::{self as store, BatchOutcome};
use crate::view::affinity::{Constraints, Rules};
use crate::view::cache::WorldCache;
use crate::view::placement::{Placement, PlacementAsk};
use crate::view::rank::Weigher;
use crate::view::request::{CandidateRequest, EngineOptions};
use crate::view::rng::Rng;
use crate::view::world::{AggregateId, World};

/// Queued claims have no affinity rules.
static NO_RULES: Rules = Rules {
    different_host: Vec::new(),
    same_host: Vec::new(),
    group: None,
};

/// The most claims written by one statement.
const MOST_PER_BATCH: usize = 64;

/// A claim's query with its names resolved against a view.
pub struct Resolved {
    /// `None` when no provider can match (a name no provider has).
    pub request: Option<CandidateRequest>,
    pub options: EngineOptions,
    pub weighers: Vec<Weigher>,
    pub limit: Option<usize>,
    pub alternates: usize,
    pub alternates_within: Option<BTreeSet<AggregateId>>,
    pub shuffle_best: bool,
    pub host_subset_size: usize,
}

impl Resolved {
    pub fn ask(&self) -> PlacementAsk<'_> {
        PlacementAsk {
            weighers: &self.weighers,
            limit: self.limit,
            alternates: self.alternates,
            alternates_within: self.alternates_within.as_ref(),
            shuffle_best: self.shuffle_best,
            host_subset_size: self.host_subset_size,
        }
    }
}

/// Resolves a claim's names against the view its batch is placed on
/// (after the batch's refresh, so names created just before are known).
pub type Resolve<E> = Box<dyn Fn(&World) -> Result<Resolved, E> + Send>;

/// One queued claim.
pub struct Order<E> {
    pub consumer: NewConsumer,
    pub resolve: Resolve<E>,
    /// Placements tried in all before giving up on contention.
    pub attempts: u32,
}

struct Waiting<E> {
    order: Order<E>,
    tried: u32,
    reply: oneshot::Sender<Result<Claimed, E>>,
}

struct Queue<E> {
    waiting: VecDeque<Waiting<E>>,
    /// Someone is writing batches.
    leading: bool,
}

pub struct ClaimQueue<E> {
    queue: Arc<Mutex<Queue<E>>>,
}

impl<E> Default for ClaimQueue<E> {
    fn default() -> Self {
        ClaimQueue {
            queue: Arc::new(Mutex::new(Queue {
                waiting: VecDeque::new(),
                leading: false,
            })),
        }
    }
}

/// The duty of writing batches until the queue is empty, given to one
/// caller at a time. Dropped without `lead` having emptied the queue (no
/// connection could be had, or a panic), it answers every waiting claim
/// with an error and frees the duty, so no claim waits for nobody.
pub struct Leadership<E> {
    queue: Arc<Mutex<Queue<E>>>,
    /// Set once `lead` has handed the duty back.
    finished: bool,
}

impl<E: From<DomainError>> ClaimQueue<E> {
    /// Queues `order`. Answers where its outcome will arrive and, when
    /// nobody is writing batches, the duty to (`Leadership::lead`).
    pub fn submit(
        &self,
        order: Order<E>,
    ) -> (oneshot::Receiver<Result<Claimed, E>>, Option<Leadership<E>>) {
        let (reply, outcome) = oneshot::channel();
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.waiting.push_back(Waiting {
            order,
            tried: 0,
            reply,
        });
        let lead = !queue.leading;
        queue.leading = true;
        drop(queue);
        let leadership = lead.then(|| Leadership {
            queue: Arc::clone(&self.queue),
            finished: false,
        });
        (outcome, leadership)
    }
}

impl<E> Leadership<E> {
    fn lock(&self) -> MutexGuard<'_, Queue<E>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<E: From<DomainError>> Leadership<E> {
    /// Writes batches on `connection` until no claim is waiting.
    pub fn lead(mut self, connection: &mut Connection, view: &WorldCache, on_retry: &dyn Fn()) {
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.leading = false;
                    drop(queue);
                    self.finished = true;
                    return;
                }
                take_batch(&mut queue.waiting)
            };
            let requeued = write_batch(connection, view, batch, on_retry);
            if !requeued.is_empty() {
                let mut queue = self.lock();
                for waiting in requeued.into_iter().rev() {
                    queue.waiting.push_front(waiting);
                }
            }
        }
    }
}

impl<E> Drop for Leadership<E> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut queue = self.lock();
        queue.leading = false;
        // Each receiver sees its sender dropped: the handler answers that
        // the claim could not be written.
        queue.waiting.clear();
    }
}

/// The next batch: claims in arrival order, each consumer once (a second
/// claim of the same consumer waits for the next batch, where it finds
/// the consumer existing).
fn take_batch<E>(waiting: &mut VecDeque<Waiting<E>>) -> Vec<Waiting<E>> {
    let mut batch = Vec::new();
    let mut consumers = BTreeSet::new();
    let mut kept = VecDeque::new();
    while let Some(next) = waiting.pop_front() {
        if batch.len() < MOST_PER_BATCH && consumers.insert(next.order.consumer.uuid) {
            batch.push(next);
        } else {
            kept.push_back(next);
        }
    }
    *waiting = kept;
    batch
}

/// A claim placed on the batch's view, ready to write.
struct Placed<E> {
    waiting: Waiting<E>,
    placements: Vec<Placement>,
    write: ConsumerAllocations,
    settled: SettledClaim,
}

fn answer<E>(waiting: Waiting<E>, outcome: Result<Claimed, E>) {
    // A handler that gave up waiting has nobody to tell.
    let _ = waiting.reply.send(outcome);
}

/// Places and writes one batch; answers every claim but those to place
/// again, which it returns, in order.
fn write_batch<E: From<DomainError>>(
    connection: &mut Connection,
    view: &WorldCache,
    batch: Vec<Waiting<E>>,
    on_retry: &dyn Fn(),
) -> Vec<Waiting<E>> {
    if let Err(error) = view.refresh(connection) {
        for waiting in batch {
            answer(waiting, Err(E::from(storage_error(&error))));
        }
        return Vec::new();
    }
    let mut placed: Vec<Placed<E>> = Vec::with_capacity(batch.len());
    let mut full_path: Vec<Waiting<E>> = Vec::new();
    {
        let mut scratch = view.scratch();
        for waiting in batch {
            let resolved = match (waiting.order.resolve)(scratch.world()) {
                Ok(resolved) => resolved,
                Err(error) => {
                    answer(waiting, Err(error));
                    continue;
                }
            };
            let Some(request) = &resolved.request else {
                answer(waiting, Err(E::from(claims::no_candidates())));
                continue;
            };
            let claim = claim_of(&waiting, &resolved, request);
            let placed_writes = claims::place_with_writes(
                scratch.world(),
                &claim,
                &Constraints::default(),
                &mut Rng::seeded(),
            );
            let (placements, mut writes) = match placed_writes {
                Ok(placed_writes) => placed_writes,
                Err(error) => {
                    answer(waiting, Err(E::from(error)));
                    continue;
                }
            };
            let Some(settled) = settle_against_view(scratch.world(), &writes) else {
                full_path.push(waiting);
                continue;
            };
            for (provider, class, amount) in placements.iter().flat_map(Placement::claimed) {
                scratch.add_usage(*provider, *class, *amount);
            }
            let write = writes.remove(0);
            placed.push(Placed {
                waiting,
                placements,
                write,
                settled,
            });
        }
    }

    let mut again = Vec::new();
    if !placed.is_empty() {
        let claims: Vec<_> = placed
            .iter()
            .map(|placed| placed.settled.as_claim(&placed.write))
            .collect();
        match store::claims_within_view(connection, &claims) {
            Ok(written) => {
                let mut outcomes = written.outcomes.iter().copied();
                let mut usage = Vec::new();
                let mut claimed = Vec::new();
                for placed in placed {
                    match outcomes.next().unwrap_or(BatchOutcome::Stale) {
                        BatchOutcome::Written => {
                            usage.extend(placed.placements.iter().flat_map(Placement::claimed));
                            claimed.push((placed.waiting, placed.placements));
                        }
                        BatchOutcome::ConsumerNotCreated => full_path.push(placed.waiting),
                        BatchOutcome::Stale => again.push(placed.waiting),
                    }
                }
                // In the view before anyone hears of it.
                view.apply_own_commit(&written.change_seqs, &usage, &written.generations);
                for (waiting, placements) in claimed {
                    answer(waiting, Ok(Claimed { placements }));
                }
            }
            Err(error) if crate::storage::is_contention(&error) => {
                again.extend(placed.into_iter().map(|placed| placed.waiting));
            }
            // Each claim on its own finds out what its part was.
            Err(error) => {
                tracing::warn!(%error, "batch of claims failed; writing them one by one");
                full_path.extend(placed.into_iter().map(|placed| placed.waiting));
            }
        }
    }

    for waiting in full_path {
        let outcome = claim_alone(connection, view, &waiting, on_retry);
        answer(waiting, outcome);
    }

    let mut requeued = Vec::new();
    for mut waiting in again {
        on_retry();
        waiting.tried += 1;
        if waiting.tried >= waiting.order.attempts.max(1) {
            let attempts = waiting.order.attempts.max(1);
            answer(waiting, Err(E::from(claims::contention(attempts))));
        } else {
            requeued.push(waiting);
        }
    }
    requeued
}

/// One claim through `claims::claim`, on the view as it is.
fn claim_alone<E: From<DomainError>>(
    connection: &mut Connection,
    view: &WorldCache,
    waiting: &Waiting<E>,
    on_retry: &dyn Fn(),
) -> Result<Claimed, E> {
    let resolved = (waiting.order.resolve)(&view.read())?;
    let Some(request) = &resolved.request else {
        return Err(E::from(claims::no_candidates()));
    };
    claims::claim(
        connection,
        view,
        &claim_of(waiting, &resolved, request),
        on_retry,
    )
    .map_err(E::from)
}

/// The claim of a queued consumer, with the attempts it has left.
fn claim_of<'a, E>(
    waiting: &'a Waiting<E>,
    resolved: &'a Resolved,
    request: &'a CandidateRequest,
) -> Claim<'a> {
    Claim {
        consumers: std::slice::from_ref(&waiting.order.consumer),
        request,
        options: &resolved.options,
        ask: resolved.ask(),
        rules: &NO_RULES,
        attempts: waiting.order.attempts.saturating_sub(waiting.tried),
    }
}

/// A refresh's failure, for every claim of the batch.
fn storage_error(error: &DomainError) -> DomainError {
    let cause = match error {
        DomainError::Storage(StorageError::Unavailable(cause)) => cause.clone(),
        other => other.to_string(),
    };
    DomainError::Storage(StorageError::Unavailable(cause))
}
