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
//! Each slot lists its options as `(anchor root, provider)` pairs. The
//! anchors viable for every slot are then searched one at a time, depth
//! first over the slots, pruning a partial assignment as soon as it breaks
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
use std::hash::BuildHasher;

use super::request::{
    AllocationRequest, CandidateRequest, Candidates, EngineOptions, GroupPolicy, RequestGroup,
    TraitFilter,
};
use super::world::{ClassId, Provider, ProviderId, TraitId, World};
use crate::config::GenerationStrategy;

#[cfg(test)]
mod tests;

/// Every allocation request that satisfies `request` in `world`.
pub fn generate(world: &World, request: &CandidateRequest, options: &EngineOptions) -> Candidates {
    let Some(plan) = Plan::build(world, request) else {
        return Candidates::default();
    };
    let mut rng = options.randomize.then(Rng::seeded);
    let mut anchors = plan.anchors();
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
    };
    match options.strategy {
        GenerationStrategy::DepthFirst => {
            let mut search = Search::new(&plan, 0);
            for anchor in &anchors {
                search.reset(*anchor);
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
            let mut active: Vec<Search<'_>> = anchors
                .iter()
                .map(|anchor| Search::new(&plan, *anchor))
                .collect();
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
    let mut summary_providers = BTreeSet::new();
    if old_nested {
        // Upstream keeps the summaries of providers in any answer, then cuts
        // them to the trees of the answers kept by `limit`.
        let mut named: BTreeSet<ProviderId> = BTreeSet::new();
        for candidate in &all {
            named.extend(candidate.allocations.keys().copied());
        }
        if let Some(limit) = limit
            && limit < all.len()
        {
            if let Some(rng) = rng.as_mut() {
                rng.shuffle(&mut all);
            }
            all.truncate(limit);
            let roots = plan.roots_of(&all);
            named.retain(|id| world.provider(*id).is_some_and(|p| roots.contains(&p.root)));
        }
        summary_providers = named;
    } else if !all.is_empty() {
        for root in plan.roots_of(&all) {
            if plan.context.has_trees {
                summary_providers.extend(world.subtree(root));
            } else {
                summary_providers.insert(root);
            }
        }
    }
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut all);
    }
    Candidates {
        allocation_requests: all,
        summary_providers,
    }
}

/// What every group needs to know about the world, computed once.
struct Context<'w> {
    world: &'w World,
    has_trees: bool,
    sharing: HashSet<ProviderId>,
    /// Roots each sharing provider can anchor: the roots of every provider
    /// sharing an aggregate with it (itself included).
    sharing_anchors: HashMap<ProviderId, BTreeSet<ProviderId>>,
    /// Roots allowed by `root_traits`; `None` when not filtering.
    anchor_filter: Option<HashSet<ProviderId>>,
}

