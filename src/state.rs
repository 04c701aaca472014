//! What every request shares: the database, the configuration, the policy
//! enforcer, the route table and the candidates' in-memory view.

use crate::config::Config;
use crate::domain::allocation_candidates::cache::WorldCache;
use crate::http::routes::Route;
use crate::policy::Enforcer;
use crate::storage::Database;

pub struct AppState {
    pub db: Database,
    pub config: Config,
    pub policy: Enforcer,
    pub routes: Vec<Route>,
    /// The in-memory view `GET /allocation_candidates` reads.
    pub world: WorldCache,
}
