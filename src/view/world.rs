//! The in-memory view the candidate engine reads: every provider with its
//! place in its tree, inventories, usages, traits and aggregates, plus the
//! name tables. Plain data, no database: `storage::world` fills it and
//! keeps it in step with PostgreSQL; tests build it by hand.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use smallvec::SmallVec;
use uuid::Uuid;

use crate::domain::capacity::Limits;

pub type ProviderId = i32;
pub type ClassId = i32;
pub type TraitId = i32;
pub type AggregateId = i32;

/// One resource provider as the engine sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub id: ProviderId,
    pub uuid: Uuid,
    pub generation: i32,
    pub parent: Option<ProviderId>,
    pub root: ProviderId,
    pub capacities: Capacities,
    pub traits: BTreeSet<TraitId>,
    pub aggregates: BTreeSet<AggregateId>,
}

impl Provider {
    /// The inventory of `class`, if the provider has one.
    pub fn limits(&self, class: ClassId) -> Option<&Limits> {
        self.capacities.get(class).map(|capacity| &capacity.limits)
    }

    /// Usage of `class`, 0 when nothing is allocated.
    pub fn used(&self, class: ClassId) -> i64 {
        self.capacities
            .get(class)
            .map_or(0, |capacity| capacity.used)
    }

    /// True when one more allocation of `amount` of `class` fits here
    /// (unit constraints and capacity).
    pub fn can_allocate(&self, class: ClassId, amount: i64) -> bool {
        self.capacities
            .get(class)
            .is_some_and(|capacity| capacity.limits.can_allocate(capacity.used, amount))
    }
}

/// A provider's inventory of one class, with the usage of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    pub class: ClassId,
    pub limits: Limits,
    pub used: i64,
}

/// A provider's inventories with their usage, ascending by class and held
/// inline: whether a provider fits, the engine's innermost question, is
/// answered from the provider's own memory, without following pointers
/// for every provider scanned. Usage of a class the provider has no
/// inventory of is not kept (nothing can be allocated from it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacities(SmallVec<[Capacity; 4]>);

impl Capacities {
    /// From inventories and usages by class.
    pub fn new(
        inventories: impl IntoIterator<Item = (ClassId, Limits)>,
        usages: impl IntoIterator<Item = (ClassId, i64)>,
    ) -> Capacities {
        let mut capacities = Capacities::default();
        for (class, limits) in inventories {
            capacities.set_limits(class, limits);
        }
        for (class, used) in usages {
            capacities.set_used(class, used);
        }
        capacities
    }

    pub fn get(&self, class: ClassId) -> Option<&Capacity> {
        self.0.iter().find(|capacity| capacity.class == class)
    }

    /// Sets the inventory of `class`, keeping its usage.
    pub fn set_limits(&mut self, class: ClassId, limits: Limits) {
        match self
            .0
            .binary_search_by_key(&class, |capacity| capacity.class)
        {
            Ok(at) => self.0[at].limits = limits,
            Err(at) => self.0.insert(
                at,
                Capacity {
                    class,
                    limits,
                    used: 0,
                },
            ),
        }
    }

    /// Sets the usage of `class` where the provider has inventory of it.
    pub fn set_used(&mut self, class: ClassId, used: i64) {
        if let Some(capacity) = self.0.iter_mut().find(|capacity| capacity.class == class) {
            capacity.used = used;
        }
    }

