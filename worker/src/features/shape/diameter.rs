//! Maximum distances between mesh vertices, in 3-D and within axis-aligned planes.
//!
//! PyRadiomics 3.1.4 compares every pair of mesh vertices, which takes minutes for lesions
//! with tens of thousands of vertices. Here a k-d tree over the vertices is searched pair of
//! boxes by pair of boxes, and a pair of boxes is skipped when no two points in it can be
//! farther apart than the best pair found so far. The skipping test is evaluated with the
//! same rounded operations as the point distances, so it never skips a pair that would
//! raise the maximum. The result therefore equals the all-pairs maximum bit for bit, and
//! the tests compare both on random point sets.

/// Maximum vertex distances of the mesh, in mm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Diameters {
    /// Over all vertex pairs.
    pub maximum_3d: f64,
    /// Over pairs with equal k (the axial plane for axial acquisitions).
    pub slice: f64,
    /// Over pairs with equal j.
    pub column: f64,
    /// Over pairs with equal i.
    pub row: f64,
}

/// Number of points below which a k-d tree node is not split further.
const LEAF_SIZE: usize = 16;

/// Computes the maximum diameters of vertices given in half-voxel units.
///
/// A vertex at half-voxel coordinates h has physical coordinates (h / 2) × spacing, rounded
/// as PyRadiomics rounds (index + ½) × spacing. Squared distances are summed in the order
/// k, j, i as in PyRadiomics' (z, y, x) arrays.
pub(super) fn max_diameters(vertices: &[[i64; 3]], spacing: [f64; 3]) -> Diameters {
    let all: Vec<[f64; 3]> = vertices
        .iter()
        .map(|&halves| physical(halves, spacing))
        .collect();
    Diameters {
        maximum_3d: max_pair_distance_squared(all).sqrt(),
        slice: max_in_planes(vertices, spacing, 2),
        column: max_in_planes(vertices, spacing, 1),
        row: max_in_planes(vertices, spacing, 0),
    }
}

fn physical(halves: [i64; 3], spacing: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|axis| (halves[axis] as f64 * 0.5) * spacing[axis])
}

fn distance_squared(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let di = a[0] - b[0];
    let dj = a[1] - b[1];
    let dk = a[2] - b[2];
    dk * dk + dj * dj + di * di
}

/// Maximum distance between two vertices with the same coordinate along `axis`.
fn max_in_planes(vertices: &[[i64; 3]], spacing: [f64; 3], axis: usize) -> f64 {
    let mut order: Vec<usize> = (0..vertices.len()).collect();
    order.sort_unstable_by_key(|&index| vertices[index][axis]);
    let mut best = 0.0_f64;
    for plane in order.chunk_by(|&a, &b| vertices[a][axis] == vertices[b][axis]) {
        let points: Vec<[f64; 3]> = plane
            .iter()
            .map(|&index| physical(vertices[index], spacing))
            .collect();
        best = best.max(max_pair_distance_squared(points));
    }
    best.sqrt()
}

/// Node of the k-d tree: the bounding box of `points[start..end]`.
struct Node {
    lower: [f64; 3],
    upper: [f64; 3],
    start: usize,
    end: usize,
    children: Option<(usize, usize)>,
}

/// Returns the maximum squared distance over all pairs of `points`, 0 for fewer than two.
fn max_pair_distance_squared(mut points: Vec<[f64; 3]>) -> f64 {
    if points.len() < 2 {
        return 0.0;
    }
    let mut best = farthest_pair_lower_bound(&points);
    let mut nodes = Vec::new();
    let point_count = points.len();
    let root = build_tree(&mut points, &mut nodes, 0, point_count);

    let mut pending = vec![(root, root)];
    while let Some((first, second)) = pending.pop() {
        if box_distance_bound(&nodes[first], &nodes[second]) <= best {
            continue;
        }
        match (nodes[first].children, nodes[second].children) {
            (None, None) => {
                best = best.max(brute_force(
                    &points,
                    &nodes[first],
                    &nodes[second],
                    first == second,
                ))
            }
            (Some((left, right)), _) if first == second => {
                pending.extend([(left, left), (left, right), (right, right)]);
            }
            (Some((left, right)), None) => pending.extend([(left, second), (right, second)]),
            (None, Some((left, right))) => pending.extend([(first, left), (first, right)]),
            (Some((left, right)), Some((second_left, second_right))) => {
                let first_size = nodes[first].end - nodes[first].start;
                let second_size = nodes[second].end - nodes[second].start;
                if first_size >= second_size {
                    pending.extend([(left, second), (right, second)]);
                } else {
                    pending.extend([(first, second_left), (first, second_right)]);
                }
            }
        }
    }
    best
}

/// Returns the squared distance of a pair found by two farthest-point sweeps, the first
/// bound for pruning.
fn farthest_pair_lower_bound(points: &[[f64; 3]]) -> f64 {
    let farthest_from = |origin: usize| {
        let mut best = (0.0, origin);
        for (index, point) in points.iter().enumerate() {
            let distance = distance_squared(&points[origin], point);
            if distance > best.0 {
                best = (distance, index);
            }
        }
        best
    };
    let (_, first_end) = farthest_from(0);
    let (distance, _) = farthest_from(first_end);
    distance
}

