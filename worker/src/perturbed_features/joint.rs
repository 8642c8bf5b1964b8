//! Perturbed copies of a patient's `joint` habitat space, on one grid or
//! on several. [`joint_habitat_copy_features`] states the rule.

use super::{
    CopyFailure, HabitatCopyChain, RegionCopies, RoundPerturbation, fail_all, patient_seed,
    reference_habitats, region_copy_features,
};
use crate::config::GeometryTolerance;
use crate::extract::LoadedSequence;
use crate::feature_request::FeatureRequest;
use crate::habitat::grid::Affine;
use crate::habitat::pipeline::{JOINT_SPACE, SequenceInput, copy_space_name, joint_supervoxels};
use crate::habitat::regions::{RegionMasks, sequence_regions};
use crate::image::{Geometry, Volume};
use crate::mask::Roi;
use crate::perturb::{Perturber, RotationAxis};

/// Largest sine of the angle between the reference's slice normal and
/// another grid's slice normal for the two to count as parallel. 1e-3 is
/// an angle of about 0.06°, which moves a point 60 mm from the axis by
/// 0.06 mm, far below any voxel size in use.
const MAX_NORMAL_SINE: f64 = 1e-3;

/// The loaded sequences of one patient's `joint` habitat space, in the
/// space's order: the first is the reference, whose mask the space uses.
pub struct JointSpaceInputs<'a> {
    /// Sequence names and their loaded image and mask.
    pub sequences: &'a [(String, LoadedSequence)],
    /// The worker's grid tolerance, which decided at `ComputeSupervoxels`
    /// whether the sequences share the reference grid.
    pub tolerance: &'a GeometryTolerance,
}

/// Makes the k perturbed copies of `sequence` in a `joint` habitat round.
/// Returns the same form as [`super::habitat_copy_features`].
///
/// Copy p perturbs every sequence of the space with the draws of
/// `sequence`'s patient seed ([`super::patient_seed`]), so every sequence
/// turns by the same angle and its mask changes by the same distance in
/// mm. Only the noise level follows each image. The joint chain then
/// reruns on the perturbed sequences (seed space `"joint#copy<p>"`), the
/// frozen joint model assigns the supervoxels, and the regions of
/// `sequence`'s perturbed image give its features. How the sequences are
/// perturbed follows how the original space was clustered:
///
/// - Every sequence on the reference grid (within the worker's geometry
///   tolerance): each image is perturbed with the reference mask about the
///   reference ROI centroid, so all share one perturbed mask, and the
///   chain joins all of them.
/// - Otherwise the original was clustered on the reference sequence alone,
///   and the other sequences' labels were carried by physical position. A
///   copy then perturbs the reference image and mask as in `per_sequence`
///   mode, and each other sequence on its own grid with its own mask. The
///   other sequences turn about the same physical axis, the reference's
///   slice normal through the reference ROI centroid. A sequence whose
///   slice normal is not parallel to the reference's fails, because each
///   grid turns within its own slices. The chain clusters the reference
///   copy, and the other copies' lesion maps give their descriptor
///   columns. A non-reference sequence's regions are the copy's reference
///   labels carried onto its perturbed mask by physical position, as for
///   the original ([`sequence_regions`]).
pub fn joint_habitat_copy_features(
    sequence: &str,
    pseudonym: &str,
    space: &JointSpaceInputs<'_>,
    perturbation: &RoundPerturbation,
    features: &FeatureRequest,
    habitat: &HabitatCopyChain<'_>,
    regions: &[String],
) -> RegionCopies {
    let habitat_failure = |reason: String| CopyFailure::Habitat { repeat: 0, reason };
    let Some(index) = space
        .sequences
        .iter()
        .position(|(name, _)| name == sequence)
    else {
        return fail_all(
            regions,
            habitat_failure(format!(
                "sequence {sequence} is not a sequence of the patient's joint habitat space"
            )),
        );
    };
    let reference = &space.sequences[0].1;
    let all_on_grid = space.sequences.iter().all(|(_, loaded)| {
        loaded
            .image
            .geometry
            .mismatch(&reference.image.geometry, space.tolerance)
            .is_none()
    });
    let perturbers = if all_on_grid {
        shared_mask_perturbers(space, perturbation)
    } else {
        own_grid_perturbers(space, perturbation)
    };
    let perturbers = match perturbers {
        Ok(perturbers) => perturbers,
        Err(failure) => return fail_all(regions, failure),
    };

    let seed = patient_seed(perturbation.study_seed, sequence, pseudonym);
    let make_copy = |repeat: u32| -> Result<(Volume, RegionMasks), CopyFailure> {
        let mut copies = perturbers
            .iter()
            .map(|perturber| perturber.copy(seed, repeat))
            .collect::<Result<Vec<(Volume, Roi)>, _>>()?;
        let masks = joint_copy_regions(
            space,
            &copies,
            all_on_grid,
            index,
            pseudonym,
            repeat,
            habitat,
        )
        .map_err(|reason| CopyFailure::Habitat { repeat, reason })?;
        Ok((copies.swap_remove(index).0, masks))
    };
    region_copy_features(
        sequence,
        space.sequences[index].1.pixel_type,
        perturbation.plan.repeats(),
        features,
        habitat,
        regions,
        make_copy,
    )
}

