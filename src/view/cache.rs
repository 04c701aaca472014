//! The `World` shared by the requests of one process, brought up to date
//! before each candidates request from the provider change log, so that a
//! request sees every write committed before it arrived, whichever process
//! made it.
//!
//! How it stays in step: triggers log, in the writer's transaction, the id
//! of every provider a statement touched (`provider_changes`, ordered by
//! `seq`). A refresh reads the rows after the last seq applied (one
//! statement), then what the World holds of the providers they name (one
//! more, prepared with a plan that does not depend on the ids). Sequence
//! values are taken in one order and committed in another, so a seq below
//! the newest one seen may belong to a transaction still open: such gaps
//! are asked for again on every refresh until no transaction that could
//! hold them is left (the snapshot's xmin has passed a transaction id
//! taken after the gap was seen), then forgotten. That transaction id is
//! taken by the refresh statement itself, and only for gaps that survived
//! a refresh (most fill before the next one), so it costs neither a round
//! trip nor, usually, a transaction id. Old change rows are pruned; a
//! process that may have missed pruned rows reloads everything.
//!
//! A bare generation bump is not logged (see the
//! `quiet_generation_bumps` migration): a provider's `generation` here is
//! as of its last logged change. Candidates never show generations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::world::{Capacities, ClassId, Provider, ProviderId, World};
use crate::domain::inventories::limits_of_values;
use crate::errors::DomainError;
use crate::storage::Connection;
use crate::storage::world::{
    self as store, AggregateLinkRow, ChangeRow, InventoryRow, LogHeadRow, Names, ProviderData,
    ProviderRow, RefreshRow, Scope, TraitLinkRow, UsageRow, kind,
};

/// Change rows older than this are pruned.
const PRUNE_AGE: Duration = Duration::from_secs(10 * 60);
/// How often one process prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// A gap still open after this long is forgotten even though a
/// transaction that might fill it has not provably ended (the xmin can be
/// held back by an unrelated long transaction).
const GAP_GIVE_UP: Duration = Duration::from_secs(10 * 60);
/// How far below the newest seq a full load looks for seqs of
/// transactions still open.
const FULL_LOAD_GAP_WINDOW: i64 = 10_000;

pub struct WorldCache {
    world: RwLock<World>,
    sync: Mutex<SyncState>,
    last_prune: Mutex<Option<Instant>>,
}

/// Usage of one class on one provider.
type Usage = (ProviderId, ClassId, i64);

/// The view, locked for a batch's placements: usage added through it is
/// taken back when it is dropped, so the view never shows more than the
/// database committed.
pub struct Scratch<'a> {
    world: RwLockWriteGuard<'a, World>,
    added: Vec<Usage>,
}

impl Scratch<'_> {
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Counts `amount` of `class` as used on `provider` until the drop.
    pub fn add_usage(&mut self, provider: ProviderId, class: ClassId, amount: i64) {
        self.world.add_usage(provider, class, amount);
        self.added.push((provider, class, amount));
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        for (provider, class, amount) in self.added.drain(..) {
            self.world.add_usage(provider, class, -amount);
        }
    }
}

#[derive(Debug, Default)]
struct SyncState {
    cursor: Option<ChangeCursor>,
    /// When the last successful refresh started.
    completed_start: Option<Instant>,
}

impl Default for WorldCache {
    fn default() -> Self {
        WorldCache::new()
    }
}

impl WorldCache {
    pub fn new() -> WorldCache {
        WorldCache {
            world: RwLock::new(World::new()),
            sync: Mutex::new(SyncState::default()),
            last_prune: Mutex::new(None),
        }
    }

