//! `radstudy run`: one study, round by round.
//!
//! 1. Handshake: connect to every center and check its description.
//! 2. Extraction round at every center, with per-patient progress.
//! 3. Feature tables gathered into one table; cohorts assigned.
//!    With `[habitat] enabled`, the supervoxel and apply rounds
//!    ([`crate::habitat`]) fit the population habitat model on the training
//!    patients. A second extraction round then extracts every region
//!    (whole lesion, habitats, optional core and rim), and its table
//!    replaces the first, with the same cohorts.
//! 4. Reproducibility filter: perturbation round on drawn training patients
//!    and ICC from the centers' sums ([`crate::reproducibility`]).
//! 5. Missing habitat regions imputed with the training median plus an
//!    indicator ([`crate::model::missing`]); modelling pass and
//!    validation; external centers that keep their
//!    tables validate by scores only ([`crate::scores_only`]); optionally
//!    every model is refitted by federated Newton steps
//!    ([`crate::federated`]). Files written to the study directory.
//!
//! A center that fails at any step is left out with its reason, and the
//! study goes on with the others. The study stops only when no development
//! center remains.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use radstudy_proto::v1::DescribeResponse;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, error, info, info_span, warn};

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::client::{CenterClient, CenterTable, ExclusionRecord};
use crate::config::{CenterRole, StudyConfig};
use crate::feature_stage::{
    FeatureStage, feature_stage, replay_extraction, restore_feature_stage, save_feature_stage,
};
use crate::federated;
use crate::handshake::{check_definitions, handshake, validates_by_scores_only};
use crate::harmonize;
use crate::model::missing::impute_missing_regions;
use crate::model::{ModellingOutcome, model_specs, run_models};
use crate::output::{format_metrics, write_json, write_outputs};
use crate::reproducibility;
use crate::scores_only;
use crate::split::{Cohort, SplitInput, assign_cohorts};
use crate::table::StudyTable;

/// Errors that stop a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The study directory cannot be created.
    #[error("cannot create or write the study directory {path}")]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No development center is left to train on.
    #[error(
        "no development center completed the study, so there is nothing to train on: {reasons}"
    )]
    NoDevelopmentCenter {
        /// The reason each center was left out.
        reasons: String,
    },
    /// The gathered tables are inconsistent, or a file cannot be written.
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    /// A checkpoint cannot be written, or the study cannot be resumed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// A center left out of the study, with the reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CenterFailure {
    /// The center.
    pub center: String,
    /// The reason it was left out.
    pub reason: String,
}

/// Result of a finished study, besides its files.
#[derive(Debug, Clone)]
pub struct StudyOutcome {
    /// The study directory.
    pub out_dir: PathBuf,
    /// Patients in the feature table.
    pub n_patients: usize,
    /// Patients scored at scores-only centers, which are not in the table
    /// (per center, the most any model scored).
    pub n_scored_remotely: usize,
    /// Patients excluded per sequence, with reasons.
    pub exclusions: Vec<ExclusionRecord>,
    /// Centers left out.
    pub failed_centers: Vec<CenterFailure>,
    /// Models, metrics and predictions.
    pub modelling: ModellingOutcome,
    /// Steps of the method that did not run as configured, with the reason
    /// (for example an ICC filter that no center could compute).
    pub notes: Vec<String>,
    /// The metrics table as printed.
    pub metrics_table: String,
}

#[derive(Debug, Clone, Serialize)]
struct CenterProvenance {
    center: String,
    software_version: String,
    contract_version: String,
    feature_definition_hash: String,
}

/// Whether `radstudy run` starts a new study or continues one from the
/// checkpoints in its study directory ([`crate::checkpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Start a new study; a directory that contains checkpoints is rejected.
    New,
    /// Continue from the last completed stage, with the stored round ids.
    Resume,
}

/// Runs a new study and writes its directory; `show_progress` draws
/// progress bars on standard error.
pub async fn run_study(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
) -> Result<StudyOutcome, StudyError> {
    run_study_from(config, out_dir, show_progress, StartMode::New).await
}

/// Runs a study as [`run_study`] does, or resumes it from its checkpoints
/// when `mode` is [`StartMode::Resume`].
pub async fn run_study_from(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
    mode: StartMode,
) -> Result<StudyOutcome, StudyError> {
    std::fs::create_dir_all(out_dir).map_err(|source| StudyError::OutputDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    // Fail before any extraction work if the directory cannot be written.
    let probe = out_dir.join(".radstudy-write-check");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| StudyError::OutputDir {
            path: out_dir.to_path_buf(),
            source,
        })?;

    let checkpoints = Checkpoints::open(out_dir, config, mode == StartMode::Resume)?;
    let span = info_span!(
        "study",
        study = %config.study_id,
        round = %checkpoints.round_ids().extraction
    );
    run_rounds(config, out_dir, show_progress, &checkpoints)
        .instrument(span)
        .await
}

