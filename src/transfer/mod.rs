//! Switching a cloud over and back: `placement import` copies an upstream
//! Placement 16.0 database (PostgreSQL or MySQL/MariaDB) into this
//! server's empty one, `placement export` copies this server's data into
//! an empty upstream schema, and `--verify` compares the two through what
//! the API shows of each. Ids, uuids and generations are kept, so a client
//! holding a generation sees no conflict after the switch.
//!
//! Each direction is: connect to both, check the schema and that the
//! target is empty, read the source in one repeatable-read transaction
//! (`database`), check and complete what was read (`dataset::prepare`),
//! write it to the target in one transaction (`database`), print a
//! summary. Nothing is written to a target before every check passed, and
//! a failure while writing rolls the target back to empty.

mod database;
pub mod dataset;
pub mod model;

use std::time::Instant;

use database::{Database, Schema};
use dataset::{Dataset, Report, Rules};
use model::ApiView;

pub use database::{HEAD_REVISION, OLDEST_REVISION};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// What was found makes the copy wrong or impossible; the message says
    /// what to do.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Database(String),
}

/// Where the rows go and what was done.
pub struct Summary {
    pub counts: Vec<(&'static str, usize)>,
    pub report: Report,
    pub seconds: f64,
}

impl Summary {
    /// The summary as printed: a row count per table, then what was left
    /// out or added, then the time.
    pub fn lines(&self, verb: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .counts
            .iter()
            .map(|(table, count)| format!("{table:<30} {count:>10}"))
            .collect();
        if self.report.skipped > 0 {
            lines.push(format!(
                "skipped {} rows: {} orphans (--skip-orphans) and what referred to them",
                self.report.skipped,
                self.report.orphans.len()
            ));
        }
        if self.report.incomplete_consumers > 0 {
            lines.push(format!(
                "made {} incomplete consumer rows for allocations that had none",
                self.report.incomplete_consumers
            ));
        }
        let total: usize = self.counts.iter().map(|(_, count)| count).sum();
        lines.push(format!("{verb} {total} rows in {:.1} s", self.seconds));
        lines
    }
}

fn connect(url: &str, schema: Schema, role: &str) -> Result<Database, TransferError> {
    Database::connect(url, schema).map_err(|error| labelled(error, role))
}

/// `error` with the database it happened on named.
fn labelled(error: TransferError, role: &str) -> TransferError {
    match error {
        TransferError::Database(message) => TransferError::Database(format!("{role}: {message}")),
        refused => refused,
    }
}

fn refuse_unless_empty(database: &mut Database, role: &str) -> Result<(), TransferError> {
    match database.data_in().map_err(|error| labelled(error, role))? {
        None => Ok(()),
        Some((table, rows)) => Err(TransferError::Refused(format!(
            "the {role} is not empty ({table} has {rows} rows): it must hold no data, \
             only the standard resource classes and traits"
        ))),
    }
}

/// Reads an upstream database, checked and completed as an import needs.
fn read_upstream(
    url: &str,
    rules: &Rules,
    progress: &dyn Fn(&str),
) -> Result<(Dataset, Report), TransferError> {
    let role = "source database";
    let mut source = connect(url, Schema::Upstream, role)?;
    source.check_revision()?;
    let data = source
        .read(progress)
        .map_err(|error| labelled(error, role))?;
    dataset::prepare(data, rules)
}

/// `placement import --from URL`: this server's empty database at
/// `target_url` gets everything of the upstream database at `source_url`.
pub fn import(
    source_url: &str,
    target_url: &str,
    rules: &Rules,
    progress: &dyn Fn(&str),
) -> Result<Summary, TransferError> {
    let started = Instant::now();
    let role = "target database";
    let mut target = connect(target_url, Schema::Ours, role)?;
    refuse_unless_empty(&mut target, role)?;
    let (data, report) = read_upstream(source_url, rules, progress)?;
    for line in &report.orphans {
        progress(&format!("skipped {line}"));
    }
    target
        .write(&data, progress)
        .map_err(|error| labelled(error, role))?;
    Ok(Summary {
        counts: data.counts(),
        report,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `placement import --verify --from URL`: the differences between what
/// the API shows of the upstream database (read as an import reads it)
/// and of this server's.
pub fn verify_import(
    source_url: &str,
    target_url: &str,
    rules: &Rules,
    progress: &dyn Fn(&str),
) -> Result<Vec<String>, TransferError> {
    let (source, _) = read_upstream(source_url, rules, progress)?;
    let role = "target database";
    let target = connect(target_url, Schema::Ours, role)?
        .read(progress)
        .map_err(|error| labelled(error, role))?;
    Ok(model::differences(
        &ApiView::of(&source),
        &ApiView::of(&target),
    ))
}

/// `placement export --to URL`: the empty upstream schema at `target_url`
/// (made by upstream's `placement-manage db sync`) gets everything of this
/// server's database at `source_url`.
pub fn export(
    source_url: &str,
    target_url: &str,
    progress: &dyn Fn(&str),
) -> Result<Summary, TransferError> {
    let started = Instant::now();
    let role = "target database";
    let mut target = connect(target_url, Schema::Upstream, role)?;
    target.check_revision()?;
    refuse_unless_empty(&mut target, role)?;
    let data = read_ours(source_url, progress)?;
    target
        .write(&data, progress)
        .map_err(|error| labelled(error, role))?;
    Ok(Summary {
        counts: data.counts(),
        report: Report::default(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `placement export --verify --to URL`: the differences between what the
/// API shows of this server's database and of the upstream one.
pub fn verify_export(
    source_url: &str,
    target_url: &str,
    progress: &dyn Fn(&str),
) -> Result<Vec<String>, TransferError> {
    let source = read_ours(source_url, progress)?;
    let role = "target database";
    let mut target = connect(target_url, Schema::Upstream, role)?;
    target.check_revision()?;
    let target = target
        .read(progress)
        .map_err(|error| labelled(error, role))?;
    Ok(model::differences(
        &ApiView::of(&source),
        &ApiView::of(&target),
    ))
}

fn read_ours(url: &str, progress: &dyn Fn(&str)) -> Result<Dataset, TransferError> {
    let role = "source database";
    connect(url, Schema::Ours, role)?
        .read(progress)
        .map_err(|error| labelled(error, role))
}