    /// Brings the view up to date with every write committed before this
    /// call, in this process or another. Call it outside a transaction on
    /// `connection`. When nothing changed it costs one small indexed
    /// query; refreshes in one process take turns, and a caller whose
    /// turn comes after a refresh that started after it arrived returns
    /// at once.
    pub fn refresh(&self, connection: &mut Connection) -> Result<(), DomainError> {
        let arrived = Instant::now();
        {
            let mut sync = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
            if sync.completed_start.is_some_and(|start| start > arrived) {
                return Ok(());
            }
            let started = Instant::now();
            let cursor = match &sync.cursor {
                None => self.load_everything(connection)?,
                Some(cursor) => self.apply_changes(connection, cursor.clone(), started)?,
            };
            sync.cursor = Some(cursor);
            sync.completed_start = Some(started);
        }
        self.prune_now_and_then(connection);
        Ok(())
    }

    /// The current view, for reading.
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a write this process committed without reading it back:
    /// the usage it added and the generations it set, its change rows
    /// `seqs` marked as applied so that the refresh reading them reloads
    /// nothing for them (another change to the same provider still
    /// reloads it). Only when no refresh has read those rows yet (they
    /// all became visible at once, at commit): one that has reloaded the
    /// providers with the write in them, and the write is left alone.
    pub fn apply_own_commit(
        &self,
        seqs: &[i64],
        usage: &[Usage],
        generations: &[(ProviderId, i32)],
    ) {
        let mut sync = self.sync.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(cursor) = sync.cursor.as_mut() else {
            return;
        };
        if seqs.iter().any(|seq| cursor.has_read(*seq)) {
            return;
        }
        cursor.applied.extend(seqs.iter().copied());
        let mut world = self.world.write().unwrap_or_else(PoisonError::into_inner);
        for (provider, class, amount) in usage {
            world.add_usage(*provider, *class, *amount);
        }
        for (provider, generation) in generations {
            world.set_generation(*provider, *generation);
        }
    }

    /// The view lent for placing a batch of claims one after another,
    /// each seeing the usage of those before it, without copying it; see
    /// `Scratch`.
    pub fn scratch(&self) -> Scratch<'_> {
        Scratch {
            world: self.world.write().unwrap_or_else(PoisonError::into_inner),
            added: Vec::new(),
        }
    }

    /// Reads the change log after `cursor` (one statement), then what the
    /// changes name (one statement; the names in three more, rarely);
    /// applies it and returns the cursor advanced (the caller keeps it
    /// only on success).
    fn apply_changes(
        &self,
        connection: &mut Connection,
        mut cursor: ChangeCursor,
        now: Instant,
    ) -> Result<ChangeCursor, DomainError> {
        // Gaps still without a watermark were seen by an earlier refresh
        // (this one has not looked yet): a transaction id assigned by this
        // statement is above every id of their writers. Gaps usually fill
        // within one refresh, so most refreshes burn no transaction id.
        let want_xid = cursor.needs_watermark();
        let rows = store::changes_since(connection, cursor.last_seq, &cursor.gap_list(), want_xid)?;
        let fresh_xid = rows.first().and_then(|row| row.fresh_xid);
        let work = cursor.absorb(&rows, now);
        if work.full_load {
            tracing::info!("change log pruned past this process's position; reloading the world");
            return self.load_everything(connection);
        }
        if let Some(xid) = fresh_xid {
            cursor.set_watermark_before(xid, now);
        }
        if work.providers.is_empty() && !work.names {
            return Ok(cursor);
        }
        // Read after the changes, so at least as new as they are; changes
        // committed in between are read again by the next refresh.
        let ids: Vec<ProviderId> = work.providers.iter().copied().collect();
        let data = if ids.is_empty() {
            ProviderData::default()
        } else {
            provider_data(store::load_changed(connection, &ids)?)
        };
        let names = if work.names {
            Some(store::load_names(connection)?)
        } else {
            None
        };
        let aggregates: Vec<_> = data
            .aggregates
            .iter()
            .map(|link| (link.aggregate_id, link.aggregate_uuid))
            .collect();
        let mut built = assemble(data);
        tracing::debug!(
            changed = ids.len(),
            names = work.names,
            "applying provider changes"
        );
        let mut world = self.world.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(names) = &names {
            apply_names(&mut world, names);
        }
        for (id, uuid) in aggregates {
            world.set_aggregate(id, uuid);
        }
        for id in ids {
            match built.remove(&id) {
                Some(provider) => world.upsert_provider(provider),
                None => world.remove_provider(id),
            }
        }
        Ok(cursor)
    }

    /// Loads every provider and name in one snapshot, replaces the view,
    /// and returns the cursor at the log's head.
    fn load_everything(&self, connection: &mut Connection) -> Result<ChangeCursor, DomainError> {
        let (head, present, data, names) = connection
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run(|connection| {
                let head = store::log_head(connection)?;
                let present =
                    store::seqs_between(connection, full_load_gap_floor(&head), head.last_seq)?;
                let data = store::load(connection, Scope::All)?;
                let names = store::load_names(connection)?;
                Ok::<_, diesel::result::Error>((head, present, data, names))
            })?;
        let mut cursor = ChangeCursor::at_head(&head, &present, Instant::now());
        if cursor.needs_watermark() {
            cursor.set_watermark(store::fresh_transaction_id(connection)?);
        }
        let mut world = World::new();
        apply_names(&mut world, &names);
        for provider in assemble(data).into_values() {
            world.upsert_provider(provider);
        }
        tracing::debug!(providers = world.len(), "loaded the world");
        *self.world.write().unwrap_or_else(PoisonError::into_inner) = world;
        Ok(cursor)
    }

    /// Prunes old change rows, at most once per `PRUNE_EVERY` per process.
    /// A failure is logged, not returned: the view is already fresh.
    fn prune_now_and_then(&self, connection: &mut Connection) {
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = store::prune(connection, PRUNE_AGE.as_secs_f64()) {
            tracing::warn!(%error, "could not prune the provider change log");
        }
    }
}

