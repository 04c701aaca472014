//! What every request shares: the database, the configuration, how
//! requests are authenticated, the policy enforcer, the route table, the
//! candidates' in-memory view and the metrics.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::domain::claim_queue::ClaimQueue;
use crate::errors::ApiError;
use crate::http::routes::Route;
use crate::policy::Enforcer;
use crate::storage::Database;
use crate::telemetry::Metrics;
use crate::view::cache::WorldCache;

pub struct AppState {
    pub db: Database,
    pub config: Config,
    pub auth: Authenticator,
    pub policy: Enforcer,
    pub routes: Vec<Route>,
    /// The in-memory view `GET /allocation_candidates` reads.
    pub world: WorldCache,
    /// `POST /claims` waiting to be written in one batch.
    pub claims: ClaimQueue<ApiError>,
    pub metrics: Arc<Metrics>,
}
