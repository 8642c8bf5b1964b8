//! Canonical order and names of the habitats of one space.
//!
//! Cluster numbers are arbitrary, so the habitats are ordered by a stated
//! rule and named from that order: H1 = "inner", H_K = "marginal", and
//! H2 … H_{K−1} = "mid_2" … "mid_{K−1}".
//!
//! Depth order (default): for habitat h,
//!
//! ```text
//! δ̄_p(h) = Σ_{s ∈ p, s → h} depth_sum_s / Σ_{s ∈ p, s → h} n_s
//! D_h    = mean over training patients p that have h of δ̄_p(h)
//! ```
//!
//! with depth_sum_s the sum of normalised depth δ ∈ (0, 1] over supervoxel
//! s's voxels and n_s its voxel count, so δ̄_p(h) is exactly the mean depth
//! of patient p's voxels in h. Habitats are ordered by decreasing D_h. With
//! voxel weighting, D_h = Σ depth_sum / Σ n over all training supervoxels
//! of h. Entropy order uses the mean rescaled entropy Ē_h, defined the same
//! way from the entropy sums, decreasing. Ties go to the lower cluster
//! number.
//!
//! The report gives D_h, Ē_h and the voxel fraction of each habitat, and
//! whether Ē(inner) > Ē(marginal): the claim that the inner habitat is the
//! more heterogeneous one is checked, not assumed.

use serde::Serialize;

use super::config::{NamingWeighting, OrderBy};
use super::population::PopulationFit;

/// One habitat of the training fit, with its report numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HabitatSummary {
    /// Region name: "inner", "mid_k" or "marginal".
    pub name: String,
    /// Cluster number in the fit before ordering.
    pub cluster: usize,
    /// D_h, mean normalised depth (0 at the border, 1 at the deepest voxel).
    pub mean_depth: Option<f64>,
    /// Ē_h, mean rescaled local entropy in [0, 1].
    pub mean_entropy: Option<f64>,
    /// Training voxels in the habitat over all training lesion voxels.
    pub voxel_fraction: f64,
    /// Training patients with at least one supervoxel in the habitat.
    pub patients: usize,
    /// Training supervoxels assigned to the habitat.
    pub supervoxels: usize,
}

/// The habitats of one space in name order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Naming {
    /// Habitats, "inner" first and "marginal" last.
    pub habitats: Vec<HabitatSummary>,
    /// Whether Ē(inner) > Ē(marginal); `None` when either is undefined.
    pub inner_entropy_higher: Option<bool>,
}

/// Returns the name of position `rank` (0-based) among `k` habitats.
pub fn habitat_name(rank: usize, k: usize) -> String {
    if rank == 0 {
        "inner".into()
    } else if rank + 1 == k {
        "marginal".into()
    } else {
        format!("mid_{}", rank + 1)
    }
}

#[derive(Default, Clone)]
struct Accumulator {
    voxels: f64,
    depth: f64,
    entropy: f64,
    supervoxels: usize,
    patients: usize,
    patient_depth_means: f64,
    patient_entropy_means: f64,
}

