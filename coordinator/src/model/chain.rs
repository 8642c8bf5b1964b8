//! One model's selection chain: standardise, Mann-Whitney U, LASSO, L2
//! logistic regression and the Youden cut-off, all fitted on training
//! patients only.
//!
//! Patients enter the chain ordered by (center, pseudonym), not by table
//! row, so the LASSO folds and every sum are the same whatever order the
//! table rows are in.

use ndarray::{Array1, Array2, Axis};

use super::{
    FittedModel, Funnel, LassoSummary, MIN_TRAINING_PER_CLASS, ModelBuild, SelectedFeature,
};
use crate::config::{LassoChoice, ModelConfig, MwuCorrection, PenaltyChoice};
use crate::split::Cohort;
use crate::stats::{self, LambdaChoice, LassoParams, LogisticModel, StatsError};
use crate::table::StudyTable;

/// Selection steps that a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSteps {
    /// Mann-Whitney U filter.
    pub mwu: bool,
    /// Cross-validated binomial LASSO.
    pub lasso: bool,
}

/// Input of one chain fit: the model's name and construction, its
/// candidate columns and the selection steps.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSpec {
    /// Model name.
    pub name: String,
    /// Construction of the model, as written to `models.json`.
    pub build: ModelBuild,
    /// Candidate table columns.
    pub columns: Vec<usize>,
    /// Selection steps to run.
    pub steps: ChainSteps,
}

/// A fitted model with what evaluation and explanation need.
#[derive(Debug, Clone)]
pub struct FittedChain {
    /// Model name.
    pub name: String,
    /// The frozen model, as written to `models.json`.
    pub model: FittedModel,
    /// Table rows of the patients the model scores, ordered by center and
    /// pseudonym.
    pub patients: Vec<usize>,
    /// Table columns of the features in `model.features`.
    pub selected_columns: Vec<usize>,
    /// The logistic model on the columns of `design`.
    pub logistic: LogisticModel,
    /// Inputs of `logistic` for each of `patients`, shape (patients,
    /// inputs): the standardised selected features, or the standardised
    /// radscores of a stacked model.
    pub design: Array2<f64>,
    /// Names of the columns of `design`.
    pub input_names: Vec<String>,
    /// Log-odds (radscore) of each of `patients`.
    pub log_odds: Vec<f64>,
    /// Predicted probability of each of `patients`.
    pub probabilities: Vec<f64>,
}

/// Fits one chain on the training cohort of `table`.
pub fn fit_chain(
    table: &StudyTable,
    spec: &ChainSpec,
    config: &ModelConfig,
    seed: u64,
) -> Result<FittedChain, String> {
    let training: Vec<bool> = table
        .patients
        .iter()
        .map(|p| p.cohort == Cohort::Training)
        .collect();
    fit_chain_on(table, spec, config, seed, &training)
}

/// Table rows of the patients that have every one of `columns`, ordered by
/// (center, pseudonym) so that the order does not depend on the table's row
/// order.
pub(super) fn patients_with(table: &StudyTable, columns: &[usize]) -> Vec<usize> {
    let mut patients: Vec<usize> = (0..table.patients.len())
        .filter(|&p| {
            columns
                .iter()
                .all(|&c| table.columns[c].values[p].is_some())
        })
        .collect();
    sort_by_patient_key(table, &mut patients);
    patients
}

/// Sorts table rows by (center, pseudonym), then by row for equal keys.
pub(super) fn sort_by_patient_key(table: &StudyTable, rows: &mut [usize]) {
    rows.sort_by(|&a, &b| {
        let (pa, pb) = (&table.patients[a], &table.patients[b]);
        (pa.center.as_str(), pa.pseudonym.as_str())
            .cmp(&(pb.center.as_str(), pb.pseudonym.as_str()))
            .then(a.cmp(&b))
    });
}

