//! Times the worker's habitat step, local entropy maps then supervoxels, on
//! the MR T1 lesions of the soft-tissue-sarcoma example cohort, on one
//! thread.
//!
//! Run with `cargo bench -p radstudy-worker --bench habitat_step`. Add
//! `-- --per-patient` for one line per patient (voxels, K1_eff, Σ E in bits
//! and the k-means inertia), which `benches/habitat_step.py --per-patient`
//! prints in the same form for a scikit-image/scikit-learn comparison.
//!
//! Inputs: `examples/sts/manifest_a.csv` and `manifest_b.csv`, with paths
//! under the data root `../shared/data` next to the repository. Set
//! `HABITAT_BENCH_DATA_ROOT` to use another data root. Patients whose MR
//! files are missing are skipped and listed.
//!
//! Settings: the defaults of the method (3-D window of edge 9, 256 cells,
//! masked boundary, padded-box min–max range; K1 = 40, m_min = 5, k-means
//! with 10 runs, at most 300 iterations, tolerance 1e-4). The supervoxel
//! seed of each patient comes from the study seed 42, the sequence and the
//! keyed-hash part of the patient's pseudonym under the example's center
//! key. Times leave out reading the files and count only the kernels: the
//! entropy column times `local_entropy`, the k-means column times
//! `build_supervoxels`, and the depth maps are timed on their own.
//!
//! Each kernel time is given twice: wall time and the thread's CPU time,
//! which other jobs on a shared machine inflate less. The CPU time is the
//! first field of `/proc/thread-self/schedstat` (nanoseconds on the CPU,
//! Linux only); elsewhere the CPU columns print as 0.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use radstudy_worker::habitat::depth::roi_depth;
use radstudy_worker::habitat::entropy::{EntropySettings, local_entropy};
use radstudy_worker::habitat::supervoxel::{SupervoxelSettings, build_supervoxels, patient_key};
use radstudy_worker::image::nifti::read_volume;
use radstudy_worker::manifest::Manifest;
use radstudy_worker::mask::select_label;
use radstudy_worker::pseudonym::PseudonymKey;

const SEQUENCE: &str = "MR_T1";
const LABEL: u32 = 1;
const STUDY_SEED: u64 = 42;
/// Environment variable that replaces the default data root.
const DATA_ROOT_VARIABLE: &str = "HABITAT_BENCH_DATA_ROOT";
/// The example's manifests, each with its center's pseudonym key file.
const MANIFESTS: [(&str, &str, &str); 2] = [
    ("manifest_a.csv", "center_a.key", "A"),
    ("manifest_b.csv", "center_b.key", "B"),
];

/// Times of one patient.
struct PatientRun {
    patient_id: String,
    voxels: usize,
    supervoxels: usize,
    entropy_sum_bits: f64,
    inertia: f64,
    entropy_time: Duration,
    depth_time: Duration,
    kmeans_time: Duration,
    entropy_cpu: Duration,
    kmeans_cpu: Duration,
}

