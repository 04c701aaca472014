//! Start-up: migrations, standard data, the policy enforcer and the HTTP
//! server. Shared by `main` and the integration tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::{AppConfig, Server};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};

use crate::auth::{self, Authenticator};
use crate::config::Config;
use crate::domain::claim_queue::ClaimQueue;
use crate::errors::DomainError;
use crate::http;
use crate::policy::Enforcer;
use crate::state::AppState;
use crate::storage::{self, Database, PoolOptions, StorageError};
use crate::telemetry::Metrics;
use crate::view::cache::WorldCache;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot use the database: {0}")]
    Database(#[from] StorageError),
    #[error("cannot load the policy ([oslo_policy] policy_file, policy_dirs): {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("cannot set up Keystone authentication: {0}")]
    Keystone(#[from] auth::keystone::SetupError),
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

/// Connects to the database, trying `[placement_database] max_retries`
/// times `retry_interval` apart, as oslo.db does at start-up.
pub fn connect(config: &Config) -> Result<Database, StorageError> {
    let options = PoolOptions {
        size: config.pool_size,
        timeout: config.pool_timeout,
        max_lifetime: config.connection_recycle_time,
    };
    let mut attempt = 1;
    loop {
        match Database::connect_with(&config.database_url, options) {
            Ok(database) => return Ok(database),
            Err(error) if config.connect_attempts.is_none_or(|most| attempt < most) => {
                tracing::warn!(%error, attempt, "database unreachable; trying again");
                std::thread::sleep(config.connect_retry_interval);
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Builds the shared state: database pool, policy, authentication, the
/// candidates view and the metrics.
pub fn build_state(config: Config) -> Result<AppState, StartupError> {
    let policy = Enforcer::from_files(config.policy_defaults, &config.policy_files)?;
    let metrics = Arc::new(Metrics::new());
    let auth = Authenticator::from_config(&config, metrics.clone())?;
    tracing::info!("connecting to the database");
    let db = connect(&config)?;
    tracing::info!(migrate = config.migrate_on_start, "preparing the database");
    prepare_database(&db, config.migrate_on_start)?;
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
        auth,
        policy,
        routes: http::routes::table(),
        world,
        claims: ClaimQueue::default(),
        metrics,
    })
}

/// Resolves when the process gets SIGTERM or SIGINT: both stop the server
/// gracefully (actix's own handling would make SIGINT a forced stop).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        "stopping: no new connections, finishing requests in flight"
    );
}

/// The HTTP server for `state` on `listener`, not yet awaited.
///
/// This is what `actix_web::HttpServer` builds, with its defaults (keep-alive
/// 5 s, 5 s to send a request head, 1 s to close, graceful shutdown of idle
/// keep-alive connections), except that each accepted connection is wrapped
/// in `http::framing::GuardedStream`, which `HttpServer` has no place for.
pub fn build_server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    build_server_with(state, listener, None, false)
}

/// [`build_server`], with the separate `/metrics` listener when one is
/// configured, and stopping on SIGTERM/SIGINT when `on_signals`.
pub fn build_server_with(
    state: AppState,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    on_signals: bool,
) -> std::io::Result<Server> {
    let workers = state.config.workers;
    let grace = state.config.shutdown_timeout.as_secs();
    let state = web::Data::new(state);
    let local_addr = listener.local_addr()?;
    let mut builder = actix_server::Server::build()
        .workers(workers)
        .shutdown_timeout(grace)
        .disable_signals();
    if on_signals {
        builder = builder.shutdown_signal(stop_signal());
    }
    if let Some(metrics_listener) = metrics_listener {
        let state = state.clone();
        builder = builder.listen("metrics", metrics_listener, move || {
            let state = state.clone();
            actix_http::HttpService::build()
                .finish(map_config(
                    App::new()
                        .app_data(state)
                        .route("/metrics", web::get().to(metrics_endpoint))
                        .into_factory(),
                    |()| AppConfig::default(),
                ))
                .tcp()
        })?;
    }
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder.listen("placement", listener, move || {
        let state = state.clone();
        let app = App::new()
            .app_data(state)
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

async fn metrics_endpoint(state: web::Data<AppState>) -> actix_web::HttpResponse {
    http::operations::metrics(&state)
}

/// Serves the API on `listener` (and metrics on `metrics_listener`) until
/// SIGTERM or SIGINT, then lets requests in flight finish within
/// `[server] shutdown_timeout`.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
) -> std::io::Result<()> {
    if let Authenticator::Keystone(keystone) = &state.auth {
        // Logging in early shows a misconfiguration at start-up; requests
        // log in again if this fails (Keystone may come up later).
        let keystone = keystone.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = keystone.check_service_login().await {
                tracing::error!(%error, "cannot log in to Keystone as the service user");
            }
        });
    }
    build_server_with(state, listener, metrics_listener, true)?.await
}

/// Binds the configured API address, and the metrics address if it has
/// one of its own.
pub fn bind(config: &Config) -> Result<(TcpListener, Option<TcpListener>), StartupError> {
    let listen = |address| {
        TcpListener::bind(address).map_err(|source| StartupError::Listen { address, source })
    };
    let api = listen(config.listen)?;
    let metrics = match config.metrics {
        Some(Some(address)) => Some(listen(address)?),
        _ => None,
    };
    Ok((api, metrics))
}