    /// Ascending by class.
    pub fn iter(&self) -> impl Iterator<Item = &Capacity> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Hashes a provider id with one multiplication: ids are the database's
/// serial numbers, not attacker-chosen, and the engine and ranking look a
/// provider up for every candidate they consider.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i32(&mut self, id: i32) {
        self.0 = u64::from(id as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Everything the engine needs, indexed for it.
#[derive(Clone, Debug, Default)]
pub struct World {
    providers: HashMap<ProviderId, Provider, BuildHasherDefault<IdHasher>>,
    by_uuid: HashMap<Uuid, ProviderId>,
    children: HashMap<ProviderId, BTreeSet<ProviderId>>,
    members: HashMap<AggregateId, BTreeSet<ProviderId>>,
    /// The providers holding each trait.
    holders: HashMap<TraitId, BTreeSet<ProviderId>>,
    /// The providers that are their own root.
    roots: BTreeSet<ProviderId>,
    /// How many providers have a parent.
    with_parent: usize,
    class_ids: HashMap<String, ClassId>,
    class_names: HashMap<ClassId, String>,
    trait_ids: HashMap<String, TraitId>,
    trait_names: HashMap<TraitId, String>,
    aggregate_ids: HashMap<Uuid, AggregateId>,
    aggregate_uuids: HashMap<AggregateId, Uuid>,
}

/// Name of the trait that marks a sharing provider.
pub const SHARING_TRAIT: &str = "MISC_SHARES_VIA_AGGREGATE";

impl World {
    pub fn new() -> World {
        World::default()
    }

    // --- name tables -----------------------------------------------------

    pub fn set_class(&mut self, id: ClassId, name: &str) {
        self.class_ids.insert(name.to_owned(), id);
        self.class_names.insert(id, name.to_owned());
    }

    pub fn set_trait(&mut self, id: TraitId, name: &str) {
        self.trait_ids.insert(name.to_owned(), id);
        self.trait_names.insert(id, name.to_owned());
    }

    pub fn set_aggregate(&mut self, id: AggregateId, uuid: Uuid) {
        self.aggregate_ids.insert(uuid, id);
        self.aggregate_uuids.insert(id, uuid);
    }

    /// Forgets the class, trait and aggregate tables (before a reload).
    pub fn clear_names(&mut self) {
        self.class_ids.clear();
        self.class_names.clear();
        self.trait_ids.clear();
        self.trait_names.clear();
        self.aggregate_ids.clear();
        self.aggregate_uuids.clear();
    }

    pub fn class_id(&self, name: &str) -> Option<ClassId> {
        self.class_ids.get(name).copied()
    }

    pub fn class_name(&self, id: ClassId) -> Option<&str> {
        self.class_names.get(&id).map(String::as_str)
    }

    pub fn trait_id(&self, name: &str) -> Option<TraitId> {
        self.trait_ids.get(name).copied()
    }

    pub fn trait_name(&self, id: TraitId) -> Option<&str> {
        self.trait_names.get(&id).map(String::as_str)
    }

    pub fn aggregate_id(&self, uuid: &Uuid) -> Option<AggregateId> {
        self.aggregate_ids.get(uuid).copied()
    }

    pub fn aggregate_uuid(&self, id: AggregateId) -> Option<Uuid> {
        self.aggregate_uuids.get(&id).copied()
    }

    pub fn sharing_trait(&self) -> Option<TraitId> {
        self.trait_id(SHARING_TRAIT)
    }

    // --- providers ---------------------------------------------------------

    /// Adds or replaces a provider, keeping the indexes right.
    pub fn upsert_provider(&mut self, provider: Provider) {
        self.remove_provider(provider.id);
        self.by_uuid.insert(provider.uuid, provider.id);
        if let Some(parent) = provider.parent {
            self.children.entry(parent).or_default().insert(provider.id);
            self.with_parent += 1;
        }
        if provider.root == provider.id {
            self.roots.insert(provider.id);
        }
        for aggregate in &provider.aggregates {
            self.members
                .entry(*aggregate)
                .or_default()
                .insert(provider.id);
        }
        for held in &provider.traits {
            self.holders.entry(*held).or_default().insert(provider.id);
        }
        self.providers.insert(provider.id, provider);
    }

    /// Adds `amount` to the usage of `class` on provider `id` (where it
    /// has inventory of it): a claim placed but not yet written.
    pub fn add_usage(&mut self, id: ProviderId, class: ClassId, amount: i64) {
        if let Some(provider) = self.providers.get_mut(&id) {
            let used = provider.used(class);
            provider.capacities.set_used(class, used + amount);
        }
    }

    /// Sets the generation of provider `id` (where it is known).
    pub fn set_generation(&mut self, id: ProviderId, generation: i32) {
        if let Some(provider) = self.providers.get_mut(&id) {
            provider.generation = generation;
        }
    }

    /// Removes a provider (a no-op when absent).
    pub fn remove_provider(&mut self, id: ProviderId) {
        let Some(old) = self.providers.remove(&id) else {
            return;
        };
        self.by_uuid.remove(&old.uuid);
        if let Some(parent) = old.parent {
            self.with_parent -= 1;
            forget(&mut self.children, parent, id);
        }
        self.roots.remove(&id);
        for aggregate in &old.aggregates {
            forget(&mut self.members, *aggregate, id);
        }
        for held in &old.traits {
            forget(&mut self.holders, *held, id);
        }
    }

    pub fn provider(&self, id: ProviderId) -> Option<&Provider> {
        self.providers.get(&id)
    }

    pub fn provider_by_uuid(&self, uuid: &Uuid) -> Option<&Provider> {
        self.by_uuid.get(uuid).and_then(|id| self.providers.get(id))
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The providers that are their own root, ascending.
    pub fn roots(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.roots.iter().copied()
    }

    /// True when some provider has a parent.
    pub fn has_trees(&self) -> bool {
        self.with_parent > 0
    }

    /// The providers holding a trait, ascending.
    pub fn holders(&self, held: TraitId) -> impl Iterator<Item = ProviderId> + '_ {
        self.holders.get(&held).into_iter().flatten().copied()
    }

    /// Direct children of a provider, by id.
    pub fn children(&self, id: ProviderId) -> impl Iterator<Item = ProviderId> + '_ {
        self.children.get(&id).into_iter().flatten().copied()
    }

    /// The providers in an aggregate, by id.
    pub fn members(&self, aggregate: AggregateId) -> impl Iterator<Item = ProviderId> + '_ {
        self.members.get(&aggregate).into_iter().flatten().copied()
    }

