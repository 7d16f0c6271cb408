#[test]
fn smoke() {
    for workers in [1, 2] {
        let rt = fibra_runtime::Runtime::builder().workers(workers).build().unwrap();
        let v = rt.run(|| {
            let hs: Vec<_> = (0..10000u64).map(|i| fibra_runtime::spawn(move || { fibra_runtime::yield_now(); i })).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(v, 10000 * 9999 / 2);
    }
}
