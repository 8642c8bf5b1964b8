//! LoG image type: Laplacian of Gaussian (PyRadiomics `LoG`, output names
//! `log-sigma-<σ>-mm-3D` with the dot of σ written as a dash, such as `log-sigma-1-0-mm-3D`).
//!
//! f = σ² · (∂²/∂i² + ∂²/∂j² + ∂²/∂k²)(G_σ ∗ x), with σ in mm and each derivative in
//! physical units (per mm²), the σ² factor being "normalised across scale". Each term is
//! a separable recursive filter: the second-derivative filter along its own axis, then
//! the smoothing filter along the other two axes in increasing axis order (see
//! [`super::recursive_gaussian`]). The three terms are added after division by the
//! squared spacing of their axis.
//!
//! Source: PyRadiomics `imageoperations.getLoGImage`, which runs SimpleITK's
//! `LaplacianRecursiveGaussianImageFilter` with `NormalizeAcrossScale(True)`. ITK stores
//! each intermediate image and the sum as float32, so every step here rounds to f32 too.
//! PyRadiomics skips a σ unless every axis has at least ⌈σ / spacing⌉ + 1 voxels, and
//! skips every σ when any axis has fewer than 4 voxels; [`laplacian_of_gaussian`] does
//! the same and returns a [`LogSkip`] for a skipped σ.

use ndarray::Array3;

use super::recursive_gaussian::{Coefficients, Order, filter_axis_range};
use super::region::{MemoryOrder, VoxelBox};
use super::round_to_f32;
use crate::image::Volume;

/// Smallest number of voxels along every axis for any LoG image (ITK's recursive filter
/// needs 4 per line).
pub const MIN_AXIS_VOXELS: usize = 4;

/// Reason that a σ produced no LoG image.
#[derive(Debug, Clone, PartialEq)]
pub enum LogSkip {
    /// An axis has fewer than [`MIN_AXIS_VOXELS`] voxels.
    ImageTooSmall {
        /// Voxels along i, j, k.
        dims: [usize; 3],
    },
    /// An axis has fewer than ⌈σ / spacing⌉ + 1 voxels.
    SigmaTooLarge {
        /// Voxels along i, j, k.
        dims: [usize; 3],
        /// Voxel spacing along i, j, k in mm.
        spacing: [f64; 3],
    },
}

/// Computes the LoG image of `image` for `sigma_mm` (> 0) on the voxels of `region`, or
/// the reason PyRadiomics would skip this σ.
///
/// The values in `region` are those of the filter on the whole image: each pass filters
/// whole lines, and only the lines that reach `region` through the later passes are
/// filtered. The first pass of each term covers the whole image, the second the slab of
/// `region` along the first pass's axis, and the third the box's columns.
pub fn laplacian_of_gaussian(
    image: &Volume,
    sigma_mm: f64,
    region: &VoxelBox,
) -> Result<Volume, LogSkip> {
    let dims = image.geometry.dims;
    let spacing = image.geometry.spacing;
    if dims.iter().any(|&size| size < MIN_AXIS_VOXELS) {
        return Err(LogSkip::ImageTooSmall { dims });
    }
    let fits = (0..3).all(|axis| dims[axis] as f64 >= (sigma_mm / spacing[axis]).ceil() + 1.0);
    if !fits {
        return Err(LogSkip::SigmaTooLarge { dims, spacing });
    }

    let input = MemoryOrder::of(image.data.view());
    let mut sum = Array3::<f64>::zeros(input.permute(region.dims()));
    for derivative_axis in 0..3 {
        // Second derivative along this axis, then smoothing along the other two.
        let second = Coefficients::new(Order::Second, sigma_mm, spacing[derivative_axis], true);
        let mut term = filter_axis_range(
            input.data.view(),
            input.position(derivative_axis),
            &second,
            region.range(derivative_axis),
        );
        for smoothing_axis in (0..3).filter(|&axis| axis != derivative_axis) {
            let zero = Coefficients::new(Order::Zero, sigma_mm, spacing[smoothing_axis], true);
            term = filter_axis_range(
                term.view(),
                input.position(smoothing_axis),
                &zero,
                region.range(smoothing_axis),
            );
        }

        // Index-space derivative to per mm², accumulated in float32 as ITK does.
        let inverse_spacing_squared = 1.0 / (spacing[derivative_axis] * spacing[derivative_axis]);
        ndarray::Zip::from(&mut sum)
            .and(&term)
            .for_each(|total, &value| {
                *total = round_to_f32(*total + value * inverse_spacing_squared);
            });
    }

    Ok(Volume {
        data: input.to_image_axes(sum),
        geometry: region.geometry(&image.geometry),
        stored_as_integer: false,
    })
}

