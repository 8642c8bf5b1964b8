//! The aggregate calls of contract 1.1: reproducibility sums for the ICC
//! filter, logistic Newton-step sums for the federated fit, and scores-only
//! validation. Each reply is checked against the contract and turned into
//! the coordinator's own statistics types, so that a malformed reply fails
//! here with the center's name instead of deep inside a computation.

use ndarray::{Array1, Array2};
use radstudy_proto::v1::{
    LinearModel, LogisticStepRequest, ReproducibilitySumsRequest, ScoreModelRequest,
};

use super::{CenterClient, CenterError};
use crate::stats::aggregates::{RocPoint, ScoreAggregates};
use crate::stats::calibration::{CalibrationBins, CalibrationSums};
use crate::stats::icc::IccSums;
use crate::stats::irls::LogisticSums;
use crate::stats::threshold::Confusion;

/// One feature's ICC sums from one center.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureIcc {
    /// Sequence of the feature.
    pub sequence: String,
    /// Region of the feature.
    pub region: String,
    /// PyRadiomics feature name.
    pub feature: String,
    /// The center's sums.
    pub sums: IccSums,
}

/// A center's reply to `FetchReproducibilitySums`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReproducibilityReply {
    /// Perturbed copies per patient.
    pub repeats: usize,
    /// Sums per feature.
    pub features: Vec<FeatureIcc>,
    /// Patient-sequence pairs the worker left out because a copy failed.
    pub n_excluded: usize,
}

/// A center's reply to `ScoreModel`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReply {
    /// The aggregates, ready to merge with other centers'.
    pub aggregates: ScoreAggregates,
    /// Requested patients that lacked a feature of the model.
    pub n_skipped: usize,
}

impl CenterClient {
    fn protocol(&self, call: &'static str, message: String) -> CenterError {
        CenterError::Protocol {
            center: self.center.clone(),
            call,
            message,
        }
    }

    /// Fetches the ICC sums of a finished perturbation round.
    pub async fn fetch_reproducibility_sums(
        &mut self,
        study_id: &str,
        round_id: &str,
    ) -> Result<ReproducibilityReply, CenterError> {
        const CALL: &str = "FetchReproducibilitySums";
        let request = ReproducibilitySumsRequest {
            study_id: study_id.to_string(),
            round_id: round_id.to_string(),
        };

        let reply = self
            .unary_retried(CALL, self.call_timeout, request, |mut client, request| async move {
 client.fetch_reproducibility_sums(request).await
 })
            .await?;

        let k = reply.repeats as usize;
        if k < 2 {
            return Err(self.protocol(CALL, format!("{k} copies per patient; at least 2 needed")));
        }
        let mut features = Vec::with_capacity(reply.sums.len());
        for entry in reply.sums {
            let name = format!("{}_{}_{}", entry.sequence, entry.region, entry.feature);
            if entry.copy_sums.len() != k {
                return Err(self.protocol(
                    CALL,
                    format!(
                        "{name} has {} copy sums for {k} copies",
                        entry.copy_sums.len()
                    ),
                ));
            }
            let scalars = [
                entry.shift,
                entry.sum,
                entry.sum_squares,
                entry.sum_squared_subject_totals,
            ];
            if scalars
                .iter()
                .chain(&entry.copy_sums)
                .any(|v| !v.is_finite())
            {
                return Err(self.protocol(CALL, format!("{name} has a sum that is not finite")));
            }
            features.push(FeatureIcc {
                sums: IccSums {
                    n: entry.n_subjects as usize,
                    k,
                    shift: entry.shift,
                    sum: entry.sum,
                    sum_squares: entry.sum_squares,
                    sum_squared_subject_totals: entry.sum_squared_subject_totals,
                    measurement_sums: entry.copy_sums,
                },
                sequence: entry.sequence,
                region: entry.region,
                feature: entry.feature,
            });
        }
        Ok(ReproducibilityReply {
            repeats: k,
            features,
            n_excluded: reply.n_excluded as usize,
        })
    }

