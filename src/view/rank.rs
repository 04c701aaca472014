//! Ranking of allocation candidates for `POST /claims`, as Nova's
//! scheduler weighs hosts (`nova/weights.py`): each weigher's values are
//! normalised over the candidates that pass the affinity rules
//! ((x - min) / (max - min), all equal giving 0), multiplied by the
//! weigher's multiplier and summed. A pure function of the `World`, the
//! engine's `Candidates` and the rules; nothing here sorts every
//! candidate: the best `count` are found by selection.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use super::affinity::Constraints;
use smallvec::SmallVec;

use super::engine::FlatShape;
use super::request::Candidates;
use super::rng::Rng;
use super::world::{ClassId, Provider, ProviderId, TraitId, World};

/// Free capacity of one class, `(total - reserved) * allocation_ratio -
/// used`, on the providers that would serve the candidate: those of its
/// allocations holding an inventory of the class or, when none does,
/// every provider of its host's tree (Nova's RAM, CPU and disk weighers,
/// for any class).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weigher {
    pub class: ClassId,
    pub multiplier: f64,
}

/// What to rank and how many to keep.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub weighers: &'a [Weigher],
    pub constraints: &'a Constraints,
    /// How many ranked candidates to return, best first.
    pub count: usize,
    /// Keep only the best candidate of each host.
    pub distinct_hosts: bool,
    /// Put the candidates sharing the best weight first in random order
    /// (Nova's `shuffle_best_same_weighed_hosts`).
    pub shuffle_best: bool,
    /// Move a random one of the best `host_subset_size` to the front
    /// (Nova's `host_subset_size`); 1 keeps the order.
    pub host_subset_size: usize,
}

/// One ranked candidate: its index in `Candidates::allocation_requests`,
/// its host (root provider) and its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    pub index: usize,
    pub host: ProviderId,
    pub weight: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranking {
    pub ranked: Vec<Ranked>,
    /// Candidates left out by the affinity rules.
    pub refused_by_affinity: usize,
}

/// Best first; equal weights in the engine's order.
pub fn by_weight(a: &Ranked, b: &Ranked) -> Ordering {
    b.weight
        .total_cmp(&a.weight)
        .then_with(|| a.index.cmp(&b.index))
}

/// The best `ask.count` candidates.
pub fn rank(world: &World, candidates: &Candidates, ask: &Ask<'_>, rng: &mut Rng) -> Ranking {
    let soft = ask.constraints.soft_weigher();
    let measures = ask.weighers.len() + usize::from(soft.is_some());
    let multipliers: Vec<f64> = ask
        .weighers
        .iter()
        .map(|weigher| weigher.multiplier)
        .chain(soft)
        .collect();

    // Pass one: the raw values of every admitted candidate, and each
    // measure's range.
    let total = candidates.allocation_requests.len();
    let mut admitted: Vec<(usize, ProviderId)> = Vec::with_capacity(total);
    let mut raw: Vec<f64> = Vec::with_capacity(total * measures);
    let mut lowest = vec![f64::INFINITY; measures];
    let mut highest = vec![f64::NEG_INFINITY; measures];
    let mut refused_by_affinity = 0;
    let sharing = world.sharing_trait();
    // Each candidate's providers, looked up once for the host and every
    // weigher.
    let mut serving: SmallVec<[&Provider; 4]> = SmallVec::new();
    for (index, request) in candidates.allocation_requests.iter().enumerate() {
        serving.clear();
        serving.extend(
            candidates
                .providers(request)
                .filter_map(|id| world.provider(id)),
        );
        let host = host_among(&serving, sharing);
        if !ask.constraints.allows(host) {
            refused_by_affinity += 1;
            continue;
        }
        let values = ask
            .weighers
            .iter()
            .map(|weigher| free_among(world, &serving, host, weigher.class))
            .chain(soft.map(|_| f64::from(ask.constraints.members_on(host))));
        for (measure, value) in values.enumerate() {
            lowest[measure] = lowest[measure].min(value);
            highest[measure] = highest[measure].max(value);
            raw.push(value);
        }
        admitted.push((index, host));
    }

    // Pass two: weights, keeping the best candidate per host if asked.
    let mut entries: Vec<Ranked> = Vec::with_capacity(admitted.len());
    let mut best_of_host: HashMap<ProviderId, usize> = if ask.distinct_hosts {
        HashMap::with_capacity(entries.capacity())
    } else {
        HashMap::new()
    };
    for (position, (index, host)) in admitted.into_iter().enumerate() {
        let values = &raw[position * measures..(position + 1) * measures];
        let weight = weigh(values, &lowest, &highest, &multipliers);
        let entry = Ranked {
            index,
            host,
            weight,
        };
        if !ask.distinct_hosts {
            entries.push(entry);
            continue;
        }
        match best_of_host.entry(host) {
            Entry::Vacant(vacant) => {
                vacant.insert(entries.len());
                entries.push(entry);
            }
            Entry::Occupied(occupied) => {
                let kept = &mut entries[*occupied.get()];
                if by_weight(&entry, kept) == Ordering::Less {
                    *kept = entry;
                }
            }
        }
    }

    let ranked = select(entries, ask, rng);
    Ranking {
        ranked,
        refused_by_affinity,
    }
}