/// The lowest seq (exclusive) a full load looks at for open gaps.
fn full_load_gap_floor(head: &LogHeadRow) -> i64 {
    (head.last_seq - FULL_LOAD_GAP_WINDOW).max(head.pruned_through)
}

/// A seq not seen yet below the newest seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    noted: Instant,
    /// A transaction id taken after the gap was seen: once the snapshot
    /// xmin is above it, whoever held the seq has ended.
    watermark: Option<i64>,
}

/// Where a process stands in the change log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChangeCursor {
    /// Every seq up to this one has been applied, but the gaps.
    last_seq: i64,
    /// The pruning mark when last looked at.
    pruned_seen: i64,
    gaps: BTreeMap<i64, Gap>,
    /// Change rows of this process's own writes, applied already
    /// (`WorldCache::apply_own_commit`) and not yet read.
    applied: BTreeSet<i64>,
}

/// What one read of the change log asks to reload.
#[derive(Debug, Default, PartialEq, Eq)]
struct Work {
    providers: BTreeSet<ProviderId>,
    names: bool,
    /// Changes may have been pruned unseen: reload everything.
    full_load: bool,
}

impl ChangeCursor {
    /// The cursor after a full load that saw the log at `head`, with
    /// `present` the seqs above `full_load_gap_floor(head)`.
    fn at_head(head: &LogHeadRow, present: &[i64], now: Instant) -> ChangeCursor {
        let present: BTreeSet<i64> = present.iter().copied().collect();
        let floor = full_load_gap_floor(head);
        let gaps = (floor + 1..=head.last_seq)
            .filter(|seq| !present.contains(seq))
            .map(|seq| {
                (
                    seq,
                    Gap {
                        noted: now,
                        watermark: None,
                    },
                )
            })
            .collect();
        ChangeCursor {
            last_seq: head.last_seq.max(head.pruned_through),
            pruned_seen: head.pruned_through,
            gaps,
            applied: BTreeSet::new(),
        }
    }

    /// True when the row `seq` has been read: at or below the last seq
    /// and not a gap.
    fn has_read(&self, seq: i64) -> bool {
        seq <= self.last_seq && !self.gaps.contains_key(&seq)
    }

    fn gap_list(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }

    fn needs_watermark(&self) -> bool {
        self.gaps.values().any(|gap| gap.watermark.is_none())
    }

    fn set_watermark(&mut self, transaction_id: i64) {
        for gap in self.gaps.values_mut() {
            gap.watermark.get_or_insert(transaction_id);
        }
    }

