//! Volume and surface area of the convex hull of a point set, by incremental
//! construction. It starts from a tetrahedron. Each point outside the hull then replaces
//! the faces visible from it by a cone from the point to their horizon.
//!
//! Mesh vertices lie on a half-voxel lattice, so many points are coplanar with a face. A
//! point counts as outside a face only beyond a tolerance of 10⁻⁹ × the point set's
//! extent. Coplanar points are therefore skipped, which leaves the hull's volume and area
//! unchanged.
//! The cost is O(n × h) for n points and h hull faces.

/// Volume and area of a convex hull, in the units of the points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HullMeasures {
    pub volume: f64,
    pub area: f64,
}

/// Returns the convex hull's volume and area, or `None` when the points span no volume.
pub(super) fn measure(points: &[[f64; 3]]) -> Option<HullMeasures> {
    let extent = bounding_extent(points);
    let tolerance = 1e-9 * extent.max(f64::MIN_POSITIVE);
    let seed = initial_tetrahedron(points, tolerance)?;

    let centre = scale(
        add(
            add(points[seed[0]], points[seed[1]]),
            add(points[seed[2]], points[seed[3]]),
        ),
        0.25,
    );
    let mut faces: Vec<[usize; 3]> = Vec::new();
    for [a, b, c] in [
        [seed[0], seed[1], seed[2]],
        [seed[0], seed[1], seed[3]],
        [seed[0], seed[2], seed[3]],
        [seed[1], seed[2], seed[3]],
    ] {
        faces.push(outward([a, b, c], points, centre));
    }

    for (index, &point) in points.iter().enumerate() {
        let visible: Vec<bool> = faces
            .iter()
            .map(|&face| signed_distance(face, points, point) > tolerance)
            .collect();
        if !visible.contains(&true) {
            continue;
        }

        // A horizon edge belongs to a visible face and to no other visible face.
        let visible_edges: Vec<[usize; 2]> = faces
            .iter()
            .zip(&visible)
            .filter(|(_, seen)| **seen)
            .flat_map(|(face, _)| [[face[0], face[1]], [face[1], face[2]], [face[2], face[0]]])
            .collect();
        let horizon: Vec<[usize; 2]> = visible_edges
            .iter()
            .copied()
            .filter(|&[u, v]| !visible_edges.contains(&[v, u]))
            .collect();

        let mut kept: Vec<[usize; 3]> = faces
            .iter()
            .zip(&visible)
            .filter(|(_, seen)| !**seen)
            .map(|(face, _)| *face)
            .collect();
        kept.extend(horizon.iter().map(|&[u, v]| [u, v, index]));
        faces = kept;
    }

    let mut volume = 0.0;
    let mut area = 0.0;
    for [a, b, c] in &faces {
        let (a, b, c) = (points[*a], points[*b], points[*c]);
        let normal = cross(sub(b, a), sub(c, a));
        area += 0.5 * dot(normal, normal).sqrt();
        volume += dot(a, cross(b, c)) / 6.0;
    }
    Some(HullMeasures { volume, area })
}

/// Returns the largest coordinate extent of the points.
fn bounding_extent(points: &[[f64; 3]]) -> f64 {
    (0..3)
        .map(|axis| {
            let low = points.iter().map(|p| p[axis]).fold(f64::INFINITY, f64::min);
            let high = points
                .iter()
                .map(|p| p[axis])
                .fold(f64::NEG_INFINITY, f64::max);
            high - low
        })
        .fold(0.0, f64::max)
}

/// Picks four points that span a volume: an extreme point, the point farthest from it,
/// the point farthest from their line and the point farthest from their plane.
fn initial_tetrahedron(points: &[[f64; 3]], tolerance: f64) -> Option<[usize; 4]> {
    let first = (0..points.len()).min_by(|&a, &b| points[a][0].total_cmp(&points[b][0]))?;
    let farthest = |score: &dyn Fn([f64; 3]) -> f64| {
        (0..points.len()).max_by(|&a, &b| score(points[a]).total_cmp(&score(points[b])))
    };
    let second = farthest(&|p| norm(sub(p, points[first])))?;
    let axis = sub(points[second], points[first]);
    let third = farthest(&|p| norm(cross(axis, sub(p, points[first]))))?;
    let normal = cross(axis, sub(points[third], points[first]));
    let fourth = farthest(&|p| dot(normal, sub(p, points[first])).abs())?;
    let height =
        dot(normal, sub(points[fourth], points[first])).abs() / norm(normal).max(f64::MIN_POSITIVE);
    (norm(axis) > tolerance && height > tolerance).then_some([first, second, third, fourth])
}

/// Orders a face's vertices so that its normal points away from `inside`.
fn outward(face: [usize; 3], points: &[[f64; 3]], inside: [f64; 3]) -> [usize; 3] {
    if signed_distance(face, points, inside) > 0.0 {
        [face[0], face[2], face[1]]
    } else {
        face
    }
}

/// Returns the distance of `point` above the plane of `face`, positive on its normal side.
fn signed_distance(face: [usize; 3], points: &[[f64; 3]], point: [f64; 3]) -> f64 {
    let [a, b, c] = face.map(|index| points[index]);
    let normal = cross(sub(b, a), sub(c, a));
    dot(normal, sub(point, a)) / norm(normal).max(f64::MIN_POSITIVE)
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn scale(a: [f64; 3], factor: f64) -> [f64; 3] {
    a.map(|x| x * factor)
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

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The corners and face centres of a 2 × 3 × 4 box, plus interior points: the hull is
    /// the box, volume 24 and area 2 (6 + 8 + 12) = 52, exactly.
    #[test]
    fn box_hull_has_box_volume_and_area() {
        let mut points = Vec::new();
        for x in [0.0, 1.0, 2.0] {
            for y in [0.0, 1.5, 3.0] {
                for z in [0.0, 2.0, 4.0] {
                    points.push([x, y, z]);
                }
            }
        }
        let hull = measure(&points).expect("a box spans a volume");
        assert!((hull.volume - 24.0).abs() < 1e-9, "volume {}", hull.volume);
        assert!((hull.area - 52.0).abs() < 1e-9, "area {}", hull.area);
    }

    #[test]
    fn planar_points_have_no_hull() {
        let points = [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.0],
        ];
        assert_eq!(measure(&points), None);
    }
}