/// `rank` fused with generation for a `FlatShape`: one pass over the
/// providers in storage order reads each one's fit and weigher values
/// without building an answer for it; answers are built for the ranked
/// few only. The same ranking as `rank` over `generate`'s answers (ties
/// go to the lower provider id, the engine's order), but the returned
/// `Candidates` hold just the ranked candidates, in rank order, and each
/// `Ranked::index` points into them.
pub fn rank_flat(
    world: &World,
    shape: &FlatShape<'_>,
    ask: &Ask<'_>,
    rng: &mut Rng,
) -> (Candidates, Ranking) {
    let soft = ask.constraints.soft_weigher();
    let measures = ask.weighers.len() + usize::from(soft.is_some());
    let multipliers: Vec<f64> = ask
        .weighers
        .iter()
        .map(|weigher| weigher.multiplier)
        .chain(soft)
        .collect();

    // Pass one: the answers, with their raw weigher values.
    let mut answers: Vec<(ProviderId, usize)> = Vec::new();
    let mut raw: Vec<f64> = Vec::new();
    if !shape.matches_nothing() {
        for provider in world.providers() {
            if !shape.admits(provider) {
                continue;
            }
            answers.push((provider.id, raw.len()));
            raw.extend(ask.weighers.iter().map(|weigher| {
                provider
                    .capacities
                    .get(weigher.class)
                    .map_or(0.0, |capacity| {
                        capacity.limits.capacity() - capacity.used as f64
                    })
            }));
        }
    }
    // The engine stops at `max_candidates` answers in id order.
    if let Some(max) = shape.max_candidates()
        && answers.len() > max
    {
        answers.select_nth_unstable_by_key(max - 1, |(id, _)| *id);
        answers.truncate(max);
    }
    let before = answers.len();
    answers.retain(|(id, _)| ask.constraints.allows(*id));
    let refused_by_affinity = before - answers.len();

    // Each measure's range over the admitted answers.
    let value = |(id, at): (ProviderId, usize), measure: usize| match ask.weighers.len() {
        weighers if measure < weighers => raw[at + measure],
        _ => f64::from(ask.constraints.members_on(id)),
    };
    let mut lowest = vec![f64::INFINITY; measures];
    let mut highest = vec![f64::NEG_INFINITY; measures];
    for answer in &answers {
        for measure in 0..measures {
            let value = value(*answer, measure);
            lowest[measure] = lowest[measure].min(value);
            highest[measure] = highest[measure].max(value);
        }
    }

    // Pass two: weights; the provider id stands for the engine's index
    // until the ranked few are built.
    let mut values = vec![0.0; measures];
    let entries: Vec<Ranked> = answers
        .iter()
        .map(|answer| {
            for (measure, slot) in values.iter_mut().enumerate() {
                *slot = value(*answer, measure);
            }
            Ranked {
                index: answer.0 as usize,
                host: answer.0,
                weight: weigh(&values, &lowest, &highest, &multipliers),
            }
        })
        .collect();
    let mut ranked = select(entries, ask, rng);
    let mut candidates = FlatShape::no_answers();
    for (position, entry) in ranked.iter_mut().enumerate() {
        shape.push_answer(&mut candidates, entry.host);
        entry.index = position;
    }
    (
        candidates,
        Ranking {
            ranked,
            refused_by_affinity,
        },
    )
}

