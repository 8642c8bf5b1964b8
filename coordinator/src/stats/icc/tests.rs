use ndarray::{Array2, array, s};
use serde::Deserialize;

use super::*;

/// Agreement with exact rational arithmetic on the same float inputs
/// (the fixture's `exact` block). Measured: at most 8e-15.
const EXACT_TOLERANCE: f64 = 1e-12;

/// Agreement of the mean squares and ICCs with pingouin 0.7.0. Measured:
/// at most 3.2e-15 outside the near-constant data set.
const PINGOUIN_TOLERANCE: f64 = 1e-12;

/// Agreement of the CIs with pingouin 0.7.0, whose F quantiles come from
/// SciPy 1.17.1 `f.ppf` where ours come from statrs 0.19. Measured: at
/// most 1.6e-14 outside the near-constant data set, so statrs' quantile is
/// not the limiting factor.
const PINGOUIN_CI_TOLERANCE: f64 = 1e-12;

/// Agreement with pingouin on values 5 ± 5e-5. pingouin's ANOVA rounds
/// group means at the scale of 5 while they differ by 5e-5, so its mean
/// squares are off by up to 8.8e-11 from the exact values, which ours
/// match to 8e-15.
const PINGOUIN_NEAR_CONSTANT_TOLERANCE: f64 = 1e-9;

/// Merging sites reorders the same compensated sums.
const MERGE_TOLERANCE: f64 = 1e-12;

#[derive(Deserialize)]
struct Fixture {
    icc: Vec<IccCase>,
}

/// One data set of tests/fixtures/icc_combat.json, written by
/// make_icc_combat_fixtures.py beside it.
#[derive(Deserialize)]
struct IccCase {
    name: String,
    rows: Vec<Vec<f64>>,
    /// Output of pingouin 0.7.0 `intraclass_corr`.
    expected: ReferenceIcc,
    /// Mean squares and ICCs in exact rational arithmetic.
    exact: ExactIcc,
}

#[derive(Deserialize)]
struct ExactIcc {
    ms_rows: f64,
    ms_columns: f64,
    ms_error: f64,
    ms_within: f64,
    icc1_1: f64,
    icc2_1: f64,
    icc3_1: f64,
    icc1_k: f64,
    icc2_k: f64,
    icc3_k: f64,
}

#[derive(Deserialize)]
struct ReferenceIcc {
    #[serde(flatten)]
    closed_forms: ExactIcc,
    ci1_1: [f64; 2],
    ci2_1: [f64; 2],
    ci3_1: [f64; 2],
    ci1_k: [f64; 2],
    ci2_k: [f64; 2],
    ci3_k: [f64; 2],
}

fn fixture() -> Fixture {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/icc_combat.json"
    ));
    serde_json::from_str(text).expect("icc_combat.json does not parse")
}

fn fixture_case(name: &str) -> (Array2<f64>, IccCase) {
    let case = fixture()
        .icc
        .into_iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("fixture has no ICC case {name}"));
    (to_matrix(&case.rows), case)
}

fn to_matrix(rows: &[Vec<f64>]) -> Array2<f64> {
    let k = rows[0].len();
    let values: Vec<f64> = rows.iter().flatten().copied().collect();
    Array2::from_shape_vec((rows.len(), k), values).expect("fixture rows are ragged")
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, quantity: &str) {
    assert!(
        expected != 0.0,
        "{quantity}: a relative check needs a non-zero baseline"
    );
    let error = (actual - expected).abs() / expected.abs();
    assert!(
        error <= tolerance,
        "{quantity}: got {actual}, expected {expected}, relative error {error:e} > {tolerance:e}"
    );
}

