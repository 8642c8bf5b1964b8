//! End-to-end tests of the aggregate calls of contract 1.1 over real gRPC
//! with real worker processes on the STS cohort: reproducibility (ICC)
//! sums, federated logistic regression and scores-only external
//! validation. Each compares what crossed the network as aggregates with
//! the same quantity computed from pooled data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use radstudy::client::CenterClient;
use radstudy::config::{CenterRole, StudyConfig};
use radstudy::model::MetricsRow;
use radstudy::run::run_study;
use radstudy::stats::IccSums;
use radstudy_e2e::{TestCenter, data_root, start_workers, sts_study, workspace_root};
use radstudy_proto::v1::{ExtractRequest, ExtractionSettings, PerturbationSettings};

const CALL_TIMEOUT: Duration = Duration::from_secs(120);

// Round ids are UUIDs; fixed ones keep the test's rounds apart.
const ROUND_PLAIN: &str = "00000000-0000-4000-8000-000000000001";
const ROUND_FIRST: &str = "00000000-0000-4000-8000-000000000002";
const ROUND_SECOND: &str = "00000000-0000-4000-8000-000000000003";
const ROUND_UNION: &str = "00000000-0000-4000-8000-000000000004";
const ROUND_FEW: &str = "00000000-0000-4000-8000-000000000005";

fn settings() -> ExtractionSettings {
    ExtractionSettings {
        feature_classes: vec!["shape".into(), "firstorder".into()],
        bin_width: 25.0,
        label: 1,
        parameters_json: String::new(),
    }
}

fn perturbed_round(round_id: &str, pseudonyms: &[String]) -> ExtractRequest {
    ExtractRequest {
        study_id: "e2e-icc".into(),
        round_id: round_id.into(),
        sequences: vec!["MR_T1".into()],
        settings: Some(settings()),
        perturbation: Some(PerturbationSettings {
            repeats: 3,
            max_angle_deg: 10.0,
            max_volume_change_mm: 1.0,
            noise: true,
            seed: 42,
        }),
        pseudonyms: pseudonyms.to_vec(),
        ..Default::default()
    }
}

