//! The candidate engine: every allocation request that satisfies a
//! `CandidateRequest` in a `World`, with the providers to summarise.
//! Answers to upstream's `objects/allocation_candidate.py` and
//! `objects/research_context.py` (Placement 16.0), rule for rule.
//!
//! How it works. Every group is split into *slots*: a suffixed group (or the
//! unsuffixed one in a world with neither trees nor sharing providers) is
//! one slot whose provider gives all its resources; the unsuffixed group in
//! any other world is one slot per resource class, each class coming wholly
//! from one provider of the tree or from a sharing provider anchored to it.
//! The anchors (roots) are taken one at a time; for each, every slot's
//! options are found among the anchor's tree and the sharing providers
//! serving it (only when the anchor's turn comes, so that a `limit` cuts
//! the work and not just the output), and searched depth first over the
//! slots, pruning a partial assignment as soon as it breaks
//! capacity (amounts of one class from one provider are summed), the
//! `isolate` policy, the unsuffixed group's traits or a `same_subtree`
//! constraint, so work is proportional to the answers, not to the product
//! of the options. Generation stops at `limit` or `max_candidates`.
//!
//! Order (deterministic unless `randomize`): anchors by ascending provider
//! id; within an anchor, slots in request order (the unsuffixed group's
//! classes by ascending class id) and each slot's options by ascending
//! provider id, the last slot varying fastest. `DepthFirst` exhausts one
//! anchor before the next; `BreadthFirst` takes one answer from each anchor
//! in turn. Upstream's order is its hash-set order, i.e. undefined.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::request::{
    AllocationRequest, CandidateRequest, Candidates, EngineOptions, GroupPolicy, RequestGroup,
    TraitFilter, providers_of,
};
use super::rng::Rng;
use super::world::{ClassId, Provider, ProviderId, TraitId, World};
use crate::config::GenerationStrategy;

#[cfg(test)]
mod tests;

/// Every allocation request that satisfies `request` in `world`.
pub fn generate(world: &World, request: &CandidateRequest, options: &EngineOptions) -> Candidates {
    let Some(mut plan) = Plan::build(world, request) else {
        return Candidates::default();
    };
    let mut rng = options.randomize.then(Rng::seeded);
    let mut anchors = std::mem::take(&mut plan.context.anchors);
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut anchors);
    }

    let limit = request.limit.filter(|limit| *limit > 0);
    // Before 1.29 in a world with trees, the summaries of a cut answer name
    // providers of answers that were cut, so everything is generated then.
    let old_nested = !request.nested_aware && plan.context.has_trees;
    let mut sink = Sink {
        plan: &plan,
        // Upstream stops once it holds max_allocation_candidates, checked
        // after adding, so 0 still lets one through.
        max_candidates: options.max_candidates.map(|max| max.max(1)),
        stop_at: if old_nested { None } else { limit },
        produced: 0,
        seen: HashSet::new(),
        kept: Vec::new(),
        amounts: Vec::new(),
        mapped: Vec::new(),
    };
    match options.strategy {
        GenerationStrategy::DepthFirst => {
            // Each anchor's options are worked out only when its turn
            // comes, so a `limit` stops the work, not just the output.
            let mut search = Search::new(&plan);
            for anchor in anchors {
                if !search.reset(anchor) {
                    continue;
                }
                while search.advance() {
                    if sink.accept(&search.chosen) {
                        break;
                    }
                }
                if sink.full() {
                    break;
                }
            }
        }
        GenerationStrategy::BreadthFirst => {
            let mut active: Vec<Search<'_>> = Vec::new();
            for anchor in anchors {
                let mut search = Search::new(&plan);
                if search.reset(anchor) {
                    active.push(search);
                }
            }
            'rounds: while !active.is_empty() {
                let mut next_round = Vec::with_capacity(active.len());
                for mut search in active {
                    if search.advance() {
                        if sink.accept(&search.chosen) {
                            break 'rounds;
                        }
                        next_round.push(search);
                    }
                }
                active = next_round;
            }
        }
    }

    let mut all = sink.kept;
    let amounts = sink.amounts;
    let mapped = sink.mapped;
    let mut summary_providers = BTreeSet::new();
    if old_nested {
        // Upstream keeps the summaries of providers in any answer, then cuts
        // them to the trees of the answers kept by `limit`.
        let mut named: BTreeSet<ProviderId> = BTreeSet::new();
        for candidate in &all {
            named.extend(providers_of(&amounts[candidate.allocations.clone()]));
        }
        if let Some(limit) = limit
            && limit < all.len()
        {
            if let Some(rng) = rng.as_mut() {
                rng.shuffle(&mut all);
            }
            all.truncate(limit);
            let roots = plan.roots_of(&all, &amounts);
            named.retain(|id| {
                world
                    .provider(*id)
                    .is_some_and(|p| roots.binary_search(&p.root).is_ok())
            });
        }
        summary_providers = named;
    } else if !all.is_empty() {
        let roots = plan.roots_of(&all, &amounts);
        summary_providers = if plan.context.has_trees {
            let mut members: Vec<ProviderId> = Vec::new();
            for root in roots {
                members.extend(world.subtree(root));
            }
            // Collected from a sorted vector, the set is built in bulk.
            members.sort_unstable();
            members.into_iter().collect()
        } else {
            roots.into_iter().collect()
        };
    }
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut all);
    }
    Candidates {
        allocation_requests: all,
        amounts,
        mapped,
        suffixes: plan.suffixes,
        summary_providers,
    }
}

