//! Times feature extraction on the MR T1 lesions of the soft-tissue-sarcoma
//! cohort, radstudy against PyRadiomics, in one run, and prints a table.
//!
//! Run with `cargo bench -p radstudy-worker --bench extraction`. Options, after `--`:
//! - `--per-case`: one more table with one line per lesion;
//! - `--filters`: the filtered image types too (see below);
//! - `--skip-pyradiomics`: time radstudy alone;
//! - `--phases`: a table of the time per step of radstudy alone (reading, ROI, each
//!   class), without the other rows.
//!
//! The data root is `RADSTUDY_DATA_ROOT`, or `../shared/data` next to the repository;
//! every `sts/STS_*/MR_T1_{image,mask}.nii.gz` pair is a case.
//!
//! Settings on both sides: PyRadiomics' defaults (no parameter file): the original
//! image, every feature class (shape, firstorder, glcm, glrlm, glszm, gldm, ngtdm), bin
//! width 25, label 1. With `--filters`, both sides read one parameter file that adds
//! LoG with σ = 1.0, 2.0 and 3.0 mm and Wavelet (coif1, one level, 8 bands) to the
//! original image, with the same classes and bin width, so each lesion gets 12 image
//! types. Each side reads the files itself, and the times include reading, because
//! that is what a user waits for.
//!
//! Rows:
//! - radstudy, 1 thread: the cases one after another;
//! - radstudy, 2 threads: two threads taking cases from one queue, whose
//!   wall time against the 1-thread run gives the scaling (goal: 1.8x);
//! - PyRadiomics: `benches/extraction.py` run by `RADSTUDY_BENCH_PYTHON`
//!   (default `python3`), one process, one thread, its own timer around
//!   `RadiomicsFeatureExtractor.execute`. When PyRadiomics cannot run, its
//!   row gives the reason and the radstudy rows are printed alone.
//!
//! The values are compared too: the table ends with the largest relative
//! difference over the features both sides computed, so a speed-up never
//! hides different settings. With `--filters` a second table gives the largest
//! difference per image type.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use radstudy_worker::cli::extract::{Case, extract_case, load_parameters};
use radstudy_worker::params::ParameterFile;

#[path = "extraction/phases.rs"]
mod phases;

/// One case's time and values.
struct Timed {
    id: String,
    seconds: f64,
    features: BTreeMap<String, f64>,
}

/// Parameter file of `--filters`, in PyRadiomics' format. Without `featureClass` both
/// sides enable every class.
const FILTERS_PARAMETERS: &str = "\
imageType:
  Original: {}
  LoG:
    sigma: [1.0, 2.0, 3.0]
  Wavelet: {}
setting:
  binWidth: 25
  label: 1
