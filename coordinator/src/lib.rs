//! The radstudy coordinator.
//!
//! Plans a multi-center radiomics study, drives the hospital workers over
//! gRPC, gathers their pseudonymised feature tables, and fits and validates
//! the models on training patients only.

pub mod checkpoint;
pub mod client;
pub mod config;
pub mod demo;
pub mod extraction;
mod feature_stage;
pub mod federated;
pub mod habitat;
pub mod handshake;
pub mod harmonize;
pub mod model;
pub mod output;
pub mod report;
pub mod reproducibility;
pub mod run;
pub mod scores_only;
pub mod split;
pub mod stats;
pub mod table;
pub mod tls;
