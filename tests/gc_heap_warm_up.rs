//! The GC heap is set up as a runtime starts, never by the first
//! allocation inside it; outside any runtime the first allocation still
//! sets it up itself. Each case runs in a fresh child process, where
//! nothing has touched the heap before.

mod common;

use std::time::Duration;

use common::child;
use fibra::gc::{Gc, GcCell};

const IN_RUNTIME: &str = "the_first_allocation_in_a_runtime_finds_the_heap_set_up";
const OUTSIDE: &str = "an_allocation_outside_any_runtime_sets_the_heap_up_itself";

#[test]
fn the_first_allocation_in_a_runtime_finds_the_heap_set_up() {
    if child::is_child(IN_RUNTIME) {
        assert_eq!(fibra::gc::__private::setups_on_allocation(), 0);
        let sum = fibra::run(|| {
            let list = Gc::new(GcCell::new(Vec::new()));
            for i in 0..1000u64 {
                list.with_mut(|v| v.push(Gc::new(i)));
            }
            fibra::gc::collect();
            list.with(|v| v.iter().map(|g| **g).sum::<u64>())
        });
        assert_eq!(sum, 999 * 1000 / 2);
        println!(
            "setups on allocation: {}",
            fibra::gc::__private::setups_on_allocation()
        );
        return;
    }
    let out = child::run_ok(IN_RUNTIME, &[], Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("setups on allocation: 0"),
        "the first allocation in a runtime set the heap up itself:\n{stdout}"
    );
}

#[test]
fn an_allocation_outside_any_runtime_sets_the_heap_up_itself() {
    if child::is_child(OUTSIDE) {
        assert_eq!(fibra::gc::__private::setups_on_allocation(), 0);
        let g = Gc::new(5u64);
        fibra::gc::collect();
        assert_eq!(*g, 5);
        println!(
            "setups on allocation: {}",
            fibra::gc::__private::setups_on_allocation()
        );
        // A runtime started afterwards finds everything in place.
        assert_eq!(fibra::run(move || *Gc::new(6u64) + *g), 11);
        return;
    }
    let out = child::run_ok(OUTSIDE, &[], Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Configuring the collector and reserving the first arena.
    assert!(
        stdout.contains("setups on allocation: 2"),
        "outside a runtime the first allocation sets the heap up:\n{stdout}"
    );
}
