//! The k-d tree's node and point data as the assignment walk reads them.
//!
//! The walk of [`super::lloyd`] visits many nodes per step (a few thousand
//! on the STS lesions, by estimate), scattered along the Voronoi
//! boundaries. At each one it reads the bounding box and the node's point
//! range, and, when the node joins a cluster whole, its weight and
//! weighted sums. In the column-wise arrays
//! of [`KdTree`] those are five cache lines per node. [`Packed`] stores
//! them in one record per node, aligned to 64 bytes, which is one cache
//! line for two columns and two for three or four columns. Points keep
//! their values and weight side by side for the leaf scans.
//!
//! Both layouts hold the same values, so the walk computes the same
//! numbers in the same order with either.

use std::ops::Range;

use super::node_box::{NodeBox, centre_and_half};
use super::tree::{KdTree, LEAF_POINTS};

/// Read access to the tree data that the assignment walk needs.
pub(super) trait TreeLayout {
    /// Number of columns of the points.
    fn columns(&self) -> usize;
    /// Lower corner of the node's bounding box.
    fn low(&self, node: usize) -> &[f64];
    /// Upper corner of the node's bounding box.
    fn high(&self, node: usize) -> &[f64];
    /// Σ w x over the node's points.
    fn node_sums(&self, node: usize) -> &[f64];
    /// Σ w over the node's points.
    fn node_weight(&self, node: usize) -> f64;
    /// Returns the node's points as a range of the tree order.
    fn node_points(&self, node: usize) -> Range<usize>;
    /// Right child of an internal node; the left child is `node + 1`.
    fn right_child(&self, node: usize) -> usize;
    /// Returns one past the last node of the node's subtree, in preorder.
    fn subtree_end(&self, node: usize) -> usize;
    /// Values of a point, in tree order.
    fn point(&self, point: usize) -> &[f64];
    /// Weight of a point, in tree order.
    fn point_weight(&self, point: usize) -> f64;

    /// Returns the node's box as centre ± half-width, for the drop test.
    #[inline(always)]
    fn node_box(&self, node: usize) -> NodeBox<'_> {
        NodeBox::new(self.low(node), self.high(node))
    }

    /// Checks whether the node is a leaf. A node splits only when it has
    /// more than [`LEAF_POINTS`] points, and a leaf has at most that many
    /// (a node of equal points is one distinct point).
    fn is_leaf(&self, node: usize) -> bool {
        self.node_points(node).len() <= LEAF_POINTS
    }
}

impl TreeLayout for KdTree {
    fn columns(&self) -> usize {
        self.columns
    }

    fn low(&self, node: usize) -> &[f64] {
        KdTree::low(self, node)
    }

    fn high(&self, node: usize) -> &[f64] {
        KdTree::high(self, node)
    }

    fn node_sums(&self, node: usize) -> &[f64] {
        &self.weighted_sums[node * self.columns..(node + 1) * self.columns]
    }

    fn node_weight(&self, node: usize) -> f64 {
        self.node_weights[node]
    }

    fn node_points(&self, node: usize) -> Range<usize> {
        self.nodes[node].points()
    }

    fn right_child(&self, node: usize) -> usize {
        self.nodes[node].right as usize
    }

    fn subtree_end(&self, node: usize) -> usize {
        self.nodes[node].subtree_end as usize
    }

    fn point(&self, point: usize) -> &[f64] {
        KdTree::point(self, point)
    }

    fn point_weight(&self, point: usize) -> f64 {
        self.weights[point]
    }
}

/// One node of [`Packed`]. It stores the box as centre and half-widths,
/// computed once here with the arithmetic of [`NodeBox::new`], because
/// the walk needs those at every visit and the corners only when seeding.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct PackedNode<const COLUMNS: usize> {
    centre: [f64; COLUMNS],
    half: [f64; COLUMNS],
    sums: [f64; COLUMNS],
    weight: f64,
    start: u32,
    end: u32,
}

