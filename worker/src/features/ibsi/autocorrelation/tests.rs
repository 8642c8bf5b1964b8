//! The FFT pair sums against the exact pairwise sums, and a timing of both on the IBSI
//! CT phantom.
//!
//! Tolerance: a sum passes when it is within 10⁻⁹ of the sum of its terms' magnitudes
//! (for M, Σ w |a_k a_l|, and for G, which the FFT forms as 2 s · (K ∗ m) − 2M, the
//! magnitude of both parts). The FFT's rounding measured here is at most 4 × 10⁻¹⁵ of
//! that magnitude, so 10⁻⁹ leaves a margin of over 10⁵. It still catches a wrong weight,
//! offset or wrapped pair, which changes a sum by whole terms: an average pair of the
//! largest grid here is about 10⁻⁷ of the total.

use std::time::Instant;

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{PairSums, fast_fft_size, moran_geary, pair_sums};
use crate::features::ibsi::grey_levels::RoiGrid;

/// Allowed difference from the pairwise sums, relative to the magnitude of the terms.
const RELATIVE_TOLERANCE: f64 = 1e-9;

/// Pairwise sums and the magnitudes their rounding scales with.
struct ExactSums {
    sums: PairSums,
    /// Σ_(k≠l) w_kl |a_k a_l|.
    products_magnitude: f64,
    /// Σ_(k≠l) w_kl (a_k² + a_l²) + 2 Σ_(k≠l) w_kl |a_k a_l|.
    squared_differences_magnitude: f64,
}

/// Returns the sums over all voxel pairs, visiting each unordered pair once: the former
/// O(N_v²) implementation, kept as the reference.
fn exact_sums(grid: &RoiGrid, mean: f64) -> ExactSums {
    let voxels: Vec<([usize; 3], f64)> = grid
        .mask
        .indexed_iter()
        .filter(|(_, inside)| **inside)
        .map(|((i, j, k), _)| ([i, j, k], grid.intensities[[i, j, k]] - mean))
        .collect();
    // The weight of each index offset (|Δi|, |Δj|, |Δk|), as the former code tabulated it.
    let (size_i, size_j, size_k) = grid.mask.dim();
    let spacing = grid.spacing;
    let mut table = vec![0.0; size_i * size_j * size_k];
    for di in 0..size_i {
        for dj in 0..size_j {
            for dk in 0..size_k {
                let squared = (di as f64 * spacing[0]).powi(2)
                    + (dj as f64 * spacing[1]).powi(2)
                    + (dk as f64 * spacing[2]).powi(2);
                if squared > 0.0 {
                    table[(di * size_j + dj) * size_k + dk] = 1.0 / squared.sqrt();
                }
            }
        }
    }

    let mut sums = PairSums {
        count: voxels.len(),
        squares: voxels.iter().map(|(_, a)| a * a).sum(),
        weights: 0.0,
        products: 0.0,
        squared_differences: 0.0,
    };
    let mut products_magnitude = 0.0;
    let mut squares_weighted = 0.0;

    // Each voxel's pairs are summed apart and then added to the totals. This keeps the
    // rounding of 10⁹ or more terms near that of one voxel's 10⁵ terms. One accumulator
    // over all pairs was off by 10⁻⁹ relative on CT phantom configuration A.
    for (index, (first, a)) in voxels.iter().enumerate() {
        let mut row = [0.0; 5];
        for (second, b) in &voxels[index + 1..] {
            let di = first[0].abs_diff(second[0]);
            let dj = first[1].abs_diff(second[1]);
            let dk = first[2].abs_diff(second[2]);
            let weight = table[(di * size_j + dj) * size_k + dk];
            // Each unordered pair is both (k, l) and (l, k).
            row[0] += 2.0 * weight;
            row[1] += 2.0 * weight * a * b;
            row[2] += 2.0 * weight * (a - b) * (a - b);
            row[3] += 2.0 * weight * (a * b).abs();
            row[4] += weight * (a * a + b * b);
        }
        sums.weights += row[0];
        sums.products += row[1];
        sums.squared_differences += row[2];
        products_magnitude += row[3];
        squares_weighted += row[4];
    }
    ExactSums {
        sums,
        products_magnitude,
        squared_differences_magnitude: 2.0 * squares_weighted + 2.0 * products_magnitude,
    }
}

