//! The radstudy hospital worker.
//!
//! A worker runs next to patient data at one hospital. It reads the site's
//! cohort manifest, loads images and masks, extracts radiomic features, and
//! answers the coordinator's gRPC rounds with only what the site policy
//! allows: pseudonymised feature tables and aggregates, never voxel data.

pub mod aggregate;
pub mod audit;
pub mod cache;
pub mod check;
pub mod cli;
pub mod config;
pub mod dial_out;
pub mod error;
pub mod extract;
pub mod feature_request;
pub mod features;
pub mod filters;
pub mod habitat;
pub mod image;
pub mod manifest;
pub mod mask;
pub mod metrics;
pub mod params;
pub mod perturb;
pub mod perturbed_features;
pub mod pseudonym;
pub mod server;
pub mod service;
pub mod tls;
