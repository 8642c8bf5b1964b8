//! One model's selection chain: standardise, Mann-Whitney U, LASSO, L2
//! logistic regression and the Youden cut-off, all fitted on training
//! patients only.

use ndarray::{Array1, Array2, Axis};

use super::{FittedModel, Funnel, LassoSummary, MIN_TRAINING_PER_CLASS, SelectedFeature};
use crate::config::{LassoChoice, ModelConfig};
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

/// A fitted chain with what evaluation and explanation need.
#[derive(Debug, Clone)]
pub struct FittedChain {
    /// Model name.
    pub name: String,
    /// The frozen model, as written to `models.json`.
    pub model: FittedModel,
    /// Table rows of the patients that have every candidate feature.
    pub patients: Vec<usize>,
    /// Table columns of the selected features.
    pub selected_columns: Vec<usize>,
    /// The logistic model on the standardised selected features.
    pub logistic: LogisticModel,
    /// Standardised selected features of `patients`, shape (patients, selected).
    pub design: Array2<f64>,
    /// Predicted probability of each of `patients`.
    pub probabilities: Vec<f64>,
}

/// Fits one chain on the candidate `columns` of `table`.
pub fn fit_chain(
    table: &StudyTable,
    name: &str,
    columns: &[usize],
    steps: ChainSteps,
    config: &ModelConfig,
    seed: u64,
) -> Result<FittedChain, String> {
    let stats_error = |step: &str, error: StatsError| format!("{step} failed: {error}");
    if columns.is_empty() {
        return Err("no candidate feature columns".into());
    }

    // Patients with every candidate feature, and the training rows among them.
    let patients: Vec<usize> = (0..table.patients.len())
        .filter(|&p| {
            columns
                .iter()
                .all(|&c| table.columns[c].values[p].is_some())
        })
        .collect();
    let matrix = Array2::from_shape_fn((patients.len(), columns.len()), |(row, column)| {
        table.columns[columns[column]].values[patients[row]].unwrap_or(f64::NAN)
    });
    let labels: Vec<bool> = patients.iter().map(|&p| table.patients[p].label).collect();
    let training: Vec<usize> = (0..patients.len())
        .filter(|&row| table.patients[patients[row]].cohort == Cohort::Training)
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
    let mut mwu_relaxed = false;
    let mut kept = non_constant.clone();
    if steps.mwu {
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
        kept = non_constant
            .iter()
            .copied()
            .filter(|&c| p_values[c].is_some_and(|p| p < config.mwu_alpha))
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
    if steps.lasso && kept.len() > 1 {
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
                // reason is kept in models.json.
                tracing::warn!(%reason, "LASSO failed; keeping the Mann-Whitney selection");
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
    let logistic = stats::fit_l2(train_selected.view(), &train_y, config.c)
        .map_err(|e| stats_error("logistic regression", e))?;
    let design = all_z.select(Axis(1), &kept);
    let probabilities: Array1<f64> = logistic
        .probability(design.view())
        .map_err(|e| stats_error("prediction", e))?;
    let train_probabilities: Vec<f64> = training.iter().map(|&row| probabilities[row]).collect();
    let threshold = stats::youden_threshold(&train_probabilities, &train_y)
        .map_err(|e| stats_error("Youden cut-off", e))?;

    let features = kept
        .iter()
        .zip(logistic.coefficients.iter())
        .map(|(&column, &coefficient)| SelectedFeature {
            name: table.columns[columns[column]].name.clone(),
            mwu_p_value: p_values[column],
            mean: standardizer.mean[column],
            scale: standardizer.scale[column],
            coefficient,
        })
        .collect();
    let model = FittedModel {
        name: name.to_string(),
        n_training,
        funnel,
        mwu_relaxed,
        lasso: lasso_summary,
        features,
        intercept: logistic.intercept,
        threshold,
    };
    Ok(FittedChain {
        name: name.to_string(),
        model,
        patients,
        selected_columns: kept.iter().map(|&c| columns[c]).collect(),
        logistic,
        design,
        probabilities: probabilities.to_vec(),
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
