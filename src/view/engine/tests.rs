//! Rule-by-rule tests of the engine, and a property test against a
//! brute-force enumeration written straight from upstream's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use uuid::Uuid;

use super::generate;
use crate::config::GenerationStrategy;
use crate::domain::capacity::Limits;
use crate::view::request::{
    AggregateFilter, AllocationRequest, CandidateRequest, Candidates, EngineOptions, GroupPolicy,
    RequestGroup, TraitFilter,
};
use crate::view::world::{AggregateId, Capacities, ClassId, Provider, ProviderId, TraitId, World};

const VCPU: ClassId = 1;
const MEMORY: ClassId = 2;
const DISK: ClassId = 3;
const VF: ClassId = 4;
const SHARES: TraitId = 100;
const T1: TraitId = 101;
const T2: TraitId = 102;
const T3: TraitId = 103;
const AGG1: AggregateId = 1;
const AGG2: AggregateId = 2;

fn limits(total: i64, max_unit: i64) -> Limits {
    Limits {
        total,
        reserved: 0,
        min_unit: 1,
        max_unit,
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

/// A provider spec: id, parent, `(class, total, used)`, traits, aggregates.
struct Spec<'a> {
    id: ProviderId,
    parent: Option<ProviderId>,
    inventories: &'a [(ClassId, i64, i64)],
    traits: &'a [TraitId],
    aggregates: &'a [AggregateId],
}

fn add(world: &mut World, spec: Spec<'_>) {
    let root = spec
        .parent
        .and_then(|parent| world.provider(parent).map(|p| p.root))
        .unwrap_or(spec.id);
    world.upsert_provider(Provider {
        id: spec.id,
        uuid: Uuid::from_u128(spec.id as u128),
        generation: 0,
        parent: spec.parent,
        root,
        capacities: Capacities::new(
            spec.inventories
                .iter()
                .map(|(class, total, _)| (*class, limits(*total, *total))),
            spec.inventories
                .iter()
                .map(|(class, _, used)| (*class, *used)),
        ),
        traits: spec.traits.iter().copied().collect(),
        aggregates: spec.aggregates.iter().copied().collect(),
    });
}

fn provider(world: &mut World, id: ProviderId, parent: Option<ProviderId>, inv: &[(ClassId, i64)]) {
    let inventories: Vec<(ClassId, i64, i64)> = inv.iter().map(|(c, t)| (*c, *t, 0)).collect();
    add(
        world,
        Spec {
            id,
            parent,
            inventories: &inventories,
            traits: &[],
            aggregates: &[],
        },
    );
}

fn new_world() -> World {
    let mut world = World::new();
    world.set_trait(SHARES, "MISC_SHARES_VIA_AGGREGATE");
    world.set_trait(T1, "CUSTOM_T1");
    world.set_trait(T2, "CUSTOM_T2");
    world.set_trait(T3, "CUSTOM_T3");
    world
}

fn edit(world: &mut World, id: ProviderId, change: impl FnOnce(&mut Provider)) {
    if let Some(mut provider) = world.provider(id).cloned() {
        change(&mut provider);
        world.upsert_provider(provider);
    }
}

fn group(suffix: Option<&str>, resources: &[(ClassId, i64)]) -> RequestGroup {
    RequestGroup {
        suffix: suffix.map(str::to_owned),
        resources: resources.to_vec(),
        ..RequestGroup::default()
    }
}

fn required(traits: &[TraitId]) -> TraitFilter {
    TraitFilter {
        all_of: traits.iter().map(|t| BTreeSet::from([*t])).collect(),
        forbidden: BTreeSet::new(),
    }
}

fn request(groups: Vec<RequestGroup>) -> CandidateRequest {
    CandidateRequest {
        groups,
        nested_aware: true,
        ..CandidateRequest::default()
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        randomize: false,
        max_candidates: None,
        strategy: GenerationStrategy::DepthFirst,
    }
}

fn run(world: &World, request: &CandidateRequest) -> Candidates {
    generate(world, request, &options())
}

fn alloc(pairs: &[(ProviderId, ClassId, i64)]) -> BTreeMap<ProviderId, BTreeMap<ClassId, i64>> {
    let mut out: BTreeMap<ProviderId, BTreeMap<ClassId, i64>> = BTreeMap::new();
    for (p, c, a) in pairs {
        *out.entry(*p).or_default().entry(*c).or_insert(0) += a;
    }
    out
}

fn allocations(c: &Candidates) -> Vec<BTreeMap<ProviderId, BTreeMap<ClassId, i64>>> {
    c.allocation_requests
        .iter()
        .map(|r| c.allocation_map(r))
        .collect()
}

#[test]
fn flat_providers_need_capacity_and_unit_constraints() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 8), (MEMORY, 1024)]);
    provider(&mut world, 2, None, &[(VCPU, 1), (MEMORY, 1024)]);
    add(
        &mut world,
        Spec {
            id: 3,
            parent: None,
            inventories: &[(VCPU, 8, 7), (MEMORY, 1024, 0)],
            traits: &[],
            aggregates: &[],
        },
    );
    let answer = run(
        &world,
        &request(vec![group(None, &[(VCPU, 2), (MEMORY, 512)])]),
    );
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(1, VCPU, 2), (1, MEMORY, 512)])]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([1]));
    assert_eq!(
        answer.mapping_map(&answer.allocation_requests[0]),
        BTreeMap::from([(String::new(), BTreeSet::from([1]))])
    );
}

