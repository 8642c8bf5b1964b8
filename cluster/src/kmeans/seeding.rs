//! Weighted k-means++ seeding on the k-d tree.
//!
//! Standard k-means++ (D. Arthur and S. Vassilvitskii, "k-means++: the
//! advantages of careful seeding", SODA 2007) with one candidate per draw.
//! The first centroid is point i with probability w_i / Σw. Each further
//! one is point i with probability w_i·D(i)² / Σ_j w_j·D(j)², where D(i)
//! is the distance from point i to its nearest centroid so far. scikit-learn's
//! default is the greedy variant, which draws 2 + ⌊ln k⌋ candidates per
//! centroid and keeps the one that lowers the potential most. This one
//! draws once.
//!
//! A draw takes u = U[0, 1) · total and walks down the tree, going left when
//! u is below the left child's total and otherwise subtracting that total
//! and going right, then scans the leaf for the first point whose running
//! sum exceeds u. That is the first point in tree order whose running sum
//! of scores exceeds u, up to the rounding of the node totals. Each node
//! keeps the total score and the largest D² of its points, so adding a
//! centroid skips every node that the centroid cannot bring closer.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::layout::TreeLayout;
use super::points::squared_distance;
use super::tree::KdTree;

/// Per-point and per-node state of the seeding, reused across runs.
pub(super) struct Seeding {
    /// D(i)² of each point, in tree order.
    nearest: Vec<f64>,
    /// Σ w·D² over each node's points.
    node_scores: Vec<f64>,
    /// max D² over each node's points.
    node_max: Vec<f64>,
}

impl Seeding {
    pub(super) fn new(tree: &KdTree) -> Self {
        Seeding {
            nearest: vec![0.0; tree.len()],
            node_scores: vec![0.0; tree.nodes.len()],
            node_max: vec![0.0; tree.nodes.len()],
        }
    }

