//! End-to-end: bad input excludes a patient or a center with a named
//! reason, and the study still completes.

use std::path::Path;

use radstudy::config::CenterRole;
use radstudy::run::run_study;
use radstudy_e2e::{TestCenter, data_root, start_workers, sts_study};

/// Copies the STS files of `patients` into `root/sts` and writes a manifest.
fn copy_cohort(root: &Path, manifest: &Path, patients: &[&str]) -> anyhow::Result<()> {
    let outcomes = std::fs::read_to_string(data_root().join("sts/outcomes.csv"))?;
    let mut text = String::from("patient_id,label,MR_T1_image,MR_T1_mask,PET_image,PET_mask\n");
    for patient in patients {
        let label = outcomes
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{patient},")))
            .ok_or_else(|| anyhow::anyhow!("{patient} not in outcomes.csv"))?;
        let target = root.join("sts").join(patient);
        std::fs::create_dir_all(&target)?;
        for file in ["MR_T1_image", "MR_T1_mask", "PET_image", "PET_mask"] {
            let source = data_root()
                .join("sts")
                .join(patient)
                .join(format!("{file}.nii.gz"));
            if source.exists() {
                std::fs::copy(&source, target.join(format!("{file}.nii.gz")))?;
            }
        }
        text.push_str(&format!(
            "{patient},{label},sts/{patient}/MR_T1_image.nii.gz,sts/{patient}/MR_T1_mask.nii.gz,sts/{patient}/PET_image.nii.gz,sts/{patient}/PET_mask.nii.gz\n"
        ));
    }
    std::fs::write(manifest, text)?;
    Ok(())
}

