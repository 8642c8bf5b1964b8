//! Writes DICOM test files with dicom-object's in-memory objects: a
//! single-frame image series, an enhanced multi-frame image, a BINARY SEG
//! and an RTSTRUCT, all from a [`Volume`] whose geometry is RAS.

use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use radstudy_worker::image::Volume;

/// Identity of a written series.
#[derive(Debug, Clone)]
pub struct SeriesIds {
    pub study: String,
    pub series: String,
    pub frame_of_reference: String,
}

impl SeriesIds {
    pub fn new(tag: u32) -> Self {
        SeriesIds {
            study: format!("2.25.1000{tag}"),
            series: format!("2.25.2000{tag}"),
            frame_of_reference: format!("2.25.3000{tag}"),
        }
    }
}

/// Formats a DS value in at most 16 characters (the VR's limit): the
/// shortest round-trip text when it fits, else fewer decimals.
pub fn ds(value: f64) -> String {
    let text = format!("{value}");
    if text.len() <= 16 {
        return text;
    }
    for decimals in (0..16).rev() {
        let text = format!("{value:.decimals$}");
        if text.len() <= 16 {
            return text;
        }
    }
    format!("{value:e}")
}

fn ds_list(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// LPS direction of voxel axis `axis` of a RAS geometry.
pub fn lps_axis(volume: &Volume, axis: usize) -> [f64; 3] {
    let d = &volume.geometry.direction;
    [-d[0][axis], -d[1][axis], d[2][axis]]
}

/// LPS position of the centre of voxel (0, 0, k).
pub fn lps_slice_position(volume: &Volume, k: usize) -> [f64; 3] {
    let g = &volume.geometry;
    let ras: [f64; 3] =
        std::array::from_fn(|r| g.origin[r] + g.direction[r][2] * g.spacing[2] * k as f64);
    [-ras[0], -ras[1], ras[2]]
}

fn orientation(volume: &Volume) -> String {
    let row = lps_axis(volume, 0);
    let column = lps_axis(volume, 1);
    ds_list(&[row[0], row[1], row[2], column[0], column[1], column[2]])
}

fn pixel_spacing(volume: &Volume) -> String {
    ds_list(&[volume.geometry.spacing[1], volume.geometry.spacing[0]])
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn us(tag: Tag, value: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(value))
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// Saves `object` as a Part 10 file in explicit VR little endian.
pub fn save(object: InMemDicomObject, path: &Path) {
    let file = object
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .expect("file meta table");
    file.write_to_file(path).expect("DICOM file written");
}

/// Common patient, study and series attributes.
fn base(ids: &SeriesIds, sop_class: &str, sop_instance: &str, modality: &str) -> InMemDicomObject {
    item(vec![
        text(tags::SOP_CLASS_UID, VR::UI, sop_class),
        text(tags::SOP_INSTANCE_UID, VR::UI, sop_instance),
        text(tags::MODALITY, VR::CS, modality),
        text(tags::PATIENT_ID, VR::LO, "TEST"),
        text(tags::STUDY_INSTANCE_UID, VR::UI, &ids.study),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &ids.series),
        text(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            &ids.frame_of_reference,
        ),
    ])
}

/// Stores voxel value v as the signed 16-bit value (v − intercept) / slope.
fn slice_bytes(volume: &Volume, k: usize, slope: f64, intercept: f64) -> Vec<u8> {
    let (columns, rows, _) = volume.data.dim();
    let mut bytes = Vec::with_capacity(rows * columns * 2);
    for row in 0..rows {
        for column in 0..columns {
            let stored = (volume.data[[column, row, k]] - intercept) / slope;
            assert!(
                stored.fract() == 0.0 && stored.abs() < 32768.0,
                "value {stored} fits int16"
            );
            bytes.extend_from_slice(&(stored as i16).to_le_bytes());
        }
    }
    bytes
}

fn image_pixel_module(object: &mut InMemDicomObject, volume: &Volume) {
    let (columns, rows, _) = volume.data.dim();
    object.put(us(tags::ROWS, rows as u16));
    object.put(us(tags::COLUMNS, columns as u16));
    object.put(us(tags::SAMPLES_PER_PIXEL, 1));
    object.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    object.put(us(tags::BITS_ALLOCATED, 16));
    object.put(us(tags::BITS_STORED, 16));
    object.put(us(tags::HIGH_BIT, 15));
    object.put(us(tags::PIXEL_REPRESENTATION, 1));
}

/// Writes one MR file per slice into `folder`, named in reverse slice
/// order so that file order does not give slice order. Returns the paths.
pub fn write_series(
    volume: &Volume,
    folder: &Path,
    ids: &SeriesIds,
    slope: f64,
    intercept: f64,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(folder).expect("series folder");
    let slices = volume.data.dim().2;
    let mut paths = Vec::new();
    for k in 0..slices {
        let mut object = base(
            ids,
            uids::MR_IMAGE_STORAGE,
            &format!("{}.{}", ids.series, k + 1),
            "MR",
        );
        object.put(text(tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string()));
        object.put(text(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            &ds_list(&lps_slice_position(volume, k)),
        ));
        object.put(text(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            &orientation(volume),
        ));
        object.put(text(tags::PIXEL_SPACING, VR::DS, &pixel_spacing(volume)));
        object.put(text(
            tags::SLICE_THICKNESS,
            VR::DS,
            &ds(volume.geometry.spacing[2]),
        ));
        image_pixel_module(&mut object, volume);
        object.put(text(tags::RESCALE_SLOPE, VR::DS, &ds(slope)));
        object.put(text(tags::RESCALE_INTERCEPT, VR::DS, &ds(intercept)));
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::from(slice_bytes(volume, k, slope, intercept)),
        ));
        let path = folder.join(format!("slice_{:03}.dcm", slices - k));
        save(object, &path);
        paths.push(path);
    }
    paths
}

