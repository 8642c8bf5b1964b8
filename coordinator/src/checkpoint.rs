//! Study checkpoints: the `state/` folder of the study directory.
//!
//! A study writes `state/study.json` before its first round: the round
//! ids of every round it will run and the hash of the study settings.
//! After each completed stage it writes that stage's file with what later
//! steps need:
//!
//! - `extraction.json`: the first extraction round's feature tables,
//!   exclusions, failed centers and scores-only centers;
//! - `features.json`: the same after the habitat rounds and the second
//!   extraction, plus each patient's cohort and the habitat regions;
//! - `icc.json`: the reproducibility filter's report.
//!
//! `radstudy run --resume` loads the newest stage and runs only the steps
//! after it, under the stored round ids, so a worker that still keeps a
//! round in memory returns it instead of computing it again. The later steps are
//! deterministic given the stored results, which makes a resumed study's
//! files equal to an uninterrupted one's.
//!
//! NOTE: the habitat rounds have no checkpoint of their own. A study
//! resumed from `extraction.json` runs them again under the stored round
//! ids, which a worker that restarted in between computes from scratch.
//!
//! Every file is written to a temporary name, synced and renamed, so a
//! crash leaves either the old file or the new one. Feature values are
//! stored bit-exact: tables as protobuf (hex in JSON), floats of the ICC
//! report as their IEEE-754 bits. The files hold the pseudonymised
//! feature rows that `features.csv` also holds, and no image data.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use radstudy_proto::v1::FeatureTableChunk;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::client::{CenterTable, ExclusionRecord};
use crate::config::StudyConfig;
use crate::reproducibility::{IccChoice, IccReport, IccRow};
use crate::run::CenterFailure;
use crate::split::Cohort;
use crate::stats::icc::ConfidenceInterval;

/// Folder of the checkpoints inside the study directory.
pub const STATE_DIR: &str = "state";

/// Version of the checkpoint files; a study written by another version
/// cannot be resumed.
const FORMAT: u32 = 1;

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A new study was started in a directory that contains checkpoints.
    #[error(
        "the study directory {dir} contains the checkpoints of an earlier run ({state}); rerun with --resume to continue that study, or give an empty --out directory to start over"
    )]
    StateExists {
        /// The study directory.
        dir: PathBuf,
        /// Its `state/study.json`.
        state: PathBuf,
    },
    /// `--resume` was given, but the directory contains no checkpoint.
    #[error(
        "cannot resume: {state} not found, so no earlier run of this study wrote checkpoints in {dir}; check --out, or run without --resume to start the study"
    )]
    NothingToResume {
        /// The study directory.
        dir: PathBuf,
        /// The missing `state/study.json`.
        state: PathBuf,
    },
    /// The study settings changed since the checkpoints were written.
    #[error(
        "cannot resume: the study settings changed since {state} was written (settings hash {stored} there, {current} now); restore the earlier study.toml to resume, or run the changed study in a new --out directory"
    )]
    SettingsChanged {
        /// The `state/study.json`.
        state: PathBuf,
        /// The hash stored there.
        stored: String,
        /// The hash of the current study.toml.
        current: String,
    },
    /// A checkpoint file cannot be read or is invalid.
    #[error(
        "cannot resume: checkpoint {path} is invalid ({message}); delete the study directory's state/ folder and start the study again"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parse or decode error.
        message: String,
    },
    /// A checkpoint file cannot be written.
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Round ids of one study, fixed before its first round so that a
/// resumed study sends the same ids again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundIds {
    /// The first extraction round.
    pub extraction: String,
    /// The habitat supervoxel round.
    pub supervoxel: String,
    /// The habitat apply round.
    pub habitat_apply: String,
    /// The extraction round of every region, after the habitat rounds.
    pub region_extraction: String,
    /// The reproducibility (ICC) perturbation round.
    pub icc: String,
}