";

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let flag = |name: &str| arguments.iter().any(|argument| argument == name);
    let per_case = flag("--per-case");
    let filters = flag("--filters");
    let skip_pyradiomics = flag("--skip-pyradiomics");

    let data_root = std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let cases = sts_cases(&data_root);
    if cases.is_empty() {
        eprintln!(
            "no sts/STS_*/MR_T1 image and mask under {}; set RADSTUDY_DATA_ROOT",
            data_root.display()
        );
        std::process::exit(1);
    }

    let folder =
        std::env::temp_dir().join(format!("radstudy-extraction-bench-{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&folder) {
        eprintln!("cannot create {}: {error}", folder.display());
        std::process::exit(1);
    }
    let parameter_file = filters.then(|| folder.join("filters.yaml"));
    if let Some(path) = &parameter_file
        && let Err(error) = std::fs::write(path, FILTERS_PARAMETERS)
    {
        eprintln!("cannot write {}: {error}", path.display());
        std::process::exit(1);
    }
    let parameters = match load_parameters(parameter_file.as_deref(), None) {
        Ok(parameters) => parameters,
        Err(error) => {
            eprintln!("bench parameters: {error}");
            std::process::exit(1);
        }
    };

    if std::env::args().any(|arg| arg == "--phases") {
        phases::print_phase_table(&cases, &parameters);
        return;
    }

    // radstudy, one thread, then two.
    let serial = run_serial(&cases, &parameters);
    let serial_seconds: f64 = serial.iter().map(|t| t.seconds).sum();
    let parallel_seconds = run_parallel(&cases, &parameters, 2);

    // PyRadiomics, one process.
    let python = if skip_pyradiomics {
        Err("skipped (--skip-pyradiomics)".to_string())
    } else {
        run_pyradiomics(&cases, &folder, parameter_file.as_deref())
    };
    let _ = std::fs::remove_dir_all(&folder);

    if filters {
        println!(
            "STS MR T1, {} lesions, original + LoG sigma 1.0, 2.0, 3.0 mm + wavelet (8 bands), all classes, bin width 25",
            cases.len()
        );
    } else {
        println!(
            "STS MR T1, {} lesions, PyRadiomics default settings, original image, all classes",
            cases.len()
        );
    }
    println!();
    println!("| run | threads | total s | per lesion ms | speed-up |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let row = |name: &str, threads: usize, seconds: f64, speedup: String| {
        println!(
            "| {name} | {threads} | {seconds:.2} | {:.1} | {speedup} |",
            1000.0 * seconds / cases.len() as f64
        );
    };
    match &python {
        Ok((version, timed)) => {
            let python_seconds: f64 = timed.iter().map(|t| t.seconds).sum();
            row(
                &format!("PyRadiomics {version}"),
                1,
                python_seconds,
                "1.0x".into(),
            );
            row(
                "radstudy",
                1,
                serial_seconds,
                format!("{:.1}x", python_seconds / serial_seconds),
            );
            row(
                "radstudy",
                2,
                parallel_seconds,
                format!("{:.1}x", python_seconds / parallel_seconds),
            );
        }
        Err(reason) => {
            println!("| PyRadiomics | 1 | not run: {reason} | | |");
            row("radstudy", 1, serial_seconds, String::new());
            row("radstudy", 2, parallel_seconds, String::new());
        }
    }
    println!();
    println!(
        "radstudy scaling from 1 to 2 threads: {:.2}x",
        serial_seconds / parallel_seconds
    );

    let Ok((_, timed)) = &python else {
        return;
    };
    let differences = largest_differences(&serial, timed);
    let compared: usize = differences.values().map(|d| d.compared).sum();
    let worst = differences
        .values()
        .max_by(|a, b| a.largest.total_cmp(&b.largest));
    if let Some(worst) = worst {
        println!(
            "values: {compared} feature values compared, largest relative difference {:.2e} ({})",
            worst.largest, worst.location
        );
    }
    let missing = missing_features(&serial, timed);
    if !missing.is_empty() {
        println!(
            "features computed by one side only: {} (first: {})",
            missing.len(),
            missing[0]
        );
    }
    if filters {
        println!();
        println!(
            "| image type | values compared | above 1e-6 relative | largest relative difference | where |"
        );
        println!("| --- | ---: | ---: | ---: | --- |");
        for (image_type, difference) in &differences {
            println!(
                "| {image_type} | {} | {} | {:.2e} | {} |",
                difference.compared,
                difference.above_tolerance,
                difference.largest,
                difference.location
            );
        }
    }
    if per_case {
        println!();
        println!("| lesion | radstudy ms | PyRadiomics ms | speed-up |");
        println!("| --- | ---: | ---: | ---: |");
        for ours in &serial {
            if let Some(theirs) = timed.iter().find(|t| t.id == ours.id) {
                println!(
                    "| {} | {:.1} | {:.1} | {:.1}x |",
                    ours.id,
                    1000.0 * ours.seconds,
                    1000.0 * theirs.seconds,
                    theirs.seconds / ours.seconds
                );
            }
        }
    }
}

/// Lists every STS patient with an MR T1 image and mask.
fn sts_cases(data_root: &Path) -> Vec<Case> {
    let Ok(entries) = std::fs::read_dir(data_root.join("sts")) else {
        return Vec::new();
    };
    let mut cases: Vec<Case> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("STS_"))
        })
        .filter_map(|folder| {
            let image = folder.join("MR_T1_image.nii.gz");
            let mask = folder.join("MR_T1_mask.nii.gz");
            let id = folder.file_name()?.to_string_lossy().into_owned();
            (image.exists() && mask.exists()).then_some(Case {
                id,
                image,
                mask,
                label: None,
            })
        })
        .collect();
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    cases
}

/// Extracts one case, or stops the bench with the reason.
fn extract_timed(case: &Case, parameters: &ParameterFile) -> Timed {
    let start = Instant::now();
    let features = match extract_case(
        case,
        &parameters.settings,
        &parameters.options,
        &parameters.image_types,
    ) {
        Ok(features) => features,
        Err(error) => {
            eprintln!("case {}: {error}", case.id);
            std::process::exit(1);
        }
    };
    Timed {
        id: case.id.clone(),
        seconds: start.elapsed().as_secs_f64(),
        features: features.into_iter().collect(),
    }
}

