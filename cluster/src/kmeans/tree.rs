//! A k-d tree over the distinct points, with each node's bounding box,
//! total weight and weighted coordinate sums, so that the seeding and the
//! Lloyd iterations can treat a whole node at once.
//!
//! Construction (J. L. Bentley, "Multidimensional binary search trees used
//! for associative searching", Commun. ACM 18, 1975): a node with more than
//! [`LEAF_POINTS`] points splits at the median of its widest column, the
//! points ordered by that column and then by their lexicographic rank, so
//! the tree depends only on the distinct points. Nodes are stored in
//! preorder: the subtree of node i is the node range i..subtree_end, and
//! its points are the contiguous range start..end of the tree order.

use super::points::DistinctPoints;

/// Maximum number of points in a leaf. On the 49 STS MR lesions of the
/// habitat bench (about 125,000 points each, 40 clusters, 10 runs), the
/// k-means took about 8.3 s of CPU with 8, 7.5 s with 16 and 7.2 to 7.4 s
/// with 24 or 32. Scanning a few more points per leaf costs less than
/// walking three times as many nodes. The seeding draws points in tree
/// order, so this constant also decides which k-means++ seeds a given
/// random stream gives.
pub(super) const LEAF_POINTS: usize = 24;

/// Marks a leaf in [`Node::left`]; no child can be node 0, the root.
const NO_CHILD: u32 = 0;

#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// First point of the node, in tree order.
    pub(super) start: u32,
    /// One past the last point of the node.
    pub(super) end: u32,
    /// One past the last node of the subtree, in preorder.
    pub(super) subtree_end: u32,
    /// Left child, or [`NO_CHILD`] for a leaf.
    pub(super) left: u32,
    /// Right child; unused for a leaf.
    pub(super) right: u32,
}

impl Node {
    pub(super) fn is_leaf(&self) -> bool {
        self.left == NO_CHILD
    }

