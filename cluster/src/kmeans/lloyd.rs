//! Lloyd iterations on the k-d tree by the filtering algorithm of
//! T. Kanungo, D. M. Mount, N. S. Netanyahu, C. D. Piatko, R. Silverman and
//! A. Y. Wu ("An efficient k-means clustering algorithm: analysis and
//! implementation", IEEE TPAMI 24, 2002).
//!
//! The assignment walks the tree with a list of candidate centroids. At
//! each node it keeps z*, the candidate nearest the box centre. It drops
//! every candidate z that is farther than z* from every point of the box.
//! With the box written as centre m ± half-width h, ‖x − z‖² − ‖x − z*‖²
//! is linear in x, and its least value over the box is
//! ‖m − z‖² − ‖m − z*‖² − 2 Σ_j h_j |z_j − z*_j|. The first two terms are
//! the distances that chose z*, so each test costs one pass over the
//! columns. z is dropped when that least value exceeds the rounding bound
//! below. A node left with one candidate
//! joins that cluster whole, through its stored weight and weighted sums.
//! A leaf left with several scans its points against the remaining
//! candidates in index order. A dropped candidate is strictly farther from
//! every point of the box than one that stays, in the computed squared
//! distances, so every label is the one a full scan over all centroids
//! gives, ties going to the lower index.
//!
//! Rounding bound: a computed squared distance in d columns is within
//! (d + 2) ε relative of the exact one (ε = 2⁻⁵³; one rounding per difference,
//! square and addition). Let S = ‖m − z‖² + ‖m − z*‖² + 2‖h‖². Every point
//! x of the box has ‖x − z‖² + ‖x − z*‖² ≤ 2S. The computed distances at
//! x are therefore within 2 (d + 2) ε S of the exact ones. The terms of
//! the test are computed within about 5 (d + 2) ε S. The test requires the least
//! value to exceed 16 (d + 2) ε S, which covers both with room to spare.
//!
//! Each node also stores the label that all its points share, if they do.
//! A node that joins the cluster it was already in then costs nothing, and
//! the labels and the count of changed labels are updated only where they
//! change.
//!
//! Only the order of the sums differs from plain Lloyd iterations: a
//! cluster's weighted sum adds node sums and point terms in tree order. The
//! centroids can therefore differ from those of a row-by-row sum in the
//! last bits, which can change a label only for a point whose two nearest
//! centroids are that close to equidistant.

use super::layout::{Layout, TreeLayout, with_layout};
use super::points::squared_distance;
use super::tree::KdTree;

/// Label of no cluster.
const NO_LABEL: u32 = u32::MAX;

/// One k-means run.
pub(super) struct Run {
    /// Centroids in row-major order (k × columns).
    pub(super) centroids: Vec<f64>,
    /// Cluster of each point, in tree order.
    pub(super) labels: Vec<u32>,
    pub(super) inertia: f64,
    pub(super) iterations: usize,
    pub(super) converged: bool,
}

/// Builds the layout of `tree` and runs [`lloyd_on`].
#[cfg(test)]
pub(super) fn lloyd(
    tree: &KdTree,
    centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
) -> Run {
    let layout = Layout::new(tree);
    lloyd_on(tree, &layout, centroids, k, max_iter, shift_tolerance)
}

/// Runs Lloyd iterations from `centroids` (k × columns): assignment,
/// relocation into empty clusters, then the centroid update, until no
/// label changes, the shift Σ_c ‖c_new − c_old‖² is at most
/// `shift_tolerance`, or `max_iter` assignment steps have run. The walk
/// reads `layout`, which must have been built from `tree`, so that the
/// runs of one fit share one copy.
pub(super) fn lloyd_on(
    tree: &KdTree,
    layout: &Layout,
    centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
) -> Run {
    // A column count known at compile time lets the compiler unroll the
    // distance loops of the common 1- to 4-column cases.
    with_layout!(layout, tree, data => {
        lloyd_with(data, tree, centroids, k, max_iter, shift_tolerance)
    })
}

