//! Neighbour directions of the texture classes ("angles" in PyRadiomics), and how GLCM and
//! GLRLM merge them. These are PyRadiomics' settings `force2D`, `force2Ddimension` and
//! `weightingNorm`, as PyRadiomics 3.1.4 (`pyradiomics-bhklab`) defines them.
//!
//! **force2D** leaves out every angle with a nonzero step along the out-of-plane axis
//! (`generate_angles` in PyRadiomics' C extension). Each matrix is still built over the
//! whole ROI at once: a 2-D extraction on a multi-slice ROI pools the in-plane neighbours
//! of all its slices. At distance 1 that leaves 4 of the 13 GLCM and GLRLM angles, and 8 of
//! the 26 neighbours that GLSZM zones, GLDM dependences and NGTDM neighbourhoods use.
//! PyRadiomics' `force2Ddimension` d counts the axes of its (z, y, x) arrays, so the
//! out-of-plane axis here is the array axis 2 − d: d = 0 (axial slices) is k, 1 is j and
//! 2 is i.
//!
//! **weightingNorm** merges the matrices of all angles into one before the features, so
//! the features are computed once instead of averaged over the angles. Each angle's matrix
//! (after GLCM symmetrisation) is multiplied by a weight w and the products are summed.
//! With the step of an angle in mm, s = (|di|·s_i, |dj|·s_j, |dk|·s_k), the norm gives a
//! length d: `infinity` max(s), `euclidean` √(Σ s²), `manhattan` Σ s. GLCM weighs an angle
//! by w = e^(−d²) and GLRLM by w = d. `no_weighting` sums the matrices with w = 1.
//! GLSZM, GLDM and NGTDM have one matrix and ignore the setting.

use super::discretize::angle_offsets;

/// Norm that weighs each angle's matrix before GLCM and GLRLM merge them (PyRadiomics
/// `weightingNorm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightingNorm {
    /// Largest step component in mm, max(s) (`infinity`).
    Infinity,
    /// Step length in mm, √(Σ s²) (`euclidean`).
    Euclidean,
    /// Sum of the step components in mm, Σ s (`manhattan`).
    Manhattan,
    /// Weight 1 for every angle: a plain sum of the matrices (`no_weighting`).
    NoWeighting,
}

impl WeightingNorm {
    /// Every norm, in the order of PyRadiomics' parameter schema.
    pub const ALL: [WeightingNorm; 4] = [
        WeightingNorm::Manhattan,
        WeightingNorm::Euclidean,
        WeightingNorm::Infinity,
        WeightingNorm::NoWeighting,
    ];

    /// Returns PyRadiomics' name of the norm.
    pub fn name(self) -> &'static str {
        match self {
            WeightingNorm::Infinity => "infinity",
            WeightingNorm::Euclidean => "euclidean",
            WeightingNorm::Manhattan => "manhattan",
            WeightingNorm::NoWeighting => "no_weighting",
        }
    }

    /// Parses PyRadiomics' name of a norm.
    pub fn parse(name: &str) -> Option<Self> {
        WeightingNorm::ALL
            .into_iter()
            .find(|norm| norm.name() == name)
    }

    /// Returns the GLCM weight e^(−d²) of the angle `offset` on a grid of `spacing` mm.
    /// The euclidean d² is summed without a square root, as PyRadiomics computes it.
    pub(crate) fn cooccurrence_weight(self, offset: [i32; 3], spacing: [f64; 3]) -> f64 {
        let steps = step_lengths(offset, spacing);
        let squared_length = match self {
            WeightingNorm::Infinity => {
                let longest = steps.into_iter().fold(0.0, f64::max);
                longest * longest
            }
            WeightingNorm::Euclidean => steps.iter().map(|step| step * step).sum(),
            WeightingNorm::Manhattan => {
                let total: f64 = steps.iter().sum();
                total * total
            }
            WeightingNorm::NoWeighting => return 1.0,
        };
        (-squared_length).exp()
    }

    /// Returns the GLRLM weight d of the angle `offset` on a grid of `spacing` mm.
    pub(crate) fn run_length_weight(self, offset: [i32; 3], spacing: [f64; 3]) -> f64 {
        let steps = step_lengths(offset, spacing);
        match self {
            WeightingNorm::Infinity => steps.into_iter().fold(0.0, f64::max),
            WeightingNorm::Euclidean => steps.iter().map(|step| step * step).sum::<f64>().sqrt(),
            WeightingNorm::Manhattan => steps.iter().sum(),
            WeightingNorm::NoWeighting => 1.0,
        }
    }
}

/// Returns the step s of an angle along each axis, in mm.
fn step_lengths(offset: [i32; 3], spacing: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|axis| f64::from(offset[axis].unsigned_abs()) * spacing[axis])
}

