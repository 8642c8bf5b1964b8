//! End-to-end: a study whose `[features]` names a PyRadiomics parameter file (LoG σ = 2 mm
//! and the coif1 wavelet, first-order features) runs over loopback gRPC with two real
//! worker processes on the STS PET images, and its feature table equals
//! `radstudy-worker extract --param` on the same cases.

use std::collections::HashMap;
use std::process::Command;

use radstudy::config::{CenterRole, StudyConfig};
use radstudy::run::run_study;
use radstudy_e2e::{TestCenter, data_root, start_workers, workspace_binary, workspace_root};
use radstudy_worker::pseudonym::PseudonymKey;

/// The parameter file of the study. `preCrop` runs the filters on the ROI's box, which
/// keeps the round fast; the CLI gets the same file, so it crops the same way.
const PARAMS: &str = "\
imageType:
  Original: {}
  LoG: {sigma: [2.0]}
  Wavelet: {}
featureClass:
  firstorder:
setting:
  binWidth: 0.5
  preCrop: true
";

/// PET only, no ICC filter and no habitats: the extraction round and the models on its
/// table. The endpoints are placeholders that the test replaces with the workers'.
const STUDY: &str = r#"
study_id = "sts-params"
seed = 42
sequences = ["PET"]

[[centers]]
id = "A"
endpoint = "http://127.0.0.1:1"
role = "development"

[[centers]]
id = "B"
endpoint = "http://127.0.0.1:2"
role = "external"

[features]
params = "params/pet.yaml"

[icc]
enabled = false
"#;

/// Reads a CSV file into its header and rows.
fn read_csv(path: &std::path::Path) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} is empty", path.display()))?
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    Ok((header, rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_study_columns_match_cli_extraction() -> anyhow::Result<()> {
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
    std::fs::create_dir(dir.path().join("params"))?;
    let params = dir.path().join("params/pet.yaml");
    std::fs::write(&params, PARAMS)?;
    let study_file = dir.path().join("study.toml");
    std::fs::write(&study_file, STUDY)?;
    let mut study = StudyConfig::load(&study_file)?;
    study.centers = running.centers.clone();

    let out = dir.path().join("study");
    let outcome = run_study(&study, &out, false).await?;
    assert!(
        outcome.failed_centers.is_empty(),
        "{:?}",
        outcome.failed_centers
    );
    // Every STS patient has a PET image (data set README).
    assert_eq!(outcome.n_patients, 51);
    assert!(outcome.exclusions.is_empty(), "{:?}", outcome.exclusions);

    let (header, rows) = read_csv(&out.join("features.csv"))?;
    for column in [
        "PET_whole_original_firstorder_Mean",
        "PET_whole_log-sigma-2-0-mm-3D_firstorder_Mean",
        "PET_whole_wavelet-LLH_firstorder_Mean",
        "PET_whole_wavelet-HHH_firstorder_Entropy",
    ] {
        assert!(
            header.iter().any(|name| name == column),
            "{column} missing from {header:?}"
        );
    }
    // Original, one LoG image and 8 wavelet sub-bands, 18 first-order features each.
    let feature_columns: Vec<&String> = header
        .iter()
        .filter(|name| name.starts_with("PET_whole_"))
        .collect();
    assert_eq!(feature_columns.len(), 10 * 18, "{feature_columns:?}");

    // The same file through the CLI on two patients of center A.
    let key = PseudonymKey::load(&dir.path().join("A.key"))?;
    let pseudonym_column = header
        .iter()
        .position(|name| name == "pseudonym")
        .ok_or_else(|| anyhow::anyhow!("no pseudonym column in {header:?}"))?;
    for patient in ["STS_001", "STS_002"] {
        let cli_out = dir.path().join(format!("{patient}.csv"));
        let patient_dir = data_root().join("sts").join(patient);
        let output = Command::new(workspace_binary("radstudy-worker")?)
            .arg("extract")
            .arg(patient_dir.join("PET_image.nii.gz"))
            .arg(patient_dir.join("PET_mask.nii.gz"))
            .arg("--param")
            .arg(&params)
            .arg("--out")
            .arg(&cli_out)
            .output()?;
        assert!(
            output.status.success(),
            "extract failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (cli_header, cli_rows) = read_csv(&cli_out)?;
        assert_eq!(cli_rows.len(), 1, "one case");
        let cli: HashMap<&str, f64> = cli_header
            .iter()
            .zip(&cli_rows[0])
            .skip(1)
            .map(|(name, value)| Ok((name.as_str(), value.parse::<f64>()?)))
            .collect::<anyhow::Result<_>>()?;
        assert_eq!(cli.len(), feature_columns.len(), "{cli_header:?}");

        let pseudonym = key.pseudonym("A", patient);
        let row = rows
            .iter()
            .find(|row| row[pseudonym_column] == pseudonym)
            .ok_or_else(|| anyhow::anyhow!("{patient} ({pseudonym}) is not in features.csv"))?;
        for (index, name) in header.iter().enumerate() {
            let Some(feature) = name.strip_prefix("PET_whole_") else {
                continue;
            };
            let expected = cli[feature];
            let found: f64 = row[index].parse()?;
            // The worker and the CLI run the same code on the same inputs, so the values
            // agree to the last bit, and both CSV files keep every bit of an f64.
            assert_eq!(
                found.to_bits(),
                expected.to_bits(),
                "{patient} {feature}: study {found} against CLI {expected}"
            );
        }
    }
    Ok(())
}