/// Most columns of the packed layouts, whose box centre fits in a fixed
/// array.
const MAX_FIXED_COLUMNS: usize = 4;

fn lloyd_with<L: TreeLayout>(
    layout: &L,
    tree: &KdTree,
    mut centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
) -> Run {
    let columns = layout.columns();
    let mut state = Assignment {
        layout,
        tree,
        // No point has a label before the first assignment step, so that
        // step never counts as unchanged.
        labels: vec![NO_LABEL; tree.len()],
        node_labels: vec![NO_LABEL; tree.nodes.len()],
        changed_in: vec![0; tree.len()],
        label_before: vec![NO_LABEL; tree.len()],
        step: 0,
        changes: 0,
        candidates: Vec::with_capacity(k * 16),
        sums: vec![0.0; k * columns],
        cluster_weights: vec![0.0; k],
        cluster_points: vec![0; k],
        relative_error: 16.0 * f64::EPSILON * (columns + 2) as f64,
        centre_distances: Vec::with_capacity(k),
    };
    let mut iterations = 0;
    let mut converged = false;

    for step in 1..=max_iter {
        iterations = step;
        state.assign(&centroids, k, step as u32);
        if state.cluster_points.contains(&0) {
            state.relocate_empty_clusters(&centroids);
        }
        if state.changes == 0 {
            // The centroids are already the means of these labels.
            converged = true;
            break;
        }

        let mut updated = state.sums.clone();
        for (cluster, &weight) in state.cluster_weights.iter().enumerate() {
            let range = cluster * columns..(cluster + 1) * columns;
            if weight > 0.0 {
                for value in &mut updated[range] {
                    *value /= weight;
                }
            } else {
                // Only if a relocation found no point (impossible while
                // k ≤ distinct points): the empty cluster stays put.
                updated[range.clone()].copy_from_slice(&centroids[range]);
            }
        }
        let shift = squared_distance(&updated, &centroids);
        centroids = updated;
        if shift <= shift_tolerance {
            converged = true;
            break;
        }
    }

    let labels = state.labels;
    let inertia = (0..tree.len())
        .map(|point| {
            let label = labels[point] as usize;
            let centroid = &centroids[label * columns..(label + 1) * columns];
            tree.weights[point] * squared_distance(tree.point(point), centroid)
        })
        .sum();
    Run {
        centroids,
        labels,
        inertia,
        iterations,
        converged,
    }
}

/// State of the assignment steps of one run.
struct Assignment<'a, L: TreeLayout> {
    /// The tree data read by the walk.
    layout: &'a L,
    tree: &'a KdTree,
    /// Cluster of each point, in tree order.
    labels: Vec<u32>,
    /// The label shared by all points of each node, or [`NO_LABEL`].
    /// Invariant: a node with a label has that label on every node and
    /// point of its subtree.
    node_labels: Vec<u32>,
    /// Step in which each point's label last changed, and its label before
    /// that change, so that a relocation can tell whether it restores the
    /// label the point had before the step.
    changed_in: Vec<u32>,
    label_before: Vec<u32>,
    step: u32,
    /// Points whose label differs from the one before the current step.
    changes: usize,
    /// Stack of candidate lists, each a range pushed by one node.
    candidates: Vec<u32>,
    /// Σ w x per cluster (k × columns), Σ w and number of points.
    sums: Vec<f64>,
    cluster_weights: Vec<f64>,
    cluster_points: Vec<usize>,
    /// Relative rounding margin of the drop test (module documentation).
    relative_error: f64,
    /// Squared distance from the box centre to each candidate of the node
    /// being filtered, in candidate-list order.
    centre_distances: Vec<f64>,
}

