//! The collector's configuration, read once from the environment.

use std::sync::OnceLock;

/// Settings of the process-wide heap.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Heap growth over the last live size that starts a cycle, in percent;
    /// `None` disables automatic cycles (`FIBRA_GC_PERCENT=off`).
    pub(crate) percent: Option<u64>,
    /// Collect every this many allocations and verify the heap
    /// (`FIBRA_GC_TORTURE=1`, or a number for the interval).
    pub(crate) torture: Option<u64>,
    /// Print one line per cycle to stderr (`FIBRA_GCTRACE=1`).
    pub(crate) gctrace: bool,
}

/// Smallest heap goal, so tiny heaps do not collect constantly.
pub(crate) const MIN_HEAP_GOAL: u64 = 4 << 20;

const DEFAULT_TORTURE_INTERVAL: u64 = 500;

impl Config {
    fn from_env() -> Config {
        let percent = match std::env::var("FIBRA_GC_PERCENT") {
            Ok(v) if v.trim().eq_ignore_ascii_case("off") => None,
            Ok(v) => match v.trim().parse::<u64>() {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::warn!(target: "fibra_gc", "FIBRA_GC_PERCENT={v:?} is not a number or `off`; using 100");
                    Some(100)
                }
            },
            Err(_) => Some(100),
        };
        let torture = match std::env::var("FIBRA_GC_TORTURE") {
            Ok(v) => match v.trim() {
                "" | "0" => None,
                "1" => Some(DEFAULT_TORTURE_INTERVAL),
                n => n
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 1)
                    .or(Some(DEFAULT_TORTURE_INTERVAL)),
            },
            Err(_) => None,
        };
        let gctrace = matches!(std::env::var("FIBRA_GCTRACE").as_deref(), Ok(v) if v.trim() != "0" && !v.trim().is_empty());
        Config {
            percent,
            torture,
            gctrace,
        }
    }
}

/// The configuration (read on first use).
pub(crate) fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::from_env)
}
