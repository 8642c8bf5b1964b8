//! Tests of `write_report` on small study directories written by hand.

use std::path::Path;

use super::table::with_interval;
use super::{ReportError, write_report};

/// Two models on two cohorts, with values chosen so that every cell of the
/// model table has a different rounded text.
const METRICS: &str = "model,cohort,n,n_positive,auc,auc_ci_low,auc_ci_high,sensitivity,specificity,threshold
T1W_whole,training,42,17,0.7411764705882353,0.583225029261288,0.8991279119151826,0.7058823529411765,0.72,0.4303576513360518
T1W_whole,external_validation,30,9,0.7936507936507936,0.612246734770121,0.9750548525314662,0.8888888888888888,0.42857142857142855,0.4303576513360518
fusion_whole,training,42,17,0.8123,0.701,0.923,0.6470588235294118,0.84,0.51
fusion_whole,external_validation,30,9,0.6613,,,0.5555555555555556,0.7619047619047619,0.51
";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

fn html(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report.html")).expect("report.html")
}

/// Writes `metrics.csv` and `files` (name and content) into a fresh study
/// directory, writes the report and returns the page.
fn report_page(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    write_report(dir.path()).expect("report");
    html(dir.path())
}

#[test]
fn model_table_matches_metrics_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    write_report(dir.path()).expect("report");
    let page = html(dir.path());

    // Each expected cell is rebuilt from metrics.csv itself, so the check
    // compares the page against its source file, rounded to 3 decimals.
    let mut reader = csv::Reader::from_reader(METRICS.as_bytes());
    for record in reader.records() {
        let record = record.expect("fixture row");
        let number = |i: usize| record[i].parse::<f64>().ok();
        let auc = with_interval(number(4), number(5), number(6));
        let cell = format!("<td>{}</td>", super::html::escape(&auc));
        assert!(page.contains(&cell), "{cell} not in the model table");
        let sensitivity = format!("<td>{:.3}</td>", number(7).expect("sensitivity"));
        assert!(page.contains(&sensitivity), "{sensitivity} not in the page");
    }
    // The file copy keeps full precision.
    let table = std::fs::read_to_string(dir.path().join("tables/models.csv")).expect("models.csv");
    assert!(table.contains("0.7411764705882353"), "{table}");
    // An AUC without a CI shows the estimate alone.
    assert!(page.contains("<td>0.661</td>"), "missing CI cell");
}

#[test]
fn model_table_shows_wilson_intervals() {
    let page = report_page(&[
        // Sensitivity 12/17 with its 95% Wilson interval [0.469, 0.867]
        // (validation.json of the demo study).
        (
            "validation.json",
            r#"[{"model":"T1W_whole","cohort":"training","at_threshold":{
            "sensitivity":{"estimate":0.7058823529411765,"ci_low":0.4686688993346016,"ci_high":0.8672001038970478},
            "specificity":{"estimate":0.72,"ci_low":0.5242339480963842,"ci_high":0.8571614614904344}}}]"#,
        ),
    ]);
    assert!(
        page.contains("<td>0.706 [0.469, 0.867]</td>"),
        "sensitivity CI missing"
    );
    assert!(
        page.contains("<td>0.720 [0.524, 0.857]</td>"),
        "specificity CI missing"
    );
}

#[test]
fn missing_optional_file_leaves_section_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    let summary = write_report(dir.path()).expect("report");
    let page = html(dir.path());
    for file in [
        "calibration.csv",
        "predictions.csv",
        "habitats.json",
        "comparisons.csv",
    ] {
        let sentence = format!("the study directory has no {file}");
        assert!(page.contains(&sentence), "no sentence for {file}");
    }
    assert!(summary.figures.is_empty(), "{:?}", summary.figures);
    assert!(!page.contains("<figure"), "figure without its source file");
    assert!(summary.omitted.len() >= 8, "{:?}", summary.omitted);
}

#[test]
fn calibration_file_draws_one_figure_per_cohort() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    write(
        dir.path(),
        "calibration.csv",
        "model,cohort,bin,n,mean_predicted,observed_fraction
T1W_whole,training,1,9,0.15,0.22
T1W_whole,training,2,8,0.45,0.37
T1W_whole,external_validation,1,15,0.3,0.2
",
    );
    let summary = write_report(dir.path()).expect("report");
    assert_eq!(
        summary.figures,
        vec!["calibration_training", "calibration_external_validation"]
    );
    for name in &summary.figures {
        for extension in ["svg", "png"] {
            let path = dir.path().join(format!("figures/{name}.{extension}"));
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            assert!(size > 0, "{} is empty or missing", path.display());
        }
    }
    let svg =
        std::fs::read_to_string(dir.path().join("figures/calibration_training.svg")).expect("svg");
    assert!(
        svg.contains("<title>Calibration, training</title>"),
        "{svg}"
    );
}

