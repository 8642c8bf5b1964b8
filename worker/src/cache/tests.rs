//! Tests of the result cache on small files in a temporary data root; the
//! service tests run it on STS patients.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use radstudy_proto::v1::RegionExclusion;

use super::*;
use crate::config::GeometryTolerance;
use crate::error::{Exclusion, ExclusionKind};
use crate::feature_request::FeatureRequest;
use crate::features::{ExtractionSettings, FeatureClass};
use crate::manifest::SequenceFiles;
use crate::mask::file::RoiSelector;
use crate::params::document::ParameterDocument;
use crate::perturbed_features::RoundPerturbation;

/// A data root with one image and one mask file, and a cache directory.
struct Site {
    _folder: tempfile::TempDir,
    root: PathBuf,
    cache_dir: PathBuf,
    files: SequenceFiles,
}

fn site() -> Site {
    let folder = tempfile::tempdir().expect("temporary folder");
    let root = std::fs::canonicalize(folder.path()).expect("canonical folder");
    let data = root.join("data");
    std::fs::create_dir(&data).expect("data folder");
    let files = SequenceFiles {
        image: data.join("PET_image.nii.gz"),
        mask: data.join("PET_mask.nii.gz"),
        label: None,
    };
    std::fs::write(
        &files.image,
        b"image bytes: any content works, the key only hashes it",
    )
    .expect("image file");
    std::fs::write(&files.mask, b"mask bytes").expect("mask file");
    Site {
        cache_dir: root.join("cache"),
        root: data,
        files,
        _folder: folder,
    }
}

fn settings() -> FeatureRequest {
    FeatureRequest::from_settings(ExtractionSettings {
        classes: vec![FeatureClass::Shape, FeatureClass::FirstOrder],
        bin_width: 25.0,
        label: 1,
    })
}

/// Returns the request of a parameter document given as JSON.
fn document(json: &str) -> FeatureRequest {
    FeatureRequest::from_document(ParameterDocument::from_json(json).expect("valid document"))
}

fn perturbation(seed: u64) -> RoundPerturbation {
    RoundPerturbation::from_proto(&radstudy_proto::v1::PerturbationSettings {
        repeats: 3,
        max_angle_deg: 10.0,
        max_volume_change_mm: 1.0,
        noise: true,
        seed,
    })
    .expect("valid perturbation")
}

/// Returns an outcome with every part set, and values whose bits a text
/// format could lose: -0.0, a subnormal and the largest finite `f64`.
fn outcome() -> SequenceOutcome {
    SequenceOutcome {
        features: Ok(vec![
            ("whole".into(), vec![1.0 / 3.0, -0.0, 5e-324, f64::MAX]),
            ("habitat_1".into(), vec![0.1 + 0.2, -1e-300]),
        ]),
        region_exclusions: vec![RegionExclusion {
            pseudonym: "T-0123456789abcdef".into(),
            sequence: "PET".into(),
            region: "habitat_2".into(),
            voxels: 12,
            reason: "region habitat_2 has 12 voxels, fewer than min_region_voxels = 27".into(),
        }],
        copies: Some(vec![
            (
                "whole".into(),
                Ok(vec![vec![1.5, 2.5, 3.5, 4.5], vec![1.25, 2.25, 3.25, 4.25]]),
            ),
            (
                "habitat_1".into(),
                Err("repeat 1: perturbation failed".into()),
            ),
            ("habitat_3".into(), Ok(Vec::new())),
        ]),
    }
}

fn inputs<'a>(
    files: &'a SequenceFiles,
    features: &'a FeatureRequest,
    tolerance: &'a GeometryTolerance,
) -> KeyInputs<'a> {
    KeyInputs {
        key_identity: "identity-of-key-1",
        pseudonym: "T-0123456789abcdef",
        sequence: "PET",
        features,
        tolerance,
        perturbation: None,
        regions: &[],
        habitat: None,
        files,
    }
}

/// Returns every bit of every value, so that `-0.0` and `0.0` differ.
fn value_bits(outcome: &SequenceOutcome) -> Vec<u64> {
    let features = outcome.features.iter().flatten().flat_map(|(_, v)| v);
    let copies = outcome
        .copies
        .iter()
        .flatten()
        .filter_map(|(_, result)| result.as_ref().ok())
        .flatten()
        .flatten();
    features.chain(copies).map(|v| v.to_bits()).collect()
}