fn build_tree(points: &mut [[f64; 3]], nodes: &mut Vec<Node>, start: usize, end: usize) -> usize {
    let mut lower = [f64::INFINITY; 3];
    let mut upper = [f64::NEG_INFINITY; 3];
    for point in &points[start..end] {
        for axis in 0..3 {
            lower[axis] = lower[axis].min(point[axis]);
            upper[axis] = upper[axis].max(point[axis]);
        }
    }
    let id = nodes.len();
    nodes.push(Node {
        lower,
        upper,
        start,
        end,
        children: None,
    });
    if end - start > LEAF_SIZE {
        let widest = (0..3)
            .max_by(|&a, &b| (upper[a] - lower[a]).total_cmp(&(upper[b] - lower[b])))
            .unwrap_or(0);
        let middle = start + (end - start) / 2;
        points[start..end]
            .select_nth_unstable_by(middle - start, |a, b| a[widest].total_cmp(&b[widest]));
        let left = build_tree(points, nodes, start, middle);
        let right = build_tree(points, nodes, middle, end);
        nodes[id].children = Some((left, right));
    }
    id
}

/// Upper bound of the squared distance between a point of one box and a point of the
/// other. Each axis term rounds up at least as far as the corresponding term of any point
/// pair inside the boxes, because rounding is monotonic.
fn box_distance_bound(first: &Node, second: &Node) -> f64 {
    let gap = |axis: usize| {
        (first.upper[axis] - second.lower[axis]).max(second.upper[axis] - first.lower[axis])
    };
    let (gi, gj, gk) = (gap(0), gap(1), gap(2));
    gk * gk + gj * gj + gi * gi
}

fn brute_force(points: &[[f64; 3]], first: &Node, second: &Node, same: bool) -> f64 {
    let mut best = 0.0_f64;
    for a in first.start..first.end {
        let partners = if same {
            a + 1..first.end
        } else {
            second.start..second.end
        };
        for b in partners {
            best = best.max(distance_squared(&points[a], &points[b]));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// All-pairs maximum diameters, the way PyRadiomics computes them.
    fn max_diameters_reference(vertices: &[[i64; 3]], spacing: [f64; 3]) -> Diameters {
        let points: Vec<[f64; 3]> = vertices
            .iter()
            .map(|&halves| physical(halves, spacing))
            .collect();
        let mut squared = [0.0_f64; 4];
        for a in 0..points.len() {
            for b in a + 1..points.len() {
                let distance = distance_squared(&points[a], &points[b]);
                squared[0] = squared[0].max(distance);
                for axis in 0..3 {
                    if vertices[a][axis] == vertices[b][axis] {
                        squared[3 - axis] = squared[3 - axis].max(distance);
                    }
                }
            }
        }
        Diameters {
            maximum_3d: squared[0].sqrt(),
            slice: squared[1].sqrt(),
            column: squared[2].sqrt(),
            row: squared[3].sqrt(),
        }
    }

    /// Deterministic pseudo-random points on the half-voxel lattice.
    fn lattice_points(count: usize, extent: i64, seed: u64) -> Vec<[i64; 3]> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % extent as u64) as i64
        };
        (0..count).map(|_| [next(), next(), next()]).collect()
    }

    #[test]
    fn pruned_search_equals_all_pairs() {
        for (seed, count) in [(1, 2), (2, 17), (3, 100), (4, 1000), (5, 3000)] {
            let vertices = lattice_points(count, 60, seed);
            let spacing = [0.98, 0.77, 3.27];
            assert_eq!(
                max_diameters(&vertices, spacing),
                max_diameters_reference(&vertices, spacing),
                "seed {seed}, {count} points"
            );
        }
    }

    #[test]
    fn pruned_search_equals_all_pairs_on_thin_shapes() {
        // Points on a plane and on a line give degenerate boxes with zero-width axes.
        let planar: Vec<[i64; 3]> = lattice_points(500, 80, 9)
            .into_iter()
            .map(|[i, j, _]| [i, j, 7])
            .collect();
        let linear: Vec<[i64; 3]> = (0..300).map(|t| [t, 5, 3]).collect();
        for vertices in [planar, linear] {
            let spacing = [1.1, 0.45, 1.7];
            assert_eq!(
                max_diameters(&vertices, spacing),
                max_diameters_reference(&vertices, spacing)
            );
        }
    }

    #[test]
    fn fewer_than_two_points_give_zero() {
        let single = max_diameters(&[[1, 2, 3]], [1.0, 1.0, 1.0]);
        assert_eq!(single.maximum_3d, 0.0);
        assert_eq!(single.slice, 0.0);
        assert_eq!(max_diameters(&[], [1.0, 1.0, 1.0]).row, 0.0);
    }
}
