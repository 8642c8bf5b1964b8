//! `[habitat]` in study.toml: the habitat method's settings. The defaults
//! are those of the method specification: local entropy in 9³-voxel masked
//! windows with 256 cells, 40 supervoxels per lesion, and z-scored
//! population k-means with K chosen by the Calinski–Harabasz index over 2
//! to 10. Habitats are named by depth.
//!
//! ```toml
//! [habitat]
//! enabled = true
//! voxel_features = "per_sequence"   # or "joint"
//! method = "kmeans"                 # or "gmm"
//! k = "calinski_harabasz"           # "silhouette", "bic" (gmm), or a fixed K such as 2
//! k_min = 2
//! k_max = 10
//! order_by = "depth"                # or "entropy"
//! regions = ["whole", "habitats"]   # also "core", "rim" or single habitat names
//! [habitat.entropy]
//! window_edge = 9
//! [habitat.supervoxels]
//! supervoxels = 40
//! [habitat.geometric]
//! split = "off"                     # "absolute", "relative" or "equal_volume"
//! ```

use radstudy_proto::v1::{EntropyOptions, GeometricOptions, SupervoxelOptions};
use serde::{Deserialize, Serialize};

/// Largest number of habitats a study may request or choose among.
pub const MAX_HABITATS: usize = 10;

/// Voxel vector mode of the habitat clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VoxelFeatures {
    /// One habitat space per sequence, voxel vector [intensity, entropy].
    PerSequence,
    /// One habitat space "joint" over all sequences on the first
    /// sequence's grid.
    Joint,
}

impl VoxelFeatures {
    /// Returns the contract's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            VoxelFeatures::PerSequence => "per_sequence",
            VoxelFeatures::Joint => "joint",
        }
    }
}

/// Population clustering algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterMethod {
    /// k-means (Lloyd) with k-means++ seeding.
    Kmeans,
    /// Full-covariance Gaussian mixture by EM; a supervoxel goes to the
    /// component of maximum posterior probability.
    Gmm,
}

/// Criterion that chooses K among the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KCriterion {
    /// Maximum Calinski–Harabasz index.
    CalinskiHarabasz,
    /// Maximum mean silhouette.
    Silhouette,
    /// Minimum BIC of the Gaussian mixture; needs `method = "gmm"`.
    Bic,
}

/// The number of habitats: fixed, or chosen by a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum KChoice {
    /// A fixed K, 2 to [`MAX_HABITATS`].
    Fixed(usize),
    /// K chosen over `k_min..=k_max`.
    Criterion(KCriterion),
}

/// Rule that orders habitats before naming them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderBy {
    /// Decreasing mean normalised depth D_h: the deepest habitat is "inner".
    Depth,
    /// Decreasing mean rescaled entropy: the most heterogeneous habitat is
    /// "inner".
    Entropy,
}

/// Weighting of the patients in D_h and in the mean entropy per habitat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NamingWeighting {
    /// Each training patient that has the habitat counts once.
    PerPatient,
    /// Each voxel counts once.
    Voxel,
}

/// The geometric core/rim control split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GeometricSplit {
    /// No "core" and "rim" regions.
    Off,
    /// Core = voxels deeper than `threshold_mm`.
    Absolute,
    /// Core = voxels whose normalised depth exceeds `relative_threshold`.
    Relative,
    /// Core = the deeper half of the lesion's voxels.
    EqualVolume,
}

/// Local entropy map settings, `[habitat.entropy]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropyConfig {
    /// "3d" or "2d" (windows within slices).
    pub dimensionality: String,
    /// Voxel axis normal to the slices of "2d": 0, 1 or 2.
    pub slice_axis: u32,
    /// Window edge in voxels, odd, 3 to 15.
    pub window_edge: u32,
    /// Histogram cells, 8 to 256.
    pub bins: u32,
    /// "2" (bits) or "e" (nats).
    pub log_base: String,
    /// "masked", "box_symmetric" or "box_zero".
    pub boundary: String,
    /// Intensity range mapped to [0, 1]: "box", "roi" or "roi_percentile".
    pub range: String,
    /// Lower and upper percentile of "roi_percentile", in percent.
    pub percentile_low: f64,
    /// See `percentile_low`.
    pub percentile_high: f64,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        EntropyConfig {
            dimensionality: "3d".into(),
            slice_axis: 2,
            window_edge: 9,
            bins: 256,
            log_base: "2".into(),
            boundary: "masked".into(),
            range: "box".into(),
            percentile_low: 0.5,
            percentile_high: 99.5,
        }
    }
}

