//! Marching-cubes surface mesh of the ROI, built to reproduce PyRadiomics 3.1.4's mesh.
//!
//! A cube spans 2 × 2 × 2 voxel centres of the padded mask. Its cube index has bit c set
//! when corner c is inside the ROI, and corner c sits at offset (c & 1, c >> 1 & 1,
//! c >> 2 & 1) along (i, j, k). Every mesh vertex is the midpoint of a cube edge whose two
//! corners differ, so the vertex set does not depend on the triangulation.
//!
//! The triangles of each cube index are derived here, not copied from a published table,
//! by three rules found by comparing candidate triangulations with PyRadiomics'
//! SurfaceArea and MeshVolume on masks with anisotropic spacing:
//!
//! 1. **Complement.** When the corner at offset (0, 1, 1) is inside, the cube is
//!    triangulated as its complement and its volume contribution changes sign. This is
//!    PyRadiomics' corner 7, (z + 1, y + 1, x) in its (z, y, x) array order: its lookup
//!    table lists only the 128 cube indices with that corner outside.
//! 2. **Ambiguous faces.** A face with two inside corners on one diagonal and two outside
//!    corners on the other is cut so that the inside corners are separated (after the
//!    complement of rule 1).
//! 3. **Polygons.** The cut segments on the six faces link into closed polygons of 3 to 7
//!    vertices, each cutting off a group of corners. Planar polygons are fanned. Non-planar
//!    ones are split as PyRadiomics splits them; [`triangulate_polygon`] states each case.
//!
//! The tests compare the mesh of every cube index with PyRadiomics.
//!
//! Rules 1 and 2 make the mesh inconsistent on some faces shared by two cubes, so it can
//! have holes and its signed volume depends on the coordinate origin. PyRadiomics' feature
//! extractor crops the mask to its bounding box and pads one voxel, so the origin here is
//! the padded bounding box's first voxel, as there.

use std::sync::LazyLock;

use super::PaddedMask;

/// Number of cube corners, and of cube indices (2⁸).
const CORNERS: usize = 8;
const CUBE_INDICES: usize = 1 << CORNERS;

/// Corner whose being inside makes a cube use its complement's triangles (rule 1).
const COMPLEMENT_CORNER: usize = 0b110;

/// The 12 cube edges as corner pairs. Edges 4a to 4a + 3 run along axis a.
const EDGES: [[usize; 2]; 12] = cube_edges();

const fn cube_edges() -> [[usize; 2]; 12] {
    let mut edges = [[0; 2]; 12];
    let mut count = 0;
    let mut axis = 0;
    while axis < 3 {
        let bit = 1 << axis;
        let mut corner = 0;
        while corner < CORNERS {
            if corner & bit == 0 {
                edges[count] = [corner, corner | bit];
                count += 1;
            }
            corner += 1;
        }
        axis += 1;
    }
    edges
}

/// Offset of a corner from the cube origin, 0 or 1 along (i, j, k).
fn corner_offset(corner: usize) -> [usize; 3] {
    [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1]
}

/// Midpoint of an edge relative to the cube origin, in half-voxel units (0, 1 or 2).
fn edge_midpoint_halves(edge: usize) -> [usize; 3] {
    let [first, second] = EDGES[edge];
    let first = corner_offset(first);
    let second = corner_offset(second);
    [
        first[0] + second[0],
        first[1] + second[1],
        first[2] + second[2],
    ]
}

/// Returns the index of the edge joining two corners that differ in one bit.
fn edge_between(first: usize, second: usize) -> Option<usize> {
    let pair = [first.min(second), first.max(second)];
    EDGES.iter().position(|&edge| edge == pair)
}

/// Triangles of one cube index.
struct CubeCase {
    /// Triangles as edge triples, oriented so that (b − a) × (c − a) points from the
    /// triangulated corners' inside to their outside.
    triangles: Vec<[usize; 3]>,
    /// +1, or −1 for a cube triangulated as its complement, whose triangles point inwards.
    volume_sign: f64,
}

/// Triangles of every cube index, derived once on first use.
static CUBE_CASES: LazyLock<Vec<CubeCase>> =
    LazyLock::new(|| (0..CUBE_INDICES).map(cube_case).collect());

