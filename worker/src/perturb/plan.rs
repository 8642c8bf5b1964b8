//! Settings of the perturbation design, validated once.

use serde::{Deserialize, Serialize};

/// Fewest perturbed copies per patient: ICC(1,1) needs at least two
/// measurements of each subject.
pub const MIN_REPEATS: u32 = 2;

/// Largest accepted `max_angle_deg`. Angles are drawn from
/// [−max, +max], which covers every orientation once at 180°.
pub const MAX_ANGLE_LIMIT_DEG: f64 = 180.0;

/// Settings of the perturbation design, as written in a configuration.
/// Turn them into a [`ValidPlan`] with [`PerturbationPlan::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerturbationPlan {
    /// Perturbed copies per patient (P). Default 10.
    pub repeats: u32,
    /// Rotation angles are drawn uniformly from [−max, +max], in degrees.
    /// Default 10.
    pub max_angle_deg: f64,
    /// Grow/shrink distances are drawn uniformly from [−max, +max], in mm.
    /// Default 1.
    ///
    /// NOTE: a binary mask changes only when |r| reaches the smallest voxel
    /// spacing. On a grid with 0.98 mm in-plane spacing, the default range
    /// alters the mask in only about 2 % of the copies (|r| ≥ 0.98 mm).
    pub max_volume_change_mm: f64,
    /// Whether to add Gaussian noise at the image's estimated noise level.
    /// Default true.
    pub noise: bool,
}

impl Default for PerturbationPlan {
    fn default() -> Self {
        PerturbationPlan {
            repeats: 10,
            max_angle_deg: 10.0,
            max_volume_change_mm: 1.0,
            noise: true,
        }
    }
}

/// A setting of a [`PerturbationPlan`] out of range, one variant per setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Too few repeats for an ICC.
    #[error(
        "repeats = {repeats} is too small; ICC(1,1) needs at least {MIN_REPEATS} perturbed copies per patient"
    )]
    TooFewRepeats {
        /// The configured value.
        repeats: u32,
    },
    /// The maximum angle is outside [0, 180] or not finite.
    #[error(
        "max_angle_deg = {value} is invalid; expected a finite angle from 0 to {MAX_ANGLE_LIMIT_DEG} degrees"
    )]
    InvalidMaxAngle {
        /// The configured value.
        value: f64,
    },
    /// The maximum volume change is negative or not finite.
    #[error("max_volume_change_mm = {value} is invalid; expected a finite distance ≥ 0 mm")]
    InvalidMaxVolumeChange {
        /// The configured value.
        value: f64,
    },
}

impl PerturbationPlan {
    /// Checks every setting and returns the plan that the kernels accept.
    pub fn validate(&self) -> Result<ValidPlan, PlanError> {
        if self.repeats < MIN_REPEATS {
            return Err(PlanError::TooFewRepeats {
                repeats: self.repeats,
            });
        }
        let angle = self.max_angle_deg;
        if !(angle.is_finite() && (0.0..=MAX_ANGLE_LIMIT_DEG).contains(&angle)) {
            return Err(PlanError::InvalidMaxAngle { value: angle });
        }
        let change = self.max_volume_change_mm;
        if !(change.is_finite() && change >= 0.0) {
            return Err(PlanError::InvalidMaxVolumeChange { value: change });
        }
        Ok(ValidPlan { plan: self.clone() })
    }
}

/// A [`PerturbationPlan`] whose settings have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidPlan {
    plan: PerturbationPlan,
}

impl ValidPlan {
    /// Returns the number of perturbed copies per patient, at least
    /// [`MIN_REPEATS`].
    pub fn repeats(&self) -> u32 {
        self.plan.repeats
    }

    /// Returns the largest rotation angle in degrees, in [0, 180].
    pub fn max_angle_deg(&self) -> f64 {
        self.plan.max_angle_deg
    }

    /// Returns the largest grow/shrink distance in mm, finite and ≥ 0.
    pub fn max_volume_change_mm(&self) -> f64 {
        self.plan.max_volume_change_mm
    }

    /// Returns whether noise is added.
    pub fn noise(&self) -> bool {
        self.plan.noise
    }

    /// Returns the settings as configured.
    pub fn settings(&self) -> &PerturbationPlan {
        &self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_defaults_match_design() {
        let plan = PerturbationPlan::default();
        assert_eq!(plan.repeats, 10);
        assert_eq!(plan.max_angle_deg, 10.0);
        assert_eq!(plan.max_volume_change_mm, 1.0);
        assert!(plan.noise);
        assert!(plan.validate().is_ok());
    }

    #[test]
    fn plan_missing_fields_take_defaults() {
        let plan: PerturbationPlan = toml::from_str("repeats = 4").expect("valid TOML");
        assert_eq!(
            plan,
            PerturbationPlan {
                repeats: 4,
                ..PerturbationPlan::default()
            }
        );
        let error = toml::from_str::<PerturbationPlan>("max_angle = 5.0").unwrap_err();
        assert!(error.to_string().contains("max_angle"), "{error}");
    }

    #[test]
    fn plan_invalid_settings_are_rejected() {
        let cases = [
            (
                PerturbationPlan {
                    repeats: 1,
                    ..PerturbationPlan::default()
                },
                PlanError::TooFewRepeats { repeats: 1 },
            ),
            (
                PerturbationPlan {
                    max_angle_deg: 181.0,
                    ..PerturbationPlan::default()
                },
                PlanError::InvalidMaxAngle { value: 181.0 },
            ),
            (
                PerturbationPlan {
                    max_angle_deg: -1.0,
                    ..PerturbationPlan::default()
                },
                PlanError::InvalidMaxAngle { value: -1.0 },
            ),
            (
                PerturbationPlan {
                    max_volume_change_mm: -0.5,
                    ..PerturbationPlan::default()
                },
                PlanError::InvalidMaxVolumeChange { value: -0.5 },
            ),
        ];
        for (plan, expected) in cases {
            assert_eq!(plan.validate(), Err(expected));
        }
        let not_a_number = PerturbationPlan {
            max_volume_change_mm: f64::NAN,
            ..PerturbationPlan::default()
        };
        assert!(matches!(
            not_a_number.validate(),
            Err(PlanError::InvalidMaxVolumeChange { .. })
        ));
    }

    #[test]
    fn plan_error_names_setting_and_constraint() {
        let error = PerturbationPlan {
            max_angle_deg: 200.0,
            ..PerturbationPlan::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "max_angle_deg = 200 is invalid; expected a finite angle from 0 to 180 degrees"
        );
    }
}
