//! Clustering shared by the worker (patient-level supervoxels) and the
//! coordinator (population habitats), so that both sides run the same
//! seeded algorithm and a fit does not depend on where it runs.
//!
//! Every random step draws from a xoshiro256++ stream seeded by a `u64`
//! that the caller derives from the study seed and a stable id.

pub mod gmm;
pub mod kmeans;
pub mod silhouette;