#[test]
fn entry_round_trip_keeps_every_bit() {
    let stored = outcome();
    let bytes = entry::encode(&[7; 32], "T-1", "PET", &stored);
    let decoded = entry::decode(&bytes, &[7; 32], "T-1", "PET").expect("entry decodes");
    assert_eq!(decoded, stored);
    assert_eq!(value_bits(&decoded), value_bits(&stored));
}

#[test]
fn entry_round_trip_keeps_exclusion_and_no_copies() {
    let excluded = SequenceOutcome::excluded(Exclusion::new(
        ExclusionKind::RoiTooSmall,
        "PET_mask",
        "the ROI has 3 voxels",
    ));
    let bytes = entry::encode(&[1; 32], "T-1", "PET", &excluded);
    let decoded = entry::decode(&bytes, &[1; 32], "T-1", "PET").expect("entry decodes");
    assert_eq!(decoded, excluded);
    assert_eq!(decoded.copies, None);

    let no_copies_but_empty_list = SequenceOutcome {
        copies: Some(Vec::new()),
        ..outcome()
    };
    let bytes = entry::encode(&[1; 32], "T-1", "PET", &no_copies_but_empty_list);
    let decoded = entry::decode(&bytes, &[1; 32], "T-1", "PET").expect("entry decodes");
    assert_eq!(decoded.copies, Some(Vec::new()));
}

#[test]
fn entry_for_other_key_or_patient_is_mismatch() {
    let bytes = entry::encode(&[1; 32], "T-1", "PET", &outcome());
    assert_eq!(
        entry::decode(&bytes, &[2; 32], "T-1", "PET"),
        Err(entry::EntryError::Mismatch)
    );
    assert_eq!(
        entry::decode(&bytes, &[1; 32], "T-2", "PET"),
        Err(entry::EntryError::Mismatch)
    );
    assert_eq!(
        entry::decode(&bytes, &[1; 32], "T-1", "MR_T1"),
        Err(entry::EntryError::Mismatch)
    );
}

#[test]
fn entry_every_truncation_is_rejected() {
    let bytes = entry::encode(&[1; 32], "T-1", "PET", &outcome());
    for length in 0..bytes.len() {
        assert!(
            entry::decode(&bytes[..length], &[1; 32], "T-1", "PET").is_err(),
            "an entry cut to {length} of {} bytes decoded",
            bytes.len()
        );
    }
}

#[test]
fn lookup_after_store_gives_identical_outcome() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key = cache
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    assert_eq!(
        cache.lookup(&key, "T-0123456789abcdef", "PET"),
        Lookup::Miss
    );

    let stored = outcome();
    let size = cache
        .store(&key, "T-0123456789abcdef", "PET", &stored)
        .expect("entry is written");
    assert_eq!(
        std::fs::metadata(cache.entry_path(&key))
            .expect("entry file")
            .len(),
        size as u64
    );

    // A new cache over the same directory, as after a restart.
    let restarted = ResultCache::open(&site.cache_dir);
    let key_again = restarted
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    assert_eq!(key_again.digest, key.digest);
    match restarted.lookup(&key_again, "T-0123456789abcdef", "PET") {
        Lookup::Hit(found) => {
            assert_eq!(found, stored);
            assert_eq!(value_bits(&found), value_bits(&stored));
        }
        other => panic!("expected a hit, got {other:?}"),
    }
}

