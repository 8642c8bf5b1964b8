//! The [`PaddedLevels`] grids of one [`TextureInput`], built once and shared by the texture
//! classes.
//!
//! GLCM, GLRLM, GLSZM, GLDM and NGTDM each start from the same padded grid of renumbered
//! levels. With the default distance 1 they all ask for a one-voxel border, so building the
//! grid once per image type instead of once per class saves four copies of the ROI's
//! bounding box. A class that needs another border gets its own grid, kept for later
//! classes that ask for the same border.

use std::borrow::Cow;

use super::discretize::{PaddedLevels, TextureInput};

/// Padded grids of one texture input, one per border width requested so far.
pub(crate) struct PaddedGrids<'a> {
    input: Cow<'a, TextureInput>,
    grids: Vec<PaddedLevels>,
}

impl<'a> PaddedGrids<'a> {
    /// Starts with no grid for a borrowed input; [`PaddedGrids::get`] builds them on request.
    pub(crate) fn new(input: &'a TextureInput) -> Self {
        PaddedGrids {
            input: Cow::Borrowed(input),
            grids: Vec::new(),
        }
    }

    /// Starts with no grid for an input that the grids keep.
    pub(crate) fn owning(input: TextureInput) -> Self {
        PaddedGrids {
            input: Cow::Owned(input),
            grids: Vec::new(),
        }
    }

    /// Returns the texture input that the grids are built from.
    pub(crate) fn input(&self) -> &TextureInput {
        &self.input
    }

    /// Returns the grid with `padding` empty voxels on every side, building it on first
    /// request.
    pub(crate) fn get(&mut self, padding: usize) -> &PaddedLevels {
        let position = match self.grids.iter().position(|grid| grid.padding == padding) {
            Some(position) => position,
            None => {
                self.grids.push(PaddedLevels::new(&self.input, padding));
                self.grids.len() - 1
            }
        };
        &self.grids[position]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn grids_match_fresh_build_per_padding() {
        let levels = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| ((i + 2 * j + 3 * k) % 4) as u32);
        let input = TextureInput {
            levels,
            n_levels: 3,
            spacing: [1.0; 3],
        };
        let mut grids = PaddedGrids::new(&input);
        for padding in [1, 2, 1] {
            let fresh = PaddedLevels::new(&input, padding);
            let shared = grids.get(padding);
            assert_eq!(shared.padding, padding);
            assert_eq!(shared.shape, fresh.shape);
            assert_eq!(shared.data, fresh.data);
            assert_eq!(shared.present_levels, fresh.present_levels);
        }
        assert_eq!(grids.grids.len(), 2);
    }
}
