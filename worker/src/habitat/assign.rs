//! Assignment of supervoxels to a frozen population habitat model.
//!
//! Each supervoxel descriptor x is standardised with the model's training
//! mean and scale, z_c = (x_c − μ_c) / σ_c. Every voxel inherits its
//! supervoxel's habitat. The habitat of z is:
//!
//! - k-means model (empty `covariance_type`): the centroid at the smallest
//!   Euclidean distance in the standardised space, ties to the lower
//!   centroid index.
//! - Gaussian mixture (`covariance_type` "full" or "diag"): the component
//!   of maximum posterior probability, argmax_k ln π_k + ln N(z | μ_k, Σ_k),
//!   ties to the lower index, computed by
//!   [`radstudy_cluster::gmm::predict`], the function behind the
//!   coordinator's training labels. A "diag" model becomes full matrices
//!   with zero off-diagonal entries.
//!
//! Columns whose descriptor value is NaN (the other sequences of a joint
//! patient clustered on the reference alone) are left out: of the distance
//! for k-means, and by marginalising the mixture onto the observed columns
//! (the sub-vector of each mean and the sub-matrix of each covariance),
//! so such a patient is assigned on the columns it has.

use ndarray::{Array1, Array2, Array3, ArrayView2, Axis};
use radstudy_cluster::gmm::{GaussianMixture, GmmError, predict};
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
    /// The mixture whose means are `centroids`, for a mixture model.
    mixture: Option<GaussianMixture>,
}

