use super::*;
use radstudy_proto::v1::FeatureRow;

fn study(seed: u64) -> StudyConfig {
    let text = format!(
        "study_id = \"s\"\nseed = {seed}\nsequences = [\"T1\"]\n\
         [[centers]]\nid = \"A\"\nendpoint = \"http://127.0.0.1:1\"\nrole = \"development\"\n"
    );
    StudyConfig::parse(&text, Path::new("study.toml")).expect("valid study")
}

fn extraction() -> ExtractionState {
    // Values chosen to need all 17 significant digits, plus a
    // subnormal, which a decimal round trip could alter.
    let values = vec![0.1 + 0.2, 1.0 / 3.0, f64::MIN_POSITIVE / 3.0, -0.0];
    ExtractionState {
        tables: vec![(
            "A".into(),
            CenterTable {
                feature_names: vec!["a".into(), "b".into(), "c".into(), "d".into()],
                rows: vec![FeatureRow {
                    pseudonym: "A-1".into(),
                    label: 1,
                    sequence: "T1".into(),
                    region: "whole".into(),
                    values,
                }],
            },
        )],
        remote_validation: vec!["B".into()],
        exclusions: Vec::new(),
        failures: vec![CenterFailure {
            center: "C".into(),
            reason: "Describe timed out".into(),
        }],
    }
}

#[test]
fn extraction_round_trips_bit_exact() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let checkpoints = Checkpoints::open(dir.path(), &study(1), false).expect("new study");
    let saved = extraction();
    checkpoints.save_extraction(&saved).expect("saved");

    let loaded = Checkpoints::open(dir.path(), &study(1), true)
        .expect("resumed")
        .load_extraction()
        .expect("readable")
        .expect("stored");
    let bits = |state: &ExtractionState| -> Vec<u64> {
        state.tables[0].1.rows[0]
            .values
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(bits(&loaded), bits(&saved));
    assert_eq!(loaded.remote_validation, saved.remote_validation);
    assert_eq!(loaded.failures[0].reason, saved.failures[0].reason);
}

#[test]
fn resume_keeps_round_ids() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = Checkpoints::open(dir.path(), &study(1), false).expect("new study");
    let resumed = Checkpoints::open(dir.path(), &study(1), true).expect("resumed");
    assert_eq!(first.round_ids(), resumed.round_ids());
}

#[test]
fn resume_rejects_changed_settings() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Checkpoints::open(dir.path(), &study(1), false).expect("new study");
    let error = Checkpoints::open(dir.path(), &study(2), true).expect_err("seed changed");
    assert!(
        matches!(error, CheckpointError::SettingsChanged { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("study.json"), "{error}");
}

#[test]
fn new_study_rejects_existing_state() {
    let dir = tempfile::tempdir().expect("temporary directory");
    Checkpoints::open(dir.path(), &study(1), false).expect("new study");
    let error = Checkpoints::open(dir.path(), &study(1), false).expect_err("state exists");
    assert!(error.to_string().contains("--resume"), "{error}");
}

#[test]
fn resume_without_state_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let error = Checkpoints::open(dir.path(), &study(1), true).expect_err("no state");
    assert!(
        matches!(error, CheckpointError::NothingToResume { .. }),
        "{error}"
    );
}

#[test]
fn icc_report_round_trips_nan_and_bits() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let checkpoints = Checkpoints::open(dir.path(), &study(1), false).expect("new study");
    let report = IccReport {
        form: Some(IccChoice::Icc1),
        threshold: 0.8,
        rows: vec![IccRow {
            column: "T1_whole_f".into(),
            sequence: "T1".into(),
            region: "whole".into(),
            feature: "f".into(),
            n: 10,
            k: 3,
            icc1_1: 0.1 + 0.2,
            icc2_1: f64::NAN,
            icc3_1: 1.0 / 3.0,
            ci: Some(ConfidenceInterval {
                lower: 0.25,
                upper: 0.95,
            }),
            kept: false,
        }],
        ..IccReport::default()
    };
    checkpoints.save_icc(&report).expect("saved");
    let loaded = checkpoints.load_icc().expect("readable").expect("stored");
    let row = &loaded.rows[0];
    assert_eq!(row.icc1_1.to_bits(), (0.1f64 + 0.2).to_bits());
    assert!(row.icc2_1.is_nan());
    assert_eq!(row.icc3_1.to_bits(), (1.0f64 / 3.0).to_bits());
    assert_eq!(loaded.form, report.form);
}
