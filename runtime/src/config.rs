//! Runtime configuration, read once by the builder. Environment variables
//! are documented overrides of the defaults (like Go's `GOMAXPROCS`); an
//! explicit builder call wins over both.

use crate::stack::{normalize_size, DEFAULT_STACK_SIZE};

/// Settings of one runtime.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Number of worker threads.
    pub(crate) workers: usize,
    /// Usable stack bytes of a green thread that asks for no size.
    pub(crate) stack_size: usize,
    /// Prefix of worker thread names.
    pub(crate) thread_name: String,
}

impl Config {
    /// Builds the configuration: explicit values, else `FIBRA_WORKERS` /
    /// `FIBRA_STACK_SIZE`, else the number of CPUs and 256 KiB.
    pub(crate) fn resolve(
        workers: Option<usize>,
        stack_size: Option<usize>,
        thread_name: Option<String>,
    ) -> std::io::Result<Config> {
        let workers = match workers.or_else(|| env_usize("FIBRA_WORKERS")) {
            Some(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "fibra: a runtime needs at least one worker (workers(0) or FIBRA_WORKERS=0)",
                ))
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let stack_size = stack_size
            .or_else(|| env_usize("FIBRA_STACK_SIZE"))
            .unwrap_or(DEFAULT_STACK_SIZE);
        Ok(Config {
            workers,
            stack_size: normalize_size(stack_size),
            thread_name: thread_name.unwrap_or_else(|| "fibra-worker".into()),
        })
    }
}

fn env_usize(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!("ignoring {name}={value:?}: not a non-negative integer");
            None
        }
    }
}