/// Sums per feature name of one perturbation round over `pseudonyms`.
async fn icc_sums(
    client: &mut CenterClient,
    round_id: &str,
    pseudonyms: &[String],
) -> anyhow::Result<BTreeMap<String, IccSums>> {
    client
        .extract(
            perturbed_round(round_id, pseudonyms),
            CALL_TIMEOUT,
            |_, _| {},
        )
        .await?;
    let reply = client
        .fetch_reproducibility_sums("e2e-icc", round_id)
        .await?;
    assert_eq!(reply.repeats, 3);
    assert_eq!(reply.n_excluded, 0, "every copy of these patients is valid");
    Ok(reply
        .features
        .into_iter()
        .map(|entry| (entry.feature, entry.sums))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icc_sums_merge_to_union_sums() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let running = start_workers(
        dir.path(),
        &[TestCenter {
            id: "A".into(),
            role: CenterRole::Development,
            data_root: data_root(),
            manifest: workspace_root().join("examples/sts/manifest_a.csv"),
            share_feature_tables: true,
        }],
    )?;
    let endpoint = &running.centers[0].endpoint;
    let mut client = CenterClient::connect("A", endpoint, CALL_TIMEOUT).await?;

    // Learn the pseudonyms of patients with an MR image from a plain round.
    client
        .extract(
            ExtractRequest {
                study_id: "e2e-icc".into(),
                round_id: ROUND_PLAIN.into(),
                sequences: vec!["MR_T1".into()],
                settings: Some(settings()),
                perturbation: None,
                pseudonyms: Vec::new(),
                ..Default::default()
            },
            CALL_TIMEOUT,
            |_, _| {},
        )
        .await?;
    let table = client.fetch_feature_table("e2e-icc", ROUND_PLAIN).await?;
    let mut pseudonyms: Vec<String> = table.rows.iter().map(|r| r.pseudonym.clone()).collect();
    pseudonyms.sort();
    pseudonyms.truncate(12);
    let (first, second) = pseudonyms.split_at(6);

    let first_sums = icc_sums(&mut client, ROUND_FIRST, first).await?;
    let second_sums = icc_sums(&mut client, ROUND_SECOND, second).await?;
    let union_sums = icc_sums(&mut client, ROUND_UNION, &pseudonyms).await?;
    assert_eq!(first_sums.len(), union_sums.len());

    let mut lowest = f64::INFINITY;
    for (feature, union) in &union_sums {
        let mut merged = first_sums[feature].clone();
        merged.merge(&second_sums[feature])?;
        assert_eq!(merged.n, 12, "{feature}");
        let (merged, union) = (merged.icc()?, union.icc()?);
        // The copies of a patient do not depend on which round computes
        // them (seeded by pseudonym), so the two differ by summation order
        // and the shift conversion of the merge: far below 1e-9 for ICCs
        // in [-1, 1].
        for (a, b) in [
            (merged.icc1_1, union.icc1_1),
            (merged.icc2_1, union.icc2_1),
            (merged.icc3_1, union.icc3_1),
        ] {
            assert!((a - b).abs() <= 1e-9, "{feature}: {a} against {b}");
        }
        lowest = lowest.min(union.icc1_1);
    }
    // The copies really differ: identical copies would give ICC(1,1) = 1
    // for every feature. Whole-tumour shape and first-order features vary
    // far more between patients than under these small perturbations, so
    // most are close to 1, but not all.
    assert!(
        lowest < 0.99,
        "lowest ICC(1,1) {lowest}: the copies look identical"
    );

    // Five patients is the example policy's minimum: four are refused.
    let few = &pseudonyms[..4];
    client
        .extract(perturbed_round(ROUND_FEW, few), CALL_TIMEOUT, |_, _| {})
        .await?;
    let refused = client
        .fetch_reproducibility_sums("e2e-icc", ROUND_FEW)
        .await
        .expect_err("fewer patients than min_patients");
    assert!(refused.to_string().contains("min_patients"), "{refused}");
    Ok(())
}

/// Writes center A's manifest split in two: rows 1 to 17 and 18 to 35.
fn split_manifest(dir: &Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let text = std::fs::read_to_string(workspace_root().join("examples/sts/manifest_a.csv"))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.filter(|line| !line.trim().is_empty()).collect();
    let (first, second) = rows.split_at(17);
    let write = |name: &str, part: &[&str]| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, format!("{header}\n{}\n", part.join("\n")))?;
        Ok(path)
    };
    Ok((
        write("manifest_a1.csv", first)?,
        write("manifest_a2.csv", second)?,
    ))
}

fn external_rows(metrics: &[MetricsRow]) -> BTreeMap<String, MetricsRow> {
    metrics
        .iter()
        .filter(|row| row.cohort == "external_validation")
        .map(|row| (row.model.clone(), row.clone()))
        .collect()
}