fn run_serial(cases: &[Case], parameters: &ParameterFile) -> Vec<Timed> {
    cases
        .iter()
        .map(|case| extract_timed(case, parameters))
        .collect()
}

/// Runs every case on `threads` threads sharing one queue; returns the wall
/// time.
fn run_parallel(cases: &[Case], parameters: &ParameterFile, threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(index) else {
                        break;
                    };
                    extract_timed(case, parameters);
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// Runs benches/extraction.py on the cases, with the parameter file when given, and
/// writes the case list to `folder`. Returns PyRadiomics' version and its per-case times
/// and values, or why it could not run.
fn run_pyradiomics(
    cases: &[Case],
    folder: &Path,
    parameter_file: Option<&Path>,
) -> Result<(String, Vec<Timed>), String> {
    let list = folder.join("cases.csv");
    let mut text = String::from("ID,Image,Mask\n");
    for case in cases {
        text.push_str(&format!(
            "{},{},{}\n",
            case.id,
            case.image.display(),
            case.mask.display()
        ));
    }
    std::fs::write(&list, text).map_err(|e| format!("writing {}: {e}", list.display()))?;

    let python = std::env::var("RADSTUDY_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/extraction.py");
    let mut command = Command::new(&python);
    command.arg(&script).arg(&list);
    if let Some(path) = parameter_file {
        command.arg("--param").arg(path);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {python}: {e}"))?;
    let Some(stdout) = child.stdout.take() else {
        return Err("no standard output from the script".into());
    };
    let mut version = String::new();
    let mut timed = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the script's output: {e}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("script output {line:?}: {e}"))?;
        if let Some(v) = value.get("pyradiomics").and_then(|v| v.as_str()) {
            version = v.to_string();
            continue;
        }
        let features = value["features"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(name, v)| Some((name.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        timed.push(Timed {
            id: value["id"].as_str().unwrap_or_default().to_string(),
            seconds: value["seconds"].as_f64().unwrap_or(f64::NAN),
            features,
        });
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {python}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(format!("{python} {} failed: {last}", script.display()));
    }
    if timed.len() != cases.len() {
        return Err(format!(
            "the script timed {} of {} cases",
            timed.len(),
            cases.len()
        ));
    }
    Ok((version, timed))
}

/// Comparison of the values of one image type.
#[derive(Default)]
struct Difference {
    /// Values both sides computed.
    compared: usize,
    /// Values whose relative difference is above 1e-6.
    above_tolerance: usize,
    /// Largest relative difference (absolute below 1e-9 in size).
    largest: f64,
    /// Case and feature of the largest difference.
    location: String,
}

/// Compares every value both sides computed, per image type (the part of the feature
/// name before the first `_`).
fn largest_differences(ours: &[Timed], theirs: &[Timed]) -> BTreeMap<String, Difference> {
    let mut differences: BTreeMap<String, Difference> = BTreeMap::new();
    for mine in ours {
        let Some(other) = theirs.iter().find(|t| t.id == mine.id) else {
            continue;
        };
        for (name, value) in &mine.features {
            let Some(reference) = other.features.get(name) else {
                continue;
            };
            let image_type = name.split('_').next().unwrap_or(name);
            let entry = differences.entry(image_type.to_string()).or_default();
            entry.compared += 1;
            let scale = reference.abs().max(1e-9);
            let difference = (value - reference).abs() / scale;
            if difference > 1e-6 {
                entry.above_tolerance += 1;
            }
            if difference > entry.largest || entry.location.is_empty() {
                entry.largest = difference;
                entry.location = format!("{} {name}", mine.id);
            }
        }
    }
    differences
}

/// Lists `case feature` for every value that only one side computed.
fn missing_features(ours: &[Timed], theirs: &[Timed]) -> Vec<String> {
    let mut missing = Vec::new();
    for mine in ours {
        let Some(other) = theirs.iter().find(|t| t.id == mine.id) else {
            continue;
        };
        let only_ours = mine
            .features
            .keys()
            .filter(|name| !other.features.contains_key(*name));
        let only_theirs = other
            .features
            .keys()
            .filter(|name| !mine.features.contains_key(*name));
        for name in only_ours.chain(only_theirs) {
            missing.push(format!("{} {name}", mine.id));
        }
    }
    missing
}