/// Fits one chain with `training[p]` choosing the table patients it is
/// fitted on. Cross-validation passes the training cohort minus one fold,
/// and every other caller passes the training cohort.
pub fn fit_chain_on(
    table: &StudyTable,
    spec: &ChainSpec,
    config: &ModelConfig,
    seed: u64,
    training: &[bool],
) -> Result<FittedChain, String> {
    let stats_error = |step: &str, error: StatsError| format!("{step} failed: {error}");
    let columns = spec.columns.as_slice();
    if columns.is_empty() {
        return Err("no candidate feature columns".into());
    }
    if training.len() != table.patients.len() {
        return Err(format!(
            "the training mask has {} entries for {} patients",
            training.len(),
            table.patients.len()
        ));
    }

    // Patients with every candidate feature, and the training rows among them.
    let patients = patients_with(table, columns);
    let matrix = Array2::from_shape_fn((patients.len(), columns.len()), |(row, column)| {
        table.columns[columns[column]].values[patients[row]].unwrap_or(f64::NAN)
    });
    let labels: Vec<bool> = patients.iter().map(|&p| table.patients[p].label).collect();
    let training: Vec<usize> = (0..patients.len())
        .filter(|&row| training[patients[row]])
        .collect();
    let train_y: Vec<bool> = training.iter().map(|&row| labels[row]).collect();
    let n_positive = train_y.iter().filter(|&&y| y).count();
    let n_training = [train_y.len() - n_positive, n_positive];
    if n_training[0] < MIN_TRAINING_PER_CLASS || n_training[1] < MIN_TRAINING_PER_CLASS {
        return Err(format!(
            "training has {} negative and {} positive patients with all features; at least {MIN_TRAINING_PER_CLASS} per class are needed",
            n_training[0], n_training[1]
        ));
    }

    // Standardisation fitted on training; constant columns are dropped.
    let train_x = matrix.select(Axis(0), &training);
    let standardizer =
        stats::Standardizer::fit(train_x.view()).map_err(|e| stats_error("standardisation", e))?;
    let all_z = standardizer
        .transform(matrix.view())
        .map_err(|e| stats_error("standardisation", e))?;
    let train_z = all_z.select(Axis(0), &training);
    let non_constant: Vec<usize> = (0..columns.len())
        .filter(|c| !standardizer.constant_columns.contains(c))
        .collect();
    if non_constant.is_empty() {
        return Err("every feature is constant on training patients".into());
    }
    let mut funnel = Funnel {
        candidates: columns.len(),
        non_constant: non_constant.len(),
        ..Funnel::default()
    };

    // Mann-Whitney U on training patients.
    let mut p_values: Vec<Option<f64>> = vec![None; columns.len()];
    // The values compared with the threshold: p, or BH q-values.
    let mut q_values: Vec<Option<f64>> = vec![None; columns.len()];
    let mut mwu_relaxed = false;
    let mut kept = non_constant.clone();
    if spec.steps.mwu {
        for &column in &non_constant {
            let values = train_z.column(column);
            let positives: Vec<f64> = train_y
                .iter()
                .zip(values)
                .filter(|(y, _)| **y)
                .map(|(_, v)| *v)
                .collect();
            let negatives: Vec<f64> = train_y
                .iter()
                .zip(values)
                .filter(|(y, _)| !**y)
                .map(|(_, v)| *v)
                .collect();
            let test = stats::mann_whitney_u(&positives, &negatives)
                .map_err(|e| stats_error("Mann-Whitney U", e))?;
            p_values[column] = Some(test.p_value);
        }
        let tested: Vec<f64> = non_constant
            .iter()
            .map(|&c| p_values[c].unwrap_or(1.0))
            .collect();
        let compared = match config.mwu_correction {
            MwuCorrection::None => tested,
            MwuCorrection::BenjaminiHochberg => stats::benjamini_hochberg(&tested)
                .map_err(|e| stats_error("Benjamini-Hochberg", e))?,
        };
        for (&column, &q) in non_constant.iter().zip(&compared) {
            q_values[column] = Some(q);
        }
        kept = non_constant
            .iter()
            .copied()
            .filter(|&c| q_values[c].is_some_and(|q| q < config.mwu_alpha))
            .collect();
        if kept.is_empty() {
            mwu_relaxed = true;
            let mut order = non_constant.clone();
            let p = |c: usize| p_values[c].unwrap_or(1.0);
            order.sort_by(|&a, &b| p(a).total_cmp(&p(b)).then(a.cmp(&b)));
            order.truncate(config.fallback_features);
            order.sort_unstable();
            kept = order;
        }
    }
    funnel.after_mwu = kept.len();

    // Cross-validated binomial LASSO on the standardised training features.
    let mut lasso_summary = None;
    if spec.steps.lasso && kept.len() > 1 {
        let candidates = train_z.select(Axis(1), &kept);
        let folds = config
            .lasso_folds
            .min(n_training[0].min(n_training[1]))
            .max(2);
        match run_lasso(candidates.view(), &train_y, folds, config, seed) {
            Ok((selected, summary)) => {
                if !selected.is_empty() {
                    kept = selected.iter().map(|&i| kept[i]).collect();
                }
                lasso_summary = Some(summary);
            }
            Err(reason) => {
                // The model goes on with the Mann-Whitney selection, and the
                // reason is kept in models.json. The caller logs it, once
                // per model rather than once per cross-validation fold.
                lasso_summary = Some(LassoSummary {
                    failure: Some(reason),
                    ..LassoSummary::default()
                });
            }
        }
    }
    funnel.after_lasso = kept.len();

    // L2 logistic regression on the selected features.
    let train_selected = train_z.select(Axis(1), &kept);
    let (logistic, separation_refit) = fit_logistic(train_selected.view(), &train_y, config)?;
    let design = all_z.select(Axis(1), &kept);
    let log_odds: Array1<f64> = logistic
        .log_odds(design.view())
        .map_err(|e| stats_error("prediction", e))?;
    let probabilities: Array1<f64> = logistic
        .probability(design.view())
        .map_err(|e| stats_error("prediction", e))?;
    let train_probabilities: Vec<f64> = training.iter().map(|&row| probabilities[row]).collect();
    let threshold = stats::youden_threshold(&train_probabilities, &train_y)
        .map_err(|e| stats_error("Youden cut-off", e))?;

    let features: Vec<SelectedFeature> = kept
        .iter()
        .zip(logistic.coefficients.iter())
        .map(|(&column, &coefficient)| SelectedFeature {
            name: table.columns[columns[column]].name.clone(),
            mwu_p_value: p_values[column],
            mwu_q_value: match config.mwu_correction {
                MwuCorrection::None => None,
                MwuCorrection::BenjaminiHochberg => q_values[column],
            },
            mean: standardizer.mean[column],
            scale: standardizer.scale[column],
            coefficient,
        })
        .collect();
    let input_names: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
    let model = FittedModel {
        name: spec.name.clone(),
        build: spec.build.clone(),
        n_training,
        funnel,
        mwu_relaxed,
        lasso: lasso_summary,
        features,
        intercept: logistic.intercept,
        threshold,
        separation_refit,
    };
    Ok(FittedChain {
        name: spec.name.clone(),
        model,
        patients,
        selected_columns: kept.iter().map(|&c| columns[c]).collect(),
        logistic,
        design,
        input_names,
        log_odds: log_odds.to_vec(),
        probabilities: probabilities.to_vec(),
    })
}

