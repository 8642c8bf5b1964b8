//! The cache key of one patient and sequence.
//!
//! The key is a SHA-256 over the following inputs, in this order, each with
//! an 8-byte little-endian length prefix:
//!
//! - a domain tag with the key format version,
//! - the worker's build identity and the feature-definition hash,
//! - the pseudonym key identity, the pseudonym and the sequence,
//! - the feature classes, bin width and mask label,
//! - the canonical JSON of the round's parameter document, or its absence,
//! - the geometry tolerances, after the document's `geometryTolerance`,
//! - the perturbation settings with the study seed, or their absence,
//! - the requested regions, and the habitat fingerprint or its absence,
//! - for the image, then the mask: the format (file name ending, or the
//!   DICOM kind and SeriesInstanceUID), the number of files the reader
//!   opens, and each file's name and SHA-256 content hash. A DICOM series
//!   is every image file of the series in file-path order, and a detached
//!   NRRD header is followed by its data file ([`super::input_files`]),
//! - the ROI that the manifest's `<sequence>_label` cell selects, or its
//!   absence.
//!
//! The length prefixes keep ("ab", "c") apart from ("a", "bc").

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::config::GeometryTolerance;
use crate::feature_request::FeatureRequest;
use crate::features;
use crate::manifest::SequenceFiles;
use crate::mask::file::RoiSelector;
use crate::perturbed_features::RoundPerturbation;

use super::input_files::{Slot, input_files};

/// Age a file's modification time must have before its hash is reused.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// Domain tag and version of the key derivation. The version changes
/// whenever the list of hashed inputs changes.
const KEY_DOMAIN: &[u8] = b"radstudy-result-cache-key-v3\0";

/// Everything that the features of one patient and sequence depend on,
/// other than the contents of its files.
#[derive(Debug, Clone)]
pub struct KeyInputs<'a> {
    /// [`crate::pseudonym::PseudonymKey::identity`] of the site key.
    pub key_identity: &'a str,
    /// The patient's pseudonym, which seeds the perturbed copies and
    /// appears in region exclusions.
    pub pseudonym: &'a str,
    /// The sequence, which names the manifest fields in exclusions and
    /// seeds the perturbed copies.
    pub sequence: &'a str,
    /// Feature classes, bin width and mask label, and the parameter
    /// document that sets everything else.
    pub features: &'a FeatureRequest,
    /// The round's image/mask geometry tolerances.
    pub tolerance: &'a GeometryTolerance,
    /// The perturbation design, when the round makes perturbed copies.
    pub perturbation: Option<&'a RoundPerturbation>,
    /// Requested regions, in request order.
    pub regions: &'a [String],
    /// SHA-256 over the habitat round's settings, models and this
    /// patient's region masks, for rounds over habitat regions.
    pub habitat: Option<&'a [u8]>,
    /// The image and mask files.
    pub files: &'a SequenceFiles,
}

/// Size and modification time of a hashed file, to detect a change during
/// extraction and to reuse its hash within the process.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStamp {
    /// The resolved path.
    pub path: PathBuf,
    /// Size in bytes.
    pub len: u64,
    /// Modification time, where the file system reports one.
    pub modified: Option<SystemTime>,
}

