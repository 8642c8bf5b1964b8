//! The filter settings of one `imageType` entry: `sigma` for LoG, `wavelet`, `level` and
//! `start_level` for Wavelet, `gradientUseSpacing` for Gradient. Each may be set under
//! `setting` or under the image type itself, which wins, as in PyRadiomics.

use serde_norway::Value;

use super::setting::SettingsBuilder;
use super::{ParamsError, render};
use crate::filters::{ImageType, Sigma};

/// Builds the validated image type `name` (a key of [`super::IMAGE_TYPES`]) from the
/// merged settings.
pub(super) fn parse_image_type(
    name: &'static str,
    settings: &SettingsBuilder,
) -> Result<ImageType, ParamsError> {
    match name {
        "Original" => Ok(ImageType::Original),
        "Square" => Ok(ImageType::Square),
        "SquareRoot" => Ok(ImageType::SquareRoot),
        "Logarithm" => Ok(ImageType::Logarithm),
        "Exponential" => Ok(ImageType::Exponential),
        "Gradient" => {
            let use_spacing = match settings.get("gradientUseSpacing") {
                Some(value) => value.as_bool().ok_or_else(|| ParamsError::InvalidValue {
                    key: "gradientUseSpacing".into(),
                    value: render(value),
                    expected: "true or false",
                })?,
                None => true,
            };
            Ok(ImageType::Gradient { use_spacing })
        }
        "LoG" => Ok(ImageType::LoG {
            sigmas: parse_sigmas(settings.get("sigma"))?,
        }),
        "Wavelet" => parse_wavelet(settings),
        other => Err(ParamsError::NotImplemented {
            key: format!("imageType.{other}"),
            value: "{}".into(),
            reason: "local binary pattern (LBP) images are not implemented",
        }),
    }
}

/// Parses `sigma`: a non-empty list of numbers > 0, in mm. PyRadiomics computes no LoG
/// image without it and skips σ ≤ 0 with a warning. Both are errors here, so that a typo
/// does not drop features silently.
fn parse_sigmas(value: Option<&Value>) -> Result<Vec<Sigma>, ParamsError> {
    let invalid = |value: &Value| ParamsError::InvalidValue {
        key: "sigma".into(),
        value: render(value),
        expected: "a non-empty list of LoG widths in mm, each a finite number > 0, such as [1.0, 2.0]",
    };
    let Some(value) = value else {
        return Err(ParamsError::InvalidValue {
            key: "sigma".into(),
            value: "missing".into(),
            expected: "a list of LoG widths in mm under imageType.LoG or setting, such as sigma: [1.0, 2.0]",
        });
    };
    let Value::Sequence(items) = value else {
        return Err(invalid(value));
    };
    if items.is_empty() {
        return Err(invalid(value));
    }

    let mut sigmas = Vec::with_capacity(items.len());
    for item in items {
        let Value::Number(number) = item else {
            return Err(invalid(value));
        };
        let Some(mm) = number.as_f64().filter(|mm| mm.is_finite() && *mm > 0.0) else {
            return Err(invalid(value));
        };
        // serde_norway prints an integer as `2` and a float as `2.0`, as Python's str does.
        sigmas.push(Sigma {
            mm,
            text: number.to_string(),
        });
    }
    Ok(sigmas)
}

/// Parses the Wavelet settings; only coif1, PyRadiomics' default wavelet, is implemented.
fn parse_wavelet(settings: &SettingsBuilder) -> Result<ImageType, ParamsError> {
    if settings.force_2d()? {
        // PyRadiomics decomposes along the in-plane axes only under force2D.
        return Err(ParamsError::NotImplemented {
            key: "imageType.Wavelet".into(),
            value: "with force2D: true".into(),
            reason: "the 2-D (in-plane) wavelet decomposition is not implemented",
        });
    }
    if let Some(value) = settings.get("wavelet")
        && value.as_str() != Some("coif1")
    {
        return Err(ParamsError::NotImplemented {
            key: "wavelet".into(),
            value: render(value),
            reason: "only the coif1 wavelet (PyRadiomics' default) is implemented",
        });
    }
    let level = |key: &str, minimum: u64, default: u32| -> Result<u32, ParamsError> {
        match settings.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .filter(|level| *level >= minimum)
                .and_then(|level| u32::try_from(level).ok())
                .ok_or_else(|| ParamsError::InvalidValue {
                    key: key.to_string(),
                    value: render(value),
                    expected: if minimum == 0 {
                        "a whole number >= 0"
                    } else {
                        "a whole number >= 1"
                    },
                }),
        }
    };
    Ok(ImageType::Wavelet {
        start_level: level("start_level", 0, 0)?,
        level: level("level", 1, 1)?,
    })
}