    /// A provider and all its descendants, parents before children.
    pub fn subtree(&self, id: ProviderId) -> Vec<ProviderId> {
        let mut found = Vec::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            if self.providers.contains_key(&next) {
                found.push(next);
                stack.extend(self.children(next));
            }
        }
        found
    }

    /// A provider's ancestors, nearest first (the provider itself excluded).
    pub fn ancestors(&self, id: ProviderId) -> Vec<ProviderId> {
        let mut found = Vec::new();
        let mut current = self.provider(id).and_then(|provider| provider.parent);
        while let Some(parent) = current {
            if found.contains(&parent) {
                break;
            }
            found.push(parent);
            current = self.provider(parent).and_then(|provider| provider.parent);
        }
        found
    }
}

/// Takes `id` out of the set `index[key]`, dropping the set once empty.
fn forget<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, BTreeSet<ProviderId>>,
    key: K,
    id: ProviderId,
) {
    if let Some(set) = index.get_mut(&key) {
        set.remove(&id);
        if set.is_empty() {
            index.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(id: ProviderId, parent: Option<ProviderId>, root: ProviderId) -> Provider {
        Provider {
            id,
            uuid: Uuid::from_u128(id as u128),
            generation: 0,
            parent,
            root,
            capacities: Capacities::default(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::from([7]),
        }
    }

    #[test]
    fn indexes_follow_upserts_and_removals() {
        let mut world = World::new();
        world.upsert_provider(provider(1, None, 1));
        world.upsert_provider(provider(2, Some(1), 1));
        world.upsert_provider(provider(3, Some(2), 1));
        assert_eq!(world.subtree(1), vec![1, 2, 3]);
        assert_eq!(world.ancestors(3), vec![2, 1]);
        assert_eq!(world.members(7).count(), 3);
        // Re-parent 3 under 1.
        world.upsert_provider(provider(3, Some(1), 1));
        assert_eq!(world.children(2).count(), 0);
        assert_eq!(world.children(1).collect::<Vec<_>>(), vec![2, 3]);
        world.remove_provider(2);
        assert_eq!(world.members(7).collect::<Vec<_>>(), vec![1, 3]);
        assert!(world.provider_by_uuid(&Uuid::from_u128(2)).is_none());
    }

    #[test]
    fn roots_trees_and_trait_holders_follow_upserts_and_removals() {
        let mut world = World::new();
        let with_trait = |mut p: Provider, held: TraitId| {
            p.traits.insert(held);
            p
        };
        world.upsert_provider(with_trait(provider(5, None, 5), 9));
        world.upsert_provider(provider(3, None, 3));
        assert_eq!(world.roots().collect::<Vec<_>>(), vec![3, 5]);
        assert!(!world.has_trees());
        assert_eq!(world.holders(9).collect::<Vec<_>>(), vec![5]);
        // 3 moves under 5 and takes the trait; 5 loses it.
        world.upsert_provider(with_trait(provider(3, Some(5), 5), 9));
        world.upsert_provider(provider(5, None, 5));
        assert_eq!(world.roots().collect::<Vec<_>>(), vec![5]);
        assert!(world.has_trees());
        assert_eq!(world.holders(9).collect::<Vec<_>>(), vec![3]);
        world.remove_provider(3);
        assert!(!world.has_trees());
        assert_eq!(world.holders(9).count(), 0);
        assert_eq!(world.roots().collect::<Vec<_>>(), vec![5]);
    }
}