/// The commonest shape: one unsuffixed group in a world with neither
/// trees nor sharing providers, where every provider that fits is one
/// answer and its own root, so no search is needed. Built by `of`, which
/// answers `None` for any other shape. Its answers are those of
/// `generate`, in ascending provider id, with `limit` set aside.
pub struct FlatShape<'r> {
    group: &'r RequestGroup,
    root_traits: &'r TraitFilter,
    /// The root `in_tree` names; `None` when not filtering.
    tree_root: Option<ProviderId>,
    /// The group's amounts summed by class, ascending by class.
    amounts: Vec<(ClassId, i64)>,
    /// No provider can answer (an unknown `in_tree`, or nothing asked).
    matches_nothing: bool,
    /// `max_candidates` alone: how many answers, in order, exist at all.
    max_candidates: Option<usize>,
}

impl<'r> FlatShape<'r> {
    pub fn of(
        world: &World,
        request: &'r CandidateRequest,
        options: &EngineOptions,
    ) -> Option<FlatShape<'r>> {
        let [group] = request.groups.as_slice() else {
            return None;
        };
        let sharing = world
            .sharing_trait()
            .is_some_and(|held| world.holders(held).next().is_some());
        if group.suffix.is_some()
            || options.randomize
            || world.has_trees()
            || sharing
            || !request.same_subtree.is_empty()
            || !request.nested_aware
        {
            return None;
        }
        let resourceless = group.resources.is_empty();
        let mut matches_nothing =
            resourceless && group.traits.all_of.is_empty() && group.member_of.all_of.is_empty();
        let tree_root = match group.in_tree {
            Some(id) => match world.provider(id) {
                Some(provider) => Some(provider.root),
                None => {
                    matches_nothing = true;
                    None
                }
            },
            None => None,
        };
        let mut amounts: BTreeMap<ClassId, i64> = BTreeMap::new();
        for (class, amount) in &group.resources {
            *amounts.entry(*class).or_insert(0) += amount;
        }
        // Upstream stops once it holds max_allocation_candidates, checked
        // after adding, so 0 still lets one through.
        let max_candidates = options.max_candidates.map(|max| max.max(1));
        Some(FlatShape {
            group,
            root_traits: &request.root_traits,
            tree_root,
            amounts: amounts.into_iter().collect(),
            matches_nothing,
            max_candidates,
        })
    }

    pub fn matches_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// How many answers exist at most, `limit` set aside.
    pub fn max_candidates(&self) -> Option<usize> {
        self.max_candidates
    }

    /// True when `provider` (a root, as every provider of such a world is)
    /// is an answer. Not meaningful when `matches_nothing`.
    pub fn admits(&self, provider: &Provider) -> bool {
        let group = self.group;
        let fits = group.resources.is_empty()
            || (self.tree_root.is_none_or(|tree| tree == provider.root)
                && group
                    .resources
                    .iter()
                    .all(|(class, amount)| provider.can_allocate(*class, *amount)));
        fits && traits_match(self.root_traits, &provider.traits)
            && traits_match(&group.traits, &provider.traits)
            && all_of_match(&group.member_of.all_of, &provider.aggregates)
            && group.member_of.forbidden.is_disjoint(&provider.aggregates)
    }

    /// Appends the answer of provider `id` to `answers`.
    pub fn push_answer(&self, answers: &mut Candidates, id: ProviderId) {
        let start = (answers.amounts.len(), answers.mapped.len());
        answers.amounts.extend(
            self.amounts
                .iter()
                .map(|(class, amount)| (id, *class, *amount)),
        );
        answers.mapped.push((0, id));
        answers.allocation_requests.push(AllocationRequest {
            allocations: start.0..answers.amounts.len(),
            mappings: start.1..answers.mapped.len(),
        });
    }

    /// An answer set with no answers yet, keyed as this shape's are.
    pub fn no_answers() -> Candidates {
        Candidates {
            suffixes: vec![String::new()],
            ..Candidates::default()
        }
    }
}

