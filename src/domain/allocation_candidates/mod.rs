//! `GET /allocation_candidates`: the candidate engine, a pure function over
//! the in-memory `World`. Answers to upstream's
//! `objects/allocation_candidate.py` and `objects/research_context.py`.

pub mod cache;
pub mod engine;
pub mod request;
pub mod world;
