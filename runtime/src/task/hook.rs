//! The panic hook names the green thread or async task that panicked.
//!
//! std's default hook names the OS thread (`fibra-worker-0`), which runs
//! many tasks. fibra wraps whatever hook is installed when the first
//! runtime is built: a panic inside a task first prints which task it is,
//! then the wrapped hook runs as before. A hook installed later replaces
//! the wrapper (and loses the line); one installed earlier keeps working.

use std::io::Write;
use std::sync::Once;

use super::{current, Kind};

/// Wraps the current panic hook, once per process.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let line = current::with_task(|t| {
                t.map(|t| {
                    let kind = match t.kind {
                        Kind::Green => "green thread",
                        Kind::Async => "async task",
                    };
                    let name = t
                        .name
                        .as_deref()
                        .map(|n| format!(" '{n}'"))
                        .unwrap_or_default();
                    format!("fibra: {kind} {}{name} panicked:", t.id)
                })
            });
            if let Some(line) = line {
                // Not `eprintln!`, which panics (and so aborts, inside a
                // hook) when stderr is a closed pipe.
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            previous(info);
        }));
    });
}