/// What every group needs to know about the world, computed once.
struct Context<'w> {
    world: &'w World,
    has_trees: bool,
    sharing: HashSet<ProviderId>,
    /// For each anchor, the sharing providers of other trees that serve
    /// it (they share an aggregate with one of its providers), ascending.
    /// Anchors refused by `root_traits` are left out.
    serving: HashMap<ProviderId, Vec<ProviderId>>,
    /// Roots allowed by `root_traits`; `None` when not filtering.
    anchor_filter: Option<HashSet<ProviderId>>,
    /// The roots that may anchor an answer (allowed by `root_traits`),
    /// ascending. Whether every slot has options there is found out when
    /// the anchor's turn comes.
    anchors: Vec<ProviderId>,
}

impl<'w> Context<'w> {
    fn new(world: &'w World, request: &CandidateRequest) -> Option<Context<'w>> {
        // The world keeps these indexed, so no request walks every provider.
        let has_trees = world.has_trees();
        let sharing: HashSet<ProviderId> = world
            .sharing_trait()
            .map(|held| world.holders(held).collect())
            .unwrap_or_default();
        let mut roots: Vec<ProviderId> = world.roots().collect();
        let anchor_filter = if request.root_traits.is_empty() {
            None
        } else {
            let allowed: HashSet<ProviderId> = roots
                .iter()
                .filter_map(|id| world.provider(*id))
                .filter(|p| p.parent.is_none() && traits_match(&request.root_traits, &p.traits))
                .map(|p| p.id)
                .collect();
            if allowed.is_empty() {
                return None;
            }
            roots.retain(|id| allowed.contains(id));
            Some(allowed)
        };
        let mut context = Context {
            world,
            has_trees,
            sharing,
            serving: HashMap::new(),
            anchor_filter,
            anchors: roots,
        };
        // The roots of every provider sharing an aggregate with a sharing
        // provider (itself included) are anchors it can serve.
        let mut serving: HashMap<ProviderId, Vec<ProviderId>> = HashMap::new();
        for id in &context.sharing {
            let Some(provider) = world.provider(*id) else {
                continue;
            };
            let mut roots = BTreeSet::new();
            for aggregate in &provider.aggregates {
                for member in world.members(*aggregate) {
                    if let Some(member) = world.provider(member) {
                        roots.insert(member.root);
                    }
                }
            }
            for anchor in roots {
                if anchor != provider.root && context.anchor_ok(anchor) {
                    serving.entry(anchor).or_default().push(*id);
                }
            }
        }
        for providers in serving.values_mut() {
            providers.sort_unstable();
        }
        context.serving = serving;
        Some(context)
    }

    fn anchor_ok(&self, root: ProviderId) -> bool {
        self.anchor_filter
            .as_ref()
            .is_none_or(|roots| roots.contains(&root))
    }

    /// Sharing providers of other trees serving `anchor`, ascending.
    fn serving(&self, anchor: ProviderId) -> &[ProviderId] {
        if self.serving.is_empty() {
            return &[];
        }
        self.serving.get(&anchor).map_or(&[], Vec::as_slice)
    }
}

/// True when `have` holds one of every any-of entry and none of the
/// forbidden ones.
fn traits_match(filter: &TraitFilter, have: &BTreeSet<TraitId>) -> bool {
    all_of_match(&filter.all_of, have) && filter.forbidden.is_disjoint(have)
}

fn all_of_match(all_of: &[BTreeSet<i32>], have: &BTreeSet<i32>) -> bool {
    all_of
        .iter()
        .all(|any| any.iter().any(|item| have.contains(item)))
}

/// How a slot's providers are found.
#[derive(Clone, Copy)]
enum SlotKind {
    /// One class of the unsuffixed group when trees or sharing providers
    /// exist: any provider of the anchor's tree, or a sharing provider
    /// sharing an aggregate with it (upstream's `get_trees_matching_all`).
    TreeClass { class: ClassId, amount: i64 },
    /// A group satisfied by one provider (upstream's
    /// `get_provider_ids_matching` and `_alloc_candidates_single_provider`).
    Single,
}

/// One choice to make: a provider for a whole group, or for one class of
/// the unsuffixed group.
struct Slot<'r> {
    group: usize,
    kind: SlotKind,
    request_group: &'r RequestGroup,
    /// The root of the group's `in_tree` provider.
    tree_root: Option<ProviderId>,
    /// What the chosen provider gives.
    resources: Vec<(ClassId, i64)>,
    /// Counted by `isolate` (a suffixed group).
    granular: bool,
    /// The unsuffixed group's trait filter, checked on the union of its
    /// providers once this, its last slot, is chosen.
    collective_traits: Option<&'r [BTreeSet<TraitId>]>,
    /// `same_subtree` constraints complete once this slot is chosen.
    subtree_checks: Vec<usize>,
}