/// Patient-level clustering settings, `[habitat.supervoxels]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervoxelConfig {
    /// Supervoxels requested per lesion (K1), 10 to 200.
    pub supervoxels: u32,
    /// Smallest mean supervoxel size in voxels, at least 1.
    pub min_voxels_per_supervoxel: u32,
    /// k-means restarts per lesion, at least 1.
    pub n_init: u32,
    /// Maximum Lloyd iterations, at least 1.
    pub max_iter: u32,
    /// Centroid-shift tolerance relative to the mean feature variance, ≥ 0.
    pub tol: f64,
}

impl Default for SupervoxelConfig {
    fn default() -> Self {
        SupervoxelConfig {
            supervoxels: 40,
            min_voxels_per_supervoxel: 5,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
        }
    }
}

/// Geometric control split, `[habitat.geometric]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeometricConfig {
    /// The rule, or "off".
    pub split: GeometricSplit,
    /// Core depth threshold of "absolute", mm, 1 to 5.
    pub threshold_mm: f64,
    /// Normalised depth threshold of "relative", 0.3 to 0.7.
    pub relative_threshold: f64,
    /// Smallest core before the worker falls back to the next rule.
    pub min_core_voxels: u32,
}

impl Default for GeometricConfig {
    fn default() -> Self {
        GeometricConfig {
            split: GeometricSplit::Off,
            threshold_mm: 3.0,
            relative_threshold: 0.5,
            min_core_voxels: 50,
        }
    }
}

/// Settings of the habitat method, `[habitat]` in study.toml.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HabitatConfig {
    /// Whether the habitat rounds run. Default false, so that a study
    /// without the section extracts the whole lesion only.
    pub enabled: bool,
    /// "per_sequence" (default) or "joint".
    pub voxel_features: VoxelFeatures,
    /// Local entropy map settings.
    pub entropy: EntropyConfig,
    /// Patient-level clustering settings.
    pub supervoxels: SupervoxelConfig,
    /// Population algorithm: "kmeans" (default) or "gmm".
    pub method: ClusterMethod,
    /// A fixed K or a criterion; default "calinski_harabasz".
    pub k: KChoice,
    /// Smallest candidate K of a criterion; default 2.
    pub k_min: usize,
    /// Largest candidate K of a criterion; default 10. Candidates above
    /// N − 1 pooled supervoxels are dropped.
    pub k_max: usize,
    /// Population fits per K from different seeds; default 10.
    pub n_init: usize,
    /// Whether each supervoxel weighs as many voxels as it has in the
    /// population k-means (default false: every supervoxel counts once).
    pub weight_by_size: bool,
    /// Habitat order before naming: "depth" (default) or "entropy".
    pub order_by: OrderBy,
    /// Weighting of D_h and of the mean entropy per habitat.
    pub naming_weighting: NamingWeighting,
    /// Regions with fewer voxels are left out for that patient; default 50.
    pub min_region_voxels: u32,
    /// Geometric core/rim split.
    pub geometric: GeometricConfig,
    /// Whether workers write habitat maps into their local output
    /// directory; default true.
    pub write_maps: bool,
    /// Regions to extract and model: "whole", "habitats" (every habitat),
    /// a habitat name ("inner", "mid_2", "marginal"), "core" or "rim".
    pub regions: Vec<String>,
}

impl Default for HabitatConfig {
    fn default() -> Self {
        HabitatConfig {
            enabled: false,
            voxel_features: VoxelFeatures::PerSequence,
            entropy: EntropyConfig::default(),
            supervoxels: SupervoxelConfig::default(),
            method: ClusterMethod::Kmeans,
            k: KChoice::Criterion(KCriterion::CalinskiHarabasz),
            k_min: 2,
            k_max: MAX_HABITATS,
            n_init: 10,
            weight_by_size: false,
            order_by: OrderBy::Depth,
            naming_weighting: NamingWeighting::PerPatient,
            min_region_voxels: 50,
            geometric: GeometricConfig::default(),
            write_maps: true,
            regions: vec!["whole".into(), "habitats".into()],
        }
    }
}

type CheckError = (&'static str, String, &'static str);

