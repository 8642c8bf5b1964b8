//! Image types: the original image and the filtered images derived from it, under
//! PyRadiomics' names (`original`, `log-sigma-1-0-mm-3D`, `wavelet-LLH`, `square`,
//! `squareroot`, `logarithm`, `exponential`, `gradient`).
//!
//! Each filter's values are those of the filter run on the whole image after
//! normalisation, as PyRadiomics' `RadiomicsFeatureExtractor.execute` runs it without
//! `preCrop`, and the features of every image type are then computed on the same ROI.
//! The output covers only a requested box (the ROI's bounding box in the pipeline),
//! because the features read nothing else. Filters that SimpleITK computes (LoG,
//! Gradient) round their output to float32 as SimpleITK 2.5 does. Wavelet runs in
//! float32 on an image that SimpleITK stores as float32 and in f64 otherwise, as PyWavelets
//! does. The others stay in f64 as PyRadiomics' numpy code does, which converts the image
//! to float64 first.

pub mod exponential;
pub mod gradient;
pub mod laplacian_of_gaussian;
pub mod logarithm;
pub mod recursive_gaussian;
pub mod region;
pub mod square;
pub mod square_root;
pub mod wavelet;

use crate::image::{PixelType, Volume};
pub use region::VoxelBox;

/// One σ of the LoG image type, with its text as the parameter file writes it (for the
/// output name).
#[derive(Debug, Clone, PartialEq)]
pub struct Sigma {
    /// σ in mm, > 0.
    pub mm: f64,
    /// σ as Python's `str` prints it: `1` for an integer, `1.0` for a float.
    pub text: String,
}

/// An image type with its validated filter settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageType {
    /// The image itself (`original`).
    Original,
    /// Laplacian of Gaussian for each σ (PyRadiomics setting `sigma`).
    LoG {
        /// σ values in file order.
        sigmas: Vec<Sigma>,
    },
    /// coif1 stationary wavelet transform.
    Wavelet {
        /// Levels computed before the first output level (PyRadiomics `start_level`, default 0).
        start_level: u32,
        /// Output levels (PyRadiomics `level`, default 1).
        level: u32,
    },
    /// Square of the intensities (`square`).
    Square,
    /// Signed square root of the intensities (`squareroot`).
    SquareRoot,
    /// Signed logarithm of the intensities (`logarithm`).
    Logarithm,
    /// Exponential of the intensities (`exponential`).
    Exponential,
    /// Gradient magnitude (`gradient`).
    Gradient {
        /// Whether derivatives are per mm (PyRadiomics `gradientUseSpacing`, default true).
        use_spacing: bool,
    },
}

impl ImageType {
    /// Returns the PyRadiomics `imageType` key of this type.
    pub fn key(&self) -> &'static str {
        match self {
            ImageType::Original => "Original",
            ImageType::LoG { .. } => "LoG",
            ImageType::Wavelet { .. } => "Wavelet",
            ImageType::Square => "Square",
            ImageType::SquareRoot => "SquareRoot",
            ImageType::Logarithm => "Logarithm",
            ImageType::Exponential => "Exponential",
            ImageType::Gradient { .. } => "Gradient",
        }
    }

    /// Returns the names of the images this type derives, in output order. A LoG σ that
    /// the image is too small for is listed here but derives no image.
    pub fn image_names(&self) -> Vec<String> {
        match self {
            ImageType::Original => vec!["original".to_string()],
            ImageType::LoG { sigmas } => sigmas
                .iter()
                .map(|sigma| laplacian_of_gaussian::image_type_name(&sigma.text))
                .collect(),
            ImageType::Wavelet { level, .. } => wavelet::image_type_names(*level),
            ImageType::Square => vec!["square".to_string()],
            ImageType::SquareRoot => vec!["squareroot".to_string()],
            ImageType::Logarithm => vec!["logarithm".to_string()],
            ImageType::Exponential => vec!["exponential".to_string()],
            ImageType::Gradient { .. } => vec!["gradient".to_string()],
        }
    }
}

/// An image derived by a filter, under its PyRadiomics image type name.
#[derive(Debug, Clone)]
pub struct DerivedImage {
    /// Prefix of the feature names, such as `log-sigma-1-0-mm-3D`.
    pub name: String,
    /// The filtered image on the voxels of the requested box of the original's grid.
    pub volume: Volume,
}

/// Error from a filter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// An image that is 0 everywhere, whose max|x| scale factor is 0.
    #[error(
        "image type {image_type} is undefined for an image that is 0 everywhere (it scales by the maximum absolute intensity); remove {image_type} from imageType"
    )]
    ZeroImage {
        /// The `imageType` key.
        image_type: &'static str,
    },
    /// A voxel is NaN or infinite, so the filter output would be too.
    #[error(
        "image type {image_type} needs finite intensities, but {count} voxels are NaN or infinite"
    )]
    NonFinite {
        /// The `imageType` key.
        image_type: &'static str,
        /// Non-finite voxels in the image.
        count: usize,
    },
}