impl Slot<'_> {
    /// True when `provider`, of the anchor's own tree, may fill this slot.
    fn accepts_own(&self, context: &Context<'_>, provider: &Provider) -> bool {
        let group = self.request_group;
        match self.kind {
            SlotKind::TreeClass { class, amount } => {
                let world = context.world;
                let root = provider.root;
                let root_provider = world.provider(root);
                let in_aggregates = |p: Option<&Provider>| {
                    p.is_some_and(|p| all_of_match(&group.member_of.all_of, &p.aggregates))
                };
                let clear_of_forbidden = |p: Option<&Provider>| {
                    p.is_some_and(|p| group.member_of.forbidden.is_disjoint(&p.aggregates))
                };
                provider.can_allocate(class, amount)
                    // Upstream checks each provider's forbidden traits on
                    // every combination; dropping them here is the same.
                    && group.traits.forbidden.is_disjoint(&provider.traits)
                    && self.tree_root.is_none_or(|tree| tree == root)
                    // An aggregate on the root spans the whole tree.
                    && (group.member_of.all_of.is_empty()
                        || in_aggregates(Some(provider))
                        || in_aggregates(root_provider))
                    && clear_of_forbidden(Some(provider))
                    && clear_of_forbidden(root_provider)
            }
            SlotKind::Single => self.single_fits(provider),
        }
    }

    /// True when `provider`, a sharing provider of another tree, may fill
    /// this slot for `anchor`.
    fn accepts_shared(
        &self,
        context: &Context<'_>,
        provider: &Provider,
        anchor: ProviderId,
    ) -> bool {
        let group = self.request_group;
        match self.kind {
            SlotKind::TreeClass { class, amount } => {
                self.tree_root.is_none()
                    && provider.can_allocate(class, amount)
                    && group.traits.forbidden.is_disjoint(&provider.traits)
                    && all_of_match(&group.member_of.all_of, &provider.aggregates)
                    && group.member_of.forbidden.is_disjoint(&provider.aggregates)
                    && context
                        .world
                        .provider(anchor)
                        .is_some_and(|p| group.member_of.forbidden.is_disjoint(&p.aggregates))
            }
            SlotKind::Single => self.single_fits(provider),
        }
    }

    fn single_fits(&self, provider: &Provider) -> bool {
        let group = self.request_group;
        let fits = group.resources.is_empty()
            || (self.tree_root.is_none_or(|tree| tree == provider.root)
                && group
                    .resources
                    .iter()
                    .all(|(class, amount)| provider.can_allocate(*class, *amount)));
        fits && traits_match(&group.traits, &provider.traits)
            && all_of_match(&group.member_of.all_of, &provider.aggregates)
            && group.member_of.forbidden.is_disjoint(&provider.aggregates)
    }
}

/// Twin number of an option without one.
const NO_TWIN: u32 = u32::MAX;

struct Plan<'w> {
    context: Context<'w>,
    request: &'w CandidateRequest,
    slots: Vec<Slot<'w>>,
    /// `same_subtree` constraints as group indexes.
    subtrees: Vec<Vec<usize>>,
    /// The mapping keys, sorted, and each group's index among them.
    suffixes: Vec<String>,
    suffix_of_group: Vec<usize>,
    /// Set when some answer might be reachable from more than one anchor.
    any_sharing: bool,
}

