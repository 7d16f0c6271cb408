//! The HTTP example's application state: a visit counter and a small
//! key-value cache.
//!
//! NOTE: this is meant to live in fibra's GC heap (`fibra::gc::{Gc, GcCell}`);
//! until the heap lands it is kept in ordinary Rust types.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The most entries the cache holds; a put beyond that evicts some entry.
const MAX_ENTRIES: usize = 10_000;

/// Shared application state.
pub struct Store {
    visits: AtomicU64,
    cache: RwLock<HashMap<String, Arc<[u8]>>>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            visits: AtomicU64::new(0),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a visit and returns the new count.
    pub fn visit(&self) -> u64 {
        self.visits.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.cache.read().unwrap().get(key).cloned()
    }

    pub fn put(&self, key: &str, value: &[u8]) {
        let mut cache = self.cache.write().unwrap();
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(key) {
            let victim = cache.keys().next().cloned();
            if let Some(victim) = victim {
                cache.remove(&victim);
            }
        }
        cache.insert(key.to_string(), value.into());
    }

    pub fn remove(&self, key: &str) -> bool {
        self.cache.write().unwrap().remove(key).is_some()
    }
}