#[test]
fn unsuffixed_group_spans_a_tree_one_provider_per_class() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 8)]);
    provider(&mut world, 2, Some(1), &[(VF, 4)]);
    provider(&mut world, 3, Some(1), &[(VF, 4)]);
    provider(&mut world, 4, Some(1), &[]);
    let answer = run(&world, &request(vec![group(None, &[(VCPU, 1), (VF, 2)])]));
    assert_eq!(
        allocations(&answer),
        vec![
            alloc(&[(1, VCPU, 1), (2, VF, 2)]),
            alloc(&[(1, VCPU, 1), (3, VF, 2)])
        ]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([1, 2, 3, 4]));
    // A class never splits across providers.
    let answer = run(&world, &request(vec![group(None, &[(VF, 6)])]));
    assert!(answer.allocation_requests.is_empty());
    assert!(answer.summary_providers.is_empty());
}

#[test]
fn sharing_providers_serve_trees_sharing_an_aggregate() {
    let mut world = new_world();
    add(
        &mut world,
        Spec {
            id: 1,
            parent: None,
            inventories: &[(VCPU, 8, 0)],
            traits: &[],
            aggregates: &[AGG1],
        },
    );
    provider(&mut world, 2, None, &[(VCPU, 8)]);
    add(
        &mut world,
        Spec {
            id: 3,
            parent: None,
            inventories: &[(DISK, 100, 0)],
            traits: &[SHARES],
            aggregates: &[AGG1],
        },
    );
    let answer = run(
        &world,
        &request(vec![group(None, &[(VCPU, 1), (DISK, 10)])]),
    );
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(1, VCPU, 1), (3, DISK, 10)])]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([1, 3]));
    // A granular group served by the sharing provider is one answer even
    // though two anchors reach it.
    let answer = run(&world, &request(vec![group(Some("1"), &[(DISK, 10)])]));
    assert_eq!(allocations(&answer), vec![alloc(&[(3, DISK, 10)])]);
}

#[test]
fn unsuffixed_traits_are_checked_on_the_providers_that_give_resources() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 8)]);
    provider(&mut world, 2, Some(1), &[(VF, 4)]);
    provider(&mut world, 3, Some(1), &[]);
    edit(&mut world, 2, |p| {
        p.traits.insert(T1);
    });
    edit(&mut world, 3, |p| {
        p.traits.insert(T2);
    });
    let mut g = group(None, &[(VCPU, 1), (VF, 1)]);
    g.traits = required(&[T1]);
    assert_eq!(
        run(&world, &request(vec![g.clone()]))
            .allocation_requests
            .len(),
        1
    );
    // T2 is only on a provider giving nothing.
    g.traits = required(&[T2]);
    assert!(
        run(&world, &request(vec![g.clone()]))
            .allocation_requests
            .is_empty()
    );
    // A forbidden trait on a contributing provider excludes the answer.
    g.traits = TraitFilter {
        all_of: Vec::new(),
        forbidden: BTreeSet::from([T1]),
    };
    assert!(
        run(&world, &request(vec![g.clone()]))
            .allocation_requests
            .is_empty()
    );
    // Any-of.
    g.traits = TraitFilter {
        all_of: vec![BTreeSet::from([T2, T1])],
        forbidden: BTreeSet::new(),
    };
    assert_eq!(run(&world, &request(vec![g])).allocation_requests.len(), 1);
}

