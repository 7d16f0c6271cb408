//! The key-value example's keyspace: sharded hash maps with per-key expiry.
//!
//! Values live in fibra's GC heap: each is a `Gc<Vec<u8>>`, and the maps
//! hold the handles (roots). Overwriting or deleting a key just drops a
//! handle; the collector frees the old value, and its pauses show up in the
//! log as `gc pause` events.
//!
//! Expiry is lazy (a read of an expired key removes it) plus a sweeper that
//! walks the shards periodically, so DBSIZE converges without reads.
//!
//! The shard locks are `fibra::sync::Mutex`es, which park a waiting green
//! thread, not `std::sync::Mutex`es, which would block its worker thread.
//! The difference matters with a GC heap: an allocation may stop its task
//! at a safepoint while the collector stops the world, and if that task
//! holds a lock on which another worker is blocked in the OS, that worker
//! reaches no safepoint: only a preemption signal can stop it, and with
//! preemption off (`FIBRA_ASYNCPREEMPTOFF=1`) the world never stops (a
//! deadlock, seen under `benches/soak.sh` before the runtime had preemption
//! signals). A parked green thread leaves its worker free to stop. New
//! values are also allocated before the lock is taken, which keeps critical
//! sections short.

use std::collections::hash_map::{Entry as MapEntry, HashMap, RandomState};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use fibra::gc::Gc;
use fibra::sync::{Mutex, MutexGuard};

const SHARDS: usize = 32;

struct Entry {
    value: Gc<Vec<u8>>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

type Shard = HashMap<Vec<u8>, Entry>;

/// The keyspace.
pub struct Store {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap()
    }

    /// Calls `f` with the live value of `key`, if any.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.get(key) {
            Some(e) if e.live(now) => f(Some(&e.value)),
            Some(_) => {
                shard.remove(key);
                f(None)
            }
            None => f(None),
        }
    }

    pub fn set(&self, key: &[u8], value: &[u8], ttl_ms: Option<i64>) {
        let expires = ttl_ms.map(deadline);
        let value = Gc::new(value.to_vec());
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(e) => {
                e.value = value;
                e.expires = expires;
            }
            None => {
                shard.insert(key.to_vec(), Entry { value, expires });
            }
        }
    }

    /// SET with NX (`if_absent`) or XX: whether the value was stored.
    pub fn set_if(&self, key: &[u8], value: &[u8], ttl_ms: Option<i64>, if_absent: bool) -> bool {
        let now = Instant::now();
        let entry = Entry {
            value: Gc::new(value.to_vec()),
            expires: ttl_ms.map(deadline),
        };
        let mut shard = self.shard(key);
        let present = shard.get(key).is_some_and(|e| e.live(now));
        if present == if_absent {
            return false;
        }
        shard.insert(key.to_vec(), entry);
        true
    }

    pub fn remove(&self, key: &[u8]) -> bool {
        let now = Instant::now();
        self.shard(key).remove(key).is_some_and(|e| e.live(now))
    }

    pub fn exists(&self, key: &[u8]) -> bool {
        self.get(key, |v| v.is_some())
    }

    /// INCR: the new value, or the error reply.
    pub fn incr(&self, key: &[u8]) -> Result<i64, &'static str> {
        const NOT_INT: &str = "ERR value is not an integer or out of range";
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.entry(key.to_vec()) {
            MapEntry::Occupied(mut o) if o.get().live(now) => {
                let e = o.get_mut();
                let n: i64 = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(NOT_INT)?;
                let n = n
                    .checked_add(1)
                    .ok_or("ERR increment or decrement would overflow")?;
                e.value = Gc::new(n.to_string().into_bytes());
                Ok(n)
            }
            MapEntry::Occupied(mut o) => {
                o.insert(Entry {
                    value: Gc::new(b"1".to_vec()),
                    expires: None,
                });
                Ok(1)
            }
            MapEntry::Vacant(v) => {
                v.insert(Entry {
                    value: Gc::new(b"1".to_vec()),
                    expires: None,
                });
                Ok(1)
            }
        }
    }

    /// EXPIRE: whether the key exists (a non-positive TTL deletes it).
    pub fn expire(&self, key: &[u8], ttl_ms: i64) -> bool {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(e) if e.live(now) => {
                if ttl_ms <= 0 {
                    shard.remove(key);
                } else {
                    e.expires = Some(deadline(ttl_ms));
                }
                true
            }
            Some(_) => {
                shard.remove(key);
                false
            }
            None => false,
        }
    }

    /// TTL: -2 if the key does not exist, -1 if it has no expiry, else the
    /// remaining seconds (rounded).
    pub fn ttl_secs(&self, key: &[u8]) -> i64 {
        let now = Instant::now();
        let shard = self.shard(key);
        match shard.get(key) {
            Some(e) if e.live(now) => match e.expires {
                None => -1,
                Some(t) => ((t - now).as_millis() as i64 + 500) / 1000,
            },
            _ => -2,
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            // Drop the old map outside the lock.
            let old = std::mem::take(&mut *shard.lock().unwrap());
            drop(old);
        }
    }

    /// Removes every expired key.
    pub fn sweep_expired(&self) {
        for shard in &self.shards {
            let now = Instant::now();
            shard.lock().unwrap().retain(|_, e| e.live(now));
        }
    }
}

fn deadline(ttl_ms: i64) -> Instant {
    let ms = u64::try_from(ttl_ms.max(0)).unwrap_or(0);
    // Far-future TTLs saturate at about 30 years.
    Instant::now() + Duration::from_millis(ms.min(1_000_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Writers on two workers contend for one shard while an OS thread runs
    /// GC cycles back to back. A writer that holds the shard lock can stop
    /// at a safepoint inside its allocation; with a lock that blocked the
    /// other worker in the OS, the world stop never completed without
    /// preemption signals (a deadlock seen under `benches/soak.sh`). The
    /// body runs in a child process with preemption signals off, since
    /// they would stop the blocked worker and hide the deadlock.
    #[test]
    fn contended_shards_never_hold_up_a_world_stop() {
        if std::env::var_os("KV_STORE_TEST_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::tests::contended_shards_never_hold_up_a_world_stop",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("KV_STORE_TEST_CHILD", "1")
                .env("FIBRA_ASYNCPREEMPTOFF", "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        static DONE: AtomicBool = AtomicBool::new(false);
        static STOP: AtomicBool = AtomicBool::new(false);
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(30));
            if !DONE.load(Ordering::SeqCst) {
                eprintln!("deadlock: the writers and the collector made no progress in 30 s");
                std::process::abort();
            }
        });
        let store: &'static Store = Box::leak(Box::new(Store::new()));
        let rt = fibra::Runtime::builder().workers(2).build().unwrap();
        let cycles = std::thread::spawn(|| {
            for _ in 0..600 {
                fibra::gc::collect();
            }
            STOP.store(true, Ordering::SeqCst);
        });
        let writes: u64 = rt.run(move || {
            let writers: Vec<_> = (0..8u8)
                .map(|i| {
                    fibra::spawn(move || {
                        let mut n = 0u64;
                        while !STOP.load(Ordering::Relaxed) {
                            store.set(b"k", &[i; 16], None);
                            store.incr(b"n").unwrap();
                            n += 1;
                            if n & 63 == 0 {
                                fibra::yield_now();
                            }
                        }
                        n
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        cycles.join().unwrap();
        DONE.store(true, Ordering::SeqCst);
        assert!(writes > 0);
        let n = store.get(b"n", |v| v.map(|v| v.to_vec())).unwrap();
        assert_eq!(std::str::from_utf8(&n).unwrap(), writes.to_string());
    }
}