fn grid(mask: Array3<bool>, intensities: Array3<f64>, spacing: [f64; 3]) -> RoiGrid {
    let voxel_count = mask.iter().filter(|inside| **inside).count();
    RoiGrid {
        levels: Array3::zeros(mask.dim()),
        n_levels: 1,
        offset: [0, 0, 0],
        spacing,
        voxel_count,
        intensities,
        mask,
    }
}

fn mean(grid: &RoiGrid) -> f64 {
    let inside: Vec<f64> = grid
        .mask
        .iter()
        .zip(grid.intensities.iter())
        .filter(|(inside, _)| **inside)
        .map(|(_, x)| *x)
        .collect();
    inside.iter().sum::<f64>() / inside.len() as f64
}

/// Returns a grid with each voxel inside with probability `fill` and intensities uniform
/// in [−100, 300) HU.
fn random_grid(shape: (usize, usize, usize), spacing: [f64; 3], fill: f64, seed: u64) -> RoiGrid {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mask = Array3::from_shape_simple_fn(shape, || rng.gen_bool(fill));
    let intensities = Array3::from_shape_simple_fn(shape, || rng.gen_range(-100.0..300.0));
    grid(mask, intensities, spacing)
}

/// Asserts that the FFT sums of `grid` are within the tolerance of the pairwise sums, and
/// returns the largest difference relative to the magnitude.
fn assert_matches_pairwise(name: &str, grid: &RoiGrid) -> f64 {
    let mean = mean(grid);
    let exact = exact_sums(grid, mean);
    let fft = pair_sums(grid, mean);

    assert_eq!(fft.count, exact.sums.count, "{name}: voxel count");
    assert_eq!(
        fft.squares, exact.sums.squares,
        "{name}: Σs, summed in the same order"
    );
    let checks = [
        ("W", fft.weights, exact.sums.weights, exact.sums.weights),
        (
            "M",
            fft.products,
            exact.sums.products,
            exact.products_magnitude,
        ),
        (
            "G",
            fft.squared_differences,
            exact.sums.squared_differences,
            exact.squared_differences_magnitude,
        ),
    ];
    let mut largest = 0.0_f64;
    for (sum, computed, expected, magnitude) in checks {
        let difference = (computed - expected).abs();
        assert!(
            difference <= RELATIVE_TOLERANCE * magnitude,
            "{name}: {sum} by FFT {computed}, pairwise {expected}, magnitude {magnitude}"
        );
        if magnitude > 0.0 {
            largest = largest.max(difference / magnitude);
        }
    }

    // I and C inherit the sums' errors through N_v / (W Σs) and (N_v − 1) / (2 W Σs).
    let (moran, geary) = fft.moran_geary();
    let (exact_moran, exact_geary) = exact.sums.moran_geary();
    if exact.sums.weights > 0.0 && exact.sums.squares > 0.0 {
        let scale = exact.sums.count as f64 / (exact.sums.weights * exact.sums.squares);
        let moran_tolerance =
            RELATIVE_TOLERANCE * (scale * exact.products_magnitude + exact_moran.abs());
        let geary_tolerance =
            RELATIVE_TOLERANCE * (scale * exact.squared_differences_magnitude + exact_geary.abs());
        assert!(
            (moran - exact_moran).abs() <= moran_tolerance,
            "{name}: I by FFT {moran}, pairwise {exact_moran}"
        );
        assert!(
            (geary - exact_geary).abs() <= geary_tolerance,
            "{name}: C by FFT {geary}, pairwise {exact_geary}"
        );
    }
    println!("{name}: largest difference / magnitude {largest:.1e}");
    largest
}

#[test]
fn fft_size_factors() {
    // Sizes whose only prime factors are 2, 3 and 5, counted by hand.
    for (minimum, expected) in [(1, 1), (7, 8), (13, 15), (97, 100), (121, 125), (401, 405)] {
        assert_eq!(
            fast_fft_size(minimum),
            expected,
            "smallest fast size ≥ {minimum}"
        );
    }
}