fn cube_case(cube_index: usize) -> CubeCase {
    let complemented = cube_index & (1 << COMPLEMENT_CORNER) != 0;
    let triangulated_index = if complemented {
        !cube_index & (CUBE_INDICES - 1)
    } else {
        cube_index
    };
    let mut triangles = Vec::new();
    for polygon in surface_polygons(triangulated_index) {
        // Every polygon has a rule, as `every_polygon_has_a_rule` checks, so the fan is
        // only a fallback.
        let local = triangulate_polygon(&polygon, triangulated_index)
            .unwrap_or_else(|| fan(polygon.len(), 0));
        triangles.extend(
            local
                .iter()
                .map(|&[a, b, c]| [polygon[a], polygon[b], polygon[c]]),
        );
    }
    CubeCase {
        triangles,
        volume_sign: if complemented { -1.0 } else { 1.0 },
    }
}

/// Corner cycles of the six cube faces, counter-clockwise seen from outside the cube.
fn face_cycles() -> [[usize; 4]; 6] {
    let mut faces = [[0; 4]; 6];
    for axis in 0..3 {
        // (u, w, axis) is a cyclic, hence right-handed, axis order.
        let u = (axis + 1) % 3;
        let w = (axis + 2) % 3;
        for side in 0..2 {
            let mut cycle = [(0, 0), (1, 0), (1, 1), (0, 1)]
                .map(|(du, dw)| (side << axis) | (du << u) | (dw << w));
            if side == 0 {
                cycle.reverse();
            }
            faces[2 * axis + side] = cycle;
        }
    }
    faces
}

/// Returns the closed polygons of the surface of one cube index, as edge cycles.
///
/// Each face contributes segments between the midpoints of its edges whose corners differ,
/// directed so that the inside corners lie to the right seen from outside the cube. Every
/// such midpoint starts one segment and ends one, so the segments link into cycles.
fn surface_polygons(cube_index: usize) -> Vec<Vec<usize>> {
    let inside = |corner: usize| cube_index & (1 << corner) != 0;
    let mut next: [Option<usize>; 12] = [None; 12];
    for cycle in face_cycles() {
        let side_edge = |m: usize| edge_between(cycle[m % 4], cycle[(m + 1) % 4]);
        let crossings: Vec<usize> = (0..4)
            .filter(|&m| inside(cycle[m]) != inside(cycle[(m + 1) % 4]))
            .collect();
        match crossings[..] {
            [first, second] => {
                // The segment runs from the side where the walk enters the inside corners
                // to the side where it leaves them.
                let (enter, leave) = if inside(cycle[first]) {
                    (second, first)
                } else {
                    (first, second)
                };
                if let (Some(from), Some(to)) = (side_edge(enter), side_edge(leave)) {
                    next[from] = Some(to);
                }
            }
            [_, _, _, _] => {
                // Ambiguous face (rule 2): cut off each inside corner on its own.
                for m in (0..4).filter(|&m| inside(cycle[m])) {
                    if let (Some(from), Some(to)) = (side_edge(m + 3), side_edge(m)) {
                        next[from] = Some(to);
                    }
                }
            }
            _ => {}
        }
    }

    let mut polygons = Vec::new();
    let mut visited = [false; 12];
    for start in 0..12 {
        if visited[start] || next[start].is_none() {
            continue;
        }
        let mut polygon = Vec::new();
        let mut edge = start;
        while !visited[edge] {
            visited[edge] = true;
            polygon.push(edge);
            match next[edge] {
                Some(following) => edge = following,
                None => break,
            }
        }
        polygons.push(polygon);
    }
    polygons
}

/// Triangles fanning out from `apex` over a polygon of `size` vertices, as positions.
fn fan(size: usize, apex: usize) -> Vec<[usize; 3]> {
    (1..size.saturating_sub(1))
        .map(|step| [apex, (apex + step) % size, (apex + step + 1) % size])
        .collect()
}

/// Fans of the two parts of a polygon split along the diagonal `from`–`to`.
fn split(size: usize, from: usize, to: usize) -> Vec<[usize; 3]> {
    let (from, to) = (from.min(to), from.max(to));
    let first: Vec<usize> = (from..=to).collect();
    let second: Vec<usize> = (to..size).chain(0..=from).collect();
    let mut triangles = Vec::new();
    for part in [first, second] {
        for step in 1..part.len().saturating_sub(1) {
            triangles.push([part[0], part[step], part[step + 1]]);
        }
    }
    triangles
}

