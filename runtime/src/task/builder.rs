//! `task::Builder`: spawn with a name or a stack size.

use std::io;

use super::JoinHandle;
use crate::context;

/// Configures a green thread before spawning it.
///
/// ```
/// fibra_runtime::run(|| {
///     let h = fibra_runtime::task::Builder::new()
///         .name("worker-7")
///         .stack_size(64 * 1024)
///         .spawn(|| 1 + 1)
///         .unwrap();
///     assert_eq!(h.join().unwrap(), 2);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task; the name appears in `tracing` spans and dumps.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack bytes for this task, clamped to 16 KiB ..= 8 MiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the green thread on the current runtime.
    ///
    /// Fails if called outside a fibra runtime, or if the process cannot map
    /// another stack (the error says how to raise the limit).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(shared) = context::current_runtime() else {
            return Err(io::Error::other(context::OUTSIDE_RUNTIME));
        };
        crate::stack::check_mapping_budget()?;
        let stack_size = self
            .stack_size
            .map(crate::stack::normalize_size)
            .unwrap_or(0);
        let name = self.name.map(String::into_boxed_str);
        Ok(shared.spawn_green(name, stack_size, f))
    }

    /// Spawns a future as an async task (no stack of its own) on the
    /// current runtime.
    ///
    /// ```
    /// fibra_runtime::run(|| {
    ///     let h = fibra_runtime::task::Builder::new().name("fut").spawn_async(async { 5 }).unwrap();
    ///     assert_eq!(h.join().unwrap(), 5);
    /// });
    /// ```
    pub fn spawn_async<Fut>(self, fut: Fut) -> io::Result<JoinHandle<Fut::Output>>
    where
        Fut: std::future::Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        let Some(shared) = context::current_runtime() else {
            return Err(io::Error::other(context::OUTSIDE_RUNTIME));
        };
        let name = self.name.map(String::into_boxed_str);
        Ok(shared.spawn_async(name, fut))
    }
}
