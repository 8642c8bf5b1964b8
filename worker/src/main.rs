//! `radstudy-worker`: the hospital worker daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use radstudy_worker::check::{CheckOptions, run_check};
use radstudy_worker::cli::extract::parse_case_id;
use radstudy_worker::config::WorkerConfig;
use radstudy_worker::mask::file::RoiSelector;
use radstudy_worker::pseudonym::PseudonymKey;
use radstudy_worker::server::{ServeOptions, probe_health, serve};

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
    /// Check the config, pseudonym key, manifest and every image/mask pair
    /// without contacting anyone, and print a table of the problems found.
    ///
    /// Opens each listed image and mask as an extraction round would. Both
    /// files must be readable under the data root, and the mask grid must
    /// equal the image grid within `geometry_tolerance`. The ROI label must
    /// be present, the ROI at least two voxels wide along two axes, and its
    /// intensities finite. Rows are named by manifest line and pseudonym. Exit status: 0 when no error is found
    /// (notes, such as an empty sequence cell, are allowed), 1 otherwise.
    Check {
        /// The site's worker.toml.
        #[arg(long)]
        config: PathBuf,
        /// Replace the config's data_root (manifest paths are relative to it).
        #[arg(long)]
        data_root: Option<PathBuf>,
        /// Mask label of the tumour, as the study's `features.label` sets it;
        /// a manifest row's `<sequence>_label` cell replaces it for that row.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        label: u32,
    },
    /// Extract PyRadiomics features from local files, for one case
    /// (IMAGE MASK) or a batch (--batch), and write one CSV row per case.
    ///
    /// Columns: id, one per feature under its PyRadiomics name
    /// (`<image type>_<class>_<Feature>`, for every image type the parameter
    /// file enables), and `error` when a case failed. The id is the batch's
    /// ID cell, or for a single case --id or the image's name without its
    /// extension. Exit status: 0 when every case succeeded, 1 when
    /// any failed or the parameters or batch file are invalid.
    Extract {
        /// Image of a single case: a NIfTI or NRRD file, or a DICOM series
        /// (a folder with one series, one file of a series, or an enhanced
        /// multi-frame file).
        #[arg(conflicts_with = "batch", requires = "mask")]
        image: Option<PathBuf>,
        /// Mask of a single case: a DICOM RTSTRUCT or SEG file, or a label
        /// map with the image's spacing and direction whose voxel centres
        /// are image voxel centres. The label map may cover the image, a box
        /// inside it or a larger grid. A larger grid is cropped to the image,
        /// and every voxel of the chosen label must lie inside the image.
        #[arg(conflicts_with = "batch", requires = "image")]
        mask: Option<PathBuf>,
        /// Value of the id column for a single case. Default: the image's
        /// file or folder name without .nii.gz, .nii, .nrrd, .nhdr or .dcm
        /// (ct.nii.gz gives ct). No commas or line breaks.
        #[arg(long, conflicts_with = "batch", requires = "image", value_parser = parse_case_id)]
        id: Option<String>,
        /// Batch CSV with columns ID, Image, Mask and optional Label; paths
        /// are relative to the CSV's folder.
        #[arg(long)]
        batch: Option<PathBuf>,
        /// PyRadiomics parameter file (YAML); without it, PyRadiomics'
        /// defaults (original image, all classes, bin width 25, label 1).
        #[arg(long)]
        param: Option<PathBuf>,
        /// ROI label number, or an ROI name (RTSTRUCT ROIName, SEG
        /// SegmentLabel), replacing the parameter file's label; a batch
        /// Label cell replaces both. A number selects ROINumber in an
        /// RTSTRUCT and SegmentNumber in a SEG.
        #[arg(long)]
        label: Option<RoiSelector>,
        /// Output CSV; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Ask a running worker's gRPC health service whether it is SERVING.
    ///
    /// Meant for container health checks, where images have no other gRPC
    /// client. Exit status: 0 when SERVING, 1 otherwise or when the worker
    /// cannot be reached within the timeout.
    Health {
        /// The worker's gRPC address, host:port, optionally with an http://
        /// or https:// prefix.
        #[arg(long, default_value = "127.0.0.1:50051")]
        address: String,
        /// The probed worker's worker.toml. When it has a [tls] table, the
        /// probe connects over mutual TLS with the worker's own certificate
        /// and key, and trusts its client_ca.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Service whose status to check; "" checks the whole server.
        #[arg(long, default_value = "radstudy.v1.Worker")]
        service: String,
        /// Deadline of the connection and of the call, in seconds.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        timeout_s: u64,
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
        )
        .map(|()| ExitCode::SUCCESS),
        Command::Keygen { out } => PseudonymKey::generate(&out)
            .map(|_| {
                eprintln!("wrote a new pseudonym key to {}", out.display());
                ExitCode::SUCCESS
            })
            .map_err(anyhow::Error::from),
        Command::Check {
            config,
            data_root,
            label,
        } => {
            let report = run_check(&config, &CheckOptions { data_root, label });
            print!("{}", report.render());
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Extract {
            image: None,
            batch: None,
            ..
        } => missing_extract_input(),
        Command::Extract {
            image,
            mask,
            id,
            batch,
            param,
            label,
            out,
        } => run_extract_command(ExtractArguments {
            image,
            mask,
            id,
            batch,
            param,
            label,
            out,
        }),
        Command::Health {
            address,
            config,
            service,
            timeout_s,
        } => run_health(&address, config.as_deref(), &service, timeout_s),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("radstudy-worker: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exits with clap's usage error (status 2) for `extract` without cases.
/// clap's own message would name only IMAGE and MASK.
fn missing_extract_input() -> ! {
    let mut cli = Cli::command();
    let extract = cli
        .find_subcommand_mut("extract")
        .map(|extract| extract.clone().bin_name("radstudy-worker extract"));
    let message = "give IMAGE MASK for one case, or --batch cases.csv for several";
    match extract {
        Some(mut extract) => extract
            .error(clap::error::ErrorKind::MissingRequiredArgument, message)
            .exit(),
        None => cli
            .error(clap::error::ErrorKind::MissingRequiredArgument, message)
            .exit(),
    }
}

/// The arguments of `extract`, as [`Command::Extract`] documents them.
struct ExtractArguments {
    image: Option<PathBuf>,
    mask: Option<PathBuf>,
    id: Option<String>,
    batch: Option<PathBuf>,
    param: Option<PathBuf>,
    label: Option<RoiSelector>,
    out: Option<PathBuf>,
}

fn run_extract_command(arguments: ExtractArguments) -> anyhow::Result<ExitCode> {
    use radstudy_worker::cli::extract::{Case, case_id, load_parameters, read_batch, run_extract};

    let ExtractArguments {
        image,
        mask,
        id,
        batch,
        param,
        label,
        out,
    } = arguments;

    let number = match &label {
        Some(RoiSelector::Number(number)) => Some(*number),
        _ => None,
    };
    let parameters = load_parameters(param.as_deref(), number)?;
    let mut cases = match (batch, image, mask) {
        (Some(batch), _, _) => read_batch(&batch)?,
        (None, Some(image), Some(mask)) => vec![Ok(Case {
            id: id.unwrap_or_else(|| case_id(&image)),
            image,
            mask,
            label: None,
        })],
        // `main` has already rejected a command without IMAGE MASK or --batch,
        // and clap requires MASK with IMAGE.
        _ => anyhow::bail!("give IMAGE MASK for one case, or --batch cases.csv for several"),
    };
    // A name cannot live in the parameters' numeric label, so it goes to
    // every case without a Label cell of its own.
    if let Some(selector @ RoiSelector::Name(_)) = &label {
        for case in cases.iter_mut().flatten() {
            case.label.get_or_insert_with(|| selector.clone());
        }
    }
    let failed = run_extract(&cases, &parameters, out.as_deref())?;
    if failed > 0 {
        eprintln!(
            "radstudy-worker: {failed} of {} cases failed; see the error column",
            cases.len()
        );
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn run_health(
    address: &str,
    config: Option<&std::path::Path>,
    service: &str,
    timeout_s: u64,
) -> anyhow::Result<ExitCode> {
    let tls = match config {
        Some(path) => WorkerConfig::load(path)?.tls,
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = std::time::Duration::from_secs(timeout_s);
    let status = runtime.block_on(probe_health(address, service, timeout, tls.as_ref()))?;
    println!("{}", status.as_str_name());
    Ok(
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
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
