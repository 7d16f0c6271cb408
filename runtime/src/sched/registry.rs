//! A slab of live tasks, so shutdown can find tasks that sit in no queue
//! (parked green threads, idle async tasks) and cancel them.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::task::Task;

/// Live tasks indexed by `Task::slot`.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<Option<Arc<Task>>>,
    free: Vec<usize>,
    len: usize,
}

impl Registry {
    pub(crate) fn insert(&mut self, task: &Arc<Task>) {
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(task.clone());
                i
            }
            None => {
                self.slots.push(Some(task.clone()));
                self.slots.len() - 1
            }
        };
        task.slot.store(index, Relaxed);
        self.len += 1;
    }

    /// Removes `task`; returns whether it was there.
    pub(crate) fn remove(&mut self, task: &Task) -> bool {
        let index = task.slot.swap(usize::MAX, Relaxed);
        if let Some(slot) = self.slots.get_mut(index) {
            if slot.take().is_some() {
                self.free.push(index);
                self.len -= 1;
                return true;
            }
        }
        false
    }

    /// Removes and returns every task.
    pub(crate) fn drain(&mut self) -> Vec<Arc<Task>> {
        self.free.clear();
        self.len = 0;
        let tasks: Vec<_> = self.slots.drain(..).flatten().collect();
        for t in &tasks {
            t.slot.store(usize::MAX, Relaxed);
        }
        tasks
    }

    /// Every task in the registry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Task>> {
        self.slots.iter().flatten()
    }

    /// References to every task, for dumps.
    pub(crate) fn tasks(&self) -> Vec<Arc<Task>> {
        self.slots.iter().flatten().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
