//! The rounds that build the study's final feature table, and their
//! checkpoints: the first extraction, the cohorts, the habitat rounds and
//! the extraction of every region. A resumed study restores the table
//! from `state/` instead ([`crate::checkpoint`]).

use std::collections::BTreeSet;
use std::path::Path;

use radstudy_proto::v1::{DescribeResponse, ExtractionSettings};
use tracing::{Instrument, error, info, info_span, warn};

use crate::checkpoint::{Checkpoints, ExtractionState, FeaturesState};
use crate::client::{CenterClient, CenterTable, ExclusionRecord};
use crate::config::StudyConfig;
use crate::extraction::{ExtractionResults, extraction_round};
use crate::habitat;
use crate::run::{CenterFailure, StudyError, require_development_center, split_cohorts};
use crate::split::Cohort;
use crate::table::StudyTable;

/// The final feature table and what the later rounds need with it.
pub(crate) struct FeatureStage {
    /// The centers' tables that `table` was assembled from.
    pub(crate) tables: Vec<(String, CenterTable)>,
    pub(crate) table: StudyTable,
    pub(crate) remote_validation: Vec<CenterClient>,
    pub(crate) exclusions: Vec<ExclusionRecord>,
    pub(crate) failures: Vec<CenterFailure>,
    pub(crate) notes: Vec<String>,
    pub(crate) extraction_round_id: String,
    pub(crate) habitat_regions: Option<(String, Vec<String>)>,
}

