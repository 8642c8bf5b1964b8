//! The site's cohort manifest: one CSV row per patient.
//!
//! Columns: `patient_id`, `label` (0 or 1), then an `<sequence>_image` and a
//! `<sequence>_mask` column for each sequence, in any order. Paths are
//! relative to the data root; an empty cell means the patient has no such
//! file for that sequence. An optional `<sequence>_label` column selects the
//! ROI of that patient's mask: a number (label value, RTSTRUCT ROINumber or
//! SEG SegmentNumber) or a name (RTSTRUCT ROIName or SEG SegmentLabel). An
//! empty cell, or no such column, leaves the study's `features.label`. A header error rejects the whole manifest. A bad
//! row excludes only its patient, with a reason, so that the rest of the
//! cohort goes on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use crate::mask::file::RoiSelector;

/// Errors that reject the whole manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be opened.
    #[error("cannot read manifest {path}")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header is not valid CSV.
    #[error("invalid manifest {path}: {message}")]
    Csv {
        /// The manifest.
        path: PathBuf,
        /// The CSV reader's message.
        message: String,
    },
    /// The header lacks a required column or has an unknown one.
    #[error("invalid manifest header in {path}: {message}")]
    Header {
        /// The manifest.
        path: PathBuf,
        /// The problem and its fix.
        message: String,
    },
}

/// The image and mask of one sequence, as resolved paths.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceFiles {
    /// The image path under the data root.
    pub image: PathBuf,
    /// The mask path under the data root.
    pub mask: PathBuf,
    /// The ROI that the `<sequence>_label` cell selects, which replaces the
    /// study's numeric label; `None` when the cell is empty or absent.
    pub label: Option<RoiSelector>,
}

/// A manifest row that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    /// 1-based line of the row in the CSV file; logs name a row by it.
    pub line: u64,
    /// The site's patient id; it never leaves the worker.
    pub patient_id: String,
    /// Outcome: `true` for the positive class (label 1).
    pub label: bool,
    /// Files per sequence. A sequence whose entry is `Err` has an empty or
    /// invalid cell, with the reason.
    pub sequences: BTreeMap<String, Result<SequenceFiles, RowProblem>>,
}

/// A row that was rejected as a whole, or a sequence cell that is unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct RowProblem {
    /// 1-based line number in the CSV file (the header is line 1).
    pub line: u64,
    /// Column that the problem concerns.
    pub field: String,
    /// What is wrong, without the cell's path (paths can name a patient).
    pub reason: String,
    /// Whether the problem is only an empty cell (the sequence is not
    /// listed), rather than an invalid one.
    pub empty_cell: bool,
}

/// A row rejected as a whole: its patient id, if one could be read, and the
/// problem.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// The patient id, or `None` when the id cell is empty.
    pub patient_id: Option<String>,
    /// Reason the row was rejected.
    pub problem: RowProblem,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Sequence names in header order.
    pub sequences: Vec<String>,
    /// Accepted rows, in file order.
    pub entries: Vec<ManifestEntry>,
    /// Rows rejected as a whole.
    pub rejected: Vec<RejectedRow>,
}

