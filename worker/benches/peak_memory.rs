//! Measures the peak resident memory of extracting one large ROI, radstudy against
//! PyRadiomics, and prints a table.
//!
//! Run with `cargo bench -p radstudy-worker --bench peak_memory`. Options, after `--`:
//! - `--case ID`: the STS patient (default STS_013, whose MR T1 ROI has 490,336 voxels);
//! - `--bin-width W`: bin width of the first setting (default 1.875, which gives
//!   STS_013's ROI, intensities 11 to 1,267, 671 grey levels);
//! - `--skip-pyradiomics`: measure radstudy alone.
//!
//! The data root is `RADSTUDY_DATA_ROOT`, or `../shared/data` next to the repository.
//! Two settings, each a PyRadiomics parameter file that both sides read:
//! - the original image, every feature class, bin width W: the many grey levels make
//!   the texture matrices large (a GLSZM of N_g rows by up to one column per ROI voxel);
//! - the original image plus LoG (σ = 1.0, 2.0, 3.0 mm) and Wavelet (8 bands), every
//!   feature class, bin width 25: 12 image types, each filtered image held in memory.
//!
//! Every extraction runs in a child process of its own, so one peak cannot hide
//! another: radstudy as this bench binary started again with `--child`, PyRadiomics as
//! `benches/peak_memory.py` run by `RADSTUDY_BENCH_PYTHON` (default `python3`). Each
//! child reads its peak resident set size (`VmHWM` in `/proc/self/status`, Linux only)
//! before the extraction, which is the program with its libraries loaded, and after it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use radstudy_worker::cli::extract::{Case, extract_case, load_parameters};
use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::features::MAX_GREY_LEVELS;
use radstudy_worker::features::discretize::{Discretization, discretize};
use radstudy_worker::image::read_volume;
use radstudy_worker::mask::{place_on_image_grid, select_label_spanning};

/// The 1 GB goal for radstudy's peak, in KiB (10⁹ bytes).
const GOAL_KIB: f64 = 1e9 / 1024.0;

/// One measured extraction, as a child prints it.
struct Measurement {
    /// Peak resident set size before the extraction, KiB.
    start_kib: u64,
    /// Peak resident set size after the extraction, KiB.
    peak_kib: u64,
    /// Wall time of the extraction, s.
    seconds: f64,
    /// Number of feature values.
    features: u64,
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    if let Some(position) = arguments.iter().position(|argument| argument == "--child") {
        run_child(&arguments[position + 1..]);
        return;
    }
    let value_of = |name: &str| {
        arguments
            .iter()
            .position(|argument| argument == name)
            .and_then(|position| arguments.get(position + 1))
    };
    let case_id = value_of("--case").map_or("STS_013", String::as_str);
    let bin_width = match value_of("--bin-width").map(|text| text.parse::<f64>()) {
        None => 1.875,
        Some(Ok(width)) if width.is_finite() && width > 0.0 => width,
        Some(_) => {
            eprintln!("--bin-width needs a positive number of intensity units");
            std::process::exit(1);
        }
    };
    let skip_pyradiomics = arguments
        .iter()
        .any(|argument| argument == "--skip-pyradiomics");

    let data_root = std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let folder = data_root.join("sts").join(case_id);
    let image = folder.join("MR_T1_image.nii.gz");
    let mask = folder.join("MR_T1_mask.nii.gz");
    let (voxels, grey_levels) = match roi_size(&image, &mask, bin_width) {
        Ok(size) => size,
        Err(reason) => {
            eprintln!("{case_id}: {reason}; set RADSTUDY_DATA_ROOT or pick another --case");
            std::process::exit(1);
        }
    };

