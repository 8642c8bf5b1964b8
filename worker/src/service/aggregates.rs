//! The aggregate calls of contract 1.1 over a finished round, with the site
//! policy's release rules. The numbers come from [`crate::aggregate`].

use std::sync::Arc;

use radstudy_proto::v1::{
    FeatureIccSums, LinearModel, LogisticStepRequest, LogisticStepResponse,
    ReproducibilitySumsRequest, ReproducibilitySumsResponse, RocPoint, ScoreModelRequest,
    ScoreModelResponse,
};
use tracing::{debug, info, warn};

use super::{RequestError, RoundResult, SequenceCopies, WorkerState};
use crate::aggregate::icc_sums::icc_sums;
use crate::aggregate::linear_model::{Evaluation, TableLayout, ValidModel};
use crate::aggregate::logistic_step::logistic_step as step_sums;
use crate::aggregate::scores::{ScoreSettings, summarize};

/// The reason that a sequence and region of a round's copies gets no ICC
/// sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Omission {
    /// The region is not a habitat of the sequence, so it has no copies by
    /// design. A habitat round's request lists every habitat name for every
    /// sequence, but with `per_sequence` voxel features each sequence has
    /// only its own model's habitats.
    NotARegion,
    /// Fewer than `min_patients` patients have every perturbed copy.
    TooFewPatients,
}

/// Returns why `copies` gets no sums, or `None` when it gets them.
pub(super) fn omission(
    round: &RoundResult,
    copies: &SequenceCopies,
    min_patients: usize,
) -> Option<Omission> {
    let defined = round
        .request
        .habitat
        .as_ref()
        .is_none_or(|habitat| habitat.round.has_region(&copies.sequence, &copies.region));
    if !defined {
        return Some(Omission::NotARegion);
    }
    (copies.patients.len() < min_patients).then_some(Omission::TooFewPatients)
}

/// Computes the ICC sums of every sequence, region and feature of a round
/// that ran with `perturbation`.
///
/// A sequence with fewer than `min_patients` patients with every copy is
/// left out and logged. The request is rejected only when every sequence
/// is left out.
///
/// # Errors
///
/// [`RequestError::UnknownRound`], [`RequestError::NoPerturbation`] for a
/// round without copies, and [`RequestError::PolicyRefused`] when no
/// sequence reaches `min_patients`.
pub(super) fn reproducibility_sums(
    state: &WorkerState,
    request: &ReproducibilitySumsRequest,
) -> Result<ReproducibilitySumsResponse, RequestError> {
    let round = finished_round(state, &request.study_id, &request.round_id)?;
    let copies = round
        .copies
        .as_ref()
        .ok_or_else(|| RequestError::NoPerturbation {
            round_id: request.round_id.clone(),
        })?;
    let min_patients = state.config.policy.min_patients as usize;

    let mut sums = Vec::new();
    let mut released_sequences = 0;
    for sequence in &copies.sequences {
        match omission(&round, sequence, min_patients) {
            None => {}
            Some(Omission::NotARegion) => {
                debug!(
                    sequence = %sequence.sequence,
                    region = %sequence.region,
                    "no reproducibility sums: the region is not a habitat of this sequence"
                );
                continue;
            }
            Some(Omission::TooFewPatients) => {
                warn!(
                    sequence = %sequence.sequence,
                    region = %sequence.region,
                    patients = sequence.patients.len(),
                    min_patients,
                    "sequence and region left out of the reproducibility sums: too few patients with every perturbed copy"
                );
                continue;
            }
        }
        let n_patients = sequence.patients.len();
        released_sequences += 1;
        for (column, feature) in round.feature_names.iter().enumerate() {
            // Patients × copies values of this feature.
            let mut table: Vec<Vec<f64>> = Vec::with_capacity(n_patients);
            for patient in &sequence.patients {
                let row = patient
                    .values
                    .iter()
                    .map(|copy| copy.get(column).copied())
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| RequestError::Internal {
                        reason: format!(
                            "a stored copy of sequence {} has fewer values than the round's {} features",
                            sequence.sequence,
                            round.feature_names.len()
                        ),
                    })?;
                table.push(row);
            }
            let rows: Vec<&[f64]> = table.iter().map(Vec::as_slice).collect();
            let feature_sums = icc_sums(&rows).map_err(|error| RequestError::Internal {
                reason: format!(
                    "ICC sums of {feature} in sequence {}: {error}",
                    sequence.sequence
                ),
            })?;
            sums.push(FeatureIccSums {
                sequence: sequence.sequence.clone(),
                region: sequence.region.clone(),
                feature: feature.clone(),
                n_subjects: feature_sums.n_subjects as u32,
                shift: feature_sums.shift,
                sum: feature_sums.sum,
                sum_squares: feature_sums.sum_squares,
                sum_squared_subject_totals: feature_sums.sum_squared_subject_totals,
                copy_sums: feature_sums.copy_sums,
            });
        }
    }

    if released_sequences == 0 {
        let counts: Vec<String> = copies
            .sequences
            .iter()
            .map(|sequence| format!("{} {}", sequence.sequence, sequence.patients.len()))
            .collect();
        return Err(RequestError::PolicyRefused {
            center: state.config.center_id.clone(),
            reason: format!(
                "no sequence has min_patients = {min_patients} patients with every perturbed copy (patients with every copy: {})",
                counts.join(", ")
            ),
        });
    }
    info!(
        sequences = released_sequences,
        entries = sums.len(),
        copies_excluded = copies.n_excluded,
        "released reproducibility sums"
    );
    Ok(ReproducibilitySumsResponse {
        repeats: copies.repeats,
        sums,
        n_excluded: copies.n_excluded,
    })
}

