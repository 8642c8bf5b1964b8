//! Shape features. Being written.
