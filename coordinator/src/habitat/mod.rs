//! The coordinator's side of the habitat method: the population habitat
//! model fitted on the training patients' supervoxel descriptors, its
//! canonical names, and the two rounds that drive the workers.
//!
//! 1. Supervoxel round ([`round`]): every center computes local entropy
//!    maps and patient-level supervoxels for its patients and returns the
//!    descriptors of its training patients only.
//! 2. Population model ([`population`]): per habitat space, the pooled
//!    training descriptors are z-scored and clustered, and K is chosen.
//! 3. Names ([`naming`]): habitats are ordered by depth (or entropy) and
//!    named "inner", "mid_k", "marginal".
//! 4. Apply round ([`round`]): every center assigns its patients'
//!    supervoxels to the frozen model, builds the region masks and returns
//!    per-region sums. Extraction rounds then name this round and the
//!    regions.
//!
//! Files: `habitats.json` (the model per space, each candidate K's
//! criterion value, names, D_h, mean entropy, voxel fractions summed over
//! centers, exclusions) and `habitat_regions.csv` (per sequence and region,
//! sums over centers), both written by [`report`].

pub mod config;
pub mod naming;
pub mod population;
pub mod report;
pub mod round;

use radstudy_proto::v1::HabitatModel;
use serde::Serialize;

pub use config::HabitatConfig;
use naming::{Naming, name_habitats};
use population::{CandidateScore, PopulationFit};

/// The frozen habitat model of one space, with what the report needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceModel {
    /// A sequence, or "joint".
    pub space: String,
    /// Descriptor column names, as the workers report them.
    pub columns: Vec<String>,
    /// z-score means of the descriptor columns.
    pub mean: Vec<f64>,
    /// z-score scales (population standard deviation; 1 for a constant
    /// column).
    pub scale: Vec<f64>,
    /// Centroids in the standardised space, one row per habitat in name
    /// order ("inner" first).
    pub centroids: Vec<Vec<f64>>,
    /// Habitat names, in centroid order.
    pub names: Vec<String>,
    /// Clustering method, "kmeans" or "gmm".
    pub method: String,
    /// For "gmm", the mixture's weights and covariances in name order; the
    /// component means are `centroids`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixture: Option<MixtureModel>,
    /// Criterion that chose K, or "fixed".
    pub criterion: String,
    /// The chosen K.
    pub k: usize,
    /// Each candidate's criterion value.
    pub candidates: Vec<CandidateScore>,
    /// Training patients and supervoxels pooled.
    pub training_patients: usize,
    /// See `training_patients`.
    pub training_supervoxels: usize,
    /// Habitats in name order, with D_h, mean entropy and voxel fraction
    /// over the training supervoxels.
    pub naming: Naming,
}

impl SpaceModel {
    /// Builds the frozen model from a fit and its naming, with centroids
    /// reordered into name order.
    pub fn new(fit: &PopulationFit, columns: Vec<String>, config: &HabitatConfig) -> Self {
        let naming = name_habitats(fit, config.order_by, config.naming_weighting);
        let centroids = naming
            .habitats
            .iter()
            .map(|habitat| fit.centroids.row(habitat.cluster).to_vec())
            .collect();
        let mixture = fit.mixture.as_ref().map(|mixture| MixtureModel {
            weights: naming
                .habitats
                .iter()
                .map(|habitat| mixture.weights[habitat.cluster])
                .collect(),
            covariances: naming
                .habitats
                .iter()
                .map(|habitat| {
                    mixture
                        .covariances
                        .index_axis(ndarray::Axis(0), habitat.cluster)
                        .rows()
                        .into_iter()
                        .map(|row| row.to_vec())
                        .collect()
                })
                .collect(),
        });
        let criterion = match fit.criterion {
            None => "fixed".to_string(),
            Some(criterion) => serde_json::to_value(criterion)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        SpaceModel {
            space: fit.space.clone(),
            columns,
            mean: fit.mean.clone(),
            scale: fit.scale.clone(),
            centroids,
            names: naming.habitats.iter().map(|h| h.name.clone()).collect(),
            mixture,
            method: match config.method {
                config::ClusterMethod::Kmeans => "kmeans".into(),
                config::ClusterMethod::Gmm => "gmm".into(),
            },
            criterion,
            k: fit.k,
            candidates: fit.candidates.clone(),
            training_patients: fit
                .sets
                .iter()
                .filter(|s| s.descriptors.nrows() > 0)
                .count(),
            training_supervoxels: fit.assignments.len(),
            naming,
        }
    }

    /// Returns the contract's form of the model.
    pub fn to_proto(&self) -> HabitatModel {
        HabitatModel {
            space: self.space.clone(),
            columns: self.columns.clone(),
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            centroids: self.centroids.iter().flatten().copied().collect(),
            names: self.names.clone(),
            covariance_type: match self.mixture {
                Some(_) => FULL_COVARIANCE.into(),
                None => String::new(),
            },
            weights: self
                .mixture
                .as_ref()
                .map(|mixture| mixture.weights.clone())
                .unwrap_or_default(),
            covariances: self
                .mixture
                .as_ref()
                .map(|mixture| {
                    mixture
                        .covariances
                        .iter()
                        .flatten()
                        .flatten()
                        .copied()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// `HabitatModel.covariance_type` of the mixtures the coordinator fits.
pub const FULL_COVARIANCE: &str = "full";

/// The parameters of a Gaussian mixture beyond its means, in habitat
/// name order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixtureModel {
    /// Mixing weight of each component.
    pub weights: Vec<f64>,
    /// Full covariance of each component in the standardised space, one
    /// (column × column) matrix per habitat.
    pub covariances: Vec<Vec<Vec<f64>>>,
}
