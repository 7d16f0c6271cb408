//! Channels, `select!` and sync through the `fibra` facade only.

use std::time::Duration;

#[test]
fn select_and_channels_through_the_facade() {
    let v = fibra::run(|| {
        let (tx, rx) = fibra::chan::channel::<u32>(0);
        let (_tx2, rx2) = fibra::chan::channel::<u32>(0);
        fibra::spawn(move || tx.send(5).unwrap());
        let wg = fibra::sync::WaitGroup::new();
        wg.wait();
        fibra::select! {
            recv(rx) -> v => v.unwrap(),
            recv(rx2) -> _ => 0,
            default(Duration::from_secs(10)) => 1,
        }
    });
    assert_eq!(v, 5);
}