/// Triangulates one surface polygon the way PyRadiomics' table does, returning triangles
/// as positions in `polygon`, or `None` for a polygon type that no cube index produces.
///
/// The polygon cuts the cube's corners into an inside group and an outside group (the
/// corners at the ends of its edges). The non-planar polygons are:
///
/// - pentagon, one group an L of three corners on one face: fanned from the vertex on the
///   edge that leaves that face at an end of the L;
/// - hexagon, groups of 4 and 4 (a path of three cube edges): the triangle of alternate
///   vertices plus three ears, which gives the same area and volume for both alternations;
/// - hexagon, one group two corners on a face diagonal: split along the diagonal joining
///   the vertices on the edges that leave that face at those two corners;
/// - heptagon, one group three corners A, B, C with A and B on a face diagonal and C next
///   to B: fanned from the vertex on the edge that leaves that face at A.
///
/// Triangles, quadrilaterals and the hexagon of a corner with its three neighbours are
/// planar and fanned.
fn triangulate_polygon(polygon: &[usize], cube_index: usize) -> Option<Vec<[usize; 3]>> {
    let mut inside_group = 0_usize;
    let mut outside_group = 0_usize;
    for &edge in polygon {
        for corner in EDGES[edge] {
            if cube_index & (1 << corner) != 0 {
                inside_group |= 1 << corner;
            } else {
                outside_group |= 1 << corner;
            }
        }
    }
    let sizes = (inside_group.count_ones(), outside_group.count_ones());
    let group_of_size = |size: u32| {
        if sizes.0 == size {
            inside_group
        } else {
            outside_group
        }
    };
    // Position in the polygon of the vertex on the edge from `corner` along `axis`.
    let position_along = |corner: usize, axis: usize| {
        let edge = edge_between(corner, corner ^ (1 << axis))?;
        polygon.iter().position(|&candidate| candidate == edge)
    };

    match (polygon.len(), sizes) {
        (3 | 4, _) | (6, (3, 3)) => Some(fan(polygon.len(), 0)),
        (5, (3, _) | (_, 3)) => {
            let group = group_of_size(3);
            let axis = shared_axis(group)?;
            let end = corners_of(group).find(|&corner| neighbours_in(corner, group) == 1)?;
            Some(fan(5, position_along(end, axis)?))
        }
        (6, (4, 4)) => Some(vec![[0, 1, 2], [2, 3, 4], [4, 5, 0], [0, 2, 4]]),
        (6, (2, _) | (_, 2)) => {
            let group = group_of_size(2);
            let axis = shared_axis(group)?;
            let mut corners = corners_of(group);
            let (first, second) = (corners.next()?, corners.next()?);
            Some(split(
                6,
                position_along(first, axis)?,
                position_along(second, axis)?,
            ))
        }
        (7, (3, _) | (_, 3)) => {
            let group = group_of_size(3);
            let isolated = corners_of(group).find(|&corner| neighbours_in(corner, group) == 0)?;
            let partner =
                corners_of(group).find(|&corner| (corner ^ isolated).count_ones() == 2)?;
            let axis = shared_axis((1 << isolated) | (1 << partner))?;
            Some(fan(7, position_along(isolated, axis)?))
        }
        _ => None,
    }
}

/// Corners in a group given as a corner bit set.
fn corners_of(group: usize) -> impl Iterator<Item = usize> {
    (0..CORNERS).filter(move |&corner| group & (1 << corner) != 0)
}

/// Number of cube-edge neighbours of `corner` inside `group`.
fn neighbours_in(corner: usize, group: usize) -> usize {
    (0..3)
        .filter(|&axis| group & (1 << (corner ^ (1 << axis))) != 0)
        .count()
}

/// Returns the axis along which all corners of `group` have the same offset, which is the
/// normal of the face holding them, when exactly one such axis exists.
fn shared_axis(group: usize) -> Option<usize> {
    let mut axes = (0..3).filter(|&axis| {
        let mut offsets = corners_of(group).map(|corner| corner & (1 << axis) != 0);
        match offsets.next() {
            Some(first) => offsets.all(|offset| offset == first),
            None => false,
        }
    });
    let axis = axes.next()?;
    match axes.next() {
        None => Some(axis),
        Some(_) => None,
    }
}

/// Surface area and signed volume of the ROI's mesh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct MeshMeasures {
    /// Sum of the triangle areas, in mm².
    pub surface_area: f64,
    /// Sum of the signed volumes of the tetrahedra spanned by the origin and each
    /// triangle, in mm³.
    pub volume: f64,
}