impl<'w> Plan<'w> {
    /// `None` when nothing can match.
    fn build(world: &'w World, request: &'w CandidateRequest) -> Option<Plan<'w>> {
        if request.groups.is_empty() {
            return None;
        }
        let context = Context::new(world, request)?;
        let multi_path = context.has_trees || !context.sharing.is_empty();
        let mut slots = Vec::new();
        for (index, group) in request.groups.iter().enumerate() {
            let tree_root = match group.in_tree {
                Some(id) => Some(world.provider(id)?.root),
                None => None,
            };
            // Upstream's resourceless lookup only keeps providers found by
            // a positive filter (required traits or member_of), and ignores
            // in_tree.
            let resourceless = group.resources.is_empty();
            if group.suffix.is_none() && multi_path {
                let resources: BTreeMap<ClassId, i64> = group.resources.iter().copied().collect();
                if resources.is_empty() {
                    return None;
                }
                let count = resources.len();
                for (position, (class, amount)) in resources.into_iter().enumerate() {
                    let last = position + 1 == count;
                    slots.push(Slot {
                        group: index,
                        kind: SlotKind::TreeClass { class, amount },
                        request_group: group,
                        tree_root,
                        resources: vec![(class, amount)],
                        granular: false,
                        collective_traits: (last && !group.traits.all_of.is_empty())
                            .then_some(group.traits.all_of.as_slice()),
                        subtree_checks: Vec::new(),
                    });
                }
            } else {
                if resourceless
                    && group.traits.all_of.is_empty()
                    && group.member_of.all_of.is_empty()
                {
                    return None;
                }
                slots.push(Slot {
                    group: index,
                    kind: SlotKind::Single,
                    request_group: group,
                    tree_root,
                    resources: group.resources.clone(),
                    granular: group.suffix.is_some(),
                    collective_traits: None,
                    subtree_checks: Vec::new(),
                });
            }
        }
        let subtrees: Vec<Vec<usize>> = request
            .same_subtree
            .iter()
            .map(|names| {
                request
                    .groups
                    .iter()
                    .enumerate()
                    .filter(|(_, group)| {
                        names
                            .iter()
                            .any(|name| group.suffix.as_deref().unwrap_or("") == name)
                    })
                    .map(|(index, _)| index)
                    .collect()
            })
            .collect();
        for (check, groups) in subtrees.iter().enumerate() {
            if let Some(last) = slots.iter().rposition(|slot| groups.contains(&slot.group)) {
                slots[last].subtree_checks.push(check);
            }
        }
        let any_sharing = !context.sharing.is_empty();
        let names: Vec<&str> = request
            .groups
            .iter()
            .map(|group| group.suffix.as_deref().unwrap_or(""))
            .collect();
        let mut suffixes: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        suffixes.sort_unstable();
        suffixes.dedup();
        let suffix_of_group = names
            .iter()
            .map(|name| {
                suffixes
                    .binary_search_by(|suffix| suffix.as_str().cmp(name))
                    .unwrap_or(0)
            })
            .collect();
        Some(Plan {
            context,
            request,
            slots,
            subtrees,
            suffixes,
            suffix_of_group,
            any_sharing,
        })
    }

    fn provider(&self, id: ProviderId) -> Option<&'w Provider> {
        self.context.world.provider(id)
    }

    /// Fills `options` (one list per slot, ascending by provider) with the
    /// providers that may fill each slot under `anchor`, and numbers
    /// interchangeable ones. False, with the lists in any state, as soon
    /// as one slot has none.
    fn options_at(
        &self,
        anchor: ProviderId,
        options: &mut [Vec<(ProviderId, u32)>],
        tree: &mut Vec<&'w Provider>,
    ) -> bool {
        let world = self.context.world;
        tree.clear();
        if self.context.has_trees {
            let mut stack = vec![anchor];
            while let Some(next) = stack.pop() {
                if let Some(provider) = world.provider(next) {
                    tree.push(provider);
                    stack.extend(world.children(next));
                }
            }
        } else if let Some(provider) = world.provider(anchor) {
            tree.push(provider);
        }
        let shared = self.context.serving(anchor);
        for (slot, list) in self.slots.iter().zip(options.iter_mut()) {
            list.clear();
            for provider in tree.iter() {
                if slot.accepts_own(&self.context, provider) {
                    list.push((provider.id, NO_TWIN));
                }
            }
            for id in shared {
                if let Some(provider) = self.provider(*id)
                    && slot.accepts_shared(&self.context, provider, anchor)
                {
                    list.push((*id, NO_TWIN));
                }
            }
            if list.is_empty() {
                return false;
            }
            list.sort_unstable();
            list.dedup();
        }
        if self.context.has_trees {
            self.number_twins(options);
        }
        true
    }

    /// Numbers the providers of the options so that interchangeable ones
    /// (swapping them maps every rule onto itself) share a number: leaves
    /// with the same parent and identical inventories, usages, traits and
    /// aggregates. Roots are told apart by their anchors; providers left
    /// at `NO_TWIN` are unlike any other option.
    fn number_twins(&self, options: &mut [Vec<(ProviderId, u32)>]) {
        let world = self.context.world;
        let mut leaves: Vec<(ProviderId, ProviderId)> = Vec::new();
        for (id, _) in options.iter().flatten() {
            if let Some(p) = world.provider(*id)
                && let Some(parent) = p.parent
                && world.children(p.id).next().is_none()
            {
                leaves.push((parent, *id));
            }
        }
        leaves.sort_unstable();
        leaves.dedup();
        let mut numbers: Vec<(ProviderId, u32)> = Vec::new();
        let mut next_number = 0;
        for family in leaves.chunk_by(|a, b| a.0 == b.0) {
            if family.len() < 2 {
                continue;
            }
            let mut shapes: Vec<(&Provider, u32)> = Vec::new();
            for (_, id) in family {
                let Some(p) = world.provider(*id) else {
                    continue;
                };
                let number = match shapes.iter().find(|(other, _)| same_shape(p, other)) {
                    Some((_, number)) => *number,
                    None => {
                        next_number += 1;
                        shapes.push((p, next_number));
                        next_number
                    }
                };
                numbers.push((*id, number));
            }
        }
        if numbers.is_empty() {
            return;
        }
        numbers.sort_unstable();
        for (id, twin) in options.iter_mut().flatten() {
            if let Ok(at) = numbers.binary_search_by_key(&*id, |(id, _)| *id) {
                *twin = numbers[at].1;
            }
        }
    }

    /// Roots of the providers allocated from in `candidates`, ascending,
    /// each once.
    fn roots_of(
        &self,
        candidates: &[AllocationRequest],
        amounts: &[(ProviderId, ClassId, i64)],
    ) -> Vec<ProviderId> {
        let mut roots: Vec<ProviderId> = candidates
            .iter()
            .flat_map(|candidate| providers_of(&amounts[candidate.allocations.clone()]))
            .filter_map(|id| self.provider(id).map(|p| p.root))
            .collect();
        roots.sort_unstable();
        roots.dedup();
        roots
    }

    /// Appends an assignment's allocations and mappings to the shared
    /// storage, and returns their ranges.
    fn render(
        &self,
        chosen: &[ProviderId],
        amounts: &mut Vec<(ProviderId, ClassId, i64)>,
        mapped: &mut Vec<(usize, ProviderId)>,
    ) -> AllocationRequest {
        let start = amounts.len();
        let mapped_start = mapped.len();
        for (slot, provider) in self.slots.iter().zip(chosen) {
            for (class, amount) in &slot.resources {
                amounts.push((*provider, *class, *amount));
            }
            mapped.push((self.suffix_of_group[slot.group], *provider));
        }
        amounts[start..].sort_unstable_by_key(|(provider, class, _)| (*provider, *class));
        // Amounts of one class from one provider are summed.
        let mut end = start;
        for next in start..amounts.len() {
            let entry = amounts[next];
            if end > start && amounts[end - 1].0 == entry.0 && amounts[end - 1].1 == entry.1 {
                amounts[end - 1].2 += entry.2;
            } else {
                amounts[end] = entry;
                end += 1;
            }
        }
        amounts.truncate(end);
        mapped[mapped_start..].sort_unstable();
        let mut mapped_end = mapped_start;
        for next in mapped_start..mapped.len() {
            let entry = mapped[next];
            if mapped_end == mapped_start || mapped[mapped_end - 1] != entry {
                mapped[mapped_end] = entry;
                mapped_end += 1;
            }
        }
        mapped.truncate(mapped_end);
        AllocationRequest {
            allocations: start..end,
            mappings: mapped_start..mapped_end,
        }
    }

    /// Before 1.29: no two providers of one tree give resources.
    fn one_provider_per_tree(&self, chosen: &[ProviderId]) -> bool {
        let mut seen: Vec<(ProviderId, ProviderId)> = Vec::with_capacity(chosen.len());
        for (slot, provider) in self.slots.iter().zip(chosen) {
            if slot.resources.is_empty() {
                continue;
            }
            let Some(root) = self.provider(*provider).map(|p| p.root) else {
                continue;
            };
            if seen.iter().any(|(id, r)| *r == root && id != provider) {
                return false;
            }
            seen.push((*provider, root));
        }
        true
    }
}

