//! Start-up: migrations, standard data, the policy enforcer and the HTTP
//! server. Shared by `main` and the integration tests.

use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};

use crate::config::Config;
use crate::domain::allocation_candidates::cache::WorldCache;
use crate::errors::DomainError;
use crate::http;
use crate::policy::Enforcer;
use crate::state::AppState;
use crate::storage::{self, Database, StorageError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot use the database: {0}")]
    Database(#[from] StorageError),
    #[error("cannot load the policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Applies pending migrations and syncs the standard resource classes and
/// traits, under the start-up lock.
pub fn prepare_database(database: &Database, migrate: bool) -> Result<(), StorageError> {
    let mut connection = database.connection()?;
    storage::migrations::with_startup_lock(&mut connection, |connection| {
        if migrate {
            storage::migrations::run_pending_unlocked(connection)?;
        }
        storage::standard_data::sync(connection)
    })
}

/// Builds the shared state: database pool, policy and routes.
pub fn build_state(config: Config) -> Result<AppState, StartupError> {
    tracing::info!("connecting to the database");
    let db = Database::connect(&config.database_url, config.pool_size)?;
    tracing::info!(migrate = config.migrate_on_start, "preparing the database");
    prepare_database(&db, config.migrate_on_start)?;
    let policy = Enforcer::from_file(config.policy_defaults, config.policy_file.as_deref())?;
    tracing::info!("loading the allocation candidates view");
    let world = WorldCache::new();
    let mut connection = db.connection()?;
    world
        .refresh(&mut connection)
        .map_err(|error| match error {
            DomainError::Storage(storage) => StartupError::Database(storage),
            other => StartupError::Database(StorageError::Unavailable(other.to_string())),
        })?;
    Ok(AppState {
        db,
        config,
        policy,
        routes: http::routes::table(),
        world,
    })
}

/// Largest request body accepted (large `POST /allocations` and reshaper
/// bodies included).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The HTTP server for `state` on `listener`, not yet awaited.
///
/// This is what `actix_web::HttpServer` builds, with its defaults (keep-alive
/// 5 s, 5 s to send a request head, 1 s to close, graceful shutdown of idle
/// keep-alive connections), except that each accepted connection is wrapped
/// in `http::framing::GuardedStream`, which `HttpServer` has no place for.
pub fn build_server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.config.workers;
    let state = web::Data::new(state);
    let local_addr = listener.local_addr()?;
    let builder = actix_server::Server::build().workers(workers);
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder.listen("placement", listener, move || {
        let state = state.clone();
        let app = App::new()
            .app_data(state)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .default_service(web::to(http::framing::dispatch))
            .into_factory()
            .map_err(|error| error.error_response());
        let shutdown = shutdown.clone();
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .client_request_timeout(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            .h1_allow_half_closed(true)
            .local_addr(local_addr)
            // No handler reads the connection info or builds URLs from the
            // app config, so its defaults serve.
            .finish(map_config(app, |()| AppConfig::default()));
        fn_service(|stream: TcpStream| async move {
            let peer = stream.peer_addr().ok();
            Ok::<_, actix_http::error::DispatchError>((
                http::framing::GuardedStream::new(stream),
                Protocol::Http1,
                peer,
            ))
        })
        .and_then(http)
    })?;
    Ok(server.run())
}

/// Serves the API on `listener` until the process is stopped.
pub async fn serve(state: AppState, listener: TcpListener) -> std::io::Result<()> {
    build_server(state, listener)?.await
}

/// Binds the configured address.
pub fn bind(config: &Config) -> Result<TcpListener, StartupError> {
    TcpListener::bind(config.listen).map_err(|source| StartupError::Listen {
        address: config.listen,
        source,
    })
}
