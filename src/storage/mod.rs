//! Everything that knows diesel: the connection pool, the one blocking
//! bridge (`Database::run`), migrations and the query functions of each
//! resource.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub mod schema;
pub mod standard_data;

pub type Connection = PgConnection;
type ManagedPool = Pool<LiveConnections>;
type Pooled = PooledConnection<LiveConnections>;

/// A pooled connection with what the pool must know of it: whether it was
/// found dead. diesel marks a connection broken only when a transaction
/// fails on it; one that lost its server in autocommit (after a failover,
/// say) would otherwise go back to the pool and fail every request it
/// serves until `connection_recycle_time`.
pub struct LiveConnection {
    connection: PgConnection,
    lost: bool,
}

impl std::ops::Deref for LiveConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.connection
    }
}

impl std::ops::DerefMut for LiveConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.connection
    }
}

/// diesel's connection manager, dropping the connections found dead.
pub struct LiveConnections(ConnectionManager<PgConnection>);

impl ManageConnection for LiveConnections {
    type Connection = LiveConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<LiveConnection, Self::Error> {
        self.0.connect().map(|connection| LiveConnection {
            connection,
            lost: false,
        })
    }

    fn is_valid(&self, connection: &mut LiveConnection) -> Result<(), Self::Error> {
        self.0.is_valid(&mut connection.connection)
    }

    fn has_broken(&self, connection: &mut LiveConnection) -> bool {
        connection.lost || self.0.has_broken(&mut connection.connection)
    }
}

/// After a failed piece of work: a connection that no longer answers a
/// ping is marked for the pool to drop. Successful work costs nothing.
fn check_after_failure(connection: &mut Pooled) {
    if connection.connection.ping().is_err() {
        connection.lost = true;
    }
}

/// A failure talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No connection could be had, or the one in use was lost: the
    /// database is down, unreachable or failing over. The request may be
    /// retried; a write it made may or may not have been committed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A concurrent writer changed what a statement relied on between the
    /// request's reads and its write: a row it referenced was deleted (a
    /// foreign-key violation), or PostgreSQL broke a deadlock or a
    /// serialization conflict. Nothing was written; the request may be
    /// retried.
    #[error("concurrent update: {0}")]
    Contended(DieselError),
    /// A statement failed.
    #[error("database query failed: {0}")]
    Query(DieselError),
}

impl From<DieselError> for StorageError {
    fn from(error: DieselError) -> Self {
        match &error {
            _ if is_connection_lost(&error) => StorageError::Unavailable(error.to_string()),
            _ if is_contention(&error) => StorageError::Contended(error),
            _ => StorageError::Query(error),
        }
    }
}

/// True when `error` says the connection is gone, whatever the statement:
/// the server closed it (a restart, a failover), libpq could not send on
/// it (`no connection to the server`), or diesel had already marked it
/// unusable, which it does when libpq loses the server (a domain path
/// that falls back to another statement after a failure meets that).
/// The pool discards such a connection and the next one may well work,
/// so these are a 503 to retry, not a 500.
fn is_connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => is_connection_lost(rollback_error) || is_connection_lost(commit_error),
        _ => false,
    }
}

/// True for the errors a concurrent writer causes (see
/// `StorageError::Contended`). Diesel has no kind for a deadlock
/// (SQLSTATE 40P01): PostgreSQL's message tells it.
pub fn is_contention(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => info.message().starts_with("deadlock detected"),
        _ => false,
    }
}

/// True when `error` is a unique-constraint violation (a lost insert race or
/// a duplicate name).
pub fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// How every write transaction begins, in one round trip.
///
/// A write's statements are index lookups on a few rows. Prepared, they
/// take arrays (`uuid = ANY($1)`), for which PostgreSQL's plan cache keeps
/// choosing a fresh custom plan: planning a claim's read cost three times
/// its execution. Forcing the generic plan plans each statement once per
/// session; ruling out sequential scans while that plan is made keeps it an
/// index plan even when it is made on a nearly empty table that later grows
/// (`allocations` on a new deployment), where the planner would otherwise
/// cache a scan of the whole table. A scan that cannot be avoided is then
/// costed beyond `jit_above_cost`, and compiling it would take tens of
/// milliseconds on every execution: JIT is off too. The settings end with
/// the transaction.
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; \
                           SET LOCAL plan_cache_mode = force_generic_plan; \
                           SET LOCAL enable_seqscan = off; \
                           SET LOCAL jit = off";

