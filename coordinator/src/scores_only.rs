//! `scores_only` external validation: an external center scores its own
//! patients with the frozen model and returns only aggregates (contract
//! `ScoreModel`): ROC points, confusion counts at the frozen cut-off and
//! calibration bins on fixed edges. The coordinator merges them with the
//! aggregates of any external center that shared its table, and computes
//! the external validation from the merged aggregates alone
//! ([`crate::stats::aggregates`]).
//!
//! The aggregates give the AUC exactly, with its DeLong interval. They give
//! sensitivity, specificity and the other threshold metrics with Wilson
//! intervals, the Brier score, the Hosmer-Lemeshow test and calibration
//! curve on the fixed edges, and the decision curve. What they cannot give:
//! bootstrap intervals, the logistic recalibration slope and intercept,
//! paired DeLong tests against other models, SHAP values and
//! `predictions.csv` rows. Those stay empty for the external cohort.

use radstudy_proto::v1::{LinearModel, ModelTerm};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::client::CenterClient;
use crate::model::{Calibration, CohortValidation, FittedModel, ModellingOutcome};
use crate::stats::{self, ScoreAggregates};
use crate::table::StudyTable;

/// Cohort name of the merged external validation.
pub const EXTERNAL_COHORT: &str = "external_validation";

/// Settings of validation, `[validation]` in study.toml.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Validation mode of external centers: "auto" (default), "tables"
    /// or "scores_only".
    pub external: ExternalMode,
    /// Number of equal-width calibration bins sent to scores-only centers.
    /// Default 10.
    pub calibration_bins: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            external: ExternalMode::Auto,
            calibration_bins: 10,
        }
    }
}

/// The way an external center takes part in validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalMode {
    /// Scores-only for a center whose policy keeps its feature table and
    /// allows scores-only validation; its table otherwise.
    Auto,
    /// Every external center must share its feature table.
    Tables,
    /// Every external center validates by scores only, even one that
    /// would share its table.
    ScoresOnly,
}

impl ValidationConfig {
    /// Checks the values; on failure returns (key, value, expected).
    pub fn check(&self) -> Result<(), (&'static str, String, &'static str)> {
        if !(2..=100).contains(&self.calibration_bins) {
            return Err((
                "validation.calibration_bins",
                self.calibration_bins.to_string(),
                "from 2 to 100 bins",
            ));
        }
        Ok(())
    }

    /// Equal-width calibration edges from 0 to 1.
    pub fn edges(&self) -> Vec<f64> {
        let bins = self.calibration_bins;
        (0..=bins).map(|k| k as f64 / bins as f64).collect()
    }

    /// Decides whether an external center validates by scores only, from
    /// its policy; `Err` gives the reason it cannot take part at all.
    pub fn scores_only_for(
        &self,
        shares_tables: bool,
        allows_scores: bool,
    ) -> Result<bool, String> {
        match (self.external, shares_tables, allows_scores) {
            (ExternalMode::Tables, true, _) => Ok(false),
            (ExternalMode::Tables, false, _) => Err(
                "the site policy keeps feature tables at the site (share_feature_tables = false) and [validation] external = \"tables\"; set external = \"auto\" to validate by scores only".into(),
            ),
            (ExternalMode::Auto, true, _) => Ok(false),
            (_, _, true) => Ok(true),
            (_, _, false) => Err(
                "the site policy shares neither feature tables nor scores-only aggregates (share_feature_tables and scores_only_validation are false), so it cannot validate; the site can turn either on in its worker.toml".into(),
            ),
        }
    }
}

/// Writes a fitted model as the contract's frozen linear model. Every
/// feature must be a column of `table`, which names its sequence, region
/// and PyRadiomics feature.
///
/// # Errors
///
/// The name of a feature that is not a column of the table.
pub fn linear_model(model: &FittedModel, table: &StudyTable) -> Result<LinearModel, String> {
    let mut terms = Vec::with_capacity(model.features.len());
    for feature in &model.features {
        let column = table
            .columns
            .iter()
            .find(|column| column.name == feature.name)
            .ok_or_else(|| {
                format!(
                    "model {} uses {}, which is not a feature column",
                    model.name, feature.name
                )
            })?;
        terms.push(ModelTerm {
            sequence: column.sequence.clone(),
            region: column.region.clone(),
            feature: column.feature.clone(),
            mean: feature.mean,
            scale: feature.scale,
            coefficient: feature.coefficient,
        });
    }
    Ok(LinearModel {
        intercept: model.intercept,
        terms,
    })
}