impl Manifest {
    /// Reads a manifest and resolves its paths under `data_root`.
    pub fn load(path: &Path, data_root: &Path) -> Result<Self, ManifestError> {
        let file = std::fs::File::open(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(file, path, data_root)
    }

    /// Parses manifest CSV text from `reader`; `path` only names the file in
    /// errors.
    pub fn parse(
        mut reader: impl std::io::Read,
        path: &Path,
        data_root: &Path,
    ) -> Result<Self, ManifestError> {
        // Manifests are small; the text is kept to turn byte offsets into
        // line numbers, since the CSV reader's own line count skips blank
        // lines.
        let mut text = Vec::new();
        reader
            .read_to_end(&mut text)
            .map_err(|source| ManifestError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let line_of = |byte: u64| {
            // A record's position can point at the blank lines before it.
            let mut start = (byte as usize).min(text.len());
            while start < text.len() && (text[start] == b'\n' || text[start] == b'\r') {
                start += 1;
            }
            text[..start].iter().filter(|&&b| b == b'\n').count() as u64 + 1
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_slice());
        let header = csv
            .headers()
            .map_err(|error| ManifestError::Csv {
                path: path.to_path_buf(),
                message: error.to_string(),
            })?
            .clone();
        let layout =
            HeaderLayout::from_header(&header).map_err(|message| ManifestError::Header {
                path: path.to_path_buf(),
                message,
            })?;

        let mut entries = Vec::new();
        let mut rejected = Vec::new();
        for (index, record) in csv.records().enumerate() {
            let fallback_line = index as u64 + 2;
            let line = match &record {
                Ok(record) => record
                    .position()
                    .map(|p| line_of(p.byte()))
                    .unwrap_or(fallback_line),
                Err(_) => fallback_line,
            };
            match record {
                Ok(record) => match layout.parse_row(&record, line, header.len(), data_root) {
                    Ok(entry) => entries.push(entry),
                    Err(row) => rejected.push(row),
                },
                Err(error) => rejected.push(RejectedRow {
                    patient_id: None,
                    problem: RowProblem {
                        line: error.position().map(|p| p.line()).unwrap_or(line),
                        field: String::new(),
                        reason: format!("invalid CSV row: {error}"),
                        empty_cell: false,
                    },
                }),
            }
        }

        reject_duplicate_ids(&mut entries, &mut rejected);
        Ok(Manifest {
            sequences: layout.sequences.iter().map(|s| s.name.clone()).collect(),
            entries,
            rejected,
        })
    }

    /// Returns how many accepted rows have each label, as (negative, positive).
    pub fn label_counts(&self) -> (u32, u32) {
        let positive = self.entries.iter().filter(|e| e.label).count() as u32;
        (self.entries.len() as u32 - positive, positive)
    }
}

/// Positions of the header's columns.
struct HeaderLayout {
    patient_id: usize,
    label: usize,
    sequences: Vec<SequenceColumns>,
}

struct SequenceColumns {
    name: String,
    image: usize,
    mask: usize,
    /// The optional `<sequence>_label` column.
    label: Option<usize>,
}

impl HeaderLayout {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        let mut patient_id = None;
        let mut label = None;
        let mut images: BTreeMap<String, usize> = BTreeMap::new();
        let mut masks: BTreeMap<String, usize> = BTreeMap::new();
        let mut roi_labels: BTreeMap<String, usize> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();

        for (index, name) in header.iter().enumerate() {
            let duplicate = || format!("column `{name}` appears twice");
            if name == "patient_id" {
                if patient_id.replace(index).is_some() {
                    return Err(duplicate());
                }
            } else if name == "label" {
                if label.replace(index).is_some() {
                    return Err(duplicate());
                }
            } else if let Some(sequence) = name.strip_suffix("_image").filter(|s| !s.is_empty()) {
                if images.insert(sequence.to_string(), index).is_some() {
                    return Err(duplicate());
                }
                if !order.iter().any(|s| s == sequence) {
                    order.push(sequence.to_string());
                }
            } else if let Some(sequence) = name.strip_suffix("_mask").filter(|s| !s.is_empty()) {
                if masks.insert(sequence.to_string(), index).is_some() {
                    return Err(duplicate());
                }
                if !order.iter().any(|s| s == sequence) {
                    order.push(sequence.to_string());
                }
            } else if let Some(sequence) = name.strip_suffix("_label").filter(|s| !s.is_empty()) {
                if roi_labels.insert(sequence.to_string(), index).is_some() {
                    return Err(duplicate());
                }
            } else {
                return Err(format!(
                    "unknown column `{name}`; expected patient_id, label, <sequence>_image and <sequence>_mask pairs, and optional <sequence>_label columns"
                ));
            }
        }

        let patient_id = patient_id.ok_or("missing column `patient_id`")?;
        let label = label.ok_or("missing column `label`")?;
        let mut sequences = Vec::new();
        for name in order {
            let image = images.get(&name).copied().ok_or_else(|| {
                format!("column `{name}_mask` has no matching `{name}_image` column")
            })?;
            let mask = masks.get(&name).copied().ok_or_else(|| {
                format!("column `{name}_image` has no matching `{name}_mask` column")
            })?;
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "sequence name `{name}` may contain only A-Z, a-z, 0-9, '_' and '-'"
                ));
            }
            let label = roi_labels.remove(&name);
            sequences.push(SequenceColumns {
                name,
                image,
                mask,
                label,
            });
        }
        if let Some(orphan) = roi_labels.keys().next() {
            return Err(format!(
                "column `{orphan}_label` has no matching `{orphan}_image` and `{orphan}_mask` columns"
            ));
        }
        if sequences.is_empty() {
            return Err("no <sequence>_image and <sequence>_mask columns".to_string());
        }
        Ok(HeaderLayout {
            patient_id,
            label,
            sequences,
        })
    }

    fn parse_row(
        &self,
        record: &csv::StringRecord,
        line: u64,
        n_columns: usize,
        data_root: &Path,
    ) -> Result<ManifestEntry, RejectedRow> {
        let patient_id = record.get(self.patient_id).unwrap_or("").to_string();
        let reject = |field: &str, reason: String| RejectedRow {
            patient_id: (!patient_id.is_empty()).then(|| patient_id.clone()),
            problem: RowProblem {
                line,
                field: field.to_string(),
                reason,
                empty_cell: false,
            },
        };

        if record.len() != n_columns {
            return Err(reject(
                "",
                format!(
                    "row has {} fields but the header has {n_columns}; give every column a cell, empty where unknown",
                    record.len()
                ),
            ));
        }
        if patient_id.is_empty() {
            return Err(reject("patient_id", "empty patient_id".to_string()));
        }
        let label = match record.get(self.label).unwrap_or("") {
            "0" => false,
            "1" => true,
            other => return Err(reject("label", format!("label {other:?} is not 0 or 1"))),
        };

        let mut sequences = BTreeMap::new();
        for columns in &self.sequences {
            let image = record.get(columns.image).unwrap_or("");
            let mask = record.get(columns.mask).unwrap_or("");
            let image_field = format!("{}_image", columns.name);
            let mask_field = format!("{}_mask", columns.name);
            let label_field = format!("{}_label", columns.name);
            let problem = |field: &str, reason: &str| RowProblem {
                line,
                field: field.to_string(),
                reason: reason.to_string(),
                empty_cell: false,
            };
            let empty = |field: &str, reason: &str| RowProblem {
                empty_cell: true,
                ..problem(field, reason)
            };
            let label = match columns.label.and_then(|column| record.get(column)) {
                None | Some("") => Ok(None),
                Some(cell) => cell.parse::<RoiSelector>().map(Some),
            };
            let files = match (image.is_empty(), mask.is_empty()) {
                (true, _) => Err(empty(&image_field, "no image listed")),
                (false, true) => Err(empty(&mask_field, "no mask listed")),
                (false, false) => match (
                    resolve_under_root(data_root, image),
                    resolve_under_root(data_root, mask),
                    label,
                ) {
                    (Ok(image), Ok(mask), Ok(label)) => Ok(SequenceFiles { image, mask, label }),
                    (Err(reason), _, _) => Err(problem(&image_field, reason)),
                    (_, Err(reason), _) => Err(problem(&mask_field, reason)),
                    (_, _, Err(reason)) => Err(problem(&label_field, &reason)),
                },
            };
            sequences.insert(columns.name.clone(), files);
        }

        Ok(ManifestEntry {
            line,
            patient_id,
            label,
            sequences,
        })
    }
}

