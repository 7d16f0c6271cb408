//! Marking primitives shared by the collector, its assists and the
//! mutators' barriers: the marking epoch, the shared grey queues, and
//! shading an object (setting its mark bit in its span's bitmap).
//!
//! # Protocol
//!
//! Mark bits are set with an atomic `fetch_or` (`Span::set_mark`), so an
//! object is shaded once whoever gets there first. An object whose mark
//! bit this shade set and whose span is *scan* is grey: whoever shaded it
//! scans it, or pushes it to `MarkState::grey` for someone else (a barrier
//! always pushes: it runs inside a short region). An object holding values
//! nested too deep for an assist's stack goes to `MarkState::deep`, which
//! only the collector thread drains (see `collector::mark`). The queues
//! live here, below the mutators, because barriers feed them.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::LazyLock;

use crossbeam_deque::Injector;

use super::object::Header;
use super::pages;

/// The shared state of marking (Go's `work` queues).
///
/// `epoch` is stored by the collector before a marking phase starts:
/// objects allocated during it are black without a mark bit (see
/// `Span::black_from`), and sweeps of the following generation read it to
/// know those objects survived. `deep` holds objects nested deeper than an
/// assist may trace (`collector::assist::ASSIST_MAX_DEPTH`).
pub(crate) struct MarkState {
    /// The raw epoch of the current (or last) marking phase.
    pub(crate) epoch: AtomicU64,
    /// Grey objects shaded by mutators, or shared by the collector.
    pub(crate) grey: LazyLock<Injector<usize>>,
    /// Grey objects only the collector thread, with its large stack, scans.
    pub(crate) deep: LazyLock<Injector<usize>>,
    /// Set by the collector before the grace period that may end marking,
    /// cleared if marking goes on (and when the next mark begins). While
    /// it is set, a `Weak` upgrade must not shade a white object - a grey
    /// object made after the last check would never be scanned - and
    /// waits instead (see `heap::weak`). Barriers need no such care: they
    /// only shade objects reachable at the snapshot, black by then.
    pub(crate) terminating: AtomicBool,
}

/// The marking state.
pub(crate) static MARK: MarkState = MarkState {
    epoch: AtomicU64::new(0),
    grey: LazyLock::new(Injector::new),
    deep: LazyLock::new(Injector::new),
    terminating: AtomicBool::new(false),
};

/// Result of shading an object.
pub(crate) enum Shade {
    /// Already marked.
    Black,
    /// Newly marked, holds no `Gc` (done).
    NoScan,
    /// Newly marked, must be scanned (grey).
    Grey,
}

/// Marks the object at `header` in marking epoch `epoch` (raw).
#[inline]
pub(crate) fn shade(header: *const Header, epoch: u64) -> Shade {
    let span = pages::span_of(header as usize);
    if !span.set_mark(span.slot_of(header as usize), epoch) {
        Shade::Black
    } else if span.class.noscan() {
        Shade::NoScan
    } else {
        Shade::Grey
    }
}

/// Whether the object at `header` is marked in marking epoch `epoch`.
pub(crate) fn is_marked(header: *const Header, epoch: u64) -> bool {
    let span = pages::span_of(header as usize);
    span.is_marked(span.slot_of(header as usize), epoch)
}

/// The deletion barrier's shade (called inside a region whose epoch,
/// `epoch`, is a marking one).
#[inline]
pub(crate) fn shade_from_mutator(header: *const Header, epoch: u64) {
    if let Shade::Grey = shade(header, epoch) {
        MARK.grey.push(header as usize);
    }
}
