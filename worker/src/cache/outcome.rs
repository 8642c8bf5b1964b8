//! The result of extracting one patient and sequence: the value that a
//! round collects per job and that the result cache stores.

use radstudy_proto::v1::RegionExclusion;

use crate::error::Exclusion;

/// Per region, the features of the k perturbed copies in repeat order, or
/// the message of the failure that made them unusable.
pub type RegionCopyFeatures = Vec<(String, Result<Vec<Vec<f64>>, String>)>;

/// The features of one patient and sequence, or why it was excluded.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceOutcome {
    /// Features per extracted region, in request order, or the exclusion
    /// of the whole patient and sequence.
    pub features: Result<Vec<(String, Vec<f64>)>, Exclusion>,
    /// Regions left out for this patient and sequence.
    pub region_exclusions: Vec<RegionExclusion>,
    /// Features of the perturbed copies per region, when the round
    /// perturbs and the original extracted.
    pub copies: Option<RegionCopyFeatures>,
}

impl SequenceOutcome {
    /// Creates the outcome of an excluded patient and sequence.
    pub fn excluded(exclusion: Exclusion) -> Self {
        SequenceOutcome {
            features: Err(exclusion),
            region_exclusions: Vec::new(),
            copies: None,
        }
    }
}
