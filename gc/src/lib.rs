//! fibra's garbage-collected heap (under construction: see the GC issues).
//!
//! The design lives in this crate's top-level docs once the heap lands.

#![warn(missing_docs)]