impl<L: TreeLayout> Assignment<'_, L> {
    fn assign(&mut self, centroids: &[f64], k: usize, step: u32) {
        self.step = step;
        self.changes = 0;
        self.sums.fill(0.0);
        self.cluster_weights.fill(0.0);
        self.cluster_points.fill(0);
        self.candidates.clear();
        self.candidates.extend(0..k as u32);
        self.visit(0, 0, centroids);
    }

    /// Assigns the points of `node` given the candidates that start at
    /// `first` in the candidate stack and run to its end.
    fn visit(&mut self, node: usize, first: usize, centroids: &[f64]) {
        let stack_end = self.candidates.len();
        if stack_end - first == 2 {
            let pair = (self.candidates[first], self.candidates[first + 1]);
            self.visit_pair(node, pair, centroids);
            return;
        }
        let layout = self.layout;
        let columns = layout.columns();
        let (low, high) = (layout.low(node), layout.high(node));

        let mut list_start = first;
        if stack_end - first > 1 {
            let node_box = NodeBox::new(low, high);
            // z*: the candidate nearest the box centre.
            self.centre_distances.clear();
            let mut best = (self.candidates[first], f64::INFINITY);
            for &candidate in &self.candidates[first..] {
                let distance = node_box.centre_distance(centroid_of(centroids, candidate, columns));
                self.centre_distances.push(distance);
                if distance < best.1 {
                    best = (candidate, distance);
                }
            }
            let nearest = centroid_of(centroids, best.0, columns);
            list_start = stack_end;
            for index in first..stack_end {
                let candidate = self.candidates[index];
                let dominated = candidate != best.0
                    && node_box.dominates(
                        nearest,
                        best.1,
                        centroid_of(centroids, candidate, columns),
                        self.centre_distances[index - first],
                        self.relative_error,
                    );
                if !dominated {
                    self.candidates.push(candidate);
                }
            }
        }

        if self.candidates.len() - list_start == 1 {
            let cluster = self.candidates[list_start];
            self.assign_node(node, cluster);
        } else if layout.is_leaf(node) {
            self.assign_points(node, list_start, centroids);
        } else {
            let (left, right) = (node + 1, layout.right_child(node));
            self.visit(left, list_start, centroids);
            self.visit(right, list_start, centroids);
            self.join_children(node, left, right);
        }
        self.candidates.truncate(stack_end);
    }

    /// Assigns the points of `node` given exactly two candidates (a, b),
    /// a < b. It computes what [`Assignment::visit`] computes for that
    /// list, with the same arithmetic, but without the candidate stack.
    /// Most nodes of the walk lie on a boundary between two clusters.
    fn visit_pair(&mut self, node: usize, pair: (u32, u32), centroids: &[f64]) {
        let layout = self.layout;
        let columns = layout.columns();
        let (low, high) = (layout.low(node), layout.high(node));
        let node_box = NodeBox::new(low, high);
        let (first, second) = (
            centroid_of(centroids, pair.0, columns),
            centroid_of(centroids, pair.1, columns),
        );
        let (first_distance, second_distance) = (
            node_box.centre_distance(first),
            node_box.centre_distance(second),
        );
        // z* is the first candidate unless the second is strictly nearer,
        // as in the scan of `visit`.
        let (kept, dropped) = if second_distance < first_distance {
            ((pair.1, second, second_distance), (first, first_distance))
        } else {
            ((pair.0, first, first_distance), (second, second_distance))
        };
        if node_box.dominates(kept.1, kept.2, dropped.0, dropped.1, self.relative_error) {
            self.assign_node(node, kept.0);
        } else if layout.is_leaf(node) {
            let mut shared = None;
            for point in layout.node_points(node) {
                let values = layout.point(point);
                let cluster = if squared_distance(values, second) < squared_distance(values, first)
                {
                    pair.1
                } else {
                    pair.0
                };
                self.add_point(point, cluster);
                shared = Some(shared_label(shared, cluster));
            }
            self.node_labels[node] = shared.unwrap_or(NO_LABEL);
        } else {
            let (left, right) = (node + 1, layout.right_child(node));
            self.visit_pair(left, pair, centroids);
            self.visit_pair(right, pair, centroids);
            self.join_children(node, left, right);
        }
    }

    /// Sets the shared label of an internal node from its children's.
    fn join_children(&mut self, node: usize, left: usize, right: usize) {
        let shared = self.node_labels[left];
        self.node_labels[node] = if shared == self.node_labels[right] {
            shared
        } else {
            NO_LABEL
        };
    }

    /// Puts every point of `node` into `cluster`.
    #[inline(always)]
    fn assign_node(&mut self, node: usize, cluster: u32) {
        let layout = self.layout;
        let columns = layout.columns();
        let points = layout.node_points(node);
        let label = cluster as usize;
        self.cluster_weights[label] += layout.node_weight(node);
        self.cluster_points[label] += points.len();
        for (sum, &value) in self.sums[label * columns..(label + 1) * columns]
            .iter_mut()
            .zip(layout.node_sums(node))
        {
            *sum += value;
        }
        if self.node_labels[node] == cluster {
            return;
        }
        for point in points {
            self.set_label(point, cluster);
        }
        let subtree_end = layout.subtree_end(node);
        self.node_labels[node..subtree_end].fill(cluster);
    }

    /// Assigns each point of leaf `node` to its nearest candidate among
    /// those from `first` to the end of the candidate stack.
    fn assign_points(&mut self, node: usize, first: usize, centroids: &[f64]) {
        let layout = self.layout;
        let columns = layout.columns();
        let mut shared = None;
        for point in layout.node_points(node) {
            let values = layout.point(point);
            let mut best = (NO_LABEL, f64::INFINITY);
            for &candidate in &self.candidates[first..] {
                let distance = squared_distance(values, centroid_of(centroids, candidate, columns));
                if distance < best.1 {
                    best = (candidate, distance);
                }
            }
            let cluster = best.0;
            self.add_point(point, cluster);
            shared = Some(shared_label(shared, cluster));
        }
        self.node_labels[node] = shared.unwrap_or(NO_LABEL);
    }

    /// Puts one point into `cluster`: its weight and weighted values join
    /// the cluster sums, and its label is set.
    #[inline(always)]
    fn add_point(&mut self, point: usize, cluster: u32) {
        let layout = self.layout;
        let columns = layout.columns();
        let values = layout.point(point);
        let label = cluster as usize;
        let weight = layout.point_weight(point);
        self.cluster_weights[label] += weight;
        self.cluster_points[label] += 1;
        for (sum, &value) in self.sums[label * columns..(label + 1) * columns]
            .iter_mut()
            .zip(values)
        {
            *sum += weight * value;
        }
        self.set_label(point, cluster);
    }

    fn set_label(&mut self, point: usize, cluster: u32) {
        let old = self.labels[point];
        if old != cluster {
            self.changed_in[point] = self.step;
            self.label_before[point] = old;
            self.labels[point] = cluster;
            self.changes += 1;
        }
    }

    /// Moves points into empty clusters. Each empty cluster, in index
    /// order, takes the point farthest from its centroid among the points
    /// whose cluster keeps at least one other point, ties going to the
    /// point of lowest lexicographic rank. A point moves with all the rows
    /// equal to it. Such a point exists while k ≤ distinct points.
    fn relocate_empty_clusters(&mut self, centroids: &[f64]) {
        let tree = self.tree;
        let columns = tree.columns;
        let mut distances: Vec<f64> = (0..tree.len())
            .map(|point| {
                let centroid = centroid_of(centroids, self.labels[point], columns);
                squared_distance(tree.point(point), centroid)
            })
            .collect();
        let empty: Vec<usize> = (0..self.cluster_points.len())
            .filter(|&cluster| self.cluster_points[cluster] == 0)
            .collect();
        for cluster in empty {
            let mut farthest: Option<usize> = None;
            for point in 0..tree.len() {
                if self.cluster_points[self.labels[point] as usize] < 2 {
                    continue;
                }
                let better = farthest.is_none_or(|best| {
                    distances[point] > distances[best]
                        || (distances[point] == distances[best]
                            && tree.rank[point] < tree.rank[best])
                });
                if better {
                    farthest = Some(point);
                }
            }
            let Some(point) = farthest else {
                // Unreachable while k ≤ distinct points; the cluster then
                // keeps its centroid (see `lloyd`).
                continue;
            };
            let current = self.labels[point];
            let before_step = if self.changed_in[point] == self.step {
                self.label_before[point]
            } else {
                current
            };
            if current != before_step {
                self.changes -= 1;
            }
            if cluster as u32 != before_step {
                self.changes += 1;
            }
            if self.changed_in[point] != self.step {
                self.changed_in[point] = self.step;
                self.label_before[point] = current;
            }
            self.cluster_points[current as usize] -= 1;
            self.cluster_points[cluster] = 1;
            self.labels[point] = cluster as u32;
            distances[point] = 0.0;
        }
        self.recount();
    }

    /// Recomputes the cluster sums and the node labels from the point
    /// labels.
    fn recount(&mut self) {
        let tree = self.tree;
        let columns = tree.columns;
        self.sums.fill(0.0);
        self.cluster_weights.fill(0.0);
        for point in 0..tree.len() {
            let label = self.labels[point] as usize;
            let weight = tree.weights[point];
            self.cluster_weights[label] += weight;
            for (sum, &value) in self.sums[label * columns..(label + 1) * columns]
                .iter_mut()
                .zip(tree.point(point))
            {
                *sum += weight * value;
            }
        }
        for node in (0..tree.nodes.len()).rev() {
            let current = tree.nodes[node];
            self.node_labels[node] = if current.is_leaf() {
                let first = self.labels[current.start as usize];
                if current.points().all(|point| self.labels[point] == first) {
                    first
                } else {
                    NO_LABEL
                }
            } else {
                let shared = self.node_labels[current.left as usize];
                if shared == self.node_labels[current.right as usize] {
                    shared
                } else {
                    NO_LABEL
                }
            };
        }
    }
}