/// Measures the mesh of the padded mask, with vertex coordinates (padded index) × spacing.
pub(super) fn measure_mesh(grid: &PaddedMask, spacing: [f64; 3]) -> MeshMeasures {
    let cases = &*CUBE_CASES;
    let [size_i, size_j, size_k] = grid.dims;
    let mut surface_area = 0.0;
    let mut six_volume = 0.0;
    for k in 0..size_k - 1 {
        for j in 0..size_j - 1 {
            for i in 0..size_i - 1 {
                let mut cube_index = 0;
                for corner in 0..CORNERS {
                    let [di, dj, dk] = corner_offset(corner);
                    if grid.is_inside([i + di, j + dj, k + dk]) {
                        cube_index |= 1 << corner;
                    }
                }
                if cube_index == 0 || cube_index == CUBE_INDICES - 1 {
                    continue;
                }
                let case = &cases[cube_index];
                let vertex = |edge: usize| {
                    let halves = edge_midpoint_halves(edge);
                    let origin = [i, j, k];
                    [0, 1, 2].map(|axis| {
                        (origin[axis] as f64 + halves[axis] as f64 * 0.5) * spacing[axis]
                    })
                };
                for &[first, second, third] in &case.triangles {
                    let a = vertex(first);
                    let b = vertex(second);
                    let c = vertex(third);
                    six_volume += case.volume_sign * dot(a, cross(b, c));
                    let normal = cross(sub(a, c), sub(b, c));
                    surface_area += 0.5 * dot(normal, normal).sqrt();
                }
            }
        }
    }
    MeshMeasures {
        surface_area,
        volume: six_volume / 6.0,
    }
}

