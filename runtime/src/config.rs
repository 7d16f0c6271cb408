//! Runtime configuration, read once by the builder. Environment variables
//! are documented overrides of the defaults (like Go's `GOMAXPROCS`); an
//! explicit builder call wins over both.
//!
//! Every default of the runtime lives here; `config` is a leaf: it imports
//! no other module of the crate.

use std::time::Duration;

/// Usable stack size when none is configured.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Most threads of the blocking pool when none is configured.
pub(crate) const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;
/// How long an idle blocking thread lives when nothing else is configured.
pub(crate) const DEFAULT_BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long everything must stay parked before `run` reports a deadlock.
pub(crate) const DEFAULT_DEADLOCK_GRACE: Duration = Duration::from_secs(1);
/// Prefix of worker thread names when none is configured.
pub(crate) const DEFAULT_THREAD_NAME: &str = "fibra-worker";
/// CPU time a task may run without yielding before the monitor warns,
/// when nothing else is configured.
pub(crate) const DEFAULT_STALL_WARNING: Duration = Duration::from_millis(10);

/// Settings of one runtime.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Number of worker threads.
    pub(crate) workers: usize,
    /// Usable stack bytes of a green thread that asks for no size, as
    /// asked for: the builder clamps it and rounds it to whole pages
    /// (`stack::normalize_size`) before the runtime starts.
    pub(crate) stack_size: usize,
    /// Prefix of worker thread names.
    pub(crate) thread_name: String,
    /// Most threads of the blocking pool.
    pub(crate) max_blocking_threads: usize,
    /// How long an idle blocking thread lives.
    pub(crate) blocking_keep_alive: std::time::Duration,
    /// How long everything must stay parked before `run` reports a
    /// deadlock; `None` turns detection off.
    pub(crate) deadlock_grace: Option<std::time::Duration>,
    /// Whether SIGQUIT prints a task dump.
    pub(crate) dump_on_sigquit: bool,
    /// CPU time a task may run without yielding before the monitor warns
    /// (`FIBRA_STALL_WARN_MS`); `None`: no stall warnings.
    pub(crate) stall_warning: Option<Duration>,
    /// The tokio runtime whose context futures are polled in.
    #[cfg(feature = "tokio")]
    pub(crate) tokio_handle: Option<tokio::runtime::Handle>,
}

impl Config {
    /// Builds the configuration: explicit values, else `FIBRA_WORKERS` /
    /// `FIBRA_STACK_SIZE` / `FIBRA_MAX_BLOCKING_THREADS`, else the number
    /// of CPUs, 256 KiB and 512.
    pub(crate) fn resolve(
        workers: Option<usize>,
        stack_size: Option<usize>,
        thread_name: Option<String>,
        max_blocking_threads: Option<usize>,
        blocking_keep_alive: Option<std::time::Duration>,
        deadlock_grace: Option<Option<std::time::Duration>>,
        dump_on_sigquit: Option<bool>,
    ) -> std::io::Result<Config> {
        let workers =
            match workers.or_else(|| env_usize("FIBRA_WORKERS")) {
                Some(0) => return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "fibra: a runtime needs at least one worker (workers(0) or FIBRA_WORKERS=0)",
                )),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
        let stack_size = stack_size
            .or_else(|| env_usize("FIBRA_STACK_SIZE"))
            .unwrap_or(DEFAULT_STACK_SIZE);
        Ok(Config {
            workers,
            stack_size,
            thread_name: thread_name.unwrap_or_else(|| DEFAULT_THREAD_NAME.into()),
            max_blocking_threads: match max_blocking_threads
                .or_else(|| env_usize("FIBRA_MAX_BLOCKING_THREADS"))
            {
                Some(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "fibra: the blocking pool needs at least one thread \
                         (max_blocking_threads(0) or FIBRA_MAX_BLOCKING_THREADS=0)",
                    ))
                }
                Some(n) => n,
                None => DEFAULT_MAX_BLOCKING_THREADS,
            },
            blocking_keep_alive: blocking_keep_alive.unwrap_or(DEFAULT_BLOCKING_KEEP_ALIVE),
            deadlock_grace: deadlock_grace.unwrap_or(Some(DEFAULT_DEADLOCK_GRACE)),
            dump_on_sigquit: dump_on_sigquit.unwrap_or(true),
            // The builder's `stall_warning`, if called, replaces this.
            stall_warning: env_stall_warning().unwrap_or(Some(DEFAULT_STALL_WARNING)),
            #[cfg(feature = "tokio")]
            tokio_handle: None,
        })
    }
}

/// `FIBRA_STALL_WARN_MS`: milliseconds of CPU time, or `off` (also `0`).
fn env_stall_warning() -> Option<Option<Duration>> {
    const NAME: &str = "FIBRA_STALL_WARN_MS";
    let value = std::env::var(NAME).ok()?;
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    match value.parse::<u64>() {
        Ok(0) => Some(None),
        Ok(ms) => Some(Some(Duration::from_millis(ms))),
        Err(_) => {
            report_bad_env(
                NAME,
                value,
                "not a number of milliseconds or `off`; ignored",
            );
            None
        }
    }
}

fn env_usize(name: &'static str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            report_bad_env(name, &value, "not a non-negative integer; ignored");
            None
        }
    }
}

/// Reports an environment variable with a value fibra cannot use: once per
/// variable and process, on stderr (a program without a `tracing`
/// subscriber still sees it) and as a `tracing` warning. A failed write to
/// stderr is ignored.
#[doc(hidden)]
pub fn report_bad_env(name: &'static str, value: &str, problem: &str) {
    static REPORTED: parking_lot::Mutex<Vec<&'static str>> = parking_lot::Mutex::new(Vec::new());
    {
        let mut reported = REPORTED.lock();
        if reported.contains(&name) {
            return;
        }
        reported.push(name);
    }
    tracing::warn!("{name}={value:?}: {problem}");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("fibra: {name}={value:?}: {problem}\n").as_bytes(),
    );
}