/// One point of [`Packed`].
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct PackedPoint<const COLUMNS: usize> {
    values: [f64; COLUMNS],
    weight: f64,
}

/// The tree data in one record per node and per point, for a column count
/// known at compile time.
pub(super) struct Packed<const COLUMNS: usize> {
    nodes: Vec<PackedNode<COLUMNS>>,
    /// Lower and upper corner of each node's box.
    corners: Vec<[[f64; COLUMNS]; 2]>,
    points: Vec<PackedPoint<COLUMNS>>,
    /// Right child (unused for leaves) and subtree end of each node. Kept
    /// apart because the walk reads them only when it descends or when a
    /// node's label changes.
    links: Vec<[u32; 2]>,
}

impl<const COLUMNS: usize> Packed<COLUMNS> {
    /// Copies the tree's data; the tree must have `COLUMNS` columns.
    fn new(tree: &KdTree) -> Self {
        debug_assert_eq!(tree.columns, COLUMNS);
        let nodes = (0..tree.nodes.len())
            .map(|node| {
                let current = tree.nodes[node];
                let (low, high) = (tree.low(node), tree.high(node));
                let centre_half: [(f64, f64); COLUMNS] =
                    std::array::from_fn(|column| centre_and_half(low[column], high[column]));
                PackedNode {
                    centre: std::array::from_fn(|column| centre_half[column].0),
                    half: std::array::from_fn(|column| centre_half[column].1),
                    sums: std::array::from_fn(|column| tree.weighted_sums[node * COLUMNS + column]),
                    weight: tree.node_weights[node],
                    start: current.start,
                    end: current.end,
                }
            })
            .collect();
        let corners = (0..tree.nodes.len())
            .map(|node| {
                [
                    std::array::from_fn(|column| tree.low(node)[column]),
                    std::array::from_fn(|column| tree.high(node)[column]),
                ]
            })
            .collect();
        let points = (0..tree.len())
            .map(|point| PackedPoint {
                values: std::array::from_fn(|column| tree.point(point)[column]),
                weight: tree.weights[point],
            })
            .collect();
        let links = tree
            .nodes
            .iter()
            .map(|node| [node.right, node.subtree_end])
            .collect();
        Packed {
            nodes,
            corners,
            points,
            links,
        }
    }
}

impl<const COLUMNS: usize> TreeLayout for Packed<COLUMNS> {
    fn columns(&self) -> usize {
        COLUMNS
    }

    fn low(&self, node: usize) -> &[f64] {
        &self.corners[node][0]
    }

    fn high(&self, node: usize) -> &[f64] {
        &self.corners[node][1]
    }

    fn node_sums(&self, node: usize) -> &[f64] {
        &self.nodes[node].sums
    }

    fn node_weight(&self, node: usize) -> f64 {
        self.nodes[node].weight
    }

    fn node_points(&self, node: usize) -> Range<usize> {
        let current = &self.nodes[node];
        current.start as usize..current.end as usize
    }

    fn right_child(&self, node: usize) -> usize {
        self.links[node][0] as usize
    }

    fn subtree_end(&self, node: usize) -> usize {
        self.links[node][1] as usize
    }

    fn point(&self, point: usize) -> &[f64] {
        &self.points[point].values
    }

    fn point_weight(&self, point: usize) -> f64 {
        self.points[point].weight
    }

    #[inline(always)]
    fn node_box(&self, node: usize) -> NodeBox<'_> {
        let current = &self.nodes[node];
        // The corners are only read for more than MAX_FIXED_COLUMNS
        // columns, so the walk does not load them here.
        let [low, high] = &self.corners[node];
        NodeBox::from_centre(low, high, &current.centre, &current.half)
    }
}

/// The packed copy of a tree for the common column counts 1 to 4, or
/// `Columns` to read the tree's own arrays.
pub(super) enum Layout {
    One(Packed<1>),
    Two(Packed<2>),
    Three(Packed<3>),
    Four(Packed<4>),
    /// More than four columns: the walk reads the [`KdTree`] arrays.
    Columns,
}