impl FileStamp {
    fn read(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::metadata(path)?;
        Ok(FileStamp {
            path: path.to_path_buf(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }

    /// Returns whether the file still has this size and modification time.
    pub fn is_current(&self) -> bool {
        FileStamp::read(&self.path).is_ok_and(|now| now == *self)
    }
}

/// The key of one patient and sequence, with the stamps of the files it
/// hashed.
#[derive(Debug, Clone)]
pub struct CacheKey {
    /// SHA-256 of the inputs.
    pub digest: [u8; 32],
    /// Every file behind the image and mask as it was hashed, and each
    /// scanned DICOM folder.
    pub stamps: Vec<FileStamp>,
}

impl CacheKey {
    /// Returns the digest in lowercase hex, which names the entry file.
    pub fn hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// The reason a key could not be computed. The job then runs without the cache,
/// and its extraction reports the problem as an exclusion.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be resolved or read.
    #[error("cannot hash {field}: {source}")]
    Unreadable {
        /// The manifest field of the file, for example `PET_image`.
        field: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file, or a file it names, resolves outside the data root.
    #[error("{field} resolves outside the data root")]
    OutsideRoot {
        /// The manifest field of the file.
        field: String,
    },
    /// The files behind a path could not be listed, for example a DICOM
    /// folder that contains two series.
    #[error("cannot list the files of {field}: {reason}")]
    Unresolved {
        /// The manifest field of the path.
        field: String,
        /// The reader's error.
        reason: String,
    },
}

/// Content hashes of files, reused while a file keeps its size and
/// modification time.
///
/// A hash is kept only for a file modified at least [`SETTLED`] before it
/// was hashed. File systems record modification times at a limited
/// resolution, on Linux often one timer tick of several milliseconds. A
/// file rewritten right after it was hashed can then keep its size and
/// modification time, and a kept hash would be stale.
/// Such recent files are hashed again on every use instead.
#[derive(Debug, Default)]
pub struct FileHasher {
    known: Mutex<HashMap<PathBuf, (FileStamp, [u8; 32])>>,
}

impl FileHasher {
    /// Returns the SHA-256 of the file at `path`, read in 64 KiB blocks,
    /// and its stamp.
    fn hash(&self, path: &Path) -> std::io::Result<([u8; 32], FileStamp)> {
        let stamp = FileStamp::read(path)?;
        if let Some((known_stamp, digest)) = self.lock().get(path)
            && *known_stamp == stamp
        {
            return Ok((*digest, stamp));
        }

        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let digest: [u8; 32] = hasher.finalize().into();

        let settled = stamp
            .modified
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age >= SETTLED);
        if settled {
            self.lock()
                .insert(path.to_path_buf(), (stamp.clone(), digest));
        }
        Ok((digest, stamp))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (FileStamp, [u8; 32])>> {
        match self.known.lock() {
            Ok(known) => known,
            // Each update is a single insert, so a panic while holding the
            // lock leaves the map consistent.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// SHA-256 with a length prefix before each field.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }
}

/// Returns the identity of the running build: the software version and
/// the size and modification time of the executable. Any rebuild or
/// upgrade changes it, so that entries computed by other code are not
/// reused even when the version number stayed the same.
///
/// NOTE: where the executable cannot be inspected, only the version is
/// used, and a rebuild with changed feature code but the same version
/// would then reuse old entries.
pub fn build_identity() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let executable = std::env::current_exe().and_then(std::fs::metadata);
    match executable {
        Ok(metadata) => {
            let modified = metadata
                .modified()
                .ok()
                .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |age| age.as_nanos());
            format!("{version} {} {modified}", metadata.len())
        }
        Err(_) => version.to_string(),
    }
}

/// Computes the key of `inputs` under `build` ([`build_identity`]),
/// hashing every file behind the image and the mask after checking that
/// each resolves under `canonical_root`.
pub fn cache_key(
    build: &str,
    inputs: &KeyInputs<'_>,
    canonical_root: &Path,
    files: &FileHasher,
) -> Result<CacheKey, KeyError> {
    let mut hasher = KeyHasher(Sha256::new());
    hasher.0.update(KEY_DOMAIN);
    hasher.field(build.as_bytes());
    hasher.field(features::definition_hash().as_bytes());
    hasher.field(inputs.key_identity.as_bytes());
    hasher.field(inputs.pseudonym.as_bytes());
    hasher.field(inputs.sequence.as_bytes());

    let settings = &inputs.features.settings;
    let classes: Vec<&str> = settings.classes.iter().map(|class| class.name()).collect();
    hasher.field(classes.join(",").as_bytes());
    hasher.field(&settings.bin_width.to_bits().to_le_bytes());
    hasher.field(&settings.label.to_le_bytes());
    // The document's text fixes every other setting. Two documents that differ
    // only in a key set to its default get different keys, which costs a
    // recomputation but never reuses a wrong entry.
    match inputs.features.canonical_json() {
        None => hasher.field(b"no parameter document"),
        Some(json) => {
            hasher.field(b"parameter document");
            hasher.field(json.as_bytes());
        }
    }
    let tolerance = inputs.tolerance;
    for value in [
        tolerance.origin_mm,
        tolerance.spacing_relative,
        tolerance.direction,
    ] {
        hasher.field(&value.to_bits().to_le_bytes());
    }

    match inputs.perturbation {
        None => hasher.field(b"no perturbation"),
        Some(perturbation) => {
            let plan = &perturbation.plan;
            hasher.field(b"perturbation");
            hasher.field(&plan.repeats().to_le_bytes());
            hasher.field(&plan.max_angle_deg().to_bits().to_le_bytes());
            hasher.field(&plan.max_volume_change_mm().to_bits().to_le_bytes());
            hasher.field(&[u8::from(plan.noise())]);
            hasher.field(&perturbation.study_seed.to_le_bytes());
        }
    }
    hasher.field(&(inputs.regions.len() as u64).to_le_bytes());
    for region in inputs.regions {
        hasher.field(region.as_bytes());
    }
    match inputs.habitat {
        None => hasher.field(b"no habitat"),
        Some(fingerprint) => {
            hasher.field(b"habitat");
            hasher.field(fingerprint);
        }
    }

    let mut stamps = Vec::with_capacity(2);
    let slots = [
        ("image", Slot::Image, &inputs.files.image),
        ("mask", Slot::Mask, &inputs.files.mask),
    ];
    for (suffix, slot, path) in slots {
        let field = format!("{}_{suffix}", inputs.sequence);
        let real = canonical_under_root(path, &field, canonical_root)?;
        let listed = input_files(&real, slot).map_err(|reason| KeyError::Unresolved {
            field: field.clone(),
            reason,
        })?;
        hasher.field(listed.format.as_bytes());
        hasher.field(&(listed.files.len() as u64).to_le_bytes());
        for file in &listed.files {
            let real = canonical_under_root(file, &field, canonical_root)?;
            let (digest, stamp) = files.hash(&real).map_err(|source| KeyError::Unreadable {
                field: field.clone(),
                source,
            })?;
            // The name keeps the order of a series' files in the key.
            let name = real.file_name().unwrap_or_default();
            hasher.field(name.as_encoded_bytes());
            hasher.field(&digest);
            stamps.push(stamp);
        }
        if let Some(folder) = &listed.scanned_folder {
            let stamp =
                FileStamp::read(folder).map_err(|source| KeyError::Unreadable { field, source })?;
            stamps.push(stamp);
        }
    }
    match &inputs.files.label {
        None => hasher.field(b"study label"),
        Some(RoiSelector::Number(number)) => {
            hasher.field(b"manifest label number");
            hasher.field(&number.to_le_bytes());
        }
        Some(RoiSelector::Name(name)) => {
            hasher.field(b"manifest label name");
            hasher.field(name.as_bytes());
        }
    }

    Ok(CacheKey {
        digest: hasher.0.finalize().into(),
        stamps,
    })
}

/// Resolves `path` and checks that it lies under `canonical_root`.
fn canonical_under_root(
    path: &Path,
    field: &str,
    canonical_root: &Path,
) -> Result<PathBuf, KeyError> {
    let real = std::fs::canonicalize(path).map_err(|source| KeyError::Unreadable {
        field: field.to_string(),
        source,
    })?;
    if !real.starts_with(canonical_root) {
        return Err(KeyError::OutsideRoot {
            field: field.to_string(),
        });
    }
    Ok(real)
}