/// Fits the models' logistic regression with the penalty of
/// `config.penalty`. The returned flag is set when an unpenalised fit
/// separated and was refitted with C = 1 ([`stats::fit_with_fallback`],
/// R's `glm` convergence rule).
pub(super) fn fit_logistic(
    x: ndarray::ArrayView2<f64>,
    y: &[bool],
    config: &ModelConfig,
) -> Result<(LogisticModel, bool), String> {
    match config.penalty {
        PenaltyChoice::L2 => Ok((fit_logistic_l2(x, y, config.c)?, false)),
        PenaltyChoice::None => {
            let fit = stats::fit_with_fallback(x, y, &stats::NewtonOptions::default())
                .map_err(|e| format!("logistic regression failed: {e}"))?;
            if !fit.converged {
                return Err(format!(
                    "logistic regression did not converge in {} Newton steps",
                    fit.iterations
                ));
            }
            if fit.separation_flag {
                tracing::warn!("unpenalised logistic regression separated; refitted with C = 1");
            }
            let model = LogisticModel {
                intercept: fit.intercept,
                coefficients: fit.coefficients,
            };
            Ok((model, fit.separation_flag))
        }
    }
}

/// Fits the L2 logistic regression of scikit-learn's
/// `LogisticRegression(C=c)` objective by Newton's method (at most 25
/// steps, R's `glm.control` stopping rule).
///
/// NOTE: `stats::fit_l2` minimises the same objective with the L-BFGS of
/// linfa-logistic 0.8.1, whose argmin 0.11 line search has no iteration
/// limit. On one 33 × 1 training fold of the best-region cross-validation
/// it did not return within minutes, while Newton's method took 66 µs.
pub(super) fn fit_logistic_l2(
    x: ndarray::ArrayView2<f64>,
    y: &[bool],
    c: f64,
) -> Result<LogisticModel, String> {
    let fit = stats::fit_newton(
        x,
        y,
        stats::Penalty::L2 { c },
        &stats::NewtonOptions::default(),
    )
    .map_err(|e| format!("logistic regression failed: {e}"))?;
    if !fit.converged {
        return Err(format!(
            "logistic regression did not converge in {} Newton steps",
            fit.iterations
        ));
    }
    Ok(LogisticModel {
        intercept: fit.intercept,
        coefficients: fit.coefficients,
    })
}

/// Runs the cross-validated LASSO; on a path that does not converge at
/// glmnet's default `lambda.min.ratio`, retries once with the larger ratio
/// 0.01, whose path stops before the near-separated fits of small samples.
fn run_lasso(
    z: ndarray::ArrayView2<f64>,
    y: &[bool],
    folds: usize,
    config: &ModelConfig,
    seed: u64,
) -> Result<(Vec<usize>, LassoSummary), String> {
    let mut last_error = String::new();
    for ratio in [None, Some(0.01)] {
        let params = LassoParams {
            folds,
            repeats: config.lasso_repeats,
            seed,
            lambda_min_ratio: ratio,
            choose: match config.lasso_choice {
                LassoChoice::Min => LambdaChoice::Min,
                LassoChoice::OneSe => LambdaChoice::OneSe,
            },
            ..LassoParams::default()
        }
        .validate()
        .map_err(|e| format!("invalid LASSO settings: {e}"))?;
        match stats::lasso_cv(z, y, &params) {
            Ok(cv) => {
                let summary = LassoSummary {
                    lambda: cv.chosen_lambda,
                    lambda_min: cv.lambda_min,
                    lambda_1se: cv.lambda_1se,
                    cv_deviance: cv.cv_mean[cv.chosen_index],
                    fell_back_to_first_nonzero: cv.flags.fell_back_to_first_nonzero,
                    lambda_min_ratio: ratio,
                    failure: None,
                };
                return Ok((cv.selected, summary));
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(last_error)
}
