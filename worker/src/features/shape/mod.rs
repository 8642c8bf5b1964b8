//! 3-D shape features of the ROI.
//!
//! The features and their conventions follow PyRadiomics 3.1.4 (`radiomics.shape`, PyPI
//! package `pyradiomics-bhklab`) as its feature extractor runs them: the mask is cropped to
//! its bounding box and padded with one empty voxel on every side, with no resampling. The
//! tests carry PyRadiomics reference values and how they were produced.
//!
//! Let:
//!
//! - **N_v** be the number of voxels in the ROI, and s_i, s_j, s_k the voxel spacing in mm;
//! - **the mesh** be the marching-cubes triangle mesh of the mask, with its vertices at the
//!   midpoints between neighbouring inside and outside voxel centres, in physical
//!   coordinates (index × spacing) of the padded bounding box (see the `mesh` submodule);
//! - **N_f** be its number of triangles, with vertices a_m, b_m, c_m for triangle m;
//! - **V** = Σ_m a_m · (b_m × c_m) / 6, the mesh volume in mm³;
//! - **A** = Σ_m |(a_m − c_m) × (b_m − c_m)| / 2, the mesh surface area in mm²;
//! - **λ_major ≥ λ_minor ≥ λ_least** be the eigenvalues, in mm², of the covariance matrix
//!   of the physical coordinates of the N_v voxel centres, with divisor N_v;
//! - **slice, column, row** be PyRadiomics' names for planes of constant z, y and x in its
//!   (z, y, x) arrays. SimpleITK reads NIfTI voxel axis i as x, j as y and k as z, so they
//!   are planes of constant k, j and i here.
//!
//! The mesh of PyRadiomics 3.1.4 is not always closed: where two neighbouring cubes resolve
//! an ambiguous face differently, it has a hole. V then changes linearly with the position
//! of the coordinate origin: for a random 6 × 6 × 6 mask, by about 1 % when the origin moves
//! three voxels. This module therefore puts the origin where PyRadiomics' extractor puts it,
//! and V matches. On three STS MR masks the holes cancelled and V did not depend on the origin.
//! Areas, diameters and axis lengths never depend on it.

mod diameter;
mod mesh;
mod principal_axes;

use ndarray::{ArrayView3, s};

/// Feature names in output order, as PyRadiomics names them without the `original_shape_`
/// prefix.
pub const FEATURE_NAMES: [&str; 14] = [
    "MeshVolume",
    "VoxelVolume",
    "SurfaceArea",
    "SurfaceVolumeRatio",
    "Sphericity",
    "Maximum3DDiameter",
    "Maximum2DDiameterSlice",
    "Maximum2DDiameterColumn",
    "Maximum2DDiameterRow",
    "MajorAxisLength",
    "MinorAxisLength",
    "LeastAxisLength",
    "Elongation",
    "Flatness",
];

