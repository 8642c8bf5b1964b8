//! Stacking of 2-D frames into one 3-D grid: orientation, size and spacing
//! checks, order along the slice normal, and the LPS to RAS conversion.

use std::path::PathBuf;

use super::DicomError;
use crate::image::Geometry;

/// Largest difference between two frames' direction cosines that still
/// counts as one orientation (the worker's default `geometry_tolerance.direction`).
const DIRECTION_TOLERANCE: f64 = 1e-4;
/// Largest relative difference between two frames' pixel spacings.
const SPACING_RELATIVE_TOLERANCE: f64 = 1e-4;
/// Largest deviation of one slice gap from the median gap, and largest
/// in-plane offset of a slice from the stack's axis, as a fraction of the
/// median gap. 1% absorbs positions written with 2 to 3 decimals (DS values)
/// and still rejects a missing slice, which doubles one gap.
const GAP_RELATIVE_TOLERANCE: f64 = 1e-2;

/// The placement of one 2-D frame, as a DICOM image states it (LPS, mm).
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlacement {
    /// The file the frame comes from, for error messages.
    pub file: PathBuf,
    /// ImagePositionPatient: the centre of the first pixel.
    pub position: [f64; 3],
    /// ImageOrientationPatient: the row direction (towards increasing
    /// column index), then the column direction (increasing row index).
    pub orientation: [f64; 6],
    /// PixelSpacing: the distance between rows, then between columns.
    pub pixel_spacing: [f64; 2],
    /// Rows and Columns.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
}

/// Frames sorted into a grid.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The grid in the RAS+ frame of [`Geometry`]. Voxel index i is the
    /// column, j the row and k the slice.
    pub geometry: Geometry,
    /// `order[k]` is the index, into the input frames, of slice k.
    pub order: Vec<usize>,
}

/// Sorts frames along the slice normal (row direction × column direction)
/// and checks that they form one regular grid. `single_slice_spacing` is
/// the k spacing used when there is only one frame (SliceThickness).
pub fn stack_frames(
    frames: &[FramePlacement],
    single_slice_spacing: Option<f64>,
) -> Result<Stack, DicomError> {
    let Some(first) = frames.first() else {
        return Err(DicomError::Series {
            path: PathBuf::new(),
            message: "no frames to stack".to_string(),
        });
    };
    let series_error = |frame: &FramePlacement, message: String| DicomError::Series {
        path: frame.file.clone(),
        message,
    };

    let row = unit_direction(&first.orientation[0..3]);
    let column = unit_direction(&first.orientation[3..6]);
    let (Some(row), Some(column)) = (row, column) else {
        return Err(series_error(
            first,
            format!(
                "ImageOrientationPatient (0020,0037) {:?} does not hold two unit vectors",
                first.orientation
            ),
        ));
    };
    if dot(row, column).abs() > DIRECTION_TOLERANCE {
        return Err(series_error(
            first,
            format!(
                "ImageOrientationPatient (0020,0037) {:?}: the row and column directions are not orthogonal",
                first.orientation
            ),
        ));
    }
    if first
        .pixel_spacing
        .iter()
        .any(|s| !(s.is_finite() && *s > 0.0))
    {
        return Err(series_error(
            first,
            format!(
                "PixelSpacing (0028,0030) {:?} must be two positive numbers",
                first.pixel_spacing
            ),
        ));
    }
    let normal = cross(row, column);

    for frame in frames {
        if (frame.rows, frame.columns) != (first.rows, first.columns) {
            return Err(series_error(
                frame,
                format!(
                    "Rows × Columns (0028,0010/0011) {} × {} differs from {} × {} of {}",
                    frame.rows,
                    frame.columns,
                    first.rows,
                    first.columns,
                    first.file.display()
                ),
            ));
        }
        let tilted = (0..6)
            .any(|c| (frame.orientation[c] - first.orientation[c]).abs() > DIRECTION_TOLERANCE);
        if tilted {
            return Err(series_error(
                frame,
                format!(
                    "ImageOrientationPatient (0020,0037) {:?} differs from {:?} of {}",
                    frame.orientation,
                    first.orientation,
                    first.file.display()
                ),
            ));
        }
        let spacing_differs = (0..2).any(|c| {
            let (a, b) = (frame.pixel_spacing[c], first.pixel_spacing[c]);
            (a - b).abs() > SPACING_RELATIVE_TOLERANCE * a.abs().max(b.abs())
        });
        if spacing_differs {
            return Err(series_error(
                frame,
                format!(
                    "PixelSpacing (0028,0030) {:?} differs from {:?} of {}",
                    frame.pixel_spacing,
                    first.pixel_spacing,
                    first.file.display()
                ),
            ));
        }
    }

    let distance = |frame: &FramePlacement| dot(normal, frame.position);
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by(|&a, &b| distance(&frames[a]).total_cmp(&distance(&frames[b])));

    let slice_spacing = if frames.len() == 1 {
        match single_slice_spacing {
            Some(spacing) if spacing.is_finite() && spacing > 0.0 => spacing,
            _ => {
                return Err(series_error(
                    first,
                    "a single slice needs a positive SliceThickness (0018,0050) for its k spacing"
                        .to_string(),
                ));
            }
        }
    } else {
        check_gaps(frames, &order, normal)?
    };

    // DICOM patient coordinates are LPS; the Geometry frame is RAS, so x
    // and y change sign.
    let to_ras = |v: [f64; 3]| [-v[0], -v[1], v[2]];
    let start = &frames[order[0]];
    let columns = [
        to_ras(scale(row, start.pixel_spacing[1])),
        to_ras(scale(column, start.pixel_spacing[0])),
        to_ras(scale(normal, slice_spacing)),
    ];
    let dims = [start.columns, start.rows, frames.len()];
    let geometry = Geometry::from_axis_columns(dims, to_ras(start.position), columns)
        .map_err(|message| series_error(start, message))?;
    Ok(Stack { geometry, order })
}

