//! `radstudy-worker extract`: PyRadiomics-style feature extraction from local files, for one
//! case or a batch, without a coordinator.
//!
//! Output CSV: one row per case, an `id` column, then one column per feature under its
//! PyRadiomics name (`<image type>_<class>_<Feature>`, such as `original_glcm_Idm` or
//! `wavelet-LLH_firstorder_Mean`). When any case fails, a last `error` column names the
//! case and the reason for each failed row. The feature cells of a failed row stay empty,
//! and the other rows are unaffected. A LoG σ that PyRadiomics skips for a small image
//! leaves that case's cells of the σ empty and logs a warning.

use std::path::{Path, PathBuf};

use crate::config::GeometryTolerance;
use crate::features::image_types::{ImageTypeSpec, compute_image_types};
use crate::features::{ExtractionOptions, ExtractionSettings, FeatureClass, FeatureError};
use crate::image::{ImageError, read_image_file};
use crate::mask::file::{MaskFileError, RoiSelector, read_mask};
use crate::mask::{MaskError, PlacementError, into_image_grid, select_label_spanning};
use crate::params::{ParameterFile, ParamsError, parse_parameters, read_parameter_file};

/// One case to extract.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Identifier written to the `id` column.
    pub id: String,
    /// Image: a NIfTI or NRRD file, or a DICOM series (folder or one of its files).
    pub image: PathBuf,
    /// Mask: a label map on the image grid, on a box inside it or on a larger grid cropped
    /// to it (see [`crate::mask::place_on_image_grid`]), or a DICOM RTSTRUCT or SEG file.
    pub mask: PathBuf,
    /// Label number or ROI name; none uses the parameter file's label.
    pub label: Option<RoiSelector>,
}

/// Reason one case produced no features.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The image could not be read.
    #[error("image {path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The reader's error.
        source: ImageError,
    },
    /// The mask could not be read, or does not contain the ROI.
    #[error("mask {path}: {source}")]
    Mask {
        /// The mask file.
        path: PathBuf,
        /// The reader's error.
        source: MaskFileError,
    },
    /// The mask does not lie on the image grid, or voxels of its label lie outside the
    /// image.
    #[error("mask {path}: {source}")]
    Placement {
        /// The mask file.
        path: PathBuf,
        /// The mask's offset against the image, or its voxels outside the image.
        source: PlacementError,
    },
    /// The label selects no usable ROI.
    #[error("mask {path}: {source}")]
    Roi {
        /// The mask file.
        path: PathBuf,
        /// The label problem.
        source: MaskError,
    },
    /// The batch CSV row names no usable case.
    #[error("batch file line {line}: {reason}")]
    BatchRow {
        /// Line of the row.
        line: u64,
        /// The row's problem.
        reason: String,
    },
    /// The ROI has fewer voxels than `minimumROISize`.
    #[error("ROI has {voxels} voxels, fewer than minimumROISize = {minimum}")]
    RoiTooFewVoxels {
        /// Voxels in the ROI.
        voxels: usize,
        /// The minimum.
        minimum: usize,
    },
    /// Feature computation failed.
    #[error(transparent)]
    Features(#[from] FeatureError),
}

/// Error that stops the whole command.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The parameter file is invalid; its message names the key.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The batch CSV could not be read.
    #[error("batch file {path}: {reason}")]
    Batch {
        /// The batch CSV.
        path: PathBuf,
        /// The problem, with its line where known.
        reason: String,
    },
    /// `--out` names an existing directory.
    #[error(
        "--out {} is a directory; give the path of the CSV file to write, such as {}",
        path.display(),
        path.join("features.csv").display()
    )]
    OutputIsDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// The output could not be written.
    #[error("cannot write output {path}: {reason}")]
    Output {
        /// The output file, or `-` for standard output.
        path: PathBuf,
        /// The writer's error.
        reason: String,
    },
}

/// A batch row that names no usable case; it gets its own output row with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// The row's ID cell, or `line N` when the cell is empty or missing.
    pub id: String,
    /// Line of the row in the batch CSV (the header is line 1).
    pub line: u64,
    /// The row's problem.
    pub reason: String,
}

/// One row of a batch CSV: a case to extract, or the reason it cannot be.
pub type BatchRow = Result<Case, RejectedRow>;