/// Returns the CPU time of the calling thread so far, from the first field
/// of `/proc/thread-self/schedstat`, or zero where that file is missing or
/// unreadable.
fn thread_cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn main() {
    let per_patient = std::env::args().any(|argument| argument == "--per-patient");
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = package.join("../examples/sts");
    let data_root = std::env::var_os(DATA_ROOT_VARIABLE)
        .map(PathBuf::from)
        .unwrap_or_else(|| package.join("../../shared/data"));
    if !data_root.is_dir() {
        eprintln!(
            "data root {} not found; set {DATA_ROOT_VARIABLE} to the folder that contains sts/",
            data_root.display()
        );
        std::process::exit(1);
    }

    let entropy_settings = EntropySettings::default()
        .validate()
        .expect("default entropy settings are valid");
    let supervoxel_settings = SupervoxelSettings::default()
        .validate()
        .expect("default supervoxel settings are valid");

    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for (manifest_name, key_name, center) in MANIFESTS {
        let manifest = Manifest::load(&examples.join(manifest_name), &data_root)
            .unwrap_or_else(|error| panic!("cannot load {manifest_name}: {error}"));
        let key = PseudonymKey::load(&examples.join(key_name))
            .unwrap_or_else(|error| panic!("cannot load {key_name}: {error}"));
        for entry in &manifest.entries {
            let Some(Ok(files)) = entry.sequences.get(SEQUENCE) else {
                skipped.push(format!("{}: no {SEQUENCE} files listed", entry.patient_id));
                continue;
            };
            let (image, labels) = match (read_volume(&files.image), read_volume(&files.mask)) {
                (Ok(image), Ok(labels)) => (image, labels),
                (Err(error), _) | (_, Err(error)) => {
                    skipped.push(format!(
                        "{}: {}",
                        entry.patient_id,
                        error.shareable_reason()
                    ));
                    continue;
                }
            };
            let roi = match select_label(&labels, LABEL) {
                Ok(roi) => roi,
                Err(error) => {
                    skipped.push(format!("{}: {error}", entry.patient_id));
                    continue;
                }
            };
            let pseudonym = key.pseudonym(center, &entry.patient_id);
            let patient = patient_key(&pseudonym).expect("pseudonyms end in 16 hex digits");

            let (start, start_cpu) = (Instant::now(), thread_cpu_time());
            let map = local_entropy(&image, &roi, &entropy_settings)
                .unwrap_or_else(|error| panic!("{}: entropy failed: {error}", entry.patient_id));
            let entropy_time = start.elapsed();
            let entropy_cpu = thread_cpu_time().saturating_sub(start_cpu);

            let start = Instant::now();
            let depth = roi_depth(&roi, image.geometry.spacing)
                .unwrap_or_else(|error| panic!("{}: depth failed: {error}", entry.patient_id));
            let depth_time = start.elapsed();

            let (start, start_cpu) = (Instant::now(), thread_cpu_time());
            let supervoxels = build_supervoxels(
                &map,
                &depth,
                &supervoxel_settings,
                STUDY_SEED,
                SEQUENCE,
                patient,
            )
            .unwrap_or_else(|error| panic!("{}: supervoxels failed: {error}", entry.patient_id));
            let kmeans_time = start.elapsed();
            let kmeans_cpu = thread_cpu_time().saturating_sub(start_cpu);

            runs.push(PatientRun {
                patient_id: entry.patient_id.clone(),
                voxels: map.voxels.len(),
                supervoxels: supervoxels.count(),
                entropy_sum_bits: map.entropy.iter().sum(),
                inertia: supervoxels.inertia,
                entropy_time,
                depth_time,
                kmeans_time,
                entropy_cpu,
                kmeans_cpu,
            });
        }
    }

    if per_patient {
        println!(
            "patient,voxels,supervoxels,entropy_sum_bits,inertia,\
             entropy_s,kmeans_s,entropy_cpu_s,kmeans_cpu_s"
        );
        for run in &runs {
            println!(
                "{},{},{},{:.6},{:.6e},{:.4},{:.4},{:.4},{:.4}",
                run.patient_id,
                run.voxels,
                run.supervoxels,
                run.entropy_sum_bits,
                run.inertia,
                run.entropy_time.as_secs_f64(),
                run.kmeans_time.as_secs_f64(),
                run.entropy_cpu.as_secs_f64(),
                run.kmeans_cpu.as_secs_f64()
            );
        }
        println!();
    }
    for reason in &skipped {
        println!("skipped {reason}");
    }

    let total = |time: fn(&PatientRun) -> Duration| -> f64 {
        runs.iter().map(time).sum::<Duration>().as_secs_f64()
    };
    let voxels: usize = runs.iter().map(|run| run.voxels).sum();
    println!(
        "| implementation | patients | voxels | entropy (s) | k-means (s) \
         | entropy CPU (s) | k-means CPU (s) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| radstudy | {} | {voxels} | {:.2} | {:.2} | {:.2} | {:.2} |",
        runs.len(),
        total(|run| run.entropy_time),
        total(|run| run.kmeans_time),
        total(|run| run.entropy_cpu),
        total(|run| run.kmeans_cpu)
    );
    println!(
        "depth maps (not in the table): {:.2} s",
        total(|run| run.depth_time)
    );
}