/// True when two providers are interchangeable for every rule: same
/// inventories (and usage of each), traits and aggregates.
fn same_shape(a: &Provider, b: &Provider) -> bool {
    a.parent == b.parent
        && a.capacities.len() == b.capacities.len()
        && a.capacities
            .iter()
            .zip(b.capacities.iter())
            .all(|(ca, cb)| {
                let (la, lb) = (&ca.limits, &cb.limits);
                ca.class == cb.class
                    && la.total == lb.total
                    && la.reserved == lb.reserved
                    && la.min_unit == lb.min_unit
                    && la.max_unit == lb.max_unit
                    && la.step_size == lb.step_size
                    && la.allocation_ratio.to_bits() == lb.allocation_ratio.to_bits()
                    && ca.used == cb.used
            })
        && a.traits == b.traits
        && a.aggregates == b.aggregates
}

/// A resumable depth-first search over the slots for one anchor.
struct Search<'p> {
    plan: &'p Plan<'p>,
    /// Per slot: `(provider, twin number)` under the current anchor.
    options: Vec<Vec<(ProviderId, u32)>>,
    /// The anchor's tree (scratch for `options_at`).
    tree: Vec<&'p Provider>,
    /// Next option to try, per slot.
    cursor: Vec<usize>,
    chosen: Vec<ProviderId>,
    /// `(provider, class, amount)` taken so far; `marks[i]` is its length
    /// before slot `i` was chosen.
    load: Vec<(ProviderId, ClassId, i64)>,
    marks: Vec<usize>,
    at_leaf: bool,
    done: bool,
    /// Complete assignments found so far, and the count when each chosen
    /// provider was pushed.
    leaves: u64,
    leaves_at_push: Vec<(u64, u32)>,
    /// Per depth: twin numbers whose choice at this node led nowhere; a
    /// twin of one, untouched by the prefix, would lead nowhere either.
    dead: Vec<Vec<u32>>,
    /// Scratch for the `same_subtree` checks.
    members: Vec<ProviderId>,
}