/// Reads a batch CSV with columns `ID`, `Image`, `Mask` and optional `Label` (PyRadiomics'
/// batch format; here `Label` may also be an RTSTRUCT ROI name or a SEG segment label). Relative paths are relative to the CSV's folder; other columns are
/// ignored, as PyRadiomics passes them through.
///
/// Fails on a file that cannot be read, lacks a required column or lists no case. Returns
/// a bad row (too few cells, an empty ID, a repeated ID, an invalid Label, text that is not
/// UTF-8) as a [`RejectedRow`], so the other cases still run.
pub fn read_batch(path: &Path) -> Result<Vec<BatchRow>, ExtractError> {
    let batch_error = |reason: String| ExtractError::Batch {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|error| batch_error(error.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|error| batch_error(error.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|header| header.trim() == name);
    let (Some(id_column), Some(image_column), Some(mask_column)) =
        (column("ID"), column("Image"), column("Mask"))
    else {
        return Err(batch_error(format!(
            "header {:?} lacks one of the required columns ID, Image, Mask",
            headers.iter().collect::<Vec<_>>()
        )));
    };
    let label_column = column("Label");
    let base = path.parent().unwrap_or(Path::new("."));

    let mut rows = Vec::new();
    let mut first_line_of_id = std::collections::HashMap::<String, u64>::new();
    let mut record = csv::StringRecord::new();
    // Line 1 is the header. A quoted cell may span lines, so the reader's position wins.
    let mut line = 1;
    loop {
        let read = reader.read_record(&mut record);
        let position = match &read {
            Ok(_) => record.position(),
            Err(error) => error.position(),
        };
        line = position.map_or(line + 1, csv::Position::line);
        let reject = |id: String, reason: String| RejectedRow { id, line, reason };
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) if matches!(error.kind(), csv::ErrorKind::Io(_)) => {
                return Err(batch_error(format!("line {line}: {error}")));
            }
            Err(error) => {
                rows.push(Err(reject(format!("line {line}"), error.to_string())));
                continue;
            }
        }
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }

        let cell = |column: usize| record.get(column).map(|text| text.trim().to_string());
        let id = cell(id_column).filter(|id| !id.is_empty());
        let Some(id) = id else {
            rows.push(Err(reject(
                format!("line {line}"),
                "the ID cell is empty or missing".to_string(),
            )));
            continue;
        };
        if let Some(first) = first_line_of_id.get(&id) {
            let reason = format!("ID {id} is already used on line {first}; IDs must be unique");
            rows.push(Err(reject(id, reason)));
            continue;
        }
        first_line_of_id.insert(id.clone(), line);
        let (Some(image), Some(mask)) = (
            cell(image_column).filter(|text| !text.is_empty()),
            cell(mask_column).filter(|text| !text.is_empty()),
        ) else {
            let reason = format!(
                "the row has {} cells and no Image or no Mask; the header has {}",
                record.len(),
                headers.len()
            );
            rows.push(Err(reject(id, reason)));
            continue;
        };
        let label = match label_column.and_then(cell).filter(|text| !text.is_empty()) {
            None => None,
            Some(text) => match text.parse::<RoiSelector>() {
                Ok(label) => Some(label),
                Err(reason) => {
                    rows.push(Err(reject(id, reason)));
                    continue;
                }
            },
        };
        rows.push(Ok(Case {
            image: base.join(image),
            mask: base.join(mask),
            id,
            label,
        }));
    }
    if rows.is_empty() {
        return Err(batch_error("the file lists no case".to_string()));
    }
    Ok(rows)
}

/// Loads one case and computes the features of every image type as `(column name, value)`
/// pairs.
pub fn extract_case(
    case: &Case,
    settings: &ExtractionSettings,
    options: &ExtractionOptions,
    image_types: &[ImageTypeSpec],
) -> Result<Vec<(String, f64)>, CaseError> {
    let file = read_image_file(&case.image).map_err(|source| CaseError::Image {
        path: case.image.clone(),
        source,
    })?;
    let image = file.volume;
    let image_frame = file.frame_of_reference_uid;
    let mut tolerance = GeometryTolerance::default();
    if let Some(origin_mm) = options.geometry_tolerance_mm {
        tolerance.origin_mm = origin_mm;
    }
    let selector = case
        .label
        .clone()
        .unwrap_or(RoiSelector::Number(settings.label));
    let (labels, label) = read_mask(
        &case.mask,
        &image,
        image_frame.as_deref(),
        &selector,
        &tolerance,
    )
    .map_err(|source| CaseError::Mask {
        path: case.mask.clone(),
        source,
    })?;
    let labels = into_image_grid(labels, &image.geometry, &tolerance, label).map_err(|source| {
        CaseError::Placement {
            path: case.mask.clone(),
            source,
        }
    })?;
    let roi = select_label_spanning(&labels, label, options.minimum_roi_dimensions).map_err(
        |source| CaseError::Roi {
            path: case.mask.clone(),
            source,
        },
    )?;
    if let Some(minimum) = options.minimum_roi_size
        && roi.voxel_count < minimum
    {
        return Err(CaseError::RoiTooFewVoxels {
            voxels: roi.voxel_count,
            minimum,
        });
    }
    let mut settings = settings.clone();
    settings.label = label;
    Ok(compute_image_types(
        &image,
        file.pixel_type,
        &roi,
        &settings,
        options,
        image_types,
    )?)
}

/// Loads the parameter file, or PyRadiomics' defaults without one, and applies `--label`.
pub fn load_parameters(
    param: Option<&Path>,
    label: Option<u32>,
) -> Result<ParameterFile, ExtractError> {
    let mut parameters = match param {
        Some(path) => read_parameter_file(path)?,
        None => parse_parameters("")?,
    };
    if let Some(label) = label {
        parameters.settings.label = label;
    }
    Ok(parameters)
}