fn assert_closed_forms(actual: &IccResult, expected: &ExactIcc, tolerance: f64, case: &str) {
    let ms = actual.mean_squares;
    let pairs = [
        ("MSR", ms.rows, expected.ms_rows),
        ("MSC", ms.columns, expected.ms_columns),
        ("MSE", ms.error, expected.ms_error),
        ("MSW", ms.within, expected.ms_within),
        ("ICC(1,1)", actual.icc1_1, expected.icc1_1),
        ("ICC(2,1)", actual.icc2_1, expected.icc2_1),
        ("ICC(3,1)", actual.icc3_1, expected.icc3_1),
        ("ICC(1,k)", actual.icc1_k, expected.icc1_k),
        ("ICC(2,k)", actual.icc2_k, expected.icc2_k),
        ("ICC(3,k)", actual.icc3_k, expected.icc3_k),
    ];
    for (quantity, value, reference) in pairs {
        assert_relative(value, reference, tolerance, &format!("{case} {quantity}"));
    }
}

fn assert_intervals(actual: &IccResult, expected: &ReferenceIcc, tolerance: f64, case: &str) {
    let pairs = [
        ("ICC(1,1)", actual.ci1_1, expected.ci1_1),
        ("ICC(2,1)", actual.ci2_1, expected.ci2_1),
        ("ICC(3,1)", actual.ci3_1, expected.ci3_1),
        ("ICC(1,k)", actual.ci1_k, expected.ci1_k),
        ("ICC(2,k)", actual.ci2_k, expected.ci2_k),
        ("ICC(3,k)", actual.ci3_k, expected.ci3_k),
    ];
    for (form, interval, [lower, upper]) in pairs {
        let interval = interval.unwrap_or_else(|| panic!("{case} CI {form} is missing"));
        assert_relative(
            interval.lower,
            lower,
            tolerance,
            &format!("{case} CI {form} lower"),
        );
        assert_relative(
            interval.upper,
            upper,
            tolerance,
            &format!("{case} CI {form} upper"),
        );
    }
}

fn assert_sums_close(actual: &IccSums, expected: &IccSums) {
    assert_eq!(actual.n, expected.n);
    assert_eq!(actual.k, expected.k);
    // Both sides must be compared at one shift.
    assert_eq!(actual.shift, expected.shift);
    let close = |a: f64, b: f64, what: &str| {
        let scale = b.abs().max(expected.sum_squares.sqrt());
        assert!(
            (a - b).abs() <= MERGE_TOLERANCE * scale,
            "{what}: merged {a}, pooled {b}"
        );
    };
    close(actual.sum, expected.sum, "T");
    close(actual.sum_squares, expected.sum_squares, "Q");
    close(
        actual.sum_squared_subject_totals,
        expected.sum_squared_subject_totals,
        "sum of squared subject totals",
    );
    for (j, (&a, &b)) in actual
        .measurement_sums
        .iter()
        .zip(&expected.measurement_sums)
        .enumerate()
    {
        close(a, b, &format!("C_{j}"));
    }
}

#[test]
fn icc_matches_pingouin_and_exact_values() {
    let fixture = fixture();
    assert_eq!(fixture.icc.len(), 4);
    for case in &fixture.icc {
        let rows = to_matrix(&case.rows);
        let result = IccSums::from_rows(rows.view()).unwrap().icc().unwrap();
        assert_eq!((result.n, result.k), (rows.nrows(), rows.ncols()));
        assert!(result.zero_denominator.is_empty(), "{}", case.name);

        assert_closed_forms(&result, &case.exact, EXACT_TOLERANCE, &case.name);
        let (closed_tolerance, ci_tolerance) = if case.name == "near_constant_12x3" {
            (
                PINGOUIN_NEAR_CONSTANT_TOLERANCE,
                PINGOUIN_NEAR_CONSTANT_TOLERANCE,
            )
        } else {
            (PINGOUIN_TOLERANCE, PINGOUIN_CI_TOLERANCE)
        };
        assert_closed_forms(
            &result,
            &case.expected.closed_forms,
            closed_tolerance,
            &case.name,
        );
        assert_intervals(&result, &case.expected, ci_tolerance, &case.name);
    }
}

