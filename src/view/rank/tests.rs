//! Ranking, placement and affinity against brute-force references on
//! random worlds: every candidate scored straight from the definition of
//! Nova's weighers and sorted; several consumers placed one at a time on
//! a world updated by hand.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use uuid::Uuid;

use super::{Ask, Ranked, Weigher, by_weight, rank, rank_flat};
use crate::config::GenerationStrategy;
use crate::domain::capacity::Limits;
use crate::view::affinity::{Constraints, Policy, Rules, ServerGroup};
use crate::view::engine::{FlatShape, generate};
use crate::view::placement::{self, PlacementAsk, Shortfall};
use crate::view::request::{CandidateRequest, Candidates, EngineOptions, RequestGroup};
use crate::view::rng::Rng;
use crate::view::world::{Capacities, ClassId, Provider, ProviderId, World};

const VCPU: ClassId = 1;
const MEMORY: ClassId = 2;
const DISK: ClassId = 3;

/// A host: `(vcpu total, vcpu used, memory total, memory used, disk
/// total)`, and whether it has a child provider holding its VCPU.
type HostSpec = ((i64, i64, i64, i64, i64), bool);

fn limits(total: i64) -> Limits {
    Limits {
        total,
        reserved: 0,
        min_unit: 1,
        max_unit: total.max(1),
        step_size: 1,
        allocation_ratio: 1.0,
    }
}

fn world_of(hosts: &[HostSpec]) -> World {
    let mut world = World::new();
    world.set_class(VCPU, "VCPU");
    world.set_class(MEMORY, "MEMORY_MB");
    world.set_class(DISK, "DISK_GB");
    let mut next_id = 1;
    for ((vcpu, vcpu_used, memory, memory_used, disk), nested) in hosts {
        let root = next_id;
        next_id += 1;
        let mut root_inventory = vec![(MEMORY, limits(*memory)), (DISK, limits(*disk))];
        let mut root_usage = vec![(MEMORY, (*memory_used).min(*memory))];
        if !nested {
            root_inventory.push((VCPU, limits(*vcpu)));
            root_usage.push((VCPU, (*vcpu_used).min(*vcpu)));
        }
        world.upsert_provider(Provider {
            id: root,
            uuid: Uuid::from_u128(root as u128),
            generation: 0,
            parent: None,
            root,
            capacities: Capacities::new(root_inventory, root_usage),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::from([root % 3]),
        });
        if *nested {
            let child = next_id;
            next_id += 1;
            world.upsert_provider(Provider {
                id: child,
                uuid: Uuid::from_u128(child as u128),
                generation: 0,
                parent: Some(root),
                root,
                capacities: Capacities::new(
                    [(VCPU, limits(*vcpu))],
                    [(VCPU, (*vcpu_used).min(*vcpu))],
                ),
                traits: BTreeSet::new(),
                aggregates: BTreeSet::new(),
            });
        }
    }
    world
}

fn request_for(vcpu: i64, memory: i64) -> CandidateRequest {
    CandidateRequest {
        groups: vec![RequestGroup {
            resources: vec![(VCPU, vcpu), (MEMORY, memory)],
            ..RequestGroup::default()
        }],
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

fn hosts_strategy() -> impl Strategy<Value = Vec<HostSpec>> {
    // Small ranges so that equal values, hence ties, are common.
    prop::collection::vec(
        (
            (1i64..6, 0i64..6, 1i64..5, 0i64..5, 0i64..3)
                .prop_map(|(v, vu, m, mu, d)| (v * 4, vu * 2, m * 1024, mu * 512, d * 100)),
            prop::bool::weighted(0.3),
        ),
        1..14,
    )
}

fn weighers_strategy() -> impl Strategy<Value = Vec<Weigher>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![VCPU, MEMORY, DISK]),
            prop::sample::select(vec![-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]),
        )
            .prop_map(|(class, multiplier)| Weigher { class, multiplier }),
        0..4,
    )
}

/// The host of a candidate by definition: the root of its providers
/// (no sharing providers in these worlds).
fn host(world: &World, candidates: &Candidates, index: usize) -> ProviderId {
    let request = &candidates.allocation_requests[index];
    let first = candidates.allocations(request)[0].0;
    world.provider(first).map_or(0, |p| p.root)
}