    /// Gives `transaction_id` as watermark to the gaps noted before
    /// `now` that have none (gaps noted at `now` wait for a later one).
    fn set_watermark_before(&mut self, transaction_id: i64, now: Instant) {
        for gap in self.gaps.values_mut() {
            if gap.noted < now {
                gap.watermark.get_or_insert(transaction_id);
            }
        }
    }

    /// Takes in the answer of `changes_since(last_seq, gap_list(), _)`.
    fn absorb(&mut self, rows: &[ChangeRow], now: Instant) -> Work {
        let mut work = Work::default();
        let Some(first) = rows.first() else {
            return work;
        };
        if first.pruned_through > self.pruned_seen {
            let missed_gap = self
                .gaps
                .keys()
                .next()
                .is_some_and(|seq| *seq <= first.pruned_through);
            if self.last_seq < first.pruned_through || missed_gap {
                work.full_load = true;
                return work;
            }
            self.pruned_seen = first.pruned_through;
        }
        for row in rows {
            let Some(seq) = row.seq else { continue };
            if seq > self.last_seq {
                for missing in self.last_seq + 1..seq {
                    self.gaps.insert(
                        missing,
                        Gap {
                            noted: now,
                            watermark: None,
                        },
                    );
                }
                self.last_seq = seq;
            } else {
                self.gaps.remove(&seq);
            }
            if self.applied.remove(&seq) {
                continue;
            }
            match row.provider_id {
                Some(id) => {
                    work.providers.insert(id);
                }
                None => work.names = true,
            }
        }
        // This read was the last that could find the gaps whose writers
        // had all ended before its snapshot.
        let xmin = first.xmin;
        self.gaps.retain(|seq, gap| {
            if gap.watermark.is_some_and(|watermark| watermark < xmin) {
                return false;
            }
            if now.saturating_duration_since(gap.noted) >= GAP_GIVE_UP {
                tracing::warn!(seq, "giving up on a change-log gap still open");
                return false;
            }
            true
        });
        work
    }
}

/// The rows of `store::load_changed`, sorted out.
fn provider_data(rows: Vec<RefreshRow>) -> ProviderData {
    let mut data = ProviderData::default();
    for row in rows {
        let id = row.id.unwrap_or_default();
        let ref_id = row.ref_id.unwrap_or_default();
        match row.kind {
            kind::PROVIDER => data.providers.push(ProviderRow {
                id,
                uuid: row.uuid.unwrap_or_default(),
                generation: row.generation.unwrap_or_default(),
                parent_provider_id: row.ref_id,
                root_provider_id: row.root_id.unwrap_or(id),
            }),
            kind::INVENTORY => data.inventories.push(InventoryRow {
                resource_provider_id: id,
                resource_class_id: ref_id,
                values: row.numbers.inventory_values(),
            }),
            kind::USAGE => data.usages.push(UsageRow {
                resource_provider_id: id,
                resource_class_id: ref_id,
                used: row.numbers.n1.unwrap_or_default(),
            }),
            kind::TRAIT_LINK => data.traits.push(TraitLinkRow {
                resource_provider_id: id,
                trait_id: ref_id,
            }),
            kind::AGGREGATE_LINK => data.aggregates.push(AggregateLinkRow {
                resource_provider_id: id,
                aggregate_id: ref_id,
                aggregate_uuid: row.uuid.unwrap_or_default(),
            }),
            _ => {}
        }
    }
    data
}

