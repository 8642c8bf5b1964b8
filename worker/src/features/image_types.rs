//! Features of every enabled image type of a parameter file, in the order of steps of
//! PyRadiomics' `RadiomicsFeatureExtractor.execute`. The whole image is normalised, then
//! resampled with the ROI when `resampledPixelSpacing` is set, then cropped when
//! `preCrop` is set, and the ROI is resegmented on it. Shape and shape2D are computed
//! once on the original ROI. Each filtered image is then derived from the normalised
//! image, and the other classes are computed on it with that image type's options.
//!
//! Feature names are `<image type>_<class>_<Feature>`, such as
//! `log-sigma-1-0-mm-3D_firstorder_Mean`. Shape is always `original_shape_<Feature>`, and
//! shape2D `original_shape2D_<Feature>`.
//!
//! In IBSI mode the normalised image goes through the IBSI chain of
//! `ibsi::processing` instead (rounding, interpolation on the IBSI grid, re-segmentation
//! and outlier filtering), and the IBSI families are computed on its result.

use super::padded_grids::PaddedGrids;
use super::{
    ExtractionOptions, ExtractionSettings, FeatureClass, FeatureError, MAX_GREY_LEVELS, discretize,
    firstorder, glcm, gldm, glrlm, glszm, ngtdm, normalize, resegment, shape, shape2d,
};
use crate::filters::{ImageType, VoxelBox, derive_images};
use crate::image::{PixelType, Volume};
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
/// own options set its other classes. `pixel_type` is the type SimpleITK reads the image
/// file as, which sets the precision of the wavelet filter. Returns `(column name, value)`
/// pairs: shape, then each image type in the given order, and rejects any value that is
/// not finite. A LoG σ that the image is too small for yields no columns, as in
/// PyRadiomics.
pub fn compute_image_types(
    image: &Volume,
    pixel_type: PixelType,
    roi: &Roi,
    settings: &ExtractionSettings,
    options: &ExtractionOptions,
    image_types: &[ImageTypeSpec],
) -> Result<Vec<(String, f64)>, FeatureError> {
    let normalized;
    let (image, pixel_type) = match &options.normalization {
        Some(normalization) => {
            normalized = normalize::normalize(image, normalization)?;
            // SimpleITK's `Normalize` returns a 64-bit float image for every input type.
            (&normalized, PixelType::Float64)
        }
        None => (image, pixel_type),
    };
    if options.convention == super::ibsi::Convention::Ibsi {
        // The IBSI chain interpolates, re-segments and filters outliers itself, and the
        // IBSI families are computed on the original image type only.
        let processed = super::ibsi::processing::process(
            image,
            roi,
            options.resegmentation.as_ref(),
            &options.ibsi.processing,
        )?;
        let morphological = if options.resegment_shape {
            &processed.intensity
        } else {
            &processed.morphological
        };
        return super::compute_ibsi(
            &processed.image,
            morphological,
            &processed.intensity,
            settings,
            options,
        );
    }
    let resampled;
    let (image, roi) = match &options.resampling {
        Some(resampling) => {
            resampled = resample_roi(
                image,
                pixel_type,
                roi,
                resampling,
                options.minimum_roi_dimensions,
            )?;
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

    // With only the original image and nothing that reads the voxels around the ROI, the
    // rest works on the ROI's bounding box, and the values stay the same (see
    // `crop_to_bounding_box`).
    let bounding_box;
    let (image, roi) = match crops_to_bounding_box(options, image_types)
        .then(|| super::pre_crop::crop_to_bounding_box(image, roi))
        .flatten()
    {
        Some(cropped) => {
            bounding_box = cropped;
            (&bounding_box.0, &bounding_box.1)
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
    if settings.classes.contains(&FeatureClass::Shape2D) {
        let axis = options
            .texture_angles
            .out_of_plane_axis
            .ok_or(shape2d::Shape2DError::NoForce2D)?;
        let features = shape2d::compute(shape_roi.mask.view(), image.geometry.spacing, axis)?;
        push_selected(
            &mut output,
            "original",
            FeatureClass::Shape2D,
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
        // The original image is used as it is, without the cropped copy that
        // `derive_images` returns for it.
        let derived = match spec.image_type {
            ImageType::Original => Vec::new(),
            _ => derive_images(image, pixel_type, &spec.image_type, &region)?,
        };
        let images: Vec<(&str, &Volume, &Roi)> = match spec.image_type {
            ImageType::Original => vec![("original", image, feature_roi)],
            _ => derived
                .iter()
                .map(|derived| (derived.name.as_str(), &derived.volume, &region_roi))
                .collect(),
        };
        for (name, volume, image_roi) in images {
            let features = intensity_classes(volume, image_roi, &settings.classes, &spec.options)?;
            for (class, class_features) in features {
                push_selected(&mut output, name, class, class_features, &spec.options)?;
            }
        }
    }
    Ok(output)
}

/// Returns whether the features can be computed on the ROI's bounding box alone: every
/// image type is the original image, and no normalisation, resampling, preCrop or IBSI
/// mode reads the image around the ROI. Resegmentation reads only ROI voxels.
fn crops_to_bounding_box(options: &ExtractionOptions, image_types: &[ImageTypeSpec]) -> bool {
    options.normalization.is_none()
        && options.resampling.is_none()
        && options.pre_crop_pad_voxels.is_none()
        && options.convention == super::ibsi::Convention::Pyradiomics
        && image_types
            .iter()
            .all(|spec| spec.image_type == ImageType::Original)
}

/// Resamples the image and the ROI onto PyRadiomics' new grid, and checks that the ROI
/// still spans `minimum_dimensions` axes. The ROI is resampled as a 0/1 label map by
/// nearest neighbour, which selects the same voxels as resampling the label map and then
/// taking the label. PyRadiomics resamples to the image's own pixel type, so a float32
/// image's interpolated values are rounded to the nearest f32, as ITK's cast from the
/// interpolator's double does.
fn resample_roi(
    image: &Volume,
    pixel_type: PixelType,
    roi: &Roi,
    settings: &crate::image::resample::ResampleSettings,
    minimum_dimensions: usize,
) -> Result<(Volume, Roi), FeatureError> {
    let labels = Volume {
        data: roi.mask.mapv(|inside| if inside { 1.0 } else { 0.0 }),
        geometry: image.geometry.clone(),
        stored_as_integer: true,
    };
    let mut resampled = crate::image::resample::resample(image, &labels, 1, settings)?;
    if pixel_type == PixelType::Float32 {
        resampled
            .image
            .data
            .mapv_inplace(|value| f64::from(value as f32));
    }
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

    // Texture classes share one discretisation and its padded grids, computed on first use.
    let mut texture: Option<PaddedGrids> = None;
    let mut output = Vec::new();
    for &class in classes {
        let features = match class {
            FeatureClass::Shape | FeatureClass::Shape2D => continue,
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
                let grids = match &mut texture {
                    Some(grids) => grids,
                    None => texture.insert(PaddedGrids::owning(discretize::discretize(
                        image,
                        roi,
                        options.discretization,
                        MAX_GREY_LEVELS,
                    )?)),
                };
                let angles = &options.texture_angles;
                match class {
                    FeatureClass::Glcm => glcm::compute_with_grids(grids, &options.glcm, angles),
                    FeatureClass::Glrlm => glrlm::compute_with_grids(grids, angles),
                    FeatureClass::Glszm => glszm::compute_with_grids(grids, angles),
                    FeatureClass::Gldm => gldm::compute_with_grids(grids, &options.gldm, angles),
                    _ => ngtdm::compute_with_grids(grids, &options.ngtdm, angles),
                }
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
        // Without a list, keep the class's default features, so deprecated ones only when
        // the list names them.
        let keep = match selected {
            Some(names) => names.contains(&feature),
            None => class.feature_names().contains(&feature),
        };
        if !keep {
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
