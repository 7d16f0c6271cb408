//! The HTTP example's application state, in fibra's GC heap: a visit
//! counter and a small cache whose values are `Gc<Vec<u8>>` objects. The
//! cache's index is an ordinary map of handles (roots) behind a
//! `fibra::sync::RwLock`, which parks a green thread instead of blocking its
//! worker; replacing or deleting an entry just drops a handle, and the
//! collector frees the old value.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use fibra::gc::Gc;
use fibra::sync::RwLock;

/// The most entries the cache holds; a put beyond that evicts some entry.
const MAX_ENTRIES: usize = 10_000;

/// Shared application state.
pub struct Store {
    visits: Gc<AtomicU64>,
    cache: RwLock<HashMap<String, Gc<Vec<u8>>>>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            visits: Gc::new(AtomicU64::new(0)),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a visit and returns the new count.
    pub fn visit(&self) -> u64 {
        self.visits.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn get(&self, key: &str) -> Option<Gc<Vec<u8>>> {
        self.cache.read().unwrap().get(key).cloned()
    }

    pub fn put(&self, key: &str, value: &[u8]) {
        let value = Gc::new(value.to_vec());
        let mut cache = self.cache.write().unwrap();
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(key) {
            let victim = cache.keys().next().cloned();
            if let Some(victim) = victim {
                cache.remove(&victim);
            }
        }
        cache.insert(key.to_string(), value);
    }

    pub fn remove(&self, key: &str) -> bool {
        self.cache.write().unwrap().remove(key).is_some()
    }
}