/// Free capacity by definition.
fn free(world: &World, candidates: &Candidates, index: usize, class: ClassId) -> f64 {
    let request = &candidates.allocation_requests[index];
    let of = |id: ProviderId| {
        world.provider(id).and_then(|p| {
            p.capacities
                .get(class)
                .map(|c| c.limits.capacity() - c.used as f64)
        })
    };
    let serving: Vec<f64> = candidates.providers(request).filter_map(of).collect();
    if serving.is_empty() {
        world
            .subtree(host(world, candidates, index))
            .into_iter()
            .filter_map(of)
            .sum()
    } else {
        serving.into_iter().sum()
    }
}

/// Scores every admitted candidate, sorts, keeps one per host if asked,
/// cuts at `count`.
fn reference(
    world: &World,
    candidates: &Candidates,
    weighers: &[Weigher],
    constraints: &Constraints,
    count: usize,
    distinct: bool,
) -> Vec<Ranked> {
    let admitted: Vec<usize> = (0..candidates.allocation_requests.len())
        .filter(|index| constraints.allows(host(world, candidates, *index)))
        .collect();
    let mut measures: Vec<(Vec<f64>, f64)> = weighers
        .iter()
        .map(|w| {
            (
                admitted
                    .iter()
                    .map(|i| free(world, candidates, *i, w.class))
                    .collect(),
                w.multiplier,
            )
        })
        .collect();
    if let Some(multiplier) = constraints.soft_weigher() {
        measures.push((
            admitted
                .iter()
                .map(|i| f64::from(constraints.members_on(host(world, candidates, *i))))
                .collect(),
            multiplier,
        ));
    }
    let mut all: Vec<Ranked> = admitted
        .iter()
        .enumerate()
        .map(|(position, index)| {
            let mut weight = 0.0;
            for (values, multiplier) in &measures {
                let low = values.iter().copied().fold(f64::INFINITY, f64::min);
                let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let normalised = if high > low {
                    (values[position] - low) / (high - low)
                } else {
                    0.0
                };
                weight += multiplier * normalised;
            }
            Ranked {
                index: *index,
                host: host(world, candidates, *index),
                weight,
            }
        })
        .collect();
    all.sort_by(by_weight);
    if distinct {
        let mut seen = BTreeSet::new();
        all.retain(|entry| seen.insert(entry.host));
    }
    all.truncate(count);
    all
}

fn ask<'a>(
    weighers: &'a [Weigher],
    constraints: &'a Constraints,
    count: usize,
    distinct: bool,
) -> Ask<'a> {
    Ask {
        weighers,
        constraints,
        count,
        distinct_hosts: distinct,
        shuffle_best: false,
        host_subset_size: 1,
    }
}

fn constraints_strategy() -> impl Strategy<Value = (Rules, Vec<(u128, ProviderId)>)> {
    let policy = prop::sample::select(vec![
        None,
        Some(Policy::Affinity),
        Some(Policy::AntiAffinity { max_per_host: 1 }),
        Some(Policy::AntiAffinity { max_per_host: 2 }),
        Some(Policy::SoftAffinity),
        Some(Policy::SoftAntiAffinity),
    ]);
    (
        policy,
        prop::collection::vec((1u128..6, 1i32..20), 0..6),
        prop::collection::vec(1u128..6, 0..2),
        prop::collection::vec(1u128..6, 0..2),
    )
        .prop_map(|(policy, placed, different, same)| {
            let rules = Rules {
                different_host: different.into_iter().map(Uuid::from_u128).collect(),
                same_host: same.into_iter().map(Uuid::from_u128).collect(),
                group: policy.map(|policy| ServerGroup {
                    policy,
                    members: (1..4).map(Uuid::from_u128).collect(),
                    weight_multiplier: 1.5,
                }),
            };
            (rules, placed)
        })
}

