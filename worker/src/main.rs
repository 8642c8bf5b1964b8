//! `radstudy-worker`: the hospital worker daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use radstudy_worker::pseudonym::PseudonymKey;
use radstudy_worker::server::{ServeOptions, serve};

/// The radstudy hospital worker: serves a local cohort to a study
/// coordinator and releases only what the site policy allows.
#[derive(Debug, Parser)]
#[command(name = "radstudy-worker", version)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

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
    /// Serve the gRPC worker service until SIGINT or SIGTERM.
    Serve {
        /// The site's worker.toml.
        #[arg(long)]
        config: PathBuf,
        /// Replace the config's data_root (manifest paths are relative to it).
        #[arg(long)]
        data_root: Option<PathBuf>,
        /// Write the bound address to this file once the server accepts
        /// calls; with `listen = "127.0.0.1:0"` this gives a caller the port.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Create a new random pseudonym key file (hex, mode 0600); an existing
    /// file is never overwritten.
    Keygen {
        /// Output path of the key.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);

    let result = match cli.command {
        Command::Serve {
            config,
            data_root,
            ready_file,
        } => run_serve(
            config,
            ServeOptions {
                data_root,
                ready_file,
            },
        ),
        Command::Keygen { out } => PseudonymKey::generate(&out)
            .map(|_| eprintln!("wrote a new pseudonym key to {}", out.display()))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("radstudy-worker: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(config: PathBuf, options: ServeOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(serve(&config, options));
    // An extraction blocked in a file read (a hung network mount, say)
    // must not keep the process alive after shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
