//! The perturbation round over gRPC: one more extraction round per center
//! with `perturbation` set, then the center's ICC sums.

use radstudy_proto::v1::{
    DescribeResponse, ExtractRequest, ExtractionSettings, PerturbationSettings,
};
use tracing::{Instrument, info, info_span, warn};

use super::{IccReport, merge_sums, select_patients};
use crate::client::{CenterClient, FeatureIcc};
use crate::config::StudyConfig;
use crate::table::StudyTable;

/// Runs the reproducibility filter's round at every center that has
/// drawn training patients and pools their sums. `habitat` names the
/// `ApplyHabitatModel` round and the regions of the study's extraction.
/// The perturbed copies then rerun the habitat chain with the frozen model,
/// and their regions match the table's columns. `None` extracts the whole
/// lesion. `round_id` names the perturbation round; a resumed study sends
/// the id of its first run again.
///
/// A center that fails or rejects the request is left out with its
/// reason, and the ICC is computed over the others. When no center returns
/// sums, every column passes unfiltered and the report gives the reason.
pub async fn run_round(
    config: &StudyConfig,
    connected: &[(CenterClient, DescribeResponse)],
    table: &StudyTable,
    settings: &ExtractionSettings,
    habitat: Option<(&str, &[String])>,
    round_id: &str,
) -> IccReport {
    let icc = &config.icc;
    if !icc.enabled {
        return IccReport::not_run(
            icc,
            &config.sequences,
            "disabled by [icc] enabled = false".into(),
        );
    }

    let min_patients = |center: &str| {
        connected
            .iter()
            .find(|(client, _)| client.center() == center)
            .and_then(|(_, description)| description.policy.as_ref())
            .map(|policy| policy.min_patients as usize)
            .unwrap_or(usize::MAX)
    };
    let draw = select_patients(table, icc, config.seed, min_patients);
    let (shares, left_out) = (draw.shares, draw.left_out);
    let mut failed = Vec::new();
    let round_id = round_id.to_string();
    info!(
        round = %round_id,
        centers = shares.len(),
        patients = shares.values().map(Vec::len).sum::<usize>(),
        copies = icc.repeats,
        "perturbation round started"
    );

    let mut tasks = Vec::new();
    for (center, pseudonyms) in &shares {
        let Some((client, _)) = connected.iter().find(|(c, _)| c.center() == center) else {
            failed.push((center.clone(), "not connected".into()));
            continue;
        };
        let request = ExtractRequest {
            study_id: config.study_id.clone(),
            round_id: round_id.clone(),
            sequences: config.sequences.clone(),
            settings: Some(settings.clone()),
            perturbation: Some(PerturbationSettings {
                repeats: icc.repeats,
                max_angle_deg: icc.max_angle_deg,
                max_volume_change_mm: icc.max_volume_change_mm,
                noise: icc.noise,
                seed: config.seed,
            }),
            pseudonyms: pseudonyms.clone(),
            habitat_round_id: habitat
                .map(|(round, _)| round.to_string())
                .unwrap_or_default(),
            regions: habitat
                .map(|(_, regions)| regions.to_vec())
                .unwrap_or_default(),
        };
        let mut client = client.clone();
        let study_id = config.study_id.clone();
        let round = round_id.clone();
        let timeout = config.round_timeout();
        let span = info_span!("center", center = %center);
        tasks.push((
            center.clone(),
            tokio::spawn(
                async move {
                    client.extract(request, timeout, |_, _| {}).await?;
                    client.fetch_reproducibility_sums(&study_id, &round).await
                }
                .instrument(span),
            ),
        ));
    }

    let mut replies: Vec<(String, Vec<FeatureIcc>)> = Vec::new();
    for (center, task) in tasks {
        match task.await {
            Ok(Ok(reply)) => {
                info!(
                    center = %center,
                    features = reply.features.len(),
                    excluded = reply.n_excluded,
                    "reproducibility sums received"
                );
                replies.push((center, reply.features));
            }
            Ok(Err(error)) => {
                warn!(center = %center, %error, "center left out of the ICC filter");
                failed.push((center, error.to_string()));
            }
            Err(join_error) => failed.push((center, format!("internal error: {join_error}"))),
        }
    }

    if replies.is_empty() {
        let mut report = IccReport::not_run(
            icc,
            &config.sequences,
            "no center returned reproducibility sums; every feature passes unfiltered".into(),
        );
        report.left_out = left_out;
        report.failed = failed;
        return report;
    }
    match merge_sums(&replies, icc, &config.sequences) {
        Ok(mut report) => {
            report.left_out = left_out;
            report.failed = failed;
            report
        }
        Err(reason) => {
            let mut report = IccReport::not_run(icc, &config.sequences, reason);
            report.left_out = left_out;
            report.failed = failed;
            report
        }
    }
}
