//! `task::Builder`: spawn with a name or a stack size. Spawning needs a
//! runtime, so its `spawn` methods are in `runtime.rs`.

/// Configures a green thread before spawning it. Not the crate root's
/// [`Builder`](crate::Builder) (`runtime::Builder`), which configures a
/// runtime.
///
/// ```
/// fibra::run(|| {
///     let h = fibra::task::Builder::new()
///         .name("worker-7")
///         .stack_size(64 * 1024)
///         .spawn(|| 1 + 1)
///         .unwrap();
///     assert_eq!(h.join().unwrap(), 2);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
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
}
