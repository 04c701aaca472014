//! PLACEHOLDER: being implemented.

use super::request::{CandidateRequest, Candidates, EngineOptions};
use super::world::World;

/// Every allocation request that satisfies `request` in `world`.
pub fn generate(
    _world: &World,
    _request: &CandidateRequest,
    _options: &EngineOptions,
) -> Candidates {
    Candidates::default()
}