/// Prepares the copies of a space whose sequences share the reference
/// grid: every image with the reference mask, rotated about the reference
/// ROI centroid. Equal draws on one mask and grid give every sequence the
/// same perturbed mask.
fn shared_mask_perturbers<'a>(
    space: &JointSpaceInputs<'a>,
    perturbation: &RoundPerturbation,
) -> Result<Vec<Perturber<'a>>, CopyFailure> {
    let reference = &space.sequences[0].1;
    space
        .sequences
        .iter()
        .map(|(_, loaded)| {
            Perturber::new(&loaded.image, &reference.roi, &perturbation.plan)
                .map_err(CopyFailure::Perturb)
        })
        .collect()
}

/// Prepares the copies of a space clustered on the reference alone: the
/// reference with its own mask about its ROI centroid, and every other
/// sequence with its own mask on its own grid, about the reference's axis.
fn own_grid_perturbers<'a>(
    space: &JointSpaceInputs<'a>,
    perturbation: &RoundPerturbation,
) -> Result<Vec<Perturber<'a>>, CopyFailure> {
    let (reference_name, reference) = &space.sequences[0];
    let reference_perturber = Perturber::new(&reference.image, &reference.roi, &perturbation.plan)?;
    let [x, y] = reference_perturber.centre_mm();
    let spacing = reference.image.geometry.spacing;
    let centroid_index = [x / spacing[0], y / spacing[1], mean_slice(&reference.roi)];

    let mut perturbers = vec![reference_perturber];
    for (name, loaded) in &space.sequences[1..] {
        let axis = rotation_axis_on(
            &reference.image.geometry,
            centroid_index,
            &loaded.image.geometry,
        )
        .map_err(|reason| CopyFailure::Habitat {
            repeat: 0,
            reason: format!(
                "sequence {name} cannot rotate with the reference sequence {reference_name}: {reason}"
            ),
        })?;
        perturbers.push(Perturber::about_axis(
            &loaded.image,
            &loaded.roi,
            &perturbation.plan,
            axis,
        )?);
    }
    Ok(perturbers)
}

