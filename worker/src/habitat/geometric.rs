//! Purely geometric core/rim split of a lesion, without clustering: the
//! core is the set of ROI voxels deeper than a threshold, the rim is the
//! rest of the ROI.
//!
//! Rules, with d(v) the depth in mm and δ(v) = d(v) / max d from
//! [`super::depth`]:
//!
//! - `geom_absolute` (default): core = {d > t}, t = 3 mm by default. On the
//!   exact distance map this equals erosion by a ball of radius t.
//! - `geom_relative`: core = {δ > r}, r = 0.5 by default.
//! - `geom_equal_volume`: core = {d > m} or {d ≥ m}, m the median depth,
//!   whichever gives a core closer to half the ROI (ties to {d > m}). Depths
//!   on a voxel grid repeat, so the halves are equal only up to the voxels
//!   at depth m.
//!
//! Fallback: when the core has fewer than `min_core_voxels` voxels (default
//! 50, the smallest region the feature extraction accepts), the split falls
//! back from `geom_absolute` to `geom_relative`, then to
//! `geom_equal_volume`. The result records the rule used. If even the
//! equal-volume core is too small, it is returned with
//! `core_below_minimum` set, and the region is then invalid downstream.

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use super::depth::RoiDepth;
use crate::mask::Roi;

/// Default core depth threshold for `geom_absolute`, in mm.
pub const DEFAULT_THRESHOLD_MM: f64 = 3.0;
/// Accepted range of the absolute threshold, in mm.
pub const THRESHOLD_RANGE_MM: (f64, f64) = (1.0, 5.0);
/// Default normalised depth threshold for `geom_relative`.
pub const DEFAULT_RELATIVE_THRESHOLD: f64 = 0.5;
/// Accepted range of the relative threshold.
pub const RELATIVE_THRESHOLD_RANGE: (f64, f64) = (0.3, 0.7);
/// Default minimum core size before falling back: the smallest region, in
/// voxels, that the feature extraction accepts.
pub const DEFAULT_MIN_CORE_VOXELS: usize = 50;

/// A rule of the geometric split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GeometricRule {
    /// Core = depth above `threshold_mm`.
    #[default]
    #[serde(rename = "geom_absolute")]
    Absolute,
    /// Core = normalised depth above `relative_threshold`.
    #[serde(rename = "geom_relative")]
    Relative,
    /// Core = the deeper half, split at the median depth.
    #[serde(rename = "geom_equal_volume")]
    EqualVolume,
}

/// Settings of the geometric split, as written in a configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeometricSettings {
    /// The rule tried first. Default `geom_absolute`.
    pub rule: GeometricRule,
    /// Depth threshold t of `geom_absolute`, in mm, 1 to 5. Default 3.
    pub threshold_mm: f64,
    /// Normalised depth threshold r of `geom_relative`, 0.3 to 0.7.
    /// Default 0.5.
    pub relative_threshold: f64,
    /// Smallest core, in voxels, before the next rule is tried; at least 1.
    /// Default 50.
    pub min_core_voxels: usize,
}

impl Default for GeometricSettings {
    fn default() -> Self {
        GeometricSettings {
            rule: GeometricRule::Absolute,
            threshold_mm: DEFAULT_THRESHOLD_MM,
            relative_threshold: DEFAULT_RELATIVE_THRESHOLD,
            min_core_voxels: DEFAULT_MIN_CORE_VOXELS,
        }
    }
}

/// A setting of [`GeometricSettings`] out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometricSettingsError {
    /// The absolute threshold is outside [1, 5] mm.
    #[error("threshold_mm = {value} is invalid; expected 1 to 5 mm")]
    InvalidThreshold {
        /// The configured value.
        value: f64,
    },
    /// The relative threshold is outside [0.3, 0.7].
    #[error("relative_threshold = {value} is invalid; expected 0.3 to 0.7")]
    InvalidRelativeThreshold {
        /// The configured value.
        value: f64,
    },
    /// The minimum core size is 0.
    #[error("min_core_voxels = 0 is invalid; expected at least 1 voxel")]
    InvalidMinCoreVoxels,
}

