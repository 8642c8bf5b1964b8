//! The per-patient result cache: the features of each extracted patient and
//! sequence on local disk, so that a restarted worker returns a round it
//! already computed without extracting again.
//!
//! An entry is keyed by every setting that changes the values and by the
//! content hashes of every file behind the image and mask ([`key`]). These
//! include each slice of a DICOM series and the data file of a detached
//! NRRD header. A changed file or setting therefore misses and is computed
//! anew. It contains the pseudonym, the
//! feature values per region, the perturbed copies and the exclusions,
//! never voxels ([`entry`]). Entries live in `<cache_dir>/<first two hex
//! digits of the key>/<key>.entry`.
//!
//! A write goes to a temporary file in the same folder, is flushed with
//! `fsync` and renamed over the entry, and then the folder is flushed. A
//! worker killed mid-write therefore leaves the old entry, the new one or a
//! stray temporary file, never a torn entry. An entry that cannot be read
//! or decoded is logged and computed again, never an error of the round.

pub mod entry;
mod input_files;
pub mod key;
pub mod outcome;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{debug, info, warn};

pub use key::{CacheKey, KeyError, KeyInputs};
pub use outcome::{RegionCopyFeatures, SequenceOutcome};

/// Ending of entry files.
const ENTRY_EXTENSION: &str = "entry";

/// Marker in the names of temporary files.
const TEMP_MARKER: &str = ".tmp-";

/// Age after which start-up removes a temporary file. A write takes
/// milliseconds, so an older file was left by a worker that stopped
/// mid-write, and a younger one may belong to a worker that shares the
/// directory and is writing it now.
const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The result of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A valid entry.
    Hit(SequenceOutcome),
    /// No entry.
    Miss,
    /// An entry that cannot be used; it was logged and will be replaced.
    Invalid,
}

/// The cache use of one job of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Read from a valid entry.
    Hit,
    /// Computed, because there was no entry.
    Miss,
    /// Computed, because the entry could not be used.
    Invalid,
    /// Computed without the cache: the files could not be hashed, or the
    /// job failed before extraction.
    Bypassed,
}

impl CacheUse {
    /// Returns the name used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Invalid => "invalid",
            CacheUse::Bypassed => "bypassed",
        }
    }
}

/// Counts of a round's cache use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Jobs read from an entry.
    pub hits: u32,
    /// Jobs computed for lack of an entry, including invalid entries.
    pub misses: u32,
    /// Of `misses`, the jobs whose entry could not be used.
    pub invalid: u32,
    /// Jobs computed without the cache.
    pub bypassed: u32,
    /// Computed jobs whose entry could not be written.
    pub store_failed: u32,
}

impl CacheCounts {
    /// Adds one job's cache use.
    pub fn add(&mut self, used: CacheUse) {
        match used {
            CacheUse::Hit => self.hits += 1,
            CacheUse::Miss => self.misses += 1,
            CacheUse::Invalid => {
                self.misses += 1;
                self.invalid += 1;
            }
            CacheUse::Bypassed => self.bypassed += 1,
        }
    }
}

/// The reason an entry was not written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing, flushing or renaming the file failed.
    #[error("cannot write cache entry {path}: {source}")]
    Io {
        /// The entry or temporary file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The image or mask changed between hashing and the end of the
    /// extraction, so the result may not belong to the hashed contents.
    #[error("{path} changed during extraction; the result is not cached")]
    FileChanged {
        /// The changed file.
        path: PathBuf,
    },
}

/// The cache in one directory.
///
/// NOTE: entries are never removed, so the directory grows with every new
/// file, setting and worker build until the site clears it.
#[derive(Debug)]
pub struct ResultCache {
    dir: PathBuf,
    /// [`key::build_identity`] of this process.
    build: String,
    files: key::FileHasher,
    temp_counter: AtomicU64,
}