#[test]
fn icc_rater_offset_separates_agreement() {
    // Raters 2 and 4 read 1.5 and 3 higher: absolute agreement suffers,
    // consistency does not.
    let (rows, case) = fixture_case("rater_offset_20x4");
    let result = IccSums::from_rows(rows.view()).unwrap().icc().unwrap();
    assert!(
        result.icc3_1 - result.icc2_1 > 0.4,
        "ICC(3,1) {} ICC(2,1) {}",
        result.icc3_1,
        result.icc2_1
    );
    assert_relative(
        result.icc2_1,
        case.exact.icc2_1,
        EXACT_TOLERANCE,
        "ICC(2,1)",
    );
}

#[test]
fn merged_sites_equal_pooled_rows() {
    let (rows, case) = fixture_case("random_30x3");
    let pooled = IccSums::from_rows(rows.view()).unwrap();
    let first = IccSums::from_rows(rows.slice(s![..18, ..])).unwrap();
    let second = IccSums::from_rows(rows.slice(s![18.., ..])).unwrap();
    assert_ne!(
        first.shift, second.shift,
        "the split must exercise the re-shift"
    );

    let mut merged = first.clone();
    merged.merge(&second).unwrap();
    assert_sums_close(&merged, &pooled);
    let merged_result = merged.icc().unwrap();
    let pooled_result = pooled.icc().unwrap();
    assert_closed_forms(
        &merged_result,
        &case.exact,
        EXACT_TOLERANCE,
        "18 + 12 merged",
    );
    assert_relative(
        merged_result.icc2_1,
        pooled_result.icc2_1,
        MERGE_TOLERANCE,
        "ICC(2,1)",
    );
    let merged_ci = merged_result.ci2_1.unwrap();
    let pooled_ci = pooled_result.ci2_1.unwrap();
    assert_relative(
        merged_ci.lower,
        pooled_ci.lower,
        MERGE_TOLERANCE,
        "CI lower",
    );
    assert_relative(
        merged_ci.upper,
        pooled_ci.upper,
        MERGE_TOLERANCE,
        "CI upper",
    );

    // The other order keeps the second site's shift, so only the ICCs
    // can be compared with the pooled result.
    let mut reversed = second;
    reversed.merge(&first).unwrap();
    assert_closed_forms(
        &reversed.icc().unwrap(),
        &case.exact,
        EXACT_TOLERANCE,
        "12 + 18 merged",
    );
}

#[test]
fn merged_sites_keep_near_constant_precision() {
    let (rows, case) = fixture_case("near_constant_12x3");
    let mut merged = IccSums::from_rows(rows.slice(s![..7, ..])).unwrap();
    merged
        .merge(&IccSums::from_rows(rows.slice(s![7.., ..])).unwrap())
        .unwrap();
    assert_closed_forms(
        &merged.icc().unwrap(),
        &case.exact,
        EXACT_TOLERANCE,
        "7 + 5 merged",
    );
}

#[test]
fn merge_with_empty_site_is_identity() {
    let (rows, _) = fixture_case("noisy_10x2");
    let site = IccSums::from_rows(rows.view()).unwrap();
    let empty = IccSums::from_rows(Array2::<f64>::zeros((0, 2)).view()).unwrap();
    assert_eq!(empty.n, 0);

    let mut merged = site.clone();
    merged.merge(&empty).unwrap();
    assert_eq!(merged, site);

    let mut from_empty = empty;
    from_empty.merge(&site).unwrap();
    assert_eq!(from_empty, site);
}

#[test]
fn merge_rejects_different_designs() {
    let mut three = IccSums::from_rows(array![[1.0, 2.0, 3.0], [2.0, 2.5, 4.0]].view()).unwrap();
    let four = IccSums::from_rows(array![[1.0, 2.0, 3.0, 4.0]].view()).unwrap();
    assert_eq!(
        three.merge(&four).unwrap_err(),
        StatsError::MeasurementCountMismatch {
            expected: 3,
            found: 4
        }
    );

    let mut malformed = three.clone();
    malformed.measurement_sums.pop();
    assert_eq!(
        three.merge(&malformed).unwrap_err(),
        StatsError::MeasurementCountMismatch {
            expected: 3,
            found: 2
        }
    );

    let mut non_finite = three.clone();
    non_finite.sum_squares = f64::NAN;
    assert!(matches!(
        three.merge(&non_finite).unwrap_err(),
        StatsError::NonFinite {
            input: "ICC sums",
            index: 1,
            ..
        }
    ));
}