impl RoundIds {
    /// Draws new random (v4 UUID) ids.
    pub fn fresh() -> Self {
        let id = || uuid::Uuid::new_v4().to_string();
        RoundIds {
            extraction: id(),
            supervoxel: id(),
            habitat_apply: id(),
            region_extraction: id(),
            icc: id(),
        }
    }
}

/// `state/study.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StudyState {
    format: u32,
    study_id: String,
    settings_hash: String,
    round_ids: RoundIds,
}

/// Results of an extraction round that later steps need.
#[derive(Debug, Clone)]
pub struct ExtractionState {
    /// Feature tables of the centers that share them.
    pub tables: Vec<(String, CenterTable)>,
    /// Centers that validate by scores only.
    pub remote_validation: Vec<String>,
    /// Patients excluded, per sequence.
    pub exclusions: Vec<ExclusionRecord>,
    /// Centers left out so far, in the order they failed.
    pub failures: Vec<CenterFailure>,
}

/// The final feature table's inputs, after the habitat rounds.
#[derive(Debug, Clone)]
pub struct FeaturesState {
    /// Tables, exclusions and failures up to this point.
    pub extraction: ExtractionState,
    /// Notes so far.
    pub notes: Vec<String>,
    /// Cohort of each patient, by center and pseudonym.
    pub cohorts: Vec<(String, String, Cohort)>,
    /// The habitat apply round and its regions, when the habitat rounds
    /// ran.
    pub habitat_regions: Option<(String, Vec<String>)>,
    /// The round whose tables are in `extraction`.
    pub extraction_round_id: String,
}

/// The checkpoints of one study directory.
#[derive(Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    round_ids: RoundIds,
}

impl Checkpoints {
    /// Starts the checkpoints of a new study in `out_dir`, or loads those
    /// of an earlier run when `resume` is set. A new study is rejected
    /// when `state/` already contains one. A resumed study is rejected when
    /// it contains none, or one of different settings.
    pub fn open(
        out_dir: &Path,
        config: &StudyConfig,
        resume: bool,
    ) -> Result<Self, CheckpointError> {
        let dir = out_dir.join(STATE_DIR);
        let state_file = dir.join("study.json");
        let current = settings_hash(config);

        if !resume {
            if state_file.exists() {
                return Err(CheckpointError::StateExists {
                    dir: out_dir.to_path_buf(),
                    state: state_file,
                });
            }
            let round_ids = RoundIds::fresh();
            let state = StudyState {
                format: FORMAT,
                study_id: config.study_id.clone(),
                settings_hash: current,
                round_ids: round_ids.clone(),
            };
            write_json_atomic(&state_file, &state)?;
            return Ok(Checkpoints { dir, round_ids });
        }

        if !state_file.exists() {
            return Err(CheckpointError::NothingToResume {
                dir: out_dir.to_path_buf(),
                state: state_file,
            });
        }
        let state: StudyState = read_json(&state_file)?;
        if state.format != FORMAT {
            return Err(CheckpointError::Invalid {
                path: state_file,
                message: format!(
                    "format {} written by another radstudy version; this one reads format {FORMAT}",
                    state.format
                ),
            });
        }
        if state.settings_hash != current || state.study_id != config.study_id {
            return Err(CheckpointError::SettingsChanged {
                state: state_file,
                stored: state.settings_hash,
                current,
            });
        }
        info!(state = %dir.display(), "resuming the study from its checkpoints");
        Ok(Checkpoints {
            dir,
            round_ids: state.round_ids,
        })
    }

    /// Returns the round ids of the study.
    pub fn round_ids(&self) -> &RoundIds {
        &self.round_ids
    }

    /// Stores the first extraction round's results.
    pub fn save_extraction(&self, state: &ExtractionState) -> Result<(), CheckpointError> {
        write_json_atomic(
            &self.dir.join("extraction.json"),
            &StoredExtraction::from(state),
        )
    }

    /// Loads the first extraction round's results, if stored.
    pub fn load_extraction(&self) -> Result<Option<ExtractionState>, CheckpointError> {
        let path = self.dir.join("extraction.json");
        if !path.exists() {
            return Ok(None);
        }
        let stored: StoredExtraction = read_json(&path)?;
        stored.restore(&path).map(Some)
    }