async fn run_rounds(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
    checkpoints: &Checkpoints,
) -> Result<StudyOutcome, StudyError> {
    let round_ids = checkpoints.round_ids().clone();
    let mut handshake_failures = Vec::new();

    // Round 1: handshake, also when resuming, because later rounds need
    // the connections.
    let mut handshakes = Vec::new();
    for center in &config.centers {
        let span = info_span!("center", center = %center.id);
        handshakes.push(tokio::spawn(
            handshake(config.clone(), center.id.clone(), center.endpoint.clone()).instrument(span),
        ));
    }
    let mut connected: Vec<(CenterClient, DescribeResponse)> = Vec::new();
    for (center, task) in config.centers.iter().zip(handshakes) {
        match task.await {
            Ok(Ok(pair)) => connected.push(pair),
            Ok(Err(reason)) => handshake_failures.push(CenterFailure {
                center: center.id.clone(),
                reason,
            }),
            Err(join_error) => handshake_failures.push(CenterFailure {
                center: center.id.clone(),
                reason: format!("internal error: {join_error}"),
            }),
        }
    }
    check_definitions(&mut connected, &mut handshake_failures);
    let scores_only: BTreeSet<String> = connected
        .iter()
        .filter(|(client, description)| {
            validates_by_scores_only(config, client.center(), description).unwrap_or(false)
        })
        .map(|(client, _)| client.center().to_string())
        .collect();
    let settings = config.features.contract_settings();

    let stage = match checkpoints.load_features()? {
        Some(stored) => {
            info!(
                round = %stored.extraction_round_id,
                "feature table restored from the checkpoint; extraction and habitat rounds skipped"
            );
            let stage = restore_feature_stage(config, &connected, handshake_failures, stored)?;
            replay_extraction(
                config,
                &connected,
                &stage,
                &scores_only,
                &settings,
                show_progress,
            )
            .await;
            stage
        }
        None => {
            let stage = feature_stage(
                config,
                out_dir,
                show_progress,
                checkpoints,
                &connected,
                handshake_failures,
                &scores_only,
                &settings,
            )
            .await?;
            save_feature_stage(checkpoints, &stage)?;
            stage
        }
    };
    let FeatureStage {
        tables: _,
        mut table,
        remote_validation,
        exclusions,
        mut failures,
        mut notes,
        extraction_round_id,
        habitat_regions,
    } = stage;
    for failure in &failures {
        error!(center = %failure.center, reason = %failure.reason, "center left out of the study");
    }
    table.write(out_dir)?;
    info!(
        patients = table.patients.len(),
        columns = table.columns.len(),
        "feature table written"
    );

    // Round 4: the reproducibility filter.
    let icc_span = info_span!("phase", phase = "icc");
    let habitat_round = habitat_regions
        .as_ref()
        .map(|(round, regions)| (round.as_str(), regions.as_slice()));
    let icc_report = match checkpoints.load_icc()? {
        Some(report) => {
            info!("ICC filter restored from the checkpoint; perturbation round skipped");
            report
        }
        None => {
            let report = reproducibility::run_round(
                config,
                &connected,
                &table,
                &settings,
                habitat_round,
                &round_ids.icc,
            )
            .instrument(icc_span)
            .await;
            checkpoints.save_icc(&report)?;
            info!("checkpoint written: ICC filter");
            report
        }
    };
    for (center, reason) in &icc_report.failed {
        failures.push(CenterFailure {
            center: center.clone(),
            reason: format!("left out of the ICC filter: {reason}"),
        });
    }
    for (center, reason) in &icc_report.left_out {
        warn!(%center, %reason, "center not drawn for the ICC filter");
        notes.push(format!("center {center} not in the ICC filter: {reason}"));
    }
    if let Some(reason) = &icc_report.not_run
        && config.icc.enabled
    {
        warn!(%reason, "ICC filter not applied");
        notes.push(format!("ICC filter not applied: {reason}"));
    }
    let icc_counts = reproducibility::apply(&mut table, &icc_report);
    for (sequence, (before, after)) in &icc_counts {
        info!(%sequence, before, after, "features after the ICC filter");
    }
    reproducibility::write_report(out_dir, &icc_report, &icc_counts)?;

    // Optional ComBat, fitted with the training patients as reference.
    let harmonization =
        harmonize::harmonize(&mut table, &config.centers, config.model.harmonization);
    if !harmonization.is_empty() {
        write_json(&out_dir.join("harmonization.json"), &harmonization)?;
    }

    // Missing habitat regions: training median plus indicator.
    let imputations = impute_missing_regions(&mut table);
    for record in &imputations {
        info!(
            sequence = %record.sequence,
            region = %record.region,
            training = record.imputed_training,
            internal = record.imputed_internal,
            external = record.imputed_external,
            "missing region imputed"
        );
    }
    if config.habitat.enabled {
        write_json(&out_dir.join("missing_regions.json"), &imputations)?;
    }

    // Round 5: models and validation.
    let mut modelling = run_models(
        &table,
        &model_specs(&config.sequences),
        &config.model,
        config.seed,
    );
    let mut n_scored_remotely = 0;
    if !remote_validation.is_empty() {
        let span = info_span!("phase", phase = "scores_only_validation");
        let skipped = scores_only::validate_remote(
            &mut modelling,
            &table,
            &remote_validation,
            &config.study_id,
            &extraction_round_id,
            &config.validation,
        )
        .instrument(span)
        .await;
        write_json(&out_dir.join("scores_only.json"), &skipped)?;
        n_scored_remotely = scores_only::patients_scored(&skipped);
        for (center, reason) in scores_only::failed_centers(&skipped, modelling.models.len()) {
            failures.push(CenterFailure { center, reason });
        }
    }
    if config.federated.logistic {
        let clients: Vec<CenterClient> =
            connected.iter().map(|(client, _)| client.clone()).collect();
        let (fits, skips) = federated::refit_models(
            &modelling.models,
            &table,
            &clients,
            &config.study_id,
            &extraction_round_id,
            config.model.c,
        )
        .instrument(info_span!("phase", phase = "federated_fit"))
        .await;
        write_json(
            &out_dir.join("federated.json"),
            &serde_json::json!({ "fits": fits, "skipped": skips }),
        )?;
    }
    write_outputs(out_dir, &modelling, &exclusions)?;
    let provenance = serde_json::json!({
        "study_id": config.study_id,
        "round_id": round_ids.extraction,
        "extraction_round_id": extraction_round_id,
        "habitat_apply_round_id": habitat_regions.as_ref().map(|(round, _)| round),
        "seed": config.seed,
        "settings_hash": settings_hash(config),
        "coordinator_version": env!("CARGO_PKG_VERSION"),
        "contract_version": radstudy_proto::contract_version(),
        "centers": connected.iter().map(|(_, d)| CenterProvenance {
            center: d.center_id.clone(),
            software_version: d.software_version.clone(),
            contract_version: d.contract_version.clone(),
            feature_definition_hash: d.feature_definition_hash.clone(),
        }).collect::<Vec<_>>(),
        "failed_centers": failures,
    });
    write_json(&out_dir.join("provenance.json"), &provenance)?;
    // The report reads the files written above. A study whose report fails
    // keeps its other files, so the failure becomes a note, not an error.
    if let Err(error) = crate::report::write_report(out_dir) {
        warn!(error = %error, "report.html not written");
        notes.push(format!("report.html not written: {error}"));
    }

    let metrics_table = format_metrics(&modelling.metrics);
    Ok(StudyOutcome {
        out_dir: out_dir.to_path_buf(),
        n_patients: table.patients.len(),
        n_scored_remotely,
        exclusions,
        failed_centers: failures,
        modelling,
        metrics_table,
        notes,
    })
}