    /// Chooses k initial centroids (k × columns, row-major). Requires
    /// 1 ≤ k ≤ the number of points.
    ///
    /// `layout` is the tree's data as [`super::lloyd`] reads it; any layout
    /// of the same tree gives the same centroids.
    pub(super) fn choose(
        &mut self,
        tree: &KdTree,
        layout: &impl TreeLayout,
        k: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Vec<f64> {
        let columns = tree.columns;
        let mut centroids = Vec::with_capacity(k * columns);

        let first = sample(
            layout,
            &tree.node_weights,
            |point| layout.point_weight(point),
            rng,
        );
        centroids.extend_from_slice(layout.point(first));
        for point in 0..tree.len() {
            self.nearest[point] = squared_distance(layout.point(point), layout.point(first));
        }
        for node in (0..tree.nodes.len()).rev() {
            self.summarise(layout, node);
        }

        for _ in 1..k {
            let chosen = if self.node_scores[0] > 0.0 {
                let nearest = &self.nearest;
                sample(
                    layout,
                    &self.node_scores,
                    |point| layout.point_weight(point) * nearest[point],
                    rng,
                )
            } else {
                // Every D² rounded to 0 (points closer than about 1e-154
                // to a centroid) although a point differs from every
                // centroid: take the first such point.
                first_unchosen(tree, &centroids)
            };
            let centroid = layout.point(chosen).to_vec();
            self.add_centroid(layout, 0, &centroid);
            centroids.extend_from_slice(&centroid);
        }
        centroids
    }

    /// Lowers D² to the distance to `centroid` wherever that is smaller,
    /// below `node`. Returns whether any D² changed.
    fn add_centroid(&mut self, layout: &impl TreeLayout, node: usize, centroid: &[f64]) -> bool {
        if self.node_max[node] == 0.0 {
            return false;
        }
        // The computed distance from any point of the box to the centroid
        // is at least (1 − 4 ε (d + 2)) times the computed distance to the
        // box. A node whose box distance clears max D² by that factor
        // therefore has no point to update.
        let box_distance = distance_to_box(layout.low(node), layout.high(node), centroid);
        let relative_error = 4.0 * f64::EPSILON * (layout.columns() + 2) as f64;
        if box_distance * (1.0 - relative_error) > self.node_max[node] {
            return false;
        }
        if layout.is_leaf(node) {
            // Lower D² and recompute the leaf's summary in one pass, with
            // the arithmetic of `summarise`.
            let mut changed = false;
            let mut score = 0.0;
            let mut max: f64 = 0.0;
            for point in layout.node_points(node) {
                let distance = squared_distance(layout.point(point), centroid);
                if distance < self.nearest[point] {
                    self.nearest[point] = distance;
                    changed = true;
                }
                score += layout.point_weight(point) * self.nearest[point];
                max = larger(max, self.nearest[point]);
            }
            if changed {
                self.node_scores[node] = score;
                self.node_max[node] = max;
            }
            return changed;
        }
        let left = self.add_centroid(layout, node + 1, centroid);
        let right = self.add_centroid(layout, layout.right_child(node), centroid);
        let changed = left || right;
        if changed {
            self.summarise(layout, node);
        }
        changed
    }

    /// Recomputes a node's total score and max D² from its points (leaf)
    /// or its children.
    fn summarise(&mut self, layout: &impl TreeLayout, node: usize) {
        if layout.is_leaf(node) {
            let mut score = 0.0;
            let mut max: f64 = 0.0;
            for point in layout.node_points(node) {
                score += layout.point_weight(point) * self.nearest[point];
                max = larger(max, self.nearest[point]);
            }
            self.node_scores[node] = score;
            self.node_max[node] = max;
        } else {
            let (left, right) = (node + 1, layout.right_child(node));
            self.node_scores[node] = self.node_scores[left] + self.node_scores[right];
            self.node_max[node] = self.node_max[left].max(self.node_max[right]);
        }
    }
}

/// Draws a point with probability proportional to `score`, given the
/// node totals of those scores. Requires a positive root total.
/// Returns the larger of two squared distances. D² is never NaN, so a
/// plain comparison gives what `f64::max` gives, in one instruction (x86
/// `maxsd`) instead of the NaN handling of `f64::max`. The leaf loops carry
/// the running maximum from point to point, so its latency sets their
/// speed.
#[inline(always)]
fn larger(current: f64, value: f64) -> f64 {
    if value > current { value } else { current }
}

fn sample(
    layout: &impl TreeLayout,
    node_scores: &[f64],
    score: impl Fn(usize) -> f64,
    rng: &mut Xoshiro256PlusPlus,
) -> usize {
    let mut target = rng.r#gen::<f64>() * node_scores[0];
    let mut node = 0;
    loop {
        if layout.is_leaf(node) {
            break;
        }
        let (left, right) = (node + 1, layout.right_child(node));
        // Only children with a positive total are entered, so the leaf
        // reached has a point with a positive score.
        if node_scores[left] > 0.0 && (target < node_scores[left] || node_scores[right] <= 0.0) {
            node = left;
        } else {
            target -= node_scores[left];
            node = right;
        }
    }
    let points = layout.node_points(node);
    let mut running = 0.0;
    let mut last_positive = points.start;
    for point in points {
        let value = score(point);
        if value > 0.0 {
            running += value;
            last_positive = point;
            if running > target {
                return point;
            }
        }
    }
    // Rounding left the target at or above the leaf's total.
    last_positive
}

/// Returns the first point in tree order that equals no centroid.
fn first_unchosen(tree: &KdTree, centroids: &[f64]) -> usize {
    let columns = tree.columns;
    (0..tree.len())
        .find(|&point| {
            centroids
                .chunks_exact(columns)
                .all(|centroid| centroid != tree.point(point))
        })
        // The caller asks for at most as many centroids as there are
        // distinct points, so some point is unchosen.
        .unwrap_or(0)
}

/// Returns the squared distance from `point` to the box [low, high].
fn distance_to_box(low: &[f64], high: &[f64], point: &[f64]) -> f64 {
    let mut sum = 0.0;
    for ((&low, &high), &value) in low.iter().zip(high).zip(point) {
        let gap = if value < low {
            low - value
        } else if value > high {
            value - high
        } else {
            0.0
        };
        sum += gap * gap;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::points::{DistinctPoints, Rows};
    use crate::kmeans::run_rng;
    use ndarray::{Array2, array};

    fn tree_of(x: &Array2<f64>) -> KdTree {
        let rows = Rows::new(x.view(), None).expect("valid input");
        KdTree::new(&DistinctPoints::new(&rows))
    }

    #[test]
    fn seeding_picks_distinct_points() {
        let x = array![[0.0], [0.0], [0.0], [1.0], [1.0], [7.0]];
        let tree = tree_of(&x);
        let mut seeding = Seeding::new(&tree);
        for seed in 0..20 {
            let mut rng = run_rng(seed, 0);
            let mut centroids = seeding.choose(&tree, &tree, 3, &mut rng);
            centroids.sort_by(f64::total_cmp);
            assert_eq!(centroids, vec![0.0, 1.0, 7.0], "seed {seed}");
        }
    }

    #[test]
    fn seeding_nearest_matches_full_scan() {
        // After seeding, each D² must equal the minimum over the centroids
        // of the same squared distance, as a scan of every pair computes.
        let mut rng = run_rng(11, 0);
        let x = Array2::from_shape_fn((3000, 2), |_| rng.r#gen::<f64>());
        let tree = tree_of(&x);
        let mut seeding = Seeding::new(&tree);
        let centroids = seeding.choose(&tree, &tree, 40, &mut rng);
        for point in 0..tree.len() {
            let expected = centroids
                .chunks_exact(2)
                .map(|centroid| squared_distance(tree.point(point), centroid))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(seeding.nearest[point], expected, "point {point}");
        }
    }

    #[test]
    fn seeding_first_draw_follows_weights() {
        // Two points, weights 1 and 3: the first centroid is the heavy one
        // with probability 3/4. Over 4000 draws the count has standard
        // deviation √(4000 · 3/16) ≈ 27, so ±150 is more than 5 σ.
        let x = array![[0.0], [1.0]];
        let weights = array![1.0, 3.0];
        let rows = Rows::new(x.view(), Some(weights.view())).expect("valid input");
        let tree = KdTree::new(&DistinctPoints::new(&rows));
        let mut seeding = Seeding::new(&tree);
        let heavy = (0..4000)
            .filter(|&seed| {
                let mut rng = run_rng(seed, 0);
                seeding.choose(&tree, &tree, 1, &mut rng) == vec![1.0]
            })
            .count();
        assert!((heavy as i64 - 3000).abs() < 150, "heavy first {heavy}");
    }
}