#[test]
fn pairwise_anisotropic_random() {
    for seed in 0..4 {
        let grid = random_grid((7, 5, 4), [0.7, 1.3, 3.0], 0.6, seed);
        assert_matches_pairwise(&format!("7×5×4, seed {seed}"), &grid);
    }
}

#[test]
fn pairwise_odd_sizes_smooth() {
    // Odd box sizes pad to 45, 36 and 18. A smooth field makes M close to s · (K ∗ m), so
    // G comes from a difference of nearly equal sums.
    let shape = (23, 17, 9);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let mask = Array3::from_shape_simple_fn(shape, || rng.gen_bool(0.9));
    let intensities = Array3::from_shape_fn(shape, |(i, j, k)| {
        100.0 * (i as f64 / 6.0).sin()
            + 40.0 * (j as f64 / 4.0).cos()
            + 10.0 * k as f64
            + rng.gen_range(-1.0..1.0)
    });
    let grid = grid(mask, intensities, [0.98, 0.98, 3.0]);
    assert_matches_pairwise("23×17×9 smooth", &grid);
}

#[test]
fn pairwise_cube_with_hole() {
    let shape = (6, 6, 6);
    let mask = Array3::from_shape_fn(shape, |(i, j, k)| {
        !((2..4).contains(&i) && (2..4).contains(&j) && (2..4).contains(&k))
    });
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let intensities = Array3::from_shape_simple_fn(shape, || rng.gen_range(0.0..1000.0));
    let grid = grid(mask, intensities, [1.0, 1.0, 1.0]);
    assert_matches_pairwise("6×6×6 with 2×2×2 hole", &grid);
}

#[test]
fn pairwise_one_voxel_thick() {
    let slab = random_grid((1, 9, 6), [2.0, 0.5, 0.5], 0.8, 3);
    assert_matches_pairwise("1×9×6 slab", &slab);
    let line = random_grid((1, 1, 12), [1.0, 1.0, 2.5], 0.7, 4);
    assert_matches_pairwise("1×1×12 line", &line);
    let column = random_grid((10, 1, 1), [0.8, 1.0, 1.0], 1.0, 6);
    assert_matches_pairwise("10×1×1 column", &column);
}

#[test]
fn two_voxels_by_hand() {
    // Intensities 3 and 7 four voxels of 2 mm apart: μ = 5, a = ∓2, w = 1/8 each way.
    // W = 2/8, M = 2 (−4)/8, G = 2 · 16/8, Σs = 8, so I = 2 M / (W Σs) = −1 and
    // C = 1 · G / (2 W Σs) = 1.
    let mut mask = Array3::from_elem((1, 1, 5), false);
    let mut intensities = Array3::zeros((1, 1, 5));
    mask[[0, 0, 0]] = true;
    mask[[0, 0, 4]] = true;
    intensities[[0, 0, 0]] = 3.0;
    intensities[[0, 0, 4]] = 7.0;
    let grid = grid(mask, intensities, [1.0, 1.0, 2.0]);

    let (moran, geary) = moran_geary(&grid, 5.0);
    // The tolerance covers the FFT's rounding of the values 1/8 and 2.
    assert!((moran + 1.0).abs() < 1e-12, "I = {moran}, expected −1");
    assert!((geary - 1.0).abs() < 1e-12, "C = {geary}, expected 1");
    assert_matches_pairwise("2 voxels", &grid);
}

#[test]
fn degenerate_roi_zero() {
    // One voxel has no pairs (W = 0), and a constant intensity has Σs = 0. Both give 0.
    let mut mask = Array3::from_elem((3, 3, 3), false);
    mask[[1, 1, 1]] = true;
    let single = grid(mask, Array3::from_elem((3, 3, 3), 42.0), [1.0, 1.0, 1.0]);
    assert_eq!(moran_geary(&single, 42.0), (0.0, 0.0), "one voxel");

    let constant = grid(
        Array3::from_elem((4, 3, 2), true),
        Array3::from_elem((4, 3, 2), 42.0),
        [1.0, 1.0, 1.0],
    );
    assert_eq!(
        moran_geary(&constant, 42.0),
        (0.0, 0.0),
        "constant intensity"
    );
}

