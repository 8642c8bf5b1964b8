use super::*;
use crate::features::discretize::Discretization;
use crate::features::resegment::ResegmentMode;
use crate::features::texture_angles::{TextureAngles, WeightingNorm};
use crate::filters::ImageType;

#[test]
fn parse_empty_file_gives_pyradiomics_defaults() {
    let parsed = parse_parameters("").expect("empty file is valid");
    // Every class but shape2D, which PyRadiomics skips without force2D.
    assert_eq!(parsed.settings.classes, FeatureClass::ALL);
    assert_eq!(parsed.options.texture_angles, TextureAngles::default());
    assert_eq!(parsed.settings.bin_width, 25.0);
    assert_eq!(parsed.settings.label, 1);
    assert_eq!(
        parsed.options.discretization,
        Discretization::FixedBinWidth(25.0)
    );
    assert_eq!(parsed.options.voxel_array_shift, 0.0);
    assert!(parsed.options.selection.is_empty());
}

#[test]
fn parse_full_file_maps_every_setting() {
    let text = "
imageType:
  Original: {binWidth: 10}
featureClass:
  firstorder: [Mean, Median]
  glcm:
setting:
  binWidth: 5
  label: 2
  normalize: true
  normalizeScale: 100
  removeOutliers: 3
  resegmentRange: [3, -3]
  resegmentMode: sigma
  voxelArrayShift: 1000
  distances: [1, 2]
  symmetricalGLCM: false
  gldm_a: 1
  minimumROIDimensions: 1
  minimumROISize: 10
  geometryTolerance: 0.001
  correctMask: true
  additionalInfo: false
  preCrop: true
  padDistance: 5
  interpolator: sitkBSpline
  force2D: false
  force2Ddimension: 0
";
    let parsed = parse_parameters(text).expect("valid file");
    // imageType.Original settings override `setting`, as in PyRadiomics.
    assert_eq!(parsed.settings.bin_width, 10.0);
    assert_eq!(parsed.settings.label, 2);
    assert_eq!(
        parsed.settings.classes,
        [FeatureClass::FirstOrder, FeatureClass::Glcm]
    );
    assert_eq!(
        parsed.options.selection.get(&FeatureClass::FirstOrder),
        Some(&vec!["Mean", "Median"])
    );
    assert!(!parsed.options.selection.contains_key(&FeatureClass::Glcm));
    let normalization = parsed.options.normalization.expect("normalize is on");
    assert_eq!(normalization.scale, 100.0);
    assert_eq!(normalization.remove_outliers, Some(3.0));
    let resegmentation = parsed.options.resegmentation.expect("range is set");
    assert_eq!(resegmentation.mode, ResegmentMode::Sigma);
    assert_eq!(
        (resegmentation.lower, resegmentation.upper),
        (-3.0, Some(3.0))
    );
    assert_eq!(parsed.options.voxel_array_shift, 1000.0);
    assert_eq!(parsed.options.glcm.distances, [1, 2]);
    assert!(!parsed.options.glcm.symmetric);
    assert_eq!(parsed.options.gldm.alpha, 1.0);
    assert_eq!(parsed.options.ngtdm.distances, [1, 2]);
    assert_eq!(parsed.options.minimum_roi_dimensions, 1);
    assert_eq!(parsed.options.minimum_roi_size, Some(10));
    assert_eq!(parsed.options.geometry_tolerance_mm, Some(0.001));
}

#[test]
fn parse_bin_count_wins_over_bin_width() {
    let parsed = parse_parameters("featureClass: {glcm: }\nsetting: {binWidth: 5, binCount: 32}")
        .expect("valid file");
    assert_eq!(
        parsed.options.discretization,
        Discretization::FixedBinCount(32)
    );
}

#[test]
fn parse_unknown_setting_key_lists_close_keys() {
    let error = parse_parameters("setting:\n  binwidth: 5\n").unwrap_err();
    assert_eq!(
        error,
        ParamsError::UnknownKey {
            section: "setting",
            key: "binwidth".into(),
            close: vec!["binWidth"],
        }
    );
}

#[test]
fn parse_unknown_top_level_and_feature_are_named() {
    assert!(matches!(
        parse_parameters("settings: {}").unwrap_err(),
        ParamsError::UnknownKey { section: "top level", key, close } if key == "settings" && close == ["setting"]
    ));
    assert!(matches!(
        parse_parameters("featureClass: {firstorder: [Maen]}").unwrap_err(),
        ParamsError::UnknownFeature { class: "firstorder", feature, close } if feature == "Maen" && close.contains(&"Mean")
    ));
}