/// Returns every mesh vertex once, in half-voxel units of the padded grid: the midpoints
/// of all pairs of neighbouring voxels of which exactly one is inside.
pub(super) fn mesh_vertices(grid: &PaddedMask) -> Vec<[i64; 3]> {
    let [size_i, size_j, size_k] = grid.dims;
    let mut vertices = Vec::new();
    for k in 0..size_k {
        for j in 0..size_j {
            for i in 0..size_i {
                let voxel = [i, j, k];
                let inside = grid.is_inside(voxel);
                for axis in 0..3 {
                    let mut neighbour = voxel;
                    neighbour[axis] += 1;
                    if neighbour[axis] < grid.dims[axis] && grid.is_inside(neighbour) != inside {
                        let mut halves = [2 * i as i64, 2 * j as i64, 2 * k as i64];
                        halves[axis] += 1;
                        vertices.push(halves);
                    }
                }
            }
        }
    }
    vertices
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// Relative tolerance against PyRadiomics: the same triangles summed in another order
    /// and with the cross product in another axis order differ by a few units in 10⁻¹⁵.
    const REFERENCE_RELATIVE_TOLERANCE: f64 = 1e-12;

    const SPACING: [f64; 3] = [0.7, 1.3, 2.9];

    fn block_mask(cube_index: usize) -> Array3<bool> {
        Array3::from_shape_fn((2, 2, 2), |(i, j, k)| {
            cube_index & (1 << (i + 2 * j + 4 * k)) != 0
        })
    }

    #[test]
    fn every_polygon_has_a_rule() {
        for cube_index in 0..CUBE_INDICES {
            let triangulated = if cube_index & (1 << COMPLEMENT_CORNER) != 0 {
                !cube_index & 0xFF
            } else {
                cube_index
            };
            for polygon in surface_polygons(triangulated) {
                assert!(
                    triangulate_polygon(&polygon, triangulated).is_some(),
                    "cube index {cube_index}: no rule for polygon {polygon:?}"
                );
            }
        }
    }

    #[test]
    fn polygons_use_each_crossed_edge_once() {
        for cube_index in 0..CUBE_INDICES {
            let mut used = [0; 12];
            for polygon in surface_polygons(cube_index) {
                assert!(
                    (3..=7).contains(&polygon.len()),
                    "cube index {cube_index}: polygon {polygon:?}"
                );
                for edge in polygon {
                    used[edge] += 1;
                }
            }
            for (edge, &[first, second]) in EDGES.iter().enumerate() {
                let crossed = (cube_index >> first & 1) != (cube_index >> second & 1);
                assert_eq!(
                    used[edge],
                    usize::from(crossed),
                    "cube index {cube_index}, edge {edge}"
                );
            }
        }
    }

    #[test]
    fn complement_corner_flips_volume_sign() {
        for cube_index in 0..CUBE_INDICES {
            let case = &CUBE_CASES[cube_index];
            if cube_index & (1 << COMPLEMENT_CORNER) != 0 {
                let complement = &CUBE_CASES[!cube_index & 0xFF];
                assert_eq!(
                    case.triangles, complement.triangles,
                    "cube index {cube_index}"
                );
                assert_eq!(case.volume_sign, -1.0);
            } else {
                assert_eq!(case.volume_sign, 1.0);
            }
        }
    }

    #[test]
    fn single_voxel_mesh_is_octahedron() {
        let mask = Array3::from_elem((1, 1, 1), true);
        let grid = PaddedMask::from_mask(mask.view()).expect("one voxel inside");
        let mesh = measure_mesh(&grid, SPACING);
        let [si, sj, sk] = SPACING;
        let volume = si * sj * sk / 6.0;
        let area = ((sj * sk).powi(2) + (si * sk).powi(2) + (si * sj).powi(2)).sqrt();
        assert!(
            (mesh.volume - volume).abs() < 1e-14,
            "volume {} != {volume}",
            mesh.volume
        );
        assert!(
            (mesh.surface_area - area).abs() < 1e-14,
            "area {} != {area}",
            mesh.surface_area
        );
        assert_eq!(mesh_vertices(&grid).len(), 6);
    }

    /// Reference values: PyRadiomics 3.1.4 (pyradiomics-bhklab), `RadiomicsShape`, spacing
    /// (0.7, 1.3, 2.9) mm. Its input was the 2 × 2 × 2 mask of each cube index, with voxel
    /// (i, j, k) inside when bit i + 2j + 4k is set. Each mask was cropped to its bounding
    /// box as the feature extractor crops it. Columns: cube index, SurfaceArea (mm²),
    /// MeshVolume (mm³).
    #[test]
    fn every_cube_pattern_matches_pyradiomics() {
        for &(cube_index, surface_area, volume) in PYRADIOMICS_CUBE_PATTERNS {
            let mask = block_mask(cube_index);
            let grid = PaddedMask::from_mask(mask.view()).expect("pattern has an inside voxel");
            let mesh = measure_mesh(&grid, SPACING);
            let area_error = (mesh.surface_area - surface_area).abs() / surface_area;
            let volume_error = (mesh.volume - volume).abs() / volume.abs();
            assert!(
                area_error <= REFERENCE_RELATIVE_TOLERANCE,
                "cube index {cube_index}: SurfaceArea {} vs PyRadiomics {surface_area}",
                mesh.surface_area
            );
            assert!(
                volume_error <= REFERENCE_RELATIVE_TOLERANCE,
                "cube index {cube_index}: MeshVolume {} vs PyRadiomics {volume}",
                mesh.volume
            );
        }
    }

    const PYRADIOMICS_CUBE_PATTERNS: &[(usize, f64, f64)] = &[
        (1, 4.377430753307241, 0.43983333333333324),
        (2, 4.377430753307241, 0.43983333333333324),
        (3, 8.826700356287036, 1.7593333333333332),
        (4, 4.377430753307241, 0.43983333333333324),
        (5, 12.133976376198914, 1.7593333333333325),
        (6, 10.943576883268097, 0.8796666666666665),
        (7, 15.767769119550215, 3.7385833333333327),
        (8, 4.377430753307241, 0.43983333333333324),
        (9, 8.754861506614478, 0.8796666666666662),
        (10, 12.133976376198914, 1.7593333333333325),
        (11, 15.767769119550215, 3.7385833333333327),
        (12, 8.826700356287036, 1.7593333333333332),
        (13, 15.767769119550215, 3.738583333333333),
        (14, 15.767769119550215, 3.7385833333333327),
        (15, 18.403245979178713, 5.717833333333332),
        (16, 4.377430753307241, 0.43983333333333324),
        (17, 12.941028128242609, 1.7593333333333334),
        (18, 10.9435768832681, 0.8796666666666667),
        (19, 17.291294995572063, 3.738583333333333),
        (20, 8.75486150661448, 0.8796666666666663),
        (21, 20.684933005528002, 3.7385833333333323),
        (22, 17.509723013228953, 1.3195),
        (23, 23.868360786777046, 5.827791666666666),
        (24, 8.75486150661448, 0.8796666666666665),
        (25, 17.318458881549848, 2.1991666666666667),
        (26, 18.700122506159772, 2.1991666666666663),
        (27, 24.82034134598176, 5.497916666666666),
        (28, 13.204131109594275, 2.1991666666666667),
        (29, 24.4501128385148, 5.497916666666666),
        (30, 22.33391524951107, 4.178416666666666),
        (31, 26.503837646405543, 7.807041666666666),
        (32, 4.377430753307241, 0.43983333333333324),
        (33, 8.754861506614484, 0.8796666666666666),
        (34, 12.941028128242609, 1.7593333333333334),
        (35, 17.291294995572063, 3.738583333333334),
        (36, 8.754861506614482, 0.8796666666666662),
        (37, 16.511407129506154, 2.199166666666666),
        (38, 19.507174258203467, 2.199166666666667),
        (39, 24.82034134598176, 5.497916666666668),
        (40, 8.75486150661448, 0.8796666666666663),
        (41, 13.132292259921718, 1.3194999999999995),
        (42, 20.684933005528002, 3.7385833333333323),
        (43, 23.868360786777046, 5.827791666666667),
        (44, 13.204131109594277, 2.1991666666666663),
        (45, 20.145199872857454, 4.178416666666666),
        (46, 24.45011283851481, 5.497916666666666),
        (47, 26.503837646405543, 7.807041666666666),
        (48, 8.826700356287036, 1.7593333333333332),
        (49, 17.291294995572063, 3.7385833333333327),
        (50, 17.291294995572063, 3.7385833333333327),
        (51, 21.450297731222406, 5.717833333333335),
        (52, 13.204131109594277, 2.199166666666666),
        (53, 24.70746843149842, 5.497916666666666),
        (54, 23.85744112553292, 4.178416666666666),
        (55, 28.027363522427393, 7.807041666666666),
        (56, 13.204131109594277, 2.1991666666666663),
        (57, 21.6687257488793, 4.178416666666665),
        (58, 24.707468431498423, 5.497916666666666),
        (59, 28.027363522427393, 7.807041666666664),
        (60, 17.653400712574072, 3.5186666666666664),
        (61, 28.726400763702085, 6.927374999999999),
        (62, 28.726400763702085, 6.927374999999999),
        (63, 30.2988374099977, 10.336083333333331),
        (64, 4.377430753307241, 0.43983333333333324),
        (65, 10.9435768832681, 1.7593333333333325),
        (66, 8.754861506614478, 0.8796666666666665),
        (67, 15.801616860193134, 3.5186666666666664),
        (68, 12.941028128242609, 1.7593333333333334),
        (69, 20.684933005528002, 3.7385833333333323),
        (70, 21.88544413805345, 3.518666666666666),
        (71, 24.450112838514805, 5.497916666666666),
        (72, 10.9435768832681, 0.8796666666666667),
        (73, 15.321007636575334, 2.419083333333332),
        (74, 18.96721518667709, 2.1991666666666663),
        (75, 20.145199872857454, 4.398333333333333),
        (76, 17.291294995572063, 3.738583333333333),
        (77, 23.868360786777046, 5.827791666666666),
        (78, 24.82034134598176, 5.497916666666666),
        (79, 26.503837646405543, 7.807041666666666),
        (80, 12.133976376198914, 1.7593333333333325),
        (81, 20.684933005528002, 3.738583333333333),
        (82, 21.155930563330717, 3.518666666666667),
        (83, 24.707468431498423, 5.497916666666666),
        (84, 20.684933005528002, 3.7385833333333323),
        (85, 28.237573751134285, 5.717833333333332),
        (86, 29.43979451214248, 5.717833333333332),
        (87, 31.421001532383332, 7.807041666666666),
        (88, 18.96721518667709, 2.199166666666667),
        (89, 25.062363758835243, 4.398333333333333),
        (90, 26.45666812905145, 4.398333333333333),
        (91, 29.436191033015106, 6.9273750000000005),
        (92, 24.707468431498423, 5.497916666666668),
        (93, 31.421001532383332, 7.8070416666666675),
        (94, 31.62490640966872, 8.246875000000001),
        (95, 33.60611342990958, 10.336083333333333),
        (96, 10.943576883268097, 0.8796666666666665),
        (97, 15.321007636575338, 2.4190833333333326),
        (98, 19.69672876139983, 2.199166666666667),
        (99, 21.6687257488793, 4.398333333333333),
        (100, 19.696728761399832, 2.1991666666666663),
        (101, 25.06236375883524, 4.3983333333333325),
        (102, 28.070771633138836, 4.398333333333333),
        (103, 30.243242785058797, 6.9273750000000005),
        (104, 15.321007636575336, -0.2199166666666673),
        (105, 17.509723013228957, 2.638999999999999),
        (106, 25.06236375883524, 3.0788333333333333),
        (107, 26.057076163430665, 6.047708333333333),
        (108, 21.6687257488793, 3.0788333333333333),
        (109, 26.057076163430665, 6.0477083333333335),
        (110, 30.243242785058797, 6.927375000000001),
        (111, 32.41571393697876, 9.456416666666664),
        (112, 15.767769119550215, 3.7385833333333327),
        (113, 23.868360786777046, 5.827791666666666),
        (114, 24.820341345981763, 5.497916666666666),
        (115, 28.02736352242739, 7.8070416666666675),
        (116, 24.45011283851481, 5.497916666666665),
        (117, 31.42100153238333, 7.807041666666666),
        (118, 32.431958161712416, 8.246875),
        (119, 34.413165181953275, 10.336083333333333),
        (120, 20.14519987285745, 3.0788333333333333),
        (121, 26.057076163430665, 6.047708333333333),
        (122, 29.436191033015103, 6.9273750000000005),
        (123, 32.41571393697876, 9.456416666666668),
        (124, 26.128915013103224, 6.927375000000001),
        (125, 32.415713936978754, 9.456416666666668),
        (126, 34.60442931363238, 10.775916666666665),
        (127, 36.58563633387323, 12.865124999999999),
        (128, 4.377430753307241, 0.43983333333333324),
        (129, 8.754861506614478, 0.8796666666666667),
        (130, 10.9435768832681, 1.7593333333333325),
        (131, 15.392846486247894, 3.518666666666667),
        (132, 8.754861506614484, 0.8796666666666666),
        (133, 16.511407129506154, 2.1991666666666663),
        (134, 17.509723013228953, 2.639),
        (135, 22.333915249511072, 5.497916666666666),
        (136, 12.941028128242609, 1.7593333333333334),
        (137, 17.318458881549848, 2.1991666666666667),
        (138, 20.684933005528002, 3.7385833333333323),
        (139, 24.45011283851481, 5.497916666666668),
        (140, 17.291294995572063, 3.738583333333334),
        (141, 24.820341345981763, 5.497916666666668),
        (142, 23.868360786777046, 5.827791666666669),
        (143, 26.503837646405547, 7.807041666666666),
        (144, 8.754861506614478, 0.8796666666666662),
        (145, 17.318458881549848, 2.1991666666666667),
        (146, 17.509723013228957, 2.639),
        (147, 23.85744112553292, 5.497916666666668),
        (148, 13.132292259921718, 1.3194999999999997),
        (149, 25.06236375883524, 4.178416666666666),
        (150, 24.07586914318981, 3.0788333333333324),
        (151, 30.434506916737902, 7.587125),
        (152, 17.318458881549848, 2.199166666666667),
        (153, 25.882056256485217, 3.518666666666667),
        (154, 27.251079135488858, 4.178416666666666),
        (155, 32.62151266490878, 6.9273750000000005),
        (156, 21.6687257488793, 4.178416666666666),
        (157, 32.62151266490878, 6.9273750000000005),
        (158, 30.434506916737902, 6.267625000000002),
        (159, 34.60442931363238, 9.89625),
        (160, 12.133976376198914, 1.7593333333333325),
        (161, 16.511407129506157, 2.199166666666668),
        (162, 20.684933005528002, 3.738583333333333),
        (163, 24.707468431498423, 5.497916666666669),
        (164, 16.511407129506157, 2.1991666666666667),
        (165, 24.267952752397832, 3.518666666666667),
        (166, 27.25107913548886, 4.178416666666668),
        (167, 31.891999090186047, 6.927375000000001),
        (168, 20.684933005528002, 3.7385833333333323),
        (169, 25.062363758835247, 4.178416666666667),
        (170, 28.237573751134285, 5.717833333333332),
        (171, 31.421001532383336, 7.8070416666666675),
        (172, 24.707468431498427, 5.497916666666668),
        (173, 31.891999090186044, 6.927375000000001),
        (174, 31.421001532383336, 7.8070416666666675),
        (175, 33.60611342990958, 10.336083333333335),
        (176, 15.767769119550215, 3.7385833333333327),
        (177, 24.820341345981763, 5.497916666666668),
        (178, 23.868360786777046, 5.827791666666667),
        (179, 28.02736352242739, 7.8070416666666675),
        (180, 20.145199872857454, 4.178416666666666),
        (181, 31.891999090186044, 6.927374999999999),
        (182, 30.434506916737902, 6.267625),
        (183, 34.60442931363237, 9.89625),
        (184, 24.45011283851481, 5.497916666666666),
        (185, 32.62151266490878, 6.927374999999999),
        (186, 31.42100153238333, 7.807041666666667),
        (187, 34.41316518195327, 10.336083333333333),
        (188, 28.726400763702085, 6.9273750000000005),
        (189, 34.60442931363237, 10.775916666666665),
        (190, 34.60442931363237, 9.89625),
        (191, 36.58563633387323, 12.865124999999999),
        (192, 8.826700356287036, 1.7593333333333332),
        (193, 15.801616860193137, 3.518666666666667),
        (194, 17.990332236846758, 3.518666666666667),
        (195, 19.84211608922769, 5.717833333333334),
        (196, 17.291294995572063, 3.7385833333333327),
        (197, 24.70746843149842, 5.497916666666666),
        (198, 26.046156502186538, 5.717833333333334),
        (199, 28.317630389756843, 8.246875000000001),
        (200, 17.291294995572063, 3.7385833333333327),
        (201, 21.6687257488793, 5.717833333333332),
        (202, 24.707468431498423, 5.497916666666668),
        (203, 26.128915013103224, 8.246875000000001),
        (204, 21.450297731222406, 5.717833333333335),
        (205, 28.027363522427393, 7.8070416666666675),
        (206, 28.027363522427393, 7.8070416666666675),
        (207, 30.2988374099977, 10.336083333333333),
        (208, 15.767769119550215, 3.738583333333333),
        (209, 24.450112838514805, 5.497916666666668),
        (210, 24.522630626164695, 5.717833333333335),
        (211, 28.317630389756843, 8.246875000000001),
        (212, 23.868360786777046, 5.827791666666666),
        (213, 31.42100153238333, 7.8070416666666675),
        (214, 32.62322229339152, 8.686708333333335),
        (215, 34.60442931363237, 10.775916666666667),
        (216, 24.82034134598176, 5.497916666666668),
        (217, 30.243242785058797, 8.246875000000001),
        (218, 31.62490640966872, 8.246875),
        (219, 34.60442931363239, 10.775916666666667),
        (220, 28.027363522427393, 7.807041666666667),
        (221, 34.41316518195327, 10.336083333333336),
        (222, 34.60442931363239, 10.775916666666669),
        (223, 36.58563633387323, 12.865124999999999),
        (224, 15.767769119550215, 3.7385833333333327),
        (225, 20.145199872857454, 5.717833333333334),
        (226, 24.450112838514805, 5.497916666666669),
        (227, 26.128915013103224, 8.246875000000001),
        (228, 24.82034134598176, 5.497916666666668),
        (229, 29.4361910330151, 8.246875000000001),
        (230, 32.431958161712416, 8.246875000000003),
        (231, 34.60442931363237, 10.775916666666669),
        (232, 23.86836078677705, 5.827791666666666),
        (233, 26.05707616343067, 8.686708333333334),
        (234, 31.42100153238333, 7.8070416666666675),
        (235, 32.41571393697876, 10.775916666666667),
        (236, 28.02736352242739, 7.8070416666666675),
        (237, 32.41571393697876, 10.775916666666669),
        (238, 34.41316518195327, 10.336083333333336),
        (239, 36.58563633387323, 12.865124999999997),
        (240, 18.403245979178713, 5.717833333333332),
        (241, 26.503837646405547, 7.8070416666666675),
        (242, 26.503837646405547, 7.8070416666666675),
        (243, 30.298837409997695, 10.336083333333336),
        (244, 26.503837646405547, 7.807041666666667),
        (245, 33.60611342990958, 10.336083333333335),
        (246, 34.60442931363237, 10.775916666666667),
        (247, 36.58563633387323, 12.865124999999999),
        (248, 26.503837646405543, 7.807041666666667),
        (249, 32.41571393697876, 10.775916666666667),
        (250, 33.60611342990958, 10.336083333333335),
        (251, 36.58563633387323, 12.865124999999999),
        (252, 30.2988374099977, 10.336083333333335),
        (253, 36.58563633387323, 12.865124999999999),
        (254, 36.58563633387323, 12.865124999999999),
        (255, 38.56684335411409, 14.954333333333329),
    ];
}