fn study(centers: Vec<radstudy::config::CenterConfig>) -> anyhow::Result<StudyConfig> {
    let mut study = sts_study(centers)?;
    // The ICC filter has its own test above; here it would only add time.
    study.icc.enabled = false;
    // Habitat regions can be missing for a patient; the coordinator imputes
    // them, but workers scoring or stepping a model skip such patients, so
    // pooled and aggregated fits would differ by design. The comparison
    // here is on whole-tumour models.
    study.habitat.enabled = false;
    study.model.bootstrap_replicates = 0;
    Ok(study)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_only_and_federated_match_pooled() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (manifest_a1, manifest_a2) = split_manifest(dir.path())?;
    let center = |id: &str, role, manifest: &Path, share| TestCenter {
        id: id.into(),
        role,
        data_root: data_root(),
        manifest: manifest.to_path_buf(),
        share_feature_tables: share,
    };
    let manifest_b = workspace_root().join("examples/sts/manifest_b.csv");
    let shared_dir = dir.path().join("shared");
    let kept_dir = dir.path().join("kept");
    std::fs::create_dir_all(&shared_dir)?;
    std::fs::create_dir_all(&kept_dir)?;
    let development = start_workers(
        dir.path(),
        &[
            center("A1", CenterRole::Development, &manifest_a1, true),
            center("A2", CenterRole::Development, &manifest_a2, true),
        ],
    )?;
    let b_shares = start_workers(
        &shared_dir,
        &[center("B", CenterRole::External, &manifest_b, true)],
    )?;
    let b_keeps = start_workers(
        &kept_dir,
        &[center("B", CenterRole::External, &manifest_b, false)],
    )?;

    // Reference: B shares its table and is validated from per-patient scores.
    let mut centers = development.centers.clone();
    centers.extend(b_shares.centers.clone());
    let reference_out = dir.path().join("reference");
    let reference = run_study(&study(centers)?, &reference_out, false).await?;
    assert!(
        reference.failed_centers.is_empty(),
        "{:?}",
        reference.failed_centers
    );

    // B keeps its table: scores only; and every model is also refitted by
    // federated Newton steps over A1 and A2.
    let mut centers = development.centers.clone();
    centers.extend(b_keeps.centers.clone());
    let mut config = study(centers)?;
    config.federated.logistic = true;
    let federated_out = dir.path().join("federated");
    let outcome = run_study(&config, &federated_out, false).await?;
    assert!(
        outcome.failed_centers.is_empty(),
        "{:?}",
        outcome.failed_centers
    );

    // The models are fitted on A1 and A2 alone, so they are the same in
    // both runs, and the external validation must be too.
    let expected = external_rows(&reference.modelling.metrics);
    let found = external_rows(&outcome.modelling.metrics);
    assert!(!expected.is_empty());
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        found.keys().collect::<Vec<_>>()
    );
    for (model, want) in &expected {
        let got = &found[model];
        assert_eq!(
            (got.n, got.n_positive),
            (want.n, want.n_positive),
            "{model}"
        );
        // The AUC is the same fraction of integer counts both ways.
        assert_eq!(got.auc, want.auc, "{model}");
        // Sensitivity and specificity are the same counts at the same
        // frozen cut-off.
        assert_eq!(got.sensitivity, want.sensitivity, "{model}");
        assert_eq!(got.specificity, want.specificity, "{model}");
        assert_eq!(got.threshold, want.threshold, "{model}");
        // The DeLong variance sums the same placements grouped by score:
        // summation order only.
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-12,
            (a, b) => a == b,
        };
        assert!(close(got.auc_ci_low, want.auc_ci_low), "{model}");
        assert!(close(got.auc_ci_high, want.auc_ci_high), "{model}");
    }

    // No per-patient score of B reached the study directory.
    let predictions = std::fs::read_to_string(federated_out.join("predictions.csv"))?;
    assert!(
        !predictions.contains(",B,"),
        "B's patients must not be listed"
    );
    let reference_predictions = std::fs::read_to_string(reference_out.join("predictions.csv"))?;
    assert!(reference_predictions.contains(",B,"));

    // Federated Newton steps over A1 and A2 give the pooled Newton fit.
    let federated: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        federated_out.join("federated.json"),
    )?)?;
    let fits = federated["fits"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        fits.len(),
        outcome.modelling.models.len(),
        "skipped: {}",
        federated["skipped"]
    );
    for fit in &fits {
        assert_eq!(fit["converged"], true, "{fit}");
        let centers = fit["patients_per_center"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            centers.contains_key("A1") && centers.contains_key("A2"),
            "{fit}"
        );
        // The same Newton iterates from sums added per center instead of per
        // patient: coefficients of order 1 agree to summation order.
        let pooled = fit["max_difference_from_pooled_newton"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(pooled <= 1e-10, "{fit}");
        // The deployed model was fitted by L-BFGS (linfa-logistic) to its
        // own gradient tolerance; on STS it agrees to about 3e-9.
        let deployed = fit["max_difference_from_deployed"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(deployed <= 1e-6, "{fit}");
    }
    Ok(())
}