/// Returns the PyRadiomics image type name for σ as written in the parameter file:
/// Python's `str(σ)` with `.` replaced by `-`, so 1 gives `log-sigma-1-mm-3D` and 1.0
/// gives `log-sigma-1-0-mm-3D`.
pub fn image_type_name(sigma_text: &str) -> String {
    format!("log-sigma-{}-mm-3D", sigma_text.replace('.', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Geometry;
    use ndarray::Array3;

    fn volume(data: Array3<f64>, spacing: [f64; 3]) -> Volume {
        let (ni, nj, nk) = data.dim();
        Volume {
            data,
            geometry: Geometry {
                dims: [ni, nj, nk],
                spacing,
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: false,
        }
    }

    #[test]
    fn log_of_quadratic_is_scaled_laplacian() {
        // x = i² (in mm², spacing 0.5 mm) has Laplacian 2 per mm², so σ = 1.5 mm gives
        // σ²·2 = 4.5 far from the edges. The recursive fit and f32 rounding leave < 1e-3.
        let spacing = [0.5, 1.0, 1.0];
        let data = Array3::from_shape_fn((61, 8, 8), |(i, _, _)| (i as f64 * 0.5 - 15.0).powi(2));
        let output =
            laplacian_of_gaussian(&volume(data, spacing), 1.5, &VoxelBox::whole([61, 8, 8]))
                .expect("large enough");
        let centre = output.data[[30, 4, 4]];
        assert!((centre - 4.5).abs() < 1e-3, "{centre}");
    }

    #[test]
    fn log_skips_sigma_larger_than_image() {
        // 4 voxels of 1 mm fit σ ≤ 3 mm (⌈3⌉ + 1 = 4), not σ = 3.5 mm.
        let image = volume(Array3::zeros((4, 4, 4)), [1.0; 3]);
        let whole = VoxelBox::whole([4, 4, 4]);
        assert!(laplacian_of_gaussian(&image, 3.0, &whole).is_ok());
        assert!(matches!(
            laplacian_of_gaussian(&image, 3.5, &whole),
            Err(LogSkip::SigmaTooLarge { .. })
        ));
        let flat = volume(Array3::zeros((4, 4, 3)), [1.0; 3]);
        assert!(matches!(
            laplacian_of_gaussian(&flat, 1.0, &VoxelBox::whole([4, 4, 3])),
            Err(LogSkip::ImageTooSmall { dims: [4, 4, 3] })
        ));
    }

    #[test]
    fn log_type_name_follows_python_str() {
        assert_eq!(image_type_name("1.0"), "log-sigma-1-0-mm-3D");
        assert_eq!(image_type_name("2"), "log-sigma-2-mm-3D");
        assert_eq!(image_type_name("0.5"), "log-sigma-0-5-mm-3D");
    }

    #[test]
    fn log_in_box_equals_cropped_whole_image() {
        // The box version filters the same whole lines as the whole-image version, so
        // its values must be bit-identical to the crop of the whole-image LoG, for a
        // Fortran-order image (as NIfTI and NRRD volumes are) with unequal spacing.
        use ndarray::ShapeBuilder;
        let shape = (14, 11, 9);
        let data = Array3::from_shape_fn(shape.f(), |(i, j, k)| {
            ((i * 7 + j * 13 + k * 29) % 31) as f64 * 10.0 - 100.0 + (i * j) as f64
        });
        let image = volume(data, [0.8, 0.9, 3.0]);
        let region = VoxelBox {
            from: [2, 0, 5],
            to: [9, 11, 8],
        };
        for sigma_mm in [1.0, 2.0, 3.0] {
            let whole = laplacian_of_gaussian(&image, sigma_mm, &VoxelBox::whole([14, 11, 9]))
                .expect("large enough");
            let boxed = laplacian_of_gaussian(&image, sigma_mm, &region).expect("large enough");
            assert_eq!(boxed.geometry, region.geometry(&image.geometry));
            assert_eq!(
                boxed.data,
                region.crop_volume(&whole).data,
                "sigma {sigma_mm}"
            );
        }
    }
}