#[test]
fn parse_unimplemented_settings_are_errors() {
    for (text, key) in [
        ("imageType: {LBP3D: {}}", "imageType.LBP3D"),
        ("imageType: {Wavelet: {wavelet: haar}}", "wavelet"),
        (
            "setting: {interpolator: sitkLanczosWindowedSinc}",
            "interpolator",
        ),
        ("setting: {interpolator: 9}", "interpolator"),
        ("setting: {lbp2DRadius: 1}", "lbp2DRadius"),
        (
            "imageType: {Wavelet: {}}\nsetting: {force2D: true}",
            "imageType.Wavelet",
        ),
        (
            "setting: {force2D: true, ibsiMode: true}\nfeatureClass: {glcm: }",
            "ibsiMode",
        ),
        ("voxelSetting: {kernelRadius: 2}", "voxelSetting"),
        ("setting: {binCount: 16}", "binCount"),
    ] {
        match parse_parameters(text) {
            Err(ParamsError::NotImplemented { key: found, .. }) => assert_eq!(found, key, "{text}"),
            other => panic!("{text}: expected NotImplemented for {key}, got {other:?}"),
        }
    }
}

#[test]
fn parse_force2d_selects_out_of_plane_axis() {
    // force2Ddimension counts PyRadiomics' (z, y, x) axes, and array axes here are (i, j, k).
    for (dimension, axis) in [(0, 2), (1, 1), (2, 0)] {
        let text = format!(
            "featureClass: {{glcm: }}\nsetting: {{force2D: true, force2Ddimension: {dimension}}}"
        );
        let parsed = parse_parameters(&text).expect("force2D parses");
        assert_eq!(
            parsed.options.texture_angles.out_of_plane_axis,
            Some(axis),
            "{text}"
        );
    }
    // force2Ddimension alone changes nothing, as in PyRadiomics.
    let parsed = parse_parameters("setting: {force2D: false, force2Ddimension: 1}")
        .expect("force2Ddimension without force2D parses");
    assert_eq!(parsed.options.texture_angles.out_of_plane_axis, None);
    assert!(matches!(
        parse_parameters("setting: {force2D: true, force2Ddimension: 3}").unwrap_err(),
        ParamsError::InvalidValue { key, .. } if key == "force2Ddimension"
    ));
}

#[test]
fn parse_weighting_norm_names() {
    for norm in WeightingNorm::ALL {
        let text = format!("setting: {{weightingNorm: {}}}", norm.name());
        let parsed = parse_parameters(&text).expect("weightingNorm parses");
        assert_eq!(parsed.options.texture_angles.weighting, Some(norm));
    }
    let parsed = parse_parameters("setting: {weightingNorm: null}").expect("null is the default");
    assert_eq!(parsed.options.texture_angles.weighting, None);
    for text in [
        "setting: {weightingNorm: chebyshev}",
        "setting: {weightingNorm: 1}",
    ] {
        assert!(
            matches!(
                parse_parameters(text).unwrap_err(),
                ParamsError::InvalidValue { key, .. } if key == "weightingNorm"
            ),
            "{text}"
        );
    }
}

#[test]
fn parse_shape2d_follows_force2d() {
    // Listed without force2D: an error, where PyRadiomics would skip it with a warning.
    assert!(matches!(
        parse_parameters("featureClass: {shape2D: }").unwrap_err(),
        ParamsError::InvalidValue { key, .. } if key == "featureClass.shape2D"
    ));
    let parsed = parse_parameters("featureClass: {shape2D: }\nsetting: {force2D: true}")
        .expect("shape2D with force2D parses");
    assert_eq!(parsed.settings.classes, [FeatureClass::Shape2D]);
    // Without a featureClass section, force2D enables shape2D as in PyRadiomics.
    let parsed = parse_parameters("setting: {force2D: true}").expect("force2D parses");
    assert_eq!(parsed.settings.classes, FeatureClass::WITH_SHAPE_2D);
    // The deprecated SphericalDisproportion can be named, as in PyRadiomics.
    let parsed = parse_parameters(
        "featureClass: {shape2D: [SphericalDisproportion]}\nsetting: {force2D: true}",
    )
    .expect("deprecated shape2D feature parses");
    assert_eq!(
        parsed.options.selection.get(&FeatureClass::Shape2D),
        Some(&vec!["SphericalDisproportion"])
    );
}

