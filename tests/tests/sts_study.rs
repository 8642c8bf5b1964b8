//! End-to-end: two real worker processes serve the soft-tissue-sarcoma
//! cohort, and a coordinator runs the example study over loopback gRPC.

use radstudy::config::CenterRole;
use radstudy::model::MetricsRow;
use radstudy::run::run_study;
use radstudy_e2e::{TestCenter, data_root, start_workers, sts_study, workspace_root};

/// STS patients with an MR image: 51 in the collection, of which STS_009
/// and STS_020 lack the MR image (data set README).
const STS_PATIENTS_WITH_MR: usize = 49;

fn rows<'a>(metrics: &'a [MetricsRow], model: &str) -> Vec<&'a MetricsRow> {
    metrics.iter().filter(|row| row.model == model).collect()
}

fn count(metrics: &[MetricsRow], model: &str, cohort: &str) -> usize {
    rows(metrics, model)
        .iter()
        .filter(|r| r.cohort == cohort)
        .map(|r| r.n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_study_two_centers_end_to_end() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let examples = workspace_root().join("examples/sts");
    let running = start_workers(
        dir.path(),
        &[
            TestCenter {
                id: "A".into(),
                role: CenterRole::Development,
                data_root: data_root(),
                manifest: examples.join("manifest_a.csv"),
                share_feature_tables: true,
            },
            TestCenter {
                id: "B".into(),
                role: CenterRole::External,
                data_root: data_root(),
                manifest: examples.join("manifest_b.csv"),
                share_feature_tables: true,
            },
        ],
    )?;
    let study = sts_study(running.centers.clone())?;
    let out = dir.path().join("study");
    let outcome = run_study(&study, &out, false).await?;

    assert!(
        outcome.failed_centers.is_empty(),
        "{:?}",
        outcome.failed_centers
    );
    // 51 patients have a PET image, so all 51 are in the feature table.
    assert_eq!(outcome.n_patients, 51);

    // The two patients without an MR image are excluded for MR_T1 only,
    // with the reason named.
    let missing_mr: Vec<_> = outcome
        .exclusions
        .iter()
        .filter(|e| e.sequence == "MR_T1" && e.kind == "file_missing")
        .collect();
    assert_eq!(missing_mr.len(), 2, "{:?}", outcome.exclusions);
    assert!(
        missing_mr
            .iter()
            .all(|e| e.field == "MR_T1_image" && e.reason.starts_with("file not found; check"))
    );
    assert!(
        missing_mr
            .iter()
            .all(|e| e.center == "A" && e.pseudonym.starts_with("A-"))
    );
    assert_eq!(
        outcome.exclusions.len(),
        2,
        "no other exclusion expected: {:?}",
        outcome.exclusions
    );

    // The example turns habitats on, so every sequence has a model per
    // region: the whole tumour and each habitat of its population model.
    let habitats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("habitats.json"))?)?;
    let metrics = &outcome.modelling.metrics;
    let chosen = outcome
        .modelling
        .region_selection
        .as_ref()
        .and_then(|selection| selection.chosen.clone())
        .expect("a best region is chosen among the fitted single models");
    let fusion = format!("fusion_{chosen}");

    // Split: center A (35 patients, 33 with MR) into training and internal
    // validation; center B (16 patients) is external.
    for model in ["MR_T1_whole", fusion.as_str()] {
        let total: usize = rows(metrics, model).iter().map(|r| r.n).sum();
        assert_eq!(total, STS_PATIENTS_WITH_MR, "{model}");
        assert_eq!(count(metrics, model, "external_validation"), 16, "{model}");
    }
    assert_eq!(
        count(metrics, "PET_whole", "training")
            + count(metrics, "PET_whole", "internal_validation"),
        35
    );
    // Stratified 70%: round(0.7 x 22 negatives) + round(0.7 x 13 positives)
    // = 15 + 9 training patients at center A for PET, which every A patient has.
    assert_eq!(count(metrics, "PET_whole", "training"), 24);
    let pet_training = rows(metrics, "PET_whole")
        .into_iter()
        .find(|r| r.cohort == "training");
    assert_eq!(pet_training.map(|r| r.n_positive), Some(9));

    // Every region model has the same patients as the whole-tumour model of
    // its sequence, because a missing region is imputed, not dropped.
    let model_names: std::collections::BTreeSet<&str> =
        metrics.iter().map(|r| r.model.as_str()).collect();
    for model in &model_names {
        assert_eq!(
            rows(metrics, model).len(),
            3,
            "{model}: training, internal and external rows"
        );
        let sequence_whole = if model.starts_with("PET_") {
            "PET_whole"
        } else {
            "MR_T1_whole"
        };
        let total: usize = rows(metrics, model).iter().map(|r| r.n).sum();
        let whole: usize = rows(metrics, sequence_whole).iter().map(|r| r.n).sum();
        assert_eq!(total, whole, "{model} against {sequence_whole}");
    }
    assert!(model_names.contains("MR_T1_inner"), "{model_names:?}");
    assert!(model_names.contains("PET_inner"), "{model_names:?}");
    assert!(
        habitats.to_string().contains("\"inner\"") && habitats.to_string().contains("\"marginal\""),
        "habitats.json names the inner and marginal habitats"
    );
    assert!(out.join("habitat_regions.csv").is_file());

    for row in metrics {
        let (auc, low, high) = (
            row.auc.expect("every cohort has both classes"),
            row.auc_ci_low.expect("CI"),
            row.auc_ci_high.expect("CI"),
        );
        assert!((0.0..=1.0).contains(&auc), "{row:?}");
        assert!(low <= auc, "{row:?}");
        assert!(auc <= high, "{row:?}");
        assert!((0.0..=1.0).contains(&row.threshold), "{row:?}");
    }

    // Files of the study directory.
    for file in [
        "features.parquet",
        "features.csv",
        "metrics.csv",
        "exclusions.csv",
        "models.json",
        "provenance.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let header = std::fs::read_to_string(out.join("metrics.csv"))?;
    assert_eq!(
        header.lines().next(),
        Some(
            "model,cohort,n,n_positive,auc,auc_ci_low,auc_ci_high,sensitivity,specificity,threshold"
        )
    );
    let features = std::fs::read_to_string(out.join("features.csv"))?;
    assert_eq!(features.lines().count(), 1 + 51);
    assert!(
        !features.contains("STS_"),
        "local patient ids must not reach the study directory"
    );
    Ok(())
}
