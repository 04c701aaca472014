//! A Placement database: upstream's (16.0, on PostgreSQL or MySQL/MariaDB)
//! or this server's (PostgreSQL, the same tables and columns with stricter
//! types). Its schema revision, a consistent read of every table (by
//! column name, so extra columns such as nova's `can_host` are never
//! read), and the bulk write of an import or export (COPY on PostgreSQL,
//! multi-row INSERTs on MySQL) in one transaction.

use std::io::Write;
use std::time::Instant;

use chrono::NaiveDateTime;
use mysql::prelude::Queryable;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use uuid::Uuid;

use super::TransferError;
use super::dataset::{
    Aggregate, Allocation, Consumer, Dataset, Inventory, Link, MIN_CUSTOM_RESOURCE_CLASS_ID, Named,
    Provider, Time,
};

/// Upstream 16.0's alembic head.
pub const HEAD_REVISION: &str = "a082b8bb98d0";
/// The oldest revision with every table and column read here
/// (`consumer_types` and `consumers.consumer_type_id`).
pub const OLDEST_REVISION: &str = "422ece571366";
/// The revisions before it, oldest first.
const OLDER_REVISIONS: [&str; 3] = ["b4ed3a175331", "611cd6dffd7b", "b5c396305c25"];

enum Backend {
    Postgres(Box<postgres::Client>),
    MySql(mysql::Conn),
}

/// Whose schema a database holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Upstream,
    /// This server's: change-log triggers, the custom class id sequence,
    /// the in-memory views of running processes to tell.
    Ours,
}

/// A connection to a Placement database.
pub struct Database {
    backend: Backend,
    schema: Schema,
}

/// The tables `data_in` counts: every table but the two whose standard
/// rows a server's start-up adds (classes and traits, counted apart).
const DATA_TABLES: [&str; 10] = [
    "resource_providers",
    "inventories",
    "allocations",
    "consumers",
    "projects",
    "users",
    "consumer_types",
    "placement_aggregates",
    "resource_provider_traits",
    "resource_provider_aggregates",
];

/// A table as both directions read and write it: its name, the columns
/// copied (in this order), the order its rows are read in, and whether its
/// `id` comes from a sequence.
struct Shape {
    name: &'static str,
    columns: &'static [&'static str],
    order_by: &'static str,
    id_sequence: bool,
}

impl Shape {
    fn select(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.columns.join(", "),
            self.name,
            self.order_by
        )
    }
}

const NAMED: &[&str] = &["id", "name", "created_at", "updated_at"];
const EXTERNAL: &[&str] = &["id", "external_id", "created_at", "updated_at"];

