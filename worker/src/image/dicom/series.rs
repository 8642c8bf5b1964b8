//! Image series: single-frame files of one SeriesInstanceUID, or one
//! enhanced multi-frame file, assembled into a [`Volume`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use ndarray::Array3;

use super::attributes::{Attributes, describe};
use super::functional_groups::frame_groups;
use super::pixels::decode_frames;
use super::stack::{FramePlacement, stack_frames};
use super::{DicomError, DicomImage, is_dicom_file};
use crate::image::Volume;

/// Modalities whose objects are not images of the patient, skipped when a
/// folder is scanned.
const NON_IMAGE_MODALITIES: [&str; 5] = ["RTSTRUCT", "SEG", "RTPLAN", "RTDOSE", "SR"];

/// Header of one candidate file, read up to Pixel Data.
struct Header {
    path: PathBuf,
    object: DefaultDicomObject,
    series: String,
}

/// The files that [`read_series`] reads for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesFiles {
    /// SeriesInstanceUID (0020,000E) of the series.
    pub series_uid: String,
    /// Every file of the series, in file-path order. An enhanced
    /// multi-frame image is one file.
    pub files: Vec<PathBuf>,
    /// The folder that was scanned for the files of the series, or `None`
    /// for an enhanced multi-frame file, which is read alone. Adding or
    /// removing an image file of the series there changes the image.
    pub scanned_folder: Option<PathBuf>,
}

/// The files chosen for one path, before their pixels are read.
enum Selection {
    /// An enhanced multi-frame file and its NumberOfFrames.
    MultiFrame { header: Box<Header>, frames: i64 },
    /// The headers of a single-frame series, in file-path order, and the
    /// folder they were found in.
    SingleFrame {
        headers: Vec<Header>,
        folder: PathBuf,
    },
}

/// Reads the series at `path`: a folder with one series, a file of a
/// single-frame series (the other files of its series are taken from the
/// same folder), or an enhanced multi-frame file.
pub fn read_series(path: &Path) -> Result<DicomImage, DicomError> {
    match select(path)? {
        Selection::MultiFrame { header, frames } => read_multi_frame(&header.path, frames),
        Selection::SingleFrame { headers, .. } => read_single_frame_series(headers),
    }
}

/// Returns the files that [`read_series`] reads for `path`, by reading
/// their headers only. It fails where [`read_series`] fails while choosing
/// the files, for example on a folder with several series.
pub fn series_files(path: &Path) -> Result<SeriesFiles, DicomError> {
    Ok(match select(path)? {
        Selection::MultiFrame { header, .. } => {
            let Header { path, series, .. } = *header;
            SeriesFiles {
                series_uid: series,
                files: vec![path],
                scanned_folder: None,
            }
        }
        Selection::SingleFrame { headers, folder } => {
            // A non-image object named as the image has no image siblings.
            let Some(first) = headers.first() else {
                return Err(DicomError::NoImage {
                    path: path.to_path_buf(),
                });
            };
            SeriesFiles {
                series_uid: first.series.clone(),
                files: headers.into_iter().map(|header| header.path).collect(),
                scanned_folder: Some(folder),
            }
        }
    })
}

