//! Assignment of supervoxels to a frozen population habitat model.
//!
//! Each supervoxel descriptor x is standardised with the model's training
//! mean and scale, z_c = (x_c − μ_c) / σ_c, and goes to the centroid at the
//! smallest Euclidean distance in the standardised space, ties to the lower
//! centroid index. Every voxel inherits its supervoxel's habitat. Columns
//! whose descriptor value is NaN (the other sequences of a joint patient
//! clustered on the reference alone) are left out of the distance, so such
//! a patient is assigned on the columns it has.

use ndarray::{Array2, ArrayView2};
use radstudy_proto::v1::HabitatModel;

/// Region names that a habitat may not take, because the worker builds
/// those regions itself.
pub const RESERVED_REGION_NAMES: [&str; 3] = ["whole", "core", "rim"];

/// A checked population model of one habitat space.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidHabitatModel {
    /// A sequence, or `joint`.
    pub space: String,
    /// Descriptor columns.
    pub columns: Vec<String>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Centroids in the standardised space, one row per habitat.
    centroids: Array2<f64>,
    /// Region name of each habitat.
    pub names: Vec<String>,
}

/// An invalid `HabitatModel`; `field` is the request field in dotted form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct HabitatModelError {
    /// The field, for example `models[0].scale`.
    pub field: String,
    /// What is wrong with its value.
    pub reason: String,
}

impl ValidHabitatModel {
    /// Checks the model at position `index` of the request against the
    /// expected descriptor columns.
    pub fn from_proto(
        index: usize,
        model: &HabitatModel,
        expected_columns: &[String],
    ) -> Result<Self, HabitatModelError> {
        let error = |name: &str, reason: String| HabitatModelError {
            field: format!("models[{index}].{name}"),
            reason,
        };
        if model.columns != expected_columns {
            return Err(error(
                "columns",
                format!(
                    "{:?} differ from the supervoxel round's columns {expected_columns:?}",
                    model.columns
                ),
            ));
        }
        let dimensions = expected_columns.len();
        for (name, values) in [("mean", &model.mean), ("scale", &model.scale)] {
            if values.len() != dimensions {
                return Err(error(
                    name,
                    format!(
                        "has {} values; expected one per column ({dimensions})",
                        values.len()
                    ),
                ));
            }
        }
        if let Some(bad) = model.mean.iter().find(|v| !v.is_finite()) {
            return Err(error(
                "mean",
                format!("contains {bad}; expected finite values"),
            ));
        }
        if let Some(bad) = model.scale.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(error(
                "scale",
                format!("contains {bad}; expected finite values > 0"),
            ));
        }
        let habitats = model.names.len();
        if habitats == 0 {
            return Err(error("names", "empty; name at least one habitat".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for name in &model.names {
            if name.is_empty() || RESERVED_REGION_NAMES.contains(&name.as_str()) {
                return Err(error(
                    "names",
                    format!(
                        "{name:?} is not a valid habitat name; use a non-empty name other than {RESERVED_REGION_NAMES:?}"
                    ),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(error("names", format!("{name:?} appears twice")));
            }
        }
        if model.centroids.len() != habitats * dimensions {
            return Err(error(
                "centroids",
                format!(
                    "has {} values; expected {habitats} habitats × {dimensions} columns = {}",
                    model.centroids.len(),
                    habitats * dimensions
                ),
            ));
        }
        if let Some(bad) = model.centroids.iter().find(|v| !v.is_finite()) {
            return Err(error(
                "centroids",
                format!("contains {bad}; expected finite values"),
            ));
        }
        let centroids = Array2::from_shape_vec((habitats, dimensions), model.centroids.clone())
            .map_err(|shape| error("centroids", shape.to_string()))?;
        Ok(ValidHabitatModel {
            space: model.space.clone(),
            columns: model.columns.clone(),
            mean: model.mean.clone(),
            scale: model.scale.clone(),
            centroids,
            names: model.names.clone(),
        })
    }

    /// Returns the habitat index of each descriptor row: the nearest
    /// centroid after standardisation, ties to the lower index.
    pub fn assign(&self, descriptors: ArrayView2<'_, f64>) -> Vec<usize> {
        descriptors
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = (0, f64::INFINITY);
                for (habitat, centroid) in self.centroids.rows().into_iter().enumerate() {
                    let mut distance = 0.0;
                    for (column, &value) in row.iter().enumerate() {
                        if value.is_nan() {
                            continue;
                        }
                        let z = (value - self.mean[column]) / self.scale[column];
                        distance += (z - centroid[column]).powi(2);
                    }
                    if distance < best.1 {
                        best = (habitat, distance);
                    }
                }
                best.0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn columns() -> Vec<String> {
        vec!["intensity".into(), "entropy".into()]
    }

    fn model() -> HabitatModel {
        HabitatModel {
            space: "PET".into(),
            columns: columns(),
            mean: vec![0.5, 0.5],
            scale: vec![0.25, 0.5],
            // Centroid 0 at z = (-1, 0), centroid 1 at z = (1, 0).
            centroids: vec![-1.0, 0.0, 1.0, 0.0],
            names: vec!["inner".into(), "marginal".into()],
        }
    }

    #[test]
    fn assign_nearest_centroid_after_standardising() {
        let valid = ValidHabitatModel::from_proto(0, &model(), &columns()).expect("valid");
        // x = 0.3 gives z = -0.8 (habitat 0); x = 0.7 gives z = 0.8
        // (habitat 1); x = 0.5 is equidistant, so the lower index wins.
        let descriptors = array![[0.3, 0.9], [0.7, 0.1], [0.5, 0.5]];
        assert_eq!(valid.assign(descriptors.view()), vec![0, 1, 0]);
    }

    #[test]
    fn assign_skips_nan_columns() {
        let valid = ValidHabitatModel::from_proto(0, &model(), &columns()).expect("valid");
        let descriptors = array![[0.8, f64::NAN]];
        assert_eq!(valid.assign(descriptors.view()), vec![1]);
    }

    #[test]
    fn habitat_model_errors_name_field() {
        let cases: Vec<(HabitatModel, &str)> = vec![
            (
                HabitatModel {
                    scale: vec![0.25, 0.0],
                    ..model()
                },
                "models[0].scale",
            ),
            (
                HabitatModel {
                    mean: vec![0.5],
                    ..model()
                },
                "models[0].mean",
            ),
            (
                HabitatModel {
                    centroids: vec![0.0; 3],
                    ..model()
                },
                "models[0].centroids",
            ),
            (
                HabitatModel {
                    centroids: vec![f64::NAN, 0.0, 1.0, 0.0],
                    ..model()
                },
                "models[0].centroids",
            ),
            (
                HabitatModel {
                    names: vec!["inner".into(), "inner".into()],
                    ..model()
                },
                "models[0].names",
            ),
            (
                HabitatModel {
                    names: vec!["inner".into(), "whole".into()],
                    ..model()
                },
                "models[0].names",
            ),
            (
                HabitatModel {
                    columns: vec!["entropy".into(), "intensity".into()],
                    ..model()
                },
                "models[0].columns",
            ),
        ];
        for (case, field) in cases {
            let error = ValidHabitatModel::from_proto(0, &case, &columns()).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }
}
