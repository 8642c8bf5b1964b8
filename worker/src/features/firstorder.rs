//! First-order (intensity histogram and statistics) features. Being written.