/// Angle settings of the texture classes. The default is PyRadiomics' default: 3-D angles,
/// features averaged over the angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextureAngles {
    /// Array axis (0 = i, 1 = j, 2 = k) along which no angle steps (PyRadiomics `force2D`
    /// with `force2Ddimension`), or none for 3-D angles. Must be below 3.
    pub out_of_plane_axis: Option<usize>,
    /// Norm with which GLCM and GLRLM merge their angles (PyRadiomics `weightingNorm`), or
    /// none to average the features over the angles.
    pub weighting: Option<WeightingNorm>,
}

impl TextureAngles {
    /// Converts PyRadiomics' `force2Ddimension`, an axis of its (z, y, x) arrays, to the
    /// array axis used here. Returns none above 2.
    pub fn axis_of_force2d_dimension(dimension: usize) -> Option<usize> {
        2_usize.checked_sub(dimension)
    }

    /// Returns PyRadiomics' angles for the Chebyshev `distances` on a box of `box_shape`
    /// voxels, as offsets (di, dj, dk) in PyRadiomics' order, without those that step
    /// along the out-of-plane axis.
    pub(crate) fn offsets(&self, distances: &[u32], box_shape: [usize; 3]) -> Vec<[i32; 3]> {
        let mut offsets = angle_offsets(distances, box_shape);
        if let Some(axis) = self.out_of_plane_axis {
            offsets.retain(|offset| offset[axis] == 0);
        }
        offsets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force2d_keeps_pyradiomics_in_plane_angles() {
        // PyRadiomics 3.1.4: cMatrices.generate_angles([5, 5, 5], [1], False, True, 0) gives,
        // in (z, y, x), (0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, 1). Here (di, dj, dk) is
        // (x, y, z), and force2Ddimension 0 is axis k.
        let axial = TextureAngles {
            out_of_plane_axis: TextureAngles::axis_of_force2d_dimension(0),
            weighting: None,
        };
        assert_eq!(
            axial.offsets(&[1], [5, 5, 5]),
            vec![[1, 1, 0], [0, 1, 0], [-1, 1, 0], [1, 0, 0]]
        );
        // generate_angles(..., True, 2) gives (1, 1, 0), (1, 0, 0), (1, -1, 0), (0, 1, 0) in
        // (z, y, x): no step along x, which is axis i.
        let sagittal = TextureAngles {
            out_of_plane_axis: TextureAngles::axis_of_force2d_dimension(2),
            weighting: None,
        };
        assert_eq!(
            sagittal.offsets(&[1], [5, 5, 5]),
            vec![[0, 1, 1], [0, 0, 1], [0, -1, 1], [0, 1, 0]]
        );
    }

    #[test]
    fn three_d_angles_are_unchanged() {
        let offsets = TextureAngles::default().offsets(&[1], [5, 5, 5]);
        assert_eq!(offsets, angle_offsets(&[1], [5, 5, 5]));
        assert_eq!(offsets.len(), 13);
    }

    #[test]
    fn force2d_dimension_maps_to_array_axis() {
        assert_eq!(TextureAngles::axis_of_force2d_dimension(0), Some(2));
        assert_eq!(TextureAngles::axis_of_force2d_dimension(1), Some(1));
        assert_eq!(TextureAngles::axis_of_force2d_dimension(2), Some(0));
        assert_eq!(TextureAngles::axis_of_force2d_dimension(3), None);
    }

    #[test]
    fn weights_follow_each_norm() {
        // Angle (1, −1, 1) on spacing (0.5, 2, 3) mm: steps 0.5, 2 and 3 mm. Expected values
        // are the formulas of the module documentation evaluated by hand.
        let offset = [1, -1, 1];
        let spacing = [0.5, 2.0, 3.0];
        let cases = [
            (WeightingNorm::Infinity, 3.0, (-9.0_f64).exp()),
            (
                WeightingNorm::Euclidean,
                13.25_f64.sqrt(),
                (-13.25_f64).exp(),
            ),
            (WeightingNorm::Manhattan, 5.5, (-30.25_f64).exp()),
            (WeightingNorm::NoWeighting, 1.0, 1.0),
        ];
        for (norm, run_length, cooccurrence) in cases {
            // Both sides are one or two correctly rounded operations on the same inputs.
            let run_weight = norm.run_length_weight(offset, spacing);
            assert!(
                (run_weight - run_length).abs() <= 1e-15 * run_length,
                "{norm:?} GLRLM weight {run_weight}, expected {run_length}"
            );
            let glcm_weight = norm.cooccurrence_weight(offset, spacing);
            assert!(
                (glcm_weight - cooccurrence).abs() <= 1e-15 * cooccurrence,
                "{norm:?} GLCM weight {glcm_weight}, expected {cooccurrence}"
            );
        }
    }

    #[test]
    fn norm_names_round_trip() {
        for norm in WeightingNorm::ALL {
            assert_eq!(WeightingNorm::parse(norm.name()), Some(norm));
        }
        assert_eq!(WeightingNorm::parse("chebyshev"), None);
    }
}