/// 13 negative and 9 positive patients, so that training keeps at least 3
/// per class after the two MR exclusions of the first test.
const CENTER_A: [&str; 22] = [
    "STS_001", "STS_002", "STS_003", "STS_004", "STS_005", "STS_006", "STS_007", "STS_008",
    "STS_010", "STS_011", "STS_012", "STS_013", "STS_014", "STS_015", "STS_016", "STS_017",
    "STS_018", "STS_021", "STS_022", "STS_023", "STS_027", "STS_028",
];
const CENTER_B: [&str; 8] = [
    "STS_036", "STS_037", "STS_038", "STS_039", "STS_040", "STS_041", "STS_042", "STS_043",
];
/// Six patients without lung metastasis: an external center with a single
/// outcome class, which its policy does not let share a table.
const CENTER_C: [&str; 6] = [
    "STS_044", "STS_045", "STS_047", "STS_048", "STS_049", "STS_051",
];
/// Three patients, below the default min_patients = 5 of the site policy.
const CENTER_D: [&str; 3] = ["STS_019", "STS_020", "STS_024"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_missing_images_exclude_only_their_patient() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root_a = dir.path().join("site_a");
    let root_b = dir.path().join("site_b");
    copy_cohort(&root_a, &dir.path().join("manifest_a.csv"), &CENTER_A)?;
    copy_cohort(&root_b, &dir.path().join("manifest_b.csv"), &CENTER_B)?;
    let root_c = dir.path().join("site_c");
    let root_d = dir.path().join("site_d");
    copy_cohort(&root_c, &dir.path().join("manifest_c.csv"), &CENTER_C)?;
    copy_cohort(&root_d, &dir.path().join("manifest_d.csv"), &CENTER_D)?;

    // STS_003: MR image cut in half (a truncated gzip stream).
    let corrupt = root_a.join("sts/STS_003/MR_T1_image.nii.gz");
    let bytes = std::fs::read(&corrupt)?;
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2])?;
    // STS_005: MR image deleted.
    std::fs::remove_file(root_a.join("sts/STS_005/MR_T1_image.nii.gz"))?;

    let running = start_workers(
        dir.path(),
        &[
            TestCenter {
                id: "A".into(),
                role: CenterRole::Development,
                data_root: root_a,
                manifest: dir.path().join("manifest_a.csv"),
                share_feature_tables: true,
            },
            TestCenter {
                id: "B".into(),
                role: CenterRole::External,
                data_root: root_b,
                manifest: dir.path().join("manifest_b.csv"),
                share_feature_tables: true,
            },
            TestCenter {
                id: "C".into(),
                role: CenterRole::External,
                data_root: root_c,
                manifest: dir.path().join("manifest_c.csv"),
                share_feature_tables: true,
            },
            TestCenter {
                id: "D".into(),
                role: CenterRole::Development,
                data_root: root_d,
                manifest: dir.path().join("manifest_d.csv"),
                share_feature_tables: true,
            },
        ],
    )?;
    let study = sts_study(running.centers.clone())?;
    let outcome = run_study(&study, &dir.path().join("study"), false).await?;

    // The site policy releases no table with a single outcome class (C:
    // min_per_class = 1 by default, since such a table gives away every
    // label) and none about fewer than min_patients = 5 patients (D). Both
    // are left out with the policy's reason; the study goes on without them.
    let failed: Vec<(&str, &str)> = outcome
        .failed_centers
        .iter()
        .map(|f| (f.center.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, "C", "{failed:?}");
    assert!(
        failed[0]
            .1
            .contains("6 negative and 0 positive patients, fewer than min_per_class = 1"),
        "{failed:?}"
    );
    assert_eq!(failed[1].0, "D", "{failed:?}");
    assert!(
        failed[1]
            .1
            .contains("3 patients, fewer than min_patients = 5"),
        "{failed:?}"
    );
    let mut kinds: Vec<(&str, &str, &str)> = outcome
        .exclusions
        .iter()
        .map(|e| (e.sequence.as_str(), e.kind.as_str(), e.field.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("MR_T1", "file_invalid", "MR_T1_image"),
            ("MR_T1", "file_missing", "MR_T1_image")
        ],
        "{:?}",
        outcome.exclusions
    );
    let invalid = outcome
        .exclusions
        .iter()
        .find(|e| e.kind == "file_invalid")
        .expect("checked above");
    assert!(
        invalid.reason.starts_with("invalid NIfTI file"),
        "{}",
        invalid.reason
    );

    // Both patients keep their PET rows: 30 patients in the table, and the
    // MR model uses 28 of them.
    assert_eq!(outcome.n_patients, 30);
    let mr_total: usize = outcome
        .modelling
        .metrics
        .iter()
        .filter(|row| row.model == "MR_T1_whole")
        .map(|row| row.n)
        .sum();
    assert_eq!(mr_total, 28, "skipped: {:?}", outcome.modelling.skipped);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_refusing_tables_is_left_out_when_study_needs_tables() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root_a = dir.path().join("site_a");
    let root_b = dir.path().join("site_b");
    copy_cohort(&root_a, &dir.path().join("manifest_a.csv"), &CENTER_A)?;
    copy_cohort(&root_b, &dir.path().join("manifest_b.csv"), &CENTER_B)?;

    let running = start_workers(
        dir.path(),
        &[
            TestCenter {
                id: "A".into(),
                role: CenterRole::Development,
                data_root: root_a,
                manifest: dir.path().join("manifest_a.csv"),
                share_feature_tables: true,
            },
            TestCenter {
                id: "B".into(),
                role: CenterRole::External,
                data_root: root_b,
                manifest: dir.path().join("manifest_b.csv"),
                share_feature_tables: false,
            },
        ],
    )?;
    let mut study = sts_study(running.centers.clone())?;
    // With the default `auto`, B would validate by scores only
    // (tests/tests/aggregate_rounds.rs); `tables` requires its table.
    study.validation.external = radstudy::scores_only::ExternalMode::Tables;
    let outcome = run_study(&study, &dir.path().join("study"), false).await?;

    assert_eq!(outcome.failed_centers.len(), 1);
    assert_eq!(outcome.failed_centers[0].center, "B");
    assert!(
        outcome.failed_centers[0]
            .reason
            .contains("share_feature_tables = false"),
        "{}",
        outcome.failed_centers[0].reason
    );
    assert!(
        outcome
            .modelling
            .metrics
            .iter()
            .all(|row| row.cohort != "external_validation")
    );
    assert!(
        outcome
            .modelling
            .metrics
            .iter()
            .any(|row| row.cohort == "training")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_development_center_stops_study_with_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut study = radstudy::config::StudyConfig::load(
        &radstudy_e2e::workspace_root().join("examples/sts/study.toml"),
    )?;
    // Port 9 on loopback (discard) has no radstudy worker; the connection is
    // refused at once.
    for center in &mut study.centers {
        center.endpoint = "http://127.0.0.1:9".into();
    }
    let error = run_study(&study, &dir.path().join("study"), false)
        .await
        .expect_err("no center is reachable");
    let message = error.to_string();
    assert!(message.contains("no development center"), "{message}");
    assert!(message.contains("cannot connect"), "{message}");
    Ok(())
}
