//! Features of every enabled image type of a parameter file, in the order of steps of
//! PyRadiomics' `RadiomicsFeatureExtractor.execute`. The whole image is normalised, then
//! resampled with the ROI when `resampledPixelSpacing` is set, then cropped when
//! `preCrop` is set, and the ROI is resegmented on it. Shape is computed
//! once on the original ROI. Each filtered image is then derived from the normalised
//! image, and the other classes are computed on it with that image type's options.
//!
//! Feature names are `<image type>_<class>_<Feature>`, such as
//! `log-sigma-1-0-mm-3D_firstorder_Mean`. Shape is always `original_shape_<Feature>`.

use super::{
    ExtractionOptions, ExtractionSettings, FeatureClass, FeatureError, MAX_GREY_LEVELS, discretize,
    firstorder, glcm, gldm, glrlm, glszm, ngtdm, normalize, resegment, shape,
};
use crate::filters::{ImageType, VoxelBox, derive_images};
use crate::image::Volume;
use crate::mask::{Roi, roi_values};

/// One enabled image type with the options its features use (`setting` overridden by the
/// image type's own mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTypeSpec {
    /// The filter and its settings.
    pub image_type: ImageType,
    /// Bin width or count, shift, texture settings and feature selection of this type.
    pub options: ExtractionOptions,
}

/// Computes the features of one ROI for every image type. `options` sets the
/// normalisation, resegmentation, shape and selection of shape features; each image type's
/// own options set its other classes. Returns `(column name, value)` pairs: shape, then
/// each image type in the given order, and rejects any value that is not finite. A LoG σ
/// that the image is too small for yields no columns, as in PyRadiomics.
pub fn compute_image_types(
    image: &Volume,
    roi: &Roi,
    settings: &ExtractionSettings,
    options: &ExtractionOptions,
    image_types: &[ImageTypeSpec],
) -> Result<Vec<(String, f64)>, FeatureError> {
    let normalized;
    let image = match &options.normalization {
        Some(normalization) => {
            normalized = normalize::normalize(image, normalization)?;
            &normalized
        }
        None => image,
    };
    let resampled;
    let (image, roi) = match &options.resampling {
        Some(resampling) => {
            resampled = resample_roi(image, roi, resampling, options.minimum_roi_dimensions)?;
            (&resampled.0, &resampled.1)
        }
        None => (image, roi),
    };
    let cropped;
    let (image, roi) = match options.pre_crop_pad_voxels {
        Some(pad_voxels) => {
            cropped = super::pre_crop::pre_crop(image, roi, pad_voxels);
            (&cropped.0, &cropped.1)
        }
        None => (image, roi),
    };

    let values =
        roi_values(image, roi).map_err(|count| FeatureError::NonFiniteIntensity { count })?;
    let resegmented;
    let feature_roi = match &options.resegmentation {
        Some(resegmentation) => {
            resegmented = resegment::resegment(&image.data, roi, &values, resegmentation)?;
            &resegmented
        }
        None => roi,
    };
    let shape_roi = if options.resegment_shape {
        feature_roi
    } else {
        roi
    };
    if options.convention == super::ibsi::Convention::Ibsi {
        // IBSI mode computes its families on the original image only.
        return super::compute_ibsi(image, shape_roi, feature_roi, settings, options);
    }

    let mut output = Vec::new();
    if settings.classes.contains(&FeatureClass::Shape) {
        let features = shape::compute(shape_roi.mask.view(), image.geometry.spacing);
        push_selected(
            &mut output,
            "original",
            FeatureClass::Shape,
            features,
            options,
        )?;
    }
    // The features read only ROI voxels, so the filters compute their output on the
    // ROI's bounding box alone, and the ROI is cut to the same box.
    let region =
        VoxelBox::around(feature_roi).unwrap_or_else(|| VoxelBox::whole(image.geometry.dims));
    let region_roi = region.crop_roi(feature_roi);
    for spec in image_types {
        let span = tracing::debug_span!("image_type", image_type = spec.image_type.key());
        let _entered = span.enter();
        for derived in derive_images(image, &spec.image_type, &region)? {
            let features = intensity_classes(
                &derived.volume,
                &region_roi,
                &settings.classes,
                &spec.options,
            )?;
            for (class, class_features) in features {
                push_selected(
                    &mut output,
                    &derived.name,
                    class,
                    class_features,
                    &spec.options,
                )?;
            }
        }
    }
    Ok(output)
}

