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
    /// Soft limit on the heap (`FIBRA_GC_MEMORY_LIMIT`, bytes with an
    /// optional K/M/G/KiB/MiB/GiB suffix): cycles start earlier to stay
    /// under it, whatever the percentage says.
    pub(crate) memory_limit: Option<u64>,
}

/// Parses `512MiB`, `2G`, `1048576`.
fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().ok()?;
    let mult = match v[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
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
                    fibra_runtime::gc_seam::report_bad_env(
                        "FIBRA_GC_PERCENT",
                        &v,
                        "not a number or `off`; using 100",
                    );
                    Some(100)
                }
            },
            Err(_) => Some(100),
        };
        let torture = match std::env::var("FIBRA_GC_TORTURE") {
            Ok(v) => match v.trim() {
                "" | "0" => None,
                "1" => Some(DEFAULT_TORTURE_INTERVAL),
                n => match n.parse::<u64>().ok().filter(|&n| n > 1) {
                    Some(n) => Some(n),
                    None => {
                        fibra_runtime::gc_seam::report_bad_env(
                            "FIBRA_GC_TORTURE",
                            &v,
                            "expected 0, 1 or an allocation interval; using 1",
                        );
                        Some(DEFAULT_TORTURE_INTERVAL)
                    }
                },
            },
            Err(_) => None,
        };
        let gctrace = matches!(std::env::var("FIBRA_GCTRACE").as_deref(), Ok(v) if v.trim() != "0" && !v.trim().is_empty());
        let memory_limit = match std::env::var("FIBRA_GC_MEMORY_LIMIT") {
            Ok(v) => {
                let parsed = parse_bytes(&v);
                if parsed.is_none() {
                    fibra_runtime::gc_seam::report_bad_env(
                        "FIBRA_GC_MEMORY_LIMIT",
                        &v,
                        "not a size like 512MiB; ignored",
                    );
                }
                parsed
            }
            Err(_) => None,
        };
        Config {
            percent,
            torture,
            gctrace,
            memory_limit,
        }
    }
}

/// The configuration (read on first use).
pub(crate) fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::from_env)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("3 kb"), Some(3 << 10));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("12 parsecs"), None);
    }
}
