//! fibra: Go's execution and memory model for Rust.
//!
//! Green threads on stackful coroutines, scheduled M:N by a work-stealing
//! scheduler; a shared garbage-collected heap in [`gc`].
//!
//! ```
//! let v = fibra::run(|| {
//!     let h = fibra::spawn(|| "hello from a green thread");
//!     h.join().unwrap()
//! });
//! assert_eq!(v, "hello from a green thread");
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use fibra_runtime::*;

/// The garbage-collected heap (the `fibra-gc` crate).
pub mod gc {
    pub use fibra_gc::*;
}
