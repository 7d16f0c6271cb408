//! `fibra::debug::prometheus()` and examples/http's `/metrics`: text that a
//! Prometheus parser accepts. A strict line-format check written here
//! (HELP and TYPE before each family's samples, contiguous families,
//! counters ending in `_total`, histogram buckets cumulative and ending in
//! `+Inf` with `_count` equal to it), plus `prometheus_client`'s own parser
//! when python3 has it.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One parsed sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A family: its type and samples, in order.
#[derive(Debug, Default)]
struct Family {
    ty: String,
    help: bool,
    samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad sample value {s:?}")),
    }
}

/// `{a="x",b="y"}` (escapes `\\`, `\"`, `\n`).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let inner = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("bad label set {s:?}"));
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .unwrap_or_else(|| panic!("bad label in {s:?}"));
        let key = &rest[..eq];
        assert!(is_name(key) && !key.contains(':'), "bad label name {key:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("unquoted label value in {s:?}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {s:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {s:?}"),
            }
        };
        out.push((key.to_string(), value));
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

/// The family a sample belongs to (histogram suffixes stripped when the
/// base is a declared histogram).
fn family_of(name: &str, families: &HashMap<String, Family>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.get(base).is_some_and(|f| f.ty == "histogram") {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// Parses `text` strictly; panics with the offending line otherwise.
fn parse_strict(text: &str) -> HashMap<String, Family> {
    assert!(text.ends_with('\n'), "the text must end with a newline");
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut closed: HashSet<String> = HashSet::new();
    for line in text.lines() {
        assert!(!line.is_empty(), "empty line");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(is_name(name), "bad name in {line:?}");
            assert!(!help.trim().is_empty(), "empty HELP in {line:?}");
            let f = families.entry(name.to_string()).or_default();
            assert!(
                !f.help && f.ty.is_empty(),
                "HELP after TYPE or twice: {line:?}"
            );
            f.help = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE name type");
            assert!(is_name(name), "bad name in {line:?}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty),
                "bad type in {line:?}"
            );
            let f = families.entry(name.to_string()).or_default();
            assert!(f.help, "TYPE without HELP before it: {line:?}");
            assert!(f.ty.is_empty(), "TYPE twice: {line:?}");
            f.ty = ty.to_string();
            if ty == "counter" {
                assert!(
                    name.ends_with("_total"),
                    "counter not ending in _total: {line:?}"
                );
            }
            if let Some(prev) = order.last() {
                closed.insert(prev.clone());
            }
            order.push(name.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("sample without value");
        let (name, labels) = match series.find('{') {
            Some(i) => (&series[..i], parse_labels(&series[i..])),
            None => (series, Vec::new()),
        };
        assert!(is_name(name), "bad sample name in {line:?}");
        let family = family_of(name, &families);
        assert!(
            order.last() == Some(&family),
            "sample outside its family's block (or before its TYPE): {line:?}"
        );
        assert!(!closed.contains(&family));
        families.get_mut(&family).unwrap().samples.push(Sample {
            name: name.to_string(),
            labels,
            value: parse_value(value),
        });
    }
    for (name, f) in &families {
        assert!(!f.ty.is_empty(), "{name}: HELP without TYPE");
        assert!(!f.samples.is_empty(), "{name}: no samples");
        match f.ty.as_str() {
            "counter" => assert!(f.samples.iter().all(|s| s.value >= 0.0), "{name}"),
            "histogram" => check_histogram(name, f),
            _ => {}
        }
    }
    families
}

fn check_histogram(name: &str, f: &Family) {
    let mut last_le = f64::NEG_INFINITY;
    let mut last_n = 0.0;
    let mut inf = None;
    let (mut sum, mut count) = (None, None);
    for s in &f.samples {
        if s.name == format!("{name}_bucket") {
            let le = s
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| parse_value(v))
                .unwrap_or_else(|| panic!("{name}: bucket without le"));
            assert!(le > last_le, "{name}: le not increasing");
            assert!(s.value >= last_n, "{name}: buckets not cumulative");
            (last_le, last_n) = (le, s.value);
            if le == f64::INFINITY {
                inf = Some(s.value);
            }
        } else if s.name == format!("{name}_sum") {
            sum = Some(s.value);
        } else if s.name == format!("{name}_count") {
            count = Some(s.value);
        } else {
            panic!("{name}: unexpected sample {}", s.name);
        }
    }
    assert_eq!(inf, count, "{name}: +Inf bucket must equal _count");
    assert!(sum.is_some_and(|s| s >= 0.0), "{name}: no _sum");
}

fn value(families: &HashMap<String, Family>, name: &str) -> f64 {
    families[name].samples[0].value
}

/// Checks the families every `/metrics` must have.
fn check_contract(families: &HashMap<String, Family>, workers: usize) {
    assert_eq!(families["fibra_tasks_spawned_total"].ty, "counter");
    assert_eq!(families["fibra_gc_heap_bytes"].ty, "gauge");
    assert_eq!(families["fibra_gc_pause_seconds"].ty, "histogram");
    assert!(value(families, "fibra_tasks_spawned_total") >= 1.0);
    for family in [
        "fibra_worker_tasks_run_total",
        "fibra_worker_remote_wakes_total",
        "fibra_worker_green_threads",
        "fibra_worker_idle_seconds_total",
    ] {
        let labels: Vec<_> = families[family]
            .samples
            .iter()
            .map(|s| s.labels.clone())
            .collect();
        let expected: Vec<_> = (0..workers)
            .map(|i| vec![("worker".to_string(), i.to_string())])
            .collect();
        assert_eq!(labels, expected, "{family}");
    }
}

/// Runs `prometheus_client`'s parser over `text` when python3 has it;
/// returns whether it ran.
fn python_parse(text: &str) -> bool {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
assert fams['fibra_tasks_spawned'].type == 'counter', fams.keys()
assert fams['fibra_gc_heap_bytes'].type == 'gauge'
h = fams['fibra_gc_pause_seconds']
assert h.type == 'histogram'
names = {s.name for s in h.samples}
assert {'fibra_gc_pause_seconds_bucket', 'fibra_gc_pause_seconds_sum', 'fibra_gc_pause_seconds_count'} <= names, names
assert any(s.labels.get('worker') == '0' for s in fams['fibra_worker_tasks_run'].samples)
print('parsed', len(fams), 'families')
"#;
    // The first python3 that has the module: a pyenv shim first on PATH
    // may not see the distribution's package.
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(python) = python else {
        eprintln!("python3 with prometheus_client not found: only the strict Rust check ran");
        return false;
    };
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the text:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "prometheus_client: {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    true
}

#[test]
fn prometheus_text_is_well_formed_and_complete() {
    let rt = fibra::Runtime::builder().workers(2).build().unwrap();
    let text = rt.run(|| {
        for _ in 0..10 {
            fibra::spawn(|| fibra::gc::Gc::new(vec![1u8; 64]))
                .join()
                .unwrap();
        }
        fibra::gc::collect();
        fibra::debug::prometheus()
    });
    let families = parse_strict(&text);
    check_contract(&families, 2);
    assert!(value(&families, "fibra_tasks_spawned_total") >= 11.0);
    // A full cycle has two pauses.
    let pauses = &families["fibra_gc_pause_seconds"].samples;
    let count = pauses
        .iter()
        .find(|s| s.name == "fibra_gc_pause_seconds_count")
        .unwrap();
    assert!(count.value >= 2.0);
    assert!(value(&families, "fibra_gc_cycles_total") >= 1.0);
    python_parse(&text);
}

#[test]
fn the_strict_check_rejects_malformed_text() {
    let bad = [
        "fibra_x 1\n",                                                     // no TYPE
        "# TYPE fibra_x gauge\nfibra_x 1\n",                               // no HELP
        "# HELP fibra_x x\n# TYPE fibra_x counter\nfibra_x 1\n",           // counter name
        "# HELP a_total a\n# TYPE a_total counter\na_total 1",             // no newline
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
        "# HELP g g\n# TYPE g gauge\ng{worker=0} 1\n",                     // unquoted label
    ];
    for text in bad {
        let r = std::panic::catch_unwind(|| parse_strict(text));
        assert!(r.is_err(), "accepted: {text:?}");
    }
}

#[test]
fn examples_http_serves_metrics() {
    let server = common::Server::start("http", &[("FIBRA_WORKERS", "2")]);
    // Some traffic first, so the counters have moved.
    for _ in 0..3 {
        common::exchange(
            server.addr,
            b"GET /visits HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        );
    }
    let reply = common::exchange(
        server.addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let reply = String::from_utf8(reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let families = parse_strict(body);
    check_contract(&families, 2);
    python_parse(body);
}
