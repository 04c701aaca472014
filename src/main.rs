//! The `placement` command: `serve` (the default) runs the API server,
//! `migrate` applies the database migrations and exits.

use std::process::ExitCode;

use placement::config::Config;
use placement::server;
use placement::storage::Database;

const USAGE: &str = "usage: placement [serve|migrate]

  serve    run the API server (applies migrations first unless
           PLACEMENT_MIGRATE_ON_START=false)
  migrate  apply the database migrations and sync standard data, then exit

Configuration comes from the environment; see README.md.";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLACEMENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    init_logging();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("placement: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "serve" => serve(config),
        "migrate" => migrate(&config),
        other => {
            eprintln!("placement: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("placement: {message}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(config: &Config) -> Result<(), String> {
    let database = Database::connect(&config.database_url, 1).map_err(|error| error.to_string())?;
    server::prepare_database(&database, true).map_err(|error| error.to_string())?;
    tracing::info!("database is up to date");
    Ok(())
}

fn serve(config: Config) -> Result<(), String> {
    let listener = server::bind(&config).map_err(|error| error.to_string())?;
    let address = config.listen;
    let state = server::build_state(config).map_err(|error| error.to_string())?;
    tracing::info!(%address, "serving the Placement API");
    actix_web::rt::System::new()
        .block_on(server::serve(state, listener))
        .map_err(|error| error.to_string())
}
