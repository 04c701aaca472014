//! What the engine is asked and what it answers, in ids of the `World`
//! (the HTTP layer resolves names and renders results).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::world::{AggregateId, ClassId, ProviderId, TraitId};
use crate::config::GenerationStrategy;

/// Required and forbidden traits: a provider set satisfies it when, for
/// every entry of `all_of`, it has at least one of that entry's traits
/// (an entry of one trait is a plain required trait; more is `in:`), and
/// has none of `forbidden`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraitFilter {
    pub all_of: Vec<BTreeSet<TraitId>>,
    pub forbidden: BTreeSet<TraitId>,
}

impl TraitFilter {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.forbidden.is_empty()
    }
}

/// Aggregate membership, in the same shape as `TraitFilter` (each entry of
/// `all_of` is any-of). Unknown aggregate uuids are kept as ids no
/// provider has, so they match nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregateFilter {
    pub all_of: Vec<BTreeSet<AggregateId>>,
    pub forbidden: BTreeSet<AggregateId>,
}

impl AggregateFilter {
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.forbidden.is_empty()
    }
}

/// One request group: the unsuffixed one (`suffix: None`, satisfied by a
/// tree's providers together, plus sharing providers) or a suffixed
/// granular one (satisfied by one provider; may be resourceless when named
/// in `same_subtree`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestGroup {
    pub suffix: Option<String>,
    pub resources: Vec<(ClassId, i64)>,
    pub traits: TraitFilter,
    pub member_of: AggregateFilter,
    pub in_tree: Option<ProviderId>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupPolicy {
    /// Suffixed groups may share providers.
    #[default]
    None,
    /// Suffixed groups are satisfied by different providers.
    Isolate,
}

/// A whole `GET /allocation_candidates` query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CandidateRequest {
    pub groups: Vec<RequestGroup>,
    pub group_policy: GroupPolicy,
    /// Each entry: suffixes whose providers must share one subtree (one of
    /// them an ancestor of all the others).
    pub same_subtree: Vec<Vec<String>>,
    /// Traits required or forbidden on the root of each candidate's tree.
    pub root_traits: TraitFilter,
    /// The `limit` parameter.
    pub limit: Option<usize>,
    /// False before 1.29: nested providers are not considered.
    pub nested_aware: bool,
}

/// Server configuration that shapes generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    pub randomize: bool,
    pub max_candidates: Option<usize>,
    pub strategy: GenerationStrategy,
}

/// One allocation request: amounts by provider and class, and which
/// providers satisfied which group, as ranges of the `Candidates`'
/// storage (see `Candidates::allocations` and `Candidates::mappings`), so
/// that thousands of answers cost no allocation each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocationRequest {
    pub allocations: Range<usize>,
    pub mappings: Range<usize>,
}

/// The answer: allocation requests in output order, and the providers the
/// response must summarise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    pub allocation_requests: Vec<AllocationRequest>,
    /// `(provider, class, amount)`: per request, sorted by provider then
    /// class, one entry per pair.
    pub amounts: Vec<(ProviderId, ClassId, i64)>,
    /// `(index into suffixes, provider)`: per request, sorted, each pair
    /// once.
    pub mapped: Vec<(usize, ProviderId)>,
    /// The mapping keys (`""` is the unsuffixed group), sorted.
    pub suffixes: Vec<String>,
    pub summary_providers: BTreeSet<ProviderId>,
}

impl Candidates {
    /// A request's `(provider, class, amount)`s.
    pub fn allocations(&self, request: &AllocationRequest) -> &[(ProviderId, ClassId, i64)] {
        self.amounts.get(request.allocations.clone()).unwrap_or(&[])
    }

    /// A request's `(suffix index, provider)`s.
    pub fn mappings(&self, request: &AllocationRequest) -> &[(usize, ProviderId)] {
        self.mapped.get(request.mappings.clone()).unwrap_or(&[])
    }

    /// The providers a request allocates from, ascending, each once.
    pub fn providers(&self, request: &AllocationRequest) -> impl Iterator<Item = ProviderId> + '_ {
        providers_of(self.allocations(request))
    }

    /// A request's allocations as maps (for tests and debugging).
    pub fn allocation_map(
        &self,
        request: &AllocationRequest,
    ) -> BTreeMap<ProviderId, BTreeMap<ClassId, i64>> {
        let mut map: BTreeMap<ProviderId, BTreeMap<ClassId, i64>> = BTreeMap::new();
        for (provider, class, amount) in self.allocations(request) {
            *map.entry(*provider).or_default().entry(*class).or_insert(0) += amount;
        }
        map
    }

    /// A request's mappings by suffix (for tests and debugging).
    pub fn mapping_map(
        &self,
        request: &AllocationRequest,
    ) -> BTreeMap<String, BTreeSet<ProviderId>> {
        let mut map: BTreeMap<String, BTreeSet<ProviderId>> = BTreeMap::new();
        for (suffix, provider) in self.mappings(request) {
            let name = self.suffixes.get(*suffix).cloned().unwrap_or_default();
            map.entry(name).or_default().insert(*provider);
        }
        map
    }
}

/// The distinct providers of `(provider, class, amount)`s sorted by
/// provider.
pub fn providers_of(
    amounts: &[(ProviderId, ClassId, i64)],
) -> impl Iterator<Item = ProviderId> + '_ {
    let mut last = None;
    amounts
        .iter()
        .map(|(provider, _, _)| *provider)
        .filter(move |provider| last.replace(*provider) != Some(*provider))
}