#[test]
fn member_of_on_the_root_spans_the_tree_but_not_for_granular_groups() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 8)]);
    provider(&mut world, 2, Some(1), &[(VF, 4)]);
    edit(&mut world, 1, |p| {
        p.aggregates.insert(AGG1);
    });
    let member_of = AggregateFilter {
        all_of: vec![BTreeSet::from([AGG1])],
        forbidden: BTreeSet::new(),
    };
    let mut unsuffixed = group(None, &[(VF, 1)]);
    unsuffixed.member_of = member_of.clone();
    assert_eq!(
        run(&world, &request(vec![unsuffixed]))
            .allocation_requests
            .len(),
        1
    );
    let mut granular = group(Some("1"), &[(VF, 1)]);
    granular.member_of = member_of;
    assert!(
        run(&world, &request(vec![granular]))
            .allocation_requests
            .is_empty()
    );
    // A forbidden aggregate on the root excludes the whole tree.
    let mut unsuffixed = group(None, &[(VF, 1)]);
    unsuffixed.member_of = AggregateFilter {
        all_of: Vec::new(),
        forbidden: BTreeSet::from([AGG1]),
    };
    assert!(
        run(&world, &request(vec![unsuffixed]))
            .allocation_requests
            .is_empty()
    );
}

#[test]
fn group_policy_and_summed_capacity() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[]);
    provider(&mut world, 2, Some(1), &[(VF, 3)]);
    provider(&mut world, 3, Some(1), &[(VF, 3)]);
    let groups = vec![group(Some("1"), &[(VF, 1)]), group(Some("2"), &[(VF, 1)])];
    let mut none = request(groups.clone());
    assert_eq!(run(&world, &none).allocation_requests.len(), 4);
    none.group_policy = GroupPolicy::Isolate;
    assert_eq!(run(&world, &none).allocation_requests.len(), 2);
    // Two groups of 2 do not fit in 3 on one provider.
    let mut big = request(vec![
        group(Some("1"), &[(VF, 2)]),
        group(Some("2"), &[(VF, 2)]),
    ]);
    assert_eq!(run(&world, &big).allocation_requests.len(), 2);
    // The sum must respect max_unit too.
    edit(&mut world, 2, |p| {
        p.capacities.set_limits(VF, limits(10, 3));
    });
    edit(&mut world, 3, |p| {
        p.capacities.set_limits(VF, limits(10, 3));
    });
    assert_eq!(run(&world, &big).allocation_requests.len(), 2);
    big.group_policy = GroupPolicy::Isolate;
    assert_eq!(run(&world, &big).allocation_requests.len(), 2);
}

#[test]
fn same_subtree_needs_one_provider_above_the_others() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[]);
    provider(&mut world, 2, Some(1), &[]);
    provider(&mut world, 3, Some(2), &[(VF, 1)]);
    provider(&mut world, 4, Some(1), &[]);
    provider(&mut world, 5, Some(4), &[(VF, 1)]);
    edit(&mut world, 2, |p| {
        p.traits.insert(T1);
    });
    edit(&mut world, 4, |p| {
        p.traits.insert(T1);
    });
    let mut anchor = group(Some("_A"), &[]);
    anchor.traits = required(&[T1]);
    let mut req = request(vec![anchor, group(Some("_B"), &[(VF, 1)])]);
    req.same_subtree = vec![vec!["_A".to_owned(), "_B".to_owned()]];
    let answer = run(&world, &req);
    let mappings: Vec<_> = answer
        .allocation_requests
        .iter()
        .map(|r| answer.mapping_map(r))
        .collect();
    assert_eq!(
        mappings,
        vec![
            BTreeMap::from([
                ("_A".to_owned(), BTreeSet::from([2])),
                ("_B".to_owned(), BTreeSet::from([3]))
            ]),
            BTreeMap::from([
                ("_A".to_owned(), BTreeSet::from([4])),
                ("_B".to_owned(), BTreeSet::from([5]))
            ]),
        ]
    );
    // The resourceless provider is not an allocation.
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(3, VF, 1)]), alloc(&[(5, VF, 1)])]
    );
}

#[test]
fn root_traits_filter_on_the_root_of_the_tree() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[]);
    provider(&mut world, 2, Some(1), &[(VF, 1)]);
    provider(&mut world, 3, None, &[]);
    provider(&mut world, 4, Some(3), &[(VF, 1)]);
    edit(&mut world, 3, |p| {
        p.traits.insert(T1);
    });
    let mut req = request(vec![group(None, &[(VF, 1)])]);
    req.root_traits = required(&[T1]);
    assert_eq!(allocations(&run(&world, &req)), vec![alloc(&[(4, VF, 1)])]);
    req.root_traits = TraitFilter {
        all_of: Vec::new(),
        forbidden: BTreeSet::from([T1]),
    };
    assert_eq!(allocations(&run(&world, &req)), vec![alloc(&[(2, VF, 1)])]);
}