#[test]
fn parse_resampling_reads_spacing_interpolator_and_pad() {
    use crate::image::resample::{Interpolator, ResampleSettings};
    let parsed = parse_parameters(
        "setting: {resampledPixelSpacing: [2, 2, 0], interpolator: sitkLinear, padDistance: 3}",
    )
    .expect("resampling settings parse");
    assert_eq!(
        parsed.options.resampling,
        Some(ResampleSettings {
            spacing: [2.0, 2.0, 0.0],
            interpolator: Interpolator::Linear,
            pad_distance: 3.0,
        })
    );
    // PyRadiomics' defaults: B-spline (SimpleITK number 3) and 5 voxels of padding.
    let parsed = parse_parameters("setting: {resampledPixelSpacing: [1, 1, 1], interpolator: 3}")
        .expect("numbered interpolator parses");
    let resampling = parsed.options.resampling.expect("resampling set");
    assert_eq!(resampling.interpolator, Interpolator::BSpline);
    assert_eq!(resampling.pad_distance, 5.0);
    assert!(matches!(
        parse_parameters("setting: {resampledPixelSpacing: [1, -1, 1]}").unwrap_err(),
        ParamsError::InvalidValue { key, .. } if key == "resampledPixelSpacing"
    ));
}

#[test]
fn parse_null_setting_means_default() {
    let parsed = parse_parameters("setting: {resampledPixelSpacing: null, removeOutliers: null}")
        .expect("null settings are PyRadiomics defaults");
    assert!(parsed.options.normalization.is_none());
}

#[test]
fn parse_invalid_values_name_key() {
    for (text, key) in [
        ("setting: {binWidth: 0}", "binWidth"),
        ("setting: {label: 0}", "label"),
        ("setting: {normalize: yes please}", "normalize"),
        ("setting: {resegmentMode: percent}", "resegmentMode"),
        ("setting: {resegmentRange: [1, 2, 3]}", "resegmentRange"),
        ("setting: {distances: [0]}", "distances"),
        ("setting: {interpolator: sitkCubic}", "interpolator"),
        ("imageType: {LoG: {}}", "sigma"),
        ("imageType: {LoG: {sigma: []}}", "sigma"),
        ("imageType: {LoG: {sigma: [1.0, 0]}}", "sigma"),
        ("imageType: {LoG: {sigma: [one]}}", "sigma"),
        ("imageType: {Wavelet: {level: 0}}", "level"),
        ("imageType: {Wavelet: {start_level: -1}}", "start_level"),
        (
            "imageType: {Gradient: {gradientUseSpacing: 1}}",
            "gradientUseSpacing",
        ),
        ("imageType: {Square: 3}", "imageType.Square"),
    ] {
        match parse_parameters(text) {
            Err(ParamsError::InvalidValue { key: found, .. }) => assert_eq!(found, key, "{text}"),
            other => panic!("{text}: expected InvalidValue for {key}, got {other:?}"),
        }
    }
}

#[test]
fn parse_image_types_with_own_settings() {
    let text = "
imageType:
  Gradient: {gradientUseSpacing: false}
  LoG: {sigma: [1, 2.5], binWidth: 5}
  Wavelet: {start_level: 1, level: 2}
  Original: {}
  Square:
setting:
  binWidth: 10
  sigma: [3.0]
";
    let parsed = parse_parameters(text).expect("valid file");
    let keys: Vec<&str> = parsed
        .image_types
        .iter()
        .map(|spec| spec.image_type.key())
        .collect();
    assert_eq!(keys, ["Original", "LoG", "Wavelet", "Square", "Gradient"]);

    // LoG's own sigma and binWidth override `setting`; the others keep binWidth 10.
    let log = &parsed.image_types[1];
    assert_eq!(
        log.image_type.image_names(),
        ["log-sigma-1-mm-3D", "log-sigma-2-5-mm-3D"]
    );
    assert_eq!(
        log.options.discretization,
        Discretization::FixedBinWidth(5.0)
    );
    assert_eq!(
        parsed.image_types[0].options.discretization,
        Discretization::FixedBinWidth(10.0)
    );
    assert_eq!(
        parsed.image_types[2].image_type,
        ImageType::Wavelet {
            start_level: 1,
            level: 2
        }
    );
    assert_eq!(
        parsed.image_types[4].image_type,
        ImageType::Gradient { use_spacing: false }
    );
}

#[test]
fn parse_without_image_type_enables_original_only() {
    let parsed = parse_parameters("setting: {binWidth: 5}").expect("valid file");
    assert_eq!(parsed.image_types.len(), 1);
    assert_eq!(parsed.image_types[0].image_type, ImageType::Original);
    assert_eq!(
        parsed.image_types[0].options.discretization,
        Discretization::FixedBinWidth(5.0)
    );
}
