//! Times the result cache against the extraction it saves, per patient and
//! sequence of the soft-tissue-sarcoma example cohort, on one thread.
//!
//! Run with `cargo bench -p radstudy-worker --bench result_cache`.
//!
//! Inputs: `examples/sts/manifest_a.csv` and `manifest_b.csv`, with paths
//! under the data root `../shared/data` next to the repository. Set
//! `RADSTUDY_DATA_ROOT` to use another data root. Pairs whose files are
//! missing or unusable are skipped and counted.
//!
//! Settings: all seven feature classes, bin width 25, label 1, no
//! perturbation. Per pair the table prints four times and a size. The hash
//! time covers the image and mask with an empty hash memo, as a restarted
//! worker pays it. The extraction time covers reading, checking and
//! computing every feature. Then come the times to store the entry and to
//! read it back, and the entry's size. The cache lives in a temporary
//! folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use radstudy_worker::cache::{KeyInputs, Lookup, ResultCache, SequenceOutcome};
use radstudy_worker::config::GeometryTolerance;
use radstudy_worker::extract::{ExtractContext, compute_features, load_sequence};
use radstudy_worker::feature_request::FeatureRequest;
use radstudy_worker::features::{ExtractionSettings, FeatureClass};
use radstudy_worker::manifest::Manifest;
use radstudy_worker::pseudonym::PseudonymKey;

/// The example's manifests, each with its center's pseudonym key file.
const MANIFESTS: [(&str, &str, &str); 2] = [
    ("manifest_a.csv", "center_a.key", "A"),
    ("manifest_b.csv", "center_b.key", "B"),
];

/// Times of one patient and sequence.
struct PairRun {
    name: String,
    hash: Duration,
    extract: Duration,
    store: Duration,
    lookup: Duration,
    entry_bytes: usize,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn main() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = package.join("../examples/sts");
    let data_root = std::env::var_os("RADSTUDY_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| package.join("../../shared/data"));
    let Ok(canonical_root) = std::fs::canonicalize(&data_root) else {
        eprintln!(
            "data root {} not found; set RADSTUDY_DATA_ROOT to the folder that contains sts/",
            data_root.display()
        );
        std::process::exit(1);
    };
    let folder = tempfile::tempdir().expect("temporary folder");

    let settings = FeatureRequest::from_settings(ExtractionSettings {
        classes: FeatureClass::ALL.to_vec(),
        bin_width: 25.0,
        label: 1,
    });
    let tolerance = GeometryTolerance::default();
    let context = ExtractContext {
        canonical_root: &canonical_root,
        features: &settings,
        tolerance: &tolerance,
    };
    let regions = ["whole".to_string()];

    let mut runs = Vec::new();
    let mut skipped = 0;
    for (manifest_name, key_name, center) in MANIFESTS {
        let manifest = Manifest::load(&examples.join(manifest_name), &data_root)
            .unwrap_or_else(|error| panic!("cannot load {manifest_name}: {error}"));
        let key = PseudonymKey::load(&examples.join(key_name))
            .unwrap_or_else(|error| panic!("cannot load {key_name}: {error}"));
        let identity = key.identity();
        for entry in &manifest.entries {
            let pseudonym = key.pseudonym(center, &entry.patient_id);
            for (sequence, files) in &entry.sequences {
                let Ok(files) = files else {
                    skipped += 1;
                    continue;
                };
                let inputs = KeyInputs {
                    key_identity: &identity,
                    pseudonym: &pseudonym,
                    sequence,
                    features: &settings,
                    tolerance: &tolerance,
                    perturbation: None,
                    regions: &regions,
                    habitat: None,
                    files,
                };
                // A new cache per pair, so that no file hash is reused.
                let cache = ResultCache::open(&folder.path().join("cache"));

                let start = Instant::now();
                let Ok(cache_key) = cache.key(&inputs, &canonical_root) else {
                    skipped += 1;
                    continue;
                };
                let hash = start.elapsed();

                let start = Instant::now();
                let features = load_sequence(sequence, files, &context).and_then(|loaded| {
                    compute_features(
                        sequence,
                        &loaded.image,
                        loaded.pixel_type,
                        &loaded.roi,
                        &settings,
                    )
                });
                let extract = start.elapsed();
                let Ok(values) = features else {
                    skipped += 1;
                    continue;
                };
                let outcome = SequenceOutcome {
                    features: Ok(vec![("whole".to_string(), values)]),
                    region_exclusions: Vec::new(),
                    copies: None,
                };

                let start = Instant::now();
                let entry_bytes = cache
                    .store(&cache_key, &pseudonym, sequence, &outcome)
                    .expect("entry is written");
                let store = start.elapsed();

                let start = Instant::now();
                let found = cache.lookup(&cache_key, &pseudonym, sequence);
                let lookup = start.elapsed();
                assert_eq!(found, Lookup::Hit(outcome), "the entry reads back");

                runs.push(PairRun {
                    name: format!("{}/{sequence}", entry.patient_id),
                    hash,
                    extract,
                    store,
                    lookup,
                    entry_bytes,
                });
            }
        }
    }

    println!(
        "{:<16} {:>9} {:>11} {:>9} {:>10} {:>12}",
        "pair", "hash ms", "extract ms", "store ms", "lookup ms", "entry bytes"
    );
    for run in &runs {
        println!(
            "{:<16} {:>9.1} {:>11.1} {:>9.2} {:>10.2} {:>12}",
            run.name,
            millis(run.hash),
            millis(run.extract),
            millis(run.store),
            millis(run.lookup),
            run.entry_bytes
        );
    }
    let total = |part: fn(&PairRun) -> Duration| runs.iter().map(part).sum::<Duration>();
    let bytes: usize = runs.iter().map(|run| run.entry_bytes).sum();
    println!(
        "{:<16} {:>9.1} {:>11.1} {:>9.2} {:>10.2} {:>12}",
        format!("total ({})", runs.len()),
        millis(total(|run| run.hash)),
        millis(total(|run| run.extract)),
        millis(total(|run| run.store)),
        millis(total(|run| run.lookup)),
        bytes
    );
    println!("skipped pairs (files missing or unusable): {skipped}");
}
