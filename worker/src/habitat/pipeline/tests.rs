use ndarray::Array3;

use super::*;
use crate::habitat::entropy::EntropySettings;
use crate::habitat::supervoxel::SupervoxelSettings;

const PSEUDONYM: &str = "A-0123456789abcdef";

fn settings() -> ChainSettings {
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

/// Builds a 12 × 12 × 6 volume of 1 mm voxels with a textured pattern scaled
/// by `gain`, and a 6 × 6 × 4 box lesion.
fn phantom(gain: f64, origin: [f64; 3]) -> (Volume, Roi) {
    let data = Array3::from_shape_fn((12, 12, 6), |(i, j, k)| {
        gain * ((i * 7 + j * 3 + k * 5) % 11) as f64 + i as f64
    });
    let mask = Array3::from_shape_fn((12, 12, 6), |(i, j, k)| {
        (3..9).contains(&i) && (3..9).contains(&j) && (1..5).contains(&k)
    });
    let image = Volume {
        data,
        geometry: Geometry {
            dims: [12, 12, 6],
            spacing: [1.0; 3],
            origin,
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        },
        stored_as_integer: false,
    };
    (
        image,
        Roi {
            mask,
            voxel_count: 144,
        },
    )
}

#[test]
fn joint_matching_grids_join_columns() {
    let (first, first_roi) = phantom(1.0, [0.0; 3]);
    let (second, second_roi) = phantom(3.0, [0.0; 3]);
    let inputs = [
        SequenceInput {
            sequence: "T1",
            image: &first,
            roi: &first_roi,
        },
        SequenceInput {
            sequence: "T2",
            image: &second,
            roi: &second_roi,
        },
    ];
    let joint = joint_supervoxels(&inputs, &[true, true], PSEUDONYM, JOINT_SPACE, &settings())
        .expect("joint supervoxels");
    assert!(!joint.reference_only);
    assert_eq!(joint.descriptors.ncols(), 4);
    assert_eq!(joint.voxel_counts.iter().sum::<usize>(), 144);
    assert!(joint.descriptors.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(joint.sequences.iter().all(|s| s.on_space_grid));

    let again = joint_supervoxels(&inputs, &[true, true], PSEUDONYM, JOINT_SPACE, &settings())
        .expect("joint supervoxels");
    assert_eq!(again, joint, "same seed, same supervoxels");
}

#[test]
fn joint_shifted_grid_samples_other_sequence() {
    let (first, first_roi) = phantom(1.0, [0.0; 3]);
    // Shifted by one voxel along i: the reference voxel i sits in the
    // other grid's voxel i - 1, so the box lesions overlap on 5 of 6
    // i-planes.
    let (second, second_roi) = phantom(3.0, [1.0, 0.0, 0.0]);
    let inputs = [
        SequenceInput {
            sequence: "T1",
            image: &first,
            roi: &first_roi,
        },
        SequenceInput {
            sequence: "T2",
            image: &second,
            roi: &second_roi,
        },
    ];
    let joint = joint_supervoxels(&inputs, &[true, false], PSEUDONYM, JOINT_SPACE, &settings())
        .expect("joint supervoxels");
    assert!(joint.reference_only);
    assert!(!joint.sequences[1].on_space_grid);
    assert_eq!(joint.sequences[1].maps.voxels.len(), 144);
    // Reference columns come from the clustering and are always set.
    for row in joint.descriptors.rows() {
        assert!(row[0].is_finite());
        assert!(row[1].is_finite());
    }
    let sampled = joint
        .descriptors
        .column(2)
        .iter()
        .filter(|v| v.is_finite())
        .count();
    assert!(
        sampled >= 1,
        "at least one supervoxel overlaps the other lesion"
    );
}
