//! Checks the snake traversal against a fresh fill of every voxel's window.

use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{RoiVoxels, sliding_entropy};
use crate::habitat::depth::bounding_box;
use crate::habitat::entropy::histogram::Histogram;
use crate::habitat::entropy::quantise::{
    LevelGrid, PaddedBox, PaddedValues, Quantiser, normalisation_range,
};
use crate::habitat::entropy::{Boundary, Dimensionality, EntropySettings};
use crate::image::{Geometry, Volume};
use crate::mask::Roi;

fn volume(data: Array3<f64>) -> Volume {
    let (a, b, c) = data.dim();
    Volume {
        data,
        geometry: Geometry {
            dims: [a, b, c],
            spacing: [1.0; 3],
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: false,
    }
}

/// Builds a ROI of two parts with holes: a dense ellipsoid that touches
/// the image border at i = 0, so lines meet gaps and windows leave the
/// image, and a sparse blob at the far corner, so the traversal has lines
/// too far apart to move between and must fill afresh.
fn random_roi(rng: &mut Xoshiro256PlusPlus, dims: (usize, usize, usize)) -> Roi {
    let (ni, nj, nk) = dims;
    let mask = Array3::from_shape_fn(dims, |(i, j, k)| {
        let centre = [0.0, nj as f64 / 3.0, nk as f64 / 3.0];
        let radii = [ni as f64 / 2.0, nj as f64 / 3.0, nk as f64 / 3.0];
        let distance: f64 = [i as f64, j as f64, k as f64]
            .iter()
            .zip(centre.iter().zip(&radii))
            .map(|(x, (c, r))| ((x - c) / r).powi(2))
            .sum();
        let in_ellipsoid = distance <= 1.0 && rng.gen_bool(0.8);
        let in_far_blob = i + 3 >= ni && j + 3 >= nj && k + 4 >= nk && rng.gen_bool(0.5);
        in_ellipsoid || in_far_blob
    });
    let voxel_count = mask.iter().filter(|&&inside| inside).count();
    Roi { mask, voxel_count }
}

/// Computes E in bits at box position `position` by filling a new
/// histogram with the whole window, the method without any sliding.
fn fresh_fill_entropy_bits(grid: &LevelGrid, position: [usize; 3]) -> f64 {
    let mut offsets = Vec::new();
    for i in 0..=2 * grid.half[0] {
        for j in 0..=2 * grid.half[1] {
            for k in 0..=2 * grid.half[2] {
                offsets.push(grid.index([i, j, k]));
            }
        }
    }
    let mut histogram = Histogram::new(grid.bins, grid.window_positions);
    histogram.add_plane(&grid.levels, grid.index(position), &offsets);
    histogram.entropy_bits(grid.window_positions, grid.boundary)
}

/// The traversal must give the same bits as a fresh fill at every voxel,
/// not merely close values. S is a sum of integers, so it is exact in any
/// order of updates, and E is computed from S and the counts alone.
#[test]
fn snake_traversal_matches_fresh_fill_exactly() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let boundaries = [Boundary::Masked, Boundary::BoxSymmetric, Boundary::BoxZero];
    let shapes = [
        (Dimensionality::Volume, 2),
        (Dimensionality::Slices, 0),
        (Dimensionality::Slices, 1),
        (Dimensionality::Slices, 2),
    ];
    for edge in [3, 5, 9] {
        for boundary in boundaries {
            for &(dimensionality, slice_axis) in &shapes {
                let dims = (
                    rng.gen_range(8..14),
                    rng.gen_range(8..14),
                    rng.gen_range(8..14),
                );
                let image = volume(Array3::from_shape_fn(dims, |_| rng.gen_range(0..40) as f64));
                let roi = random_roi(&mut rng, dims);
                let settings = EntropySettings {
                    dimensionality,
                    slice_axis,
                    window_edge: edge,
                    bins: 16,
                    boundary,
                    ..EntropySettings::default()
                }
                .validate()
                .expect("valid settings");
                let config = settings.settings();

                let (low, high) = bounding_box(&roi.mask).expect("non-empty ROI");
                let padded =
                    PaddedBox::new(low, high, settings.half_widths(), [dims.0, dims.1, dims.2]);
                let values = PaddedValues::new(&image, &roi, &padded);
                let range = normalisation_range(&values, config);
                let quantiser = Quantiser::new(range, config.bins);
                let grid = LevelGrid::new(&values, &padded, &quantiser, boundary);
                let roi_voxels = RoiVoxels::new(&values, roi.voxel_count, low, high);

                let entropy = sliding_entropy(&grid, &roi_voxels);
                let case = format!(
                    "edge {edge}, {boundary:?}, {dimensionality:?} axis {slice_axis}, dims {dims:?}"
                );
                assert_eq!(entropy.len(), roi.voxel_count, "{case}");
                for (voxel, &actual) in roi_voxels.voxels.iter().zip(&entropy) {
                    let position = std::array::from_fn(|a| voxel[a] - low[a]);
                    let expected = fresh_fill_entropy_bits(&grid, position);
                    assert_eq!(
                        actual.to_bits(),
                        expected.to_bits(),
                        "{case}, voxel {voxel:?}: {actual} bits, fresh fill {expected}"
                    );
                }
            }
        }
    }
}