impl GeometricSettings {
    /// Checks every setting.
    pub fn validate(&self) -> Result<ValidGeometricSettings, GeometricSettingsError> {
        let (low, high) = THRESHOLD_RANGE_MM;
        if !(low..=high).contains(&self.threshold_mm) {
            return Err(GeometricSettingsError::InvalidThreshold {
                value: self.threshold_mm,
            });
        }
        let (low, high) = RELATIVE_THRESHOLD_RANGE;
        if !(low..=high).contains(&self.relative_threshold) {
            return Err(GeometricSettingsError::InvalidRelativeThreshold {
                value: self.relative_threshold,
            });
        }
        if self.min_core_voxels == 0 {
            return Err(GeometricSettingsError::InvalidMinCoreVoxels);
        }
        Ok(ValidGeometricSettings {
            settings: self.clone(),
        })
    }
}

/// [`GeometricSettings`] whose values have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGeometricSettings {
    settings: GeometricSettings,
}

impl ValidGeometricSettings {
    /// Returns the settings as configured.
    pub fn settings(&self) -> &GeometricSettings {
        &self.settings
    }
}

/// An error from [`geometric_split`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometricError {
    /// The depth was computed for another ROI.
    #[error(
        "the depth map has {depth_voxels} voxels but the ROI has {roi_voxels}; compute the depth from the same ROI"
    )]
    DepthMismatch {
        /// Voxels in the depth map.
        depth_voxels: usize,
        /// Voxels in the ROI.
        roi_voxels: usize,
    },
    /// The ROI has no voxel.
    #[error("the ROI is empty; a geometric split needs at least one voxel")]
    EmptyRoi,
}

/// A core/rim split of the ROI.
#[derive(Debug, Clone, PartialEq)]
pub struct GeometricSplit {
    /// Core voxels, on the image grid.
    pub core: Array3<bool>,
    /// Rim voxels (ROI minus core), on the image grid.
    pub rim: Array3<bool>,
    /// Voxels in the core.
    pub core_voxels: usize,
    /// Voxels in the rim.
    pub rim_voxels: usize,
    /// The rule requested by the settings.
    pub requested_rule: GeometricRule,
    /// The rule that produced this split, after any fallback.
    pub rule: GeometricRule,
    /// The depth threshold of the rule used, in mm. The core is the set of
    /// depths above it, or at or above it when `threshold_inclusive`.
    pub threshold_mm: f64,
    /// Whether voxels at exactly `threshold_mm` belong to the core (only
    /// `geom_equal_volume` can choose this).
    pub threshold_inclusive: bool,
    /// Whether the core is still below `min_core_voxels` after the last
    /// fallback.
    pub core_below_minimum: bool,
}

/// Splits the ROI into core and rim by depth, with the fallback chain of
/// the module documentation. `depth` must come from the same ROI.
pub fn geometric_split(
    roi: &Roi,
    depth: &RoiDepth,
    settings: &ValidGeometricSettings,
) -> Result<GeometricSplit, GeometricError> {
    if depth.voxels.len() != roi.voxel_count {
        return Err(GeometricError::DepthMismatch {
            depth_voxels: depth.voxels.len(),
            roi_voxels: roi.voxel_count,
        });
    }
    if depth.voxels.is_empty() {
        return Err(GeometricError::EmptyRoi);
    }
    let config = &settings.settings;
    let chain: &[GeometricRule] = match config.rule {
        GeometricRule::Absolute => &[
            GeometricRule::Absolute,
            GeometricRule::Relative,
            GeometricRule::EqualVolume,
        ],
        GeometricRule::Relative => &[GeometricRule::Relative, GeometricRule::EqualVolume],
        GeometricRule::EqualVolume => &[GeometricRule::EqualVolume],
    };

    let mut chosen = None;
    for &rule in chain {
        let core = core_selection(rule, depth, config);
        let enough =
            core.members.iter().filter(|&&inside| inside).count() >= config.min_core_voxels;
        chosen = Some((rule, core));
        if enough {
            break;
        }
    }
    let (rule, selection) = chosen.expect("every chain has at least one rule");

    let mut core = Array3::from_elem(roi.mask.raw_dim(), false);
    let mut rim = Array3::from_elem(roi.mask.raw_dim(), false);
    for (voxel, &in_core) in depth.voxels.iter().zip(&selection.members) {
        if in_core {
            core[*voxel] = true;
        } else {
            rim[*voxel] = true;
        }
    }
    let core_voxels = selection.members.iter().filter(|&&inside| inside).count();
    Ok(GeometricSplit {
        core,
        rim,
        core_voxels,
        rim_voxels: depth.voxels.len() - core_voxels,
        requested_rule: config.rule,
        rule,
        threshold_mm: selection.threshold_mm,
        threshold_inclusive: selection.inclusive,
        core_below_minimum: core_voxels < config.min_core_voxels,
    })
}