    pub(super) fn points(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

pub(super) struct KdTree {
    pub(super) columns: usize,
    /// Point values in tree order, points × columns.
    pub(super) values: Vec<f64>,
    /// Point weights in tree order.
    pub(super) weights: Vec<f64>,
    /// Lexicographic rank of each point in tree order (its index in
    /// [`DistinctPoints`]).
    pub(super) rank: Vec<u32>,
    pub(super) nodes: Vec<Node>,
    /// Lower corner of each node's bounding box, nodes × columns.
    pub(super) low: Vec<f64>,
    /// Upper corner of each node's bounding box, nodes × columns.
    pub(super) high: Vec<f64>,
    /// Σ w x over each node's points, nodes × columns.
    pub(super) weighted_sums: Vec<f64>,
    /// Σ w over each node's points.
    pub(super) node_weights: Vec<f64>,
}

impl KdTree {
    pub(super) fn new(points: &DistinctPoints) -> Self {
        let columns = points.columns;
        let mut order: Vec<u32> = (0..points.len() as u32).collect();
        let mut tree = KdTree {
            columns,
            values: Vec::new(),
            weights: Vec::new(),
            rank: Vec::new(),
            nodes: Vec::with_capacity(2 * points.len() / LEAF_POINTS + 1),
            low: Vec::new(),
            high: Vec::new(),
            weighted_sums: Vec::new(),
            node_weights: Vec::new(),
        };
        tree.build(points, &mut order, 0);

        tree.values = Vec::with_capacity(points.values.len());
        for &point in &order {
            tree.values.extend_from_slice(points.point(point as usize));
        }
        tree.weights = order
            .iter()
            .map(|&point| points.weights[point as usize])
            .collect();
        tree.rank = order;
        tree.sum_nodes();
        tree
    }

    pub(super) fn len(&self) -> usize {
        self.weights.len()
    }

    pub(super) fn point(&self, point: usize) -> &[f64] {
        &self.values[point * self.columns..(point + 1) * self.columns]
    }

    pub(super) fn low(&self, node: usize) -> &[f64] {
        &self.low[node * self.columns..(node + 1) * self.columns]
    }

    pub(super) fn high(&self, node: usize) -> &[f64] {
        &self.high[node * self.columns..(node + 1) * self.columns]
    }

    /// Appends the node of `order` (points `offset..offset + order.len()`
    /// of the tree order) and its subtree, and returns its index.
    fn build(&mut self, points: &DistinctPoints, order: &mut [u32], offset: usize) -> u32 {
        let columns = self.columns;
        let index = self.nodes.len();
        self.nodes.push(Node {
            start: offset as u32,
            end: (offset + order.len()) as u32,
            subtree_end: 0,
            left: NO_CHILD,
            right: NO_CHILD,
        });
        // One pass per column, so that the running minimum and maximum stay
        // in registers. The values are finite, so plain comparisons give
        // what `f64::min` and `f64::max` give without their NaN handling,
        // which would lengthen the chain from point to point.
        for column in 0..columns {
            let (low, high) =
                order
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &point| {
                        let value = points.values[point as usize * columns + column];
                        (
                            if value < low { value } else { low },
                            if value > high { value } else { high },
                        )
                    });
            self.low.push(low);
            self.high.push(high);
        }

        let widest = (0..columns)
            .map(|column| {
                let at = index * columns + column;
                (column, self.high[at] - self.low[at])
            })
            .fold((0, 0.0), |best, candidate| {
                if candidate.1 > best.1 {
                    candidate
                } else {
                    best
                }
            });
        if order.len() > LEAF_POINTS && widest.1 > 0.0 {
            let column = widest.0;
            let middle = order.len() / 2;
            order.select_nth_unstable_by(middle, |&a, &b| {
                let value = |point: u32| points.values[point as usize * columns + column];
                value(a).total_cmp(&value(b)).then(a.cmp(&b))
            });
            let (left_points, right_points) = order.split_at_mut(middle);
            let left = self.build(points, left_points, offset);
            let right = self.build(points, right_points, offset + middle);
            self.nodes[index].left = left;
            self.nodes[index].right = right;
        }
        self.nodes[index].subtree_end = self.nodes.len() as u32;
        index as u32
    }

    /// Fills the node weights and weighted sums, children before parents
    /// (reverse preorder).
    fn sum_nodes(&mut self) {
        let columns = self.columns;
        self.weighted_sums = vec![0.0; self.nodes.len() * columns];
        self.node_weights = vec![0.0; self.nodes.len()];
        for index in (0..self.nodes.len()).rev() {
            let node = self.nodes[index];
            let sums = index * columns..(index + 1) * columns;
            if node.is_leaf() {
                for point in node.points() {
                    let weight = self.weights[point];
                    self.node_weights[index] += weight;
                    for column in 0..columns {
                        self.weighted_sums[sums.start + column] +=
                            weight * self.values[point * columns + column];
                    }
                }
            } else {
                let (left, right) = (node.left as usize, node.right as usize);
                self.node_weights[index] = self.node_weights[left] + self.node_weights[right];
                for column in 0..columns {
                    self.weighted_sums[sums.start + column] = self.weighted_sums
                        [left * columns + column]
                        + self.weighted_sums[right * columns + column];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::points::Rows;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn tree_nodes_bound_and_sum_their_points() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let x = Array2::from_shape_fn((500, 2), |_| rng.gen_range(0..40) as f64 / 8.0);
        let rows = Rows::new(x.view(), None).expect("valid input");
        let points = DistinctPoints::new(&rows);
        let tree = KdTree::new(&points);
        assert_eq!(tree.len(), points.len());

        let mut ranks = tree.rank.clone();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..points.len() as u32).collect::<Vec<_>>());
        for (index, node) in tree.nodes.iter().enumerate() {
            let mut weight = 0.0;
            for point in node.points() {
                weight += tree.weights[point];
                for column in 0..2 {
                    let value = tree.point(point)[column];
                    assert!(tree.low(index)[column] <= value, "node {index}");
                    assert!(value <= tree.high(index)[column], "node {index}");
                }
            }
            // Weights are row counts, so every sum is an exact integer.
            assert_eq!(tree.node_weights[index], weight, "node {index}");
            if node.is_leaf() {
                assert!(node.points().len() <= LEAF_POINTS, "node {index}");
            } else {
                let (left, right) = (
                    tree.nodes[node.left as usize],
                    tree.nodes[node.right as usize],
                );
                assert_eq!(left.start, node.start);
                assert_eq!(left.end, right.start);
                assert_eq!(right.end, node.end);
                assert_eq!(node.left as usize, index + 1);
                assert_eq!(right.subtree_end, node.subtree_end);
            }
        }
    }
}