const fn by_id(name: &'static str, columns: &'static [&'static str]) -> Shape {
    Shape {
        name,
        columns,
        order_by: "id",
        id_sequence: true,
    }
}

const RESOURCE_CLASSES: Shape = by_id("resource_classes", NAMED);
const TRAITS: Shape = by_id("traits", NAMED);
const RESOURCE_PROVIDERS: Shape = by_id(
    "resource_providers",
    &[
        "id",
        "uuid",
        "name",
        "generation",
        "root_provider_id",
        "parent_provider_id",
        "created_at",
        "updated_at",
    ],
);
const INVENTORIES: Shape = by_id(
    "inventories",
    &[
        "id",
        "resource_provider_id",
        "resource_class_id",
        "total",
        "reserved",
        "min_unit",
        "max_unit",
        "step_size",
        "allocation_ratio",
        "created_at",
        "updated_at",
    ],
);
const PLACEMENT_AGGREGATES: Shape = by_id(
    "placement_aggregates",
    &["id", "uuid", "created_at", "updated_at"],
);
const RESOURCE_PROVIDER_TRAITS: Shape = Shape {
    name: "resource_provider_traits",
    columns: &[
        "resource_provider_id",
        "trait_id",
        "created_at",
        "updated_at",
    ],
    order_by: "resource_provider_id, trait_id",
    id_sequence: false,
};
const RESOURCE_PROVIDER_AGGREGATES: Shape = Shape {
    name: "resource_provider_aggregates",
    columns: &[
        "resource_provider_id",
        "aggregate_id",
        "created_at",
        "updated_at",
    ],
    order_by: "resource_provider_id, aggregate_id",
    id_sequence: false,
};
const PROJECTS: Shape = by_id("projects", EXTERNAL);
const USERS: Shape = by_id("users", EXTERNAL);
const CONSUMER_TYPES: Shape = by_id("consumer_types", NAMED);
const CONSUMERS: Shape = by_id(
    "consumers",
    &[
        "id",
        "uuid",
        "project_id",
        "user_id",
        "generation",
        "consumer_type_id",
        "created_at",
        "updated_at",
    ],
);
const ALLOCATIONS: Shape = by_id(
    "allocations",
    &[
        "id",
        "resource_provider_id",
        "consumer_id",
        "resource_class_id",
        "used",
        "created_at",
        "updated_at",
    ],
);

fn database_error(error: impl std::fmt::Display) -> TransferError {
    TransferError::Database(error.to_string())
}

impl Database {
    /// Connects to `url`: `postgresql://…`, `postgres://…`, `mysql://…`,
    /// with or without a driver (`postgresql+psycopg2://`,
    /// `mysql+pymysql://`), as oslo.db's `connection` names them.
    pub fn connect(url: &str, schema: Schema) -> Result<Database, TransferError> {
        // A libpq keyword string (`host=a,b dbname=placement`) is PostgreSQL.
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgresql", url));
        let dialect = scheme.split('+').next().unwrap_or_default();
        match dialect {
            "postgresql" | "postgres" => {
                // libpq's `prefer` and `require` (the only modes this client
                // has) encrypt without verifying the server's certificate.
                let tls = native_tls::TlsConnector::builder()
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true)
                    .build()
                    .map_err(database_error)?;
                let address = if url.contains("://") {
                    format!("postgresql://{rest}")
                } else {
                    url.to_owned()
                };
                let client = postgres::Client::connect(
                    &address,
                    postgres_native_tls::MakeTlsConnector::new(tls),
                )
                .map_err(database_error)?;
                Ok(Database {
                    backend: Backend::Postgres(Box::new(client)),
                    schema,
                })
            }
            "mysql" if schema == Schema::Ours => Err(TransferError::Refused(
                "this server's database is PostgreSQL".to_owned(),
            )),
            "mysql" => {
                // oslo.db URLs carry driver options (`charset=utf8`,
                // `plugin=…`) that are not this client's; the character set
                // is set below.
                let address = rest.split('?').next().unwrap_or_default();
                let options =
                    mysql::Opts::from_url(&format!("mysql://{address}")).map_err(database_error)?;
                let mut connection = mysql::Conn::new(options).map_err(database_error)?;
                // Latin-1 tables (nova's) arrive converted to UTF-8.
                connection
                    .query_drop("SET NAMES utf8mb4")
                    .map_err(database_error)?;
                Ok(Database {
                    backend: Backend::MySql(connection),
                    schema,
                })
            }
            other => Err(TransferError::Refused(format!(
                "unsupported database {other:?} in {url:?}: PostgreSQL or MySQL/MariaDB"
            ))),
        }
    }

    /// Refuses a database whose alembic revision is not one whose tables
    /// this reads and writes.
    pub fn check_revision(&mut self) -> Result<(), TransferError> {
        let mut revision = Vec::new();
        self.for_each_row("SELECT version_num FROM alembic_version", &mut |row| {
            revision.extend(row.text("version_num")?);
            Ok(())
        })
        .map_err(|error| {
            TransferError::Refused(format!(
                "no upstream Placement schema there (reading alembic_version: {error}); \
                     run upstream's `placement-manage db sync` on it first"
            ))
        })?;
        match revision.first().map(String::as_str) {
            Some(HEAD_REVISION | OLDEST_REVISION) => Ok(()),
            Some(old) if OLDER_REVISIONS.contains(&old) => Err(TransferError::Refused(format!(
                "the upstream schema is at alembic revision {old}, older than {OLDEST_REVISION}: \
                 run upstream's `placement-manage db sync` on it first (16.0's head is \
                 {HEAD_REVISION})"
            ))),
            Some(other) => Err(TransferError::Refused(format!(
                "the upstream schema is at alembic revision {other}, which Placement 16.0 \
                 (head {HEAD_REVISION}) does not know"
            ))),
            None => Err(TransferError::Refused(
                "alembic_version is empty: run upstream's `placement-manage db sync` first"
                    .to_owned(),
            )),
        }
    }

    /// The first table holding data (standard classes and traits aside)
    /// and its row count; `None` when the database is empty.
    pub fn data_in(&mut self) -> Result<Option<(String, i64)>, TransferError> {
        let mut checks: Vec<(String, String)> = DATA_TABLES
            .iter()
            .map(|table| {
                (
                    table.to_string(),
                    format!("SELECT count(*) AS n FROM {table}"),
                )
            })
            .collect();
        checks.push((
            "resource_classes (custom)".to_owned(),
            format!("SELECT count(*) AS n FROM resource_classes WHERE id >= {MIN_CUSTOM_RESOURCE_CLASS_ID}"),
        ));
        checks.push((
            "traits (custom)".to_owned(),
            "SELECT count(*) AS n FROM traits WHERE LEFT(name, 7) = 'CUSTOM_'".to_owned(),
        ));
        for (table, query) in checks {
            let mut count = 0;
            self.for_each_row(&query, &mut |row| {
                count = required(row.int("n"), "n")?;
                Ok(())
            })
            .map_err(database_error)?;
            if count > 0 {
                return Ok(Some((table, count)));
            }
        }
        Ok(None)
    }

    /// Every table, read in one repeatable-read transaction so that the
    /// rows are one moment's.
    pub fn read(&mut self, progress: &dyn Fn(&str)) -> Result<Dataset, TransferError> {
        match &mut self.backend {
            Backend::Postgres(client) => client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(database_error)?,
            Backend::MySql(connection) => {
                connection
                    .query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .map_err(database_error)?;
                connection
                    .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .map_err(database_error)?;
            }
        }
        let data = self.read_tables(progress);
        self.rollback()?;
        data
    }

    fn read_tables(&mut self, progress: &dyn Fn(&str)) -> Result<Dataset, TransferError> {
        let mut data = Dataset::default();
        let mut step = |shape: &Shape,
                        read: &mut dyn FnMut(&dyn SourceRow) -> Result<(), String>|
         -> Result<(), TransferError> {
            let started = Instant::now();
            let name = shape.name;
            let mut rows = 0usize;
            self.for_each_row(&shape.select(), &mut |row| {
                rows += 1;
                read(row)
            })
            .map_err(|error| TransferError::Database(format!("reading {name}: {error}")))?;
            progress(&format!(
                "read {name}: {rows} rows ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        };
        step(&RESOURCE_CLASSES, &mut |row| {
            data.resource_classes.push(named(row, "name")?);
            Ok(())
        })?;
        step(&TRAITS, &mut |row| {
            data.traits.push(named(row, "name")?);
            Ok(())
        })?;
        step(&RESOURCE_PROVIDERS, &mut |row| {
            let id = int32(row, "id")?;
            data.providers.push(Provider {
                id,
                uuid: uuid(row, "uuid")?,
                name: row.text("name")?.ok_or_else(|| {
                    format!("resource provider id {id} has no name, which Placement requires")
                })?,
                generation: optional_int32(row, "generation")?.unwrap_or(0),
                root_provider_id: int32(row, "root_provider_id")?,
                parent_provider_id: optional_int32(row, "parent_provider_id")?,
                created_at: row.time("created_at")?,
                updated_at: row.time("updated_at")?,
            });
            Ok(())
        })?;
        step(&INVENTORIES, &mut |row| {
            data.inventories.push(Inventory {
                id: int32(row, "id")?,
                resource_provider_id: int32(row, "resource_provider_id")?,
                resource_class_id: int32(row, "resource_class_id")?,
                total: required(row.int("total"), "total")?,
                reserved: required(row.int("reserved"), "reserved")?,
                min_unit: required(row.int("min_unit"), "min_unit")?,
                max_unit: required(row.int("max_unit"), "max_unit")?,
                step_size: required(row.int("step_size"), "step_size")?,
                allocation_ratio: required(row.float("allocation_ratio"), "allocation_ratio")?,
                created_at: row.time("created_at")?,
                updated_at: row.time("updated_at")?,
            });
            Ok(())
        })?;
        step(&PLACEMENT_AGGREGATES, &mut |row| {
            data.aggregates.push(Aggregate {
                id: int32(row, "id")?,
                uuid: uuid(row, "uuid")?,
                created_at: row.time("created_at")?,
                updated_at: row.time("updated_at")?,
            });
            Ok(())
        })?;
        step(&RESOURCE_PROVIDER_TRAITS, &mut |row| {
            data.provider_traits.push(link(row, "trait_id")?);
            Ok(())
        })?;
        step(&RESOURCE_PROVIDER_AGGREGATES, &mut |row| {
            data.provider_aggregates.push(link(row, "aggregate_id")?);
            Ok(())
        })?;
        step(&PROJECTS, &mut |row| {
            data.projects.push(named(row, "external_id")?);
            Ok(())
        })?;
        step(&USERS, &mut |row| {
            data.users.push(named(row, "external_id")?);
            Ok(())
        })?;
        step(&CONSUMER_TYPES, &mut |row| {
            data.consumer_types.push(named(row, "name")?);
            Ok(())
        })?;
        step(&CONSUMERS, &mut |row| {
            data.consumers.push(Consumer {
                id: int32(row, "id")?,
                uuid: uuid(row, "uuid")?,
                project_id: int32(row, "project_id")?,
                user_id: int32(row, "user_id")?,
                generation: optional_int32(row, "generation")?.unwrap_or(0),
                consumer_type_id: optional_int32(row, "consumer_type_id")?,
                created_at: row.time("created_at")?,
                updated_at: row.time("updated_at")?,
            });
            Ok(())
        })?;
        step(&ALLOCATIONS, &mut |row| {
            data.allocations.push(Allocation {
                id: required(row.int("id"), "id")?,
                resource_provider_id: int32(row, "resource_provider_id")?,
                consumer_id: uuid(row, "consumer_id")?,
                resource_class_id: int32(row, "resource_class_id")?,
                used: required(row.int("used"), "used")?,
                created_at: row.time("created_at")?,
                updated_at: row.time("updated_at")?,
            });
            Ok(())
        })?;
        Ok(data)
    }

    /// Writes `data` into this empty database in one transaction: the
    /// standard class and trait rows there (a server's start-up adds them)
    /// are replaced by those of `data`, ids kept, and the id sequences
    /// moved past the highest ids. On this server's schema the change-log
    /// triggers are off for the copy, the standard rows `data` lacks are
    /// added, and every running process is told to reload its view.
    pub fn write(&mut self, data: &Dataset, progress: &dyn Fn(&str)) -> Result<(), TransferError> {
        let schema = self.schema;
        // This server requires `created_at`; upstream's rows may lack it
        // (the consumers an import makes always do): the time of the copy.
        let created_default = (schema == Schema::Ours).then(|| chrono::Utc::now().naive_utc());
        let tables = export_tables(data, created_default);
        let result = match &mut self.backend {
            Backend::Postgres(client) => write_postgres(client, schema, tables, progress),
            Backend::MySql(connection) => write_mysql(connection, tables, progress),
        };
        if result.is_err() {
            // Leaves the database as it was.
            let _ = self.rollback();
        }
        result
    }

    fn rollback(&mut self) -> Result<(), TransferError> {
        match &mut self.backend {
            Backend::Postgres(client) => client.batch_execute("ROLLBACK").map_err(database_error),
            Backend::MySql(connection) => connection.query_drop("ROLLBACK").map_err(database_error),
        }
    }

    /// Runs `query`, handing each row to `each` as it arrives (no result
    /// set held in memory).
    fn for_each_row(
        &mut self,
        query: &str,
        each: &mut dyn FnMut(&dyn SourceRow) -> Result<(), String>,
    ) -> Result<(), String> {
        match &mut self.backend {
            Backend::Postgres(client) => {
                let mut rows = client
                    .query_raw(query, std::iter::empty::<i32>())
                    .map_err(|error| error.to_string())?;
                while let Some(row) = rows.next().map_err(|error| error.to_string())? {
                    each(&row)?;
                }
            }
            Backend::MySql(connection) => {
                let result = connection
                    .query_iter(query)
                    .map_err(|error| error.to_string())?;
                for row in result {
                    each(&row.map_err(|error| error.to_string())?)?;
                }
            }
        }
        Ok(())
    }
}

/// A row of either database, read by column name.
trait SourceRow {
    fn int(&self, column: &str) -> Result<Option<i64>, String>;
    fn float(&self, column: &str) -> Result<Option<f64>, String>;
    fn text(&self, column: &str) -> Result<Option<String>, String>;
    fn time(&self, column: &str) -> Result<Time, String>;
}

/// A single-precision float as the decimal MySQL shows for it (`1.1`, not
/// `1.100000023841858`), which is what upstream reads back.
fn widen(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

fn wrong_type(column: &str, error: impl std::fmt::Display) -> String {
    format!("column {column}: {error}")
}

impl SourceRow for postgres::Row {
    fn int(&self, column: &str) -> Result<Option<i64>, String> {
        let got = match postgres_type(self, column)? {
            Type::INT2 => self
                .try_get::<_, Option<i16>>(column)
                .map(|v| v.map(i64::from)),
            Type::INT4 => self
                .try_get::<_, Option<i32>>(column)
                .map(|v| v.map(i64::from)),
            _ => self.try_get::<_, Option<i64>>(column),
        };
        got.map_err(|error| wrong_type(column, error))
    }

    fn float(&self, column: &str) -> Result<Option<f64>, String> {
        let got = match postgres_type(self, column)? {
            Type::FLOAT4 => self.try_get::<_, Option<f32>>(column).map(|v| v.map(widen)),
            _ => self.try_get::<_, Option<f64>>(column),
        };
        got.map_err(|error| wrong_type(column, error))
    }

    fn text(&self, column: &str) -> Result<Option<String>, String> {
        let got = match postgres_type(self, column)? {
            Type::UUID => self
                .try_get::<_, Option<Uuid>>(column)
                .map(|v| v.map(|uuid| uuid.hyphenated().to_string())),
            _ => self.try_get::<_, Option<String>>(column),
        };
        got.map_err(|error| wrong_type(column, error))
    }

    fn time(&self, column: &str) -> Result<Time, String> {
        let got = match postgres_type(self, column)? {
            Type::TIMESTAMPTZ => self
                .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(column)
                .map(|v| v.map(|time| time.naive_utc())),
            _ => self.try_get::<_, Option<NaiveDateTime>>(column),
        };
        got.map_err(|error| wrong_type(column, error))
    }
}

fn postgres_type(row: &postgres::Row, column: &str) -> Result<Type, String> {
    row.columns()
        .iter()
        .find(|candidate| candidate.name() == column)
        .map(|found| found.type_().clone())
        .ok_or_else(|| format!("no column {column}"))
}

impl SourceRow for mysql::Row {
    fn int(&self, column: &str) -> Result<Option<i64>, String> {
        mysql_value(self, column)
    }

    fn float(&self, column: &str) -> Result<Option<f64>, String> {
        match self.get_opt::<mysql::Value, _>(column) {
            Some(Ok(mysql::Value::Float(value))) => Ok(Some(widen(value))),
            _ => mysql_value(self, column),
        }
    }

    fn text(&self, column: &str) -> Result<Option<String>, String> {
        mysql_value(self, column)
    }

    fn time(&self, column: &str) -> Result<Time, String> {
        mysql_value(self, column)
    }
}

fn mysql_value<T: mysql::prelude::FromValue>(
    row: &mysql::Row,
    column: &str,
) -> Result<Option<T>, String> {
    match row.get_opt::<Option<T>, _>(column) {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) => Err(wrong_type(column, error)),
        None => Err(format!("no column {column}")),
    }
}

fn required<T>(value: Result<Option<T>, String>, column: &str) -> Result<T, String> {
    value?.ok_or_else(|| format!("column {column} is NULL"))
}

fn int32(row: &dyn SourceRow, column: &str) -> Result<i32, String> {
    optional_int32(row, column)?.ok_or_else(|| format!("column {column} is NULL"))
}

fn optional_int32(row: &dyn SourceRow, column: &str) -> Result<Option<i32>, String> {
    row.int(column)?
        .map(|value| {
            i32::try_from(value).map_err(|_| format!("column {column}: {value} is out of range"))
        })
        .transpose()
}

fn uuid(row: &dyn SourceRow, column: &str) -> Result<Uuid, String> {
    let text = required(row.text(column), column)?;
    Uuid::parse_str(text.trim()).map_err(|_| format!("column {column}: {text:?} is not a uuid"))
}

fn named(row: &dyn SourceRow, name_column: &str) -> Result<Named, String> {
    Ok(Named {
        id: int32(row, "id")?,
        name: required(row.text(name_column), name_column)?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

fn link(row: &dyn SourceRow, other_column: &str) -> Result<Link, String> {
    Ok(Link {
        resource_provider_id: int32(row, "resource_provider_id")?,
        other_id: int32(row, other_column)?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A value to write.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    /// Stored as upstream does: hyphenated, lower case.
    Uuid(Uuid),
    Time(Time),
    Null,
}

impl Cell<'_> {
    fn optional_int(value: Option<i32>) -> Cell<'static> {
        value.map_or(Cell::Null, |value| Cell::Int(value.into()))
    }
}

type Rows<'a> = Box<dyn Iterator<Item = Vec<Cell<'a>>> + 'a>;

/// One table to write: its shape and its rows, cells in the shape's
/// column order.
struct Table<'a> {
    shape: &'static Shape,
    rows: Rows<'a>,
}

fn named_rows(rows: &[Named], created_default: Time) -> Rows<'_> {
    Box::new(rows.iter().map(move |row| {
        vec![
            Cell::Int(row.id.into()),
            Cell::Text(&row.name),
            Cell::Time(row.created_at.or(created_default)),
            Cell::Time(row.updated_at),
        ]
    }))
}

fn link_rows(rows: &[Link], created_default: Time) -> Rows<'_> {
    Box::new(rows.iter().map(move |row| {
        vec![
            Cell::Int(row.resource_provider_id.into()),
            Cell::Int(row.other_id.into()),
            Cell::Time(row.created_at.or(created_default)),
            Cell::Time(row.updated_at),
        ]
    }))
}

/// The tables in an order their references allow (a table's references
/// written before it); a missing `created_at` becomes `created_default`.
fn export_tables(data: &Dataset, created_default: Time) -> Vec<Table<'_>> {
    let table = |shape, rows| Table { shape, rows };
    vec![
        table(
            &RESOURCE_CLASSES,
            named_rows(&data.resource_classes, created_default),
        ),
        table(&TRAITS, named_rows(&data.traits, created_default)),
        table(
            &RESOURCE_PROVIDERS,
            Box::new(data.providers.iter().map(move |row| {
                vec![
                    Cell::Int(row.id.into()),
                    Cell::Uuid(row.uuid),
                    Cell::Text(&row.name),
                    Cell::Int(row.generation.into()),
                    Cell::Int(row.root_provider_id.into()),
                    Cell::optional_int(row.parent_provider_id),
                    Cell::Time(row.created_at.or(created_default)),
                    Cell::Time(row.updated_at),
                ]
            })),
        ),
        table(
            &INVENTORIES,
            Box::new(data.inventories.iter().map(move |row| {
                vec![
                    Cell::Int(row.id.into()),
                    Cell::Int(row.resource_provider_id.into()),
                    Cell::Int(row.resource_class_id.into()),
                    Cell::Int(row.total),
                    Cell::Int(row.reserved),
                    Cell::Int(row.min_unit),
                    Cell::Int(row.max_unit),
                    Cell::Int(row.step_size),
                    Cell::Float(row.allocation_ratio),
                    Cell::Time(row.created_at.or(created_default)),
                    Cell::Time(row.updated_at),
                ]
            })),
        ),
        table(
            &PLACEMENT_AGGREGATES,
            Box::new(data.aggregates.iter().map(move |row| {
                vec![
                    Cell::Int(row.id.into()),
                    Cell::Uuid(row.uuid),
                    Cell::Time(row.created_at.or(created_default)),
                    Cell::Time(row.updated_at),
                ]
            })),
        ),
        table(
            &RESOURCE_PROVIDER_TRAITS,
            link_rows(&data.provider_traits, created_default),
        ),
        table(
            &RESOURCE_PROVIDER_AGGREGATES,
            link_rows(&data.provider_aggregates, created_default),
        ),
        table(&PROJECTS, named_rows(&data.projects, created_default)),
        table(&USERS, named_rows(&data.users, created_default)),
        table(
            &CONSUMER_TYPES,
            named_rows(&data.consumer_types, created_default),
        ),
        table(
            &CONSUMERS,
            Box::new(data.consumers.iter().map(move |row| {
                vec![
                    Cell::Int(row.id.into()),
                    Cell::Uuid(row.uuid),
                    Cell::Int(row.project_id.into()),
                    Cell::Int(row.user_id.into()),
                    Cell::Int(row.generation.into()),
                    Cell::optional_int(row.consumer_type_id),
                    Cell::Time(row.created_at.or(created_default)),
                    Cell::Time(row.updated_at),
                ]
            })),
        ),
        table(
            &ALLOCATIONS,
            Box::new(data.allocations.iter().map(move |row| {
                vec![
                    Cell::Int(row.id),
                    Cell::Int(row.resource_provider_id.into()),
                    Cell::Uuid(row.consumer_id),
                    Cell::Int(row.resource_class_id.into()),
                    Cell::Int(row.used),
                    Cell::Time(row.created_at.or(created_default)),
                    Cell::Time(row.updated_at),
                ]
            })),
        ),
    ]
}

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// PostgreSQL's COPY text format: tab-separated, `\N` for NULL, with
/// backslash, tab, newline and carriage return escaped.
fn copy_line(out: &mut Vec<u8>, cells: &[Cell<'_>]) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(b'\t');
        }
        match cell {
            Cell::Int(value) => {
                let _ = write!(out, "{value}");
            }
            Cell::Float(value) => {
                let _ = write!(out, "{value:?}");
            }
            Cell::Text(text) => {
                for byte in text.bytes() {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
            }
            Cell::Uuid(uuid) => {
                let _ = write!(out, "{}", uuid.hyphenated());
            }
            Cell::Time(Some(time)) => {
                let _ = write!(out, "{}", time.format(TIME_FORMAT));
            }
            Cell::Time(None) | Cell::Null => out.extend_from_slice(b"\\N"),
        }
    }
    out.push(b'\n');
}

/// The statements that leave an upstream schema without its own standard
/// class and trait rows, for the exported ones (ids and all) to replace.
const CLEAR_STANDARD_ROWS: [&str; 3] = [
    "DELETE FROM resource_provider_traits",
    "DELETE FROM traits",
    "DELETE FROM resource_classes",
];

fn write_postgres(
    client: &mut postgres::Client,
    schema: Schema,
    tables: Vec<Table<'_>>,
    progress: &dyn Fn(&str),
) -> Result<(), TransferError> {
    // Upstream's columns are naive UTC, this server's TIMESTAMPTZ.
    client
        .batch_execute("BEGIN; SET LOCAL TimeZone = 'UTC'")
        .map_err(database_error)?;
    let names: Vec<&str> = tables.iter().map(|table| table.shape.name).collect();
    if schema == Schema::Ours {
        // The change log would get a row per provider and table; running
        // processes are told to reload everything instead (below). The
        // lock this takes also holds off their writes until the commit.
        set_user_triggers(client, &names, "DISABLE")?;
    }
    for statement in CLEAR_STANDARD_ROWS {
        client.batch_execute(statement).map_err(database_error)?;
    }
    let rebuild = drop_foreign_keys_and_indexes(client, &names)?;
    for table in tables {
        copy_table(client, table, progress)?;
    }
    let started = Instant::now();
    for statement in &rebuild {
        client.batch_execute(statement).map_err(database_error)?;
    }
    progress(&format!(
        "rebuilt {} indexes and foreign keys ({:.1} s)",
        rebuild.len(),
        started.elapsed().as_secs_f64()
    ));
    if schema == Schema::Ours {
        set_user_triggers(client, &names, "ENABLE")?;
        finish_ours(client)?;
    }
    client.batch_execute("COMMIT").map_err(database_error)
}

/// `ALTER TABLE … DISABLE` or `ENABLE TRIGGER USER` on every table.
fn set_user_triggers(
    client: &mut postgres::Client,
    tables: &[&str],
    action: &str,
) -> Result<(), TransferError> {
    for table in tables {
        client
            .batch_execute(&format!("ALTER TABLE {table} {action} TRIGGER USER"))
            .map_err(database_error)?;
    }
    Ok(())
}

/// Drops the foreign keys and the secondary indexes (those backing no
/// primary key or unique constraint) of `tables`, as the catalog names
/// them, and returns the statements that make them again. Checking a
/// foreign key row by row and growing an index row by row cost most of a
/// bulk load; building each once after it is one sort or one join. The
/// drop is transactional: a failure puts them all back.
fn drop_foreign_keys_and_indexes(
    client: &mut postgres::Client,
    tables: &[&str],
) -> Result<Vec<String>, TransferError> {
    client
        .batch_execute("SET LOCAL maintenance_work_mem = '256MB'")
        .map_err(database_error)?;
    let foreign_keys = client
        .query(
            "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) \
             FROM pg_constraint \
             WHERE contype = 'f' AND conrelid::regclass::text = ANY($1)",
            &[&tables],
        )
        .map_err(database_error)?;
    let indexes = client
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i \
             WHERE i.indrelid::regclass::text = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                               WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))",
            &[&tables],
        )
        .map_err(database_error)?;
    // Indexes first: the foreign keys' checks may use them.
    let mut rebuild = Vec::new();
    for row in &indexes {
        let (name, definition): (String, String) = (row.get(0), row.get(1));
        client
            .batch_execute(&format!("DROP INDEX {name}"))
            .map_err(database_error)?;
        rebuild.push(definition);
    }
    for row in &foreign_keys {
        let (table, name, definition): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        client
            .batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT \"{name}\""))
            .map_err(database_error)?;
        rebuild.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT \"{name}\" {definition}"
        ));
    }
    Ok(rebuild)
}

