//! Exact federated logistic regression over gRPC.
//!
//! Each Newton step sends the current coefficients to every center that
//! has training patients of the model (contract `LogisticStep`). Each
//! center returns X'(y − p), X'WX and the deviance over its own patients.
//! The coordinator adds them, adds the L2 penalty and solves
//! ([`crate::stats::irls::fit_newton_rounds`], the same driver as the
//! pooled fit). The result equals the pooled Newton fit up to summation
//! order.
//!
//! With `[federated] logistic = true`, every linear model is refitted this
//! way after the pooled modelling pass, and `federated.json` reports, per
//! model, the federated coefficients and their largest difference from the
//! pooled Newton fit on the shared table and from the deployed model.
//! Selection (Mann-Whitney U and LASSO) still uses the shared table.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2};
use radstudy_proto::v1::LinearModel;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::client::CenterClient;
use crate::model::{FittedModel, ModelBuild};
use crate::scores_only::linear_model;
use crate::split::Cohort;
use crate::stats::{self, LogisticSums, NewtonOptions, Penalty, StatsError};
use crate::table::StudyTable;

/// Settings of federated fitting, `[federated]` in study.toml.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederatedConfig {
    /// Refit every linear model by federated Newton steps. Default false.
    pub logistic: bool,
}

/// One model refitted by federated Newton steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FederatedFit {
    /// Model name.
    pub model: String,
    /// Training patients per center that took part.
    pub patients_per_center: BTreeMap<String, usize>,
    /// Newton steps.
    pub iterations: usize,
    /// Whether the deviance converged (R's `glm.fit` rule, ε = 1e-8).
    pub converged: bool,
    /// Intercept, then one coefficient per feature, on the standardised
    /// scale of the deployed model.
    pub coefficients: Vec<f64>,
    /// Largest |difference| from the pooled Newton fit on the shared
    /// table: summation order only.
    pub max_difference_from_pooled_newton: f64,
    /// Largest |difference| from the deployed model, which L-BFGS fitted
    /// to its own tolerance.
    pub max_difference_from_deployed: f64,
}

/// A model that could not be refitted, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FederatedSkip {
    /// Model name.
    pub model: String,
    /// Why.
    pub reason: String,
}

/// Returns the training patients of `model` (those with every feature of
/// the model, as the pooled fit used) and the model's table columns.
fn training_patients(
    model: &FittedModel,
    table: &StudyTable,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let columns: Vec<usize> = model
        .features
        .iter()
        .map(|feature| {
            table
                .columns
                .iter()
                .position(|column| column.name == feature.name)
                .ok_or_else(|| format!("{} is not a feature column", feature.name))
        })
        .collect::<Result<_, _>>()?;
    let patients = (0..table.patients.len())
        .filter(|&p| table.patients[p].cohort == Cohort::Training)
        .filter(|&p| {
            columns
                .iter()
                .all(|&c| table.columns[c].values[p].is_some())
        })
        .collect();
    Ok((patients, columns))
}

/// Fits `model` on the pooled table rows by the same Newton driver.
fn pooled_newton(
    model: &FittedModel,
    table: &StudyTable,
    patients: &[usize],
    columns: &[usize],
    c: f64,
) -> Result<stats::NewtonFit, StatsError> {
    let x = Array2::from_shape_fn((patients.len(), columns.len()), |(row, j)| {
        let value = table.columns[columns[j]].values[patients[row]].unwrap_or(f64::NAN);
        (value - model.features[j].mean) / model.features[j].scale
    });
    let y: Vec<bool> = patients.iter().map(|&p| table.patients[p].label).collect();
    stats::fit_newton(x.view(), &y, Penalty::L2 { c }, &NewtonOptions::default())
}

/// Refits every linear model of `models` by federated Newton steps over
/// `clients`, on the extraction round `round_id`.
pub async fn refit_models(
    models: &[FittedModel],
    table: &StudyTable,
    clients: &[CenterClient],
    study_id: &str,
    round_id: &str,
    c: f64,
) -> (Vec<FederatedFit>, Vec<FederatedSkip>) {
    let mut fits = Vec::new();
    let mut skips = Vec::new();
    for model in models {
        let span = tracing::info_span!("federated", model = %model.name);
        let result = refit_one(model, table, clients, study_id, round_id, c);
        match tracing::Instrument::instrument(result, span).await {
            Ok(fit) => {
                info!(
                    model = %fit.model,
                    iterations = fit.iterations,
                    difference = fit.max_difference_from_pooled_newton,
                    "federated fit done"
                );
                fits.push(fit);
            }
            Err(reason) => {
                warn!(model = %model.name, %reason, "federated fit skipped");
                skips.push(FederatedSkip {
                    model: model.name.clone(),
                    reason,
                });
            }
        }
    }
    (fits, skips)
}