impl<'p> Search<'p> {
    fn new(plan: &'p Plan<'p>) -> Search<'p> {
        let count = plan.slots.len();
        Search {
            plan,
            options: vec![Vec::new(); count],
            tree: Vec::new(),
            cursor: vec![0; count],
            chosen: Vec::with_capacity(count),
            load: Vec::new(),
            marks: Vec::with_capacity(count),
            at_leaf: false,
            done: true,
            leaves: 0,
            leaves_at_push: Vec::with_capacity(count),
            dead: vec![Vec::new(); count],
            members: Vec::new(),
        }
    }

    /// Starts over on `anchor`, keeping the buffers; false when some slot
    /// has no option there.
    fn reset(&mut self, anchor: ProviderId) -> bool {
        let plan = self.plan;
        self.cursor.iter_mut().for_each(|c| *c = 0);
        self.chosen.clear();
        self.load.clear();
        self.marks.clear();
        self.leaves_at_push.clear();
        self.dead.iter_mut().for_each(Vec::clear);
        self.at_leaf = false;
        let viable = plan.options_at(anchor, &mut self.options, &mut self.tree);
        self.done = !viable || self.options.is_empty();
        viable
    }

    /// Moves to the next complete assignment (in `chosen`); false when
    /// there is none left.
    fn advance(&mut self) -> bool {
        if self.at_leaf {
            self.at_leaf = false;
            self.pop();
        }
        while !self.done {
            let depth = self.chosen.len();
            if depth == self.options.len() {
                self.at_leaf = true;
                self.leaves += 1;
                return true;
            }
            let cursor = self.cursor[depth];
            if cursor >= self.options[depth].len() {
                self.cursor[depth] = 0;
                if depth == 0 {
                    self.done = true;
                } else {
                    self.pop();
                }
                continue;
            }
            self.cursor[depth] = cursor + 1;
            let (provider, twin) = self.options[depth][cursor];
            let fresh = !self.chosen.contains(&provider);
            if fresh && twin != NO_TWIN && self.dead[depth].contains(&twin) {
                continue;
            }
            if self.try_push(provider, twin) {
                if let Some(next) = self.dead.get_mut(depth + 1) {
                    next.clear();
                }
            } else if fresh && twin != NO_TWIN {
                self.dead[depth].push(twin);
            }
        }
        false
    }

    fn pop(&mut self) {
        let Some(provider) = self.chosen.pop() else {
            return;
        };
        if let Some(mark) = self.marks.pop() {
            self.load.truncate(mark);
        }
        let depth = self.chosen.len();
        if let Some((leaves, twin)) = self.leaves_at_push.pop()
            && leaves == self.leaves
            && twin != NO_TWIN
            && !self.chosen.contains(&provider)
        {
            self.dead[depth].push(twin);
        }
    }

    /// Chooses `provider` for the next slot if the partial assignment stays
    /// valid.
    fn try_push(&mut self, provider_id: ProviderId, twin: u32) -> bool {
        let plan = self.plan;
        let index = self.chosen.len();
        let slot = &plan.slots[index];
        if slot.granular
            && plan.request.group_policy == GroupPolicy::Isolate
            && plan
                .slots
                .iter()
                .zip(&self.chosen)
                .any(|(other, chosen)| other.granular && *chosen == provider_id)
        {
            return false;
        }
        let mark = self.load.len();
        for (class, amount) in &slot.resources {
            let before: i64 = self.load[..mark]
                .iter()
                .filter(|(p, c, _)| *p == provider_id && c == class)
                .map(|(_, _, taken)| taken)
                .sum();
            if before > 0 {
                let total = before + amount;
                let fits = plan
                    .provider(provider_id)
                    .and_then(|p| p.limits(*class).map(|limits| (p, limits)))
                    .is_some_and(|(p, limits)| {
                        limits.has_room(p.used(*class), total) && total <= limits.max_unit
                    });
                if !fits {
                    self.load.truncate(mark);
                    return false;
                }
            }
            self.load.push((provider_id, *class, *amount));
        }
        self.chosen.push(provider_id);
        self.marks.push(mark);
        self.leaves_at_push.push((self.leaves, twin));
        if !self.still_valid(slot) {
            self.chosen.pop();
            self.marks.pop();
            self.leaves_at_push.pop();
            self.load.truncate(mark);
            return false;
        }
        true
    }

    fn still_valid(&mut self, slot: &Slot<'_>) -> bool {
        let plan = self.plan;
        if let Some(all_of) = slot.collective_traits {
            let satisfied = all_of.iter().all(|any| {
                plan.slots.iter().zip(&self.chosen).any(|(other, id)| {
                    other.group == slot.group
                        && plan
                            .provider(*id)
                            .is_some_and(|p| any.iter().any(|t| p.traits.contains(t)))
                })
            });
            if !satisfied {
                return false;
            }
        }
        for check in &slot.subtree_checks {
            let groups = &plan.subtrees[*check];
            self.members.clear();
            self.members.extend(
                plan.slots
                    .iter()
                    .zip(&self.chosen)
                    .filter(|(other, _)| groups.contains(&other.group))
                    .map(|(_, id)| *id),
            );
            self.members.sort_unstable();
            self.members.dedup();
            if !same_subtree(plan.context.world, &self.members) {
                return false;
            }
        }
        true
    }
}