/// Nova's weighted sum of normalised values.
fn weigh(values: &[f64], lowest: &[f64], highest: &[f64], multipliers: &[f64]) -> f64 {
    let mut weight = 0.0;
    for (measure, value) in values.iter().enumerate() {
        let range = highest[measure] - lowest[measure];
        let normalised = if range > 0.0 {
            (value - lowest[measure]) / range
        } else {
            0.0
        };
        weight += multipliers[measure] * normalised;
    }
    weight
}

/// The best entries, in order, after the shuffle and subset rules.
fn select(entries: Vec<Ranked>, ask: &Ask<'_>, rng: &mut Rng) -> Vec<Ranked> {
    let wanted = ask.count.max(ask.host_subset_size).min(entries.len());
    if wanted == 0 {
        return Vec::new();
    }
    let mut top = if ask.shuffle_best {
        let best = entries
            .iter()
            .map(|entry| entry.weight)
            .max_by(f64::total_cmp)
            .unwrap_or(0.0);
        let (mut ties, rest): (Vec<Ranked>, Vec<Ranked>) = entries
            .into_iter()
            .partition(|entry| entry.weight.total_cmp(&best) == Ordering::Equal);
        // In the engine's order, so that a seed draws the same hosts
        // whatever order the entries came in.
        ties.sort_unstable_by_key(|entry| entry.index);
        // A partial Fisher-Yates: only the places kept are drawn.
        let drawn = wanted.min(ties.len());
        for place in 0..drawn {
            let pick = place + rng.below(ties.len() - place);
            ties.swap(place, pick);
        }
        ties.truncate(drawn);
        ties.extend(best_in_order(rest, wanted - drawn));
        ties
    } else {
        best_in_order(entries, wanted)
    };
    let subset = ask.host_subset_size.min(top.len());
    if subset > 1 {
        let chosen = top.remove(rng.below(subset));
        top.insert(0, chosen);
    }
    top.truncate(ask.count);
    top
}

/// The `count` best of `entries`, best first, by selection and a sort of
/// just those.
fn best_in_order(mut entries: Vec<Ranked>, count: usize) -> Vec<Ranked> {
    if count == 0 {
        return Vec::new();
    }
    if entries.len() > count {
        entries.select_nth_unstable_by(count - 1, by_weight);
        entries.truncate(count);
    }
    entries.sort_unstable_by(by_weight);
    entries
}

/// A candidate's host, from its providers: the root of the first that is
/// not a sharing provider (the compute node's tree), else of the first.
fn host_among(providers: &[&Provider], sharing: Option<TraitId>) -> ProviderId {
    providers
        .iter()
        .find(|provider| sharing.is_none_or(|held| !provider.traits.contains(&held)))
        .or_else(|| providers.first())
        .map_or(0, |provider| provider.root)
}

/// See `Weigher`.
fn free_among(world: &World, providers: &[&Provider], host: ProviderId, class: ClassId) -> f64 {
    let free = |provider: &Provider| {
        provider
            .capacities
            .get(class)
            .map(|capacity| capacity.limits.capacity() - capacity.used as f64)
    };
    let mut serving = false;
    let mut total = 0.0;
    for provider in providers {
        if let Some(amount) = free(provider) {
            serving = true;
            total += amount;
        }
    }
    if !serving {
        total = world
            .subtree(host)
            .into_iter()
            .filter_map(|id| world.provider(id).and_then(free))
            .sum();
    }
    total
}

#[cfg(test)]
mod tests;