/// Absolute part of the drop-test margin, for squared distances in the
/// subnormal range, where the relative rounding bound does not hold.
const SUBNORMAL_MARGIN: f64 = 64.0 * f64::MIN_POSITIVE;

/// A node's bounding box as centre m ± half-width h, for the drop test of
/// the module documentation.
struct NodeBox<'a> {
    low: &'a [f64],
    high: &'a [f64],
    /// m and h, stored when there are at most [`MAX_FIXED_COLUMNS`]
    /// columns and computed again from `low` and `high` otherwise.
    centre: [f64; MAX_FIXED_COLUMNS],
    half: [f64; MAX_FIXED_COLUMNS],
    /// ‖h‖².
    half_norm: f64,
}

impl<'a> NodeBox<'a> {
    #[inline(always)]
    fn new(low: &'a [f64], high: &'a [f64]) -> Self {
        let mut node_box = NodeBox {
            low,
            high,
            centre: [0.0; MAX_FIXED_COLUMNS],
            half: [0.0; MAX_FIXED_COLUMNS],
            half_norm: 0.0,
        };
        for column in 0..low.len() {
            let width = half_width(low[column], high[column]);
            node_box.half_norm += width * width;
            if low.len() <= MAX_FIXED_COLUMNS {
                node_box.centre[column] = 0.5 * (low[column] + high[column]);
                node_box.half[column] = width;
            }
        }
        node_box
    }