/// Computes the validation of one model on one cohort from merged
/// aggregates. Measures the aggregates cannot give are `None`.
pub fn validation_from_aggregates(
    model: &str,
    cohort: &str,
    aggregates: &ScoreAggregates,
) -> CohortValidation {
    let both_classes = aggregates.n_positive > 0 && aggregates.n_positive < aggregates.n;
    let calibration = both_classes
        .then(|| {
            let brier = aggregates.calibration_sums.brier_score().ok()?;
            let hosmer = aggregates.hosmer_lemeshow();
            Some(Calibration {
                brier,
                intercept: None,
                slope: None,
                hosmer_lemeshow: Some(hosmer.statistic),
                hosmer_lemeshow_p_development: hosmer.p_development,
                hosmer_lemeshow_p_external: Some(hosmer.p_external),
                hosmer_lemeshow_groups: Some(hosmer.groups),
                curve: aggregates.calibration_bins.curve(),
            })
        })
        .flatten();
    CohortValidation {
        model: model.to_string(),
        cohort: cohort.to_string(),
        n: aggregates.n,
        n_positive: aggregates.n_positive,
        auc: stats::aggregates::delong_from_roc_points(&aggregates.roc_points).ok(),
        threshold: aggregates.cutoff,
        at_threshold: aggregates.threshold_metrics(),
        bootstrap: None,
        calibration,
        decision_curve: aggregates.decision_curve(&stats::default_thresholds()).ok(),
    }
}

/// One center's contribution to one model's scores-only validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteScore {
    /// Model name.
    pub model: String,
    /// Center.
    pub center: String,
    /// Patients scored, and positive among them; `None` when the call
    /// failed.
    pub n: Option<usize>,
    /// Positive patients scored.
    pub n_positive: Option<usize>,
    /// Patients the worker skipped for a missing feature.
    pub n_skipped: Option<usize>,
    /// The reason the center or model is missing from the validation.
    pub reason: Option<String>,
}

/// Replaces every model's external validation by the one computed from
/// merged aggregates: the scores-only centers' replies to `ScoreModel` on
/// extraction round `round_id`, plus the aggregates of the external
/// patients whose tables were shared. Returns what each center gave.
pub async fn validate_remote(
    outcome: &mut ModellingOutcome,
    table: &StudyTable,
    centers: &[CenterClient],
    study_id: &str,
    round_id: &str,
    config: &ValidationConfig,
) -> Vec<RemoteScore> {
    let edges = config.edges();
    let mut record = Vec::new();
    for model in outcome.models.clone() {
        let skip = |center: &str, reason: String| RemoteScore {
            model: model.name.clone(),
            center: center.to_string(),
            n: None,
            n_positive: None,
            n_skipped: None,
            reason: Some(reason),
        };
        let frozen = match linear_model(&model, table) {
            Ok(frozen) => frozen,
            Err(reason) => {
                warn!(model = %model.name, %reason, "no scores-only validation");
                record.extend(centers.iter().map(|c| skip(c.center(), reason.clone())));
                continue;
            }
        };

        // External patients whose tables were shared, as aggregates too.
        let (probabilities, labels): (Vec<f64>, Vec<bool>) = outcome
            .predictions
            .iter()
            .filter(|p| p.model == model.name && p.cohort == EXTERNAL_COHORT)
            .map(|p| (p.probability, p.label == 1))
            .unzip();
        let mut merged = match ScoreAggregates::from_predictions(
            &probabilities,
            &labels,
            model.threshold,
            &edges,
        ) {
            Ok(local) => local,
            Err(error) => {
                let reason = format!("shared external predictions: {error}");
                record.extend(centers.iter().map(|c| skip(c.center(), reason.clone())));
                continue;
            }
        };

        for center in centers {
            let mut client = center.clone();
            let reply = client
                .score_model(
                    study_id,
                    round_id,
                    &model.name,
                    frozen.clone(),
                    model.threshold,
                    &edges,
                )
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    warn!(model = %model.name, center = %center.center(), %error, "center left out of scores-only validation");
                    record.push(skip(center.center(), error.to_string()));
                    continue;
                }
            };
            if let Err(error) = merged.merge(&reply.aggregates) {
                record.push(skip(center.center(), error.to_string()));
                continue;
            }
            info!(model = %model.name, center = %center.center(), n = reply.aggregates.n, "scores-only aggregates received");
            record.push(RemoteScore {
                model: model.name.clone(),
                center: center.center().to_string(),
                n: Some(reply.aggregates.n),
                n_positive: Some(reply.aggregates.n_positive),
                n_skipped: Some(reply.n_skipped),
                reason: None,
            });
        }
        if merged.n == 0 {
            continue;
        }

        let validation = validation_from_aggregates(&model.name, EXTERNAL_COHORT, &merged);
        let row = validation.metrics_row();
        let same = |m: &str, c: &str| m == model.name && c == EXTERNAL_COHORT;
        match outcome
            .validations
            .iter_mut()
            .find(|v| same(&v.model, &v.cohort))
        {
            Some(existing) => *existing = validation,
            None => outcome.validations.push(validation),
        }
        match outcome
            .metrics
            .iter_mut()
            .find(|r| same(&r.model, &r.cohort))
        {
            Some(existing) => *existing = row,
            None => outcome.metrics.push(row),
        }
    }
    record
}