#[test]
fn icc_constant_feature_is_zero_and_flagged() {
    let rows = Array2::from_elem((6, 3), 3.7);
    let result = IccSums::from_rows(rows.view()).unwrap().icc().unwrap();
    let all_forms = vec![
        IccForm::Icc1_1,
        IccForm::Icc2_1,
        IccForm::Icc3_1,
        IccForm::Icc1K,
        IccForm::Icc2K,
        IccForm::Icc3K,
    ];
    assert_eq!(result.zero_denominator, all_forms);
    let values = [
        result.icc1_1,
        result.icc2_1,
        result.icc3_1,
        result.icc1_k,
        result.icc2_k,
        result.icc3_k,
    ];
    assert_eq!(values, [0.0; 6]);
    let intervals = [
        result.ci1_1,
        result.ci2_1,
        result.ci3_1,
        result.ci1_k,
        result.ci2_k,
        result.ci3_k,
    ];
    assert_eq!(intervals, [None; 6]);
}

#[test]
fn icc_constant_raw_sums_round_to_zero() {
    // Raw sums (shift 0) of 0.1 repeated are not exactly consistent, so
    // Q − CF is a rounding residue that must not become an ICC.
    let (n, k) = (10, 3);
    let value: f64 = 0.1;
    let mut sum = 0.0;
    let mut sum_squares = 0.0;
    for _ in 0..n * k {
        sum += value;
        sum_squares += value * value;
    }
    let subject_total = value + value + value;
    let column_total: f64 = (0..n).map(|_| value).sum();
    let sums = IccSums {
        n,
        k,
        shift: 0.0,
        sum,
        sum_squares,
        sum_squared_subject_totals: (0..n).map(|_| subject_total * subject_total).sum(),
        measurement_sums: vec![column_total; k],
    };
    let result = sums.icc().unwrap();
    assert_eq!(result.zero_denominator.len(), 6);
    assert_eq!(result.mean_squares.rows, 0.0);
    assert_eq!(result.mean_squares.error, 0.0);
}

#[test]
fn icc_identical_subjects_flag_consistency() {
    // Every subject has the same values, only the raters differ:
    // MSR = MSE = 0 and MSC > 0.
    let rows = array![
        [1.0, 2.5, 4.0],
        [1.0, 2.5, 4.0],
        [1.0, 2.5, 4.0],
        [1.0, 2.5, 4.0]
    ];
    let result = IccSums::from_rows(rows.view()).unwrap().icc().unwrap();
    assert_eq!(result.mean_squares.rows, 0.0);
    assert_eq!(result.mean_squares.error, 0.0);
    assert!(result.mean_squares.columns > 0.0);
    assert_eq!(
        result.zero_denominator,
        vec![IccForm::Icc3_1, IccForm::Icc1K, IccForm::Icc3K]
    );
    assert_eq!(result.icc1_1, -0.5, "ICC(1,1) is -1/(k-1)");
    assert_eq!(result.icc2_1, 0.0);
    assert_eq!(result.icc2_k, 0.0);

    // F = MSR / MSW = 0 gives a degenerate single interval and an
    // infinite average bound; F = MSR / MSE = 0/0 gives nothing.
    assert_eq!(
        result.ci1_1,
        Some(ConfidenceInterval {
            lower: -0.5,
            upper: -0.5
        })
    );
    assert_eq!(result.ci1_k, None);
    assert_eq!(result.ci2_1, None);
    assert_eq!(result.ci3_1, None);
}