/// Computes PyRadiomics' 14 default 3-D shape features of one ROI.
///
/// `mask` is the ROI as booleans, indexed `[i, j, k]` in NIfTI voxel-axis order (i varies
/// fastest on disk). `spacing` is the voxel size along i, j and k in mm. The caller
/// guarantees at least one `true` voxel. Returns `(name, value)` pairs in the order of
/// [`FEATURE_NAMES`].
///
/// Each feature, in output order (IBSI names and codes from the IBSI reference manual):
///
/// 1. **MeshVolume** = V. IBSI "volume (mesh)" (RNU0). Unit: mm³.
/// 2. **VoxelVolume** = N_v · s_i · s_j · s_k. IBSI "approximate volume" (YEKZ). Unit: mm³.
/// 3. **SurfaceArea** = A. IBSI "surface area (mesh)" (C0JK). Unit: mm².
/// 4. **SurfaceVolumeRatio** = A / V. IBSI "surface to volume ratio" (2PR5). Unit: mm⁻¹.
///    Returned as 0 if V is 0, which no tested mask produces.
/// 5. **Sphericity** = (36 π V²)^(1/3) / A. IBSI "sphericity" (QCFX). Dimensionless; 1 for a
///    sphere, smaller for other shapes.
/// 6. **Maximum3DDiameter**: the largest distance between two mesh vertices. IBSI "maximum
///    3D diameter" (L0JK). Unit: mm.
/// 7. **Maximum2DDiameterSlice**: the largest distance between two mesh vertices with the
///    same k coordinate (the axial plane of an axial acquisition). No IBSI equivalent.
///    Unit: mm.
/// 8. **Maximum2DDiameterColumn**: the same for vertices with the same j coordinate (often
///    coronal). Unit: mm.
/// 9. **Maximum2DDiameterRow**: the same for vertices with the same i coordinate (often
///    sagittal). Unit: mm.
/// 10. **MajorAxisLength** = 4 √λ_major. IBSI "major axis length" (TDIC). Unit: mm.
/// 11. **MinorAxisLength** = 4 √λ_minor. IBSI "minor axis length" (P9VJ). Unit: mm.
/// 12. **LeastAxisLength** = 4 √λ_least. IBSI "least axis length" (7J51). Unit: mm. 0 for a
///     ROI that is one voxel thick along some axis.
/// 13. **Elongation** = √(λ_minor / λ_major). IBSI "elongation" (Q3CK). Dimensionless,
///     between 0 (a line) and 1.
/// 14. **Flatness** = √(λ_least / λ_major). IBSI "flatness" (N17B). Dimensionless, between
///     0 (a plane) and 1.
///
/// Diameters 7–9 compare vertices in planes of half-integer coordinate too (vertices on
/// edges along that axis), as PyRadiomics does. All four diameters equal PyRadiomics'
/// all-pairs maxima but come from a pruned search (see the `diameter` submodule) instead of a
/// comparison of every pair.
///
/// Deviations from PyRadiomics 3.1.4:
///
/// - For a single-voxel ROI all eigenvalues are 0 and PyRadiomics returns NaN for
///   Elongation and Flatness (0 / 0). This function returns 0, the convention PyRadiomics
///   itself uses for zero denominators in Skewness and Kurtosis.
/// - Eigenvalues are computed from exact integer moments, so one-voxel-thick ROIs get a
///   LeastAxisLength and Flatness of exactly 0 where PyRadiomics returns rounding noise of
///   about 10⁻¹⁵.
/// - An empty mask (excluded by the caller) returns NaN for every feature instead of
///   panicking.
pub fn compute(mask: ArrayView3<bool>, spacing: [f64; 3]) -> Vec<(&'static str, f64)> {
    let Some(grid) = PaddedMask::from_mask(mask) else {
        return FEATURE_NAMES.iter().map(|&name| (name, f64::NAN)).collect();
    };

    let mesh = mesh::measure_mesh(&grid, spacing);
    let volume = mesh.volume;
    let area = mesh.surface_area;
    let [si, sj, sk] = spacing;
    // PyRadiomics multiplies the spacing in its (z, x, y) order.
    let voxel_volume = grid.voxel_count as f64 * (sk * si * sj);
    let surface_volume_ratio = if volume != 0.0 { area / volume } else { 0.0 };
    let sphericity = (36.0 * std::f64::consts::PI * (volume * volume)).powf(1.0 / 3.0) / area;

    let diameters = diameter::max_diameters(&mesh::mesh_vertices(&grid), spacing);

    let [least, minor, major] = principal_axes::covariance_eigenvalues(&grid, spacing);
    let ratio_to_major = |eigenvalue: f64| {
        if major > 0.0 {
            (eigenvalue / major).sqrt()
        } else {
            0.0
        }
    };

    vec![
        ("MeshVolume", volume),
        ("VoxelVolume", voxel_volume),
        ("SurfaceArea", area),
        ("SurfaceVolumeRatio", surface_volume_ratio),
        ("Sphericity", sphericity),
        ("Maximum3DDiameter", diameters.maximum_3d),
        ("Maximum2DDiameterSlice", diameters.slice),
        ("Maximum2DDiameterColumn", diameters.column),
        ("Maximum2DDiameterRow", diameters.row),
        ("MajorAxisLength", 4.0 * major.sqrt()),
        ("MinorAxisLength", 4.0 * minor.sqrt()),
        ("LeastAxisLength", 4.0 * least.sqrt()),
        ("Elongation", ratio_to_major(minor)),
        ("Flatness", ratio_to_major(least)),
    ]
}

/// The mesh and voxel-centre measures that the IBSI morphology family builds on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MeshSummary {
    /// Mesh volume V, in mm³.
    pub volume: f64,
    /// Mesh surface area A, in mm².
    pub area: f64,
    /// Mesh vertices in mm, relative to the corner of the padded bounding box.
    pub vertices_mm: Vec<[f64; 3]>,
    /// Largest distance between two mesh vertices, in mm.
    pub maximum_diameter: f64,
    /// Eigenvalues (ascending, mm²) of the voxel-centre covariance with divisor N_v.
    pub population_eigenvalues: [f64; 3],
    /// Number of ROI voxels N_v.
    pub voxel_count: usize,
}

