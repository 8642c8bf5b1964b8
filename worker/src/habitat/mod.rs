//! Worker-side kernels of the habitat method: local entropy maps,
//! patient-level supervoxels, lesion depth and the geometric core/rim
//! split.
//!
//! Method. Each lesion (ROI M of one sequence) becomes a set of voxel
//! vectors x_v = [Ĩ(v), Ê(v)]: the intensity mapped to [0, 1] and the local
//! entropy rescaled to [0, 1] within the lesion ([`entropy`]). A k-means per
//! patient and sequence groups them into about 40 supervoxels
//! ([`supervoxel`], on [`kmeans`]). Only the supervoxel descriptors (mean
//! vectors), their voxel counts and their sums of normalised depth δ and of
//! Ê leave the worker. The coordinator pools the training patients'
//! descriptors and clusters them into habitats by k-means, with the number
//! of habitats chosen by the Calinski–Harabasz index. It names the habitats
//! by depth: the habitat with the largest mean δ is the inner one, the one
//! with the smallest the marginal one. Every voxel inherits its
//! supervoxel's habitat.
//! [`geometric`] is the control without clustering: a core deeper than a
//! threshold and the rim around it.
//!
//! Conventions shared by the modules:
//!
//! - ROI voxel order: every per-voxel vector ([`entropy::EntropyMap`],
//!   [`depth::RoiDepth`], [`supervoxel::Supervoxels::labels`]) lists the ROI
//!   voxels in `[i, j, k]` lexicographic order (k fastest), the order of
//!   `Array3::indexed_iter` over the mask and of
//!   [`crate::mask::roi_values`].
//! - Depth d(v) is the Euclidean distance in mm between voxel centres from
//!   v to the nearest voxel outside M. Voxels beyond the image border count
//!   as outside. δ(v) = d(v) / max_M d ∈ (0, 1].
//! - Entropy is in bits unless the settings ask for nats. Ê does not depend
//!   on the base.
//! - Randomness: k-means draws from xoshiro256++ streams seeded by a u64.
//!   The supervoxel seed is a SHA-256 of (study seed, sequence, patient
//!   key), so results depend neither on processing order nor on thread
//!   count.
//!
//! Sources:
//!
//! - MATLAB `entropyfilt` documentation (MathWorks): 9 × 9 default
//!   neighbourhood, symmetric padding at the image border. Octave
//!   `entropyfilt` help: 256 histogram cells for non-logical images, empty
//!   cells ignored, log₂.
//! - The reference recipe, `Demo_subregion_partition.m` in the repository
//!   WenbingLv/Subregional-Radiomics (Southern Medical University; Xu et
//!   al., Mol. Imaging Biol. 2020): tumour bounding box, min–max
//!   normalisation, `entropyfilt` with a 9 × 9 × 9 neighbourhood, entropy
//!   re-normalised inside the tumour, 40 supervoxels per patient by
//!   k-means, z-scored pooled supervoxels, k-means with the
//!   Calinski–Harabasz criterion over K = 2..10.
//! - HABIT (repository lichao312214129/HABIT, `LocalEntropyExtractor`):
//!   local entropy by convolution with zero padding, divided by the full
//!   window volume, 32 cells, window edge 3 with even edges raised by one.
//!
//! NOTE: the reference recipe filters the tight bounding box, so its
//! mirror padding reflects at the lesion box faces. Here the box is padded
//! by the window half-width first (clipped to the image), so windows at the
//! lesion edge read the real surrounding tissue, and mirroring happens only
//! at the image border.

pub mod assign;
pub mod depth;
pub mod entropy;
pub mod geometric;
pub mod grid;
pub use radstudy_cluster::kmeans;
pub mod maps;
pub mod overlay;
pub mod pipeline;
pub mod regions;
pub mod supervoxel;
pub mod transfer;
