//! Which workers sleep, which search, and who wakes whom.
//!
//! # Vocabulary (after Go's `proc.go`)
//!
//! - A worker is *busy* while it runs tasks, *spinning* while it searches
//!   other workers and the injector for work, and *sleeping* while parked.
//! - `num_spinning` counts spinning workers; `sleepers` lists sleeping ones.
//!
//! # Rules
//!
//! 1. Whoever makes movable work available (a spawn, a wake of an async task,
//!    an injector push) calls [`Idle::worker_to_notify`] after publishing it.
//!    If some worker is spinning, nobody is woken: the spinner will find the
//!    work. Otherwise one sleeper is woken *already counted as spinning*, so
//!    a burst of spawns wakes one searcher, not a herd.
//! 2. A spinning worker that finds work stops spinning; if it was the last
//!    spinner it wakes another one (rule 1 again), so that remaining work
//!    always has a searcher.
//! 3. A worker gives up spinning by decrementing `num_spinning`, and only
//!    then re-checks every queue once more before it sleeps. A worker goes to
//!    sleep by adding itself to `sleepers` *before* that final check.
//!
//! # Why no wake-up is lost
//!
//! A producer publishes work, then (SeqCst) reads `num_spinning` and
//! `sleepers`. A worker going to sleep first registers in `sleepers`, then
//! (SeqCst) re-checks the queues. In the single total order of these SeqCst
//! operations either the producer sees the worker registered (and wakes it,
//! or sees a spinner that decremented later and therefore re-checks later),
//! or the worker's re-check comes after the publication and sees the work.
//! The `loom_tests` module checks this protocol exhaustively.
//!
//! A sleeping worker may park in the netpoller instead of on its condition
//! variable (`Parker::park_polling`); that changes only how `unpark`
//! reaches it, not this protocol. `no_lost_wakeup_when_sleeping_in_the_poller`
//! checks the combination.

use std::sync::atomic::Ordering::SeqCst;

use crate::loom::{fence, AtomicUsize, Mutex};

/// Shared sleep/spin bookkeeping of one runtime's workers.
pub(crate) struct Idle {
    /// Number of workers searching for work.
    num_spinning: AtomicUsize,
    /// Number of entries in `sleepers`, readable without the lock.
    num_sleeping: AtomicUsize,
    /// Indices of sleeping workers.
    sleepers: Mutex<Vec<usize>>,
    /// Total number of workers.
    workers: usize,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            num_spinning: AtomicUsize::new(0),
            num_sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    /// Called after publishing movable work: returns the sleeper to unpark,
    /// which is now counted as spinning (rule 1).
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        fence(SeqCst);
        if self.num_spinning.load(SeqCst) != 0 || self.num_sleeping.load(SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.sleepers.lock().unwrap();
        // Re-check under the lock: another notifier may have just woken a
        // searcher.
        if self.num_spinning.load(SeqCst) != 0 {
            return None;
        }
        let index = sleepers.pop()?;
        self.num_sleeping.fetch_sub(1, SeqCst);
        self.num_spinning.fetch_add(1, SeqCst);
        Some(index)
    }

    /// A worker out of local work asks to search. Refused when half of the
    /// busy workers already search (Go's limit), to save CPU.
    pub(crate) fn try_start_spinning(&self) -> bool {
        let spinning = self.num_spinning.load(SeqCst);
        let busy = self.workers - self.num_sleeping.load(SeqCst);
        if 2 * spinning >= busy {
            return false;
        }
        self.num_spinning.fetch_add(1, SeqCst);
        true
    }

    /// A spinning worker stops searching. Returns whether it was the last
    /// spinner (then, if it found work, it must notify another: rule 2).
    pub(crate) fn stop_spinning(&self) -> bool {
        self.num_spinning.fetch_sub(1, SeqCst) == 1
    }

    /// Registers `index` as sleeping (rule 3); the caller must re-check all
    /// queues afterwards and then park or call [`Idle::unregister`].
    pub(crate) fn register_sleeper(&self, index: usize) {
        let mut sleepers = self.sleepers.lock().unwrap();
        sleepers.push(index);
        self.num_sleeping.fetch_add(1, SeqCst);
        drop(sleepers);
        fence(SeqCst);
    }