/// Builds the providers of `data`, by id.
fn assemble(data: ProviderData) -> HashMap<ProviderId, Provider> {
    let mut providers: HashMap<ProviderId, Provider> = data
        .providers
        .into_iter()
        .map(|row| {
            (
                row.id,
                Provider {
                    id: row.id,
                    uuid: row.uuid,
                    generation: row.generation,
                    parent: row.parent_provider_id,
                    root: row.root_provider_id,
                    capacities: Capacities::default(),
                    traits: BTreeSet::new(),
                    aggregates: BTreeSet::new(),
                },
            )
        })
        .collect();
    for row in data.inventories {
        if let Some(provider) = providers.get_mut(&row.resource_provider_id) {
            provider
                .capacities
                .set_limits(row.resource_class_id, limits_of_values(&row.values));
        }
    }
    for row in data.usages {
        if let Some(provider) = providers.get_mut(&row.resource_provider_id) {
            provider
                .capacities
                .set_used(row.resource_class_id, row.used);
        }
    }
    for row in data.traits {
        if let Some(provider) = providers.get_mut(&row.resource_provider_id) {
            provider.traits.insert(row.trait_id);
        }
    }
    for row in data.aggregates {
        if let Some(provider) = providers.get_mut(&row.resource_provider_id) {
            provider.aggregates.insert(row.aggregate_id);
        }
    }
    providers
}

