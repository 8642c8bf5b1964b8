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

use std::path::{Path, PathBuf};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use radstudy_proto::v1::{DescribeResponse, ExtractRequest, ExtractionSettings};
use serde::Serialize;
use tracing::{Instrument, error, info, info_span, warn};

use crate::client::{CenterClient, CenterTable, ExclusionRecord};
use crate::config::{CenterRole, StudyConfig};
use crate::federated;
use crate::habitat;
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
}

/// A center left out of the study, with the reason.
#[derive(Debug, Clone, Serialize)]
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

/// Runs a study and writes its directory; `show_progress` draws progress
/// bars on standard error.
pub async fn run_study(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
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
    let round_id = uuid::Uuid::new_v4().to_string();
    let span = info_span!("study", study = %config.study_id, round = %round_id);
    run_rounds(config, out_dir, show_progress, &round_id)
        .instrument(span)
        .await
}

async fn run_rounds(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
    round_id: &str,
) -> Result<StudyOutcome, StudyError> {
    let mut failures = Vec::new();

    // Round 1: handshake.
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
            Ok(Err(reason)) => failures.push(CenterFailure {
                center: center.id.clone(),
                reason,
            }),
            Err(join_error) => failures.push(CenterFailure {
                center: center.id.clone(),
                reason: format!("internal error: {join_error}"),
            }),
        }
    }
    check_definitions(&mut connected, &mut failures);
    let scores_only: std::collections::BTreeSet<String> = connected
        .iter()
        .filter(|(client, description)| {
            validates_by_scores_only(config, client.center(), description).unwrap_or(false)
        })
        .map(|(client, _)| client.center().to_string())
        .collect();

    // Round 2: extraction, all centers at once.
    let settings = ExtractionSettings {
        feature_classes: config.features.classes.clone(),
        bin_width: config.features.bin_width,
        label: config.features.label,
    };
    let extraction = extraction_round(
        config,
        &connected,
        round_id,
        &settings,
        &scores_only,
        None,
        show_progress,
    )
    .await;
    failures.extend(extraction.failures);
    let (mut tables, mut remote_validation, mut exclusions) = (
        extraction.tables,
        extraction.remote_validation,
        extraction.exclusions,
    );
    require_development_center(config, &tables, &failures)?;

    // Round 3: one table, with cohorts.
    let mut table = StudyTable::assemble(&tables, &config.sequences)?;
    let cohorts = split_cohorts(config, &table);
    for (patient, cohort) in table.patients.iter_mut().zip(cohorts) {
        patient.cohort = cohort;
    }

    // Habitat rounds, then every region extracted again under a new round.
    let mut notes = Vec::new();
    let mut extraction_round_id = round_id.to_string();
    let mut habitat_regions: Option<(String, Vec<String>)> = None;
    if config.habitat.enabled {
        let participants: Vec<(CenterClient, DescribeResponse)> = connected
            .iter()
            .filter(|(client, _)| {
                let center = client.center();
                tables.iter().any(|(c, _)| c == center)
                    || remote_validation.iter().any(|r| r.center() == center)
            })
            .cloned()
            .collect();
        let mut training: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for patient in table
            .patients
            .iter()
            .filter(|p| p.cohort == Cohort::Training)
        {
            training
                .entry(patient.center.clone())
                .or_default()
                .push(patient.pseudonym.clone());
        }
        let rounds = habitat::round::run_rounds(config, &config.habitat, &participants, &training)
            .instrument(info_span!("phase", phase = "habitat"))
            .await;
        match rounds {
            Ok(outcome) => {
                habitat::report::write_report(out_dir, &config.habitat, &outcome)?;
                for (center, reason) in &outcome.failed {
                    failures.push(CenterFailure {
                        center: center.clone(),
                        reason: format!("left out of the habitat rounds: {reason}"),
                    });
                }
                let applied: Vec<(CenterClient, DescribeResponse)> = participants
                    .into_iter()
                    .filter(|(client, _)| {
                        outcome.applied_centers.iter().any(|c| c == client.center())
                    })
                    .collect();
                extraction_round_id = uuid::Uuid::new_v4().to_string();
                let regions = (outcome.apply_round_id.clone(), outcome.regions.clone());
                info!(round = %extraction_round_id, regions = ?regions.1, "habitat extraction round started");
                let extraction = extraction_round(
                    config,
                    &applied,
                    &extraction_round_id,
                    &settings,
                    &scores_only,
                    Some((&regions.0, &regions.1)),
                    show_progress,
                )
                .await;
                failures.extend(extraction.failures);
                tables = extraction.tables;
                remote_validation = extraction.remote_validation;
                exclusions = extraction.exclusions;
                // A patient that the extraction excluded for a sequence is
                // listed once; habitats.json keeps the habitat step's own
                // record.
                for record in &outcome.exclusions {
                    let listed = exclusions.iter().any(|e| {
                        (&e.center, &e.pseudonym, &e.sequence)
                            == (&record.center, &record.pseudonym, &record.sequence)
                    });
                    if !listed {
                        exclusions.push(record.clone());
                    }
                }
                require_development_center(config, &tables, &failures)?;

                // The cohorts of the first table carry over by patient, so
                // the habitat model's training patients stay the training
                // cohort.
                let first: std::collections::BTreeMap<(String, String), Cohort> = table
                    .patients
                    .iter()
                    .map(|p| ((p.center.clone(), p.pseudonym.clone()), p.cohort))
                    .collect();
                table = StudyTable::assemble(&tables, &config.sequences)?;
                let fallback = split_cohorts(config, &table);
                for (patient, fallback) in table.patients.iter_mut().zip(fallback) {
                    patient.cohort = first
                        .get(&(patient.center.clone(), patient.pseudonym.clone()))
                        .copied()
                        .unwrap_or(fallback);
                }
                habitat_regions = Some(regions);
            }
            Err((reason, outcome)) => {
                habitat::report::write_report(out_dir, &config.habitat, &outcome)?;
                error!(%reason, "habitat rounds failed; the study goes on with the whole lesion only");
                notes.push(format!(
                    "habitat rounds failed, so only the whole lesion was modelled: {reason}"
                ));
                for (center, reason) in &outcome.failed {
                    notes.push(format!(
                        "center {center} failed in the habitat rounds: {reason}"
                    ));
                }
            }
        }
    }
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
    let icc_report =
        reproducibility::run_round(config, &connected, &table, &settings, habitat_round)
            .instrument(icc_span)
            .await;
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
        "round_id": round_id,
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