impl HabitatConfig {
    /// Checks the values; on failure returns (key, value, expected).
    pub fn check(&self) -> Result<(), CheckError> {
        let entropy = &self.entropy;
        let one_of = |value: &str, allowed: &[&str]| allowed.contains(&value);
        if !one_of(&entropy.dimensionality, &["3d", "2d"]) {
            return Err((
                "habitat.entropy.dimensionality",
                format!("{:?}", entropy.dimensionality),
                "\"3d\" or \"2d\"",
            ));
        }
        if entropy.slice_axis > 2 {
            return Err((
                "habitat.entropy.slice_axis",
                entropy.slice_axis.to_string(),
                "0, 1 or 2",
            ));
        }
        if !(3..=15).contains(&entropy.window_edge) || entropy.window_edge.is_multiple_of(2) {
            return Err((
                "habitat.entropy.window_edge",
                entropy.window_edge.to_string(),
                "an odd number of voxels from 3 to 15",
            ));
        }
        if !(8..=256).contains(&entropy.bins) {
            return Err((
                "habitat.entropy.bins",
                entropy.bins.to_string(),
                "8 to 256 histogram cells",
            ));
        }
        if !one_of(&entropy.log_base, &["2", "e"]) {
            return Err((
                "habitat.entropy.log_base",
                format!("{:?}", entropy.log_base),
                "\"2\" (bits) or \"e\" (nats)",
            ));
        }
        if !one_of(&entropy.boundary, &["masked", "box_symmetric", "box_zero"]) {
            return Err((
                "habitat.entropy.boundary",
                format!("{:?}", entropy.boundary),
                "\"masked\", \"box_symmetric\" or \"box_zero\"",
            ));
        }
        if !one_of(&entropy.range, &["box", "roi", "roi_percentile"]) {
            return Err((
                "habitat.entropy.range",
                format!("{:?}", entropy.range),
                "\"box\", \"roi\" or \"roi_percentile\"",
            ));
        }
        let (low, high) = (entropy.percentile_low, entropy.percentile_high);
        if !(low.is_finite() && high.is_finite() && 0.0 <= low && low < high && high <= 100.0) {
            return Err((
                "habitat.entropy.percentile_low",
                format!("{low} with percentile_high {high}"),
                "percentiles with 0 <= low < high <= 100",
            ));
        }

        let supervoxels = &self.supervoxels;
        if !(10..=200).contains(&supervoxels.supervoxels) {
            return Err((
                "habitat.supervoxels.supervoxels",
                supervoxels.supervoxels.to_string(),
                "10 to 200 supervoxels per lesion",
            ));
        }
        for (field, value) in [
            (
                "habitat.supervoxels.min_voxels_per_supervoxel",
                supervoxels.min_voxels_per_supervoxel,
            ),
            ("habitat.supervoxels.n_init", supervoxels.n_init),
            ("habitat.supervoxels.max_iter", supervoxels.max_iter),
        ] {
            if value == 0 {
                return Err((field, "0".into(), "at least 1"));
            }
        }
        if !(supervoxels.tol.is_finite() && supervoxels.tol >= 0.0) {
            return Err((
                "habitat.supervoxels.tol",
                supervoxels.tol.to_string(),
                "a finite number >= 0",
            ));
        }

        match self.k {
            KChoice::Fixed(k) if !(2..=MAX_HABITATS).contains(&k) => {
                return Err(("habitat.k", k.to_string(), "a fixed K from 2 to 10"));
            }
            KChoice::Criterion(KCriterion::Bic) if self.method != ClusterMethod::Gmm => {
                return Err((
                    "habitat.k",
                    "\"bic\"".into(),
                    "\"bic\" only with method = \"gmm\"; use \"calinski_harabasz\" or \"silhouette\" with k-means",
                ));
            }
            _ => {}
        }
        if !(2 <= self.k_min && self.k_min <= self.k_max && self.k_max <= MAX_HABITATS) {
            return Err((
                "habitat.k_min",
                format!("{} with k_max {}", self.k_min, self.k_max),
                "2 <= k_min <= k_max <= 10",
            ));
        }
        if self.n_init == 0 {
            return Err(("habitat.n_init", "0".into(), "at least 1 fit per K"));
        }
        if self.weight_by_size && self.method == ClusterMethod::Gmm {
            return Err((
                "habitat.weight_by_size",
                "true".into(),
                "false with method = \"gmm\", which has no weighted fit",
            ));
        }
        if self.min_region_voxels == 0 {
            return Err(("habitat.min_region_voxels", "0".into(), "at least 1 voxel"));
        }

        let geometric = &self.geometric;
        if !(geometric.threshold_mm.is_finite() && (1.0..=5.0).contains(&geometric.threshold_mm)) {
            return Err((
                "habitat.geometric.threshold_mm",
                geometric.threshold_mm.to_string(),
                "1 to 5 mm",
            ));
        }
        if !(geometric.relative_threshold.is_finite()
            && (0.3..=0.7).contains(&geometric.relative_threshold))
        {
            return Err((
                "habitat.geometric.relative_threshold",
                geometric.relative_threshold.to_string(),
                "0.3 to 0.7",
            ));
        }

        if self.regions.is_empty() {
            return Err(("habitat.regions", "[]".into(), "at least one region"));
        }
        for (index, region) in self.regions.iter().enumerate() {
            let known = matches!(
                region.as_str(),
                "whole" | "habitats" | "inner" | "marginal" | "core" | "rim"
            ) || region
                .strip_prefix("mid_")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| (2..MAX_HABITATS).contains(&n));
            if !known {
                return Err((
                    "habitat.regions",
                    format!("{region:?}"),
                    "\"whole\", \"habitats\", \"inner\", \"mid_2\" to \"mid_9\", \"marginal\", \"core\" or \"rim\"",
                ));
            }
            if self.regions[..index].contains(region) {
                return Err((
                    "habitat.regions",
                    format!("{region:?} twice"),
                    "each region once",
                ));
            }
            if matches!(region.as_str(), "core" | "rim") && geometric.split == GeometricSplit::Off {
                return Err((
                    "habitat.regions",
                    format!("{region:?}"),
                    "\"core\" and \"rim\" only with habitat.geometric.split set to \"absolute\", \"relative\" or \"equal_volume\"",
                ));
            }
        }
        Ok(())
    }

    /// Returns the candidate K values before truncation to the data.
    pub fn candidates(&self) -> Vec<usize> {
        match self.k {
            KChoice::Fixed(k) => vec![k],
            KChoice::Criterion(_) => (self.k_min..=self.k_max).collect(),
        }
    }

    /// Returns the contract's entropy options.
    pub fn entropy_options(&self) -> EntropyOptions {
        let entropy = &self.entropy;
        EntropyOptions {
            dimensionality: entropy.dimensionality.clone(),
            slice_axis: entropy.slice_axis,
            window_edge: entropy.window_edge,
            bins: entropy.bins,
            log_base: entropy.log_base.clone(),
            boundary: entropy.boundary.clone(),
            range: entropy.range.clone(),
            percentile_low: entropy.percentile_low,
            percentile_high: entropy.percentile_high,
        }
    }

    /// Returns the contract's supervoxel options.
    pub fn supervoxel_options(&self) -> SupervoxelOptions {
        let supervoxels = &self.supervoxels;
        SupervoxelOptions {
            supervoxels: supervoxels.supervoxels,
            min_voxels_per_supervoxel: supervoxels.min_voxels_per_supervoxel,
            n_init: supervoxels.n_init,
            max_iter: supervoxels.max_iter,
            tol: supervoxels.tol,
        }
    }

    /// Returns the contract's geometric options, or `None` when the split
    /// is off.
    pub fn geometric_options(&self) -> Option<GeometricOptions> {
        let geometric = &self.geometric;
        let rule = match geometric.split {
            GeometricSplit::Off => return None,
            GeometricSplit::Absolute => "absolute",
            GeometricSplit::Relative => "relative",
            GeometricSplit::EqualVolume => "equal_volume",
        };
        Some(GeometricOptions {
            rule: rule.into(),
            threshold_mm: geometric.threshold_mm,
            relative_threshold: geometric.relative_threshold,
            min_core_voxels: geometric.min_core_voxels,
        })
    }

    /// Returns the regions to extract, with "habitats" expanded to
    /// `habitat_names` (the union over habitat spaces, in model order).
    /// "whole" comes first when requested; names are not repeated.
    pub fn extraction_regions(&self, habitat_names: &[String]) -> Vec<String> {
        let mut regions: Vec<String> = Vec::new();
        let mut push = |name: &str| {
            if !regions.iter().any(|r| r == name) {
                regions.push(name.to_string());
            }
        };
        for region in &self.regions {
            if region == "habitats" {
                habitat_names.iter().for_each(|name| push(name));
            } else {
                push(region);
            }
        }
        regions
    }
}

#[cfg(test)]
mod tests;