/// Orders and names the habitats of `fit`.
pub fn name_habitats(fit: &PopulationFit, order_by: OrderBy, weighting: NamingWeighting) -> Naming {
    let k = fit.centroids.nrows();
    let mut totals = vec![Accumulator::default(); k];
    let mut lesion_voxels = 0.0;
    let mut row = 0;
    for set in &fit.sets {
        let mut patient = vec![Accumulator::default(); k];
        for index in 0..set.descriptors.nrows() {
            let habitat = fit.assignments[row];
            row += 1;
            let voxels = f64::from(set.voxel_counts[index]);
            lesion_voxels += voxels;
            let entry = &mut patient[habitat];
            entry.voxels += voxels;
            entry.depth += set.depth_sums[index];
            entry.entropy += set.entropy_sums[index];
            entry.supervoxels += 1;
        }
        for (total, part) in totals.iter_mut().zip(&patient) {
            if part.supervoxels == 0 {
                continue;
            }
            total.voxels += part.voxels;
            total.depth += part.depth;
            total.entropy += part.entropy;
            total.supervoxels += part.supervoxels;
            if part.voxels > 0.0 {
                total.patients += 1;
                total.patient_depth_means += part.depth / part.voxels;
                total.patient_entropy_means += part.entropy / part.voxels;
            }
        }
    }

    let mean = |sum: f64, count: f64| (count > 0.0).then(|| sum / count);
    let summaries: Vec<(usize, Option<f64>, Option<f64>, &Accumulator)> = totals
        .iter()
        .enumerate()
        .map(|(cluster, total)| {
            let (depth, entropy) = match weighting {
                NamingWeighting::PerPatient => (
                    mean(total.patient_depth_means, total.patients as f64),
                    mean(total.patient_entropy_means, total.patients as f64),
                ),
                NamingWeighting::Voxel => (
                    mean(total.depth, total.voxels),
                    mean(total.entropy, total.voxels),
                ),
            };
            (cluster, depth, entropy, total)
        })
        .collect();

    // Decreasing key, undefined keys last, ties to the lower cluster.
    let mut order: Vec<usize> = (0..k).collect();
    let key = |cluster: usize| match order_by {
        OrderBy::Depth => summaries[cluster].1,
        OrderBy::Entropy => summaries[cluster].2,
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (
            key(a).unwrap_or(f64::NEG_INFINITY),
            key(b).unwrap_or(f64::NEG_INFINITY),
        );
        kb.total_cmp(&ka).then(a.cmp(&b))
    });

    let habitats: Vec<HabitatSummary> = order
        .iter()
        .enumerate()
        .map(|(rank, &cluster)| {
            let (_, depth, entropy, total) = summaries[cluster];
            HabitatSummary {
                name: habitat_name(rank, k),
                cluster,
                mean_depth: depth,
                mean_entropy: entropy,
                voxel_fraction: if lesion_voxels > 0.0 {
                    total.voxels / lesion_voxels
                } else {
                    0.0
                },
                patients: total.patients,
                supervoxels: total.supervoxels,
            }
        })
        .collect();
    let inner_entropy_higher = match (habitats.first(), habitats.last()) {
        (Some(inner), Some(marginal)) if k >= 2 => inner
            .mean_entropy
            .zip(marginal.mean_entropy)
            .map(|(inner, marginal)| inner > marginal),
        _ => None,
    };
    Naming {
        habitats,
        inner_entropy_higher,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::habitat::config::HabitatConfig;
    use crate::habitat::population::{SupervoxelSet, fit_population};
    use ndarray::{Array2, array};

    #[test]
    fn habitat_names_for_four() {
        let names: Vec<String> = (0..4).map(|rank| habitat_name(rank, 4)).collect();
        assert_eq!(names, ["inner", "mid_2", "mid_3", "marginal"]);
        assert_eq!(habitat_name(1, 2), "marginal");
    }

    fn set(
        pseudonym: &str,
        rows: Array2<f64>,
        counts: &[u32],
        depths: &[f64],
        entropies: &[f64],
    ) -> SupervoxelSet {
        SupervoxelSet {
            center: "A".into(),
            pseudonym: pseudonym.into(),
            space: "T1".into(),
            descriptors: rows,
            voxel_counts: counts.to_vec(),
            depth_sums: depths.to_vec(),
            entropy_sums: entropies.to_vec(),
        }
    }

    /// Two patients whose supervoxels fall in two obvious clusters
    /// (descriptor 0 near 0 and near 1), with hand-made depth sums.
    fn two_patient_fit(order_by: OrderBy, weighting: NamingWeighting) -> Naming {
        let sets = vec![
            // p1: cluster "low" has 10 voxels of depth sum 8 (mean 0.8),
            // cluster "high" 30 voxels of depth sum 6 (mean 0.2).
            set(
                "p1",
                array![[0.0, 0.0], [1.0, 1.0]],
                &[10, 30],
                &[8.0, 6.0],
                &[2.0, 24.0],
            ),
            // p2: "low" 90 voxels, depth mean 0.4; "high" 10 voxels, 0.3.
            set(
                "p2",
                array![[0.01, 0.0], [1.0, 0.99]],
                &[90, 10],
                &[36.0, 3.0],
                &[18.0, 7.0],
            ),
        ];
        let config = HabitatConfig {
            k: crate::habitat::config::KChoice::Fixed(2),
            ..HabitatConfig::default()
        };
        let fit = fit_population("T1", sets, &config, 42).expect("fit");
        name_habitats(&fit, order_by, weighting)
    }

    #[test]
    fn naming_by_depth_per_patient() {
        // D_low = (0.8 + 0.4) / 2 = 0.6; D_high = (0.2 + 0.3) / 2 = 0.25,
        // so "low" is inner.
        let naming = two_patient_fit(OrderBy::Depth, NamingWeighting::PerPatient);
        let inner = &naming.habitats[0];
        assert_eq!(inner.name, "inner");
        assert!((inner.mean_depth.expect("defined") - 0.6).abs() < 1e-15);
        let marginal = &naming.habitats[1];
        assert_eq!(marginal.name, "marginal");
        assert!((marginal.mean_depth.expect("defined") - 0.25).abs() < 1e-15);
        // Entropy means: low (0.2 + 0.2) / 2 = 0.2, high (0.8 + 0.7) / 2.
        assert!((inner.mean_entropy.expect("defined") - 0.2).abs() < 1e-15);
        assert!((marginal.mean_entropy.expect("defined") - 0.75).abs() < 1e-15);
        assert_eq!(naming.inner_entropy_higher, Some(false));
        // Voxel fractions over the 140 training voxels.
        assert!((inner.voxel_fraction - 100.0 / 140.0).abs() < 1e-15);
        assert_eq!(inner.patients, 2);
    }

    #[test]
    fn naming_by_depth_voxel_weighted() {
        // Voxel weighting: D_low = 44 / 100 = 0.44, D_high = 9 / 40 = 0.225.
        let naming = two_patient_fit(OrderBy::Depth, NamingWeighting::Voxel);
        assert!((naming.habitats[0].mean_depth.expect("defined") - 0.44).abs() < 1e-15);
        assert!((naming.habitats[1].mean_depth.expect("defined") - 0.225).abs() < 1e-15);
    }

    #[test]
    fn naming_by_entropy_puts_heterogeneous_inner() {
        let naming = two_patient_fit(OrderBy::Entropy, NamingWeighting::PerPatient);
        assert_eq!(naming.habitats[0].name, "inner");
        assert!((naming.habitats[0].mean_entropy.expect("defined") - 0.75).abs() < 1e-15);
        assert_eq!(naming.inner_entropy_higher, Some(true));
    }
}