#[test]
fn key_changes_with_each_setting() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let base_inputs = inputs(&site.files, &settings, &tolerance);
    let base = cache.key(&base_inputs, &site.root).expect("files hash");

    let bin_width = FeatureRequest::from_settings(ExtractionSettings {
        bin_width: 25.000000000000004,
        ..settings.settings.clone()
    });
    let classes = FeatureRequest::from_settings(ExtractionSettings {
        classes: vec![FeatureClass::FirstOrder],
        ..settings.settings.clone()
    });
    let label = FeatureRequest::from_settings(ExtractionSettings {
        label: 2,
        ..settings.settings.clone()
    });
    // The default document: the same classes, bin width and label as `settings`, so only
    // the presence of a document differs.
    let default_document = document(r#"{"featureClass":{"shape":[],"firstorder":[]}}"#);
    assert_eq!(default_document.settings, settings.settings);
    let log_sigma_2 = document(
        r#"{"imageType":{"LoG":{"sigma":[2.0]}},"featureClass":{"shape":[],"firstorder":[]}}"#,
    );
    let log_sigma_3 = document(
        r#"{"imageType":{"LoG":{"sigma":[3.0]}},"featureClass":{"shape":[],"firstorder":[]}}"#,
    );
    let resampled = document(
        r#"{"featureClass":{"shape":[],"firstorder":[]},"setting":{"resampledPixelSpacing":[1,1,1]}}"#,
    );
    let normalized =
        document(r#"{"featureClass":{"shape":[],"firstorder":[]},"setting":{"normalize":true}}"#);
    let ibsi =
        document(r#"{"featureClass":{"shape":[],"firstorder":[]},"setting":{"ibsiMode":true}}"#);
    let tolerance_changed = GeometryTolerance {
        origin_mm: 2e-3,
        ..GeometryTolerance::default()
    };
    let (seed_1, seed_2) = (perturbation(1), perturbation(2));
    let regions = ["whole".to_string(), "core".to_string()];
    let regions_reordered = ["core".to_string(), "whole".to_string()];
    let cases: Vec<(&str, KeyInputs<'_>)> = vec![
        (
            "a parameter document",
            KeyInputs {
                features: &default_document,
                ..base_inputs.clone()
            },
        ),
        (
            "bin width one ulp larger",
            KeyInputs {
                features: &bin_width,
                ..base_inputs.clone()
            },
        ),
        (
            "feature classes",
            KeyInputs {
                features: &classes,
                ..base_inputs.clone()
            },
        ),
        (
            "mask label",
            KeyInputs {
                features: &label,
                ..base_inputs.clone()
            },
        ),
        (
            "geometry tolerance",
            KeyInputs {
                tolerance: &tolerance_changed,
                ..base_inputs.clone()
            },
        ),
        (
            "perturbation",
            KeyInputs {
                perturbation: Some(&seed_1),
                ..base_inputs.clone()
            },
        ),
        (
            "regions",
            KeyInputs {
                regions: &regions,
                ..base_inputs.clone()
            },
        ),
        (
            "habitat fingerprint",
            KeyInputs {
                habitat: Some(&[0; 32]),
                ..base_inputs.clone()
            },
        ),
        (
            "pseudonym key identity",
            KeyInputs {
                key_identity: "identity-of-key-2",
                ..base_inputs.clone()
            },
        ),
        (
            "pseudonym",
            KeyInputs {
                pseudonym: "T-fedcba9876543210",
                ..base_inputs.clone()
            },
        ),
        (
            "sequence",
            KeyInputs {
                sequence: "MR_T1",
                ..base_inputs.clone()
            },
        ),
    ];
    for (change, changed) in &cases {
        let key = cache.key(changed, &site.root).expect("files hash");
        assert_ne!(key.digest, base.digest, "{change} must change the key");
    }

    // Each document setting changes the key against the default document.
    let document_base = cache
        .key(
            &inputs(&site.files, &default_document, &tolerance),
            &site.root,
        )
        .expect("files hash");
    for (change, features) in [
        ("LoG sigma 2", &log_sigma_2),
        ("resampling", &resampled),
        ("normalisation", &normalized),
        ("IBSI mode", &ibsi),
    ] {
        let key = cache
            .key(&inputs(&site.files, features, &tolerance), &site.root)
            .expect("files hash");
        assert_ne!(
            key.digest, document_base.digest,
            "{change} must change the key"
        );
    }
    let key_2 = cache
        .key(&inputs(&site.files, &log_sigma_2, &tolerance), &site.root)
        .expect("files hash");
    let key_3 = cache
        .key(&inputs(&site.files, &log_sigma_3, &tolerance), &site.root)
        .expect("files hash");
    assert_ne!(key_2.digest, key_3.digest, "LoG sigma must change the key");

    let with_seed = |perturbation| KeyInputs {
        perturbation: Some(perturbation),
        ..base_inputs.clone()
    };
    let key_1 = cache.key(&with_seed(&seed_1), &site.root).expect("hash");
    let key_2 = cache.key(&with_seed(&seed_2), &site.root).expect("hash");
    assert_ne!(key_1.digest, key_2.digest, "study seed must change the key");
    let ordered = |regions| KeyInputs {
        regions,
        ..base_inputs.clone()
    };
    let key_a = cache.key(&ordered(&regions), &site.root).expect("hash");
    let key_b = cache
        .key(&ordered(&regions_reordered), &site.root)
        .expect("hash");
    assert_ne!(
        key_a.digest, key_b.digest,
        "region order must change the key"
    );
}

#[test]
fn changed_image_byte_misses() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key = cache
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    cache
        .store(&key, "T-0123456789abcdef", "PET", &outcome())
        .expect("entry is written");

    // Same size, one byte changed.
    let mut bytes = std::fs::read(&site.files.image).expect("image");
    bytes[0] ^= 1;
    std::fs::write(&site.files.image, &bytes).expect("image rewritten");

    for (label, cache) in [
        ("same process", &cache),
        ("after a restart", &ResultCache::open(&site.cache_dir)),
    ] {
        let changed = cache
            .key(&inputs(&site.files, &settings, &tolerance), &site.root)
            .expect("files hash");
        assert_ne!(changed.digest, key.digest, "{label}");
        assert_eq!(
            cache.lookup(&changed, "T-0123456789abcdef", "PET"),
            Lookup::Miss,
            "{label}"
        );
    }
}

#[test]
fn key_changes_with_manifest_label() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key_with = |label: Option<RoiSelector>| {
        let files = SequenceFiles {
            label,
            ..site.files.clone()
        };
        cache
            .key(&inputs(&files, &settings, &tolerance), &site.root)
            .expect("files hash")
            .digest
    };
    let study_label = key_with(None);
    let number_1 = key_with(Some(RoiSelector::Number(1)));
    let number_2 = key_with(Some(RoiSelector::Number(2)));
    let name_gtv = key_with(Some(RoiSelector::Name("GTV".into())));
    let name_ctv = key_with(Some(RoiSelector::Name("CTV".into())));
    // Number 1 selects what the study's label 1 selects, but the key keeps
    // them apart: a recomputation, never a wrong entry.
    assert_ne!(number_1, study_label, "a manifest number");
    assert_ne!(number_2, number_1, "another manifest number");
    assert_ne!(name_gtv, study_label, "a manifest name");
    assert_ne!(name_ctv, name_gtv, "another manifest name");
    assert_eq!(key_with(None), study_label, "the key is stable");
}

