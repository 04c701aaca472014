//! The `placement` command: `serve` (the default) runs the API server;
//! `migrate`, `status upgrade check`, `config sample` and `version` are
//! the operator's tools around it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use placement::auth::keystone::Keystone;
use placement::config::{self, AuthStrategy, Config, ConfigFiles, KeystoneConfig};
use placement::status::{self, CheckResult};
use placement::{server, telemetry, transfer};

/// An OpenStack Placement API server (microversions 1.0 to 1.39) on
/// PostgreSQL.
#[derive(Parser)]
#[command(name = "placement", version, about)]
struct Cli {
    #[command(flatten)]
    files: FileArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the configuration comes from (as oslo.config's options).
#[derive(Args, Clone, Default)]
struct FileArgs {
    /// A placement.conf to read; repeatable, later files win. Without
    /// this or --config-dir: $OS_PLACEMENT_CONFIG_DIR/placement.conf, or
    /// the first placement.conf in ~/.placement/, ~/, /etc/placement/,
    /// /etc/ (plus placement.conf.d/).
    #[arg(long = "config-file", value_name = "PATH", global = true)]
    config_file: Vec<PathBuf>,
    /// A directory whose *.conf files are read in name order, after
    /// --config-file; repeatable.
    #[arg(long = "config-dir", value_name = "DIR", global = true)]
    config_dir: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (the default). Applies migrations first unless
    /// [placement_database] sync_on_startup = false. SIGTERM or SIGINT
    /// stops it after requests in flight finish.
    #[command(after_help = options_help())]
    Serve,
    /// Apply the database migrations and sync the standard resource
    /// classes and traits, then exit.
    Migrate,
    /// Checks before an upgrade, as upstream's placement-status.
    Status {
        #[command(subcommand)]
        command: StatusCommand,
    },
    /// The configuration options.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Copy an upstream Placement 16.0 database (PostgreSQL or
    /// MySQL/MariaDB) into this server's empty database, ids, uuids and
    /// generations kept; with --verify, compare the two instead. Exits 1
    /// when it refuses (the reason on stderr) or verify finds a difference.
    Import {
        /// The upstream database, as oslo.db names it:
        /// mysql+pymysql://user:password@host/placement,
        /// postgresql://user@host/placement, ...
        #[arg(long, value_name = "URL")]
        from: String,
        /// Copy nothing; print every difference between what the API shows
        /// of the two databases.
        #[arg(long)]
        verify: bool,
        /// Leave out rows that refer to rows that do not exist (reported
        /// one by one) instead of refusing.
        #[arg(long)]
        skip_orphans: bool,
    },
    /// Copy this server's data into an empty upstream Placement 16.0
    /// schema (made by upstream's `placement-manage db sync`), so that
    /// upstream serves it unchanged; with --verify, compare the two
    /// instead.
    Export {
        /// The upstream database (see `import --from`).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Copy nothing; print every difference.
        #[arg(long)]
        verify: bool,
    },
    /// Print the version and the microversions served.
    Version,
}

#[derive(Subcommand)]
enum StatusCommand {
    /// Upgrade readiness checks.
    Upgrade {
        #[command(subcommand)]
        command: UpgradeCommand,
    },
}

#[derive(Subcommand)]
enum UpgradeCommand {
    /// Run every check; exit 0 (success), 1 (warning), 2 (failure) or
    /// 255 (the checks could not run).
    Check {
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented placement.conf with every option and its default.
    Sample,
}

fn options_help() -> String {
    format!(
        "Configuration options ([section] name = default; each also settable as \
         OS_<SECTION>__<NAME>):\n{}",
        config::sample::summary()
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let files = ConfigFiles {
        files: cli.files.config_file.clone(),
        dirs: cli.files.config_dir.clone(),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Version => {
            println!(
                "placement-rs {} (Placement API microversions {} to {})",
                env!("CARGO_PKG_VERSION"),
                placement::http::microversion::MIN,
                placement::http::microversion::MAX
            );
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Sample,
        } => {
            print!("{}", config::sample::sample());
            ExitCode::SUCCESS
        }
        Command::Import {
            from,
            verify,
            skip_orphans,
        } => copy_or_compare(&files, Direction::Import { skip_orphans }, &from, verify),
        Command::Export { to, verify } => copy_or_compare(&files, Direction::Export, &to, verify),
        Command::Serve => run(&files, serve),
        Command::Migrate => run(&files, migrate),
        Command::Status {
            command:
                StatusCommand::Upgrade {
                    command: UpgradeCommand::Check { json },
                },
        } => upgrade_check(&files, json),
    }
}

/// Loads the configuration, sets up logging and runs `command`.
fn run(files: &ConfigFiles, command: fn(Config) -> Result<(), String>) -> ExitCode {
    let config = match load(files) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match command(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("placement: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(files: &ConfigFiles) -> Result<Config, ExitCode> {
    match Config::load(files) {
        Ok((config, warnings)) => {
            telemetry::init_logging(&config.log_filter, config.log_format);
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            Ok(config)
        }
        Err(error) => {
            eprintln!("placement: {error}");
            Err(ExitCode::from(2))
        }
    }
}

fn migrate(config: Config) -> Result<(), String> {
    let database = server::connect(&config).map_err(|error| error.to_string())?;
    server::prepare_database(&database, true).map_err(|error| error.to_string())?;
    tracing::info!("database is up to date");
    Ok(())
}

fn serve(config: Config) -> Result<(), String> {
    let (listener, metrics_listener) = server::bind(&config).map_err(|error| error.to_string())?;
    let address = config.listen;
    let state = server::build_state(config).map_err(|error| error.to_string())?;
    tracing::info!(%address, "serving the Placement API");
    actix_web::rt::System::new()
        .block_on(server::serve(state, listener, metrics_listener))
        .map_err(|error| error.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

enum Direction {
    Import { skip_orphans: bool },
    Export,
}

/// `import` and `export`: progress on stderr, the summary (or the
/// differences) on stdout.
fn copy_or_compare(
    files: &ConfigFiles,
    direction: Direction,
    upstream_url: &str,
    verify: bool,
) -> ExitCode {
    let config = match load(files) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // This server's schema first: import writes into it, export reads it.
    if let Err(message) = migrate(config.clone()) {
        eprintln!("placement: {message}");
        return ExitCode::FAILURE;
    }
    let ours = &config.database_url;
    let progress = |line: &str| eprintln!("{line}");
    let rules = transfer::dataset::Rules {
        skip_orphans: matches!(direction, Direction::Import { skip_orphans: true }),
        incomplete_project: config.incomplete_consumer_project_id.clone(),
        incomplete_user: config.incomplete_consumer_user_id.clone(),
    };
    let outcome = match (&direction, verify) {
        (Direction::Import { .. }, false) => {
            transfer::import(upstream_url, ours, &rules, &progress).and_then(|summary| {
                // The standard classes and traits an older source lacked,
                // as every start-up adds them.
                migrate(config.clone()).map_err(transfer::TransferError::Database)?;
                Ok((summary.lines("imported"), true))
            })
        }
        (Direction::Export, false) => transfer::export(ours, upstream_url, &progress)
            .map(|summary| (summary.lines("exported"), true)),
        (Direction::Import { .. }, true) => {
            transfer::verify_import(upstream_url, ours, &rules, &progress).map(differences)
        }
        (Direction::Export, true) => {
            transfer::verify_export(ours, upstream_url, &progress).map(differences)
        }
    };
    match outcome {
        Ok((lines, success)) => {
            for line in lines {
                println!("{line}");
            }
            if success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("placement: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What verify prints, and whether it found the databases equal.
fn differences(found: Vec<String>) -> (Vec<String>, bool) {
    if found.is_empty() {
        (vec!["no differences".to_owned()], true)
    } else {
        let count = found.len();
        let mut lines: Vec<String> = found
            .into_iter()
            .map(|line| format!("difference: {line}"))
            .collect();
        lines.push(format!("{count} differences"));
        (lines, false)
    }
}

/// upstream's `placement-status upgrade check`, plus this server's checks
/// and, with `auth_strategy = keystone`, the service user's login.
fn upgrade_check(files: &ConfigFiles, json: bool) -> ExitCode {
    let config = match load(files) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut report = status::upgrade_check(
        &config.database_url,
        &config.policy_files,
        config.policy_defaults,
    );
    match &config.auth {
        AuthStrategy::NoAuth2 => {}
        AuthStrategy::KeystoneMisconfigured(problem) => {
            report.push(CheckResult::failure(KEYSTONE_CHECK, problem.clone()));
        }
        AuthStrategy::Keystone(options) => {
            report.push(keystone_check(options));
        }
    }
    if json {
        println!("{}", report.render_json());
    } else {
        println!("{}", report.render_table());
    }
    ExitCode::from(report.exit_code())
}

const KEYSTONE_CHECK: &str = "Keystone Service User";

/// Logs in as `[keystone_authtoken]`'s service user and finds the identity
/// endpoint tokens are validated at.
fn keystone_check(options: &KeystoneConfig) -> CheckResult {
    let metrics = std::sync::Arc::new(telemetry::Metrics::new());
    let keystone = match Keystone::new(options.clone(), metrics) {
        Ok(keystone) => keystone,
        Err(error) => return CheckResult::failure(KEYSTONE_CHECK, error.to_string()),
    };
    match actix_web::rt::System::new().block_on(keystone.check_service_login()) {
        Ok(_) => CheckResult::success(KEYSTONE_CHECK),
        Err(error) => CheckResult::failure(KEYSTONE_CHECK, error),
    }
}