/// Runs the rounds that build the final feature table: the first
/// extraction (restored from its checkpoint when stored), the cohorts,
/// and with `[habitat] enabled` the habitat rounds and the extraction of
/// every region.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn feature_stage(
    config: &StudyConfig,
    out_dir: &Path,
    show_progress: bool,
    checkpoints: &Checkpoints,
    connected: &[(CenterClient, DescribeResponse)],
    handshake_failures: Vec<CenterFailure>,
    scores_only: &BTreeSet<String>,
    settings: &ExtractionSettings,
) -> Result<FeatureStage, StudyError> {
    let round_ids = checkpoints.round_ids();

    // Round 2: extraction, all centers at once.
    let first = match checkpoints.load_extraction()? {
        Some(stored) => {
            info!("first extraction round restored from the checkpoint");
            restore_extraction(connected, handshake_failures, stored)
        }
        None => {
            let mut extraction = extraction_round(
                config,
                connected,
                &round_ids.extraction,
                settings,
                scores_only,
                None,
                show_progress,
            )
            .await;
            let mut failures = handshake_failures;
            failures.append(&mut extraction.failures);
            extraction.failures = failures;
            checkpoints.save_extraction(&ExtractionState {
                tables: extraction.tables.clone(),
                remote_validation: centers_of(&extraction.remote_validation),
                exclusions: extraction.exclusions.clone(),
                failures: extraction.failures.clone(),
            })?;
            info!("checkpoint written: first extraction round");
            extraction
        }
    };
    let ExtractionResults {
        mut tables,
        mut remote_validation,
        mut exclusions,
        mut failures,
    } = first;
    require_development_center(config, &tables, &failures)?;

    // Round 3: one table, with cohorts.
    let mut table = StudyTable::assemble(&tables, &config.sequences)?;
    let cohorts = split_cohorts(config, &table);
    for (patient, cohort) in table.patients.iter_mut().zip(cohorts) {
        patient.cohort = cohort;
    }

    // Habitat rounds, then every region extracted again under a new round.
    let mut notes = Vec::new();
    let mut extraction_round_id = round_ids.extraction.clone();
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
        let habitat_round_ids = habitat::round::HabitatRoundIds {
            supervoxel: round_ids.supervoxel.clone(),
            apply: round_ids.habitat_apply.clone(),
        };
        let rounds = habitat::round::run_rounds(
            config,
            &config.habitat,
            &participants,
            &training,
            habitat_round_ids,
        )
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
                extraction_round_id = round_ids.region_extraction.clone();
                let regions = (outcome.apply_round_id.clone(), outcome.regions.clone());
                info!(round = %extraction_round_id, regions = ?regions.1, "habitat extraction round started");
                let extraction = extraction_round(
                    config,
                    &applied,
                    &extraction_round_id,
                    settings,
                    scores_only,
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
    Ok(FeatureStage {
        tables,
        table,
        remote_validation,
        exclusions,
        failures,
        notes,
        extraction_round_id,
        habitat_regions,
    })
}

/// Sends the final extraction round again, under its stored id, to the
/// centers whose later steps read it from the worker: scores-only centers,
/// and with `federated.logistic` every center with a table. A worker that
/// still keeps the round replays it, and a restarted one extracts it
/// again. The replies are not used, because the checkpoint stores them.
///
/// NOTE: a region extraction names the habitat apply round, which a
/// restarted worker no longer has. Then the replay fails, a warning is
/// logged, and the later step leaves the center out with its reason.
pub(crate) async fn replay_extraction(
    config: &StudyConfig,
    connected: &[(CenterClient, DescribeResponse)],
    stage: &FeatureStage,
    scores_only: &BTreeSet<String>,
    settings: &ExtractionSettings,
    show_progress: bool,
) {
    let needed: Vec<(CenterClient, DescribeResponse)> = connected
        .iter()
        .filter(|(client, _)| {
            let center = client.center();
            let scores_only_center = stage.remote_validation.iter().any(|r| r.center() == center);
            let federated_center =
                config.federated.logistic && stage.tables.iter().any(|(c, _)| c == center);
            scores_only_center || federated_center
        })
        .cloned()
        .collect();
    if needed.is_empty() {
        return;
    }

    info!(
        round = %stage.extraction_round_id,
        centers = needed.len(),
        "extraction round sent again for the steps that read it from the workers"
    );
    let habitat = stage
        .habitat_regions
        .as_ref()
        .map(|(round, regions)| (round.as_str(), regions.as_slice()));
    let replay = extraction_round(
        config,
        &needed,
        &stage.extraction_round_id,
        settings,
        scores_only,
        habitat,
        show_progress,
    )
    .await;
    for failure in replay.failures {
        warn!(
            center = %failure.center,
            reason = %failure.reason,
            "extraction round not replayed; the later steps at this center may fail"
        );
    }
}

/// Returns the center ids of `clients`.
fn centers_of(clients: &[CenterClient]) -> Vec<String> {
    clients.iter().map(|c| c.center().to_string()).collect()
}

/// Adds the failures of this run's handshake to the stored ones, except
/// for centers the stored list already names, so that a resumed study
/// lists each center once and in the order of the first run.
fn merge_failures(
    stored: Vec<CenterFailure>,
    handshake_failures: Vec<CenterFailure>,
) -> Vec<CenterFailure> {
    let mut failures = stored;
    for failure in handshake_failures {
        if !failures.iter().any(|f| f.center == failure.center) {
            failures.push(failure);
        }
    }
    failures
}

/// Rebuilds extraction results from a checkpoint. A scores-only center
/// that did not complete this run's handshake is left out with that
/// reason.
fn restore_extraction(
    connected: &[(CenterClient, DescribeResponse)],
    handshake_failures: Vec<CenterFailure>,
    stored: ExtractionState,
) -> ExtractionResults {
    let remote_validation = stored
        .remote_validation
        .iter()
        .filter_map(|center| {
            connected
                .iter()
                .find(|(client, _)| client.center() == center)
                .map(|(client, _)| client.clone())
        })
        .collect();
    ExtractionResults {
        tables: stored.tables,
        remote_validation,
        exclusions: stored.exclusions,
        failures: merge_failures(stored.failures, handshake_failures),
    }
}

/// Rebuilds the feature stage from its checkpoint: the table assembled
/// again from the stored center tables, with the stored cohorts.
pub(crate) fn restore_feature_stage(
    config: &StudyConfig,
    connected: &[(CenterClient, DescribeResponse)],
    handshake_failures: Vec<CenterFailure>,
    stored: FeaturesState,
) -> Result<FeatureStage, StudyError> {
    let extraction = restore_extraction(connected, handshake_failures, stored.extraction);
    let mut table = StudyTable::assemble(&extraction.tables, &config.sequences)?;
    let cohorts: std::collections::BTreeMap<(String, String), Cohort> = stored
        .cohorts
        .into_iter()
        .map(|(center, pseudonym, cohort)| ((center, pseudonym), cohort))
        .collect();
    let fallback = split_cohorts(config, &table);
    for (patient, fallback) in table.patients.iter_mut().zip(fallback) {
        patient.cohort = cohorts
            .get(&(patient.center.clone(), patient.pseudonym.clone()))
            .copied()
            .unwrap_or(fallback);
    }
    Ok(FeatureStage {
        tables: extraction.tables,
        table,
        remote_validation: extraction.remote_validation,
        exclusions: extraction.exclusions,
        failures: extraction.failures,
        notes: stored.notes,
        extraction_round_id: stored.extraction_round_id,
        habitat_regions: stored.habitat_regions,
    })
}

/// Writes the feature stage's checkpoint.
pub(crate) fn save_feature_stage(
    checkpoints: &Checkpoints,
    stage: &FeatureStage,
) -> Result<(), StudyError> {
    checkpoints.save_features(&FeaturesState {
        extraction: ExtractionState {
            tables: stage.tables.clone(),
            remote_validation: centers_of(&stage.remote_validation),
            exclusions: stage.exclusions.clone(),
            failures: stage.failures.clone(),
        },
        notes: stage.notes.clone(),
        cohorts: stage
            .table
            .patients
            .iter()
            .map(|p| (p.center.clone(), p.pseudonym.clone(), p.cohort))
            .collect(),
        habitat_regions: stage.habitat_regions.clone(),
        extraction_round_id: stage.extraction_round_id.clone(),
    })?;
    info!("checkpoint written: feature table");
    Ok(())
}
