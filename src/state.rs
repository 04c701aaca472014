//! What every request shares: the database, the configuration, the policy
//! enforcer and the route table.

use crate::config::Config;
use crate::http::routes::Route;
use crate::policy::Enforcer;
use crate::storage::Database;

pub struct AppState {
    pub db: Database,
    pub config: Config,
    pub policy: Enforcer,
    pub routes: Vec<Route>,
}
