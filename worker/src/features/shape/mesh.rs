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
mod tests;
