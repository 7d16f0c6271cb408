//! Panics are caught per task, reported through the join handle, and never
//! take a worker down.

use fibra_runtime::{spawn, Runtime};

#[test]
fn panic_is_reported_through_join() {
    fibra_runtime::run(|| {
        let err = spawn(|| -> u32 { panic!("task failed on purpose") })
            .join()
            .unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert!(err.to_string().contains("task failed on purpose"), "{err}");
        let payload = err.into_panic();
        assert_eq!(
            *payload.downcast::<&str>().unwrap(),
            "task failed on purpose"
        );
    });
}

#[test]
fn workers_survive_panicking_tasks() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let ok = rt.run(|| {
        let bad: Vec<_> = (0..100)
            .map(|i| spawn(move || -> u32 { panic!("bad {i}") }))
            .collect();
        let good: Vec<_> = (0..100u32).map(|i| spawn(move || i)).collect();
        assert!(bad.into_iter().all(|h| h.join().unwrap_err().is_panic()));
        good.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    assert_eq!(ok, 4950);
    // And the runtime still works afterwards.
    assert_eq!(rt.run(|| spawn(|| 1).join().unwrap()), 1);
}

#[test]
fn detached_panicking_task_does_not_disturb_others() {
    fibra_runtime::run(|| {
        drop(spawn(|| panic!("nobody joins me")));
        for _ in 0..10 {
            fibra_runtime::yield_now();
        }
        assert_eq!(spawn(|| 3).join().unwrap(), 3);
    });
}

#[test]
fn panic_in_main_resumes_on_the_caller() {
    let result = std::panic::catch_unwind(|| fibra_runtime::run(|| panic!("main fails")));
    let payload = result.unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "main fails");
}

#[test]
fn spawn_outside_a_runtime_panics_with_guidance() {
    let payload = std::panic::catch_unwind(|| drop(spawn(|| ()))).unwrap_err();
    let msg = payload.downcast::<String>().unwrap();
    assert!(msg.contains("fibra::run"), "{msg}");
}

#[test]
fn builder_spawn_outside_a_runtime_is_an_error() {
    let err = fibra_runtime::task::Builder::new()
        .spawn(|| ())
        .unwrap_err();
    assert!(err.to_string().contains("fibra::run"), "{err}");
}

#[test]
fn zero_workers_is_an_error() {
    let err = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn async_task_panic_is_reported() {
    fibra_runtime::run(|| {
        let err = fibra_runtime::spawn_async(async { panic!("async boom") })
            .join()
            .unwrap_err();
        assert!(err.is_panic());
    });
}
