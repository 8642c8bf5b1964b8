//! `--phases`: where the single-thread extraction time goes.
//!
//! Runs the steps of `extract_case` for PyRadiomics' default settings (original image, no
//! normalisation or resampling) one by one on every case, with a timer around each, and
//! prints one row per step with its total over the cases. The steps call the same library
//! functions as `extract_case`, so their sum is close to the radstudy 1-thread row.
//!
//! Each step gets its wall time and the CPU time of the thread (Linux
//! `/proc/thread-self/schedstat`; the column is empty elsewhere). On a shared machine the
//! wall time includes the time other processes held the core, so the CPU time is the
//! steadier of the two.

use std::time::Instant;

use radstudy_worker::cli::extract::Case;
use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::features::pre_crop::crop_to_bounding_box;
use radstudy_worker::features::{
    MAX_GREY_LEVELS, discretize, firstorder, glcm, gldm, glrlm, glszm, ngtdm, shape,
};
use radstudy_worker::image::read_volume;
use radstudy_worker::mask::{into_image_grid, roi_values, select_label_spanning};
use radstudy_worker::params::ParameterFile;

/// Step names, in the order they run.
const STEPS: [&str; 11] = [
    "read image",
    "read mask",
    "ROI (place mask, select label, crop)",
    "shape",
    "firstorder (ROI values included)",
    "discretise",
    "glcm",
    "glrlm",
    "glszm",
    "gldm",
    "ngtdm",
];

/// Times each step on every case and prints the table; stops the bench on the first error.
pub fn print_phase_table(cases: &[Case], parameters: &ParameterFile) {
    let cpu_start = thread_cpu_seconds().map(|_| 0.0);
    let mut times = [StepTime {
        wall: 0.0,
        cpu: cpu_start,
    }; STEPS.len()];
    for case in cases {
        if let Err(message) = time_case(case, parameters, &mut times) {
            eprintln!("case {}: {message}", case.id);
            std::process::exit(1);
        }
    }
    let wall_total: f64 = times.iter().map(|time| time.wall).sum();
    let cpu_total: Option<f64> = times.iter().map(|time| time.cpu).sum();
    // Shares of the CPU time when it was measured, else of the wall time.
    let share = |time: &StepTime| match (time.cpu, cpu_total) {
        (Some(cpu), Some(total)) => 100.0 * cpu / total,
        _ => 100.0 * time.wall / wall_total,
    };
    let seconds = |value: Option<f64>| value.map(|v| format!("{v:.3}")).unwrap_or_default();
    println!();
    println!(
        "radstudy, 1 thread, time per step over {} lesions",
        cases.len()
    );
    println!();
    println!("| step | wall s | CPU s | share |");
    println!("| --- | ---: | ---: | ---: |");
    for (step, time) in STEPS.iter().zip(&times) {
        println!(
            "| {step} | {:.3} | {} | {:.1}% |",
            time.wall,
            seconds(time.cpu),
            share(time)
        );
    }
    println!(
        "| all steps | {wall_total:.3} | {} | 100.0% |",
        seconds(cpu_total)
    );
}

/// Time spent in one step, summed over the cases.
#[derive(Debug, Clone, Copy)]
struct StepTime {
    /// Wall time, in seconds.
    wall: f64,
    /// CPU time of the thread, in seconds, or `None` where it cannot be read.
    cpu: Option<f64>,
}

/// Returns the CPU time of the calling thread in seconds, read from Linux'
/// `/proc/thread-self/schedstat` (its first field, in nanoseconds), or `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanoseconds as f64 * 1e-9)
}

/// Runs the steps of one case, adding each step's time to `seconds`.
fn time_case(
    case: &Case,
    parameters: &ParameterFile,
    times: &mut [StepTime; STEPS.len()],
) -> Result<(), String> {
    let settings = &parameters.settings;
    let options = &parameters.options;
    let mut wall_clock = Instant::now();
    let mut cpu_clock = thread_cpu_seconds();
    let mut lap = |step: usize| {
        let cpu_now = thread_cpu_seconds();
        let time = &mut times[step];
        time.wall += wall_clock.elapsed().as_secs_f64();
        time.cpu = match (time.cpu, cpu_clock, cpu_now) {
            (Some(sum), Some(start), Some(end)) => Some(sum + (end - start)),
            _ => None,
        };
        wall_clock = Instant::now();
        cpu_clock = thread_cpu_seconds();
    };

    let image = read_volume(&case.image).map_err(|e| e.to_string())?;
    lap(0);
    let labels = read_volume(&case.mask).map_err(|e| e.to_string())?;
    lap(1);
    let labels = into_image_grid(
        labels,
        &image.geometry,
        &GeometryTolerance::default(),
        settings.label,
    )
    .map_err(|e| e.to_string())?;
    let roi = select_label_spanning(&labels, settings.label, options.minimum_roi_dimensions)
        .map_err(|e| e.to_string())?;
    let (image, roi) = crop_to_bounding_box(&image, &roi).ok_or("the ROI is empty")?;
    lap(2);
    std::hint::black_box(shape::compute(roi.mask.view(), image.geometry.spacing));
    lap(3);
    let values = roi_values(&image, &roi).map_err(|count| format!("{count} non-finite"))?;
    let discretize::Discretization::FixedBinWidth(bin_width) = options.discretization else {
        return Err("the phase table needs a fixed bin width".into());
    };
    std::hint::black_box(firstorder::compute(
        &values,
        image.geometry.voxel_volume_mm3(),
        &firstorder::FirstOrderSettings {
            bin_width,
            voxel_array_shift: options.voxel_array_shift,
        },
    ));
    lap(4);
    let input = discretize::discretize(&image, &roi, options.discretization, MAX_GREY_LEVELS)
        .map_err(|e| e.to_string())?;
    lap(5);
    std::hint::black_box(glcm::compute(&input, &options.glcm));
    lap(6);
    std::hint::black_box(glrlm::compute(&input));
    lap(7);
    std::hint::black_box(glszm::compute(&input));
    lap(8);
    std::hint::black_box(gldm::compute(&input, &options.gldm));
    lap(9);
    std::hint::black_box(ngtdm::compute(&input, &options.ngtdm));
    lap(10);
    Ok(())
}