/// Measures the mesh and the voxel-centre covariance of `mask` as [`compute`] does;
/// returns `None` for an empty mask.
pub(crate) fn mesh_summary(mask: ArrayView3<bool>, spacing: [f64; 3]) -> Option<MeshSummary> {
    let grid = PaddedMask::from_mask(mask)?;
    let mesh = mesh::measure_mesh(&grid, spacing);
    let halves = mesh::mesh_vertices(&grid);
    let diameters = diameter::max_diameters(&halves, spacing);
    let vertices_mm = halves
        .iter()
        .map(|half| [0, 1, 2].map(|axis| half[axis] as f64 * 0.5 * spacing[axis]))
        .collect();
    Some(MeshSummary {
        volume: mesh.volume,
        area: mesh.surface_area,
        vertices_mm,
        maximum_diameter: diameters.maximum_3d,
        population_eigenvalues: principal_axes::covariance_eigenvalues(&grid, spacing),
        voxel_count: grid.voxel_count,
    })
}

/// The ROI's bounding box with one empty voxel on every side, the frame in which
/// PyRadiomics' extractor computes the mesh.
struct PaddedMask {
    /// Number of voxels along i, j, k, padding included.
    dims: [usize; 3],
    /// Inside flags, i varying fastest.
    inside: Vec<bool>,
    /// Number of inside voxels.
    voxel_count: usize,
}

impl PaddedMask {
    /// Crops `mask` to its bounding box and pads it; returns `None` for an empty mask.
    fn from_mask(mask: ArrayView3<bool>) -> Option<Self> {
        let (lower, upper) = crate::mask::bounding_box(mask.view())?;
        let dims = [0, 1, 2].map(|axis| upper[axis] - lower[axis] + 3);
        let mut padded = PaddedMask {
            dims,
            inside: vec![false; dims[0] * dims[1] * dims[2]],
            voxel_count: 0,
        };
        let bounding_box = mask.slice(s![
            lower[0]..=upper[0],
            lower[1]..=upper[1],
            lower[2]..=upper[2]
        ]);
        // Line by line along i, the contiguous axis of NIfTI masks (Fortran order).
        let (extent_i, extent_j, extent_k) = bounding_box.dim();
        for k in 0..extent_k {
            for j in 0..extent_j {
                let start = padded.offset([1, j + 1, k + 1]);
                let target = &mut padded.inside[start..start + extent_i];
                for (voxel, &inside) in target.iter_mut().zip(bounding_box.slice(s![.., j, k])) {
                    *voxel = inside;
                    padded.voxel_count += usize::from(inside);
                }
            }
        }
        Some(padded)
    }