#[test]
fn malformed_metrics_names_file_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "metrics.csv",
        "model,cohort,n,n_positive,auc,auc_ci_low,auc_ci_high,sensitivity,specificity,threshold
T1W_whole,training,42,17,high,0.5,0.9,0.7,0.72,0.43
",
    );
    let error = write_report(dir.path()).expect_err("invalid AUC");
    match &error {
        ReportError::InvalidField {
            file,
            line,
            field,
            value,
            ..
        } => {
            assert_eq!(file, "metrics.csv");
            assert_eq!(*line, 2);
            assert_eq!(field, "auc");
            assert_eq!(value, "high");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
    assert!(error.to_string().contains("metrics.csv line 2"), "{error}");
}

#[test]
fn missing_column_names_file_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    write(
        dir.path(),
        "decision_curve.csv",
        "model,cohort,threshold,net_benefit\nT1W_whole,training,0.1,0.3\n",
    );
    let error = write_report(dir.path()).expect_err("missing column");
    assert!(
        matches!(&error, ReportError::MissingField { file, field }
            if file == "decision_curve.csv" && field == "net_benefit_treat_all"),
        "{error:?}"
    );
}

#[test]
fn malformed_json_names_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    write(dir.path(), "selection.json", "{\"models\": [");
    let error = write_report(dir.path()).expect_err("truncated JSON");
    assert!(
        matches!(&error, ReportError::InvalidJson { file, .. } if file == "selection.json"),
        "{error:?}"
    );
}

#[test]
fn missing_metrics_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = write_report(dir.path()).expect_err("no metrics.csv");
    assert!(
        matches!(&error, ReportError::MissingFile { file } if file == "metrics.csv"),
        "{error:?}"
    );
}

#[test]
fn habitat_section_compares_inner_and_marginal_entropy() {
    let page = report_page(&[(
        "habitats.json",
        r#"{"region_totals":[
          {"sequence":"T1W","region":"inner","patients":10,"voxel_fraction":0.4,"mean_entropy":0.62,"mean_depth":6.0},
          {"sequence":"T1W","region":"marginal","patients":10,"voxel_fraction":0.6,"mean_entropy":0.48,"mean_depth":1.5}]}"#,
    )]);
    assert!(
        page.contains("T1W: the inner habitat has higher mean entropy than the marginal one (0.620 against 0.480)."),
        "entropy sentence missing"
    );
    assert!(page.contains("<td>0.400</td>"), "voxel fraction missing");
}

#[test]
fn habitat_section_lists_naming_statistics_of_training_patients() {
    let page = report_page(&[
        // The region table's voxel-weighted depth (0.2 for inner) disagrees with
        // the per-patient naming depth D_h (0.49), as it can in the demo. The
        // naming table must show D_h, so that the names can be checked.
        (
            "habitats.json",
            r#"{"settings":{"order_by":"depth","naming_weighting":"per_patient"},
          "region_totals":[
          {"sequence":"T1W","region":"inner","patients":10,"voxel_fraction":0.4,"mean_entropy":0.62,"mean_depth":0.2},
          {"sequence":"T1W","region":"marginal","patients":10,"voxel_fraction":0.6,"mean_entropy":0.48,"mean_depth":0.3}],
          "spaces":[{"space":"T1W","naming":{"habitats":[
          {"cluster":2,"name":"inner","patients":8,"mean_depth":0.4864,"mean_entropy":0.7796},
          {"cluster":0,"name":"marginal","patients":8,"mean_depth":0.1875,"mean_entropy":0.3851}]}}]}"#,
        ),
    ]);
    assert!(
        page.contains("ordered by decreasing mean normalised depth (first per training patient"),
        "naming rule sentence missing"
    );
    assert!(page.contains("<td>0.486</td>"), "D_h of inner missing");
    assert!(page.contains("<td>0.188</td>"), "D_h of marginal missing");
}

#[test]
fn summary_names_fusion_model_of_chosen_region() {
    let page = report_page(&[(
        "selection.json",
        r#"{"best_region":{"chosen":"whole"},"models":[
          {"model":"T1W_whole","build":{"kind":"single","region":"whole","sequence":"T1W"},
           "funnel":{"candidates":21,"non_constant":21,"after_mwu":2,"after_lasso":2}},
          {"model":"fusion_whole","build":{"kind":"concat","region":"whole"},
           "funnel":{"candidates":3,"non_constant":3,"after_mwu":3,"after_lasso":2}}]}"#,
    )]);
    // fusion_whole has the lower external AUC (0.661 against 0.794), so
    // naming it shows that external results did not pick the model.
    assert!(
        page.contains("Primary model: fusion_whole, the fusion model of the chosen region (whole); external validation AUC 0.661"),
        "summary sentence missing"
    );
}