impl ResultCache {
    /// Opens the cache in `dir`, creating it, and removes temporary files
    /// that a worker stopped mid-write left more than
    /// [`STALE_TEMPORARY_AGE`] ago. A directory that cannot be created is
    /// logged. Each later write then fails and is logged, and the worker
    /// computes every job. Several workers may share a directory, because
    /// temporary names are unique per process and renames are atomic.
    pub fn open(dir: &Path) -> Self {
        match std::fs::create_dir_all(dir) {
            Ok(()) => {
                let removed = remove_temporary_files(dir);
                info!(path = %dir.display(), stale_temporary_files = removed, "result cache opened");
            }
            Err(error) => warn!(
                path = %dir.display(),
                %error,
                "cannot create the result cache directory; every job is computed until it can be written"
            ),
        }
        ResultCache {
            dir: dir.to_path_buf(),
            build: key::build_identity(),
            files: key::FileHasher::default(),
            temp_counter: AtomicU64::new(0),
        }
    }

    /// Returns the cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Computes the key of one patient and sequence with [`key::cache_key`].
    pub fn key(&self, inputs: &KeyInputs<'_>, canonical_root: &Path) -> Result<CacheKey, KeyError> {
        key::cache_key(&self.build, inputs, canonical_root, &self.files)
    }

    /// Returns the path of the entry file of `key`.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        let hex = key.hex();
        self.dir
            .join(&hex[..2])
            .join(format!("{hex}.{ENTRY_EXTENSION}"))
    }

    /// Looks up the entry of `key`. An unreadable or invalid entry is
    /// logged as a warning with its file name and returned as
    /// [`Lookup::Invalid`].
    pub fn lookup(&self, key: &CacheKey, pseudonym: &str, sequence: &str) -> Lookup {
        let path = self.entry_path(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Lookup::Miss,
            Err(error) => {
                warn!(file = %path.display(), %error, "cannot read cache entry; computing the patient again");
                return Lookup::Invalid;
            }
        };
        match entry::decode(&bytes, &key.digest, pseudonym, sequence) {
            Ok(outcome) => Lookup::Hit(outcome),
            Err(error) => {
                warn!(file = %path.display(), %error, "invalid cache entry; computing the patient again");
                Lookup::Invalid
            }
        }
    }

    /// Writes the entry of `key` atomically, unless the image or mask
    /// changed since the key hashed them. Returns the entry's size in
    /// bytes.
    pub fn store(
        &self,
        key: &CacheKey,
        pseudonym: &str,
        sequence: &str,
        outcome: &SequenceOutcome,
    ) -> Result<usize, StoreError> {
        if let Some(changed) = key.stamps.iter().find(|stamp| !stamp.is_current()) {
            return Err(StoreError::FileChanged {
                path: changed.path.clone(),
            });
        }

        let bytes = entry::encode(&key.digest, pseudonym, sequence, outcome);
        let path = self.entry_path(key);
        let folder = path.parent().unwrap_or(&self.dir);
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        // Only the two-digit folder is created here. When the cache
        // directory is removed while the worker runs, writes then fail and
        // are logged, and the directory is not recreated behind the
        // operator's back.
        match std::fs::create_dir(folder) {
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(io_error(folder)(error));
            }
            _ => {}
        }
        let temp = folder.join(format!(
            "{}{TEMP_MARKER}{}-{}",
            key.hex(),
            std::process::id(),
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_synced(&temp, &bytes).and_then(|()| std::fs::rename(&temp, &path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(StoreError::Io { path, source });
        }
        // The rename is durable only once the folder is flushed as well.
        if let Err(error) = std::fs::File::open(folder).and_then(|dir| dir.sync_all()) {
            debug!(folder = %folder.display(), %error, "cannot flush the cache folder");
        }
        Ok(bytes.len())
    }
}

/// Returns whether `outcome` may be cached. Exclusions for a missing or
/// unreadable file are not, because they can come from a passing I/O
/// problem rather than from the file's contents.
pub fn is_cacheable(outcome: &SequenceOutcome) -> bool {
    use crate::error::ExclusionKind;
    match &outcome.features {
        Ok(_) => true,
        Err(exclusion) => !matches!(
            exclusion.kind,
            ExclusionKind::FileMissing | ExclusionKind::FileInvalid
        ),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Removes the temporary files under `dir` older than
/// [`STALE_TEMPORARY_AGE`] and returns how many it removed.
fn remove_temporary_files(dir: &Path) -> usize {
    let Ok(folders) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for folder in folders.flatten() {
        let Ok(files) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for file in files.flatten() {
            if !file.file_name().to_string_lossy().contains(TEMP_MARKER) {
                continue;
            }
            let stale = file
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMPORARY_AGE);
            if stale && std::fs::remove_file(file.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests;
