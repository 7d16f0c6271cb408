//! Cooperative budgeting for async tasks.
//!
//! A worker gives each poll of an async task a budget of [`BUDGET`]
//! operations on fibra resources (channel operations, socket reads, ...).
//! Each resource calls [`poll_proceed`] before doing work; once the budget
//! is spent it wakes the task and returns `Pending`, so the task goes to the
//! back of the run queue even if all its resources are always ready. Code
//! outside an async-task poll (green threads, other executors) is never
//! limited.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Operations an async task may perform per poll.
pub(crate) const BUDGET: u32 = 128;

thread_local! {
    /// Remaining budget of the current poll; `None` when unconstrained.
    static REMAINING: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Runs `f` (one poll of an async task) with a fresh budget.
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(Option<u32>);
    impl Drop for Reset {
        fn drop(&mut self) {
            REMAINING.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(REMAINING.with(|r| r.replace(Some(BUDGET))));
    f()
}

/// Spends one unit of budget, or (when none is left) wakes the task and
/// returns `Pending` so it yields.
#[allow(dead_code)]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    REMAINING.with(|r| match r.get() {
        None => Poll::Ready(()),
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            r.set(Some(n - 1));
            Poll::Ready(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn budget_runs_out_inside_a_poll_only() {
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        // Unconstrained outside.
        for _ in 0..1000 {
            assert!(poll_proceed(&mut cx).is_ready());
        }
        with_budget(|| {
            for _ in 0..BUDGET {
                assert!(poll_proceed(&mut cx).is_ready());
            }
            assert!(poll_proceed(&mut cx).is_pending());
        });
        assert!(poll_proceed(&mut cx).is_ready());
    }
}