/// Resamples the image and the ROI onto PyRadiomics' new grid, and checks that the ROI
/// still spans `minimum_dimensions` axes. The ROI is resampled as a 0/1 label map by
/// nearest neighbour, which selects the same voxels as resampling the label map and then
/// taking the label.
fn resample_roi(
    image: &Volume,
    roi: &Roi,
    settings: &crate::image::resample::ResampleSettings,
    minimum_dimensions: usize,
) -> Result<(Volume, Roi), FeatureError> {
    let labels = Volume {
        data: roi.mask.mapv(|inside| if inside { 1.0 } else { 0.0 }),
        geometry: image.geometry.clone(),
        stored_as_integer: true,
    };
    let resampled = crate::image::resample::resample(image, &labels, 1, settings)?;
    let roi = crate::mask::select_label_spanning(&resampled.labels, 1, minimum_dimensions)
        .map_err(FeatureError::ResampledRoi)?;
    Ok((resampled.image, roi))
}

/// Features of one class before selection.
type ClassFeatures = (FeatureClass, Vec<(&'static str, f64)>);

/// Computes every requested class except shape on one (possibly filtered) image.
fn intensity_classes(
    image: &Volume,
    roi: &Roi,
    classes: &[FeatureClass],
    options: &ExtractionOptions,
) -> Result<Vec<ClassFeatures>, FeatureError> {
    let values =
        roi_values(image, roi).map_err(|count| FeatureError::NonFiniteIntensity { count })?;

    // Texture classes share one discretisation, computed on first use.
    let mut texture: Option<discretize::TextureInput> = None;
    let mut output = Vec::new();
    for &class in classes {
        let features = match class {
            FeatureClass::Shape => continue,
            FeatureClass::FirstOrder => {
                let discretize::Discretization::FixedBinWidth(bin_width) = options.discretization
                else {
                    return Err(FeatureError::FirstOrderBinCount);
                };
                firstorder::compute(
                    &values,
                    image.geometry.voxel_volume_mm3(),
                    &firstorder::FirstOrderSettings {
                        bin_width,
                        voxel_array_shift: options.voxel_array_shift,
                    },
                )
            }
            _ => {
                let input = match texture.take() {
                    Some(input) => input,
                    None => {
                        discretize::discretize(image, roi, options.discretization, MAX_GREY_LEVELS)?
                    }
                };
                let features = match class {
                    FeatureClass::Glcm => glcm::compute(&input, &options.glcm),
                    FeatureClass::Glrlm => glrlm::compute(&input),
                    FeatureClass::Glszm => glszm::compute(&input),
                    FeatureClass::Gldm => gldm::compute(&input, &options.gldm),
                    _ => ngtdm::compute(&input, &options.ngtdm),
                };
                texture = Some(input);
                features
            }
        };
        output.push((class, features));
    }
    Ok(output)
}

/// Appends the selected features of one class under `<image type>_<class>_<Feature>`,
/// rejecting any value that is not finite.
fn push_selected(
    output: &mut Vec<(String, f64)>,
    image_type: &str,
    class: FeatureClass,
    features: Vec<(&'static str, f64)>,
    options: &ExtractionOptions,
) -> Result<(), FeatureError> {
    let selected = options.selection.get(&class);
    for (feature, value) in features {
        if selected.is_some_and(|names| !names.contains(&feature)) {
            continue;
        }
        let name = format!("{image_type}_{}_{feature}", class.name());
        if !value.is_finite() {
            return Err(FeatureError::NotFinite { name, value });
        }
        output.push((name, value));
    }
    Ok(())
}
