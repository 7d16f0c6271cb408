//! fibra's environment variables: every one the library reads is in the
//! README's table (and nothing else is), and a value fibra cannot use is
//! reported once on stderr, also without a `tracing` subscriber.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::child;

/// `FIBRA_*` names in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("FIBRA_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].trim_end_matches('_').to_owned());
        rest = &tail[end..];
    }
    out
}

fn read_sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_readme_table_lists_every_variable_the_library_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for dir in ["runtime/src", "gc/src"] {
        read_sources(&root.join(dir), &mut sources);
    }
    let read = names(&sources);
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table_start = readme
        .find("## Environment variables")
        .expect("README has an environment variables section");
    let table: String = readme[table_start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .collect::<Vec<_>>()
        .join(" ");
    let listed = names(&table);
    assert!(!read.is_empty());
    assert_eq!(
        read, listed,
        "variables read by runtime/src and gc/src vs the README's table"
    );
}

#[test]
fn a_bad_value_is_reported_once_on_stderr() {
    if child::is_child("a_bad_value_is_reported_once_on_stderr") {
        for _ in 0..3 {
            assert_eq!(fibra::run(|| 1 + 1), 2);
        }
        return;
    }
    let out = child::run_ok(
        "a_bad_value_is_reported_once_on_stderr",
        &[("FIBRA_WORKERS", "two"), ("FIBRA_GC_PERCENT", "lots")],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("fibra: FIBRA_WORKERS=\"two\": not a non-negative integer; ignored")
            .count(),
        1,
        "{stderr}"
    );
}
