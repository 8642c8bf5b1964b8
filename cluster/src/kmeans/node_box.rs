//! A k-d tree node's bounding box as centre m ± half-width h, and the drop
//! test of the filtering algorithm on it (see [`super::lloyd`] for the
//! test and its rounding bound).

use super::points::squared_distance;

/// Most columns for which the centre and half-widths are stored in fixed
/// arrays: the column counts of the packed layouts.
pub(super) const MAX_FIXED_COLUMNS: usize = 4;

/// Absolute part of the drop-test margin, for squared distances in the
/// subnormal range, where the relative rounding bound does not hold.
const SUBNORMAL_MARGIN: f64 = 64.0 * f64::MIN_POSITIVE;

/// A node's bounding box as centre m ± half-width h, for the drop test
/// that [`super::lloyd`] documents.
pub(super) struct NodeBox<'a> {
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
    /// Computes m, h and ‖h‖² from the box corners.
    #[inline(always)]
    pub(super) fn new(low: &'a [f64], high: &'a [f64]) -> Self {
        let mut node_box = NodeBox::corners_only(low, high);
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

    /// Takes m and h as [`centre_and_half`] computed them from the
    /// corners, for at most [`MAX_FIXED_COLUMNS`] columns, and computes
    /// ‖h‖² as [`NodeBox::new`] does.
    #[inline(always)]
    pub(super) fn from_centre(
        low: &'a [f64],
        high: &'a [f64],
        centre: &[f64],
        half: &[f64],
    ) -> Self {
        let mut node_box = NodeBox::corners_only(low, high);
        let columns = centre.len();
        node_box.centre[..columns].copy_from_slice(centre);
        node_box.half[..columns].copy_from_slice(half);
        for &width in half {
            node_box.half_norm += width * width;
        }
        node_box
    }

    /// Returns a box with its corners and m, h and ‖h‖² still 0.
    #[inline(always)]
    fn corners_only(low: &'a [f64], high: &'a [f64]) -> Self {
        NodeBox {
            low,
            high,
            centre: [0.0; MAX_FIXED_COLUMNS],
            half: [0.0; MAX_FIXED_COLUMNS],
            half_norm: 0.0,
        }
    }

    /// Returns m, h (for at most [`MAX_FIXED_COLUMNS`] columns) and ‖h‖².
    #[cfg(test)]
    pub(super) fn parts(&self) -> (&[f64], &[f64], f64) {
        let columns = self.low.len().min(MAX_FIXED_COLUMNS);
        (
            &self.centre[..columns],
            &self.half[..columns],
            self.half_norm,
        )
    }

    /// Returns ‖m − centroid‖².
    #[inline(always)]
    pub(super) fn centre_distance(&self, centroid: &[f64]) -> f64 {
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
    /// [`NodeBox::centre_distance`], by the test and rounding bound that
    /// [`super::lloyd`] documents.
    #[inline(always)]
    pub(super) fn dominates(
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

/// Returns the centre and half-width of [low, high] with the arithmetic of
/// [`NodeBox::new`].
pub(super) fn centre_and_half(low: f64, high: f64) -> (f64, f64) {
    (0.5 * (low + high), half_width(low, high))
}