    fn offset(&self, [i, j, k]: [usize; 3]) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// Returns whether a voxel, in padded coordinates below `dims`, is inside the ROI.
    fn is_inside(&self, voxel: [usize; 3]) -> bool {
        self.inside[self.offset(voxel)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// Relative tolerance against PyRadiomics. The mesh and the diameters agree to a few
    /// units in 10⁻¹⁵, because only the summation order differs. The eigenvalues come from
    /// another algorithm (Jacobi here, LAPACK `geev` there) and agree to about 10⁻¹⁴.
    const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-11;

    /// Absolute tolerance for features that are 0 here and rounding noise of about 10⁻¹⁵
    /// in PyRadiomics (axis lengths and Flatness of one-voxel-thick ROIs).
    const ZERO_ABSOLUTE_TOLERANCE: f64 = 1e-13;

    fn assert_matches(label: &str, features: &[(&'static str, f64)], expected: [f64; 14]) {
        for (&(name, actual), expected) in features.iter().zip(expected) {
            let close = if expected.abs() < ZERO_ABSOLUTE_TOLERANCE {
                actual.abs() < ZERO_ABSOLUTE_TOLERANCE
            } else {
                (actual - expected).abs() <= REFERENCE_RELATIVE_TOLERANCE * expected.abs()
            };
            assert!(
                close,
                "{label}: {name} = {actual:e}, PyRadiomics gives {expected:e}"
            );
        }
    }

    fn feature(features: &[(&'static str, f64)], name: &str) -> f64 {
        features
            .iter()
            .find(|(feature_name, _)| *feature_name == name)
            .map(|&(_, value)| value)
            .unwrap_or_else(|| panic!("feature {name} missing from the output"))
    }

    /// Returns the mask of the first-order tests: voxel (i, j, k) of a 5 × 4 × 3 volume is
    /// inside when (i + 2j + 3k) mod 4 ≠ 0.
    fn synthetic_mask() -> Array3<bool> {
        Array3::from_shape_fn((5, 4, 3), |(i, j, k)| (i + 2 * j + 3 * k) % 4 != 0)
    }

    /// Returns a pseudo-random mask, about half inside: voxel (i, j, k) is inside when 16
    /// bits of a multiplicative hash of (i, j, k, seed) are below 32768. The Python script that made
    /// the reference values uses the same formula.
    fn hash_mask(dims: (usize, usize, usize), seed: u64) -> Array3<bool> {
        Array3::from_shape_fn(dims, |(i, j, k)| {
            let key = (i as u64).wrapping_mul(73_856_093)
                ^ (j as u64).wrapping_mul(19_349_663)
                ^ (k as u64).wrapping_mul(83_492_791)
                ^ seed.wrapping_mul(2_654_435_761);
            let hash = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (hash >> 32) & 0xFFFF < 32_768
        })
    }

    #[test]
    fn feature_names_match_output_order() {
        let features = compute(synthetic_mask().view(), [1.0, 1.0, 1.0]);
        let names: Vec<&str> = features.iter().map(|&(name, _)| name).collect();
        assert_eq!(names, FEATURE_NAMES);
    }

    // Reference values in the tests below: PyRadiomics 3.1.4 (pyradiomics-bhklab,
    // SimpleITK 2.5.7, numpy 2.4.6), class `RadiomicsShape`, with the stated spacing. Its
    // input was the mask transposed to SimpleITK's (k, j, i) array order and cropped to its
    // bounding box, as `RadiomicsFeatureExtractor.computeShape` crops it. Values are in
    // FEATURE_NAMES order, printed with `repr`.

    #[test]
    fn synthetic_mask_matches_pyradiomics() {
        let features = compute(synthetic_mask().view(), [0.7, 1.3, 2.9]);
        assert_matches(
            "synthetic mask",
            &features,
            [
                110.3981666666666,
                116.11599999999999,
                189.81019767349787,
                1.7193238203547885,
                0.5863260058013288,
                9.936800289831734,
                5.90592922409336,
                8.949860334105779,
                9.534149149242424,
                9.26141186528103,
                5.803335392446627,
                3.8657356635925995,
                0.6266145461257412,
                0.4174024133495651,
            ],
        );
    }

    #[test]
    fn random_masks_match_pyradiomics() {
        let expected: [(u64, [f64; 14]); 4] = [
            (
                1,
                [
                    241.51067325000005,
                    281.29978800000004,
                    566.4790383631685,
                    2.3455652321285902,
                    0.3310735604911398,
                    17.646056216616785,
                    7.86651765395591,
                    17.37518057460123,
                    16.79717238108843,
                    17.465675767605198,
                    7.6853386854627015,
                    5.065300955870496,
                    0.44002526943258813,
                    0.2900145991067498,
                ],
            ),
            (
                2,
                [
                    218.48028125000005,
                    264.02699400000006,
                    581.9968743124498,
                    2.663841656476491,
                    0.30141970218245684,
                    17.796612037126614,
                    7.86651765395591,
                    17.37518057460123,
                    16.79717238108843,
                    18.737768834338265,
                    7.92518484951478,
                    5.197468952761444,
                    0.422952429373092,
                    0.27737928665427447,
                ],
            ),
            (
                3,
                [
                    209.94669849999977,
                    264.02699400000006,
                    561.467975029712,
                    2.674335814953111,
                    0.3042508737755523,
                    17.796612037126614,
                    7.86651765395591,
                    17.37518057460123,
                    16.79717238108843,
                    19.360510368702638,
                    7.68747806015639,
                    5.011820140581097,
                    0.397070010746392,
                    0.2588681829732644,
                ],
            ),
            (
                4,
                [
                    260.1200525000001,
                    281.29978800000004,
                    522.0132268159731,
                    2.006816551814947,
                    0.37750134717127504,
                    17.796612037126614,
                    7.86651765395591,
                    17.37518057460123,
                    16.637574943482598,
                    18.179935459446423,
                    7.999808836849693,
                    4.704387967046789,
                    0.44003505153770694,
                    0.2587681335580515,
                ],
            ),
        ];
        for (seed, values) in expected {
            let mask = hash_mask((7, 6, 5), seed);
            let features = compute(mask.view(), [0.98, 0.77, 3.27]);
            assert_matches(&format!("hash mask, seed {seed}"), &features, values);
        }
    }

    /// PyRadiomics returns NaN for Elongation and Flatness here; this module returns 0.
    #[test]
    fn single_voxel_matches_pyradiomics() {
        let mask = Array3::from_elem((1, 1, 1), true);
        let features = compute(mask.view(), [0.7, 1.3, 2.9]);
        assert_matches(
            "single voxel",
            &features,
            [
                0.43983333333333324,
                2.639,
                4.377430753307241,
                9.952476134840262,
                0.6389353739298037,
                2.8999999999999995,
                1.3000000000000003,
                2.8999999999999995,
                2.8999999999999995,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        );
    }

    #[test]
    fn one_voxel_thick_slab_matches_pyradiomics() {
        let mut mask = Array3::from_elem((4, 3, 1), true);
        mask[[0, 0, 0]] = false;
        let features = compute(mask.view(), [0.7, 1.3, 2.9]);
        assert_matches(
            "slab",
            &features,
            [
                20.892083333333325,
                29.028999999999996,
                41.52285394840147,
                1.9874922613462749,
                0.8834556685575126,
                4.42944691807002,
                4.42944691807002,
                3.5805027579936306,
                3.9,
                4.186888334708069,
                2.8974567000878273,
                1.7763568394002505e-15,
                0.6920310427361451,
                4.2426659069810306e-16,
            ],
        );
        assert_eq!(feature(&features, "LeastAxisLength"), 0.0);
        assert_eq!(feature(&features, "Flatness"), 0.0);
    }

    /// A line along i has its long diameters in planes of constant k (Slice) and j
    /// (Column), and only a 1 mm cross-section in planes of constant i (Row).
    #[test]
    fn line_along_i_maps_diameters_to_nifti_axes() {
        let mask = Array3::from_elem((5, 1, 1), true);
        let features = compute(mask.view(), [1.0, 1.0, 1.0]);
        assert_matches(
            "line along i",
            &features,
            [
                2.1666666666666665,
                5.0,
                13.045759306553633,
                6.021119679947831,
                0.6206920233612435,
                5.0,
                5.0,
                5.0,
                1.0,
                5.656854249492381,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        );
    }

    #[test]
    fn cube_axes_and_volume_are_analytic() {
        let mask = Array3::from_elem((3, 3, 3), true);
        let spacing = [1.5, 1.5, 1.5];
        let features = compute(mask.view(), spacing);
        assert_eq!(feature(&features, "VoxelVolume"), 27.0 * 1.5 * 1.5 * 1.5);
        // Voxel indices 0, 1, 2 on each axis have variance 2/3.
        let axis_length = 4.0 * (2.0_f64 / 3.0).sqrt() * 1.5;
        for name in ["MajorAxisLength", "MinorAxisLength", "LeastAxisLength"] {
            assert!(
                (feature(&features, name) - axis_length).abs() < 1e-12,
                "{name}"
            );
        }
        assert!((feature(&features, "Elongation") - 1.0).abs() < 1e-12);
        assert!((feature(&features, "Flatness") - 1.0).abs() < 1e-12);
        // Farthest vertices: (−½, 0, 0) and (2½, 2, 2) voxels apart, √17 voxels.
        assert!((feature(&features, "Maximum3DDiameter") - 17.0_f64.sqrt() * 1.5).abs() < 1e-12);
    }

    #[test]
    fn translation_keeps_features_identical() {
        let small = hash_mask((7, 6, 5), 1);
        let mut shifted = Array3::from_elem((12, 9, 14), false);
        shifted.slice_mut(s![4..11, 2..8, 6..11]).assign(&small);
        let spacing = [0.98, 0.77, 3.27];
        assert_eq!(
            compute(small.view(), spacing),
            compute(shifted.view(), spacing)
        );
    }

    #[test]
    fn edge_case_masks_return_finite_values() {
        let single = Array3::from_elem((1, 1, 1), true);
        let slab = Array3::from_elem((6, 1, 4), true);
        let line = Array3::from_elem((1, 1, 7), true);
        for (label, mask) in [("single voxel", single), ("slab", slab), ("line", line)] {
            for (name, value) in compute(mask.view(), [0.5, 0.9, 4.0]) {
                assert!(value.is_finite(), "{label}: {name} = {value}");
            }
        }
    }

    #[test]
    fn empty_mask_returns_nan() {
        let mask = Array3::from_elem((3, 3, 3), false);
        let features = compute(mask.view(), [1.0, 1.0, 1.0]);
        assert_eq!(features.len(), FEATURE_NAMES.len());
        assert!(features.iter().all(|&(_, value)| value.is_nan()));
    }
}
