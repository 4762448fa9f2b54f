//! The `remesa` binary: parses the command line and runs it (see `remesa --help`).

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let filter = EnvFilter::try_from_env("REMESA_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("REMESA_LOG_FORMAT").is_ok_and(|v| v == "json");
    if json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = remesa::cli::Cli::parse();
    if let Err(e) = remesa::cli::run(cli).await {
        eprintln!("remesa: {e:#}");
        std::process::exit(1);
    }
}
