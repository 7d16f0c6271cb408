//! `#[fibra::main]` and `#[fibra::test]` as a user writes them.

#[fibra::test]
fn the_body_runs_in_a_green_thread() {
    assert!(fibra::in_green_thread());
    let h = fibra::spawn(|| 2 + 2);
    assert_eq!(h.join().unwrap(), 4);
}

#[fibra::test(workers = 1)]
fn workers_can_be_set() {
    // One worker: every green thread runs on the main one's OS thread.
    let me = std::thread::current().id();
    let handles: Vec<_> = (0..20)
        .map(|_| fibra::spawn(|| std::thread::current().id()))
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), me);
    }
}

#[fibra::test]
fn a_test_may_return_a_result() -> Result<(), fibra::JoinError> {
    fibra::spawn(|| ()).join()
}

#[fibra::main]
fn with_arguments(base: u64, borrowed: &[u64]) -> u64 {
    assert!(fibra::in_green_thread());
    base + borrowed.iter().sum::<u64>()
}

#[test]
fn main_keeps_arguments_and_the_return_value() {
    let data = vec![1, 2, 3];
    assert_eq!(with_arguments(10, &data), 16);
    assert!(!fibra::in_green_thread());
}

#[fibra::test]
#[should_panic(expected = "from the body")]
fn a_panic_in_the_body_fails_the_test() {
    panic!("from the body");
}