/// Computes one Newton step's sums of the request's model over the round's
/// patients, or the requested ones.
///
/// # Errors
///
/// [`RequestError::UnknownRound`], [`RequestError::InvalidField`] for a
/// missing or invalid model or an unknown pseudonym, and
/// [`RequestError::PolicyRefused`] below `min_patients` or
/// `min_per_class`.
pub(super) fn logistic_step(
    state: &WorkerState,
    request: &LogisticStepRequest,
) -> Result<LogisticStepResponse, RequestError> {
    let round = finished_round(state, &request.study_id, &request.round_id)?;
    let (model, evaluation) = evaluate_model(&round, request.model.as_ref(), &request.pseudonyms)?;
    let sums = step_sums(&evaluation.patients, model.n_coefficients());
    check_labelled_release(state, sums.n, sums.n_positive)?;

    info!(
        patients = sums.n,
        skipped = evaluation.n_skipped,
        coefficients = model.n_coefficients(),
        "released logistic step sums"
    );
    Ok(LogisticStepResponse {
        n: sums.n as u32,
        n_positive: sums.n_positive as u32,
        gradient: sums.gradient,
        hessian: sums.hessian,
        deviance: sums.deviance,
        n_skipped: evaluation.n_skipped as u32,
    })
}

/// Scores the round's patients, or the requested ones, with a frozen model
/// and returns only aggregates: ROC points, confusion counts at the
/// cut-off, calibration bins and calibration sums.
///
/// # Errors
///
/// [`RequestError::PolicyRefused`] unless the policy sets
/// `scores_only_validation`, [`RequestError::UnknownRound`],
/// [`RequestError::InvalidField`] for an invalid cut-off, edges, model or
/// pseudonym, and [`RequestError::PolicyRefused`] below `min_patients` or
/// `min_per_class`.
pub(super) fn score_model(
    state: &WorkerState,
    request: &ScoreModelRequest,
) -> Result<ScoreModelResponse, RequestError> {
    state.check_study(&request.study_id)?;
    if !state.config.policy.scores_only_validation {
        return Err(RequestError::PolicyRefused {
            center: state.config.center_id.clone(),
            reason:
                "scores_only_validation = false; this site does not score models for validation"
                    .into(),
        });
    }
    let round = finished_round(state, &request.study_id, &request.round_id)?;
    let settings =
        ScoreSettings::new(request.cutoff, &request.calibration_edges).map_err(|error| {
            RequestError::InvalidField {
                field: match error {
                    crate::aggregate::scores::ScoreSettingsError::InvalidCutoff(_) => "cutoff",
                    _ => "calibration_edges",
                },
                reason: error.to_string(),
            }
        })?;
    let (_, evaluation) = evaluate_model(&round, request.model.as_ref(), &request.pseudonyms)?;
    let summary = summarize(&evaluation.probabilities(), &settings);
    check_labelled_release(state, summary.n, summary.n_positive)?;

    info!(
        patients = summary.n,
        skipped = evaluation.n_skipped,
        roc_points = summary.roc_points.len(),
        "released validation scores"
    );
    let counts = |values: Vec<usize>| values.into_iter().map(|v| v as u32).collect();
    Ok(ScoreModelResponse {
        n: summary.n as u32,
        n_positive: summary.n_positive as u32,
        roc_points: summary
            .roc_points
            .iter()
            .map(|point| RocPoint {
                threshold: point.threshold,
                tp: point.tp as u32,
                fp: point.fp as u32,
            })
            .collect(),
        tp: summary.confusion.tp as u32,
        fp: summary.confusion.fp as u32,
        tn: summary.confusion.tn as u32,
        r#fn: summary.confusion.fn_ as u32,
        bin_counts: counts(summary.bin_counts),
        bin_positives: counts(summary.bin_positives),
        bin_sum_predicted: summary.bin_sum_predicted,
        squared_error: summary.squared_error,
        spiegelhalter_numerator: summary.spiegelhalter_numerator,
        spiegelhalter_variance: summary.spiegelhalter_variance,
        n_skipped: evaluation.n_skipped as u32,
    })
}

