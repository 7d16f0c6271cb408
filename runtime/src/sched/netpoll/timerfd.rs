//! A one-shot Linux `timerfd`: how a worker sleeping in `epoll_wait` wakes
//! for a timer with nanosecond precision (`epoll_wait` itself counts in
//! whole milliseconds, which would make a 100 µs sleep last a millisecond).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A non-blocking, close-on-exec `CLOCK_MONOTONIC` timer descriptor.
pub(super) struct TimerFd {
    fd: OwnedFd,
}

impl TimerFd {
    pub(super) fn new() -> io::Result<TimerFd> {
        // SAFETY: plain syscall with constant flags; it returns a new
        // descriptor or -1.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `timerfd_create`; nothing else
        // owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(TimerFd { fd })
    }

    /// Fires once, `after` from now (at least 1 ns: a zero value would
    /// disarm it). Re-arming replaces the previous expiry and clears the
    /// expiry count.
    pub(super) fn set(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `self.fd` is a live timerfd; `spec` is a valid
        // `itimerspec` that outlives the call; the old value is not asked
        // for (null).
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