/// Returns the mean k index of the ROI voxels, 0 for an empty mask.
fn mean_slice(roi: &Roi) -> f64 {
    let (count, sum) = roi
        .mask
        .indexed_iter()
        .filter(|(_, inside)| **inside)
        .fold((0usize, 0.0), |(count, sum), ((_, _, k), _)| {
            (count + 1, sum + k as f64)
        });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Maps the rotation axis of the reference grid, its slice normal through
/// the point `centroid_index` (continuous reference indices), onto the
/// grid `other`. Returns the point where the axis crosses `other`'s slices
/// in `other`'s in-plane frame (x, y) = (i·s_i, j·s_j) mm, and whether a
/// positive angle must turn `other` the opposite way so that both grids
/// turn the same way in world space. Both grids' slice normals are the
/// cross product of their i and j directions, so `reversed` is set when
/// those normals point in opposite directions.
///
/// # Errors
///
/// A message when `other`'s direction matrix is singular, or when its
/// slice normal is not parallel to the reference's within
/// [`MAX_NORMAL_SINE`]: [`Perturber`] rotates each grid within its slices,
/// so the two rotations would be about different axes.
pub(super) fn rotation_axis_on(
    reference: &Geometry,
    centroid_index: [f64; 3],
    other: &Geometry,
) -> Result<RotationAxis, String> {
    let reference_normal = slice_normal(reference);
    let other_normal = slice_normal(other);
    let cross = cross(reference_normal, other_normal);
    let sine = cross.iter().map(|c| c * c).sum::<f64>().sqrt();
    // NaN, from a zero-length direction, is rejected as well.
    if sine.is_nan() || sine > MAX_NORMAL_SINE {
        return Err(format!(
            "its slice normal {other_normal:?} is not parallel to the reference's \
             {reference_normal:?} (sine of the angle {sine:.2e}, at most {MAX_NORMAL_SINE:e})"
        ));
    }
    let world = Affine::index_to_world(reference).apply(centroid_index);
    let other_from_world = Affine::index_to_world(other)
        .inverse()
        .ok_or_else(|| format!("its direction matrix {:?} is singular", other.direction))?;
    let index = other_from_world.apply(world);
    let dot: f64 = (0..3)
        .map(|axis| reference_normal[axis] * other_normal[axis])
        .sum();
    Ok(RotationAxis {
        centre_mm: [index[0] * other.spacing[0], index[1] * other.spacing[1]],
        reversed: dot < 0.0,
    })
}

/// Returns the unit normal of a grid's slices, the cross product of its i
/// and j directions.
fn slice_normal(geometry: &Geometry) -> [f64; 3] {
    let column = |axis: usize| std::array::from_fn(|row| geometry.direction[row][axis]);
    let normal = cross(column(0), column(1));
    let length = normal.iter().map(|c| c * c).sum::<f64>().sqrt();
    normal.map(|c| c / length)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Reruns the joint chain on one copy's perturbed sequences and returns
/// the regions of sequence `index`. With `all_on_grid` every copy is on
/// the reference grid with one shared mask, and the chain joins all of
/// them. Otherwise the chain clusters the reference copy alone and the
/// regions of another sequence are carried onto its own perturbed mask.
fn joint_copy_regions(
    space: &JointSpaceInputs<'_>,
    copies: &[(Volume, Roi)],
    all_on_grid: bool,
    index: usize,
    pseudonym: &str,
    repeat: u32,
    habitat: &HabitatCopyChain<'_>,
) -> Result<RegionMasks, String> {
    let reference_roi = &copies[0].1;
    let inputs: Vec<SequenceInput<'_>> = space
        .sequences
        .iter()
        .zip(copies)
        .map(|((name, _), (image, own_roi))| SequenceInput {
            sequence: name,
            image,
            // On one grid the masks agree; the reference's is used, so
            // that a spacing difference within tolerance cannot split them.
            roi: if all_on_grid { reference_roi } else { own_roi },
        })
        .collect();
    let on_grid: Vec<bool> = (0..inputs.len())
        .map(|position| all_on_grid || position == 0)
        .collect();
    let seed_space = copy_space_name(JOINT_SPACE, repeat);
    let supervoxels = joint_supervoxels(&inputs, &on_grid, pseudonym, &seed_space, habitat.chain)
        .map_err(|error| error.to_string())?;
    let habitats = reference_habitats(&supervoxels, habitat)?;
    let (masks, _mixed) = sequence_regions(
        &supervoxels,
        &supervoxels.sequences[index],
        &habitats,
        &habitat.model.names,
        habitat.geometric,
    )?;
    Ok(masks)
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;
    use radstudy_proto::v1::{HabitatModel, PerturbationSettings};

    use super::*;
    use crate::features::{ExtractionSettings, FeatureClass};
    use crate::habitat::assign::ValidHabitatModel;
    use crate::habitat::entropy::EntropySettings;
    use crate::habitat::pipeline::{ChainSettings, VoxelFeatures, space_columns};
    use crate::habitat::supervoxel::SupervoxelSettings;
    use crate::perturb::{Draws, PerturbationPlan, repeat_rng};

    const PSEUDONYM: &str = "A-0123456789abcdef";
    const IDENTITY: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    /// Checks whether a world point lies in an elongated lesion: an ellipse
    /// of semi-axes 22 mm along x and 8 mm along y, centred at (31.3, 33.7)
    /// mm, on the slices z = 2 to 8 mm.
    fn in_lesion(world: [f64; 3]) -> bool {
        let (dx, dy) = ((world[0] - 31.3) / 22.0, (world[1] - 33.7) / 8.0);
        dx * dx + dy * dy <= 1.0 && (1.5..8.5).contains(&world[2])
    }

    /// Returns a smooth blob with a texture at a world point, scaled by
    /// `gain`.
    fn intensity(world: [f64; 3], gain: f64) -> f64 {
        let (dx, dy) = (world[0] - 30.0, world[1] - 34.0);
        gain * (100.0
            + 60.0 * (-(dx * dx + dy * dy) / 200.0).exp()
            + 10.0 * (world[0] / 3.0).sin() * (world[1] / 4.0).cos()
            + 2.0 * world[2])
    }

    /// Samples the lesion and the image on a grid.
    fn sequence_on(geometry: Geometry, gain: f64) -> LoadedSequence {
        let to_world = Affine::index_to_world(&geometry);
        let [ni, nj, nk] = geometry.dims;
        let world =
            |(i, j, k): (usize, usize, usize)| to_world.apply([i as f64, j as f64, k as f64]);
        let data = Array3::from_shape_fn((ni, nj, nk), |index| intensity(world(index), gain));
        let mask = Array3::from_shape_fn((ni, nj, nk), |index| in_lesion(world(index)));
        let voxel_count = mask.iter().filter(|&&inside| inside).count();
        LoadedSequence {
            image: Volume {
                data,
                geometry,
                stored_as_integer: false,
            },
            pixel_type: crate::image::PixelType::Float64,
            roi: Roi { mask, voxel_count },
        }
    }

    /// Returns an MR-like grid: 64 × 64 × 6 voxels of 1 × 1 × 2 mm from the
    /// world origin.
    fn fine_grid() -> Geometry {
        Geometry {
            dims: [64, 64, 6],
            spacing: [1.0, 1.0, 2.0],
            origin: [0.0; 3],
            direction: IDENTITY,
        }
    }

    /// Returns a PET-like grid over the same region: 16 × 16 × 6 voxels of
    /// 4 × 4 × 2 mm. Its i axis runs along −x, so its (i, j) axes have the
    /// opposite handedness about z from the fine grid's.
    fn coarse_grid() -> Geometry {
        Geometry {
            dims: [16, 16, 6],
            spacing: [4.0, 4.0, 2.0],
            origin: [62.5, 1.5, 0.0],
            direction: [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    #[test]
    fn rotation_axis_same_grid_is_reference_centre() {
        let grid = fine_grid();
        let axis = rotation_axis_on(&grid, [31.25, 33.5, 2.0], &grid).expect("same grid");
        // Index (31.25, 33.5) at 1 mm spacing is (31.25, 33.5) mm. The
        // inverse map of a unit grid is exact here, hence the 1e-12.
        assert!((axis.centre_mm[0] - 31.25).abs() < 1e-12, "{axis:?}");
        assert!((axis.centre_mm[1] - 33.5).abs() < 1e-12, "{axis:?}");
        assert!(!axis.reversed);
    }

    #[test]
    fn rotation_axis_coarse_mirrored_grid() {
        // Fine index (31.25, 33.5, 2) is world (31.25, 33.5, 4) mm. On the
        // coarse grid, x = 62.5 − 4 i gives i = 7.8125 and y = 1.5 + 4 j
        // gives j = 8, so the in-plane centre is (31.25, 32) mm. Its i axis
        // runs along −x, so the slice normal is −z and the turn reverses.
        let axis = rotation_axis_on(&fine_grid(), [31.25, 33.5, 2.0], &coarse_grid())
            .expect("parallel normals");
        assert!((axis.centre_mm[0] - 31.25).abs() < 1e-12, "{axis:?}");
        assert!((axis.centre_mm[1] - 32.0).abs() < 1e-12, "{axis:?}");
        assert!(axis.reversed);
    }

    #[test]
    fn rotation_axis_tilted_grid_is_rejected() {
        // A grid turned by 1° about x: its slice normal leans 1° from z,
        // a sine of 0.0175, above the limit of 1e-3.
        let (sin, cos) = 1f64.to_radians().sin_cos();
        let tilted = Geometry {
            direction: [[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]],
            ..coarse_grid()
        };
        let error = rotation_axis_on(&fine_grid(), [31.0, 33.0, 2.0], &tilted).unwrap_err();
        assert!(error.contains("not parallel"), "{error}");
    }

    /// Returns the share of `other`'s ROI voxels whose centre lies in a
    /// voxel of `reference`'s ROI (nearest voxel by world position).
    fn share_inside(other: &(Volume, Roi), reference: &(Volume, Roi)) -> f64 {
        let to_world = Affine::index_to_world(&other.0.geometry);
        let from_world = Affine::index_to_world(&reference.0.geometry)
            .inverse()
            .expect("regular grid");
        let dims = reference.0.geometry.dims;
        let mut inside = 0;
        for ((i, j, k), &member) in other.1.mask.indexed_iter() {
            if !member {
                continue;
            }
            let index = from_world.apply(to_world.apply([i as f64, j as f64, k as f64]));
            let voxel: Option<Vec<usize>> = (0..3)
                .map(|axis| {
                    let rounded = index[axis].round();
                    (rounded >= 0.0 && rounded < dims[axis] as f64).then_some(rounded as usize)
                })
                .collect();
            if voxel.is_some_and(|v| reference.1.mask[[v[0], v[1], v[2]]]) {
                inside += 1;
            }
        }
        inside as f64 / other.1.voxel_count as f64
    }

    #[test]
    fn coarse_copy_turns_with_reference() {
        let fine = sequence_on(fine_grid(), 1.0);
        let coarse = sequence_on(coarse_grid(), 2.0);
        let plan = PerturbationPlan {
            repeats: 2,
            max_angle_deg: 40.0,
            max_volume_change_mm: 0.0,
            noise: false,
        }
        .validate()
        .expect("valid plan");
        // The first seed whose copy 0 turns by more than 25°, so that a
        // wrong axis or direction moves the elongated lesion far.
        let seed = (0..)
            .find(|&seed| {
                Draws::sample(&plan, &mut repeat_rng(seed, 0))
                    .angle_deg
                    .abs()
                    > 25.0
            })
            .expect("some seed draws a large angle");

        let reference = Perturber::new(&fine.image, &fine.roi, &plan).expect("valid input");
        let [x, y] = reference.centre_mm();
        let axis = rotation_axis_on(
            &fine.image.geometry,
            [x, y, mean_slice(&fine.roi)],
            &coarse.image.geometry,
        )
        .expect("parallel normals");
        let other =
            Perturber::about_axis(&coarse.image, &coarse.roi, &plan, axis).expect("valid input");
        let wrong_way = RotationAxis {
            reversed: !axis.reversed,
            ..axis
        };
        let mirrored = Perturber::about_axis(&coarse.image, &coarse.roi, &plan, wrong_way)
            .expect("valid input");

        let reference_copy = reference.copy(seed, 0).expect("copy");
        let agreeing = share_inside(&other.copy(seed, 0).expect("copy"), &reference_copy);
        let disagreeing = share_inside(&mirrored.copy(seed, 0).expect("copy"), &reference_copy);
        // Bounds from running this test: 0.88 of the coarse voxels land in
        // the fine copy when both turn the same way. The rest lie on the
        // border, where the 4 mm and 1 mm masks round differently. Turning
        // the coarse copy the other way leaves 0.47 inside, so bounds of
        // 0.8 and 0.65 tell the two cases apart with room on both sides.
        assert!(
            agreeing >= 0.8,
            "same turn: share {agreeing}, opposite {disagreeing}"
        );
        assert!(
            disagreeing <= 0.65,
            "opposite turn: share {disagreeing}, same {agreeing}"
        );
    }

    fn chain() -> ChainSettings {
        ChainSettings {
            entropy: EntropySettings {
                window_edge: 3,
                ..EntropySettings::default()
            }
            .validate()
            .expect("valid"),
            supervoxels: SupervoxelSettings {
                supervoxels: 10,
                ..SupervoxelSettings::default()
            }
            .validate()
            .expect("valid"),
            study_seed: 5,
        }
    }

    #[test]
    fn joint_copies_on_two_grids_give_rows() {
        let sequences = vec![
            ("T1".to_string(), sequence_on(fine_grid(), 1.0)),
            ("PET".to_string(), sequence_on(coarse_grid(), 2.0)),
        ];
        let tolerance = GeometryTolerance::default();
        let space = JointSpaceInputs {
            sequences: &sequences,
            tolerance: &tolerance,
        };
        let names: Vec<String> = sequences.iter().map(|(name, _)| name.clone()).collect();
        let columns = space_columns(VoxelFeatures::Joint, &names);
        // Splits at the middle of every column, as the service test's
        // model does, so that both habitats get voxels.
        let model = HabitatModel {
            space: JOINT_SPACE.into(),
            columns: columns.clone(),
            mean: vec![0.5; 4],
            scale: vec![0.25; 4],
            centroids: vec![-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0],
            names: vec!["inner".into(), "marginal".into()],
            ..HabitatModel::default()
        };
        let model = ValidHabitatModel::from_proto(0, &model, &columns).expect("valid model");
        let chain = chain();
        let habitat = HabitatCopyChain {
            chain: &chain,
            model: &model,
            geometric: None,
            min_region_voxels: 1,
        };
        let perturbation = RoundPerturbation::from_proto(&PerturbationSettings {
            repeats: 3,
            max_angle_deg: 15.0,
            max_volume_change_mm: 1.5,
            noise: true,
            seed: 42,
        })
        .expect("valid settings");
        let settings = FeatureRequest::from_settings(ExtractionSettings {
            classes: vec![FeatureClass::Shape, FeatureClass::FirstOrder],
            bin_width: 10.0,
            label: 1,
        });
        let regions = vec!["whole".to_string(), "inner".to_string()];

        for sequence in ["T1", "PET"] {
            let copies = joint_habitat_copy_features(
                sequence,
                PSEUDONYM,
                &space,
                &perturbation,
                &settings,
                &habitat,
                &regions,
            );
            assert_eq!(copies.len(), regions.len(), "{sequence}");
            for (region, result) in &copies {
                let rows = match result {
                    Ok(rows) => rows,
                    Err(failure) => panic!("{sequence} {region}: {failure}"),
                };
                assert_eq!(rows.len(), 3, "{sequence} {region}: one row per copy");
                for row in rows {
                    assert_eq!(row.len(), settings.feature_names().len());
                    assert!(row.iter().all(|v| v.is_finite()), "{sequence} {region}");
                }
                // Noise and rotation change every copy.
                assert_ne!(rows[0], rows[1], "{sequence} {region}");
            }
        }
    }
}