/// Writes a detached NRRD pair under `root` and returns the site's files
/// with the header as the image.
fn detached_nrrd(site: &Site) -> (SequenceFiles, PathBuf) {
    let header = site.root.join("PET_image.nhdr");
    let data = site.root.join("PET_voxels.raw");
    std::fs::write(
        &header,
        "NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2 2 1\nencoding: raw\ndata file: PET_voxels.raw\n",
    )
    .expect("header");
    std::fs::write(&data, [1u8, 2, 3, 4]).expect("data file");
    let files = SequenceFiles {
        image: header,
        ..site.files.clone()
    };
    (files, data)
}

#[test]
fn detached_nrrd_data_change_misses() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let (files, data) = detached_nrrd(&site);
    let key = cache
        .key(&inputs(&files, &settings, &tolerance), &site.root)
        .expect("header and data file hash");
    assert_eq!(key.stamps.len(), 3, "header, data file and mask");
    cache
        .store(&key, "T-0123456789abcdef", "PET", &outcome())
        .expect("entry is written");
    let again = cache
        .key(&inputs(&files, &settings, &tolerance), &site.root)
        .expect("hash");
    assert_eq!(
        again.digest, key.digest,
        "unchanged files give the same key"
    );

    // The header is untouched; one voxel of the data file changes.
    std::fs::write(&data, [1u8, 2, 3, 5]).expect("data file rewritten");
    let changed = cache
        .key(&inputs(&files, &settings, &tolerance), &site.root)
        .expect("hash");
    assert_ne!(changed.digest, key.digest);
    assert_eq!(
        cache.lookup(&changed, "T-0123456789abcdef", "PET"),
        Lookup::Miss
    );
}

#[test]
fn detached_nrrd_store_after_data_change_is_skipped() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let (files, data) = detached_nrrd(&site);
    let key = cache
        .key(&inputs(&files, &settings, &tolerance), &site.root)
        .expect("hash");
    std::fs::write(&data, [9u8, 9, 9, 9, 9]).expect("data file rewritten");
    let error = cache
        .store(&key, "T-0123456789abcdef", "PET", &outcome())
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::FileChanged { path } if path.ends_with("PET_voxels.raw")),
        "{error}"
    );
}

#[test]
fn detached_nrrd_data_outside_root_is_refused() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let (files, data) = detached_nrrd(&site);
    // The data file becomes a link to a file beside the data root.
    let outside = site.root.with_file_name("outside.raw");
    std::fs::write(&outside, [1u8, 2, 3, 4]).expect("outside file");
    std::fs::remove_file(&data).expect("data file removed");
    std::os::unix::fs::symlink(&outside, &data).expect("link");
    let error = cache
        .key(&inputs(&files, &settings, &tolerance), &site.root)
        .unwrap_err();
    assert!(
        matches!(&error, KeyError::OutsideRoot { field } if field == "PET_image"),
        "{error}"
    );
}