    /// A worker woke up or found work before sleeping. Returns `true` if a
    /// notifier picked it (it is now counted as spinning), `false` if it
    /// removed itself from `sleepers`.
    pub(crate) fn unregister(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap();
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.num_sleeping.fetch_sub(1, SeqCst);
                false
            }
            None => true,
        }
    }

    /// Number of workers currently sleeping.
    pub(crate) fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(SeqCst)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn burst_wakes_one_searcher() {
        let idle = Idle::new(4);
        for i in 0..3 {
            idle.register_sleeper(i);
        }
        assert!(idle.worker_to_notify().is_some());
        // The woken worker counts as spinning: no second wake.
        assert!(idle.worker_to_notify().is_none());
        assert!(idle.stop_spinning());
        assert!(idle.worker_to_notify().is_some());
    }

    #[test]
    fn unregister_tells_who_woke_us() {
        let idle = Idle::new(2);
        idle.register_sleeper(0);
        assert!(!idle.unregister(0));
        idle.register_sleeper(1);
        assert_eq!(idle.worker_to_notify(), Some(1));
        assert!(idle.unregister(1));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::park::parker::Parker;
    use loom::sync::atomic::AtomicUsize as Work;
    use loom::sync::Arc;

    fn take(work: &Work) -> bool {
        work.fetch_update(SeqCst, SeqCst, |w| w.checked_sub(1))
            .is_ok()
    }

    /// A worker about to sleep and a producer publishing work: the work is
    /// always taken (loom reports a deadlock if the worker sleeps forever).
    #[test]
    fn no_lost_wakeup_between_sleep_and_publish() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(1));
            let parker = Arc::new(Parker::new());
            let work = Arc::new(Work::new(0));

            let (i2, p2, w2) = (idle.clone(), parker.clone(), work.clone());
            let producer = loom::thread::spawn(move || {
                w2.fetch_add(1, SeqCst);
                if let Some(0) = i2.worker_to_notify() {
                    p2.unpark();
                }
            });

            // The worker: search once, then sleep by the protocol.
            loop {
                if take(&work) {
                    break;
                }
                idle.register_sleeper(0);
                if work.load(SeqCst) > 0 {
                    if idle.unregister(0) {
                        idle.stop_spinning();
                    }
                    continue;
                }
                parker.park(None);
                if idle.unregister(0) {
                    idle.stop_spinning();
                }
            }
            producer.join().unwrap();
        });
    }

    /// As `no_lost_wakeup_between_sleep_and_publish`, with the worker
    /// parked in a (modelled) netpoll that the parker's interrupt wakes.
    #[test]
    fn no_lost_wakeup_when_sleeping_in_the_poller() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(1));
            let level = Arc::new((loom::sync::Mutex::new(false), loom::sync::Condvar::new()));
            let l2 = level.clone();
            let interrupt: crate::park::parker::Interrupt = std::sync::Arc::new(move || {
                *l2.0.lock().unwrap() = true;
                l2.1.notify_one();
            });
            let parker = Arc::new(Parker::with_interrupt(interrupt));
            let work = Arc::new(Work::new(0));

            let (i2, p2, w2) = (idle.clone(), parker.clone(), work.clone());
            let producer = loom::thread::spawn(move || {
                w2.fetch_add(1, SeqCst);
                if let Some(0) = i2.worker_to_notify() {
                    p2.unpark();
                }
            });

            loop {
                if take(&work) {
                    break;
                }
                idle.register_sleeper(0);
                if work.load(SeqCst) > 0 {
                    if idle.unregister(0) {
                        idle.stop_spinning();
                    }
                    continue;
                }
                parker.park_polling(None, |_| {
                    let mut ready = level.0.lock().unwrap();
                    while !*ready {
                        ready = level.1.wait(ready).unwrap();
                    }
                    *ready = false;
                });
                if idle.unregister(0) {
                    idle.stop_spinning();
                }
            }
            producer.join().unwrap();
        });
    }

    /// A spinning worker giving up races with a producer that saw it
    /// spinning and therefore woke nobody: the re-check finds the work.
    #[test]
    fn spinner_giving_up_rechecks() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            let parker = Arc::new(Parker::new());
            let work = Arc::new(Work::new(0));
            assert!(idle.try_start_spinning());

            let (i2, p2, w2) = (idle.clone(), parker.clone(), work.clone());
            let producer = loom::thread::spawn(move || {
                w2.fetch_add(1, SeqCst);
                if let Some(0) = i2.worker_to_notify() {
                    p2.unpark();
                }
            });

            let mut spinning = true;
            loop {
                if take(&work) {
                    if spinning {
                        idle.stop_spinning();
                    }
                    break;
                }
                if spinning {
                    idle.stop_spinning();
                    spinning = false;
                }
                idle.register_sleeper(0);
                if work.load(SeqCst) > 0 {
                    spinning = idle.unregister(0);
                    continue;
                }
                parker.park(None);
                spinning = idle.unregister(0);
            }
            producer.join().unwrap();
        });
    }
}
