//! `remesa-bench`: measures the figures of `BENCHMARKS.md`, each beside its baseline, and writes the report.
//!
//! Run it through `scripts/bench.sh` (which builds the binaries first); `remesa-bench run --help` lists the knobs.
//! Figures whose pieces are missing are reported as "not measured: <why>", never estimated.

// Benchmark statistics (rates, latencies, byte counts) are measurements, not money: floats are the right tool here.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

mod dev;
mod erc20;
mod figures;
mod floor;
mod gas;
mod loadgen;
mod machine;
mod node;
mod partner;
mod pg;
mod procs;
mod report;
mod sanctions;
mod settle;
mod sqlite;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "remesa-bench",
    about = "Remesa's benchmark figures, each beside its baseline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the figures and write the Markdown report.
    Run(Box<RunArgs>),
    /// Sanctions screening latency, recall and false positives on a synthetic list in OFAC's CSV formats.
    Sanctions {
        #[arg(long, default_value_t = 20_000)]
        entries: usize,
        #[arg(long, default_value_t = 400)]
        variants: usize,
        #[arg(long, default_value_t = 2_500)]
        unlisted: usize,
    },
    /// The floor server: tokio + axum answering a constant page (the baseline of figures 4 and 5).
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: std::net::SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Tiny sizes, one run: checks that every figure can still be measured (CI).
    #[arg(long)]
    smoke: bool,
    /// Where to write the report.
    #[arg(long)]
    out: PathBuf,
    /// Runs per figure (the report shows the median, min and max). Default: 3, or 1 with --smoke.
    #[arg(long)]
    runs: Option<usize>,
    /// Remittances per run of the node-bound figures 2b and 2c instead of their sizes (10,000; 20 with --smoke): for
    /// profiling; the report's method states the size each ran at.
    #[arg(long)]
    node_bound_remittances: Option<usize>,
    /// Only these figures (comma-separated labels, e.g. `2,2b,3`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Repository root (default: found from this crate's location).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The `remesa` binary to measure (default: target/release/remesa, or target/debug/remesa with --smoke).
    #[arg(long)]
    remesa_bin: Option<PathBuf>,
    /// The anvil binary (default: contracts/node_modules/.bin/anvil).
    #[arg(long)]
    anvil_bin: Option<PathBuf>,
    /// Scratch directory for data directories and SQLite files; must be on the disk being measured
    /// (default: target/bench-work).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Build profile of the binaries, for the report.
    #[arg(long, default_value = "release")]
    profile: String,
    /// The command line shown in the report.
    #[arg(long, default_value = "scripts/bench.sh")]
    command: String,
}

/// Everything a figure needs to know about where things are and how big to go.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub repo: PathBuf,
    pub remesa_bin: PathBuf,
    pub anvil_bin: PathBuf,
    pub work_dir: PathBuf,
    pub smoke: bool,
    pub runs: usize,
    /// `--node-bound-remittances`: the size of figures 2b and 2c when given.
    pub node_bound_remittances: Option<usize>,
}

impl Ctx {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }
}

fn default_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let repo = args.repo.clone().unwrap_or_else(default_repo);
    let profile_dir = if args.smoke && args.remesa_bin.is_none() && args.profile != "release" {
        "debug"
    } else {
        "release"
    };
    let ctx = Ctx {
        remesa_bin: args
            .remesa_bin
            .clone()
            .unwrap_or_else(|| repo.join("target").join(profile_dir).join("remesa")),
        anvil_bin: args
            .anvil_bin
            .clone()
            .unwrap_or_else(|| repo.join("contracts/node_modules/.bin/anvil")),
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| repo.join("target/bench-work")),
        smoke: args.smoke,
        runs: args.runs.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
        node_bound_remittances: args.node_bound_remittances.map(|n| n.max(1)),
        repo,
    };
    std::fs::create_dir_all(&ctx.work_dir).with_context(|| format!("creating {}", ctx.work_dir.display()))?;
    let machine = machine::Machine::detect(&ctx.repo, &ctx.anvil_bin, &args.profile);
    let figures = figures::run_all(&ctx, &args.only).await;
    let text = report::render(&figures, &machine, ctx.smoke, ctx.runs, &args.command);
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("report written to {}", args.out.display());
    let mut all_measured = true;
    for f in &figures {
        match &f.outcome {
            report::Outcome::NotMeasured(why) => {
                all_measured = false;
                eprintln!("figure {} ({}): NOT MEASURED: {why}", f.number, f.title);
            }
            report::Outcome::Measured(m) => {
                let headline = m.metrics.first().map(report::Metric::summary).unwrap_or_default();
                eprintln!("figure {} ({}): {headline}", f.number, f.title);
            }
        }
    }
    Ok(all_measured)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The in-process partner simulator's warnings (refused steps, failed polls) say why a run is slow.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REMESA_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("remesa-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.cmd {
        Cmd::Run(args) => rt.block_on(run(*args)),
        Cmd::FloorServer { addr } => rt.block_on(floor::serve_floor(addr)).map(|()| true),
        Cmd::Sanctions {
            entries,
            variants,
            unlisted,
        } => sanctions::run(entries, variants, unlisted).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("remesa-bench: some figures could not be measured (see above)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("remesa-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