impl<'w> Context<'w> {
    fn new(world: &'w World, request: &CandidateRequest) -> Option<Context<'w>> {
        let has_trees = world.providers().any(|p| p.parent.is_some());
        let sharing: HashSet<ProviderId> = match world.sharing_trait() {
            Some(trait_id) => world
                .providers()
                .filter(|p| p.traits.contains(&trait_id))
                .map(|p| p.id)
                .collect(),
            None => HashSet::new(),
        };
        let sharing_anchors = sharing
            .iter()
            .map(|id| {
                let mut roots = BTreeSet::new();
                if let Some(provider) = world.provider(*id) {
                    for aggregate in &provider.aggregates {
                        for member in world.members(*aggregate) {
                            if let Some(member) = world.provider(member) {
                                roots.insert(member.root);
                            }
                        }
                    }
                }
                (*id, roots)
            })
            .collect();
        let anchor_filter = if request.root_traits.is_empty() {
            None
        } else {
            let roots: HashSet<ProviderId> = world
                .providers()
                .filter(|p| p.parent.is_none() && traits_match(&request.root_traits, &p.traits))
                .map(|p| p.id)
                .collect();
            if roots.is_empty() {
                return None;
            }
            Some(roots)
        };
        Some(Context {
            world,
            has_trees,
            sharing,
            sharing_anchors,
            anchor_filter,
        })
    }

    fn anchor_ok(&self, root: ProviderId) -> bool {
        self.anchor_filter
            .as_ref()
            .is_none_or(|roots| roots.contains(&root))
    }

    /// Anchors other than its own root that a sharing provider serves.
    fn foreign_anchors(&self, provider: &Provider) -> impl Iterator<Item = ProviderId> + '_ {
        let own = provider.root;
        self.sharing_anchors
            .get(&provider.id)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |anchor| *anchor != own && self.anchor_ok(*anchor))
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

/// One choice to make: a provider for a whole group, or for one class of
/// the unsuffixed group.
struct Slot {
    group: usize,
    /// What the chosen provider gives.
    resources: Vec<(ClassId, i64)>,
    /// Counted by `isolate` (a suffixed group).
    granular: bool,
    /// The unsuffixed group's trait filter, checked on the union of its
    /// providers once this, its last slot, is chosen.
    collective_traits: Option<Vec<BTreeSet<TraitId>>>,
    /// `same_subtree` constraints complete once this slot is chosen.
    subtree_checks: Vec<usize>,
    /// `(anchor root, provider)`, sorted.
    options: Vec<(ProviderId, ProviderId)>,
}

impl Slot {
    fn options_for(&self, anchor: ProviderId) -> &[(ProviderId, ProviderId)] {
        let start = self.options.partition_point(|(a, _)| *a < anchor);
        let end = self.options.partition_point(|(a, _)| *a <= anchor);
        &self.options[start..end]
    }
}

struct Plan<'w> {
    context: Context<'w>,
    request: &'w CandidateRequest,
    slots: Vec<Slot>,
    /// `same_subtree` constraints as group indexes.
    subtrees: Vec<Vec<usize>>,
    suffixes: Vec<String>,
    /// Set when any answer might be reachable from more than one anchor.
    any_sharing: bool,
    /// Interchangeable providers share a number: leaves with the same
    /// parent and identical inventories, usages, traits and aggregates.
    /// Providers without a number are unlike any other.
    twins: HashMap<ProviderId, usize>,
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
            if group.suffix.is_none() && multi_path {
                let resources: BTreeMap<ClassId, i64> = group.resources.iter().copied().collect();
                if resources.is_empty() {
                    return None;
                }
                let count = resources.len();
                for (position, (class, amount)) in resources.into_iter().enumerate() {
                    let options = tree_options(&context, group, tree_root, class, amount);
                    if options.is_empty() {
                        return None;
                    }
                    let last = position + 1 == count;
                    slots.push(Slot {
                        group: index,
                        resources: vec![(class, amount)],
                        granular: false,
                        collective_traits: (last && !group.traits.all_of.is_empty())
                            .then(|| group.traits.all_of.clone()),
                        subtree_checks: Vec::new(),
                        options,
                    });
                }
            } else {
                let options = single_options(&context, group, tree_root);
                if options.is_empty() {
                    return None;
                }
                slots.push(Slot {
                    group: index,
                    resources: group.resources.clone(),
                    granular: group.suffix.is_some(),
                    collective_traits: None,
                    subtree_checks: Vec::new(),
                    options,
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
        let any_sharing = slots.iter().any(|slot| {
            slot.options
                .iter()
                .any(|(_, provider)| context.sharing.contains(provider))
        });
        let suffixes = request
            .groups
            .iter()
            .map(|group| group.suffix.clone().unwrap_or_default())
            .collect();
        let twins = twin_classes(world, &slots);
        Some(Plan {
            context,
            request,
            slots,
            subtrees,
            suffixes,
            any_sharing,
            twins,
        })
    }

    /// Anchors every slot has options for, ascending.
    fn anchors(&self) -> Vec<ProviderId> {
        let Some((first, rest)) = self.slots.split_first() else {
            return Vec::new();
        };
        let mut anchors: Vec<ProviderId> = first.options.iter().map(|(a, _)| *a).collect();
        anchors.dedup();
        anchors.retain(|anchor| {
            rest.iter()
                .all(|slot| !slot.options_for(*anchor).is_empty())
        });
        anchors
    }

    fn provider(&self, id: ProviderId) -> Option<&'w Provider> {
        self.context.world.provider(id)
    }

    /// Roots of the providers allocated from in `candidates`.
    fn roots_of(&self, candidates: &[AllocationRequest]) -> BTreeSet<ProviderId> {
        candidates
            .iter()
            .flat_map(|candidate| candidate.allocations.keys())
            .filter_map(|id| self.provider(*id).map(|p| p.root))
            .collect()
    }

    fn render(&self, chosen: &[ProviderId]) -> AllocationRequest {
        let mut answer = AllocationRequest::default();
        for (slot, provider) in self.slots.iter().zip(chosen) {
            if !slot.resources.is_empty() {
                let classes = answer.allocations.entry(*provider).or_default();
                for (class, amount) in &slot.resources {
                    *classes.entry(*class).or_insert(0) += amount;
                }
            }
            answer
                .mappings
                .entry(self.suffixes[slot.group].clone())
                .or_default()
                .insert(*provider);
        }
        answer
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

/// Numbers the providers of the options so that interchangeable ones
/// (swapping them maps every rule onto itself) share a number.
fn twin_classes(world: &World, slots: &[Slot]) -> HashMap<ProviderId, usize> {
    type Shape = (
        ProviderId,
        Vec<(ClassId, [i64; 6], u64)>,
        Vec<TraitId>,
        Vec<i32>,
    );
    let mut shapes: HashMap<Shape, usize> = HashMap::new();
    let mut twins = HashMap::new();
    for (_, id) in slots.iter().flat_map(|slot| &slot.options) {
        // Roots are told apart by their anchors: only leaves below a parent
        // can be twins. Providers without a number are unique.
        let Some(p) = world.provider(*id) else {
            continue;
        };
        let Some(parent) = p.parent else {
            continue;
        };
        if twins.contains_key(id) || world.children(p.id).next().is_some() {
            continue;
        }
        let shape: Shape = (
            parent,
            p.inventories
                .iter()
                .map(|(class, l)| {
                    (
                        *class,
                        [
                            l.total,
                            l.reserved,
                            l.min_unit,
                            l.max_unit,
                            l.step_size,
                            p.used(*class),
                        ],
                        l.allocation_ratio.to_bits(),
                    )
                })
                .collect(),
            p.traits.iter().copied().collect(),
            p.aggregates.iter().copied().collect(),
        );
        let next = shapes.len();
        let class = *shapes.entry(shape).or_insert(next);
        twins.insert(*id, class);
    }
    twins
}

/// Options of one class of the unsuffixed group when trees or sharing
/// providers exist: any provider of an anchor's tree, or a sharing provider
/// sharing an aggregate with it (upstream's `get_trees_matching_all`).
fn tree_options(
    context: &Context<'_>,
    group: &RequestGroup,
    tree_root: Option<ProviderId>,
    class: ClassId,
    amount: i64,
) -> Vec<(ProviderId, ProviderId)> {
    let world = context.world;
    let in_aggregates = |id: ProviderId| {
        world
            .provider(id)
            .is_some_and(|p| all_of_match(&group.member_of.all_of, &p.aggregates))
    };
    let clear_of_forbidden = |id: ProviderId| {
        world
            .provider(id)
            .is_some_and(|p| group.member_of.forbidden.is_disjoint(&p.aggregates))
    };
    let mut options = Vec::new();
    for provider in world.providers() {
        if !provider.can_allocate(class, amount)
            // Upstream checks each provider's forbidden traits on every
            // combination; dropping them here is the same.
            || !group.traits.forbidden.is_disjoint(&provider.traits)
        {
            continue;
        }
        let root = provider.root;
        if tree_root.is_none_or(|tree| tree == root)
            && context.anchor_ok(root)
            // An aggregate on the root spans the whole tree.
            && (group.member_of.all_of.is_empty() || in_aggregates(provider.id) || in_aggregates(root))
            && clear_of_forbidden(provider.id)
            && clear_of_forbidden(root)
        {
            options.push((root, provider.id));
        }
        if tree_root.is_none()
            && context.sharing.contains(&provider.id)
            && (group.member_of.all_of.is_empty() || in_aggregates(provider.id))
            && clear_of_forbidden(provider.id)
        {
            for anchor in context.foreign_anchors(provider) {
                if clear_of_forbidden(anchor) {
                    options.push((anchor, provider.id));
                }
            }
        }
    }
    options.sort_unstable();
    options.dedup();
    options
}

/// Options of a group satisfied by one provider (upstream's
/// `get_provider_ids_matching` and `_alloc_candidates_single_provider`).
fn single_options(
    context: &Context<'_>,
    group: &RequestGroup,
    tree_root: Option<ProviderId>,
) -> Vec<(ProviderId, ProviderId)> {
    // Upstream's resourceless lookup only keeps providers found by a
    // positive filter (required traits or member_of), and ignores in_tree.
    if group.resources.is_empty()
        && group.traits.all_of.is_empty()
        && group.member_of.all_of.is_empty()
    {
        return Vec::new();
    }
    let mut options = Vec::new();
    for provider in context.world.providers() {
        let fits = group.resources.is_empty()
            || (tree_root.is_none_or(|tree| tree == provider.root)
                && group
                    .resources
                    .iter()
                    .all(|(class, amount)| provider.can_allocate(*class, *amount)));
        if !fits
            || !traits_match(&group.traits, &provider.traits)
            || !all_of_match(&group.member_of.all_of, &provider.aggregates)
            || !group.member_of.forbidden.is_disjoint(&provider.aggregates)
        {
            continue;
        }
        if context.anchor_ok(provider.root) {
            options.push((provider.root, provider.id));
        }
        if context.sharing.contains(&provider.id) {
            for anchor in context.foreign_anchors(provider) {
                options.push((anchor, provider.id));
            }
        }
    }
    options.sort_unstable();
    options
}

/// A resumable depth-first search over the slots for one anchor.
struct Search<'p> {
    plan: &'p Plan<'p>,
    options: Vec<&'p [(ProviderId, ProviderId)]>,
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
    leaves_at_push: Vec<u64>,
    /// Per depth: twin numbers whose choice at this node led nowhere; a
    /// twin of one, untouched by the prefix, would lead nowhere either.
    dead: Vec<Vec<usize>>,
}

impl<'p> Search<'p> {
    fn new(plan: &'p Plan<'p>, anchor: ProviderId) -> Search<'p> {
        let count = plan.slots.len();
        Search {
            plan,
            options: plan
                .slots
                .iter()
                .map(|slot| slot.options_for(anchor))
                .collect(),
            cursor: vec![0; count],
            chosen: Vec::with_capacity(count),
            load: Vec::new(),
            marks: Vec::with_capacity(count),
            at_leaf: false,
            done: count == 0,
            leaves: 0,
            leaves_at_push: Vec::with_capacity(count),
            dead: vec![Vec::new(); count],
        }
    }

    /// Starts over on another anchor, keeping the buffers.
    fn reset(&mut self, anchor: ProviderId) {
        let plan = self.plan;
        for (options, slot) in self.options.iter_mut().zip(&plan.slots) {
            *options = slot.options_for(anchor);
        }
        self.cursor.iter_mut().for_each(|c| *c = 0);
        self.chosen.clear();
        self.load.clear();
        self.marks.clear();
        self.leaves_at_push.clear();
        self.dead.iter_mut().for_each(Vec::clear);
        self.at_leaf = false;
        self.done = self.options.is_empty();
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
            let provider = self.options[depth][cursor].1;
            let twin = self.plan.twins.get(&provider).copied();
            let fresh = !self.chosen.contains(&provider);
            if fresh && twin.is_some_and(|twin| self.dead[depth].contains(&twin)) {
                continue;
            }
            if self.try_push(provider) {
                if let Some(next) = self.dead.get_mut(depth + 1) {
                    next.clear();
                }
            } else if fresh && let Some(twin) = twin {
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
        if self.leaves_at_push.pop() == Some(self.leaves)
            && !self.chosen.contains(&provider)
            && let Some(twin) = self.plan.twins.get(&provider)
        {
            self.dead[depth].push(*twin);
        }
    }

    /// Chooses `provider` for the next slot if the partial assignment stays
    /// valid.
    fn try_push(&mut self, provider_id: ProviderId) -> bool {
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
                    .and_then(|p| p.inventories.get(class).map(|limits| (p, limits)))
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
        self.leaves_at_push.push(self.leaves);
        if !self.still_valid(slot) {
            self.chosen.pop();
            self.marks.pop();
            self.leaves_at_push.pop();
            self.load.truncate(mark);
            return false;
        }
        true
    }

    fn still_valid(&self, slot: &Slot) -> bool {
        let plan = self.plan;
        if let Some(all_of) = &slot.collective_traits {
            let mine: Vec<&Provider> = plan
                .slots
                .iter()
                .zip(&self.chosen)
                .filter(|(other, _)| other.group == slot.group)
                .filter_map(|(_, id)| plan.provider(*id))
                .collect();
            let satisfied = all_of.iter().all(|any| {
                mine.iter()
                    .any(|p| any.iter().any(|t| p.traits.contains(t)))
            });
            if !satisfied {
                return false;
            }
        }
        slot.subtree_checks.iter().all(|check| {
            let groups = &plan.subtrees[*check];
            let mut providers: Vec<ProviderId> = plan
                .slots
                .iter()
                .zip(&self.chosen)
                .filter(|(other, _)| groups.contains(&other.group))
                .map(|(_, id)| *id)
                .collect();
            providers.sort_unstable();
            providers.dedup();
            same_subtree(plan.context.world, &providers)
        })
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
            self.kept.push(plan.render(chosen));
        }
        self.full()
    }

    fn full(&self) -> bool {
        self.max_candidates.is_some_and(|max| self.produced >= max)
            || self.stop_at.is_some_and(|limit| self.kept.len() >= limit)
    }
}

/// A small splitmix64 generator seeded from the process's hash keys: enough
/// to shuffle candidates, no dependency needed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        Rng(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
