//! The `ibsiMode` setting: a radstudy extension that switches a parameter file to the IBSI
//! definitions (see `features::ibsi`).
//!
//! The PyRadiomics settings map onto the IBSI mode as follows. `binWidth` w becomes the
//! IBSI fixed bin size, with bins from the lower bound of an absolute `resegmentRange`, or
//! else from the ROI minimum. `binCount` becomes the IBSI fixed bin number. The IVH uses
//! bins of width w (or 1, the IBSI choice for discrete intensities such as CT numbers,
//! with `binCount`) over an absolute `resegmentRange` with both bounds, or else over the
//! ROI's range. `gldm_a` becomes the NGLDM coarseness α.

use serde_norway::Value;

use super::ParamsError;
use crate::features::ExtractionOptions;
use crate::features::discretize::Discretization;
use crate::features::ibsi::{Convention, GreyLevelRule};
use crate::features::resegment::ResegmentMode;
use crate::features::texture_angles::TextureAngles;

/// Switches `options`, already filled from the other settings, to the IBSI mode; `value`
/// is the `ibsiMode` value for error messages.
pub(super) fn apply(options: &mut ExtractionOptions, value: &Value) -> Result<(), ParamsError> {
    let reject = |reason: &'static str| ParamsError::NotImplemented {
        key: "ibsiMode".into(),
        value: super::render(value),
        reason,
    };
    if !options.selection.is_empty() {
        return Err(reject(
            "IBSI mode computes whole families; list feature classes without feature names",
        ));
    }
    if options.texture_angles != TextureAngles::default() {
        return Err(reject(
            "IBSI mode computes 3-D features with its own aggregation; remove force2D and weightingNorm",
        ));
    }
    if options.glcm.distances != [1] {
        return Err(reject("IBSI mode uses distance 1 only; remove distances"));
    }
    let alpha = options.gldm.alpha;
    if alpha.fract() != 0.0 || alpha > f64::from(u32::MAX) {
        return Err(reject(
            "IBSI mode needs a whole-number gldm_a (NGLDM coarseness on grey levels)",
        ));
    }

    let absolute_range = options
        .resegmentation
        .as_ref()
        .filter(|resegmentation| resegmentation.mode == ResegmentMode::Absolute);
    let lower_bound = absolute_range.map(|resegmentation| resegmentation.lower);
    let full_range = absolute_range.and_then(|resegmentation| {
        resegmentation
            .upper
            .map(|upper| [resegmentation.lower, upper])
    });

    options.convention = Convention::Ibsi;
    options.ibsi.ngldm_alpha = alpha as u32;
    options.ibsi.ivh.range = full_range;
    match options.discretization {
        Discretization::FixedBinWidth(width) => {
            options.ibsi.discretization = GreyLevelRule::FixedBinSize { width, lower_bound };
            options.ibsi.ivh.bin_width = width;
        }
        Discretization::FixedBinCount(count) => {
            options.ibsi.discretization = GreyLevelRule::FixedBinNumber(count);
            options.ibsi.ivh.bin_width = 1.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::features::ibsi::{Convention, GreyLevelRule};
    use crate::params::{ParamsError, parse_parameters};

    #[test]
    fn range_sets_bin_start_and_ivh_range() {
        let file = parse_parameters(
            "setting: {ibsiMode: true, binWidth: 25, resegmentRange: [-1000, 400]}",
        )
        .expect("valid IBSI parameter file");
        assert_eq!(file.options.convention, Convention::Ibsi);
        assert_eq!(
            file.options.ibsi.discretization,
            GreyLevelRule::FixedBinSize {
                width: 25.0,
                lower_bound: Some(-1000.0)
            }
        );
        assert_eq!(file.options.ibsi.ivh.range, Some([-1000.0, 400.0]));
        assert_eq!(file.options.ibsi.ivh.bin_width, 25.0);
    }

    #[test]
    fn bin_count_becomes_bin_number() {
        let file = parse_parameters("setting: {ibsiMode: true, binCount: 32, gldm_a: 1}")
            .expect("valid IBSI parameter file");
        assert_eq!(
            file.options.ibsi.discretization,
            GreyLevelRule::FixedBinNumber(32)
        );
        assert_eq!(file.options.ibsi.ivh.range, None);
        assert_eq!(file.options.ibsi.ivh.bin_width, 1.0);
        assert_eq!(file.options.ibsi.ngldm_alpha, 1);
    }

    #[test]
    fn ibsi_mode_false_keeps_pyradiomics() {
        let file = parse_parameters("setting: {ibsiMode: false}").expect("valid parameter file");
        assert_eq!(file.options.convention, Convention::Pyradiomics);
    }

    #[test]
    fn unsupported_combinations_are_rejected() {
        for text in [
            "setting: {ibsiMode: true, distances: [2]}",
            "setting: {ibsiMode: true, gldm_a: 0.5}",
            "setting: {ibsiMode: true}\nfeatureClass: {firstorder: [Mean]}",
        ] {
            let result = parse_parameters(text);
            assert!(
                matches!(result, Err(ParamsError::NotImplemented { ref key, .. }) if key == "ibsiMode"),
                "{text}: {result:?}"
            );
        }
    }
}