/// Runs `work` in one write transaction (see `BEGIN_WRITE`): committed when
/// it returns `Ok`, rolled back otherwise.
pub fn write_transaction<T, E, F>(connection: &mut PgConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    AnsiTransactionManager::begin_transaction_sql(connection, BEGIN_WRITE)?;
    match work(connection) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(connection)?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(connection) {
            // A broken transaction manager says less than the error itself.
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// The pool of PostgreSQL connections, and the only way to use one.
#[derive(Clone)]
pub struct Database {
    pool: ManagedPool,
    waits: Arc<WaitCounters>,
}

/// How the pool is sized and how long a request waits for a connection.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    pub size: u32,
    /// Longest wait for a free connection; then the request gets a 503.
    pub timeout: Duration,
    /// A connection older than this is replaced.
    pub max_lifetime: Duration,
}

impl PoolOptions {
    pub fn sized(size: u32) -> PoolOptions {
        PoolOptions {
            size,
            timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

#[derive(Default)]
struct WaitCounters {
    waits: AtomicU64,
    wait_micros: AtomicU64,
    timeouts: AtomicU64,
}

/// The pool's state, for metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStatus {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
    /// Requests that found no idle connection and waited for one.
    pub waits: u64,
    pub wait_seconds: f64,
    /// Waits that ran out of `PoolOptions::timeout`.
    pub timeouts: u64,
}

impl Database {
    /// Builds a pool of `pool_size` and checks that one connection can be
    /// made.
    pub fn connect(url: &str, pool_size: u32) -> Result<Database, StorageError> {
        Database::connect_with(url, PoolOptions::sized(pool_size))
    }

    /// Builds the pool and checks that one connection can be made.
    pub fn connect_with(url: &str, options: PoolOptions) -> Result<Database, StorageError> {
        let manager = LiveConnections(ConnectionManager::<PgConnection>::new(
            connection_url::with_loopback_sslmode(url),
        ));
        let pool = Pool::builder()
            .max_size(options.size)
            .min_idle(Some(1))
            .connection_timeout(options.timeout)
            .max_lifetime(Some(options.max_lifetime))
            .test_on_check_out(false)
            .build(manager)
            .map_err(|error| StorageError::Unavailable(error.to_string()))?;
        Ok(Database {
            pool,
            waits: Arc::default(),
        })
    }

    pub fn status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.pool.max_size(),
            waits: self.waits.waits.load(Ordering::Relaxed),
            wait_seconds: self.waits.wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
            timeouts: self.waits.timeouts.load(Ordering::Relaxed),
        }
    }

    /// A connection for start-up and command-line work, outside any request.
    pub fn connection(&self) -> Result<Pooled, StorageError> {
        self.pool
            .get()
            .map_err(|error| StorageError::Unavailable(error.to_string()))
    }

    /// Runs blocking diesel work on actix's blocking thread pool with a
    /// pooled connection, keeping the async workers free.
    pub async fn run<F, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let waits = self.waits.clone();
        let span = tracing::Span::current();
        let outcome = actix_web::web::block(move || {
            let _entered = span.enter();
            let mut connection = pooled_from(&pool, &waits).map_err(E::from)?;
            let result = work(&mut connection);
            if result.is_err() {
                check_after_failure(&mut connection);
            }
            result
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(blocking) => Err(E::from(StorageError::Unavailable(blocking.to_string()))),
        }
    }
}

/// One round trip, for the health check.
pub fn ping(connection: &mut Connection) -> Result<(), StorageError> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT 1").execute(connection)?;
    Ok(())
}

/// A pooled connection, counting the wait when none was idle.
fn pooled_from(pool: &ManagedPool, waits: &WaitCounters) -> Result<Pooled, StorageError> {
    if let Some(connection) = pool.try_get() {
        return Ok(connection);
    }
    let started = Instant::now();
    let outcome = pool.get();
    waits.waits.fetch_add(1, Ordering::Relaxed);
    waits.wait_micros.fetch_add(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    outcome.map_err(|error| {
        waits.timeouts.fetch_add(1, Ordering::Relaxed);
        StorageError::Unavailable(error.to_string())
    })
}

pub mod migrations {
    //! Schema migrations embedded in the binary, applied under an advisory
    //! lock so that several processes starting together take turns.

    use diesel::prelude::*;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

    use super::{Connection, StorageError};

    pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

    /// Arbitrary, fixed key of the advisory lock serialising start-up work.
    const STARTUP_LOCK_KEY: i64 = 0x706c_6163_656d;

    /// Applies every pending migration; the caller holds the start-up lock.
    pub fn run_pending_unlocked(connection: &mut Connection) -> Result<usize, StorageError> {
        connection
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| applied.len())
            .map_err(|error| StorageError::Unavailable(format!("migration failed: {error}")))
    }

    /// Runs `work` while holding the start-up advisory lock.
    pub fn with_startup_lock<T>(
        connection: &mut Connection,
        work: impl FnOnce(&mut Connection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        diesel::sql_query(format!("SELECT pg_advisory_lock({STARTUP_LOCK_KEY})"))
            .execute(connection)
            .map_err(StorageError::from)?;
        let result = work(connection);
        let unlock = diesel::sql_query(format!("SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})"))
            .execute(connection)
            .map_err(StorageError::from);
        let value = result?;
        unlock?;
        Ok(value)
    }
}

pub mod aggregates;
pub mod allocations;
pub mod changes;
pub mod connection_url;
pub mod consumers;
pub mod inventories;
pub mod prepared;
pub mod resource_classes;
pub mod resource_providers;
pub mod traits;
pub mod upgrade_checks;
pub mod usages;
pub mod world;

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::StorageError;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_lost_connection_is_unavailable_whatever_diesel_calls_it() {
        for error in [
            database_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            database_error(
                DatabaseErrorKind::UnableToSendCommand,
                "no connection to the server",
            ),
            DieselError::BrokenTransactionManager,
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(DieselError::BrokenTransactionManager),
                commit_error: Box::new(database_error(
                    DatabaseErrorKind::ClosedConnection,
                    "server closed the connection unexpectedly",
                )),
            },
        ] {
            assert!(
                matches!(StorageError::from(error), StorageError::Unavailable(_)),
                "unavailable"
            );
        }
    }

    #[test]
    fn other_failures_stay_what_they_are() {
        assert!(matches!(
            StorageError::from(database_error(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access"
            )),
            StorageError::Contended(_)
        ));
        assert!(matches!(
            StorageError::from(database_error(
                DatabaseErrorKind::Unknown,
                "syntax error at or near"
            )),
            StorageError::Query(_)
        ));
        assert!(matches!(
            StorageError::from(DieselError::NotFound),
            StorageError::Query(_)
        ));
    }
}