    /// Returns ‖m − centroid‖².
    #[inline(always)]
    fn centre_distance(&self, centroid: &[f64]) -> f64 {
        let (low, high) = (self.low, self.high);
        let columns = low.len();
        if columns <= MAX_FIXED_COLUMNS {
            squared_distance(&self.centre[..columns], centroid)
        } else {
            (0..columns)
                .map(|column| {
                    let difference = 0.5 * (low[column] + high[column]) - centroid[column];
                    difference * difference
                })
                .sum()
        }
    }

    /// Checks whether every point of the box is nearer to `kept` than to
    /// `other` in computed squared distances, given both centroids'
    /// [`NodeBox::centre_distance`], by the test and rounding bound of the
    /// module documentation.
    #[inline(always)]
    fn dominates(
        &self,
        kept: &[f64],
        kept_distance: f64,
        other: &[f64],
        other_distance: f64,
        relative_error: f64,
    ) -> bool {
        let (low, high) = (self.low, self.high);
        let columns = low.len();
        let gap = other_distance - kept_distance;
        // Σ h |z − z*|.
        let spread: f64 = if columns <= MAX_FIXED_COLUMNS {
            (0..columns)
                .map(|column| self.half[column] * (other[column] - kept[column]).abs())
                .sum()
        } else {
            (0..columns)
                .map(|column| {
                    half_width(low[column], high[column]) * (other[column] - kept[column]).abs()
                })
                .sum()
        };
        let slack = relative_error * (other_distance + kept_distance + 2.0 * self.half_norm)
            + SUBNORMAL_MARGIN;
        gap - 2.0 * spread > slack
    }
}