#[test]
fn skipped_model_is_explained_with_reason() {
    let page = report_page(&[(
        "models.json",
        r#"{"models": [], "skipped": [{"model": "T2FS_whole", "reason": "training has 2 positive patients; at least 3 per class are needed"}]}"#,
    )]);

    // The reason is copied from models.json, so the page shows it verbatim.
    assert!(
        page.contains("Model T2FS_whole was not fitted"),
        "skipped model not named"
    );
    assert!(
        page.contains("at least 3 per class are needed"),
        "reason not shown"
    );
}

#[test]
fn empty_icc_csv_explains_na_counts() {
    let page = report_page(&[
        // The header alone: what `radstudy run` writes with `[icc] enabled = false`.
        (
            "icc.csv",
            "column,sequence,region,feature,n,k,icc1_1,icc2_1,icc3_1,ci_low,ci_high,kept\n",
        ),
        (
            "selection.json",
            r#"{"best_region":{"chosen":"whole"},"models":[
          {"model":"T1W_whole","build":{"kind":"single","region":"whole","sequence":"T1W"},
           "funnel":{"candidates":21,"non_constant":21,"after_mwu":2,"after_lasso":2}}]}"#,
        ),
    ]);
    assert!(
        page.contains("icc.csv lists no feature because the ICC filter did not run"),
        "no reason for the NA counts"
    );
    assert!(!page.contains("icc.csv is missing"), "icc.csv is present");
}

#[test]
fn funnel_without_icc_counts_feature_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "metrics.csv", METRICS);
    // The header alone: what `radstudy run` writes with `[icc] enabled = false`.
    write(
        dir.path(),
        "icc.csv",
        "column,sequence,region,feature,n,k,icc1_1,icc2_1,icc3_1,ci_low,ci_high,kept\n",
    );
    // Three T1W_whole features; the T1W_inner columns, the T1W_whole_missing
    // indicator and the other sequence's column must not be counted.
    write(
        dir.path(),
        "features.csv",
        "center,pseudonym,label,cohort,T1W_whole_original_firstorder_Mean,\
         T1W_whole_original_firstorder_Median,T1W_whole_original_shape_VoxelVolume,\
         T1W_whole_missing,T1W_inner_original_firstorder_Mean,T2W_whole_original_firstorder_Mean\n\
         A,A-1,1,training,1.5,1.0,300,0,2.5,4.0\n",
    );
    write(
        dir.path(),
        "selection.json",
        r#"{"best_region":{"chosen":"whole"},"models":[
          {"model":"T1W_whole","build":{"kind":"single","region":"whole","sequence":"T1W"},
           "funnel":{"candidates":3,"non_constant":3,"after_mwu":2,"after_lasso":1}}]}"#,
    );
    write_report(dir.path()).expect("report");

    let table = std::fs::read_to_string(dir.path().join("tables/selection_funnel.csv"))
        .expect("funnel table");
    let mut reader = csv::Reader::from_reader(table.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let row = reader
        .records()
        .next()
        .expect("one model")
        .expect("row parses");
    let cell = |name: &str| {
        let column = headers.iter().position(|h| h == name).expect("column");
        row[column].to_string()
    };
    assert_eq!(cell("model"), "T1W_whole");
    assert_eq!(cell("extracted"), "3", "feature columns of features.csv");
    assert_eq!(cell("after_icc"), "", "the ICC filter did not run");
    assert!(html(dir.path()).contains("the after-ICC counts are NA"));
}

#[test]
fn summary_names_left_out_center() {
    let page = report_page(&[
        // provenance.json of an STS study whose external worker was stopped
        // (SIGSTOP) during the extraction round, with the hashes shortened.
        (
            "provenance.json",
            r#"{"centers":[{"center":"A","contract_version":"1.3",
          "feature_definition_hash":"f8bd9a9e","software_version":"0.1.0"}],
          "contract_version":"1.3","coordinator_version":"0.1.0",
          "extraction_round_id":"1b9ca7a0","habitat_apply_round_id":null,
          "round_id":"1b9ca7a0","seed":42,"settings_hash":"e6a8f2cf","study_id":"sts-stopb",
          "failed_centers":[{"center":"B","reason":"Extract got no reply within 27 s"}]}"#,
        ),
    ]);
    assert!(
        page.contains(
            "Centers left out of the study or of a step: B (Extract got no reply within 27 s)."
        ),
        "left-out center missing from the summary"
    );
}
