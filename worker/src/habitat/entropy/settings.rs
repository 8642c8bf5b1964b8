//! Settings of the local entropy map and their validation.

use serde::{Deserialize, Serialize};

/// Default window edge in voxels (the reference recipe's 9 × 9 × 9).
pub const DEFAULT_WINDOW_EDGE: usize = 9;
/// Smallest window edge accepted.
pub const MIN_WINDOW_EDGE: usize = 3;
/// Largest window edge accepted.
pub const MAX_WINDOW_EDGE: usize = 15;
/// Default number of histogram cells N_b (MATLAB's 8-bit conversion).
pub const DEFAULT_BINS: usize = 256;
/// Smallest N_b accepted.
pub const MIN_BINS: usize = 8;
/// Largest N_b accepted.
pub const MAX_BINS: usize = 256;

/// Rule for the window positions that count and for the divisor N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    /// Only positions in M count, and N = |W(v) ∩ M|, as PyRadiomics'
    /// voxel-based extraction with its default masked kernel. Entropy
    /// describes lesion tissue only.
    #[default]
    Masked,
    /// Every position counts and N = |W|. Positions outside P (which, for
    /// windows of ROI voxels, lie beyond the image border) take the value
    /// of their mirror image in P, the edge voxel repeated, as MATLAB
    /// `padarray(..., 'symmetric')` and `entropyfilt` do.
    BoxSymmetric,
    /// Positions beyond the image border count in no cell, but N = |W|, as
    /// a convolution with zero padding does (HABIT).
    BoxZero,
}

/// The range (a, b) that maps intensities to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntensityRange {
    /// Min and max over the padded box P.
    #[default]
    Box,
    /// Min and max over the ROI.
    Roi,
    /// The `percentile_low` and `percentile_high` percentiles over the ROI,
    /// by linear interpolation between order statistics (numpy's default).
    /// Values outside the range are clipped.
    RoiPercentile,
}

/// Window shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Dimensionality {
    /// A cube of edge `window_edge`.
    #[default]
    #[serde(rename = "3d")]
    Volume,
    /// A square of edge `window_edge` within each slice normal to
    /// `slice_axis`, so no window crosses into another slice.
    #[serde(rename = "2d")]
    Slices,
}

/// Logarithm base of the entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LogBase {
    /// Bits.
    #[default]
    #[serde(rename = "2")]
    Two,
    /// Nats.
    #[serde(rename = "e")]
    E,
}

/// Settings of the local entropy map, as written in a configuration. Turn
/// them into [`ValidEntropySettings`] with [`EntropySettings::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropySettings {
    /// 3-D cubes (default) or 2-D squares per slice.
    pub dimensionality: Dimensionality,
    /// Voxel axis normal to the slices of the 2-D option: 0 (i), 1 (j) or
    /// 2 (k, default). Unused in 3-D.
    pub slice_axis: usize,
    /// Window edge in voxels, 3 to 15; an even value is raised by one.
    /// Default 9.
    pub window_edge: usize,
    /// Histogram cells N_b, 8 to 256. Default 256.
    pub bins: usize,
    /// Logarithm base. Default 2 (bits).
    pub log_base: LogBase,
    /// Boundary handling. Default `masked`.
    pub boundary: Boundary,
    /// Normalisation range. Default `box`.
    pub range: IntensityRange,
    /// Lower percentile (0 to 100) for `roi_percentile`. Default 0.5.
    pub percentile_low: f64,
    /// Upper percentile (0 to 100) for `roi_percentile`. Default 99.5.
    pub percentile_high: f64,
}

impl Default for EntropySettings {
    fn default() -> Self {
        EntropySettings {
            dimensionality: Dimensionality::Volume,
            slice_axis: 2,
            window_edge: DEFAULT_WINDOW_EDGE,
            bins: DEFAULT_BINS,
            log_base: LogBase::Two,
            boundary: Boundary::Masked,
            range: IntensityRange::Box,
            percentile_low: 0.5,
            percentile_high: 99.5,
        }
    }
}

/// A setting of [`EntropySettings`] out of range, one variant per setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntropySettingsError {
    /// The window edge is outside 3..=15 after raising an even value.
    #[error(
        "window_edge = {value} is invalid; expected {MIN_WINDOW_EDGE} to {MAX_WINDOW_EDGE} voxels (an even value is raised by one)"
    )]
    InvalidWindowEdge {
        /// The configured value.
        value: usize,
    },
    /// N_b is outside 8..=256.
    #[error("bins = {value} is invalid; expected {MIN_BINS} to {MAX_BINS} histogram cells")]
    InvalidBins {
        /// The configured value.
        value: usize,
    },
    /// The slice axis is not 0, 1 or 2.
    #[error("slice_axis = {value} is invalid; expected 0 (i), 1 (j) or 2 (k)")]
    InvalidSliceAxis {
        /// The configured value.
        value: usize,
    },
    /// The percentiles are not 0 ≤ low < high ≤ 100.
    #[error(
        "percentile_low = {low} and percentile_high = {high} are invalid; expected 0 ≤ percentile_low < percentile_high ≤ 100"
    )]
    InvalidPercentiles {
        /// The configured lower percentile.
        low: f64,
        /// The configured upper percentile.
        high: f64,
    },
}

impl EntropySettings {
    /// Checks every setting and returns the settings that
    /// [`local_entropy`] accepts.
    pub fn validate(&self) -> Result<ValidEntropySettings, EntropySettingsError> {
        let edge = self.window_edge + (1 - self.window_edge % 2);
        if !(MIN_WINDOW_EDGE..=MAX_WINDOW_EDGE).contains(&edge) {
            return Err(EntropySettingsError::InvalidWindowEdge {
                value: self.window_edge,
            });
        }
        if !(MIN_BINS..=MAX_BINS).contains(&self.bins) {
            return Err(EntropySettingsError::InvalidBins { value: self.bins });
        }
        if self.slice_axis > 2 {
            return Err(EntropySettingsError::InvalidSliceAxis {
                value: self.slice_axis,
            });
        }
        let (low, high) = (self.percentile_low, self.percentile_high);
        if !(low.is_finite() && high.is_finite() && 0.0 <= low && low < high && high <= 100.0) {
            return Err(EntropySettingsError::InvalidPercentiles { low, high });
        }
        Ok(ValidEntropySettings {
            settings: self.clone(),
            edge,
        })
    }
}

/// [`EntropySettings`] whose values have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEntropySettings {
    pub(super) settings: EntropySettings,
    pub(super) edge: usize,
}

impl ValidEntropySettings {
    /// Returns the window edge in voxels: odd, 3 to 15.
    pub fn window_edge(&self) -> usize {
        self.edge
    }

    /// Returns the settings as configured.
    pub fn settings(&self) -> &EntropySettings {
        &self.settings
    }

    /// Returns the window half-width along each axis: (edge − 1) / 2, and 0
    /// along the slice axis of the 2-D option.
    pub(super) fn half_widths(&self) -> [usize; 3] {
        let half = (self.edge - 1) / 2;
        let mut widths = [half; 3];
        if self.settings.dimensionality == Dimensionality::Slices {
            widths[self.settings.slice_axis] = 0;
        }
        widths
    }
}