    /// Stores the inputs of the final feature table.
    pub fn save_features(&self, state: &FeaturesState) -> Result<(), CheckpointError> {
        let stored = StoredFeatures {
            extraction: StoredExtraction::from(&state.extraction),
            notes: state.notes.clone(),
            cohorts: state.cohorts.clone(),
            habitat_regions: state.habitat_regions.clone(),
            extraction_round_id: state.extraction_round_id.clone(),
        };
        write_json_atomic(&self.dir.join("features.json"), &stored)
    }

    /// Loads the inputs of the final feature table, if stored.
    pub fn load_features(&self) -> Result<Option<FeaturesState>, CheckpointError> {
        let path = self.dir.join("features.json");
        if !path.exists() {
            return Ok(None);
        }
        let stored: StoredFeatures = read_json(&path)?;
        Ok(Some(FeaturesState {
            extraction: stored.extraction.restore(&path)?,
            notes: stored.notes,
            cohorts: stored.cohorts,
            habitat_regions: stored.habitat_regions,
            extraction_round_id: stored.extraction_round_id,
        }))
    }

    /// Stores the reproducibility filter's report.
    pub fn save_icc(&self, report: &IccReport) -> Result<(), CheckpointError> {
        write_json_atomic(&self.dir.join("icc.json"), &StoredIcc::from(report))
    }

    /// Loads the reproducibility filter's report, if stored.
    pub fn load_icc(&self) -> Result<Option<IccReport>, CheckpointError> {
        let path = self.dir.join("icc.json");
        if !path.exists() {
            return Ok(None);
        }
        let stored: StoredIcc = read_json(&path)?;
        Ok(Some(stored.restore()))
    }
}