/// Results of one extraction round over the centers.
struct ExtractionResults {
    /// Feature tables of the centers that share them.
    tables: Vec<(String, CenterTable)>,
    /// Centers that validate by scores only.
    remote_validation: Vec<CenterClient>,
    /// Patients excluded, per sequence.
    exclusions: Vec<ExclusionRecord>,
    /// Centers that failed the round.
    failures: Vec<CenterFailure>,
}

/// Runs one extraction round at every center of `connected` at once and
/// fetches the tables of the centers that share them. `habitat` names the
/// apply round and the regions to extract.
async fn extraction_round(
    config: &StudyConfig,
    connected: &[(CenterClient, DescribeResponse)],
    round_id: &str,
    settings: &ExtractionSettings,
    scores_only: &std::collections::BTreeSet<String>,
    habitat: Option<(&str, &[String])>,
    show_progress: bool,
) -> ExtractionResults {
    let bars = MultiProgress::new();
    if !show_progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut rounds = Vec::new();
    for (client, description) in connected.iter() {
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("center {prefix:<6} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(description.center_id.clone());
        let span = info_span!("center", center = %description.center_id);
        let request = ExtractRequest {
            study_id: config.study_id.clone(),
            round_id: round_id.to_string(),
            sequences: config.sequences.clone(),
            settings: Some(settings.clone()),
            perturbation: None,
            pseudonyms: Vec::new(),
            habitat_round_id: habitat
                .map(|(round, _)| round.to_string())
                .unwrap_or_default(),
            regions: habitat
                .map(|(_, regions)| regions.to_vec())
                .unwrap_or_default(),
        };
        rounds.push(tokio::spawn(
            extract_and_fetch(
                config.clone(),
                client.clone(),
                request,
                bar,
                !scores_only.contains(client.center()),
            )
            .instrument(span),
        ));
    }
    let mut results = ExtractionResults {
        tables: Vec::new(),
        remote_validation: Vec::new(),
        exclusions: Vec::new(),
        failures: Vec::new(),
    };
    for ((client, _), task) in connected.iter().zip(rounds) {
        let center = client.center().to_string();
        match task.await {
            Ok(Ok((_, center_exclusions))) if scores_only.contains(&center) => {
                results.exclusions.extend(center_exclusions);
                info!(center = %center, "center validates by scores only");
                results.remote_validation.push(client.clone());
            }
            Ok(Ok((table, center_exclusions))) => {
                results.exclusions.extend(center_exclusions);
                results.tables.push((center, table));
            }
            Ok(Err((reason, center_exclusions))) => {
                results.exclusions.extend(center_exclusions);
                results.failures.push(CenterFailure { center, reason });
            }
            Err(join_error) => results.failures.push(CenterFailure {
                center,
                reason: format!("internal error: {join_error}"),
            }),
        }
    }
    results
}

/// Stops the study when no development center's table arrived.
fn require_development_center(
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
fn split_cohorts(config: &StudyConfig, table: &StudyTable) -> Vec<Cohort> {
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

type CenterResult = Result<(CenterTable, Vec<ExclusionRecord>), (String, Vec<ExclusionRecord>)>;

async fn extract_and_fetch(
    config: StudyConfig,
    mut client: CenterClient,
    request: ExtractRequest,
    bar: ProgressBar,
    fetch_table: bool,
) -> CenterResult {
    let progress = bar.clone();
    let round_id = request.round_id.clone();
    let outcome = client
        .extract(request, config.round_timeout(), move |index, total| {
            progress.set_length(total as u64);
            progress.set_position(index as u64);
        })
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            bar.abandon_with_message("failed");
            return Err((error.to_string(), Vec::new()));
        }
    };
    bar.finish_with_message(format!(
        "{} extracted, {} excluded",
        outcome.summary.n_extracted, outcome.summary.n_excluded
    ));
    for exclusion in &outcome.exclusions {
        warn!(
            patient = %exclusion.pseudonym,
            sequence = %exclusion.sequence,
            kind = %exclusion.kind,
            reason = %exclusion.reason,
            "patient excluded"
        );
    }
    if !fetch_table {
        let kept = CenterTable {
            feature_names: Vec::new(),
            rows: Vec::new(),
        };
        return Ok((kept, outcome.exclusions));
    }
    match client
        .fetch_feature_table(&config.study_id, &round_id)
        .await
    {
        Ok(table) => Ok((table, outcome.exclusions)),
        Err(error) => Err((error.to_string(), outcome.exclusions)),
    }
}

/// Returns a SHA-256 (hex) over every study setting that changes a result:
/// seed, sequences, split, features, habitats, ICC, model, validation and
/// federated settings. Endpoints, TLS files and timeouts are left out, so
/// moving a worker does not change the hash.
///
/// NOTE: the hash covers the settings' `Debug` form, which is stable for
/// one radstudy version but may change between versions; compare it within
/// one `coordinator_version`.
fn settings_hash(config: &StudyConfig) -> String {
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