/// Checks that sorted frames are evenly spaced along `normal` and lie on
/// one axis. Returns the mean gap in mm, (last − first) / (slices − 1).
fn check_gaps(
    frames: &[FramePlacement],
    order: &[usize],
    normal: [f64; 3],
) -> Result<f64, DicomError> {
    let distance = |index: usize| dot(normal, frames[index].position);
    let count = order.len();
    let span = distance(order[count - 1]) - distance(order[0]);
    let mean_gap = span / (count - 1) as f64;

    // Gaps are compared with the median, so that a missing slice is blamed
    // on the file after the hole, not on every other gap.
    let mut gaps: Vec<f64> = order
        .windows(2)
        .map(|pair| distance(pair[1]) - distance(pair[0]))
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median_gap = gaps[gaps.len() / 2];
    let tolerance = GAP_RELATIVE_TOLERANCE * median_gap;

    for pair in order.windows(2) {
        let (below, above) = (&frames[pair[0]], &frames[pair[1]]);
        let gap = distance(pair[1]) - distance(pair[0]);
        if gap <= tolerance {
            return Err(DicomError::Series {
                path: above.file.clone(),
                message: format!(
                    "ImagePositionPatient (0020,0032) {:?} is {gap:.4} mm along the slice normal from {} at {:?}; two slices share one position",
                    above.position,
                    below.file.display(),
                    below.position
                ),
            });
        }
        if (gap - median_gap).abs() > tolerance {
            return Err(DicomError::Series {
                path: above.file.clone(),
                message: format!(
                    "slice gap {gap:.4} mm to {} differs from the median gap {median_gap:.4} mm by more than {:.0}%; a slice is missing or the spacing is not uniform",
                    below.file.display(),
                    GAP_RELATIVE_TOLERANCE * 100.0
                ),
            });
        }
    }

    let start = &frames[order[0]];
    for &index in order {
        let frame = &frames[index];
        let along = distance(index) - distance(order[0]);
        let offset: f64 = (0..3)
            .map(|c| (frame.position[c] - start.position[c] - along * normal[c]).powi(2))
            .sum::<f64>()
            .sqrt();
        if offset > tolerance {
            return Err(DicomError::Series {
                path: frame.file.clone(),
                message: format!(
                    "ImagePositionPatient (0020,0032) {:?} is {offset:.4} mm off the slice normal through {:?}; tilted (sheared) stacks are not supported",
                    frame.position, start.position
                ),
            });
        }
    }
    Ok(mean_gap)
}

