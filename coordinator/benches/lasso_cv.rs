//! Times radstudy's LASSO cross-validation against scikit-learn 1.9.1 and
//! glmnet on one seeded 56 × 9,000 problem, the size of a training set with
//! a full radiomics feature table.
//!
//! Run with `cargo bench -p radstudy --bench lasso_cv`. The reference side
//! runs `benches/lasso_cv_sklearn.py` through `python3` on the same
//! standardised matrix, labels, folds and λ grid. That script also times
//! `cv.glmnet` through Rscript when R has glmnet. If scikit-learn cannot be
//! imported, or `LASSO_BENCH_SKIP_SKLEARN` is set, only radstudy's times are
//! printed.
//!
//! All fits use 10 stratified folds (radstudy's seeded assignment, passed on
//! as fold ids) and 100 λ values from λ_max down to 0.01 λ_max (glmnet's rule
//! for n < p), on one thread. The script's header lists how each reference
//! call is set up and where its objective differs from radstudy's.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ndarray::Array2;
use radstudy::stats::{Family, LassoCv, LassoParams, Standardizer, ValidLassoParams, lasso_cv};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

const ROWS: usize = 56;
const FEATURES: usize = 9_000;
const SEED: u64 = 20_250_611;
/// Coefficients of the first five features in the label's logistic model;
/// every other feature is noise.
const TRUE_COEFFICIENTS: [f64; 5] = [1.5, -1.2, 1.0, -0.8, 0.8];
const INTERCEPT: f64 = 0.2;
/// Timed runs of each radstudy fit; the median is reported.
const RUNS: usize = 5;
/// Set this environment variable to time radstudy only.
const SKIP_SKLEARN_VARIABLE: &str = "LASSO_BENCH_SKIP_SKLEARN";

fn main() {
    let (z, y) = make_problem();
    let positives = y.iter().filter(|&&label| label).count();
    println!(
        "problem: {ROWS} rows × {FEATURES} features, {positives} positive, seed {SEED}, true features 0-4"
    );

    let binomial = params(Family::Binomial);
    let gaussian = params(Family::Gaussian);
    let (binomial_time, binomial_cv) = time_lasso_cv(&z, &y, &binomial);
    let (gaussian_time, gaussian_cv) = time_lasso_cv(&z, &y, &gaussian);

    let reference = if std::env::var_os(SKIP_SKLEARN_VARIABLE).is_some() {
        println!("skipped the reference comparison: {SKIP_SKLEARN_VARIABLE} is set");
        None
    } else {
        run_references(&z, &y, &binomial_cv, &binomial)
    };

    let reference_fit = |key: &str| {
        reference
            .as_ref()
            .and_then(|all| all.get(key))
            .filter(|fit| !fit.is_null())
    };

    println!();
    println!(
        "| method | time (s) | radstudy speed-up | selected | Jaccard with radstudy | chosen λ |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    print_radstudy_row("radstudy lasso_cv, binomial", binomial_time, &binomial_cv);
    for key in ["glmnet_binomial", "binomial"] {
        if let Some(fit) = reference_fit(key) {
            print_reference_row(fit, binomial_time, &binomial_cv);
        }
    }
    print_radstudy_row("radstudy lasso_cv, gaussian", gaussian_time, &gaussian_cv);
    if let Some(fit) = reference_fit("gaussian") {
        print_reference_row(fit, gaussian_time, &gaussian_cv);
    }

    println!();
    println!("radstudy binomial selected: {:?}", binomial_cv.selected);
    println!("radstudy gaussian selected: {:?}", gaussian_cv.selected);
    for key in ["glmnet_binomial", "binomial", "gaussian"] {
        if let Some(fit) = reference_fit(key) {
            println!(
                "{} selected: {:?}",
                fit["method"].as_str().unwrap_or(key),
                selected_of(fit)
            );
        }
    }
    if let Some(reference) = &reference {
        println!("reference versions: {}", reference["versions"]);
    }
}

/// Standardised features and labels drawn from a logistic model on the
/// first five features.
fn make_problem() -> (Array2<f64>, Vec<bool>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let x = Array2::from_shape_fn((ROWS, FEATURES), |_| StandardNormal.sample(&mut rng));
    let y: Vec<bool> = (0..ROWS)
        .map(|row| {
            let eta = INTERCEPT
                + TRUE_COEFFICIENTS
                    .iter()
                    .enumerate()
                    .map(|(feature, beta)| beta * x[[row, feature]])
                    .sum::<f64>();
            let uniform = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            uniform < 1.0 / (1.0 + (-eta).exp())
        })
        .collect();
    let standardizer = Standardizer::fit(x.view()).expect("generated features are finite");
    let z = standardizer
        .transform(x.view())
        .expect("generated features are finite");
    (z, y)
}

fn params(family: Family) -> ValidLassoParams {
    LassoParams {
        family,
        seed: SEED,
        ..LassoParams::default()
    }
    .validate()
    .expect("default LASSO settings are valid")
}

/// Runs `lasso_cv` RUNS times and returns the median time and the last fit.
fn time_lasso_cv(z: &Array2<f64>, y: &[bool], params: &ValidLassoParams) -> (Duration, LassoCv) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let fit = lasso_cv(z.view(), y, params).expect("LASSO CV on the generated problem");
        times.push(start.elapsed());
        last = Some(fit);
    }
    times.sort();
    (times[RUNS / 2], last.expect("RUNS is at least 1"))
}

