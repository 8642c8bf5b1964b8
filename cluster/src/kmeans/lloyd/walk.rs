//! The recursive walk of the assignment step, compiled twice.

use super::{Assignment, NO_LABEL, centroid_of, shared_label};
use crate::kmeans::layout::TreeLayout;
use crate::kmeans::points::squared_distance;

/// Defines the recursive walk of the assignment step (`$visit`,
/// `$visit_pair` and `$assign_points`) with the given target-feature
/// attributes. It is instantiated twice, for the baseline target and for
/// AVX2 (see [`super::Walk`]): the walk recurses, so a copy compiled
/// for AVX2 has to call its own AVX2 copies instead of going back through
/// a dispatcher at each node. Both copies make the same operations in the
/// same order, and Rust never fuses a multiply and an add on its own, so
/// they give the same results.
macro_rules! assignment_walk {
    ($visit:ident, $visit_pair:ident, $assign_points:ident $(, #[$feature:meta])*) => {
        impl<L: TreeLayout> Assignment<'_, L> {
        /// Assigns the points of `node` given the candidates that start at
        /// `first` in the candidate stack and run to its end.
        $(#[$feature])*
        pub(super) fn $visit(&mut self, node: usize, first: usize, centroids: &[f64]) {
            let stack_end = self.candidates.len();
            if stack_end - first == 2 {
                let pair = (self.candidates[first], self.candidates[first + 1]);
                self.$visit_pair(node, pair, centroids);
                return;
            }
            let layout = self.layout;
            let columns = layout.columns();

            let mut list_start = first;
            if stack_end - first > 1 {
                let node_box = layout.node_box(node);
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
                self.$assign_points(node, list_start, centroids);
            } else {
                let (left, right) = (node + 1, layout.right_child(node));
                self.$visit(left, list_start, centroids);
                self.$visit(right, list_start, centroids);
                self.join_children(node, left, right);
            }
            self.candidates.truncate(stack_end);
        }

        /// Assigns the points of `node` given exactly two candidates (a, b),
        /// a < b. It computes what [`Assignment::visit`] computes for that
        /// list, with the same arithmetic, but without the candidate stack.
        /// Most nodes of the walk lie on a boundary between two clusters.
        $(#[$feature])*
        pub(super) fn $visit_pair(&mut self, node: usize, pair: (u32, u32), centroids: &[f64]) {
            let layout = self.layout;
            let columns = layout.columns();
            let node_box = layout.node_box(node);
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
                self.$visit_pair(left, pair, centroids);
                self.$visit_pair(right, pair, centroids);
                self.join_children(node, left, right);
            }
        }


        /// Assigns each point of leaf `node` to its nearest candidate among
        /// those from `first` to the end of the candidate stack.
        $(#[$feature])*
        pub(super) fn $assign_points(&mut self, node: usize, first: usize, centroids: &[f64]) {
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
        }
    };
}

assignment_walk!(visit, visit_pair, assign_points);
#[cfg(target_arch = "x86_64")]
assignment_walk!(
    visit_avx2,
    visit_pair_avx2,
    assign_points_avx2,
    #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
);