impl Layout {
    /// Builds the layout for the tree's column count.
    pub(super) fn new(tree: &KdTree) -> Self {
        match tree.columns {
            1 => Layout::One(Packed::new(tree)),
            2 => Layout::Two(Packed::new(tree)),
            3 => Layout::Three(Packed::new(tree)),
            4 => Layout::Four(Packed::new(tree)),
            _ => Layout::Columns,
        }
    }
}

/// Evaluates `$body` with `$data` bound to the data of `$layout`: its
/// packed copy, or `$tree` itself for [`Layout::Columns`]. The body is
/// compiled once per layout type, so the column count is a constant in
/// the packed cases.
macro_rules! with_layout {
    ($layout:expr, $tree:expr, $data:ident => $body:expr) => {
        match $layout {
            Layout::One($data) => $body,
            Layout::Two($data) => $body,
            Layout::Three($data) => $body,
            Layout::Four($data) => $body,
            Layout::Columns => {
                let $data = $tree;
                $body
            }
        }
    };
}
pub(super) use with_layout;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::points::{DistinctPoints, Rows};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Checks that every accessor of `packed` returns the tree's values.
    fn assert_same_data(tree: &KdTree, packed: &impl TreeLayout) {
        assert_eq!(packed.columns(), tree.columns);
        for node in 0..tree.nodes.len() {
            assert_eq!(TreeLayout::low(packed, node), tree.low(node), "node {node}");
            assert_eq!(
                TreeLayout::high(packed, node),
                tree.high(node),
                "node {node}"
            );
            assert_eq!(packed.node_sums(node), tree.node_sums(node), "node {node}");
            assert_eq!(packed.node_weight(node), tree.node_weights[node]);
            assert_eq!(packed.node_points(node), tree.nodes[node].points());
            // The packed centre and half-widths, computed when the layout
            // is built, equal those computed from the corners at each
            // visit, bit for bit, so the walk's drop tests do not change.
            assert_eq!(
                packed.node_box(node).parts(),
                NodeBox::new(tree.low(node), tree.high(node)).parts(),
                "node {node}"
            );
            assert_eq!(
                packed.is_leaf(node),
                tree.nodes[node].is_leaf(),
                "node {node}"
            );
            assert_eq!(
                packed.subtree_end(node),
                tree.nodes[node].subtree_end as usize
            );
            if !tree.nodes[node].is_leaf() {
                assert_eq!(packed.right_child(node), tree.nodes[node].right as usize);
            }
        }
        for point in 0..tree.len() {
            assert_eq!(TreeLayout::point(packed, point), tree.point(point));
            assert_eq!(packed.point_weight(point), tree.weights[point]);
        }
    }

    #[test]
    fn packed_layout_matches_tree_arrays() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for columns in 1..=4 {
            // Coarse values give duplicates and leaves of equal points.
            let x = Array2::from_shape_fn((700, columns), |_| rng.gen_range(0..30) as f64 / 4.0);
            let weights = ndarray::Array1::from_shape_fn(700, |row| 1.0 + (row % 3) as f64);
            let rows = Rows::new(x.view(), Some(weights.view())).expect("valid input");
            let tree = KdTree::new(&DistinctPoints::new(&rows));
            match Layout::new(&tree) {
                Layout::One(packed) => assert_same_data(&tree, &packed),
                Layout::Two(packed) => assert_same_data(&tree, &packed),
                Layout::Three(packed) => assert_same_data(&tree, &packed),
                Layout::Four(packed) => assert_same_data(&tree, &packed),
                Layout::Columns => panic!("{columns} columns should be packed"),
            }
        }
    }

    #[test]
    fn packed_node_fills_cache_lines() {
        assert_eq!(std::mem::size_of::<PackedNode<2>>(), 64);
        assert_eq!(std::mem::size_of::<PackedNode<4>>(), 128);
    }
}
