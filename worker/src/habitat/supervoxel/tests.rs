use super::*;

const KEY: &str = "0123456789abcdef";

/// Builds an entropy map and a depth map over voxels along one line,
/// with the given features and a depth δ that rises linearly to 1.
fn maps(intensity: Vec<f64>, entropy: Vec<f64>) -> (EntropyMap, RoiDepth) {
    let n = intensity.len();
    let voxels: Vec<[usize; 3]> = (0..n).map(|i| [i, 0, 0]).collect();
    let depth_mm: Vec<f64> = (0..n).map(|i| (i + 1) as f64).collect();
    let map = EntropyMap {
        voxels: voxels.clone(),
        intensity,
        entropy: entropy.clone(),
        entropy_rescaled: entropy,
        range: (0.0, 1.0),
        window_positions: 729,
    };
    let depth = RoiDepth {
        voxels,
        normalised: depth_mm.iter().map(|&d| d / n as f64).collect(),
        max_depth_mm: n as f64,
        depth_mm,
    };
    (map, depth)
}

/// n voxels with pairwise distinct vectors on a 2-D grid in [0, 1]².
fn distinct_maps(n: usize) -> (EntropyMap, RoiDepth) {
    let side = (n as f64).sqrt().ceil() as usize;
    let intensity = (0..n).map(|i| (i % side) as f64 / side as f64).collect();
    let entropy = (0..n).map(|i| (i / side) as f64 / side as f64).collect();
    maps(intensity, entropy)
}

fn defaults() -> ValidSupervoxelSettings {
    SupervoxelSettings::default()
        .validate()
        .expect("defaults are valid")
}

#[test]
fn supervoxels_large_lesion_uses_requested_k() {
    let (map, depth) = distinct_maps(1000);
    let result =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(result.limit, SupervoxelLimit::Requested);
    assert_eq!(result.k_effective, 40);
    assert_eq!(result.count(), 40);
    assert_eq!(result.descriptors.dim(), (40, 2));
    assert!(result.voxel_counts.iter().all(|&n| n >= 1));
}

#[test]
fn supervoxels_small_lesion_limited_by_voxel_count() {
    // 60 voxels / 5 = 12 < 40 and < 60 distinct vectors.
    let (map, depth) = distinct_maps(60);
    let result =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(result.limit, SupervoxelLimit::VoxelCount);
    assert_eq!(result.count(), 12);
}

#[test]
fn supervoxels_limited_by_distinct_vectors() {
    // 300 voxels but only three distinct [Ĩ, Ê] vectors.
    let intensity = (0..300).map(|i| [0.0, 0.5, 1.0][i % 3]).collect();
    let entropy = (0..300).map(|i| [0.2, 0.2, 0.9][i % 3]).collect();
    let (map, depth) = maps(intensity, entropy);
    let result =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(result.limit, SupervoxelLimit::DistinctVectors);
    assert_eq!(result.count(), 3);
    assert_eq!(result.voxel_counts, vec![100, 100, 100]);
    // Each mean of 100 equal values is within a few ulp of the value,
    // so the 300 squared deviations sum to far below 1e-25.
    assert!(result.inertia < 1e-25, "inertia {}", result.inertia);
}

#[test]
fn supervoxels_below_two_gives_one_supervoxel() {
    // 9 voxels: ⌊9 / 5⌋ = 1, so the lesion is one supervoxel.
    let (map, depth) = distinct_maps(9);
    let result =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(result.limit, SupervoxelLimit::VoxelCount);
    assert_eq!(result.k_effective, 1);
    assert_eq!(result.count(), 1);
    assert_eq!(result.labels, vec![0; 9]);
    assert_eq!(result.voxel_counts, vec![9]);
    let mean_intensity = map.intensity.iter().sum::<f64>() / 9.0;
    assert_eq!(result.descriptors[[0, 0]], mean_intensity);

    // A constant lesion has one distinct vector.
    let (map, depth) = maps(vec![0.0; 50], vec![0.0; 50]);
    let result =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(result.limit, SupervoxelLimit::DistinctVectors);
    assert_eq!(result.count(), 1);
    assert_eq!(result.inertia, 0.0);
}