#[test]
fn store_after_file_changed_is_skipped() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key = cache
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    std::fs::write(&site.files.mask, b"mask bytes, rewritten during extraction").expect("mask");
    let error = cache
        .store(&key, "T-0123456789abcdef", "PET", &outcome())
        .unwrap_err();
    assert!(matches!(error, StoreError::FileChanged { .. }), "{error}");
    assert!(!cache.entry_path(&key).exists());
}

#[test]
fn key_of_file_outside_root_is_refused() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let narrower_root = site.root.join("elsewhere");
    std::fs::create_dir(&narrower_root).expect("folder");
    let error = cache
        .key(&inputs(&site.files, &settings, &tolerance), &narrower_root)
        .unwrap_err();
    assert!(matches!(error, KeyError::OutsideRoot { .. }), "{error}");
}

/// A writer into a shared buffer, for reading log lines back.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[test]
fn truncated_entry_is_invalid_with_warning_then_replaced() {
    let site = site();
    let cache = ResultCache::open(&site.cache_dir);
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key = cache
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    let stored = outcome();
    cache
        .store(&key, "T-0123456789abcdef", "PET", &stored)
        .expect("entry is written");
    let path = cache.entry_path(&key);
    let length = std::fs::metadata(&path).expect("entry").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("entry opens");
    file.set_len(length / 2).expect("entry truncated");

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let found = tracing::subscriber::with_default(subscriber, || {
        cache.lookup(&key, "T-0123456789abcdef", "PET")
    });
    assert_eq!(found, Lookup::Invalid);
    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("invalid cache entry"), "{text}");
    assert!(text.contains(&format!("{}.entry", key.hex())), "{text}");
    assert!(text.contains("checksum"), "{text}");

    // The recomputed outcome replaces the damaged entry.
    cache
        .store(&key, "T-0123456789abcdef", "PET", &stored)
        .expect("entry is rewritten");
    assert_eq!(
        cache.lookup(&key, "T-0123456789abcdef", "PET"),
        Lookup::Hit(stored)
    );
}

#[test]
fn concurrent_stores_keep_entry_intact() {
    let site = site();
    let cache = Arc::new(ResultCache::open(&site.cache_dir));
    let (settings, tolerance) = (settings(), GeometryTolerance::default());
    let key = cache
        .key(&inputs(&site.files, &settings, &tolerance), &site.root)
        .expect("files hash");
    let stored = outcome();

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, key, stored) = (cache.clone(), key.clone(), stored.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..25 {
                    cache
                        .store(&key, "T-0123456789abcdef", "PET", &stored)
                        .expect("entry is written");
                    seen.push(cache.lookup(&key, "T-0123456789abcdef", "PET"));
                }
                seen
            })
        })
        .collect();
    for thread in threads {
        for found in thread.join().expect("thread finishes") {
            assert_eq!(found, Lookup::Hit(stored.clone()));
        }
    }

    let folder = cache.entry_path(&key);
    let folder = folder.parent().expect("entry folder");
    let names: Vec<String> = std::fs::read_dir(folder)
        .expect("entry folder lists")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [format!("{}.entry", key.hex())],
        "no temporary file is left"
    );
}

#[test]
fn open_removes_only_stale_temporary_files() {
    let site = site();
    let folder = site.cache_dir.join("ab");
    std::fs::create_dir_all(&folder).expect("cache folder");
    let stale = folder.join(format!("{}{TEMP_MARKER}123-0", "ab".repeat(32)));
    std::fs::write(&stale, b"half an entry").expect("stale file");
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|file| file.set_modified(an_hour_ago))
        .expect("stale file dated back");
    // A temporary file of another worker that is writing now.
    let fresh = folder.join(format!("{}{TEMP_MARKER}456-0", "ab".repeat(32)));
    std::fs::write(&fresh, b"an entry being written").expect("fresh file");
    let entry = folder.join(format!("{}.entry", "ab".repeat(32)));
    std::fs::write(&entry, b"an entry").expect("entry file");

    ResultCache::open(&site.cache_dir);
    assert!(!stale.exists());
    assert!(fresh.exists());
    assert!(entry.exists());
}

#[test]
fn is_cacheable_skips_file_read_failures() {
    assert!(is_cacheable(&outcome()));
    for (kind, cacheable) in [
        (ExclusionKind::FileMissing, false),
        (ExclusionKind::FileInvalid, false),
        (ExclusionKind::RoiTooSmall, true),
        (ExclusionKind::GeometryMismatch, true),
    ] {
        let excluded = SequenceOutcome::excluded(Exclusion::new(kind, "PET_image", "reason"));
        assert_eq!(is_cacheable(&excluded), cacheable, "{}", kind.as_str());
    }
}