/// Core membership of each ROI voxel under one rule.
struct CoreSelection {
    members: Vec<bool>,
    threshold_mm: f64,
    inclusive: bool,
}

fn core_selection(
    rule: GeometricRule,
    depth: &RoiDepth,
    config: &GeometricSettings,
) -> CoreSelection {
    match rule {
        GeometricRule::Absolute => CoreSelection {
            members: depth
                .depth_mm
                .iter()
                .map(|&d| d > config.threshold_mm)
                .collect(),
            threshold_mm: config.threshold_mm,
            inclusive: false,
        },
        GeometricRule::Relative => CoreSelection {
            members: depth
                .normalised
                .iter()
                .map(|&delta| delta > config.relative_threshold)
                .collect(),
            threshold_mm: config.relative_threshold * depth.max_depth_mm,
            inclusive: false,
        },
        GeometricRule::EqualVolume => equal_volume_selection(&depth.depth_mm),
    }
}

/// Splits at the median depth (the mean of the two middle values for an
/// even count), choosing > or ≥ to bring the core closest to half the ROI.
fn equal_volume_selection(depths: &[f64]) -> CoreSelection {
    let mut sorted = depths.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    };
    let strict = depths.iter().filter(|&&d| d > median).count();
    let inclusive = depths.iter().filter(|&&d| d >= median).count();
    // Compare 2·|core| with n to stay in integers.
    let inclusive_better = (2 * inclusive).abs_diff(n) < (2 * strict).abs_diff(n);
    CoreSelection {
        members: depths
            .iter()
            .map(|&d| {
                if inclusive_better {
                    d >= median
                } else {
                    d > median
                }
            })
            .collect(),
        threshold_mm: median,
        inclusive: inclusive_better,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::habitat::depth::roi_depth;
    use std::f64::consts::PI;

    fn ball_volume_mm3(radius_mm: f64) -> f64 {
        4.0 / 3.0 * PI * radius_mm.max(0.0).powi(3)
    }

    /// Builds a ball of radius `radius_mm` centred on a voxel centre, on an
    /// isotropic grid of `spacing_mm`, with a margin of two voxels.
    fn ball(radius_mm: f64, spacing_mm: f64) -> Roi {
        let half = (radius_mm / spacing_mm).ceil() as usize + 2;
        let n = 2 * half + 1;
        let mask = Array3::from_shape_fn((n, n, n), |(i, j, k)| {
            let squared: f64 = [i, j, k]
                .iter()
                .map(|&x| ((x as f64 - half as f64) * spacing_mm).powi(2))
                .sum();
            squared <= radius_mm * radius_mm
        });
        let voxel_count = mask.iter().filter(|&&inside| inside).count();
        Roi { mask, voxel_count }
    }

    fn split(roi: &Roi, spacing_mm: f64, settings: GeometricSettings) -> GeometricSplit {
        let depth = roi_depth(roi, [spacing_mm; 3]).expect("non-empty ROI");
        geometric_split(roi, &depth, &settings.validate().expect("valid settings"))
            .expect("same ROI")
    }

    #[test]
    fn geometric_absolute_core_of_sphere_matches_ball_volume() {
        // Ball of radius R = 20 mm on a 1 mm grid, core = depth > t = 3 mm.
        // Bounds on the depth d of a voxel at distance ρ from the centre:
        // every outside voxel is farther than R from the centre, so
        // d > R − ρ. Some voxel centre lies within √3/2 mm of the point just
        // beyond R + √3/2 on the ray through the voxel, and that voxel is
        // outside, so d ≤ R − ρ + √3. The core therefore contains the
        // voxels with ρ < R − t and lies within ρ < R − t + √3. Voxel cubes
        // around the centres within radius ρ cover the ball of radius
        // ρ − √3/2 and lie inside ρ + √3/2, so the core volume lies between
        // V(R − t − √3/2) and V(R − t + 3√3/2), around the analytic
        // V(R − t) = V(17 mm).
        let (radius, spacing, threshold) = (20.0, 1.0, 3.0);
        let roi = ball(radius, spacing);
        let result = split(&roi, spacing, GeometricSettings::default());
        assert_eq!(result.rule, GeometricRule::Absolute);

        let core_mm3 = result.core_voxels as f64 * spacing.powi(3);
        let root3 = 3f64.sqrt();
        let lower = ball_volume_mm3(radius - threshold - root3 / 2.0 * spacing);
        let upper = ball_volume_mm3(radius - threshold + 1.5 * root3 * spacing);
        assert!(
            (lower..=upper).contains(&core_mm3),
            "core {core_mm3} mm³ outside [{lower}, {upper}] (analytic {})",
            ball_volume_mm3(radius - threshold)
        );

        // A threshold off by 0.5 mm would move the core volume by about
        // 3 · 0.5 / 17 ≈ 9 %, beyond a 3 % band around the analytic
        // V(17 mm). Voxelisation moves this phantom's core by +1.1 %
        // (20,815 voxels against 20,580 mm³), because the nearest outside
        // voxel centre lies only a small fraction of a voxel beyond the
        // sphere along some direction.
        let analytic = ball_volume_mm3(radius - threshold);
        assert!(
            (core_mm3 / analytic - 1.0).abs() < 0.03,
            "core {core_mm3} mm³ against analytic {analytic} mm³"
        );
    }

    #[test]
    fn geometric_core_and_rim_partition_roi() {
        let roi = ball(8.0, 1.0);
        for rule in [
            GeometricRule::Absolute,
            GeometricRule::Relative,
            GeometricRule::EqualVolume,
        ] {
            let result = split(
                &roi,
                1.0,
                GeometricSettings {
                    rule,
                    min_core_voxels: 1,
                    ..GeometricSettings::default()
                },
            );
            assert_eq!(result.rule, rule);
            assert_eq!(
                result.core_voxels + result.rim_voxels,
                roi.voxel_count,
                "{rule:?}"
            );
            for ((&core, &rim), &inside) in result.core.iter().zip(&result.rim).zip(&roi.mask) {
                assert!(!(core && rim), "{rule:?}: core and rim overlap");
                assert_eq!(core || rim, inside, "{rule:?}: union differs from the ROI");
            }
        }
    }

    #[test]
    fn geometric_relative_core_is_inner_half_radius() {
        // δ > 0.5 with max depth ≈ R: the core is about the ball of radius
        // R/2. With the same depth bounds as above and max d between R and
        // R + √3, the core lies between V(R/2 − √3/2) and
        // V(R/2 + √3 + √3/2) for R = 16 mm.
        let (radius, spacing) = (16.0, 1.0);
        let roi = ball(radius, spacing);
        let settings = GeometricSettings {
            rule: GeometricRule::Relative,
            ..GeometricSettings::default()
        };
        let result = split(&roi, spacing, settings);
        assert_eq!(result.rule, GeometricRule::Relative);
        let root3 = 3f64.sqrt();
        let core_mm3 = result.core_voxels as f64;
        let lower = ball_volume_mm3(radius / 2.0 - root3 / 2.0);
        let upper = ball_volume_mm3(radius / 2.0 + 1.5 * root3);
        assert!(
            (lower..=upper).contains(&core_mm3),
            "core {core_mm3} outside [{lower}, {upper}]"
        );
    }

    #[test]
    fn geometric_equal_volume_splits_deeper_half() {
        let roi = ball(9.0, 1.0);
        let depth = roi_depth(&roi, [1.0; 3]).expect("non-empty ROI");
        let settings = GeometricSettings {
            rule: GeometricRule::EqualVolume,
            ..GeometricSettings::default()
        };
        let result =
            geometric_split(&roi, &depth, &settings.validate().expect("valid")).expect("same ROI");

        // Every core voxel is at least as deep as every rim voxel.
        let deepest_rim = depth
            .voxels
            .iter()
            .zip(&depth.depth_mm)
            .filter(|(v, _)| result.rim[**v])
            .map(|(_, &d)| d)
            .fold(0.0, f64::max);
        let shallowest_core = depth
            .voxels
            .iter()
            .zip(&depth.depth_mm)
            .filter(|(v, _)| result.core[**v])
            .map(|(_, &d)| d)
            .fold(f64::INFINITY, f64::min);
        assert!(shallowest_core >= deepest_rim);

        // The voxels at the median depth decide the imbalance: the core is
        // within that many voxels of half the ROI.
        let at_median = depth
            .depth_mm
            .iter()
            .filter(|&&d| d == result.threshold_mm)
            .count();
        let half = roi.voxel_count as f64 / 2.0;
        assert!(
            (result.core_voxels as f64 - half).abs() <= at_median as f64,
            "core {} of {} voxels, {at_median} at the median",
            result.core_voxels,
            roi.voxel_count
        );
    }

    #[test]
    fn geometric_small_lesion_falls_back_in_order() {
        let settings = |min_core_voxels| GeometricSettings {
            min_core_voxels,
            ..GeometricSettings::default()
        };
        // Radius 5 mm: the 3 mm core has a few dozen voxels.
        let roi = ball(5.0, 1.0);
        let absolute = split(&roi, 1.0, settings(1));
        assert_eq!(absolute.rule, GeometricRule::Absolute);
        let absolute_core = absolute.core_voxels;

        // Asking for one more voxel than the absolute core moves on.
        let relative = split(&roi, 1.0, settings(absolute_core + 1));
        let relative_core = split(
            &roi,
            1.0,
            GeometricSettings {
                rule: GeometricRule::Relative,
                min_core_voxels: 1,
                ..GeometricSettings::default()
            },
        )
        .core_voxels;
        let expected = if relative_core > absolute_core {
            GeometricRule::Relative
        } else {
            GeometricRule::EqualVolume
        };
        assert_eq!(relative.rule, expected);
        assert_eq!(relative.requested_rule, GeometricRule::Absolute);
        assert!(!relative.core_below_minimum);

        // A minimum above half the ROI leaves the equal-volume split,
        // flagged.
        let flagged = split(&roi, 1.0, settings(roi.voxel_count));
        assert_eq!(flagged.rule, GeometricRule::EqualVolume);
        assert!(flagged.core_below_minimum);
    }

    #[test]
    fn geometric_depth_of_other_roi_is_rejected() {
        let roi = ball(3.0, 1.0);
        let other = ball(4.0, 1.0);
        let depth = roi_depth(&other, [1.0; 3]).expect("non-empty ROI");
        let settings = GeometricSettings::default().validate().expect("valid");
        assert!(matches!(
            geometric_split(&roi, &depth, &settings),
            Err(GeometricError::DepthMismatch { .. })
        ));
    }

    #[test]
    fn geometric_settings_invalid_values_name_field() {
        let cases = [
            (
                GeometricSettings {
                    threshold_mm: 0.5,
                    ..GeometricSettings::default()
                },
                "threshold_mm",
            ),
            (
                GeometricSettings {
                    threshold_mm: f64::NAN,
                    ..GeometricSettings::default()
                },
                "threshold_mm",
            ),
            (
                GeometricSettings {
                    relative_threshold: 0.8,
                    ..GeometricSettings::default()
                },
                "relative_threshold",
            ),
            (
                GeometricSettings {
                    min_core_voxels: 0,
                    ..GeometricSettings::default()
                },
                "min_core_voxels",
            ),
        ];
        for (settings, field) in cases {
            let error = settings.validate().unwrap_err();
            assert!(error.to_string().contains(field), "{field}: {error}");
        }
        let parsed: GeometricSettings =
            toml::from_str("rule = \"geom_equal_volume\"").expect("valid TOML");
        assert_eq!(parsed.rule, GeometricRule::EqualVolume);
        assert_eq!(parsed.threshold_mm, 3.0);
    }
}
