//! `radstudy`: the study coordinator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use radstudy::config::StudyConfig;
use radstudy::run::{StartMode, StudyOutcome, run_study_from};

/// Runs multi-center radiomics studies: drives the hospital workers over
/// gRPC, gathers pseudonymised feature tables, fits and validates models.
#[derive(Debug, Parser)]
#[command(name = "radstudy", version)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    /// Hide the progress bars.
    #[arg(long, global = true)]
    no_progress: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the study described by a study.toml against its workers.
    Run {
        /// The study plan.
        study: PathBuf,
        /// Study directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Continue the study in --out from its last completed stage
        /// (extraction, feature table, ICC filter), reusing its round ids.
        /// Without it, a --out that contains checkpoints (state/) is rejected.
        #[arg(long)]
        resume: bool,
    },
    /// Generate a synthetic two-center cohort, start two local workers, and
    /// run a study on it.
    Demo {
        /// Directory for the cohort, worker logs and the study.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);

    let result = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("radstudy: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let show_progress = !cli.no_progress;
    let outcome = match cli.command {
        Command::Run { study, out, resume } => {
            let config = StudyConfig::load(&study)?;
            let mode = if resume {
                StartMode::Resume
            } else {
                StartMode::New
            };
            tokio::select! {
                outcome = run_study_from(&config, &out, show_progress, mode) => outcome?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!(
                        "radstudy: interrupted; the study in {} is incomplete. Rerun the same command with --resume to continue from its last completed stage.",
                        out.display()
                    );
                    return Ok(ExitCode::from(130));
                }
            }
        }
        Command::Demo { out } => {
            let out = std::path::absolute(&out)
                .with_context(|| format!("invalid --out {}", out.display()))?;
            radstudy::demo::run_demo(&out, show_progress).await?
        }
    };
    print_summary(&outcome);
    // Exit status 3: the study finished, but a center was left out (clap
    // uses 2 for usage errors).
    Ok(if outcome.failed_centers.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_summary(outcome: &StudyOutcome) {
    println!();
    print!("{}", outcome.metrics_table);
    println!();
    println!(
        "{} patients; {} patient-sequence exclusions (see exclusions.csv)",
        outcome.n_patients,
        outcome.exclusions.len()
    );
    if outcome.n_scored_remotely > 0 {
        println!(
            "{} more patients scored at scores-only centers (see scores_only.json)",
            outcome.n_scored_remotely
        );
    }
    for skipped in &outcome.modelling.skipped {
        println!("model {} skipped: {}", skipped.model, skipped.reason);
    }
    for note in &outcome.notes {
        println!("note: {note}");
    }
    for failure in &outcome.failed_centers {
        println!("center {} left out: {}", failure.center, failure.reason);
    }
    println!("study directory: {}", outcome.out_dir.display());
    // A failed report leaves a note above, and any older report.html in the
    // directory is stale, so its path is printed only after a success.
    let report = outcome.out_dir.join("report.html");
    let report_failed = outcome
        .notes
        .iter()
        .any(|n| n.starts_with("report.html not written"));
    if report.exists() && !report_failed {
        println!("report: {}", report.display());
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