/// Chooses the files of the series at `path`; see [`read_series`].
fn select(path: &Path) -> Result<Selection, DicomError> {
    let metadata = std::fs::metadata(path).map_err(|source| DicomError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.is_dir() {
        let headers = scan_folder(path)?;
        let mut series: Vec<String> = headers.iter().map(|h| h.series.clone()).collect();
        series.sort();
        series.dedup();
        return match series.len() {
            0 => Err(DicomError::NoImage {
                path: path.to_path_buf(),
            }),
            1 => Ok(Selection::SingleFrame {
                headers,
                folder: path.to_path_buf(),
            }),
            _ => Err(DicomError::SeveralSeries {
                path: path.to_path_buf(),
                series,
            }),
        };
    }

    let header = read_header(path)?;
    let attributes = Attributes::new(path);
    let frames = attributes
        .integer(&header.object, tags::NUMBER_OF_FRAMES)?
        .unwrap_or(1);
    let enhanced = header
        .object
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .is_some();
    if enhanced {
        return Ok(Selection::MultiFrame {
            header: Box::new(header),
            frames,
        });
    }
    if frames > 1 {
        return Err(attributes.invalid(format!(
            "NumberOfFrames (0028,0008) is {frames} without {}; only enhanced multi-frame images state where each frame lies",
            describe(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        )));
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    let siblings = scan_folder(folder)?
        .into_iter()
        .filter(|other| other.series == header.series)
        .collect();
    Ok(Selection::SingleFrame {
        headers: siblings,
        folder: folder.to_path_buf(),
    })
}

/// Reads the headers of the DICOM image files directly in `folder`, in
/// file-name order. Files without the DICM preamble, and objects that are
/// not images (RTSTRUCT, SEG and other non-image modalities), are skipped.
fn scan_folder(folder: &Path) -> Result<Vec<Header>, DicomError> {
    let entries = std::fs::read_dir(folder).map_err(|source| DicomError::Open {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DicomError::Open {
            path: folder.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_file() && is_dicom_file(&path) {
            paths.push(path);
        }
    }
    paths.sort();

    // A DICOMDIR or another non-image object has no Rows and may lack
    // SeriesInstanceUID, so it is skipped before the series is required.
    let mut headers = Vec::new();
    for path in paths {
        let object = open_object(&path, true)?;
        let attributes = Attributes::new(&path);
        let modality = attributes
            .text(&object, tags::MODALITY)?
            .unwrap_or_default();
        if NON_IMAGE_MODALITIES.contains(&modality.as_str()) || object.get(tags::ROWS).is_none() {
            continue;
        }
        let series = attributes.required_text(&object, tags::SERIES_INSTANCE_UID)?;
        headers.push(Header {
            path,
            object,
            series,
        });
    }
    Ok(headers)
}

/// Reads a file's attributes up to Pixel Data.
fn read_header(path: &Path) -> Result<Header, DicomError> {
    let object = open_object(path, true)?;
    let series = Attributes::new(path).required_text(&object, tags::SERIES_INSTANCE_UID)?;
    Ok(Header {
        path: path.to_path_buf(),
        object,
        series,
    })
}

/// Opens a DICOM file, up to Pixel Data when `header_only`.
pub(crate) fn open_object(
    path: &Path,
    header_only: bool,
) -> Result<DefaultDicomObject, DicomError> {
    std::fs::File::open(path).map_err(|source| DicomError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let options = OpenFileOptions::new();
    let options = if header_only {
        options.read_until(tags::PIXEL_DATA)
    } else {
        options
    };
    options
        .open_file(path)
        .map_err(|error| DicomError::Invalid {
            path: path.to_path_buf(),
            message: format!("not a readable DICOM Part 10 file: {error}"),
        })
}

/// Assembles single-frame files of one series.
fn read_single_frame_series(headers: Vec<Header>) -> Result<DicomImage, DicomError> {
    let mut placements = Vec::with_capacity(headers.len());
    for header in &headers {
        let attributes = Attributes::new(&header.path);
        let object = &header.object;
        let position = attributes.required_numbers(object, tags::IMAGE_POSITION_PATIENT, 3)?;
        let orientation =
            attributes.required_numbers(object, tags::IMAGE_ORIENTATION_PATIENT, 6)?;
        let spacing = attributes.required_numbers(object, tags::PIXEL_SPACING, 2)?;
        placements.push(FramePlacement {
            file: header.path.clone(),
            position: [position[0], position[1], position[2]],
            orientation: std::array::from_fn(|c| orientation[c]),
            pixel_spacing: [spacing[0], spacing[1]],
            rows: dimension(&attributes, object, tags::ROWS)?,
            columns: dimension(&attributes, object, tags::COLUMNS)?,
        });
    }
    let Some(first) = headers.first() else {
        return Err(DicomError::NoImage {
            path: PathBuf::new(),
        });
    };
    let first_attributes = Attributes::new(&first.path);
    let thickness = first_attributes.number(&first.object, tags::SLICE_THICKNESS)?;
    let stack = stack_frames(&placements, thickness)?;

    let frame_of_reference = frame_of_reference(&headers)?;
    let mut data = Array3::<f64>::zeros(stack.geometry.dims);
    let mut stored_as_integer = true;
    for (k, &index) in stack.order.iter().enumerate() {
        let header = &headers[index];
        let attributes = Attributes::new(&header.path);
        let object = open_object(&header.path, false)?;
        let frames = decode_frames(&attributes, &object)?;
        let (slope, intercept) = rescale(&attributes, &object)?;
        stored_as_integer &= slope == 1.0 && intercept.fract() == 0.0;
        fill_slice(&mut data, k, frames.frame(0), slope, intercept);
    }
    Ok(DicomImage {
        volume: Volume {
            data,
            geometry: stack.geometry,
            stored_as_integer,
        },
        frame_of_reference_uid: frame_of_reference,
    })
}

/// Assembles the frames of one enhanced multi-frame file.
fn read_multi_frame(path: &Path, frames: i64) -> Result<DicomImage, DicomError> {
    let attributes = Attributes::new(path);
    let object = open_object(path, false)?;
    let count = usize::try_from(frames)
        .ok()
        .filter(|&count| count >= 1)
        .ok_or_else(|| attributes.invalid(format!("NumberOfFrames (0028,0008) is {frames}")))?;
    let rows = dimension(&attributes, &object, tags::ROWS)?;
    let columns = dimension(&attributes, &object, tags::COLUMNS)?;
    let groups = frame_groups(&attributes, &object, count)?;
    let placements: Vec<FramePlacement> = groups
        .iter()
        .map(|group| FramePlacement {
            file: path.to_path_buf(),
            position: group.position,
            orientation: group.orientation,
            pixel_spacing: group.pixel_spacing,
            rows,
            columns,
        })
        .collect();
    let stack = stack_frames(&placements, groups[0].slice_thickness)?;

    let decoded = decode_frames(&attributes, &object)?;
    if decoded.count() < count {
        return Err(attributes.invalid(format!(
            "Pixel Data (7FE0,0010) holds {} frames but NumberOfFrames (0028,0008) is {count}",
            decoded.count()
        )));
    }
    let fallback = rescale(&attributes, &object)?;
    let mut data = Array3::<f64>::zeros(stack.geometry.dims);
    let mut stored_as_integer = true;
    for (k, &index) in stack.order.iter().enumerate() {
        let (slope, intercept) = groups[index].rescale.unwrap_or(fallback);
        stored_as_integer &= slope == 1.0 && intercept.fract() == 0.0;
        fill_slice(&mut data, k, decoded.frame(index), slope, intercept);
    }
    let frame_of_reference = attributes.text(&object, tags::FRAME_OF_REFERENCE_UID)?;
    Ok(DicomImage {
        volume: Volume {
            data,
            geometry: stack.geometry,
            stored_as_integer,
        },
        frame_of_reference_uid: frame_of_reference,
    })
}

/// Writes one frame (row after row) into slice k, as `stored · slope + intercept`.
fn fill_slice(data: &mut Array3<f64>, k: usize, frame: &[f64], slope: f64, intercept: f64) {
    let columns = data.dim().0;
    for (index, &stored) in frame.iter().enumerate() {
        let (row, column) = (index / columns, index % columns);
        data[[column, row, k]] = stored * slope + intercept;
    }
}

/// Returns RescaleSlope and RescaleIntercept (1 and 0 when absent).
fn rescale(
    attributes: &Attributes<'_>,
    object: &DefaultDicomObject,
) -> Result<(f64, f64), DicomError> {
    let slope = attributes
        .number(object, tags::RESCALE_SLOPE)?
        .unwrap_or(1.0);
    let intercept = attributes
        .number(object, tags::RESCALE_INTERCEPT)?
        .unwrap_or(0.0);
    if slope == 0.0 {
        return Err(attributes.invalid(
            "RescaleSlope (0028,1053) is 0, which would erase every intensity".to_string(),
        ));
    }
    Ok((slope, intercept))
}

/// Returns Rows or Columns as a size ≥ 1.
pub(crate) fn dimension(
    attributes: &Attributes<'_>,
    object: &DefaultDicomObject,
    tag: dicom_core::Tag,
) -> Result<usize, DicomError> {
    let value = attributes.required_integer(object, tag)?;
    usize::try_from(value)
        .ok()
        .filter(|&size| size >= 1)
        .ok_or_else(|| {
            attributes.invalid(format!("{} is {value}; expected at least 1", describe(tag)))
        })
}

/// Returns the series' FrameOfReferenceUID, checking that every file states
/// the same one.
fn frame_of_reference(headers: &[Header]) -> Result<Option<String>, DicomError> {
    let mut seen: BTreeMap<Option<String>, &Path> = BTreeMap::new();
    for header in headers {
        let uid =
            Attributes::new(&header.path).text(&header.object, tags::FRAME_OF_REFERENCE_UID)?;
        seen.entry(uid).or_insert(&header.path);
    }
    if seen.len() > 1 {
        let listed: Vec<String> = seen
            .iter()
            .map(|(uid, path)| {
                format!("{} in {}", uid.as_deref().unwrap_or("none"), path.display())
            })
            .collect();
        let path = headers.first().map(|h| h.path.clone()).unwrap_or_default();
        return Err(DicomError::Series {
            path,
            message: format!(
                "the files of one series state different FrameOfReferenceUID (0020,0052) values: {}",
                listed.join(", ")
            ),
        });
    }
    Ok(seen.into_keys().next().flatten())
}