/// Returns the feature columns the parameters produce, in output order: shape of the
/// original image, then the other classes of each image type.
pub fn feature_columns(parameters: &ParameterFile) -> Vec<String> {
    if parameters.options.convention == crate::features::ibsi::Convention::Ibsi {
        return crate::features::ibsi_columns(&parameters.settings);
    }
    let classes = &parameters.settings.classes;
    let mut columns = Vec::new();
    for &class in classes.iter().filter(|class| class.is_shape()) {
        columns.extend(class_columns("original", class, &parameters.options));
    }
    for spec in &parameters.image_types {
        for image_name in spec.image_type.image_names() {
            for &class in classes.iter().filter(|class| !class.is_shape()) {
                columns.extend(class_columns(&image_name, class, &spec.options));
            }
        }
    }
    columns
}

/// Returns the selected feature columns of one class of one image type.
fn class_columns(
    image_name: &str,
    class: FeatureClass,
    options: &ExtractionOptions,
) -> Vec<String> {
    let selected = options.selection.get(&class);
    class
        .computed_feature_names()
        .iter()
        .filter(|feature| match selected {
            Some(names) => names.contains(feature),
            None => class.feature_names().contains(feature),
        })
        .map(|feature| format!("{image_name}_{}_{feature}", class.name()))
        .collect()
}

/// Features of one case, or the reason it has none.
type CaseResult = Result<Vec<(String, f64)>, CaseError>;

/// Extracts every case and writes the CSV to `out` (standard output when none). Returns
/// the number of failed cases; each failure is also logged.
pub fn run_extract(
    cases: &[BatchRow],
    parameters: &ParameterFile,
    out: Option<&Path>,
) -> Result<usize, ExtractError> {
    let columns = feature_columns(parameters);
    // Open the output first, so that an unwritable --out fails before a long
    // batch runs instead of after it.
    let output_path = out.map_or_else(|| PathBuf::from("-"), Path::to_path_buf);
    let output_error = |error: &dyn std::fmt::Display| ExtractError::Output {
        path: output_path.clone(),
        reason: error.to_string(),
    };
    let sink: Box<dyn std::io::Write> = match out {
        Some(path) if path.is_dir() => {
            return Err(ExtractError::OutputIsDirectory {
                path: path.to_path_buf(),
            });
        }
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| output_error(&e))?),
        None => Box::new(std::io::stdout()),
    };

    let mut rows: Vec<(String, CaseResult)> = Vec::new();
    for row in cases {
        let (id, result) = match row {
            Ok(case) => {
                let span = tracing::info_span!("extract_case", case = %case.id);
                let _entered = span.enter();
                let result = extract_case(
                    case,
                    &parameters.settings,
                    &parameters.options,
                    &parameters.image_types,
                );
                (case.id.clone(), result)
            }
            Err(rejected) => {
                let error = CaseError::BatchRow {
                    line: rejected.line,
                    reason: rejected.reason.clone(),
                };
                (rejected.id.clone(), Err(error))
            }
        };
        match &result {
            Ok(_) => tracing::info!(case = %id, "case extracted"),
            Err(error) => tracing::warn!(case = %id, %error, "case failed"),
        }
        rows.push((id, result));
    }
    let failed = rows.iter().filter(|(_, result)| result.is_err()).count();

    let mut writer = csv::Writer::from_writer(sink);
    let mut header = vec!["id".to_string()];
    header.extend(columns.iter().cloned());
    if failed > 0 {
        header.push("error".to_string());
    }
    writer.write_record(&header).map_err(|e| output_error(&e))?;
    for (id, result) in &rows {
        let mut record = vec![id.clone()];
        match result {
            Ok(features) => {
                for column in &columns {
                    // Shortest text that reads back to the same f64.
                    let value = features
                        .iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, value)| format!("{value:?}"))
                        .unwrap_or_default();
                    record.push(value);
                }
                if failed > 0 {
                    record.push(String::new());
                }
            }
            Err(error) => {
                record.extend(std::iter::repeat_n(String::new(), columns.len()));
                record.push(format!("case {id}: {error}"));
            }
        }
        writer.write_record(&record).map_err(|e| output_error(&e))?;
    }
    writer.flush().map_err(|e| output_error(&e))?;
    Ok(failed)
}

/// Checks a case id given on the command line (`extract --id`) and returns it without
/// surrounding whitespace. An empty id, a comma or a line break is rejected: CSV readers
/// that split lines on commas and newlines would misread the `id` cell.
pub fn parse_case_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if id.is_empty() {
        return Err("the case id is empty; give a name such as lesion_01".to_string());
    }
    if id.contains([',', '\n', '\r']) {
        return Err(format!(
            "case id {id:?} contains a comma or a line break, which would split the id cell of the output CSV; give an id without them, such as {:?}",
            id.replace([',', '\n', '\r'], "_")
        ));
    }
    Ok(id.to_string())
}

/// Returns the case id of a single image: its file or folder name without `.nii.gz`,
/// `.nii`, `.nrrd`, `.nhdr` or `.dcm`.
pub fn case_id(image: &Path) -> String {
    let name = image
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| image.display().to_string());
    for suffix in [".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return stem.to_string();
        }
    }
    name
}

#[cfg(test)]
mod tests;