/// `HabitatModel.covariance_type` of a mixture with full covariances.
pub const FULL_COVARIANCE: &str = "full";
/// `HabitatModel.covariance_type` of a mixture with diagonal covariances.
pub const DIAGONAL_COVARIANCE: &str = "diag";

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
        let mixture =
            mixture_of(model, &centroids).map_err(|(name, reason)| error(name, reason))?;
        Ok(ValidHabitatModel {
            space: model.space.clone(),
            columns: model.columns.clone(),
            mean: model.mean.clone(),
            scale: model.scale.clone(),
            centroids,
            names: model.names.clone(),
            mixture,
        })
    }

    /// Returns the habitat index of each descriptor row after
    /// standardisation: the nearest centroid for a k-means model, the
    /// component of maximum posterior for a mixture, ties to the lower
    /// index (module documentation).
    ///
    /// # Errors
    ///
    /// Only for a mixture whose covariance, restricted to a row's observed
    /// columns, is not positive definite in floating point. The checks of
    /// [`ValidHabitatModel::from_proto`] make that a rounding corner case.
    pub fn assign(&self, descriptors: ArrayView2<'_, f64>) -> Result<Vec<usize>, GmmError> {
        match &self.mixture {
            None => Ok(self.assign_nearest(descriptors)),
            Some(mixture) => self.assign_posterior(descriptors, mixture),
        }
    }

    fn assign_posterior(
        &self,
        descriptors: ArrayView2<'_, f64>,
        mixture: &GaussianMixture,
    ) -> Result<Vec<usize>, GmmError> {
        let standardised = Array2::from_shape_fn(descriptors.dim(), |(row, column)| {
            (descriptors[[row, column]] - self.mean[column]) / self.scale[column]
        });
        let complete: Vec<usize> = (0..standardised.nrows())
            .filter(|&row| standardised.row(row).iter().all(|v| !v.is_nan()))
            .collect();
        let mut labels = vec![0; standardised.nrows()];

        // Complete rows in one call, as the coordinator labels its rows.
        let rows = standardised.select(Axis(0), &complete);
        for (&row, label) in complete.iter().zip(predict(rows.view(), mixture)?) {
            labels[row] = label;
        }

        // Rows with NaN columns, each under the mixture marginalised onto
        // its observed columns.
        for (values, label) in standardised.rows().into_iter().zip(labels.iter_mut()) {
            let observed: Vec<usize> = (0..values.len())
                .filter(|&column| !values[column].is_nan())
                .collect();
            if observed.len() == values.len() {
                continue;
            }
            *label = if observed.is_empty() {
                // No column left: the posterior is the prior.
                heaviest(&mixture.weights)
            } else {
                let marginal = marginal_mixture(mixture, &observed);
                let point = values.select(Axis(0), &observed).insert_axis(Axis(0));
                predict(point.view(), &marginal)?[0]
            };
        }
        Ok(labels)
    }

    fn assign_nearest(&self, descriptors: ArrayView2<'_, f64>) -> Vec<usize> {
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

/// Builds the mixture of a model with a non-empty `covariance_type`, or
/// `None` for a k-means model. Errors name the field and the problem.
fn mixture_of(
    model: &HabitatModel,
    centroids: &Array2<f64>,
) -> Result<Option<GaussianMixture>, (&'static str, String)> {
    let (habitats, dimensions) = centroids.dim();
    let diagonal = match model.covariance_type.as_str() {
        "" => {
            if !model.weights.is_empty() || !model.covariances.is_empty() {
                return Err((
                    "covariance_type",
                    format!(
                        "is empty but weights or covariances are set; send {FULL_COVARIANCE:?} or {DIAGONAL_COVARIANCE:?} for a mixture"
                    ),
                ));
            }
            return Ok(None);
        }
        FULL_COVARIANCE => false,
        DIAGONAL_COVARIANCE => true,
        other => {
            return Err((
                "covariance_type",
                format!(
                    "{other:?} is not supported; expected {FULL_COVARIANCE:?}, {DIAGONAL_COVARIANCE:?} or empty for k-means"
                ),
            ));
        }
    };

    if model.weights.len() != habitats {
        return Err((
            "weights",
            format!(
                "has {} values; expected one per habitat ({habitats})",
                model.weights.len()
            ),
        ));
    }
    if let Some(bad) = model.weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err((
            "weights",
            format!("contains {bad}; expected finite values > 0"),
        ));
    }
    let per_habitat = if diagonal {
        dimensions
    } else {
        dimensions * dimensions
    };
    if model.covariances.len() != habitats * per_habitat {
        return Err((
            "covariances",
            format!(
                "has {} values; expected {habitats} habitats × {per_habitat} for {:?}",
                model.covariances.len(),
                model.covariance_type
            ),
        ));
    }
    if let Some(bad) = model.covariances.iter().find(|v| !v.is_finite()) {
        return Err((
            "covariances",
            format!("contains {bad}; expected finite values"),
        ));
    }

    let covariances = Array3::from_shape_fn((habitats, dimensions, dimensions), |(k, i, j)| {
        if diagonal {
            if i == j {
                model.covariances[k * dimensions + i]
            } else {
                0.0
            }
        } else {
            model.covariances[k * per_habitat + i * dimensions + j]
        }
    });
    for habitat in 0..habitats {
        let matrix = covariances.index_axis(Axis(0), habitat);
        for i in 0..dimensions {
            for j in 0..i {
                let (a, b) = (matrix[[i, j]], matrix[[j, i]]);
                if (a - b).abs() > SYMMETRY_TOLERANCE * a.abs().max(b.abs()) {
                    return Err((
                        "covariances",
                        format!(
                            "matrix of habitat {habitat} is not symmetric: entry ({i}, {j}) is {a}, entry ({j}, {i}) is {b}"
                        ),
                    ));
                }
            }
        }
    }
    let mixture = GaussianMixture {
        weights: Array1::from(model.weights.clone()),
        means: centroids.clone(),
        covariances,
    };
    // A mixture whose density cannot be evaluated fails here, naming the
    // habitat, instead of at the first patient.
    let probe = Array2::zeros((1, dimensions));
    if let Err(GmmError::NotPositiveDefinite { component }) = predict(probe.view(), &mixture) {
        return Err((
            "covariances",
            format!("matrix of habitat {component} is not positive definite"),
        ));
    }
    Ok(Some(mixture))
}

/// Relative difference allowed between a covariance entry and its mirror
/// entry. The coordinator's M-step multiplies the two halves in another
/// order, so they can differ in the last bits. The density reads the lower
/// triangle only, as the coordinator's does.
const SYMMETRY_TOLERANCE: f64 = 1e-9;

/// Returns the mixture of the marginal distribution of the `observed`
/// columns: the same weights, and each component's mean and covariance
/// restricted to those columns.
fn marginal_mixture(mixture: &GaussianMixture, observed: &[usize]) -> GaussianMixture {
    let components = mixture.weights.len();
    let size = observed.len();
    GaussianMixture {
        weights: mixture.weights.clone(),
        means: mixture.means.select(Axis(1), observed),
        covariances: Array3::from_shape_fn((components, size, size), |(k, i, j)| {
            mixture.covariances[[k, observed[i], observed[j]]]
        }),
    }
}

/// Returns the index of the largest weight, ties to the lower index.
fn heaviest(weights: &Array1<f64>) -> usize {
    let mut best = 0;
    for (component, &weight) in weights.iter().enumerate() {
        if weight > weights[best] {
            best = component;
        }
    }
    best
}

#[cfg(test)]
mod tests;