/// Writes the volume as one Enhanced MR file with per-frame positions and
/// shared orientation, spacing and rescale; frames in reverse slice order.
pub fn write_multi_frame(volume: &Volume, path: &Path, ids: &SeriesIds, intercept: f64) {
    let slices = volume.data.dim().2;
    let mut object = base(
        ids,
        uids::ENHANCED_MR_IMAGE_STORAGE,
        &format!("{}.1", ids.series),
        "MR",
    );
    image_pixel_module(&mut object, volume);
    object.put(text(tags::NUMBER_OF_FRAMES, VR::IS, &slices.to_string()));
    let shared = item(vec![
        sequence(
            tags::PLANE_ORIENTATION_SEQUENCE,
            vec![item(vec![text(
                tags::IMAGE_ORIENTATION_PATIENT,
                VR::DS,
                &orientation(volume),
            )])],
        ),
        sequence(
            tags::PIXEL_MEASURES_SEQUENCE,
            vec![item(vec![
                text(tags::PIXEL_SPACING, VR::DS, &pixel_spacing(volume)),
                text(
                    tags::SLICE_THICKNESS,
                    VR::DS,
                    &ds(volume.geometry.spacing[2]),
                ),
            ])],
        ),
        sequence(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            vec![item(vec![
                text(tags::RESCALE_SLOPE, VR::DS, "1"),
                text(tags::RESCALE_INTERCEPT, VR::DS, &ds(intercept)),
                text(tags::RESCALE_TYPE, VR::LO, "US"),
            ])],
        ),
    ]);
    object.put(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![shared],
    ));

    let order: Vec<usize> = (0..slices).rev().collect();
    let per_frame = order
        .iter()
        .map(|&k| {
            item(vec![sequence(
                tags::PLANE_POSITION_SEQUENCE,
                vec![item(vec![text(
                    tags::IMAGE_POSITION_PATIENT,
                    VR::DS,
                    &ds_list(&lps_slice_position(volume, k)),
                )])],
            )])
        })
        .collect();
    object.put(sequence(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        per_frame,
    ));

    let mut bytes = Vec::new();
    for &k in &order {
        bytes.extend(slice_bytes(volume, k, 1.0, intercept));
    }
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(bytes),
    ));
    save(object, path);
}

/// One segment of a SEG: its number, label and the label-map value it covers.
pub struct Segment<'a> {
    pub number: u16,
    pub label: &'a str,
    pub value: f64,
}