async fn refit_one(
    model: &FittedModel,
    table: &StudyTable,
    clients: &[CenterClient],
    study_id: &str,
    round_id: &str,
    c: f64,
) -> Result<FederatedFit, String> {
    if matches!(model.build, ModelBuild::Stacking { .. }) {
        return Err(
            "a stacked fusion is two levels of logistic regression; its linear form is not a logistic fit of its own, so there is nothing to refit"
                .into(),
        );
    }
    let template = linear_model(model, table)?;
    let (patients, columns) = training_patients(model, table)?;

    let mut shares: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &p in &patients {
        let record = &table.patients[p];
        shares
            .entry(record.center.clone())
            .or_default()
            .push(record.pseudonym.clone());
    }
    let mut participants: Vec<(CenterClient, Vec<String>)> = Vec::new();
    for (center, pseudonyms) in &shares {
        let client = clients
            .iter()
            .find(|client| client.center() == center)
            .ok_or_else(|| format!("center {center} has training patients but is not connected"))?;
        participants.push((client.clone(), pseudonyms.clone()));
    }

    // The Newton driver is synchronous; each of its steps waits here for
    // one round of calls, on a blocking thread so the runtime keeps going.
    let handle = tokio::runtime::Handle::current();
    let study = study_id.to_string();
    let round = round_id.to_string();
    let n_features = template.terms.len();
    let fit = tokio::task::spawn_blocking(move || {
        stats::fit_newton_rounds(
            n_features,
            Penalty::L2 { c },
            &NewtonOptions::default(),
            |beta| {
                let mut at = template.clone();
                at.intercept = beta[0];
                for (term, &value) in at.terms.iter_mut().zip(beta.iter().skip(1)) {
                    term.coefficient = value;
                }
                handle.block_on(sums_at(&mut participants, &study, &round, at))
            },
        )
    })
    .await
    .map_err(|error| format!("internal error: {error}"))?
    .map_err(|error| format!("federated Newton fit failed: {error}"))?;

    let federated: Vec<f64> = std::iter::once(fit.intercept)
        .chain(fit.coefficients.iter().copied())
        .collect();
    let pooled = pooled_newton(model, table, &patients, &columns, c)
        .map_err(|error| format!("pooled Newton fit failed: {error}"))?;
    let pooled: Array1<f64> = std::iter::once(pooled.intercept)
        .chain(pooled.coefficients.iter().copied())
        .collect();
    let deployed: Vec<f64> = std::iter::once(model.intercept)
        .chain(model.features.iter().map(|f| f.coefficient))
        .collect();
    let max_difference = |other: &[f64]| {
        federated
            .iter()
            .zip(other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    Ok(FederatedFit {
        model: model.name.clone(),
        patients_per_center: shares.iter().map(|(c, p)| (c.clone(), p.len())).collect(),
        iterations: fit.iterations,
        converged: fit.converged,
        max_difference_from_pooled_newton: max_difference(pooled.as_slice().unwrap_or(&[])),
        max_difference_from_deployed: max_difference(&deployed),
        coefficients: federated,
    })
}

/// Returns the sum of every participant's Newton-step sums at `model`.
async fn sums_at(
    participants: &mut [(CenterClient, Vec<String>)],
    study_id: &str,
    round_id: &str,
    model: LinearModel,
) -> Result<LogisticSums, StatsError> {
    let mut total = LogisticSums::zeros(model.terms.len() + 1);
    for (client, pseudonyms) in participants.iter_mut() {
        let sums = client
            .logistic_step(study_id, round_id, model.clone(), pseudonyms.clone())
            .await
            .map_err(|error| StatsError::Remote {
                message: error.to_string(),
            })?;
        total.add(&sums)?;
    }
    Ok(total)
}