/// Checks the study and returns its finished round.
fn finished_round(
    state: &WorkerState,
    study_id: &str,
    round_id: &str,
) -> Result<Arc<RoundResult>, RequestError> {
    state.check_study(study_id)?;
    let key = (study_id.to_string(), round_id.to_string());
    state
        .finished_round(&key)
        .ok_or_else(|| RequestError::UnknownRound {
            study_id: study_id.to_string(),
            round_id: round_id.to_string(),
        })
}

/// Returns the requested pseudonyms sorted and without repeats, or every
/// patient of the round when none is requested.
///
/// NOTE: two requests whose pseudonym sets differ by one patient reveal that
/// patient's share of the sums. `min_patients` limits each response, not
/// the differences between responses.
fn select_patients(round: &RoundResult, requested: &[String]) -> Result<Vec<String>, RequestError> {
    if requested.is_empty() {
        return Ok(round.patients.clone());
    }
    if let Some(unknown) = requested
        .iter()
        .find(|pseudonym| round.patients.binary_search(pseudonym).is_err())
    {
        return Err(RequestError::InvalidField {
            field: "pseudonyms",
            reason: format!(
                "pseudonym {unknown:?} is not a patient of round {}; send only pseudonyms of that round",
                round.summary.round_id
            ),
        });
    }
    let mut selected = requested.to_vec();
    selected.sort_unstable();
    selected.dedup();
    Ok(selected)
}

/// Validates the model against the round's table and evaluates it on the
/// selected patients.
fn evaluate_model(
    round: &RoundResult,
    model: Option<&LinearModel>,
    requested: &[String],
) -> Result<(ValidModel, Evaluation), RequestError> {
    let model = model.ok_or(RequestError::InvalidField {
        field: "model",
        reason: "missing".into(),
    })?;
    let invalid_model =
        |error: crate::aggregate::linear_model::ModelError| RequestError::InvalidField {
            field: error.field(),
            reason: error.to_string(),
        };
    let regions: Vec<&str> = round.request.regions.iter().map(String::as_str).collect();
    let layout = TableLayout {
        sequences: &round.request.sequences,
        regions: &regions,
        feature_names: &round.feature_names,
    };
    let model = ValidModel::new(model, layout).map_err(invalid_model)?;
    let patients = select_patients(round, requested)?;
    let evaluation = model
        .evaluate(&patients, &round.rows)
        .map_err(invalid_model)?;
    Ok((model, evaluation))
}

/// Applies `min_patients` and `min_per_class` to a labelled aggregate over
/// `n` patients.
///
/// The rejection message does not state the class counts, because for a
/// request that names a few pseudonyms they would reveal those patients'
/// labels.
fn check_labelled_release(
    state: &WorkerState,
    n: usize,
    n_positive: usize,
) -> Result<(), RequestError> {
    let policy = &state.config.policy;
    let policy_rejection = |reason: String| RequestError::PolicyRefused {
        center: state.config.center_id.clone(),
        reason,
    };
    if n < policy.min_patients as usize {
        return Err(policy_rejection(format!(
            "{n} patients have every feature of the model, fewer than min_patients = {}",
            policy.min_patients
        )));
    }
    if n_positive.min(n - n_positive) < policy.min_per_class as usize {
        return Err(policy_rejection(format!(
            "one outcome class has fewer than min_per_class = {} of the {n} included patients",
            policy.min_per_class
        )));
    }
    Ok(())
}
