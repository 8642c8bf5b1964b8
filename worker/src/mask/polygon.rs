//! Scan-line filling of planar polygons at voxel centres.
//!
//! Rule: a voxel belongs to the region when its centre is inside an odd
//! number of the slice's polygons (the even-odd rule applied across every
//! contour of the ROI on that slice). A contour drawn inside another one
//! therefore cuts a hole, and a contour inside that hole is an island again.
//! RTSTRUCT has no flag that marks a contour as a hole, so nesting is the
//! only information a reader has.
//!
//! A centre exactly on an edge is decided by a half-open convention. A ray
//! from the centre towards +i counts an edge when the edge's lower end is at
//! or below the centre's row, its upper end is above it, and the crossing
//! lies strictly right of the centre. So a centre on a left or bottom edge
//! is inside and one on a right or top edge is outside. Two polygons that
//! share an edge therefore never both claim a voxel.

use ndarray::{ArrayViewMut2, s};

/// A closed polygon in continuous voxel-index coordinates (i, j) of one
/// slice; the last vertex connects back to the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    /// Vertices, at least three.
    pub vertices: Vec<[f64; 2]>,
}

/// Sets `value` in every voxel of `slice` (indexed `[i, j]`) whose centre
/// lies inside an odd number of `polygons`. Voxels outside stay unchanged.
/// Returns how many voxels were set.
pub fn fill_even_odd(
    polygons: &[Polygon],
    slice: &mut ArrayViewMut2<'_, f64>,
    value: f64,
) -> usize {
    let (size_i, size_j) = slice.dim();
    let mut crossings: Vec<f64> = Vec::new();
    let mut filled = 0;
    for j in 0..size_j {
        let y = j as f64;
        crossings.clear();
        for polygon in polygons {
            let count = polygon.vertices.len();
            for index in 0..count {
                let [x0, y0] = polygon.vertices[index];
                let [x1, y1] = polygon.vertices[(index + 1) % count];
                // Half-open in j: the edge counts when exactly one end is at or below y.
                if (y0 <= y) != (y1 <= y) {
                    crossings.push(x0 + (y - y0) * (x1 - x0) / (y1 - y0));
                }
            }
        }
        if crossings.is_empty() {
            continue;
        }
        crossings.sort_by(f64::total_cmp);

        // Between crossings 2m and 2m+1 a centre has an odd number of
        // crossings strictly to its right, so it is inside: i in [x_2m, x_2m+1).
        for pair in crossings.chunks_exact(2) {
            let first = pair[0].ceil().max(0.0);
            let end = pair[1].ceil().min(size_i as f64);
            if first >= end {
                continue;
            }
            let (first, end) = (first as usize, end as usize);
            slice.slice_mut(s![first..end, j]).fill(value);
            filled += end - first;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn rectangle(i0: f64, j0: f64, i1: f64, j1: f64) -> Polygon {
        Polygon {
            vertices: vec![[i0, j0], [i1, j0], [i1, j1], [i0, j1]],
        }
    }

    fn count(polygons: &[Polygon], dims: (usize, usize)) -> usize {
        let mut slice = Array2::zeros(dims);
        let filled = fill_even_odd(polygons, &mut slice.view_mut(), 1.0);
        let painted = slice.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(filled, painted, "returned count equals painted voxels");
        painted
    }

    #[test]
    fn polygon_rectangle_on_voxel_boundaries() {
        // Edges at i = 1.5 and 5.5, j = 2.5 and 4.5 enclose centres i = 2..=5, j = 3..=4.
        assert_eq!(count(&[rectangle(1.5, 2.5, 5.5, 4.5)], (10, 10)), 4 * 2);
    }

    #[test]
    fn polygon_edges_through_centres_are_half_open() {
        // Edges through centres: i = 2 (left, inside) to 5 (right, outside),
        // j = 3 (bottom, inside) to 6 (top, outside): 3 × 3 centres.
        assert_eq!(count(&[rectangle(2.0, 3.0, 5.0, 6.0)], (10, 10)), 9);
    }

    #[test]
    fn polygon_adjacent_rectangles_share_no_voxel() {
        let left = rectangle(2.0, 2.0, 5.0, 6.0);
        let right = rectangle(5.0, 2.0, 8.0, 6.0);
        let alone = count(std::slice::from_ref(&left), (10, 10))
            + count(std::slice::from_ref(&right), (10, 10));
        // Drawn separately they paint 12 + 12; together the shared edge i = 5
        // is crossed twice, so no centre is claimed by both.
        assert_eq!(alone, 24);
        let mut slice = Array2::zeros((10, 10));
        fill_even_odd(&[left], &mut slice.view_mut(), 1.0);
        fill_even_odd(&[right], &mut slice.view_mut(), 2.0);
        assert_eq!(slice.iter().filter(|&&v| v != 0.0).count(), 24);
    }

    #[test]
    fn polygon_nested_contour_is_hole() {
        // Outer 8 × 8 centres (i, j = 1..=8), inner 2 × 2 centres (4..=5).
        let outer = rectangle(0.5, 0.5, 8.5, 8.5);
        let inner = rectangle(3.5, 3.5, 5.5, 5.5);
        assert_eq!(count(&[outer.clone(), inner.clone()], (10, 10)), 64 - 4);
        // An island inside the hole is inside again: 1 centre at (4, 4).
        let island = rectangle(3.9, 3.9, 4.1, 4.1);
        assert_eq!(count(&[outer, inner, island], (10, 10)), 64 - 4 + 1);
    }

    #[test]
    fn polygon_triangle_counts_centres_below_diagonal() {
        // Right triangle (0,0), (4,0), (0,4) with a hypotenuse i + j = 4:
        // row j has centres i = 0..(4 − j) (right end exclusive), 4 + 3 + 2 + 1.
        let triangle = Polygon {
            vertices: vec![[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]],
        };
        assert_eq!(count(&[triangle], (10, 10)), 10);
    }

    #[test]
    fn polygon_outside_slice_is_clipped() {
        // Centres i = 8, 9 of the 10-wide slice, j = 0..=1.
        assert_eq!(count(&[rectangle(7.5, -3.0, 20.0, 1.5)], (10, 10)), 2 * 2);
    }
}