/// Writes the problem to a temporary folder, runs the reference script
/// (scikit-learn, and glmnet where R has it) and returns its JSON output, or
/// `None` with a message if it cannot run.
fn run_references(
    z: &Array2<f64>,
    y: &[bool],
    cv: &LassoCv,
    params: &ValidLassoParams,
) -> Option<Value> {
    let folder = tempfile::tempdir().expect("temporary folder");
    let input = folder.path().join("problem.json");
    let output = folder.path().join("result.json");
    let rows: Vec<Vec<f64>> = z.rows().into_iter().map(|row| row.to_vec()).collect();
    let problem = json!({
        "z": rows,
        "y": y,
        "fold_ids": cv.fold_ids[0],
        "lambdas": cv.path.lambdas,
        "lambda_min_ratio": params.lambda_min_ratio(z.nrows(), z.ncols()),
    });
    let mut file = std::fs::File::create(&input).expect("problem file");
    file.write_all(problem.to_string().as_bytes())
        .expect("write problem file");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lasso_cv_sklearn.py");
    println!("running {} (several minutes) ...", script.display());
    let status = Command::new("python3")
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .status();
    match status {
        Ok(status) if status.success() => {
            let text = std::fs::read_to_string(&output).expect("scikit-learn result file");
            Some(serde_json::from_str(&text).expect("scikit-learn result is JSON"))
        }
        Ok(status) => {
            println!(
                "skipped scikit-learn comparison: {} exited with {status}",
                script.display()
            );
            None
        }
        Err(error) => {
            println!("skipped scikit-learn comparison: could not run python3: {error}");
            None
        }
    }
}

fn print_radstudy_row(method: &str, time: Duration, cv: &LassoCv) {
    println!(
        "| {method} | {:.3} | | {} | 1.00 | {:.5} |",
        time.as_secs_f64(),
        cv.selected.len(),
        cv.chosen_lambda
    );
}

/// Prints a reference fit with its time relative to radstudy's `ours` and
/// the overlap of its selection with radstudy's.
fn print_reference_row(fit: &Value, ours: Duration, cv: &LassoCv) {
    let seconds = fit["seconds"].as_f64().unwrap_or(f64::NAN);
    let selected = selected_of(fit);
    println!(
        "| {} | {seconds:.3} | {:.0}x | {} | {:.2} | {:.5} |",
        fit["method"].as_str().unwrap_or("reference"),
        seconds / ours.as_secs_f64(),
        selected.len(),
        jaccard(&cv.selected, &selected),
        fit["lambda"].as_f64().unwrap_or(f64::NAN)
    );
}

fn selected_of(fit: &Value) -> Vec<usize> {
    fit["selected"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_u64)
                .map(|value| value as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// |A ∩ B| / |A ∪ B|, and 1 when both are empty.
fn jaccard(a: &[usize], b: &[usize]) -> f64 {
    let union: std::collections::BTreeSet<usize> = a.iter().chain(b).copied().collect();
    if union.is_empty() {
        return 1.0;
    }
    let shared = a.iter().filter(|feature| b.contains(feature)).count();
    shared as f64 / union.len() as f64
}