/// Computes the images of one image type from the (normalised) original, on the voxels
/// of `region`. The values are those of the filter run on the whole image, cut to
/// `region`: LoG and Wavelet compute only what `region` needs, and the other filters
/// run on the whole image and are then cropped. A LoG σ that PyRadiomics would skip is
/// logged as a warning and left out. `pixel_type` is the type SimpleITK would store the
/// image in, which sets the wavelet's precision ([`wavelet::Precision::of`]).
pub fn derive_images(
    image: &Volume,
    pixel_type: PixelType,
    image_type: &ImageType,
    region: &VoxelBox,
) -> Result<Vec<DerivedImage>, FilterError> {
    let non_finite = image.data.iter().filter(|value| !value.is_finite()).count();
    if non_finite > 0 && *image_type != ImageType::Original {
        return Err(FilterError::NonFinite {
            image_type: image_type.key(),
            count: non_finite,
        });
    }

    let single = |name: &str, volume: Volume| {
        Ok(vec![DerivedImage {
            name: name.to_string(),
            volume: region.crop_volume(&volume),
        }])
    };
    match image_type {
        ImageType::Original => Ok(vec![DerivedImage {
            name: "original".to_string(),
            volume: region.crop_volume(image),
        }]),
        ImageType::Square => single("square", square::square(image)?),
        ImageType::SquareRoot => single("squareroot", square_root::square_root(image)?),
        ImageType::Logarithm => single("logarithm", logarithm::logarithm(image)?),
        ImageType::Exponential => single("exponential", exponential::exponential(image)?),
        ImageType::Gradient { use_spacing } => {
            single("gradient", gradient::gradient(image, *use_spacing))
        }
        ImageType::LoG { sigmas } => {
            let mut images = Vec::new();
            for sigma in sigmas {
                let name = laplacian_of_gaussian::image_type_name(&sigma.text);
                match laplacian_of_gaussian::laplacian_of_gaussian(image, sigma.mm, region) {
                    Ok(volume) => images.push(DerivedImage { name, volume }),
                    Err(skip) => tracing::warn!(
                        image_type = %name,
                        sigma_mm = sigma.mm,
                        reason = ?skip,
                        "LoG image skipped as PyRadiomics skips it: every axis needs at least 4 voxels and ceil(sigma / spacing) + 1 voxels"
                    ),
                }
            }
            Ok(images)
        }
        ImageType::Wavelet { start_level, level } => {
            let precision = wavelet::Precision::of(pixel_type);
            Ok(
                wavelet::wavelet(image, precision, *start_level, *level, region)
                    .into_iter()
                    .map(|(name, volume)| DerivedImage { name, volume })
                    .collect(),
            )
        }
    }
}

/// Returns max|x| over every voxel, or an error naming the image type when it is 0.
fn max_absolute(image: &Volume, image_type: &'static str) -> Result<f64, FilterError> {
    let maximum = image
        .data
        .iter()
        .fold(0.0_f64, |max, value| max.max(value.abs()));
    if maximum > 0.0 {
        Ok(maximum)
    } else {
        Err(FilterError::ZeroImage { image_type })
    }
}

/// Rounds to the nearest f32, as a SimpleITK float32 image stores a value.
fn round_to_f32(value: f64) -> f64 {
    f64::from(value as f32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::image::Geometry;

    /// Builds a volume of one line along i with unit spacing.
    pub(crate) fn line_volume(values: &[f64]) -> Volume {
        Volume {
            data: ndarray::Array3::from_shape_vec((values.len(), 1, 1), values.to_vec())
                .expect("shape matches"),
            geometry: Geometry {
                dims: [values.len(), 1, 1],
                spacing: [1.0; 3],
                origin: [0.0; 3],
                direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
            stored_as_integer: true,
        }
    }

    #[test]
    fn derive_rejects_non_finite_image() {
        let image = line_volume(&[1.0, f64::NAN]);
        assert_eq!(
            derive_images(
                &image,
                PixelType::Integer,
                &ImageType::Square,
                &VoxelBox::whole([2, 1, 1])
            )
            .unwrap_err(),
            FilterError::NonFinite {
                image_type: "Square",
                count: 1
            }
        );
    }

    #[test]
    fn derive_names_every_image_type() {
        let image = line_volume(&[1.0, 2.0, 3.0, 4.0]);
        for (image_type, name) in [
            (ImageType::Original, "original"),
            (ImageType::Square, "square"),
            (ImageType::SquareRoot, "squareroot"),
            (ImageType::Logarithm, "logarithm"),
            (ImageType::Exponential, "exponential"),
            (ImageType::Gradient { use_spacing: true }, "gradient"),
        ] {
            let images = derive_images(
                &image,
                PixelType::Integer,
                &image_type,
                &VoxelBox::whole([4, 1, 1]),
            )
            .expect("filter runs");
            assert_eq!(images.len(), 1);
            assert_eq!(images[0].name, name);
            assert_eq!(image_type.image_names(), [name]);
        }
    }
}
