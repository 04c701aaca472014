//! The in-memory view of every provider (`world`), kept in step with
//! PostgreSQL (`cache`), and the pure functions over it: the candidate
//! engine of `GET /allocation_candidates` (`engine`, `request`; upstream's
//! `objects/allocation_candidate.py` and `objects/research_context.py`),
//! and this server's scheduling extensions: ranking (`rank`) and
//! affinity (`affinity`).

pub mod affinity;
pub mod cache;
pub mod engine;
pub mod placement;
pub mod rank;
pub mod request;
pub mod rng;
pub mod world;