fn apply_names(world: &mut World, names: &Names) {
    world.clear_names();
    for class in &names.classes {
        world.set_class(class.id, &class.name);
    }
    for name in &names.traits {
        world.set_trait(name.id, &name.name);
    }
    for aggregate in &names.aggregates {
        world.set_aggregate(aggregate.id, aggregate.uuid);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::storage::inventories::InventoryValues;

    fn row(xmin: i64, pruned_through: i64, seq: Option<i64>, provider: Option<i32>) -> ChangeRow {
        ChangeRow {
            xmin,
            pruned_through,
            seq,
            provider_id: provider,
            fresh_xid: None,
        }
    }

    fn cursor(last_seq: i64) -> ChangeCursor {
        ChangeCursor {
            last_seq,
            pruned_seen: 0,
            gaps: BTreeMap::new(),
            applied: BTreeSet::new(),
        }
    }

    #[test]
    fn nothing_changed_is_no_work() {
        let mut at = cursor(7);
        let work = at.absorb(&[row(100, 0, None, None)], Instant::now());
        assert_eq!(work, Work::default());
        assert_eq!(at, cursor(7));
    }

    #[test]
    fn changes_name_providers_and_names() {
        let mut at = cursor(7);
        let rows = [
            row(100, 0, Some(8), Some(3)),
            row(100, 0, Some(9), None),
            row(100, 0, Some(10), Some(3)),
            row(100, 0, Some(11), Some(1)),
        ];
        let work = at.absorb(&rows, Instant::now());
        assert_eq!(work.providers, BTreeSet::from([1, 3]));
        assert!(work.names);
        assert!(!work.full_load);
        assert_eq!(at.last_seq, 11);
        assert!(at.gaps.is_empty());
    }

    #[test]
    fn a_skipped_seq_is_asked_for_until_its_writer_provably_ended() {
        let now = Instant::now();
        let mut at = cursor(7);
        // 8 is held by an open transaction; 9 committed.
        at.absorb(&[row(100, 0, Some(9), Some(2))], now);
        assert_eq!(at.last_seq, 9);
        assert_eq!(at.gap_list(), vec![8]);
        assert!(at.needs_watermark());
        at.set_watermark(150);
        // Still open: xmin below the watermark keeps the gap.
        let work = at.absorb(&[row(120, 0, None, None)], now);
        assert!(work.providers.is_empty());
        assert_eq!(at.gap_list(), vec![8]);
        // It commits and shows up, even below last_seq.
        let work = at.absorb(&[row(140, 0, Some(8), Some(5))], now);
        assert_eq!(work.providers, BTreeSet::from([5]));
        assert!(at.gaps.is_empty());
        assert_eq!(at.last_seq, 9);
    }

    #[test]
    fn a_gap_is_forgotten_once_xmin_passes_its_watermark() {
        let now = Instant::now();
        let mut at = cursor(7);
        at.absorb(&[row(100, 0, Some(9), Some(2))], now);
        at.set_watermark(150);
        // Rolled back: never shows up; the read whose xmin passed 150 is final.
        at.absorb(&[row(151, 0, None, None)], now);
        assert!(at.gaps.is_empty());
    }

    #[test]
    fn a_gap_without_a_watermark_is_kept() {
        let now = Instant::now();
        let mut at = cursor(7);
        at.absorb(&[row(1_000, 0, Some(9), Some(2))], now);
        assert_eq!(at.gap_list(), vec![8]);
    }

    #[test]
    fn an_old_gap_is_given_up() {
        let then = Instant::now();
        let mut at = cursor(7);
        at.absorb(&[row(100, 0, Some(9), Some(2))], then);
        at.set_watermark(150);
        at.absorb(&[row(120, 0, None, None)], then + GAP_GIVE_UP);
        assert!(at.gaps.is_empty());
    }

    #[test]
    fn pruning_past_the_cursor_asks_for_a_full_load() {
        let mut at = cursor(7);
        let work = at.absorb(&[row(100, 9, None, None)], Instant::now());
        assert!(work.full_load);
    }

    #[test]
    fn pruning_past_an_open_gap_asks_for_a_full_load() {
        let now = Instant::now();
        let mut at = cursor(7);
        at.absorb(&[row(100, 0, Some(9), Some(2))], now);
        let work = at.absorb(&[row(100, 8, None, None)], now);
        assert!(work.full_load);
    }

    #[test]
    fn pruning_behind_the_cursor_is_noted() {
        let mut at = cursor(7);
        let work = at.absorb(&[row(100, 6, None, None)], Instant::now());
        assert!(!work.full_load);
        assert_eq!(at.pruned_seen, 6);
    }

    #[test]
    fn a_full_load_notes_the_missing_seqs_near_the_head() {
        let head = LogHeadRow {
            last_seq: 20,
            pruned_through: 15,
        };
        assert_eq!(full_load_gap_floor(&head), 15);
        let at = ChangeCursor::at_head(&head, &[16, 18, 20], Instant::now());
        assert_eq!(at.gap_list(), vec![17, 19]);
        assert_eq!(at.last_seq, 20);
        assert_eq!(at.pruned_seen, 15);
        assert!(at.needs_watermark());
        // An emptied log: the head is the pruning mark.
        let empty = LogHeadRow {
            last_seq: 0,
            pruned_through: 40,
        };
        let at = ChangeCursor::at_head(&empty, &[], Instant::now());
        assert_eq!(at.last_seq, 40);
        assert!(at.gaps.is_empty());
    }

    #[test]
    fn assemble_puts_each_row_on_its_provider() {
        let data = ProviderData {
            providers: vec![
                ProviderRow {
                    id: 1,
                    uuid: Uuid::from_u128(1),
                    generation: 4,
                    parent_provider_id: None,
                    root_provider_id: 1,
                },
                ProviderRow {
                    id: 2,
                    uuid: Uuid::from_u128(2),
                    generation: 0,
                    parent_provider_id: Some(1),
                    root_provider_id: 1,
                },
            ],
            inventories: vec![InventoryRow {
                resource_provider_id: 2,
                resource_class_id: 0,
                values: InventoryValues {
                    total: 8,
                    reserved: 1,
                    min_unit: 1,
                    max_unit: 8,
                    step_size: 1,
                    allocation_ratio: 2.0,
                },
            }],
            usages: vec![UsageRow {
                resource_provider_id: 2,
                resource_class_id: 0,
                used: 3,
            }],
            traits: vec![TraitLinkRow {
                resource_provider_id: 1,
                trait_id: 9,
            }],
            aggregates: vec![AggregateLinkRow {
                resource_provider_id: 2,
                aggregate_id: 5,
                aggregate_uuid: Uuid::from_u128(50),
            }],
        };
        let providers = assemble(data);
        let root = &providers[&1];
        assert_eq!(root.generation, 4);
        assert_eq!(root.traits, BTreeSet::from([9]));
        assert!(root.capacities.is_empty());
        let child = &providers[&2];
        assert_eq!(child.parent, Some(1));
        assert_eq!(child.root, 1);
        assert_eq!(child.used(0), 3);
        assert_eq!(child.limits(0).map(|limits| limits.total), Some(8));
        assert_eq!(child.aggregates, BTreeSet::from([5]));
    }
}
