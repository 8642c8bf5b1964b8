//! The order in which the window visits the ROI voxels: along lines of
//! one axis, from line to line in a snake order.

use super::moving_window::MovingWindow;
use super::quantise::{LevelGrid, PaddedValues};

/// ROI voxels in lexicographic order, with each one's output position.
pub(super) struct RoiVoxels {
    pub(super) voxels: Vec<[usize; 3]>,
    /// Output position of each voxel of B (row-major over B), or
    /// `u32::MAX` outside the ROI.
    ordinal: Vec<u32>,
    /// Size of B along i, j, k.
    extent: [usize; 3],
}

impl RoiVoxels {
    /// Lists the ROI voxels of the box `low..=high`, which contains
    /// all `voxel_count` of them.
    pub(super) fn new(
        values: &PaddedValues,
        voxel_count: usize,
        low: [usize; 3],
        high: [usize; 3],
    ) -> Self {
        let extent: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1);
        let mut voxels = Vec::with_capacity(voxel_count);
        let mut ordinal = Vec::with_capacity(extent.iter().product());
        for i in low[0]..=high[0] {
            for j in low[1]..=high[1] {
                for k in low[2]..=high[2] {
                    if values.in_roi([i, j, k]) {
                        ordinal.push(voxels.len() as u32);
                        voxels.push([i, j, k]);
                    } else {
                        ordinal.push(u32::MAX);
                    }
                }
            }
        }
        RoiVoxels {
            voxels,
            ordinal,
            extent,
        }
    }

    /// Output position of the voxel at offset `position` within B.
    fn ordinal(&self, position: [usize; 3]) -> Option<usize> {
        let index = (position[0] * self.extent[1] + position[1]) * self.extent[2] + position[2];
        let ordinal = self.ordinal[index];
        (ordinal != u32::MAX).then_some(ordinal as usize)
    }
}

/// A remove and add pair costs about as many histogram updates as two
/// adds, so a move of P pairs beats a fresh fill of |W| adds when
/// 2P < |W|.
const UPDATES_PER_PAIR: usize = 2;

/// The axes of the traversal. The window slides along `slide` within each
/// line, lines follow each other along `inner` within a slab, and slabs
/// follow each other along `outer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TraversalAxes {
    outer: usize,
    inner: usize,
    slide: usize,
}

impl TraversalAxes {
    /// Chooses the axes: see [`slide_axis`] for the slide axis. Of the
    /// other two, the one with the smaller half-width is outer, because
    /// steps along it cost the most. In 2-D, where the slice axis has
    /// h = 0, a step across slices replaces the whole window.
    fn choose(grid: &LevelGrid) -> Self {
        let slide = slide_axis(grid);
        let (first, second) = match slide {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        let (outer, inner) = if grid.half[second] < grid.half[first] {
            (second, first)
        } else {
            (first, second)
        };
        TraversalAxes {
            outer,
            inner,
            slide,
        }
    }

    /// Returns the box position at offsets `outer`, `inner` and `slide`
    /// along the three axes.
    fn position(&self, outer: usize, inner: usize, slide: usize) -> [usize; 3] {
        let mut position = [0; 3];
        position[self.outer] = outer;
        position[self.inner] = inner;
        position[self.slide] = slide;
        position
    }
}

/// Returns the last axis with a window extent above 1 (k in 3-D). Sliding
/// along i or j instead cuts the ROI lines of the STS MR lesions by more
/// than half, but was no faster in the `habitat_step` bench (one run per
/// axis), because few lines start with a fresh fill anyway.
fn slide_axis(grid: &LevelGrid) -> usize {
    if grid.half[2] > 0 { 2 } else { 1 }
}

/// Returns the first and last slide offsets of the ROI voxels on one line,
/// or `None` if the line has none.
fn line_span(
    roi: &RoiVoxels,
    axes: TraversalAxes,
    outer: usize,
    inner: usize,
) -> Option<(usize, usize)> {
    let in_roi = |t: &usize| roi.ordinal(axes.position(outer, inner, *t)).is_some();
    let length = roi.extent[axes.slide];
    let first = (0..length).find(in_roi)?;
    let last = (first..length).rev().find(in_roi).unwrap_or(first);
    Some((first, last))
}

/// Computes E in bits for every ROI voxel.
///
/// The window visits the ROI lines along the slide axis in a snake order.
/// It takes the lines of one slab in turn and the slabs forth and back,
/// and runs each line from the end nearer to its position to the other
/// end. It reaches the next line by moving face by face when that costs fewer
/// histogram updates than a fresh fill, so most lines start without one.
/// Positions outside the ROI along the way get no output. The entropy of
/// a window depends only on its counts (see [`Histogram`]), so the path
/// changes the time and never the values.
///
/// [`Histogram`]: super::histogram::Histogram
pub(super) fn sliding_entropy(grid: &LevelGrid, roi: &RoiVoxels) -> Vec<f64> {
    let axes = TraversalAxes::choose(grid);
    let mut entropy = vec![0.0; roi.voxels.len()];
    let mut window = MovingWindow::new(grid);
    let (outer_extent, inner_extent) = (roi.extent[axes.outer], roi.extent[axes.inner]);
    for outer in 0..outer_extent {
        for step in 0..inner_extent {
            // Slabs alternate direction, so the next slab starts next to
            // where this one ends.
            let inner = if outer % 2 == 0 {
                step
            } else {
                inner_extent - 1 - step
            };
            let Some((first, last)) = line_span(roi, axes, outer, inner) else {
                continue;
            };
            let at = |t: usize| axes.position(outer, inner, t);
            let (start, end) = match (window.pairs_to(at(first)), window.pairs_to(at(last))) {
                (Some(to_first), Some(to_last)) if to_last < to_first => (last, first),
                _ => (first, last),
            };

            place_window(&mut window, at(start));
            let forward = end >= start;
            let mut t = start;
            loop {
                if let Some(ordinal) = roi.ordinal(at(t)) {
                    entropy[ordinal] = window.entropy_bits();
                }
                if t == end {
                    break;
                }
                window.step(axes.slide, forward);
                t = if forward { t + 1 } else { t - 1 };
            }
        }
    }
    entropy
}

/// Moves the window to `target` if that takes fewer histogram updates than
/// a fresh fill there, and fills it there otherwise.
fn place_window(window: &mut MovingWindow, target: [usize; 3]) {
    match window.pairs_to(target) {
        Some(pairs) if pairs * UPDATES_PER_PAIR < window.window_positions() => {
            window.move_to(target)
        }
        _ => window.fill_at(target),
    }
}

#[cfg(test)]
mod tests;