    let temporary =
        std::env::temp_dir().join(format!("radstudy-peak-memory-bench-{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&temporary) {
        eprintln!("cannot create {}: {error}", temporary.display());
        std::process::exit(1);
    }
    let settings = [
        (
            format!("original, all classes, bin width {bin_width}"),
            format!("imageType:\n  Original: {{}}\nsetting:\n  binWidth: {bin_width}\n  label: 1\n"),
        ),
        (
            "original + LoG 1, 2, 3 mm + wavelet, all classes, bin width 25".to_string(),
            "imageType:\n  Original: {}\n  LoG:\n    sigma: [1.0, 2.0, 3.0]\n  Wavelet: {}\nsetting:\n  binWidth: 25\n  label: 1\n".to_string(),
        ),
    ];

    println!(
        "{case_id} MR T1: {voxels} ROI voxels, {grey_levels} grey levels at bin width {bin_width}"
    );
    println!();
    println!(
        "| setting | program | peak MiB | before extraction MiB | extraction s | features | radstudy under 1 GB |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- |");
    for (index, (name, yaml)) in settings.iter().enumerate() {
        let parameter_file = temporary.join(format!("setting{index}.yaml"));
        if let Err(error) = std::fs::write(&parameter_file, yaml) {
            eprintln!("cannot write {}: {error}", parameter_file.display());
            std::process::exit(1);
        }
        let radstudy = match std::env::current_exe() {
            Ok(program) => measure(
                Command::new(program).arg("--child"),
                &image,
                &mask,
                &parameter_file,
            ),
            Err(error) => Err(format!("cannot find this bench's executable: {error}")),
        };
        print_row(name, "radstudy", &radstudy, true);
        if skip_pyradiomics {
            continue;
        }
        let python = std::env::var("RADSTUDY_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peak_memory.py");
        let pyradiomics = measure(
            Command::new(&python).arg(&script),
            &image,
            &mask,
            &parameter_file,
        );
        print_row(name, "PyRadiomics", &pyradiomics, false);
    }
    let _ = std::fs::remove_dir_all(&temporary);
}

/// Returns the ROI's voxel count and its number of grey levels (N_g as PyRadiomics
/// counts it) at `bin_width`.
fn roi_size(image: &Path, mask: &Path, bin_width: f64) -> Result<(usize, u32), String> {
    let image = read_volume(image).map_err(|e| format!("image: {e}"))?;
    let labels = read_volume(mask).map_err(|e| format!("mask: {e}"))?;
    let labels = place_on_image_grid(&labels, &image.geometry, &GeometryTolerance::default(), 1)
        .map_err(|e| format!("mask placement: {e}"))?;
    let roi = select_label_spanning(&labels, 1, 1).map_err(|e| format!("label 1: {e}"))?;
    let levels = discretize(
        &image,
        &roi,
        Discretization::FixedBinWidth(bin_width),
        MAX_GREY_LEVELS,
    )
    .map_err(|e| format!("discretisation: {e}"))?;
    Ok((roi.voxel_count, levels.n_levels))
}

/// Runs `command IMAGE MASK PARAMETER_FILE` and reads the child's JSON line.
fn measure(
    command: &mut Command,
    image: &Path,
    mask: &Path,
    parameter_file: &Path,
) -> Result<Measurement, String> {
    let output = command
        .arg(image)
        .arg(mask)
        .arg(parameter_file)
        .output()
        .map_err(|e| format!("cannot start: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("failed ({}): {last}", output.status));
    }
    let line = output
        .stdout
        .lines()
        .map_while(Result::ok)
        .last()
        .ok_or("no output")?;
    let value: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("output {line:?}: {e}"))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("output {line:?} has no number {key:?}"))
    };
    Ok(Measurement {
        start_kib: number("start_kib")? as u64,
        peak_kib: number("peak_kib")? as u64,
        seconds: number("seconds")?,
        features: number("features")? as u64,
    })
}

fn print_row(setting: &str, program: &str, result: &Result<Measurement, String>, goal: bool) {
    match result {
        Ok(measurement) => {
            let verdict = match (goal, measurement.peak_kib as f64 <= GOAL_KIB) {
                (false, _) => "",
                (true, true) => "yes",
                (true, false) => "no",
            };
            println!(
                "| {setting} | {program} | {:.0} | {:.0} | {:.2} | {} | {verdict} |",
                measurement.peak_kib as f64 / 1024.0,
                measurement.start_kib as f64 / 1024.0,
                measurement.seconds,
                measurement.features
            );
        }
        Err(reason) => println!("| {setting} | {program} | not run: {reason} | | | | |"),
    }
}

/// Child: extracts one case with one parameter file and prints its peak memory.
fn run_child(arguments: &[String]) {
    let [image, mask, parameter_file, ..] = arguments else {
        eprintln!("--child needs IMAGE MASK PARAMETER_FILE");
        std::process::exit(2);
    };
    let start_kib = match peak_resident_kib() {
        Ok(kib) => kib,
        Err(reason) => {
            eprintln!("{reason}");
            std::process::exit(1);
        }
    };
    let parameters = match load_parameters(Some(Path::new(parameter_file)), None) {
        Ok(parameters) => parameters,
        Err(error) => {
            eprintln!("{parameter_file}: {error}");
            std::process::exit(1);
        }
    };
    let case = Case {
        id: "case".to_string(),
        image: PathBuf::from(image),
        mask: PathBuf::from(mask),
        label: None,
    };
    let start = Instant::now();
    let features = match extract_case(
        &case,
        &parameters.settings,
        &parameters.options,
        &parameters.image_types,
    ) {
        Ok(features) => features,
        Err(error) => {
            eprintln!("{image}: {error}");
            std::process::exit(1);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    match peak_resident_kib() {
        Ok(peak_kib) => println!(
            "{}",
            serde_json::json!({
                "start_kib": start_kib,
                "peak_kib": peak_kib,
                "seconds": seconds,
                "features": features.len(),
            })
        ),
        Err(reason) => {
            eprintln!("{reason}");
            std::process::exit(1);
        }
    }
}

/// Returns this process's peak resident set size in KiB (`VmHWM`).
fn peak_resident_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status (Linux only): {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_string())
}