/// Stops the study when no development center's table arrived.
pub(crate) fn require_development_center(
    config: &StudyConfig,
    tables: &[(String, CenterTable)],
    failures: &[CenterFailure],
) -> Result<(), StudyError> {
    let development_left = tables.iter().any(|(center, _)| {
        config
            .centers
            .iter()
            .any(|c| &c.id == center && c.role == CenterRole::Development)
    });
    if development_left {
        return Ok(());
    }
    let reasons = failures
        .iter()
        .map(|f| format!("center {} left out: {}", f.center, f.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Err(StudyError::NoDevelopmentCenter { reasons })
}

/// Assigns the cohorts of `table`'s patients ([`crate::split`]).
pub(crate) fn split_cohorts(config: &StudyConfig, table: &StudyTable) -> Vec<Cohort> {
    let inputs: Vec<SplitInput<'_>> = table
        .patients
        .iter()
        .map(|patient| SplitInput {
            pseudonym: &patient.pseudonym,
            label: patient.label,
            center: &patient.center,
            role: config
                .centers
                .iter()
                .find(|c| c.id == patient.center)
                .map(|c| c.role)
                .unwrap_or(CenterRole::External),
        })
        .collect();
    assign_cohorts(&inputs, config.split.train_fraction, config.seed)
}

/// Returns a SHA-256 (hex) over every study setting that changes a result:
/// seed, sequences, split, features, habitats, ICC, model, validation and
/// federated settings. Endpoints, TLS files and timeouts are left out, so
/// moving a worker does not change the hash.
///
/// NOTE: the hash covers the settings' `Debug` form, which is stable for
/// one radstudy version but may change between versions; compare it within
/// one `coordinator_version`.
pub(crate) fn settings_hash(config: &StudyConfig) -> String {
    use sha2::{Digest, Sha256};

    let settings = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        config.seed,
        config.sequences,
        config.split,
        config.features,
        config.habitat,
        config.icc,
        config.model,
        config.validation,
        config.federated,
    );
    hex::encode(Sha256::digest(settings.as_bytes()))
}