/// True when one of `providers` is an ancestor-or-self of all the others.
pub(crate) fn same_subtree(world: &World, providers: &[ProviderId]) -> bool {
    if providers.len() <= 1 {
        return true;
    }
    providers.iter().any(|top| {
        providers
            .iter()
            .all(|other| other == top || is_ancestor(world, *top, *other))
    })
}

fn is_ancestor(world: &World, ancestor: ProviderId, of: ProviderId) -> bool {
    let mut current = world.provider(of).and_then(|p| p.parent);
    let mut steps = 0;
    while let Some(id) = current {
        if id == ancestor {
            return true;
        }
        steps += 1;
        if steps > world.len() {
            return false;
        }
        current = world.provider(id).and_then(|p| p.parent);
    }
    false
}

/// Collects complete assignments: de-duplicates, applies the pre-1.29
/// filter and counts against the caps.
struct Sink<'p> {
    plan: &'p Plan<'p>,
    max_candidates: Option<usize>,
    stop_at: Option<usize>,
    /// Distinct answers so far, before the pre-1.29 filter (what
    /// `max_candidates` counts).
    produced: usize,
    /// Assignments made only of sharing providers, which other anchors may
    /// reach again; any other assignment belongs to one anchor only.
    seen: HashSet<Vec<ProviderId>>,
    kept: Vec<AllocationRequest>,
    /// The storage of the kept requests' ranges.
    amounts: Vec<(ProviderId, ClassId, i64)>,
    mapped: Vec<(usize, ProviderId)>,
}

impl Sink<'_> {
    /// Takes one assignment; true when generation should stop.
    fn accept(&mut self, chosen: &[ProviderId]) -> bool {
        let plan = self.plan;
        if plan.any_sharing
            && chosen.iter().all(|id| plan.context.sharing.contains(id))
            && !self.seen.insert(chosen.to_vec())
        {
            return false;
        }
        self.produced += 1;
        let nested_filter = !plan.request.nested_aware && plan.context.has_trees;
        if !nested_filter || plan.one_provider_per_tree(chosen) {
            let request = plan.render(chosen, &mut self.amounts, &mut self.mapped);
            self.kept.push(request);
        }
        self.full()
    }

    fn full(&self) -> bool {
        self.max_candidates.is_some_and(|max| self.produced >= max)
            || self.stop_at.is_some_and(|limit| self.kept.len() >= limit)
    }
}
