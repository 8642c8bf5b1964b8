//! The contract's `EntropyOptions` and `SupervoxelOptions` mapped to the
//! kernels' settings, where zero or empty fields take the defaults.

use radstudy_proto::v1::{EntropyOptions, SupervoxelOptions};

use super::RequestError;
use crate::habitat::entropy::{Boundary, Dimensionality, EntropySettings, IntensityRange, LogBase};
use crate::habitat::supervoxel::SupervoxelSettings;

fn invalid(field: &'static str, reason: String) -> RequestError {
    RequestError::InvalidField { field, reason }
}

/// Maps the contract's entropy options to settings; zero or empty fields
/// take the defaults.
///
/// NOTE: the contract makes 0 mean "default", so `slice_axis = 0` selects
/// the default axis 2 and `percentile_low = 0` the default 0.5; axis 0 and
/// the 0th percentile cannot be requested.
pub(super) fn entropy_settings(options: &EntropyOptions) -> Result<EntropySettings, RequestError> {
    let defaults = EntropySettings::default();
    let dimensionality = match options.dimensionality.as_str() {
        "" | "3d" => Dimensionality::Volume,
        "2d" => Dimensionality::Slices,
        other => {
            return Err(invalid(
                "entropy.dimensionality",
                format!("{other:?} is not \"3d\" or \"2d\""),
            ));
        }
    };
    let log_base = match options.log_base.as_str() {
        "" | "2" => LogBase::Two,
        "e" => LogBase::E,
        other => {
            return Err(invalid(
                "entropy.log_base",
                format!("{other:?} is not \"2\" or \"e\""),
            ));
        }
    };
    let boundary = match options.boundary.as_str() {
        "" | "masked" => Boundary::Masked,
        "box_symmetric" => Boundary::BoxSymmetric,
        "box_zero" => Boundary::BoxZero,
        other => {
            return Err(invalid(
                "entropy.boundary",
                format!("{other:?} is not \"masked\", \"box_symmetric\" or \"box_zero\""),
            ));
        }
    };
    let range = match options.range.as_str() {
        "" | "box" => IntensityRange::Box,
        "roi" => IntensityRange::Roi,
        "roi_percentile" => IntensityRange::RoiPercentile,
        other => {
            return Err(invalid(
                "entropy.range",
                format!("{other:?} is not \"box\", \"roi\" or \"roi_percentile\""),
            ));
        }
    };
    let or_default = |value: u32, default: usize| match value {
        0 => default,
        n => n as usize,
    };
    let or_default_f64 = |value: f64, default: f64| if value == 0.0 { default } else { value };
    Ok(EntropySettings {
        dimensionality,
        slice_axis: or_default(options.slice_axis, defaults.slice_axis),
        window_edge: or_default(options.window_edge, defaults.window_edge),
        bins: or_default(options.bins, defaults.bins),
        log_base,
        boundary,
        range,
        percentile_low: or_default_f64(options.percentile_low, defaults.percentile_low),
        percentile_high: or_default_f64(options.percentile_high, defaults.percentile_high),
    })
}

/// Maps the contract's supervoxel options to settings; zero fields, and a
/// negative `tol`, take the defaults.
pub(super) fn supervoxel_settings(options: &SupervoxelOptions) -> SupervoxelSettings {
    let defaults = SupervoxelSettings::default();
    let or_default = |value: u32, default: usize| match value {
        0 => default,
        n => n as usize,
    };
    SupervoxelSettings {
        supervoxels: or_default(options.supervoxels, defaults.supervoxels),
        min_voxels_per_supervoxel: or_default(
            options.min_voxels_per_supervoxel,
            defaults.min_voxels_per_supervoxel,
        ),
        n_init: or_default(options.n_init, defaults.n_init),
        max_iter: or_default(options.max_iter, defaults.max_iter),
        tol: if options.tol < 0.0 {
            defaults.tol
        } else {
            options.tol
        },
    }
}