    /// Asks for the Newton-step sums of `model` over `pseudonyms` (every
    /// patient of the round when empty).
    pub async fn logistic_step(
        &mut self,
        study_id: &str,
        round_id: &str,
        model: LinearModel,
        pseudonyms: Vec<String>,
    ) -> Result<LogisticSums, CenterError> {
        const CALL: &str = "LogisticStep";
        let d = model.terms.len() + 1;
        let request = LogisticStepRequest {
            study_id: study_id.to_string(),
            round_id: round_id.to_string(),
            model: Some(model),
            pseudonyms,
        };

        let reply = self
            .unary_retried(
                CALL,
                self.call_timeout,
                request,
                |mut client, request| async move { client.logistic_step(request).await },
            )
            .await?;

        if reply.gradient.len() != d || reply.hessian.len() != d * d {
            return Err(self.protocol(
                CALL,
                format!(
                    "{} gradient and {} Hessian values for {d} coefficients",
                    reply.gradient.len(),
                    reply.hessian.len()
                ),
            ));
        }
        let values = reply.gradient.iter().chain(&reply.hessian);
        if values.chain([&reply.deviance]).any(|v| !v.is_finite()) {
            return Err(self.protocol(CALL, "a sum is not finite".into()));
        }
        if reply.n_positive > reply.n {
            return Err(self.protocol(
                CALL,
                format!("{} positives among {} patients", reply.n_positive, reply.n),
            ));
        }
        let hessian = Array2::from_shape_vec((d, d), reply.hessian)
            .map_err(|error| self.protocol(CALL, error.to_string()))?;
        Ok(LogisticSums {
            gradient: Array1::from(reply.gradient),
            hessian,
            deviance: reply.deviance,
            n: reply.n as usize,
            n_positive: reply.n_positive as usize,
            // NOTE: the contract does not carry the count of probabilities
            // at 0 or 1; it only feeds the separation flag of unpenalised
            // fits, and the federated fit is L2-penalised.
            n_at_bound: 0,
        })
    }

    /// Asks the worker to score its patients with a frozen model and return
    /// only aggregates.
    pub async fn score_model(
        &mut self,
        study_id: &str,
        round_id: &str,
        model_name: &str,
        model: LinearModel,
        cutoff: f64,
        edges: &[f64],
    ) -> Result<ScoreReply, CenterError> {
        const CALL: &str = "ScoreModel";
        let request = ScoreModelRequest {
            study_id: study_id.to_string(),
            round_id: round_id.to_string(),
            model_name: model_name.to_string(),
            model: Some(model),
            cutoff,
            calibration_edges: edges.to_vec(),
            pseudonyms: Vec::new(),
        };

        let reply = self
            .unary_retried(
                CALL,
                self.call_timeout,
                request,
                |mut client, request| async move { client.score_model(request).await },
            )
            .await?;

        let bins = edges.len().saturating_sub(1);
        if reply.bin_counts.len() != bins
            || reply.bin_positives.len() != bins
            || reply.bin_sum_predicted.len() != bins
        {
            return Err(self.protocol(CALL, format!("calibration bins do not match {bins} bins")));
        }
        let n = reply.n as usize;
        let n_positive = reply.n_positive as usize;
        let confusion = Confusion {
            tp: reply.tp as usize,
            fp: reply.fp as usize,
            tn: reply.tn as usize,
            fn_: reply.r#fn as usize,
        };
        if confusion.tp + confusion.fn_ != n_positive
            || confusion.tp + confusion.fp + confusion.tn + confusion.fn_ != n
        {
            return Err(self.protocol(
                CALL,
                format!("confusion counts {confusion:?} do not add up to {n} patients"),
            ));
        }
        let roc_points: Vec<RocPoint> = reply
            .roc_points
            .iter()
            .map(|point| RocPoint {
                threshold: point.threshold,
                tp: point.tp as usize,
                fp: point.fp as usize,
            })
            .collect();
        if let Some(last) = roc_points.last()
            && (last.tp != n_positive || last.tp + last.fp != n)
        {
            return Err(self.protocol(
                CALL,
                format!(
                    "the last ROC point counts {} patients of {n}",
                    last.tp + last.fp
                ),
            ));
        }
        Ok(ScoreReply {
            aggregates: ScoreAggregates {
                n,
                n_positive,
                roc_points,
                cutoff,
                confusion,
                calibration_bins: CalibrationBins {
                    edges: edges.to_vec(),
                    counts: reply.bin_counts.iter().map(|&c| c as usize).collect(),
                    sum_predicted: reply.bin_sum_predicted,
                    positives: reply.bin_positives.iter().map(|&c| c as usize).collect(),
                },
                calibration_sums: CalibrationSums {
                    n,
                    squared_error: reply.squared_error,
                    spiegelhalter_numerator: reply.spiegelhalter_numerator,
                    spiegelhalter_variance: reply.spiegelhalter_variance,
                },
            },
            n_skipped: reply.n_skipped as usize,
        })
    }
}