#[test]
fn before_1_29_one_provider_per_tree() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 4)]);
    provider(&mut world, 2, Some(1), &[(VF, 4)]);
    provider(&mut world, 3, None, &[(VCPU, 4), (VF, 4)]);
    let mut req = request(vec![group(None, &[(VCPU, 1), (VF, 1)])]);
    req.nested_aware = false;
    let answer = run(&world, &req);
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(3, VCPU, 1), (3, VF, 1)])]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([3]));
    // A nested provider alone is still an answer (upstream only drops
    // answers using two providers of one tree).
    let mut req = request(vec![group(None, &[(VF, 1)])]);
    req.nested_aware = false;
    let answer = run(&world, &req);
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(2, VF, 1)]), alloc(&[(3, VF, 1)])]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([2, 3]));
}

#[test]
fn in_tree_restricts_to_one_tree() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[(VCPU, 4)]);
    provider(&mut world, 2, Some(1), &[(VCPU, 4)]);
    provider(&mut world, 3, None, &[(VCPU, 4)]);
    let mut g = group(None, &[(VCPU, 1)]);
    g.in_tree = Some(2);
    assert_eq!(
        run(&world, &request(vec![g.clone()]))
            .allocation_requests
            .len(),
        2
    );
    g.in_tree = Some(99);
    assert!(
        run(&world, &request(vec![g]))
            .allocation_requests
            .is_empty()
    );
}

#[test]
fn limit_and_max_candidates_cut_and_strategies_order() {
    let mut world = new_world();
    for root in [1, 10] {
        provider(&mut world, root, None, &[]);
        for child in 1..=3 {
            provider(&mut world, root + child, Some(root), &[(VF, 1)]);
        }
    }
    let req = request(vec![group(None, &[(VF, 1)])]);
    let all = run(&world, &req);
    assert_eq!(all.allocation_requests.len(), 6);
    let mut limited = req.clone();
    limited.limit = Some(2);
    let answer = run(&world, &limited);
    assert_eq!(
        allocations(&answer),
        vec![alloc(&[(2, VF, 1)]), alloc(&[(3, VF, 1)])]
    );
    assert_eq!(answer.summary_providers, BTreeSet::from([1, 2, 3, 4]));
    let breadth = EngineOptions {
        strategy: GenerationStrategy::BreadthFirst,
        max_candidates: Some(3),
        ..options()
    };
    let answer = generate(&world, &req, &breadth);
    assert_eq!(
        allocations(&answer),
        vec![
            alloc(&[(2, VF, 1)]),
            alloc(&[(11, VF, 1)]),
            alloc(&[(3, VF, 1)])
        ]
    );
    assert_eq!(
        answer.summary_providers,
        BTreeSet::from([1, 2, 3, 4, 10, 11, 12, 13])
    );
    let random = EngineOptions {
        randomize: true,
        ..options()
    };
    let answer = generate(&world, &limited, &random);
    assert_eq!(answer.allocation_requests.len(), 2);
}

#[test]
fn wide_identical_siblings_do_not_explode() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[]);
    for child in 2..=9 {
        provider(&mut world, child, Some(1), &[(VF, 1)]);
    }
    let groups = (1..=8)
        .map(|n| group(Some(&n.to_string()), &[(VF, 1)]))
        .collect();
    let mut req = request(groups);
    req.group_policy = GroupPolicy::Isolate;
    req.limit = Some(1000);
    let started = Instant::now();
    let answer = run(&world, &req);
    let elapsed = started.elapsed();
    eprintln!("8 wide isolate limit 1000: {elapsed:?}");
    assert_eq!(answer.allocation_requests.len(), 1000);
    assert!(elapsed < Duration::from_millis(200), "took {elapsed:?}");
}

#[test]
fn impossible_requests_on_wide_trees_fail_fast() {
    let mut world = new_world();
    provider(&mut world, 1, None, &[]);
    for child in 2..=13 {
        provider(&mut world, child, Some(1), &[(VF, 1)]);
    }
    let groups: Vec<RequestGroup> = (1..=13)
        .map(|n| group(Some(&n.to_string()), &[(VF, 1)]))
        .collect();
    for policy in [GroupPolicy::Isolate, GroupPolicy::None] {
        let mut req = request(groups.clone());
        req.group_policy = policy;
        let started = Instant::now();
        let answer = run(&world, &req);
        let elapsed = started.elapsed();
        assert!(answer.allocation_requests.is_empty());
        assert!(elapsed < Duration::from_millis(200), "took {elapsed:?}");
    }
}

