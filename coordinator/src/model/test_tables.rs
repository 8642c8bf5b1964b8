//! Synthetic feature tables for the modelling tests.

use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

use super::chain::{ChainSpec, FittedChain};
use super::{fit_chain, model_specs, single_model_specs};
use crate::config::ModelConfig;
use crate::split::Cohort;
use crate::table::{FeatureColumn, PatientRecord, StudyTable};

/// Features per sequence and region in [`synthetic_table`].
pub const FEATURES_PER_BLOCK: usize = 12;

/// Features of the signal region that carry the outcome.
pub const SIGNAL_FEATURES: usize = 2;

/// Shift of the signal features between the classes, in SDs of the noise.
/// One such feature alone separates the classes with a population AUC of
/// Φ(1.5 / √2) ≈ 0.86.
pub const SIGNAL_SHIFT: f64 = 1.5;

/// A two-center table with sequences T1 and T2 over `regions`.
///
/// Center A has 48 patients: 36 in training, 12 in internal validation;
/// center B has 16 in external validation. Every cohort alternates
/// negative and positive patients. Each (sequence, region) block has
/// [`FEATURES_PER_BLOCK`] standard-normal features drawn from a seeded
/// generator. In `signal_region`, the first [`SIGNAL_FEATURES`] of both
/// sequences are shifted by [`SIGNAL_SHIFT`] for positive patients. Every
/// other feature is pure noise.
pub fn synthetic_table(regions: &[&str], signal_region: &str, seed: u64) -> StudyTable {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut patients = Vec::new();
    for i in 0..64 {
        let (center, cohort) = match i {
            0..36 => ("A", Cohort::Training),
            36..48 => ("A", Cohort::InternalValidation),
            _ => ("B", Cohort::ExternalValidation),
        };
        patients.push(PatientRecord {
            center: center.into(),
            pseudonym: format!("{center}-{i:03}"),
            label: i % 2 == 1,
            cohort,
        });
    }

    let mut columns = Vec::new();
    for sequence in ["T1", "T2"] {
        for &region in regions {
            for f in 0..FEATURES_PER_BLOCK {
                let shifted = region == signal_region && f < SIGNAL_FEATURES;
                let values = patients
                    .iter()
                    .map(|p| {
                        let noise: f64 = StandardNormal.sample(&mut rng);
                        let shift = if shifted && p.label {
                            SIGNAL_SHIFT
                        } else {
                            0.0
                        };
                        Some(10.0 + noise + shift)
                    })
                    .collect();
                let feature = format!("original_firstorder_F{f:02}");
                columns.push(FeatureColumn {
                    name: format!("{sequence}_{region}_{feature}"),
                    sequence: sequence.into(),
                    region: region.into(),
                    feature,
                    values,
                });
            }
        }
    }
    StudyTable { patients, columns }
}

/// Reorders the patient rows of `table` by `order` (new row i is old row
/// `order[i]`), moving every column's values along.
pub fn reorder_rows(table: &StudyTable, order: &[usize]) -> StudyTable {
    let mut reordered = table.clone();
    reordered.patients = order.iter().map(|&p| table.patients[p].clone()).collect();
    for (column, original) in reordered.columns.iter_mut().zip(&table.columns) {
        column.values = order.iter().map(|&p| original.values[p]).collect();
    }
    reordered
}

/// Returns a row order that interleaves the table from both ends: last,
/// first, second last, second, …
pub fn interleaved_order(n: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(n);
    let (mut low, mut high) = (0, n);
    while low < high {
        high -= 1;
        order.push(high);
        if low < high {
            order.push(low);
            low += 1;
        }
    }
    order
}

/// Fits every single model of sequences T1 and T2 on `table`, with seed 42.
pub fn fit_single_models(
    table: &StudyTable,
    config: &ModelConfig,
) -> Vec<(ChainSpec, FittedChain)> {
    let specs = model_specs(&["T1".into(), "T2".into()]);
    let mut skipped = Vec::new();
    single_model_specs(table, &specs, config, &mut skipped)
        .into_iter()
        .map(|spec| {
            let chain = fit_chain(table, &spec, config, 42)
                .unwrap_or_else(|reason| panic!("{}: {reason}", spec.name));
            (spec, chain)
        })
        .collect()
}
