//! Where `POST /claims` puts its consumers: candidates from the engine,
//! ranked (`rank`) under the affinity rules (`affinity`), one consumer
//! after another, each on a world in which the previous ones' usage is
//! counted. Pure: the claim itself is written by `domain::claims`.

use std::collections::BTreeSet;

use super::affinity::Constraints;
use super::engine::{self, FlatShape};
use super::rank::{self, Ask, Ranked, Ranking, Weigher};
use super::request::{
    AllocationRequest, CandidateRequest, Candidates, EngineOptions, providers_of,
};
use super::rng::Rng;
use super::world::{AggregateId, ClassId, ProviderId, World};

/// How to rank and what to return besides the chosen candidate.
#[derive(Clone, Copy, Debug)]
pub struct PlacementAsk<'a> {
    pub weighers: &'a [Weigher],
    /// The query's `limit`: how many ranked hosts are considered.
    pub limit: Option<usize>,
    pub alternates: usize,
    /// Alternates only on hosts sharing one of these aggregates with the
    /// chosen host (`None`: any host).
    pub alternates_within: Option<&'a BTreeSet<AggregateId>>,
    pub shuffle_best: bool,
    pub host_subset_size: usize,
}

/// One consumer's place: the candidates it was chosen among, the chosen
/// one and the alternates (indexes into `candidates`).
#[derive(Clone, Debug)]
pub struct Placement {
    pub candidates: Candidates,
    pub chosen: Ranked,
    pub alternates: Vec<Ranked>,
}

impl Placement {
    /// The chosen candidate's `(provider, class, amount)`s.
    pub fn claimed(&self) -> &[(ProviderId, ClassId, i64)] {
        self.candidates
            .allocations(&self.candidates.allocation_requests[self.chosen.index])
    }
}

/// Why a consumer could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// No candidate fits the consumer numbered so (from 0).
    NothingFits(usize),
    /// Candidates fit, but the affinity rules refuse every one.
    Affinity(usize),
}

/// Places `consumers` consumers in order, all or none.
pub fn place(
    world: &World,
    request: &CandidateRequest,
    options: &EngineOptions,
    ask: &PlacementAsk<'_>,
    constraints: &Constraints,
    consumers: usize,
    rng: &mut Rng,
) -> Result<Vec<Placement>, Shortfall> {
    let mut constraints = constraints.clone();
    // A copy of the view only when a later consumer must see an earlier
    // one's usage.
    let mut scratch: Option<World> = None;
    let mut placements = Vec::with_capacity(consumers);
    for consumer in 0..consumers {
        let current = scratch.as_ref().unwrap_or(world);
        let (candidates, ranking) = ranked(current, request, options, ask, &constraints, rng);
        let Some((chosen, rest)) = ranking.ranked.split_first() else {
            return Err(if ranking.refused_by_affinity > 0 {
                Shortfall::Affinity(consumer)
            } else {
                Shortfall::NothingFits(consumer)
            });
        };
        let alternates: Vec<Ranked> = rest
            .iter()
            .filter(|other| {
                ask.alternates_within
                    .is_none_or(|within| share_aggregate(current, chosen.host, other.host, within))
            })
            .take(ask.alternates)
            .copied()
            .collect();
        constraints.record(chosen.host);
        let placement = Placement {
            chosen: *chosen,
            alternates,
            candidates,
        };
        if consumer + 1 < consumers {
            let next = scratch.get_or_insert_with(|| world.clone());
            for (provider, class, amount) in placement.claimed() {
                next.add_usage(*provider, *class, *amount);
            }
        }
        placements.push(placement);
    }
    Ok(placements)
}

/// Every candidate of `request` (its `limit` set aside), ranked: the best
/// of each host, as many as `ask` considers.
fn ranked(
    world: &World,
    request: &CandidateRequest,
    options: &EngineOptions,
    ask: &PlacementAsk<'_>,
    constraints: &Constraints,
    rng: &mut Rng,
) -> (Candidates, Ranking) {
    let considered = request.limit.unwrap_or(usize::MAX);
    // Filtering alternates by aggregate may skip any number of hosts.
    let count = if ask.alternates_within.is_some() {
        considered
    } else {
        considered.min(ask.alternates.saturating_add(1))
    };
    let ask = Ask {
        weighers: ask.weighers,
        constraints,
        count,
        distinct_hosts: true,
        shuffle_best: ask.shuffle_best,
        host_subset_size: ask.host_subset_size,
    };
    rank_everything(world, request, options, &ask, rng)
}

/// Every candidate of `request`, its `limit` set aside, ranked by `ask`:
/// fused with generation when the shape allows (`rank::rank_flat`).
fn rank_everything(
    world: &World,
    request: &CandidateRequest,
    options: &EngineOptions,
    ask: &Ask<'_>,
    rng: &mut Rng,
) -> (Candidates, Ranking) {
    let unlimited = CandidateRequest {
        limit: None,
        ..request.clone()
    };
    if let Some(shape) = FlatShape::of(world, &unlimited, options) {
        return rank::rank_flat(world, &shape, ask, rng);
    }
    let candidates = engine::generate(world, &unlimited, options);
    let ranking = rank::rank(world, &candidates, ask, rng);
    (candidates, ranking)
}

/// `dry_run`: every candidate ranked (not one per host), the best
/// `limit` of them.
pub fn preview(
    world: &World,
    request: &CandidateRequest,
    options: &EngineOptions,
    ask: &PlacementAsk<'_>,
    constraints: &Constraints,
    rng: &mut Rng,
) -> (Candidates, Ranking) {
    let ask = Ask {
        weighers: ask.weighers,
        constraints,
        count: request.limit.unwrap_or(usize::MAX),
        distinct_hosts: false,
        shuffle_best: ask.shuffle_best,
        host_subset_size: ask.host_subset_size,
    };
    rank_everything(world, request, options, &ask, rng)
}

/// True when hosts `a` and `b` (root providers) are both in one of
/// `within`.
fn share_aggregate(
    world: &World,
    a: ProviderId,
    b: ProviderId,
    within: &BTreeSet<AggregateId>,
) -> bool {
    let aggregates = |id| world.provider(id).map(|provider| &provider.aggregates);
    match (aggregates(a), aggregates(b)) {
        (Some(of_a), Some(of_b)) => within
            .iter()
            .any(|aggregate| of_a.contains(aggregate) && of_b.contains(aggregate)),
        _ => false,
    }
}

/// The candidates numbered `picks`, in that order, with the providers of
/// their trees (and any sharing provider they use) to summarise.
pub fn subset(world: &World, candidates: &Candidates, picks: &[usize]) -> Candidates {
    let mut picked = Candidates {
        suffixes: candidates.suffixes.clone(),
        ..Candidates::default()
    };
    for index in picks {
        let Some(request) = candidates.allocation_requests.get(*index) else {
            continue;
        };
        let allocations = candidates.allocations(request);
        let mappings = candidates.mappings(request);
        let start = (picked.amounts.len(), picked.mapped.len());
        picked.amounts.extend_from_slice(allocations);
        picked.mapped.extend_from_slice(mappings);
        picked.allocation_requests.push(AllocationRequest {
            allocations: start.0..picked.amounts.len(),
            mappings: start.1..picked.mapped.len(),
        });
        for provider in providers_of(allocations) {
            picked.summary_providers.insert(provider);
            if let Some(found) = world.provider(provider) {
                picked.summary_providers.extend(world.subtree(found.root));
            }
        }
    }
    picked
}