/// Joins a manifest path onto the data root, rejecting absolute paths and
/// any `..` that would leave the root. Symbolic links are checked again when
/// the file is opened.
pub fn resolve_under_root(data_root: &Path, relative: &str) -> Result<PathBuf, &'static str> {
    let relative = Path::new(relative);
    let mut depth: i64 = 0;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(
                        "path leaves the data root; manifest paths must stay under data_root",
                    );
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path; manifest paths must be relative to data_root");
            }
        }
    }
    if depth == 0 {
        return Err("path names the data root itself, not a file");
    }
    Ok(data_root.join(relative))
}

/// Moves every row whose patient id appears more than once to `rejected`,
/// because the rows cannot be distinguished safely.
fn reject_duplicate_ids(entries: &mut Vec<ManifestEntry>, rejected: &mut Vec<RejectedRow>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for entry in entries.iter() {
        *counts.entry(entry.patient_id.clone()).or_default() += 1;
    }
    let (kept, duplicates): (Vec<_>, Vec<_>) = entries
        .drain(..)
        .partition(|entry| counts[&entry.patient_id] == 1);
    *entries = kept;
    for entry in duplicates {
        rejected.push(RejectedRow {
            patient_id: Some(entry.patient_id.clone()),
            problem: RowProblem {
                line: entry.line,
                empty_cell: false,
                field: "patient_id".to_string(),
                reason: format!(
                    "patient_id appears on {} rows; every row of a duplicated id is excluded until the manifest lists it once",
                    counts[&entry.patient_id]
                ),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(
            text.as_bytes(),
            Path::new("manifest.csv"),
            Path::new("/data"),
        )
    }

    #[test]
    fn manifest_reads_sequences_and_rows() {
        let manifest = parse(
            "patient_id,label,T1_image,T1_mask,PET_image,PET_mask\n\
             P1,0,p1/t1.nii.gz,p1/t1m.nii.gz,p1/pet.nii.gz,p1/petm.nii.gz\n\
             P2,1,p2/t1.nii.gz,p2/t1m.nii.gz,,\n",
        )
        .expect("valid manifest");
        assert_eq!(manifest.sequences, ["T1", "PET"]);
        assert_eq!(manifest.entries.len(), 2);
        assert_eq!(manifest.label_counts(), (1, 1));
        let p1 = &manifest.entries[0].sequences["T1"];
        assert_eq!(
            p1.as_ref().map(|f| f.image.clone()),
            Ok(PathBuf::from("/data/p1/t1.nii.gz"))
        );
        let p2_pet = &manifest.entries[1].sequences["PET"];
        assert_eq!(p2_pet.as_ref().unwrap_err().field, "PET_image");
    }

    #[test]
    fn manifest_path_escaping_root_is_rejected() {
        let manifest = parse(
            "patient_id,label,T1_image,T1_mask\nP1,0,../secret.nii,p1/m.nii\nP2,0,/abs.nii,m.nii\n",
        )
        .expect("header is valid");
        for entry in &manifest.entries {
            let problem = entry.sequences["T1"].as_ref().unwrap_err();
            assert_eq!(problem.field, "T1_image");
        }
        assert!(resolve_under_root(Path::new("/d"), "a/../../b").is_err());
        assert!(resolve_under_root(Path::new("/d"), "a/../b").is_ok());
    }

    #[test]
    fn manifest_bad_label_rejects_only_that_row() {
        let manifest = parse("patient_id,label,T1_image,T1_mask\nP1,2,a,b\nP2,1,a,b\n")
            .expect("header is valid");
        assert_eq!(manifest.entries.len(), 1);
        assert_eq!(manifest.rejected.len(), 1);
        assert_eq!(manifest.rejected[0].problem.line, 2);
        assert_eq!(manifest.rejected[0].problem.field, "label");
    }

    #[test]
    fn manifest_short_row_is_rejected_with_line() {
        let manifest = parse("patient_id,label,T1_image,T1_mask\nP1,0,a\nP2,1,a,b\n")
            .expect("header is valid");
        assert_eq!(manifest.entries.len(), 1);
        assert_eq!(manifest.rejected[0].problem.line, 2);
        assert!(manifest.rejected[0].problem.reason.contains("3 fields"));
    }

    #[test]
    fn manifest_duplicate_ids_are_all_rejected() {
        let manifest = parse("patient_id,label,T1_image,T1_mask\nP1,0,a,b\nP1,1,c,d\nP2,0,a,b\n")
            .expect("header is valid");
        assert_eq!(manifest.entries.len(), 1);
        assert_eq!(manifest.rejected.len(), 2);
    }

    #[test]
    fn manifest_header_errors_name_the_column() {
        let missing = parse("patient_id,T1_image,T1_mask\n").unwrap_err();
        assert!(missing.to_string().contains("`label`"), "{missing}");
        let unpaired = parse("patient_id,label,T1_image\n").unwrap_err();
        assert!(unpaired.to_string().contains("T1_mask"), "{unpaired}");
        let unknown = parse("patient_id,label,T1_image,T1_mask,age\n").unwrap_err();
        assert!(unknown.to_string().contains("`age`"), "{unknown}");
    }

    #[test]
    fn manifest_sequence_label_takes_number_or_name() {
        let manifest = parse(
            "patient_id,label,CT_image,CT_mask,CT_label\n\
             P1,0,p1/ct,p1/rs.dcm,GTV-1\n\
             P2,1,p2/ct,p2/rs.dcm,3\n\
             P3,0,p3/ct,p3/m.nii.gz,\n",
        )
        .expect("valid manifest");
        let label = |row: usize| {
            manifest.entries[row].sequences["CT"]
                .as_ref()
                .expect("files are valid")
                .label
                .clone()
        };
        assert_eq!(manifest.sequences, ["CT"]);
        assert_eq!(label(0), Some(RoiSelector::Name("GTV-1".into())));
        assert_eq!(label(1), Some(RoiSelector::Number(3)));
        assert_eq!(label(2), None, "an empty cell keeps the study's label");
    }

    #[test]
    fn manifest_invalid_sequence_label_names_field() {
        let manifest = parse("patient_id,label,CT_image,CT_mask,CT_label\nP1,0,a,b,0\n")
            .expect("header is valid");
        let problem = manifest.entries[0].sequences["CT"]
            .as_ref()
            .expect_err("label 0 selects no ROI");
        assert_eq!(problem.field, "CT_label");
        assert!(problem.reason.contains("label 0"), "{}", problem.reason);
    }

    #[test]
    fn manifest_label_without_sequence_is_rejected() {
        let error = parse("patient_id,label,CT_image,CT_mask,PET_label\n").unwrap_err();
        assert!(error.to_string().contains("`PET_label`"), "{error}");
        let twice = parse("patient_id,label,CT_image,CT_mask,CT_label,CT_label\n").unwrap_err();
        assert!(twice.to_string().contains("appears twice"), "{twice}");
    }

    #[test]
    fn manifest_line_numbers_count_blank_lines() {
        // Line 3 is blank, so the short row is on line 5 of the file.
        let manifest = parse("patient_id,label,T1_image,T1_mask\nP1,0,a,b\n\nP2,1,a,b\nP3,0,a\n")
            .expect("header is valid");
        assert_eq!(manifest.entries[1].line, 4);
        assert_eq!(manifest.rejected[0].problem.line, 5);
    }

    #[test]
    fn manifest_empty_cell_is_not_invalid() {
        let manifest = parse("patient_id,label,T1_image,T1_mask\nP1,0,,\nP2,0,../x,b\n")
            .expect("header is valid");
        assert!(
            manifest.entries[0].sequences["T1"]
                .as_ref()
                .unwrap_err()
                .empty_cell
        );
        assert!(
            !manifest.entries[1].sequences["T1"]
                .as_ref()
                .unwrap_err()
                .empty_cell
        );
    }
}
