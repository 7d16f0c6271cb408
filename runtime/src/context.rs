//! The thread's runtime context as the layers above the scheduler see it:
//! which worker this OS thread is and which runtime it entered
//! (`sched::context`), and which task it runs (`task::current`).

pub(crate) use crate::sched::context::{current_runtime, enter, with_worker, OUTSIDE_RUNTIME};
pub(crate) use crate::task::current::with_task;
