//! Grey level run length matrix (GLRLM) features.