/// Returns the half-width of [low, high] around its computed centre
/// 0.5 (low + high), so that the interval lies within centre ± half-width.
fn half_width(low: f64, high: f64) -> f64 {
    let centre = 0.5 * (low + high);
    (high - centre).max(centre - low)
}

/// Returns the label shared by a leaf's points so far, `shared` (None before
/// the first point), once one more point joins `cluster`: that cluster if
/// all agree, [`NO_LABEL`] otherwise.
fn shared_label(shared: Option<u32>, cluster: u32) -> u32 {
    match shared {
        Some(same) if same != cluster => NO_LABEL,
        _ => cluster,
    }
}

fn centroid_of(centroids: &[f64], cluster: u32, columns: usize) -> &[f64] {
    let start = cluster as usize * columns;
    &centroids[start..start + columns]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::points::{DistinctPoints, Rows, mean_column_variance, order_key};
    use crate::kmeans::run_rng;
    use crate::kmeans::seeding::Seeding;
    use ndarray::{Array1, Array2, array};
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::collections::BTreeSet;

    /// Result of [`plain_lloyd`], with one label per row.
    struct Reference {
        labels: Vec<usize>,
        centroids: Vec<f64>,
        inertia: f64,
        iterations: usize,
    }

    fn nearest(row: &[f64], centroids: &[f64], columns: usize) -> usize {
        let mut best = (0, f64::INFINITY);
        for (cluster, centroid) in centroids.chunks_exact(columns).enumerate() {
            let distance = squared_distance(row, centroid);
            if distance < best.1 {
                best = (cluster, distance);
            }
        }
        best.0
    }

    /// Plain Lloyd iterations on the rows as given, with every distance
    /// computed and the sums taken row by row: the reference for [`lloyd`].
    /// Relocation follows the module rule written out on rows: the
    /// farthest row whose cluster also contains a row with other values,
    /// ties to the lexicographically smallest values, moves with every row
    /// equal to it.
    fn plain_lloyd(
        rows: &Rows,
        mut centroids: Vec<f64>,
        k: usize,
        max_iter: usize,
        shift_tolerance: f64,
    ) -> Reference {
        let columns = rows.columns;
        let key =
            |row: usize| -> Vec<u64> { rows.row(row).iter().map(|&v| order_key(v)).collect() };
        let mut labels = vec![usize::MAX; rows.rows];
        let mut iterations = 0;
        for step in 1..=max_iter {
            iterations = step;
            let mut next: Vec<usize> = (0..rows.rows)
                .map(|row| nearest(rows.row(row), &centroids, columns))
                .collect();
            let mut distances: Vec<f64> = (0..rows.rows)
                .map(|row| {
                    let label = next[row];
                    squared_distance(
                        rows.row(row),
                        &centroids[label * columns..(label + 1) * columns],
                    )
                })
                .collect();
            for cluster in 0..k {
                if next.contains(&cluster) {
                    continue;
                }
                let mut distinct_in: Vec<BTreeSet<Vec<u64>>> = vec![BTreeSet::new(); k];
                for row in 0..rows.rows {
                    distinct_in[next[row]].insert(key(row));
                }
                let farthest = (0..rows.rows)
                    .filter(|&row| distinct_in[next[row]].len() >= 2)
                    .reduce(|best, row| {
                        let farther = distances[row] > distances[best]
                            || (distances[row] == distances[best] && key(row) < key(best));
                        if farther { row } else { best }
                    })
                    .expect("k ≤ distinct rows");
                let moved = key(farthest);
                for row in 0..rows.rows {
                    if key(row) == moved {
                        next[row] = cluster;
                        distances[row] = 0.0;
                    }
                }
            }
            if next == labels {
                break;
            }
            labels = next;

            let mut sums = vec![0.0; k * columns];
            let mut weights = vec![0.0; k];
            for (row, &label) in labels.iter().enumerate() {
                weights[label] += rows.weights[row];
                for (column, &value) in rows.row(row).iter().enumerate() {
                    sums[label * columns + column] += rows.weights[row] * value;
                }
            }
            for cluster in 0..k {
                for value in &mut sums[cluster * columns..(cluster + 1) * columns] {
                    *value /= weights[cluster];
                }
            }
            let shift = squared_distance(&sums, &centroids);
            centroids = sums;
            if shift <= shift_tolerance {
                break;
            }
        }
        let inertia = (0..rows.rows)
            .map(|row| {
                let label = labels[row];
                rows.weights[row]
                    * squared_distance(
                        rows.row(row),
                        &centroids[label * columns..(label + 1) * columns],
                    )
            })
            .sum();
        Reference {
            labels,
            centroids,
            inertia,
            iterations,
        }
    }

    /// Returns the label of each row from the labels of the tree's points.
    fn row_labels(tree: &KdTree, points: &DistinctPoints, labels: &[u32]) -> Vec<usize> {
        let mut position = vec![0usize; tree.len()];
        for (tree_position, &rank) in tree.rank.iter().enumerate() {
            position[rank as usize] = tree_position;
        }
        points
            .point_of_row
            .iter()
            .map(|&point| labels[position[point as usize]] as usize)
            .collect()
    }

    /// Builds `rows` × `columns` values where about one row in four repeats
    /// an earlier row. Coarse values are integers 0..6, where exact ties
    /// between centroids are common; fine values are uniform in [0, 1).
    fn random_data(
        rng: &mut Xoshiro256PlusPlus,
        rows: usize,
        columns: usize,
        coarse: bool,
    ) -> Array2<f64> {
        let mut values: Vec<f64> = Vec::with_capacity(rows * columns);
        for row in 0..rows {
            if row > 0 && rng.gen_range(0..4) == 0 {
                let earlier = rng.gen_range(0..row);
                let copy = values[earlier * columns..(earlier + 1) * columns].to_vec();
                values.extend(copy);
            } else {
                for _ in 0..columns {
                    values.push(if coarse {
                        rng.gen_range(0..6) as f64
                    } else {
                        rng.r#gen::<f64>()
                    });
                }
            }
        }
        Array2::from_shape_vec((rows, columns), values).expect("rows × columns")
    }

    #[test]
    fn lloyd_matches_plain_reference() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
        for case in 0..60 {
            let rows = [50, 200, 1000][case % 3];
            let columns = [1, 2, 3, 2][case % 4];
            let k = [1, 2, 5, 12, 40][case % 5];
            let coarse = case % 2 == 0;
            let x = random_data(&mut rng, rows, columns, coarse);
            let weights: Array1<f64> = (0..rows).map(|i| 1.0 + (i % 4) as f64).collect();
            let weighted = case % 3 == 1;
            let data = Rows::new(x.view(), weighted.then(|| weights.view())).expect("valid input");
            let points = DistinctPoints::new(&data);
            let tree = KdTree::new(&points);
            let k = k.min(points.len());
            let tolerance = [0.0, 1e-4][case % 2] * mean_column_variance(&points);
            let mut rng_run = run_rng(case as u64, 0);
            let seeds = Seeding::new(&tree).choose(&tree, &tree, k, &mut rng_run);

            let run = lloyd(&tree, seeds.clone(), k, 300, tolerance);
            let reference = plain_lloyd(&data, seeds, k, 300, tolerance);
            assert_eq!(
                row_labels(&tree, &points, &run.labels),
                reference.labels,
                "case {case}: labels"
            );
            assert_eq!(
                run.iterations, reference.iterations,
                "case {case}: iterations"
            );
            if coarse {
                // Integer values and weights: every cluster sum is exact,
                // so the summation order cannot change the centroids.
                assert_eq!(run.centroids, reference.centroids, "case {case}: centroids");
            } else {
                // Sums of up to 1000 terms below 4 in two orders differ by
                // a few ulp of the sums, far below 1e-12.
                for (a, b) in run.centroids.iter().zip(&reference.centroids) {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "case {case}: {a} against {b}"
                    );
                }
            }
            // The inertia adds squared distances in tree order instead of
            // row order, over merged rows: equal up to the rounding of
            // about 1000 positive terms, far below 1e-12 relative.
            assert!(
                (run.inertia - reference.inertia).abs() <= 1e-12 * reference.inertia,
                "case {case}: inertia {} against {}",
                run.inertia,
                reference.inertia
            );
        }
    }

    #[test]
    fn lloyd_matches_plain_after_relocation() {
        // Seeds with two centroids far from every row: both clusters are
        // empty after the first assignment and take the farthest rows. Row
        // 9.0 appears twice and moves as one point.
        let x = array![[0.0], [0.1], [0.2], [5.0], [9.0], [5.1], [9.0]];
        let data = Rows::new(x.view(), None).expect("valid input");
        let points = DistinctPoints::new(&data);
        let tree = KdTree::new(&points);
        let seeds = vec![0.1, 100.0, 200.0];
        let run = lloyd(&tree, seeds.clone(), 3, 300, 0.0);
        let reference = plain_lloyd(&data, seeds, 3, 300, 0.0);
        let labels = row_labels(&tree, &points, &run.labels);
        assert_eq!(labels, reference.labels);
        assert_eq!(run.iterations, reference.iterations);
        // The relocations end in the three natural groups.
        assert_eq!(labels[4], labels[6]);
        assert_ne!(labels[0], labels[3]);
        assert_ne!(labels[3], labels[4]);
        assert_eq!(labels[3], labels[5]);
    }

    #[test]
    fn relocation_takes_farthest_point_lowest_rank_on_ties() {
        // Centroid 1 is far from every point and ends up empty. Points −1
        // and 3 are both at squared distance 4 from centroid 0 at 1, and
        // the tie goes to −1, the lower rank.
        let x = array![[-1.0], [1.0], [3.0], [1.0]];
        let data = Rows::new(x.view(), None).expect("valid input");
        let points = DistinctPoints::new(&data);
        let tree = KdTree::new(&points);
        let run = lloyd(&tree, vec![1.0, 50.0], 2, 1, 0.0);
        let labels = row_labels(&tree, &points, &run.labels);
        assert_eq!(labels, vec![1, 0, 0, 0]);
        // The new centroids are the means: (1 + 3 + 1) / 3 and −1.
        assert_eq!(run.centroids[1], -1.0);
    }
}
