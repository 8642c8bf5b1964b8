//! The window histogram at a position of the lesion box, moved one voxel
//! at a time along any axis.

use super::histogram::Histogram;
use super::quantise::LevelGrid;

/// A window histogram together with the box position it describes.
///
/// Box offset p along an axis is grid offset p + h there, so the window of
/// box position p spans grid positions p..=p + 2h, and the grid index of
/// its lowest corner is `grid.index(p)`. Every box position therefore has
/// its whole window inside the level grid.
pub(super) struct MovingWindow<'a> {
    grid: &'a LevelGrid,
    histogram: Histogram,
    /// Box position of the window centre; `None` before the first fill.
    position: Option<[usize; 3]>,
    /// Grid index of the window's lowest corner.
    corner: usize,
    /// Offsets of the window face normal to each axis, relative to the
    /// face's lowest corner.
    faces: [Vec<usize>; 3],
}

impl<'a> MovingWindow<'a> {
    pub(super) fn new(grid: &'a LevelGrid) -> Self {
        MovingWindow {
            grid,
            histogram: Histogram::new(grid.bins, grid.window_positions),
            position: None,
            corner: 0,
            faces: std::array::from_fn(|axis| face_offsets(grid, axis)),
        }
    }

    /// Returns the positions in the window face normal to `axis`, which
    /// is the number of remove and add pairs in one step along it.
    fn face_positions(&self, axis: usize) -> usize {
        self.faces[axis].len()
    }

    /// Returns the remove and add pairs that [`Self::move_to`] would take
    /// to reach `target`, or `None` before the first fill.
    pub(super) fn pairs_to(&self, target: [usize; 3]) -> Option<usize> {
        let position = self.position?;
        Some(
            (0..3)
                .map(|axis| position[axis].abs_diff(target[axis]) * self.face_positions(axis))
                .sum(),
        )
    }

    /// Empties the histogram and counts the whole window of `position`.
    pub(super) fn fill_at(&mut self, position: [usize; 3]) {
        self.histogram.clear();
        self.corner = self.grid.index(position);
        let stride = self.grid.strides[0];
        for plane in 0..=2 * self.grid.half[0] {
            self.histogram.add_plane(
                &self.grid.levels,
                self.corner + plane * stride,
                &self.faces[0],
            );
        }
        self.position = Some(position);
    }

    /// Moves the window to `target` one voxel at a time, axis by axis. The
    /// counts at `target` are the same as after [`Self::fill_at`] there,
    /// and so is S, because its fixed-point sum is exact in any order.
    ///
    /// Panics before the first fill.
    pub(super) fn move_to(&mut self, target: [usize; 3]) {
        let position = self.position.expect("the window is filled before it moves");
        for axis in 0..3 {
            for _ in target[axis]..position[axis] {
                self.step(axis, false);
            }
            for _ in position[axis]..target[axis] {
                self.step(axis, true);
            }
        }
    }

    /// Moves the window one voxel along `axis`, towards higher indices if
    /// `forward`: removes the face that leaves and adds the one that
    /// enters.
    ///
    /// Panics before the first fill. The caller keeps the window inside
    /// the box, where every window lies in the level grid.
    pub(super) fn step(&mut self, axis: usize, forward: bool) {
        let position = self
            .position
            .as_mut()
            .expect("the window is filled before it moves");
        let stride = self.grid.strides[axis];
        let edge = 2 * self.grid.half[axis] + 1;
        let (leaving, entering) = if forward {
            position[axis] += 1;
            let leaving = self.corner;
            self.corner += stride;
            (leaving, leaving + edge * stride)
        } else {
            position[axis] -= 1;
            let leaving = self.corner + (edge - 1) * stride;
            self.corner -= stride;
            (leaving, self.corner)
        };
        self.histogram
            .slide(&self.grid.levels, leaving, entering, &self.faces[axis]);
    }

    /// Returns |W|, the positions of a full window.
    pub(super) fn window_positions(&self) -> usize {
        self.grid.window_positions
    }

    /// Returns the entropy in bits of the current window.
    pub(super) fn entropy_bits(&self) -> f64 {
        self.histogram
            .entropy_bits(self.grid.window_positions, self.grid.boundary)
    }
}

/// Returns the grid offsets of the window face normal to `axis`, relative
/// to the face's lowest corner, with the last axis fastest so that the
/// reads of one face go through memory in order.
fn face_offsets(grid: &LevelGrid, axis: usize) -> Vec<usize> {
    let extent: [usize; 3] =
        std::array::from_fn(|a| if a == axis { 1 } else { 2 * grid.half[a] + 1 });
    let mut offsets = Vec::with_capacity(extent.iter().product());
    for i in 0..extent[0] {
        for j in 0..extent[1] {
            for k in 0..extent[2] {
                offsets.push(grid.index([i, j, k]));
            }
        }
    }
    offsets
}
