//! One extraction round at every center at once: the streamed `Extract`
//! call with per-patient progress, then the feature table of each center
//! that shares it.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use radstudy_proto::v1::{DescribeResponse, ExtractRequest, ExtractionSettings};
use tracing::{Instrument, info, info_span, warn};

use crate::client::{CenterClient, CenterTable, ExclusionRecord};
use crate::config::StudyConfig;
use crate::run::CenterFailure;

/// Results of one extraction round over the centers.
pub struct ExtractionResults {
    /// Feature tables of the centers that share them.
    pub tables: Vec<(String, CenterTable)>,
    /// Centers that validate by scores only.
    pub remote_validation: Vec<CenterClient>,
    /// Patients excluded, per sequence.
    pub exclusions: Vec<ExclusionRecord>,
    /// Centers that failed the round.
    pub failures: Vec<CenterFailure>,
}

/// Runs one extraction round at every center of `connected` at once and
/// fetches the tables of the centers that share them. `habitat` names the
/// apply round and the regions to extract.
pub async fn extraction_round(
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
    if outcome.summary.n_extracted == 0
        && let Some(reason) = every_patient_excluded(&outcome.exclusions)
    {
        return Err((reason, outcome.exclusions));
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

/// Describes a round in which the center excluded every patient, with the
/// most frequent exclusion kind and one of its reasons. The center's failure
/// then names the cause, such as a wrong `features.label` or data root, and
/// not the site policy's later refusal of an empty table. Returns `None`
/// when nothing was excluded.
fn every_patient_excluded(exclusions: &[ExclusionRecord]) -> Option<String> {
    let mut counts = std::collections::BTreeMap::<&str, (usize, &ExclusionRecord)>::new();
    for exclusion in exclusions {
        counts.entry(&exclusion.kind).or_insert((0, exclusion)).0 += 1;
    }
    // Ties go to the kind that sorts first, so the message is deterministic.
    let (kind, (count, example)) = counts
        .iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(a.0)))?;
    Some(format!(
        "the extraction round excluded every patient ({} patient-sequence exclusions; \
         {count} of kind {kind}, such as {} {}: {}); the `patient excluded` warnings list \
         each one, and `radstudy-worker check` at the site lists them by manifest line",
        exclusions.len(),
        example.pseudonym,
        example.sequence,
        example.reason
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclusion(pseudonym: &str, kind: &str, reason: &str) -> ExclusionRecord {
        ExclusionRecord {
            center: "A".into(),
            pseudonym: pseudonym.into(),
            sequence: "PET".into(),
            kind: kind.into(),
            field: "PET_mask".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn every_patient_excluded_names_main_kind() {
        let exclusions = [
            exclusion("A-1", "file_missing", "file not found"),
            exclusion("A-2", "mask_invalid", "label 7 not found in mask"),
            exclusion("A-3", "mask_invalid", "label 7 not found in mask"),
        ];
        let reason = every_patient_excluded(&exclusions).expect("three exclusions");
        assert!(reason.contains("3 patient-sequence exclusions"), "{reason}");
        assert!(reason.contains("2 of kind mask_invalid"), "{reason}");
        assert!(
            reason.contains("A-2 PET: label 7 not found in mask"),
            "{reason}"
        );
    }

    #[test]
    fn every_patient_excluded_tie_takes_first_kind() {
        let exclusions = [
            exclusion("A-1", "mask_invalid", "label 7 not found in mask"),
            exclusion("A-2", "file_missing", "file not found"),
        ];
        let reason = every_patient_excluded(&exclusions).expect("two exclusions");
        assert!(reason.contains("1 of kind file_missing"), "{reason}");
    }

    #[test]
    fn every_patient_excluded_none_without_exclusions() {
        assert_eq!(every_patient_excluded(&[]), None);
    }
}