fn hosts_of(placed: &[(u128, ProviderId)]) -> HashMap<Uuid, BTreeSet<ProviderId>> {
    let mut hosts: HashMap<Uuid, BTreeSet<ProviderId>> = HashMap::new();
    for (consumer, host) in placed {
        hosts
            .entry(Uuid::from_u128(*consumer))
            .or_default()
            .insert(*host);
    }
    hosts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn ranking_equals_scoring_everything_and_sorting(
        hosts in hosts_strategy(),
        weighers in weighers_strategy(),
        count in 0usize..20,
        distinct in any::<bool>(),
        (rules, placed) in constraints_strategy(),
        amounts in (1i64..4, 256i64..1024),
    ) {
        let world = world_of(&hosts);
        let candidates = generate(&world, &request_for(amounts.0, amounts.1), &options());
        let constraints = Constraints::new(&rules, &hosts_of(&placed));
        let expected = reference(&world, &candidates, &weighers, &constraints, count, distinct);
        let got = rank(&world, &candidates, &ask(&weighers, &constraints, count, distinct), &mut Rng::from_seed(7));
        prop_assert_eq!(&got.ranked, &expected);
        // Affinity holds on every answer.
        for entry in &got.ranked {
            prop_assert!(constraints.allows(entry.host));
        }
        let refused = (0..candidates.allocation_requests.len())
            .filter(|index| !constraints.allows(host(&world, &candidates, *index)))
            .count();
        prop_assert_eq!(got.refused_by_affinity, refused);
    }

    #[test]
    fn shuffle_and_subset_pick_among_the_best(
        hosts in hosts_strategy(),
        weighers in weighers_strategy(),
        subset in 1usize..5,
        seed in any::<u64>(),
    ) {
        let world = world_of(&hosts);
        let candidates = generate(&world, &request_for(1, 256), &options());
        let constraints = Constraints::default();
        let everything = reference(&world, &candidates, &weighers, &constraints, usize::MAX, true);
        let shuffled = rank(&world, &candidates, &Ask { shuffle_best: true, ..ask(&weighers, &constraints, 3, true) }, &mut Rng::from_seed(seed));
        if let Some(best) = everything.first() {
            let first = shuffled.ranked.first().copied();
            prop_assert!(first.is_some_and(|first| first.weight == best.weight));
        }
        let picked = rank(&world, &candidates, &Ask { host_subset_size: subset, ..ask(&weighers, &constraints, 1, true) }, &mut Rng::from_seed(seed));
        if let Some(first) = picked.ranked.first() {
            let top: Vec<usize> = everything.iter().take(subset).map(|e| e.index).collect();
            prop_assert!(top.contains(&first.index));
        } else {
            prop_assert!(everything.is_empty());
        }
    }

    #[test]
    fn several_consumers_are_placed_as_one_after_another(
        hosts in hosts_strategy(),
        weighers in weighers_strategy(),
        consumers in 1usize..5,
        anti in any::<bool>(),
    ) {
        let world = world_of(&hosts);
        let request = request_for(2, 512);
        let rules = Rules {
            group: anti.then(|| ServerGroup {
                policy: Policy::AntiAffinity { max_per_host: 1 },
                members: Vec::new(),
                weight_multiplier: 1.0,
            }),
            ..Rules::default()
        };
        let constraints = Constraints::new(&rules, &HashMap::new());
        let plan = PlacementAsk {
            weighers: &weighers,
            limit: None,
            alternates: 0,
            alternates_within: None,
            shuffle_best: false,
            host_subset_size: 1,
        };
        let got = placement::place(&world, &request, &options(), &plan, &constraints, consumers, &mut Rng::from_seed(1));

        // The reference: one consumer at a time, usage added by hand.
        let mut current = world.clone();
        let mut sequential = constraints.clone();
        let mut expected = Vec::new();
        let mut shortfall = None;
        for consumer in 0..consumers {
            let candidates = generate(&current, &request, &options());
            let best = reference(&current, &candidates, &weighers, &sequential, 1, true);
            let Some(best) = best.first() else {
                let any_fit = !candidates.allocation_requests.is_empty();
                shortfall = Some(if any_fit { Shortfall::Affinity(consumer) } else { Shortfall::NothingFits(consumer) });
                break;
            };
            let chosen = candidates.allocation_map(&candidates.allocation_requests[best.index]);
            for (provider, classes) in &chosen {
                for (class, amount) in classes {
                    current.add_usage(*provider, *class, *amount);
                }
            }
            sequential.record(best.host);
            expected.push(chosen);
        }
        match (got, shortfall) {
            (Ok(placements), None) => {
                let got: Vec<_> = placements
                    .iter()
                    .map(|p| p.candidates.allocation_map(&p.candidates.allocation_requests[p.chosen.index]))
                    .collect();
                prop_assert_eq!(got, expected);
                if anti {
                    let hosts: BTreeSet<ProviderId> = placements.iter().map(|p| p.chosen.host).collect();
                    prop_assert_eq!(hosts.len(), placements.len());
                }
            }
            (Err(got), Some(expected)) => prop_assert_eq!(got, expected),
            (got, expected) => prop_assert!(false, "got {:?}, expected {:?}", got.map(|p| p.len()), expected),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Fused with generation on a flat world, ranking answers as ranking
    /// the engine's answers does: the same candidates, weights, refusals
    /// and, for a seed, the same shuffle and subset picks.
    #[test]
    fn the_flat_ranking_answers_as_ranking_the_engines_answers(
        hosts in prop::collection::vec(hosts_strategy().prop_map(|hosts| hosts[0].0), 1..30),
        weighers in weighers_strategy(),
        count in 0usize..8,
        distinct in any::<bool>(),
        shuffle_best in prop::bool::weighted(0.3),
        host_subset_size in prop::sample::select(vec![1usize, 1, 2, 4]),
        max_candidates in prop::option::of(0usize..6),
        (rules, placed) in constraints_strategy(),
        amounts in (1i64..4, 256i64..1024),
        seed in any::<u64>(),
    ) {
        let flat: Vec<HostSpec> = hosts.into_iter().map(|spec| (spec, false)).collect();
        let world = world_of(&flat);
        let request = request_for(amounts.0, amounts.1);
        let options = EngineOptions { max_candidates, ..options() };
        let constraints = Constraints::new(&rules, &hosts_of(&placed));
        let ask = Ask { shuffle_best, host_subset_size, ..ask(&weighers, &constraints, count, distinct) };

        let candidates = generate(&world, &request, &options);
        let expected = rank(&world, &candidates, &ask, &mut Rng::from_seed(seed));
        let shape = FlatShape::of(&world, &request, &options).expect("a flat world and query");
        let (fused, got) = rank_flat(&world, &shape, &ask, &mut Rng::from_seed(seed));

        prop_assert_eq!(got.refused_by_affinity, expected.refused_by_affinity);
        let answers = |candidates: &Candidates, ranking: &[Ranked]| -> Vec<_> {
            ranking
                .iter()
                .map(|entry| {
                    let request = &candidates.allocation_requests[entry.index];
                    (entry.host, entry.weight, candidates.allocation_map(request), candidates.mapping_map(request))
                })
                .collect()
        };
        prop_assert_eq!(answers(&fused, &got.ranked), answers(&candidates, &expected.ranked));
    }
}

#[test]
fn spread_prefers_free_memory_and_pack_the_fullest() {
    let world = world_of(&[
        ((8, 0, 4096, 3072, 0), false),
        ((8, 0, 4096, 0, 0), false),
        ((8, 0, 4096, 1024, 0), false),
    ]);
    let candidates = generate(&world, &request_for(1, 512), &options());
    let constraints = Constraints::default();
    let spread = [Weigher {
        class: MEMORY,
        multiplier: 1.0,
    }];
    let best = rank(
        &world,
        &candidates,
        &ask(&spread, &constraints, 3, true),
        &mut Rng::from_seed(0),
    );
    let order: Vec<ProviderId> = best.ranked.iter().map(|r| r.host).collect();
    assert_eq!(order, vec![2, 3, 1]);
    assert_eq!(best.ranked[0].weight, 1.0);
    assert_eq!(best.ranked[2].weight, 0.0);
    let pack = [Weigher {
        class: MEMORY,
        multiplier: -1.0,
    }];
    let best = rank(
        &world,
        &candidates,
        &ask(&pack, &constraints, 1, true),
        &mut Rng::from_seed(0),
    );
    assert_eq!(best.ranked[0].host, 1);
}