/// Returns the patients scored over all centers, counting each center's
/// largest count over the models.
pub fn patients_scored(records: &[RemoteScore]) -> usize {
    let mut per_center: std::collections::BTreeMap<&str, usize> = Default::default();
    for record in records {
        let most = per_center.entry(record.center.as_str()).or_default();
        *most = (*most).max(record.n.unwrap_or(0));
    }
    per_center.values().sum()
}

/// Returns each center that failed to score at least one of `n_models`
/// models, with a reason naming how many failed and the first failure.
pub fn failed_centers(records: &[RemoteScore], n_models: usize) -> Vec<(String, String)> {
    let mut centers: Vec<&str> = records.iter().map(|r| r.center.as_str()).collect();
    centers.sort_unstable();
    centers.dedup();
    let mut failed = Vec::new();
    for center in centers {
        let misses: Vec<&RemoteScore> = records
            .iter()
            .filter(|r| r.center == center && r.n.is_none())
            .collect();
        if let Some(first) = misses.first() {
            let reason = first.reason.as_deref().unwrap_or("no reason given");
            failed.push((
                center.to_string(),
                format!(
                    "scores-only validation failed for {} of {n_models} models: {reason}",
                    misses.len()
                ),
            ));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_centers_names_center_and_first_reason() {
        let record = |center: &str, n: Option<usize>, reason: Option<&str>| RemoteScore {
            model: "m".into(),
            center: center.into(),
            n,
            n_positive: n,
            n_skipped: n.map(|_| 0),
            reason: reason.map(str::to_string),
        };
        let records = [
            record("B", Some(16), None),
            record("C", None, Some("fewer than min_patients = 20")),
            record("C", None, Some("fewer than min_patients = 20")),
        ];
        // B scored 16 patients; C scored none.
        assert_eq!(patients_scored(&records), 16);
        let failed = failed_centers(&records, 2);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "C");
        assert_eq!(
            failed[0].1,
            "scores-only validation failed for 2 of 2 models: fewer than min_patients = 20"
        );
    }

    #[test]
    fn scores_only_for_follows_mode_and_policy() {
        let auto = ValidationConfig::default();
        assert_eq!(auto.scores_only_for(true, true), Ok(false));
        assert_eq!(auto.scores_only_for(false, true), Ok(true));
        assert!(auto.scores_only_for(false, false).is_err());

        let tables = ValidationConfig {
            external: ExternalMode::Tables,
            ..ValidationConfig::default()
        };
        assert_eq!(tables.scores_only_for(true, true), Ok(false));
        assert!(tables.scores_only_for(false, true).is_err());

        let scores = ValidationConfig {
            external: ExternalMode::ScoresOnly,
            ..ValidationConfig::default()
        };
        assert_eq!(scores.scores_only_for(true, true), Ok(true));
        assert!(scores.scores_only_for(true, false).is_err());
    }

    #[test]
    fn validation_from_aggregates_matches_patients() {
        // Hand-made scores with a tie across classes at 0.6.
        let scores = [0.9, 0.6, 0.6, 0.4, 0.3, 0.8, 0.2, 0.1];
        let labels = [true, true, false, true, false, true, false, false];
        let config = ValidationConfig::default();
        let aggregates = ScoreAggregates::from_predictions(&scores, &labels, 0.5, &config.edges())
            .expect("valid scores");
        let from_aggregates = validation_from_aggregates("m", EXTERNAL_COHORT, &aggregates);

        let expected = stats::delong_auc(&scores, &labels).expect("two per class");
        let auc = from_aggregates.auc.expect("both classes");
        // The AUC is the same fraction both ways: of the 16 positive-negative
        // pairs, 0.9 and 0.8 win 4 each, 0.6 wins 3 and ties 1, 0.4 wins 3,
        // so 14.5 / 16.
        assert_eq!(auc.auc, expected.auc);
        assert_eq!(auc.auc, 14.5 / 16.0);
        // Variances differ by summation order only.
        assert!((auc.variance - expected.variance).abs() < 1e-15);

        let sensitivity = from_aggregates.at_threshold.sensitivity.expect("positives");
        let specificity = from_aggregates.at_threshold.specificity.expect("negatives");
        // p ≥ 0.5: positives 0.9, 0.6, 0.8 of 4; negatives 0.6 of 4.
        assert_eq!(sensitivity.estimate, 0.75);
        assert_eq!(specificity.estimate, 0.75);
        assert!(from_aggregates.bootstrap.is_none());
        let calibration = from_aggregates.calibration.expect("both classes");
        let brier = stats::brier_score(&scores, &labels).expect("valid");
        assert!((calibration.brier - brier).abs() < 1e-15);
        assert!(calibration.slope.is_none());
    }
}
