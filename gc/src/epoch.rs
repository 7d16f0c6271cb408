//! The phase word's encoding: `gen << 1 | marking`.
//!
//! The word itself lives in `mutator` (every region reads it once, on
//! entry); the marking epoch a cycle marks in is kept by `heap::mark`.
//! This module only names the value, so the layers below `mutator` (the
//! heap's sweeps, tracers) can take one.

/// A decoded phase word: the generation and whether marking is on.
/// Generations start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch(u64);

impl Epoch {
    pub(crate) const fn new(gen: u64, marking: bool) -> Epoch {
        Epoch(gen << 1 | marking as u64)
    }
    /// The epoch of a raw word (`gen << 1 | marking`).
    #[inline]
    pub(crate) const fn from_raw(raw: u64) -> Epoch {
        Epoch(raw)
    }
    #[inline]
    pub(crate) const fn gen(self) -> u64 {
        self.0 >> 1
    }
    /// The raw word (`gen << 1 | marking`).
    #[inline]
    pub(crate) const fn raw(self) -> u64 {
        self.0
    }
    #[inline]
    pub(crate) const fn marking(self) -> bool {
        self.0 & 1 == 1
    }
}
