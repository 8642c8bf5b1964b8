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

mod walk;

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
    let walk = Walk::detect();
    with_layout!(layout, tree, data => {
        lloyd_with(data, tree, centroids, k, max_iter, shift_tolerance, walk)
    })
}

/// The compiled copy of the assignment walk that runs (the `walk` module
/// writes both copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Baseline,
    /// Compiled for AVX2, BMI1, BMI2, LZCNT and POPCNT.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Walk {
    /// Returns the AVX2 copy where the CPU has its features, and the
    /// baseline copy otherwise.
    fn detect() -> Walk {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return Walk::Avx2;
        }
        Walk::Baseline
    }
}

fn lloyd_with<L: TreeLayout>(
    layout: &L,
    tree: &KdTree,
    mut centroids: Vec<f64>,
    k: usize,
    max_iter: usize,
    shift_tolerance: f64,
    walk: Walk,
) -> Run {
    let columns = layout.columns();
    let mut state = Assignment {
        layout,
        tree,
        walk,
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
    /// The copy of the walk to run; the AVX2 copy only where the CPU has
    /// its features.
    walk: Walk,
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

        match self.walk {
            Walk::Baseline => self.visit(0, 0, centroids),
            // SAFETY: `Walk::detect` returns `Avx2` only where the CPU has
            // every feature that this copy is compiled for.
            #[cfg(target_arch = "x86_64")]
            Walk::Avx2 => unsafe { self.visit_avx2(0, 0, centroids) },
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
mod tests;