fn copy_table(
    client: &mut postgres::Client,
    table: Table<'_>,
    progress: &dyn Fn(&str),
) -> Result<(), TransferError> {
    let started = Instant::now();
    let name = table.shape.name;
    let failed =
        |error: &dyn std::fmt::Display| TransferError::Database(format!("writing {name}: {error}"));
    let mut writer = client
        .copy_in(&format!(
            "COPY {name} ({}) FROM STDIN",
            table.shape.columns.join(", ")
        ))
        .map_err(|error| failed(&error))?;
    let mut buffer = Vec::with_capacity(COPY_CHUNK * 2);
    let mut rows = 0usize;
    for row in table.rows {
        copy_line(&mut buffer, &row);
        rows += 1;
        if buffer.len() >= COPY_CHUNK {
            writer.write_all(&buffer).map_err(|error| failed(&error))?;
            buffer.clear();
        }
    }
    writer.write_all(&buffer).map_err(|error| failed(&error))?;
    writer.finish().map_err(|error| failed(&error))?;
    if table.shape.id_sequence {
        // The next id past the highest written (SERIAL columns).
        client
            .batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), GREATEST(max(id), 1)) \
                 FROM {name} HAVING max(id) IS NOT NULL"
            ))
            .map_err(|error| failed(&error))?;
    }
    progress(&format!(
        "wrote {name}: {rows} rows ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// This server's schema after the copy: the custom class id sequence past
/// the highest custom id, and a change-log mark that makes every running
/// process reload its view in full (as after a prune it did not see).
fn finish_ours(client: &mut postgres::Client) -> Result<(), TransferError> {
    client
        .batch_execute(&format!(
            "SELECT setval('custom_resource_class_id_seq', \
                 GREATEST(COALESCE(max(id) + 1, {min}), {min}), false) \
             FROM resource_classes WHERE id >= {min}",
            min = MIN_CUSTOM_RESOURCE_CLASS_ID
        ))
        .map_err(database_error)?;
    client
        .batch_execute(
            "WITH mark AS (INSERT INTO provider_changes (provider_id) VALUES (NULL) RETURNING seq) \
             UPDATE provider_changes_pruned SET through = (SELECT seq FROM mark)",
        )
        .map_err(database_error)?;
    Ok(())
}

/// Bytes of COPY data sent at a time.
const COPY_CHUNK: usize = 1 << 16;
/// Rows per INSERT on MySQL (well under its 65,535 placeholders).
const MYSQL_BATCH: usize = 500;

fn mysql_cell(cell: &Cell<'_>) -> mysql::Value {
    use chrono::{Datelike, Timelike};
    match *cell {
        Cell::Int(value) => mysql::Value::Int(value),
        Cell::Float(value) => mysql::Value::Double(value),
        Cell::Text(text) => mysql::Value::Bytes(text.as_bytes().to_vec()),
        Cell::Uuid(uuid) => mysql::Value::Bytes(uuid.hyphenated().to_string().into_bytes()),
        Cell::Time(Some(time)) => mysql::Value::Date(
            u16::try_from(time.year()).unwrap_or(0),
            u8::try_from(time.month()).unwrap_or(0),
            u8::try_from(time.day()).unwrap_or(0),
            u8::try_from(time.hour()).unwrap_or(0),
            u8::try_from(time.minute()).unwrap_or(0),
            u8::try_from(time.second()).unwrap_or(0),
            time.nanosecond() / 1000,
        ),
        Cell::Time(None) | Cell::Null => mysql::Value::NULL,
    }
}

fn write_mysql(
    connection: &mut mysql::Conn,
    tables: Vec<Table<'_>>,
    progress: &dyn Fn(&str),
) -> Result<(), TransferError> {
    // VCPU's id is 0, which MySQL would otherwise take as "next
    // auto-increment value"; InnoDB checks foreign keys row by row, and a
    // provider may name a parent with a higher id.
    for statement in [
        "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
        "SET SESSION foreign_key_checks = 0",
        "START TRANSACTION",
    ]
    .into_iter()
    .chain(CLEAR_STANDARD_ROWS)
    {
        connection.query_drop(statement).map_err(database_error)?;
    }
    for table in tables {
        let started = Instant::now();
        let Shape { name, columns, .. } = *table.shape;
        let row_placeholders = format!("({})", vec!["?"; columns.len()].join(", "));
        let mut insert = |chunk: &[Vec<Cell<'_>>]| {
            let statement = format!(
                "INSERT INTO {name} ({}) VALUES {}",
                columns.join(", "),
                vec![row_placeholders.as_str(); chunk.len()].join(", ")
            );
            let values = chunk.iter().flatten().map(mysql_cell).collect();
            connection
                .exec_drop(statement, mysql::Params::Positional(values))
                .map_err(|error| TransferError::Database(format!("writing {name}: {error}")))
        };
        let mut rows = 0usize;
        let mut chunk = Vec::with_capacity(MYSQL_BATCH);
        for row in table.rows {
            chunk.push(row);
            rows += 1;
            if chunk.len() == MYSQL_BATCH {
                insert(&chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            insert(&chunk)?;
        }
        progress(&format!(
            "wrote {name}: {rows} rows ({:.1} s)",
            started.elapsed().as_secs_f64()
        ));
    }
    connection.query_drop("COMMIT").map_err(database_error)?;
    connection
        .query_drop("SET SESSION foreign_key_checks = 1")
        .map_err(database_error)
}