/// Times the pairwise sums (once) and the FFT sums (median of 5 runs) on the intensity
/// mask of IBSI CT phantom configuration A, and prints a table. Run with
/// `cargo test --release -p radstudy-worker --lib autocorrelation -- --ignored --nocapture`
/// and `RADSTUDY_DATA_ROOT` set.
#[test]
#[ignore = "reads the CT phantom and runs the O(N_v²) sums, about 15 s of CPU in release"]
fn timing_ct_phantom_config_a() {
    use crate::features::MAX_GREY_LEVELS;
    use crate::features::ibsi::processing::process;
    use crate::image::read_volume;
    use crate::mask::select_label;
    use crate::params::parse_parameters;

    let root = std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
        })
        .join("ibsi/ct_phantom");
    let image = read_volume(&root.join("image.nii.gz")).expect("CT phantom image reads");
    let labels = read_volume(&root.join("mask.nii.gz")).expect("CT phantom mask reads");
    let roi = select_label(&labels, 1).expect("CT phantom mask has label 1");
    // Configuration A of `tests/ibsi_ct_phantom.rs`.
    let parameters = parse_parameters(
        "setting:\n  ibsiMode: true\n  label: 1\n  ibsiRoundIntensities: true\n  resegmentRange: [-500, 400]\n  binWidth: 25\n",
    )
    .expect("configuration A parses");
    let options = &parameters.options;
    let processed = process(
        &image,
        &roi,
        options.resegmentation.as_ref(),
        &options.ibsi.processing,
    )
    .expect("IBSI chain processes the CT phantom");
    let grid = RoiGrid::new(
        &processed.image,
        &processed.intensity,
        &options.ibsi.discretization,
        MAX_GREY_LEVELS,
    )
    .expect("configuration A discretises");
    let mean = mean(&grid);

    let started = (Instant::now(), thread_cpu_seconds());
    let exact = exact_sums(&grid, mean).sums;
    let pairwise_seconds = (
        started.0.elapsed().as_secs_f64(),
        thread_cpu_seconds() - started.1,
    );

    let mut fft_seconds = Vec::new();
    let mut fft = exact;
    for _ in 0..5 {
        let started = (Instant::now(), thread_cpu_seconds());
        fft = pair_sums(&grid, mean);
        fft_seconds.push((
            started.0.elapsed().as_secs_f64(),
            thread_cpu_seconds() - started.1,
        ));
    }
    fft_seconds.sort_by(|first, second| first.0.total_cmp(&second.0));

    let (moran, geary) = fft.moran_geary();
    let (exact_moran, exact_geary) = exact.moran_geary();
    println!(
        "config A intensity mask: {} voxels in a {:?} box",
        exact.count,
        grid.mask.dim()
    );
    println!("| method | wall s | CPU s | Moran's I | Geary's C |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| pairwise, 1 run | {:.3} | {:.3} | {exact_moran:.12} | {exact_geary:.12} |",
        pairwise_seconds.0, pairwise_seconds.1
    );
    println!(
        "| FFT, median of 5 | {:.3} | {:.3} | {moran:.12} | {geary:.12} |",
        fft_seconds[2].0, fft_seconds[2].1
    );
    println!(
        "relative difference: I {:.1e}, C {:.1e}",
        ((moran - exact_moran) / exact_moran).abs(),
        ((geary - exact_geary) / exact_geary).abs()
    );
    // A relative difference of 10⁻⁹ would be over 10⁵ times the rounding measured on the
    // small grids. I and C are far from 0 here, so relative differences are meaningful.
    assert!(
        ((moran - exact_moran) / exact_moran).abs() < RELATIVE_TOLERANCE,
        "I"
    );
    assert!(
        ((geary - exact_geary) / exact_geary).abs() < RELATIVE_TOLERANCE,
        "C"
    );
}

/// Returns the CPU time of the calling thread in seconds, from the first field (ns) of
/// Linux's `/proc/thread-self/schedstat`, or NaN where that file is missing.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |nanoseconds| nanoseconds * 1e-9)
}