#[test]
fn ten_thousand_flat_providers() {
    let mut world = new_world();
    for id in 1..=10_000 {
        add(
            &mut world,
            Spec {
                id,
                parent: None,
                inventories: &[(VCPU, 64, 0), (MEMORY, 65536, 0), (DISK, 1000, 0)],
                traits: &[T1],
                aggregates: &[AGG2],
            },
        );
    }
    let mut g = group(None, &[(VCPU, 1), (MEMORY, 512), (DISK, 10)]);
    g.traits = required(&[T1]);
    g.member_of = AggregateFilter {
        all_of: vec![BTreeSet::from([AGG2])],
        forbidden: BTreeSet::new(),
    };
    let req = request(vec![g]);
    let started = Instant::now();
    let answer = run(&world, &req);
    let elapsed = started.elapsed();
    assert_eq!(answer.allocation_requests.len(), 10_000);
    assert_eq!(answer.summary_providers.len(), 10_000);
    eprintln!("10k flat providers: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

// --- the property test ------------------------------------------------------

/// One way a group is satisfied: each provider with what it gives.
type Pick = Vec<(ProviderId, Vec<(ClassId, i64)>)>;

type Key = (
    Vec<(ProviderId, ClassId, i64)>,
    Vec<(String, Vec<ProviderId>)>,
);

fn key(candidates: &Candidates, request: &AllocationRequest) -> Key {
    (
        candidates.allocations(request).to_vec(),
        candidates
            .mapping_map(request)
            .into_iter()
            .map(|(s, ps)| (s, ps.into_iter().collect()))
            .collect(),
    )
}

fn has_all(all_of: &[BTreeSet<i32>], have: &BTreeSet<i32>) -> bool {
    all_of.iter().all(|any| !any.is_disjoint(have))
}

/// All the answers, by brute force: for every root allowed by
/// `root_traits`, every way of giving each group (or each class of the
/// unsuffixed group) a provider that may serve that root, kept when it
/// satisfies every rule.
fn reference(world: &World, request: &CandidateRequest) -> (BTreeSet<Key>, BTreeSet<ProviderId>) {
    let empty = (BTreeSet::new(), BTreeSet::new());
    if request.groups.is_empty() {
        return empty;
    }
    let mut ids: Vec<ProviderId> = world.providers().map(|p| p.id).collect();
    ids.sort_unstable();
    let get = |id: ProviderId| {
        world.provider(id).cloned().unwrap_or_else(|| Provider {
            id,
            uuid: Uuid::nil(),
            generation: 0,
            parent: None,
            root: id,
            capacities: Capacities::default(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::new(),
        })
    };
    let sharing: Vec<ProviderId> = ids
        .iter()
        .copied()
        .filter(|id| get(*id).traits.contains(&SHARES))
        .collect();
    let has_trees = ids.iter().any(|id| get(*id).parent.is_some());
    let per_class = has_trees || !sharing.is_empty();
    // Roots a sharing provider serves: those of providers sharing one of
    // its aggregates, itself included.
    let serves_by_sharing = |sp: ProviderId, anchor: ProviderId| {
        sharing.contains(&sp)
            && ids.iter().any(|m| {
                get(*m).root == anchor && !get(*m).aggregates.is_disjoint(&get(sp).aggregates)
            })
    };
    let in_aggs =
        |id: ProviderId, filter: &AggregateFilter| has_all(&filter.all_of, &get(id).aggregates);
    let bad_aggs = |id: ProviderId, filter: &AggregateFilter| {
        !filter.forbidden.is_disjoint(&get(id).aggregates)
    };
    let mut tree_roots = Vec::new();
    for g in &request.groups {
        match g.in_tree {
            Some(id) if world.provider(id).is_none() => return empty,
            Some(id) => tree_roots.push(Some(get(id).root)),
            None => tree_roots.push(None),
        }
    }
    let mut answers: BTreeSet<Key> = BTreeSet::new();
    let mut named: BTreeSet<ProviderId> = BTreeSet::new();
    for anchor in ids.iter().copied().filter(|id| get(*id).parent.is_none()) {
        if !request.root_traits.is_empty() {
            let root = get(anchor);
            if !has_all(&request.root_traits.all_of, &root.traits)
                || !request.root_traits.forbidden.is_disjoint(&root.traits)
            {
                continue;
            }
        }
        // Per group: the list of its possible picks, each a list of
        // (provider, resources given).
        let mut per_group: Vec<Vec<Pick>> = Vec::new();
        for (gi, g) in request.groups.iter().enumerate() {
            let tree_root = tree_roots[gi];
            let mut picks = Vec::new();
            if g.suffix.is_none() && per_class {
                let classes: BTreeMap<ClassId, i64> = g.resources.iter().copied().collect();
                if classes.is_empty() {
                    return empty;
                }
                let mut choices: Vec<Vec<ProviderId>> = Vec::new();
                for (class, amount) in &classes {
                    let ok: Vec<ProviderId> = ids
                        .iter()
                        .copied()
                        .filter(|p| {
                            let me = get(*p);
                            if !me.can_allocate(*class, *amount) {
                                return false;
                            }
                            let in_tree = me.root == anchor
                                && tree_root.is_none_or(|t| t == me.root)
                                && (g.member_of.all_of.is_empty()
                                    || in_aggs(*p, &g.member_of)
                                    || in_aggs(anchor, &g.member_of));
                            let shared = tree_root.is_none()
                                && serves_by_sharing(*p, anchor)
                                && (g.member_of.all_of.is_empty() || in_aggs(*p, &g.member_of));
                            (in_tree || shared)
                                && !bad_aggs(*p, &g.member_of)
                                && !bad_aggs(anchor, &g.member_of)
                        })
                        .collect();
                    choices.push(ok);
                }
                let classes: Vec<(ClassId, i64)> = classes.into_iter().collect();
                for combo in product(&choices) {
                    let mut union = BTreeSet::new();
                    let mut clean = true;
                    for p in &combo {
                        let traits = get(*p).traits;
                        clean &= g.traits.forbidden.is_disjoint(&traits);
                        union.extend(traits);
                    }
                    if clean && has_all(&g.traits.all_of, &union) {
                        picks.push(
                            combo
                                .iter()
                                .zip(&classes)
                                .map(|(p, rc)| (*p, vec![*rc]))
                                .collect(),
                        );
                    }
                }
            } else {
                let positive = !g.traits.all_of.is_empty() || !g.member_of.all_of.is_empty();
                for p in ids.iter().copied() {
                    let me = get(p);
                    let fits = if g.resources.is_empty() {
                        positive
                    } else {
                        tree_root.is_none_or(|t| t == me.root)
                            && g.resources.iter().all(|(c, a)| me.can_allocate(*c, *a))
                    };
                    let ok = fits
                        && has_all(&g.traits.all_of, &me.traits)
                        && g.traits.forbidden.is_disjoint(&me.traits)
                        && in_aggs(p, &g.member_of)
                        && !bad_aggs(p, &g.member_of)
                        && (me.root == anchor || serves_by_sharing(p, anchor));
                    if ok {
                        picks.push(vec![(p, g.resources.clone())]);
                    }
                }
            }
            per_group.push(picks);
        }
        let counts: Vec<Vec<usize>> = per_group
            .iter()
            .map(|picks| (0..picks.len()).collect())
            .collect();
        for combo in product(&counts) {
            let chosen: Vec<&Pick> = combo
                .iter()
                .enumerate()
                .map(|(gi, i)| &per_group[gi][*i])
                .collect();
            if request.group_policy == GroupPolicy::Isolate {
                let granular: Vec<ProviderId> = chosen
                    .iter()
                    .zip(&request.groups)
                    .filter(|(_, g)| g.suffix.is_some())
                    .map(|(pick, _)| pick[0].0)
                    .collect();
                let distinct: BTreeSet<ProviderId> = granular.iter().copied().collect();
                if distinct.len() != granular.len() {
                    continue;
                }
            }
            let subtree_ok = request.same_subtree.iter().all(|names| {
                let members: BTreeSet<ProviderId> = chosen
                    .iter()
                    .zip(&request.groups)
                    .filter(|(_, g)| names.contains(&g.suffix.clone().unwrap_or_default()))
                    .flat_map(|(pick, _)| pick.iter().map(|(p, _)| *p))
                    .collect();
                members.len() <= 1
                    || members.iter().any(|top| {
                        members
                            .iter()
                            .all(|m| m == top || world.ancestors(*m).contains(top))
                    })
            });
            if !subtree_ok {
                continue;
            }
            let mut total: BTreeMap<(ProviderId, ClassId), i64> = BTreeMap::new();
            let mut mappings: BTreeMap<String, BTreeSet<ProviderId>> = BTreeMap::new();
            for (pick, g) in chosen.iter().zip(&request.groups) {
                for (p, resources) in pick.iter() {
                    for (c, a) in resources {
                        *total.entry((*p, *c)).or_insert(0) += a;
                    }
                    mappings
                        .entry(g.suffix.clone().unwrap_or_default())
                        .or_default()
                        .insert(*p);
                }
            }
            let fits = total.iter().all(|((p, c), a)| {
                let me = get(*p);
                me.limits(*c)
                    .is_some_and(|l| l.has_room(me.used(*c), *a) && *a <= l.max_unit)
            });
            if !fits {
                continue;
            }
            let givers: BTreeSet<ProviderId> = total.keys().map(|(p, _)| *p).collect();
            if !request.nested_aware && has_trees {
                let roots: BTreeSet<ProviderId> = givers.iter().map(|p| get(*p).root).collect();
                if roots.len() != givers.len() {
                    continue;
                }
            }
            answers.insert((
                total.iter().map(|((p, c), a)| (*p, *c, *a)).collect(),
                mappings
                    .into_iter()
                    .map(|(s, ps)| (s, ps.into_iter().collect()))
                    .collect(),
            ));
            named.extend(givers);
        }
    }
    let summaries = if !request.nested_aware && has_trees {
        named
    } else {
        let roots: BTreeSet<ProviderId> = named.iter().map(|p| get(*p).root).collect();
        ids.iter()
            .copied()
            .filter(|id| roots.contains(&get(*id).root))
            .collect()
    };
    (answers, summaries)
}

fn product<T: Copy>(lists: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    for list in lists {
        let mut next = Vec::new();
        for prefix in &out {
            for item in list {
                let mut longer = prefix.clone();
                longer.push(*item);
                next.push(longer);
            }
        }
        out = next;
    }
    out
}

/// One provider to generate: parent index among the earlier ones of its
/// tree, `(class, total, used, max_unit)`, traits, aggregates.
type NodeSpec = (
    usize,
    Vec<(ClassId, i64, i64, i64)>,
    Vec<TraitId>,
    Vec<AggregateId>,
);

fn node() -> impl Strategy<Value = NodeSpec> {
    (
        0usize..3,
        prop::collection::vec((1..=3i32, 1..=4i64, 0..=1i64, 2..=4i64), 1..=3),
        prop::collection::vec(prop::sample::select(vec![T1, T2, T3]), 0..=2),
        prop::collection::vec(prop::sample::select(vec![AGG1, AGG2]), 0..=1),
    )
}

fn world_strategy() -> impl Strategy<Value = World> {
    (
        prop::collection::vec((prop::collection::vec(node(), 1..=3), 0..=2usize), 1..=3),
        prop::option::of(node()),
    )
        .prop_map(|(trees, sharing)| {
            // Identical siblings: copies of a tree's last node.
            let trees: Vec<Vec<NodeSpec>> = trees
                .into_iter()
                .map(|(mut tree, copies)| {
                    if tree.len() > 1
                        && let Some(last) = tree.last().cloned()
                    {
                        let parent = last.0 % (tree.len() - 1);
                        for _ in 0..copies {
                            tree.push((parent, last.1.clone(), last.2.clone(), last.3.clone()));
                        }
                    }
                    tree
                })
                .collect();
            let mut world = new_world();
            let mut next = 1;
            let mut put = |world: &mut World,
                           spec: &NodeSpec,
                           parent: Option<ProviderId>,
                           extra: &[TraitId]| {
                let id = next;
                next += 1;
                let root = parent
                    .and_then(|p| world.provider(p).map(|p| p.root))
                    .unwrap_or(id);
                let capacities = Capacities::new(
                    spec.1
                        .iter()
                        .map(|(class, total, _, max_unit)| (*class, limits(*total, *max_unit))),
                    spec.1.iter().map(|(class, _, used, _)| (*class, *used)),
                );
                world.upsert_provider(Provider {
                    id,
                    uuid: Uuid::from_u128(id as u128),
                    generation: 0,
                    parent,
                    root,
                    capacities,
                    traits: spec.2.iter().chain(extra).copied().collect(),
                    aggregates: spec.3.iter().copied().collect(),
                });
                id
            };
            for tree in &trees {
                let mut members: Vec<ProviderId> = Vec::new();
                for (i, spec) in tree.iter().enumerate() {
                    let parent = if i == 0 {
                        None
                    } else {
                        Some(members[spec.0 % i])
                    };
                    members.push(put(&mut world, spec, parent, &[]));
                }
            }
            if let Some(spec) = sharing {
                let mut spec = spec;
                if spec.3.is_empty() {
                    spec.3.push(AGG1);
                }
                put(&mut world, &spec, None, &[SHARES]);
            }
            world
        })
}

fn trait_filter() -> impl Strategy<Value = TraitFilter> {
    (
        prop::collection::vec(
            prop::collection::btree_set(prop::sample::select(vec![T1, T2, T3]), 1..=2),
            0..=1,
        ),
        prop::collection::btree_set(prop::sample::select(vec![T1, T2, T3]), 0..=1),
    )
        .prop_map(|(all_of, forbidden)| TraitFilter { all_of, forbidden })
}

fn aggregate_filter() -> impl Strategy<Value = AggregateFilter> {
    prop_oneof![
        6 => Just(AggregateFilter::default()),
        1 => prop::collection::btree_set(prop::sample::select(vec![AGG1, AGG2]), 1..=2)
            .prop_map(|any| AggregateFilter { all_of: vec![any], forbidden: BTreeSet::new() }),
        1 => prop::sample::select(vec![AGG1, AGG2])
            .prop_map(|agg| AggregateFilter { all_of: Vec::new(), forbidden: BTreeSet::from([agg]) }),
    ]
}

fn group_strategy(suffix: Option<String>) -> impl Strategy<Value = RequestGroup> {
    (
        prop_oneof![
            1 => Just(BTreeMap::new()),
            6 => prop::collection::btree_map(1..=3i32, prop_oneof![3 => Just(1i64), 1 => Just(2i64)], 1..=2),
        ],
        prop_oneof![3 => Just(TraitFilter::default()), 1 => trait_filter()],
        aggregate_filter(),
        prop::option::weighted(0.1, 1..=4i32),
    )
        .prop_map(move |(resources, traits, member_of, in_tree)| RequestGroup {
            suffix: suffix.clone(),
            resources: resources.into_iter().collect(),
            traits,
            member_of,
            in_tree,
        })
}

fn request_strategy() -> impl Strategy<Value = CandidateRequest> {
    (
        prop::option::of(group_strategy(None)),
        group_strategy(Some("_A".to_owned())),
        group_strategy(Some("_B".to_owned())),
        group_strategy(Some("_C".to_owned())),
        0usize..=3,
        any::<bool>(),
        prop::option::weighted(
            0.3,
            prop::sample::subsequence(vec!["_A", "_B", "_C"], 2..=3),
        ),
        prop_oneof![3 => Just(TraitFilter::default()), 1 => trait_filter()],
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(unsuffixed, a, b, c, granular, isolate, subtree, root_traits, nested_aware)| {
                let mut groups: Vec<RequestGroup> = unsuffixed.into_iter().collect();
                groups.extend([a, b, c].into_iter().take(granular));
                let mut same_subtree = Vec::new();
                if let Some(names) = subtree {
                    let names: Vec<String> = names
                        .into_iter()
                        .filter(|n| groups.iter().any(|g| g.suffix.as_deref() == Some(*n)))
                        .map(str::to_owned)
                        .collect();
                    if !names.is_empty() {
                        same_subtree.push(names);
                    }
                }
                CandidateRequest {
                    groups,
                    group_policy: if isolate {
                        GroupPolicy::Isolate
                    } else {
                        GroupPolicy::None
                    },
                    same_subtree,
                    root_traits: TraitFilter {
                        all_of: root_traits.all_of.into_iter().take(1).collect(),
                        forbidden: root_traits.forbidden,
                    },
                    limit: None,
                    nested_aware,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_brute_force(world in world_strategy(), request in request_strategy()) {
        let (expected, expected_summaries) = reference(&world, &request);
        for strategy in [GenerationStrategy::DepthFirst, GenerationStrategy::BreadthFirst] {
            let answer = generate(&world, &request, &EngineOptions { strategy, ..options() });
            let got: Vec<Key> = answer
                .allocation_requests
                .iter()
                .map(|r| key(&answer, r))
                .collect();
            let set: BTreeSet<Key> = got.iter().cloned().collect();
            prop_assert_eq!(set.len(), got.len(), "duplicates");
            prop_assert_eq!(&set, &expected);
            prop_assert_eq!(&answer.summary_providers, &expected_summaries);
        }
        // A limit keeps a prefix of the answers.
        if expected.len() > 1 {
            let mut limited = request.clone();
            limited.limit = Some(expected.len() - 1);
            let answer = generate(&world, &limited, &options());
            prop_assert_eq!(answer.allocation_requests.len(), expected.len() - 1);
            for candidate in &answer.allocation_requests {
                prop_assert!(expected.contains(&key(&answer, candidate)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Where the flat shape applies (one unsuffixed group, no trees, no
    /// sharing providers), the providers it admits, in id order, are the
    /// search's answers.
    #[test]
    fn the_flat_shape_admits_the_searchs_answers(world in world_strategy(), request in request_strategy()) {
        let mut request = request;
        request.groups.retain(|group| group.suffix.is_none());
        request.same_subtree.clear();
        request.limit = None;
        if let Some(shape) = super::FlatShape::of(&world, &request, &options()) {
            let mut flat = super::FlatShape::no_answers();
            if !shape.matches_nothing() {
                for id in world.roots() {
                    if world.provider(id).is_some_and(|provider| shape.admits(provider)) {
                        shape.push_answer(&mut flat, id);
                    }
                }
            }
            let searched = generate(&world, &request, &options());
            let keys = |answer: &Candidates| -> Vec<Key> {
                answer.allocation_requests.iter().map(|r| key(answer, r)).collect()
            };
            prop_assert_eq!(keys(&flat), keys(&searched));
        }
    }
}