fn unit_direction(values: &[f64]) -> Option<[f64; 3]> {
    let vector = [values[0], values[1], values[2]];
    let length = dot(vector, vector).sqrt();
    ((length - 1.0).abs() <= DIRECTION_TOLERANCE * 10.0).then(|| scale(vector, 1.0 / length))
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn scale(v: [f64; 3], factor: f64) -> [f64; 3] {
    [v[0] * factor, v[1] * factor, v[2] * factor]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axial(name: &str, z: f64) -> FramePlacement {
        FramePlacement {
            file: PathBuf::from(name),
            position: [-100.0, -50.0, z],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [0.5, 0.75],
            rows: 4,
            columns: 3,
        }
    }

    #[test]
    fn stack_sorts_by_normal_and_converts_to_ras() {
        let frames = [axial("b", 2.5), axial("a", 0.0), axial("c", 5.0)];
        let stack = stack_frames(&frames, None).expect("regular stack");
        assert_eq!(stack.order, vec![1, 0, 2]);
        // Column spacing (0.75) along i, row spacing (0.5) along j, gap 2.5 along k.
        assert_eq!(stack.geometry.dims, [3, 4, 3]);
        assert_eq!(stack.geometry.spacing, [0.75, 0.5, 2.5]);
        // LPS (-100, -50, 0) is RAS (100, 50, 0); x and y axes flip sign.
        assert_eq!(stack.geometry.origin, [100.0, 50.0, 0.0]);
        assert_eq!(stack.geometry.direction[0][0], -1.0);
        assert_eq!(stack.geometry.direction[1][1], -1.0);
        assert_eq!(stack.geometry.direction[2][2], 1.0);
    }

    #[test]
    fn stack_missing_slice_names_file() {
        let frames = [
            axial("a", 0.0),
            axial("b", 2.5),
            axial("d", 7.5),
            axial("e", 10.0),
        ];
        let error = stack_frames(&frames, None).unwrap_err();
        let DicomError::Series { path, message } = error else {
            panic!("expected a series error, got {error:?}");
        };
        assert_eq!(path, PathBuf::from("d"));
        assert!(message.contains("slice gap 5.0000 mm"), "{message}");
    }

    #[test]
    fn stack_duplicate_position_is_rejected() {
        let frames = [axial("a", 0.0), axial("b", 0.0), axial("c", 2.5)];
        let error = stack_frames(&frames, None).unwrap_err();
        assert!(error.to_string().contains("share one position"), "{error}");
    }

    #[test]
    fn stack_other_orientation_names_file() {
        let mut tilted = axial("t", 2.5);
        tilted.orientation = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        let error = stack_frames(&[axial("a", 0.0), tilted], None).unwrap_err();
        let DicomError::Series { path, message } = error else {
            panic!("expected a series error, got {error:?}");
        };
        assert_eq!(path, PathBuf::from("t"));
        assert!(message.contains("ImageOrientationPatient"), "{message}");
    }

    #[test]
    fn stack_other_size_names_file() {
        let mut small = axial("s", 2.5);
        small.rows = 3;
        let error = stack_frames(&[axial("a", 0.0), small], None).unwrap_err();
        assert!(matches!(&error, DicomError::Series { path, .. } if path == &PathBuf::from("s")));
    }

    #[test]
    fn stack_sheared_positions_are_rejected() {
        let mut shifted = axial("g", 2.5);
        shifted.position[1] += 1.0;
        let error = stack_frames(&[axial("a", 0.0), shifted], None).unwrap_err();
        assert!(error.to_string().contains("sheared"), "{error}");
    }

    #[test]
    fn stack_single_slice_uses_thickness() {
        let stack = stack_frames(&[axial("a", 0.0)], Some(3.0)).expect("one slice");
        assert_eq!(stack.geometry.spacing[2], 3.0);
        assert!(stack_frames(&[axial("a", 0.0)], None).is_err());
    }
}
