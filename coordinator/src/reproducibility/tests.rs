use ndarray::Array2;

use super::*;
use crate::table::{FeatureColumn, PatientRecord};

fn patient(center: &str, pseudonym: &str, cohort: Cohort) -> PatientRecord {
    PatientRecord {
        center: center.into(),
        pseudonym: pseudonym.into(),
        label: false,
        cohort,
    }
}

fn table_of(patients: Vec<PatientRecord>) -> StudyTable {
    StudyTable {
        patients,
        columns: Vec::new(),
    }
}

#[test]
fn select_patients_tops_up_small_shares() {
    let mut patients = Vec::new();
    for i in 0..20 {
        patients.push(patient("A", &format!("a{i:02}"), Cohort::Training));
    }
    for i in 0..3 {
        patients.push(patient("B", &format!("b{i}"), Cohort::Training));
    }
    patients.push(patient("A", "val", Cohort::InternalValidation));
    let config = IccConfig {
        patients: 4,
        ..IccConfig::default()
    };
    let PatientDraw {
        shares: chosen,
        left_out,
    } = select_patients(&table_of(patients), &config, 7, |_| 5);

    // A has 20 training patients, so its share reaches 5 whatever the
    // draw gave it; B has 3 < 5 and is left out if it was drawn at all.
    assert_eq!(chosen.get("A").map(Vec::len), Some(5));
    assert!(!chosen.contains_key("B"));
    assert!(left_out.iter().all(|(center, _)| center == "B"));
    assert!(chosen["A"].iter().all(|p| p.starts_with('a')));
}

#[test]
fn icc_config_rejects_values_every_worker_refuses() {
    let repeats = IccConfig {
        repeats: MAX_REPEATS + 1,
        ..IccConfig::default()
    };
    assert_eq!(repeats.check().map_err(|e| e.0), Err("icc.repeats"));
    let change = IccConfig {
        max_volume_change_mm: 1e9,
        ..IccConfig::default()
    };
    assert_eq!(
        change.check().map_err(|e| e.0),
        Err("icc.max_volume_change_mm")
    );
    assert_eq!(IccConfig::default().check(), Ok(()));
}

#[test]
fn select_patients_ignores_row_order() {
    let mut patients: Vec<PatientRecord> = (0..12)
        .map(|i| patient("A", &format!("p{i:02}"), Cohort::Training))
        .collect();
    let config = IccConfig {
        patients: 6,
        ..IccConfig::default()
    };
    let first = select_patients(&table_of(patients.clone()), &config, 42, |_| 5);
    patients.reverse();
    let second = select_patients(&table_of(patients), &config, 42, |_| 5);
    assert_eq!(first, second);
}

fn sums_of(rows: &[[f64; 3]]) -> IccSums {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let array = Array2::from_shape_vec((rows.len(), 3), flat).expect("3 columns");
    IccSums::from_rows(array.view()).expect("finite rows")
}

#[test]
fn merge_sums_equals_pooled_icc() {
    // Stable feature: patients differ a lot, copies a little.
    let stable_a = [[1.0, 1.1, 0.9], [5.0, 5.2, 4.9], [9.0, 9.1, 8.8]];
    let stable_b = [[3.0, 3.1, 2.9], [7.0, 6.8, 7.1]];
    // Noisy feature: copies differ as much as patients.
    let noisy_a = [[1.0, 5.0, 3.0], [4.0, 2.0, 6.0], [2.0, 6.0, 1.0]];
    let noisy_b = [[5.0, 1.0, 4.0], [3.0, 6.0, 2.0]];
    let entry = |feature: &str, rows: &[[f64; 3]]| FeatureIcc {
        sequence: "T1".into(),
        region: "whole".into(),
        feature: feature.into(),
        sums: sums_of(rows),
    };
    let replies = vec![
        (
            "A".to_string(),
            vec![entry("stable", &stable_a), entry("noisy", &noisy_a)],
        ),
        (
            "B".to_string(),
            vec![entry("stable", &stable_b), entry("noisy", &noisy_b)],
        ),
    ];
    let report = merge_sums(
        &replies,
        &IccConfig::default(),
        &["T1".to_string(), "T2".to_string()],
    )
    .expect("mergeable");

    let pooled: Vec<[f64; 3]> = stable_a.iter().chain(&stable_b).copied().collect();
    let expected = sums_of(&pooled).icc().expect("5 subjects");
    let stable = report
        .rows
        .iter()
        .find(|row| row.feature == "stable")
        .expect("stable row");
    // Merging re-centres the sums, so the two differ by summation order
    // only: a few ulps of values near 1.
    assert!((stable.icc1_1 - expected.icc1_1).abs() < 1e-12);
    assert!((stable.icc2_1 - expected.icc2_1).abs() < 1e-12);
    assert_eq!(stable.n, 5);
    assert!(stable.kept);
    assert!(
        !report
            .rows
            .iter()
            .any(|row| row.feature == "noisy" && row.kept)
    );

    assert!(report.keep("T1", "T1_whole_stable"));
    assert!(!report.keep("T1", "T1_whole_noisy"));
    // T2 had no sums, so its columns pass unfiltered.
    assert_eq!(report.unfiltered_sequences, vec!["T2".to_string()]);
    assert!(report.keep("T2", "T2_whole_anything"));
}

#[test]
fn apply_drops_unreliable_columns_and_counts_them() {
    let column = |sequence: &str, name: &str| FeatureColumn {
        name: name.into(),
        sequence: sequence.into(),
        values: vec![Some(1.0)],
        ..FeatureColumn::default()
    };
    let mut table = StudyTable {
        patients: vec![patient("A", "p", Cohort::Training)],
        columns: vec![column("T1", "T1_whole_a"), column("T1", "T1_whole_b")],
    };
    let report = IccReport {
        rows: vec![IccRow {
            column: "T1_whole_a".into(),
            sequence: "T1".into(),
            region: "whole".into(),
            feature: "a".into(),
            n: 5,
            k: 3,
            icc1_1: 0.9,
            icc2_1: 0.9,
            icc3_1: 0.9,
            ci: None,
            kept: true,
        }],
        ..IccReport::default()
    };
    let counts = apply(&mut table, &report);
    assert_eq!(counts["T1"], (2, 1));
    assert_eq!(table.columns.len(), 1);
    assert_eq!(table.columns[0].name, "T1_whole_a");
}