#[test]
fn icc_perfect_agreement_has_no_ci() {
    let rows = array![[1.0, 1.0], [2.0, 2.0], [4.5, 4.5], [3.0, 3.0]];
    let result = IccSums::from_rows(rows.view()).unwrap().icc().unwrap();
    assert!(result.zero_denominator.is_empty());
    let values = [
        result.icc1_1,
        result.icc2_1,
        result.icc3_1,
        result.icc1_k,
        result.icc2_k,
        result.icc3_k,
    ];
    assert_eq!(values, [1.0; 6]);
    assert_eq!(result.ci1_1, None);
    assert_eq!(result.ci2_1, None);
    assert_eq!(result.ci3_1, None);
}

#[test]
fn icc_rejects_too_few_subjects_or_measurements() {
    let one_subject = IccSums::from_rows(array![[1.0, 2.0, 3.0]].view()).unwrap();
    assert_eq!(
        one_subject.icc().unwrap_err(),
        StatsError::TooFewObservations {
            input: "subjects",
            count: 1,
            minimum: 2
        }
    );

    let empty = IccSums::from_rows(Array2::<f64>::zeros((0, 3)).view()).unwrap();
    assert_eq!(
        empty.icc().unwrap_err(),
        StatsError::TooFewObservations {
            input: "subjects",
            count: 0,
            minimum: 2
        }
    );

    assert_eq!(
        IccSums::from_rows(array![[1.0], [2.0]].view()).unwrap_err(),
        StatsError::TooFewObservations {
            input: "measurements per subject",
            count: 1,
            minimum: 2
        }
    );
}

#[test]
fn from_rows_rejects_non_finite() {
    let rows = array![[1.0, 2.0], [3.0, f64::NAN], [5.0, 6.0]];
    assert!(matches!(
        IccSums::from_rows(rows.view()).unwrap_err(),
        StatsError::NonFiniteCell {
            input: "rows",
            row: 1,
            column: 1,
            ..
        }
    ));
}

#[test]
fn from_rows_omitting_nan_drops_subjects() {
    let rows = array![
        [1.0, 2.0],
        [f64::NAN, 4.0],
        [5.0, 6.5],
        [7.0, f64::NAN],
        [2.0, 2.5]
    ];
    let (sums, omitted) = IccSums::from_rows_omitting_nan(rows.view()).unwrap();
    assert_eq!(omitted, vec![1, 3]);
    let complete = array![[1.0, 2.0], [5.0, 6.5], [2.0, 2.5]];
    assert_eq!(sums, IccSums::from_rows(complete.view()).unwrap());

    let infinite = array![[1.0, f64::INFINITY], [2.0, 3.0]];
    assert!(matches!(
        IccSums::from_rows_omitting_nan(infinite.view()).unwrap_err(),
        StatsError::NonFiniteCell {
            row: 0,
            column: 1,
            ..
        }
    ));
}

#[test]
fn icc_sums_round_trip_through_json() {
    let (rows, _) = fixture_case("rater_offset_20x4");
    let sums = IccSums::from_rows(rows.view()).unwrap();
    let text = serde_json::to_string(&sums).unwrap();
    let parsed: IccSums = serde_json::from_str(&text).unwrap();
    // serde_json without its `float_roundtrip` feature may parse a
    // number 1 ulp away from the value it printed.
    assert_eq!((parsed.n, parsed.k), (sums.n, sums.k));
    let pairs = [
        (parsed.shift, sums.shift),
        (parsed.sum, sums.sum),
        (parsed.sum_squares, sums.sum_squares),
        (
            parsed.sum_squared_subject_totals,
            sums.sum_squared_subject_totals,
        ),
    ];
    let measurement_pairs = parsed.measurement_sums.iter().zip(&sums.measurement_sums);
    for (parsed_value, value) in pairs
        .into_iter()
        .chain(measurement_pairs.map(|(a, b)| (*a, *b)))
    {
        assert_relative(parsed_value, value, 4.0 * f64::EPSILON, "JSON round trip");
    }

    let constant = IccSums::from_rows(Array2::from_elem((3, 2), 1.0).view()).unwrap();
    let result = serde_json::to_value(constant.icc().unwrap()).unwrap();
    assert_eq!(result["zero_denominator"][0], "ICC(1,1)");
    assert!(result["ci1_1"].is_null());
}