/// Returns a SHA-256 (hex) over the settings that change a result (see
/// `run::settings_hash`) and the centers' ids and roles, which decide
/// who trains and who validates. Endpoints, TLS files, timeouts and
/// retries are left out, so a moved worker or a longer deadline still
/// resumes.
pub fn settings_hash(config: &StudyConfig) -> String {
    use sha2::{Digest, Sha256};

    let centers: Vec<String> = config
        .centers
        .iter()
        .map(|c| format!("{}:{:?}", c.id, c.role))
        .collect();
    let text = format!(
        "{}|{}|{:?}",
        config.study_id,
        crate::run::settings_hash(config),
        centers
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredExtraction {
    /// Per center, its table as a hex-encoded `FeatureTableChunk`.
    tables: Vec<(String, String)>,
    remote_validation: Vec<String>,
    exclusions: Vec<ExclusionRecord>,
    failures: Vec<CenterFailure>,
}

impl From<&ExtractionState> for StoredExtraction {
    fn from(state: &ExtractionState) -> Self {
        let tables = state
            .tables
            .iter()
            .map(|(center, table)| {
                let chunk = FeatureTableChunk {
                    feature_names: table.feature_names.clone(),
                    rows: table.rows.clone(),
                    chunk_index: 0,
                    chunk_count: 1,
                };
                (center.clone(), hex::encode(chunk.encode_to_vec()))
            })
            .collect();
        StoredExtraction {
            tables,
            remote_validation: state.remote_validation.clone(),
            exclusions: state.exclusions.clone(),
            failures: state.failures.clone(),
        }
    }
}

impl StoredExtraction {
    fn restore(self, path: &Path) -> Result<ExtractionState, CheckpointError> {
        let mut tables = Vec::with_capacity(self.tables.len());
        for (center, encoded) in self.tables {
            let invalid = |message: String| CheckpointError::Invalid {
                path: path.to_path_buf(),
                message: format!("table of center {center}: {message}"),
            };
            let bytes = hex::decode(&encoded).map_err(|e| invalid(e.to_string()))?;
            let chunk =
                FeatureTableChunk::decode(bytes.as_slice()).map_err(|e| invalid(e.to_string()))?;
            tables.push((
                center,
                CenterTable {
                    feature_names: chunk.feature_names,
                    rows: chunk.rows,
                },
            ));
        }
        Ok(ExtractionState {
            tables,
            remote_validation: self.remote_validation,
            exclusions: self.exclusions,
            failures: self.failures,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredFeatures {
    extraction: StoredExtraction,
    notes: Vec<String>,
    cohorts: Vec<(String, String, Cohort)>,
    habitat_regions: Option<(String, Vec<String>)>,
    extraction_round_id: String,
}

/// An [`IccReport`] with every float as its IEEE-754 bits, because a
/// decimal round trip is not guaranteed exact and has no form for NaN.
#[derive(Debug, Serialize, Deserialize)]
struct StoredIcc {
    form: Option<IccChoice>,
    threshold_bits: u64,
    rows: Vec<StoredIccRow>,
    centers: Vec<String>,
    left_out: Vec<(String, String)>,
    failed: Vec<(String, String)>,
    unfiltered_sequences: Vec<String>,
    not_run: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredIccRow {
    column: String,
    sequence: String,
    region: String,
    feature: String,
    n: usize,
    k: usize,
    /// ICC(1,1), ICC(2,1) and ICC(3,1).
    icc_bits: [u64; 3],
    /// Lower and upper bound.
    ci_bits: Option<[u64; 2]>,
    kept: bool,
}

impl From<&IccReport> for StoredIcc {
    fn from(report: &IccReport) -> Self {
        StoredIcc {
            form: report.form,
            threshold_bits: report.threshold.to_bits(),
            rows: report
                .rows
                .iter()
                .map(|row| StoredIccRow {
                    column: row.column.clone(),
                    sequence: row.sequence.clone(),
                    region: row.region.clone(),
                    feature: row.feature.clone(),
                    n: row.n,
                    k: row.k,
                    icc_bits: [
                        row.icc1_1.to_bits(),
                        row.icc2_1.to_bits(),
                        row.icc3_1.to_bits(),
                    ],
                    ci_bits: row.ci.map(|ci| [ci.lower.to_bits(), ci.upper.to_bits()]),
                    kept: row.kept,
                })
                .collect(),
            centers: report.centers.clone(),
            left_out: report.left_out.clone(),
            failed: report.failed.clone(),
            unfiltered_sequences: report.unfiltered_sequences.clone(),
            not_run: report.not_run.clone(),
        }
    }
}

impl StoredIcc {
    fn restore(self) -> IccReport {
        IccReport {
            form: self.form,
            threshold: f64::from_bits(self.threshold_bits),
            rows: self
                .rows
                .into_iter()
                .map(|row| IccRow {
                    column: row.column,
                    sequence: row.sequence,
                    region: row.region,
                    feature: row.feature,
                    n: row.n,
                    k: row.k,
                    icc1_1: f64::from_bits(row.icc_bits[0]),
                    icc2_1: f64::from_bits(row.icc_bits[1]),
                    icc3_1: f64::from_bits(row.icc_bits[2]),
                    ci: row.ci_bits.map(|[lower, upper]| ConfidenceInterval {
                        lower: f64::from_bits(lower),
                        upper: f64::from_bits(upper),
                    }),
                    kept: row.kept,
                })
                .collect(),
            centers: self.centers,
            left_out: self.left_out,
            failed: self.failed,
            unfiltered_sequences: self.unfiltered_sequences,
            not_run: self.not_run,
        }
    }
}

/// Writes `value` as JSON to `path` through a synced temporary file and a
/// rename, so that readers see the old file or the new one, never a part.
fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let write_error = |source: std::io::Error| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec(value).map_err(|e| write_error(std::io::Error::other(e)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;

    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary).map_err(write_error)?;
    file.write_all(&text).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(write_error)?;

    // The rename is durable once the folder's entry is synced.
    if let Ok(folder) = std::fs::File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
