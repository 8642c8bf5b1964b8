//! Command-line subcommands that work on local files without a coordinator.

pub mod extract;
