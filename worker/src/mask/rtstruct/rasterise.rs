//! Closed planar contours (LPS mm) to a label map on the image grid.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array3, Axis};

use crate::image::Geometry;
use crate::image::dicom::DicomError;
use crate::mask::polygon::{Polygon, fill_even_odd};

/// One CLOSED_PLANAR contour of an ROI.
#[derive(Debug, Clone, PartialEq)]
pub struct Contour {
    /// 1-based position of the item in ContourSequence (3006,0040), for errors.
    pub item: usize,
    /// ContourData (3006,0050): vertices in DICOM patient coordinates (LPS), mm.
    pub points: Vec<[f64; 3]>,
}

/// Paints `value` into every voxel of the image grid whose centre lies
/// inside the ROI, slice by slice with the even-odd rule of
/// [`crate::mask::polygon`].
///
/// Each contour must lie in one image slice: all its vertices within
/// `plane_tolerance_mm` of that slice's plane. Any other contour was drawn on
/// another grid or cut off by it, so it is an error that names the item. That
/// covers a contour on no slice, across slices, off the image in k, or with
/// a vertex more than half a voxel outside the image in i or j.
pub fn rasterise(
    contours: &[Contour],
    image: &Geometry,
    value: f64,
    plane_tolerance_mm: f64,
    path: &Path,
) -> Result<Array3<f64>, DicomError> {
    let placement = |message: String| DicomError::Placement {
        path: path.to_path_buf(),
        message,
    };

    let mut by_slice: BTreeMap<usize, Vec<Polygon>> = BTreeMap::new();
    for contour in contours {
        let indices: Vec<[f64; 3]> = contour
            .points
            .iter()
            .map(|&point| continuous_index(image, point))
            .collect();
        let k = indices[0][2].round();
        let off_plane = indices
            .iter()
            .map(|index| (index[2] - k).abs() * image.spacing[2])
            .fold(0.0, f64::max);
        if off_plane > plane_tolerance_mm {
            return Err(placement(format!(
                "contour item {} of ContourSequence (3006,0040) lies {off_plane:.4} mm off the image slice k = {k} (tolerance {plane_tolerance_mm} mm); \
                 contours must lie in the image's slice planes",
                contour.item
            )));
        }
        if k < 0.0 || k >= image.dims[2] as f64 {
            return Err(placement(format!(
                "contour item {} of ContourSequence (3006,0040) is on slice k = {k}, outside the image's {} slices",
                contour.item, image.dims[2]
            )));
        }
        for (axis, name) in [(0, "i"), (1, "j")] {
            let low = indices
                .iter()
                .map(|index| index[axis])
                .fold(f64::INFINITY, f64::min);
            let high = indices
                .iter()
                .map(|index| index[axis])
                .fold(f64::NEG_INFINITY, f64::max);
            if low < -0.5 || high > image.dims[axis] as f64 - 0.5 {
                return Err(placement(format!(
                    "contour item {} of ContourSequence (3006,0040) reaches {name} = {low:.2} to {high:.2}, outside the image's 0 to {} voxels",
                    contour.item,
                    image.dims[axis] - 1
                )));
            }
        }
        by_slice.entry(k as usize).or_default().push(Polygon {
            vertices: indices.iter().map(|index| [index[0], index[1]]).collect(),
        });
    }

    let mut labels = Array3::<f64>::zeros(image.dims);
    for (k, polygons) in &by_slice {
        let mut slice = labels.index_axis_mut(Axis(2), *k);
        fill_even_odd(polygons, &mut slice, value);
    }
    Ok(labels)
}

/// Returns the continuous voxel index of a point given in LPS mm. The
/// direction columns are orthonormal, so the inverse is the transpose.
fn continuous_index(image: &Geometry, lps: [f64; 3]) -> [f64; 3] {
    let ras = [-lps[0], -lps[1], lps[2]];
    let offset: [f64; 3] = std::array::from_fn(|r| ras[r] - image.origin[r]);
    std::array::from_fn(|c| {
        (0..3)
            .map(|r| image.direction[r][c] * offset[r])
            .sum::<f64>()
            / image.spacing[c]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Axial grid in RAS with i towards −x and j towards −y, as a DICOM
    /// axial series reads: 1 × 1 mm pixels, 2 mm slices, LPS origin (0, 0, 0).
    fn grid() -> Geometry {
        Geometry {
            dims: [10, 8, 4],
            spacing: [1.0, 1.0, 2.0],
            origin: [0.0, 0.0, 0.0],
            direction: [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    fn rectangle(item: usize, x: [f64; 2], y: [f64; 2], z: f64) -> Contour {
        Contour {
            item,
            points: vec![
                [x[0], y[0], z],
                [x[1], y[0], z],
                [x[1], y[1], z],
                [x[0], y[1], z],
            ],
        }
    }

    #[test]
    fn rasterise_rectangle_counts_centres() {
        // LPS x 1.5..4.5 covers i = 2, 3, 4; y 0.5..2.5 covers j = 1, 2; on slice z = 2 mm (k = 1).
        let labels = rasterise(
            &[rectangle(1, [1.5, 4.5], [0.5, 2.5], 2.0)],
            &grid(),
            3.0,
            1e-3,
            Path::new("rs.dcm"),
        )
        .expect("contour on slice 1");
        assert_eq!(labels.iter().filter(|&&v| v == 3.0).count(), 6);
        assert_eq!(labels[[2, 1, 1]], 3.0);
        assert_eq!(labels[[4, 2, 1]], 3.0);
        assert_eq!(labels[[2, 1, 0]], 0.0);
    }

    #[test]
    fn rasterise_between_slices_is_rejected() {
        let error = rasterise(
            &[rectangle(7, [1.5, 4.5], [0.5, 2.5], 3.0)],
            &grid(),
            1.0,
            1e-3,
            Path::new("rs.dcm"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("contour item 7"), "{error}");
        assert!(error.to_string().contains("1.0000 mm off"), "{error}");
    }

    #[test]
    fn rasterise_outside_image_is_rejected() {
        // z = 8 mm is slice k = 4 of a 4-slice grid.
        let outside_k = rasterise(
            &[rectangle(1, [1.5, 4.5], [0.5, 2.5], 8.0)],
            &grid(),
            1.0,
            1e-3,
            Path::new("rs.dcm"),
        );
        assert!(matches!(outside_k, Err(DicomError::Placement { .. })));
        // x = 12 mm is i = 12 on a 10-wide grid.
        let outside_i = rasterise(
            &[rectangle(1, [1.5, 12.0], [0.5, 2.5], 2.0)],
            &grid(),
            1.0,
            1e-3,
            Path::new("rs.dcm"),
        );
        assert!(matches!(outside_i, Err(DicomError::Placement { .. })));
    }
}