#[test]
fn supervoxels_sums_add_up_to_lesion() {
    let (map, depth) = distinct_maps(500);
    let result = build_supervoxels(&map, &depth, &defaults(), 7, "T2FS", KEY).expect("valid input");
    assert_eq!(result.voxel_counts.iter().sum::<usize>(), 500);
    // Sums of 500 values in [0, 1] in another order: rounding below
    // 500 · 2⁻⁵² · 500 ≈ 6e-11.
    let depth_total: f64 = depth.normalised.iter().sum();
    let entropy_total: f64 = map.entropy_rescaled.iter().sum();
    assert!((result.depth_sums.iter().sum::<f64>() - depth_total).abs() < 1e-10);
    assert!((result.entropy_sums.iter().sum::<f64>() - entropy_total).abs() < 1e-10);
    // Each descriptor is its members' mean.
    for supervoxel in 0..result.count() {
        let members: Vec<usize> = (0..500)
            .filter(|&v| result.labels[v] as usize == supervoxel)
            .collect();
        assert_eq!(members.len(), result.voxel_counts[supervoxel]);
        let mean = members
            .iter()
            .map(|&v| map.entropy_rescaled[v])
            .sum::<f64>()
            / members.len() as f64;
        assert!((result.descriptors[[supervoxel, 1]] - mean).abs() < 1e-15);
        let entropy_sum: f64 = members.iter().map(|&v| map.entropy_rescaled[v]).sum();
        assert_eq!(result.entropy_sums[supervoxel], entropy_sum);
    }
}

#[test]
fn supervoxels_same_inputs_are_identical() {
    let (map, depth) = distinct_maps(400);
    let first =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    let second =
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY).expect("valid input");
    assert_eq!(first, second);
    let other = build_supervoxels(&map, &depth, &defaults(), 42, "PET", KEY).expect("valid input");
    assert_ne!(first.seed, other.seed);
}

#[test]
fn patient_seed_matches_python_hashlib() {
    // Expected values from Python 3.11's hashlib and struct:
    //   m = b"radstudy-supervoxel-seed-v1\0" + pack("<Q", seed)
    //       + pack("<Q", len(seq)) + seq + pack("<Q", len(key)) + key
    //   unpack("<Q", sha256(m).digest()[:8])[0]
    assert_eq!(patient_seed(42, "MR_T1", KEY), 10702603508151785702);
    assert_eq!(
        patient_seed(0, "T2FS", "ffffffffffffffff"),
        9618498292061954986
    );
}

#[test]
fn patient_key_drops_center_prefix() {
    assert_eq!(patient_key("A-0123456789abcdef"), Some(KEY));
    assert_eq!(patient_key("site-b-0123456789abcdef"), Some(KEY));
    assert_eq!(patient_key("0123456789abcdef"), None);
    assert_eq!(patient_key("A-0123456789ABCDEF"), None);
    assert_eq!(patient_key("A-0123"), None);
}

#[test]
fn supervoxels_full_pseudonym_is_rejected() {
    let (map, depth) = distinct_maps(20);
    let error = build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", "A-0123456789abcdef")
        .unwrap_err();
    assert!(
        matches!(error, SupervoxelError::InvalidPatientKey { .. }),
        "{error}"
    );
}

#[test]
fn supervoxels_short_entropy_vector_is_rejected() {
    // A map built by hand with one Ê missing: 20 voxels, 20 Ĩ, 19 Ê.
    let (mut map, depth) = distinct_maps(20);
    map.entropy_rescaled.pop();
    assert_eq!(
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY),
        Err(SupervoxelError::MalformedMap {
            voxels: 20,
            intensities: 20,
            entropies: 19,
        })
    );
}

#[test]
fn supervoxels_mismatched_maps_are_rejected() {
    let (map, _) = distinct_maps(20);
    let (_, depth) = distinct_maps(21);
    assert_eq!(
        build_supervoxels(&map, &depth, &defaults(), 42, "MR_T1", KEY),
        Err(SupervoxelError::VoxelMismatch {
            entropy_voxels: 20,
            depth_voxels: 21
        })
    );
}

#[test]
fn supervoxel_settings_invalid_values_name_field() {
    let cases = [
        (
            SupervoxelSettings {
                supervoxels: 9,
                ..SupervoxelSettings::default()
            },
            "supervoxels",
        ),
        (
            SupervoxelSettings {
                supervoxels: 201,
                ..SupervoxelSettings::default()
            },
            "supervoxels",
        ),
        (
            SupervoxelSettings {
                min_voxels_per_supervoxel: 0,
                ..SupervoxelSettings::default()
            },
            "min_voxels_per_supervoxel",
        ),
        (
            SupervoxelSettings {
                n_init: 0,
                ..SupervoxelSettings::default()
            },
            "n_init",
        ),
        (
            SupervoxelSettings {
                max_iter: 0,
                ..SupervoxelSettings::default()
            },
            "max_iter",
        ),
        (
            SupervoxelSettings {
                tol: -1.0,
                ..SupervoxelSettings::default()
            },
            "tol",
        ),
    ];
    for (settings, field) in cases {
        let error = settings.validate().unwrap_err();
        assert!(error.to_string().contains(field), "{field}: {error}");
    }
}