/// Writes a BINARY SEG of `labels` (on the image grid): one frame per slice
/// and segment where the segment has voxels, bits packed across frames.
pub fn write_seg(labels: &Volume, path: &Path, ids: &SeriesIds, segments: &[Segment<'_>]) {
    let (columns, rows, slices) = labels.data.dim();
    let seg_ids = SeriesIds {
        series: format!("{}.9", ids.series),
        ..ids.clone()
    };
    let mut object = base(
        &seg_ids,
        uids::SEGMENTATION_STORAGE,
        &format!("{}.9.1", ids.series),
        "SEG",
    );
    object.put(us(tags::ROWS, rows as u16));
    object.put(us(tags::COLUMNS, columns as u16));
    object.put(us(tags::SAMPLES_PER_PIXEL, 1));
    object.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    object.put(us(tags::BITS_ALLOCATED, 1));
    object.put(us(tags::BITS_STORED, 1));
    object.put(us(tags::HIGH_BIT, 0));
    object.put(us(tags::PIXEL_REPRESENTATION, 0));
    object.put(text(tags::SEGMENTATION_TYPE, VR::CS, "BINARY"));
    object.put(sequence(
        tags::SEGMENT_SEQUENCE,
        segments
            .iter()
            .map(|segment| {
                item(vec![
                    us(tags::SEGMENT_NUMBER, segment.number),
                    text(tags::SEGMENT_LABEL, VR::LO, segment.label),
                    text(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "MANUAL"),
                ])
            })
            .collect(),
    ));
    object.put(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![item(vec![
            sequence(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(vec![text(
                    tags::IMAGE_ORIENTATION_PATIENT,
                    VR::DS,
                    &orientation(labels),
                )])],
            ),
            sequence(
                tags::PIXEL_MEASURES_SEQUENCE,
                vec![item(vec![
                    text(tags::PIXEL_SPACING, VR::DS, &pixel_spacing(labels)),
                    text(
                        tags::SLICE_THICKNESS,
                        VR::DS,
                        &ds(labels.geometry.spacing[2]),
                    ),
                ])],
            ),
        ])],
    ));

    let mut per_frame = Vec::new();
    let mut bits: Vec<bool> = Vec::new();
    for segment in segments {
        for k in 0..slices {
            let plane = labels.data.index_axis(ndarray::Axis(2), k);
            if !plane.iter().any(|&v| v == segment.value) {
                continue;
            }
            per_frame.push(item(vec![
                sequence(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![text(
                        tags::IMAGE_POSITION_PATIENT,
                        VR::DS,
                        &ds_list(&lps_slice_position(labels, k)),
                    )])],
                ),
                sequence(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![item(vec![us(
                        tags::REFERENCED_SEGMENT_NUMBER,
                        segment.number,
                    )])],
                ),
            ]));
            for row in 0..rows {
                for column in 0..columns {
                    bits.push(plane[[column, row]] == segment.value);
                }
            }
        }
    }
    object.put(text(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &per_frame.len().to_string(),
    ));
    object.put(sequence(
        tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        per_frame,
    ));

    let mut bytes = vec![0u8; bits.len().div_ceil(8)];
    for (index, &bit) in bits.iter().enumerate() {
        if bit {
            bytes[index / 8] |= 1 << (index % 8);
        }
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(bytes),
    ));
    save(object, path);
}

/// One ROI of an RTSTRUCT: number, name and closed contours (LPS mm).
pub struct RoiContours<'a> {
    pub number: i32,
    pub name: &'a str,
    pub contours: Vec<Vec<[f64; 3]>>,
}

/// Writes an RTSTRUCT whose ROIs refer to `frame_of_reference`.
pub fn write_rtstruct(
    path: &Path,
    ids: &SeriesIds,
    frame_of_reference: &str,
    rois: &[RoiContours<'_>],
) {
    let rt_ids = SeriesIds {
        series: format!("{}.8", ids.series),
        ..ids.clone()
    };
    let mut object = base(
        &rt_ids,
        uids::RT_STRUCTURE_SET_STORAGE,
        &format!("{}.8.1", ids.series),
        "RTSTRUCT",
    );
    object.remove_element(tags::FRAME_OF_REFERENCE_UID);
    object.put(text(tags::STRUCTURE_SET_LABEL, VR::SH, "TEST"));
    object.put(sequence(
        tags::REFERENCED_FRAME_OF_REFERENCE_SEQUENCE,
        vec![item(vec![text(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            frame_of_reference,
        )])],
    ));
    object.put(sequence(
        tags::STRUCTURE_SET_ROI_SEQUENCE,
        rois.iter()
            .map(|roi| {
                item(vec![
                    text(tags::ROI_NUMBER, VR::IS, &roi.number.to_string()),
                    text(
                        tags::REFERENCED_FRAME_OF_REFERENCE_UID,
                        VR::UI,
                        frame_of_reference,
                    ),
                    text(tags::ROI_NAME, VR::LO, roi.name),
                ])
            })
            .collect(),
    ));
    object.put(sequence(
        tags::ROI_CONTOUR_SEQUENCE,
        rois.iter()
            .map(|roi| {
                let contours = roi
                    .contours
                    .iter()
                    .map(|points| {
                        let flat: Vec<f64> = points.iter().flatten().copied().collect();
                        item(vec![
                            text(tags::CONTOUR_GEOMETRIC_TYPE, VR::CS, "CLOSED_PLANAR"),
                            text(
                                tags::NUMBER_OF_CONTOUR_POINTS,
                                VR::IS,
                                &points.len().to_string(),
                            ),
                            text(tags::CONTOUR_DATA, VR::DS, &ds_list(&flat)),
                        ])
                    })
                    .collect();
                item(vec![
                    text(tags::REFERENCED_ROI_NUMBER, VR::IS, &roi.number.to_string()),
                    sequence(tags::CONTOUR_SEQUENCE, contours),
                ])
            })
            .collect(),
    ));
    save(object, path);
}
