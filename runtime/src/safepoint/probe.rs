//! What a worker thread is doing, seen from another thread: its CPU
//! clock, and its state in the kernel (running or runnable, asleep in a
//! system call, and which call). The stopper uses it to say why a worker
//! kept a stop waiting, the monitor to tell a task that computes from a
//! worker the OS has descheduled.
//!
//! Neither function allocates or takes a lock: the stopper calls them
//! while the world stops, when a stopped task may hold malloc's lock.

use std::time::Duration;

/// The CPU time thread `tid` (of this process) has used, or `None` if the
/// thread is gone. Reads the thread's CPU clock as
/// `pthread_getcpuclockid` + `clock_gettime` would, with the clock id
/// made from the kernel thread id (as glibc makes it): unlike a
/// `pthread_t`, a thread id may be named after its thread has exited.
pub(crate) fn cpu_time(tid: libc::pid_t) -> Option<Duration> {
    // The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED):
    // (~tid << 3) | CPUCLOCK_PERTHREAD_MASK (4) | CPUCLOCK_SCHED (2).
    let clock: libc::clockid_t = ((!tid) << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; an id naming no
    // thread of this process fails with EINVAL.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The CPU time the calling thread has used.
#[cfg(test)]
fn own_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as above; the calling thread's clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A thread's state in the kernel, from `/proc/self/task/TID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KernelState {
    /// Running or waiting for a CPU (`R`).
    Runnable,
    /// Asleep in the kernel (`S`, or `D` uninterruptibly), with the number
    /// of the system call it sleeps in, when known.
    Sleeping { syscall: Option<i64> },
    /// Stopped, traced, or another state.
    Other(u8),
}

/// Thread `tid`'s kernel state, or `None` if it cannot be read (the
/// thread is gone, no `/proc`).
pub(crate) fn kernel_state(tid: libc::pid_t) -> Option<KernelState> {
    let mut buf = [0u8; 512];
    let stat = read_proc(tid, b"stat", &mut buf)?;
    // "TID (COMM) STATE ...": COMM may hold spaces and parentheses, so
    // the state follows the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let state = *stat.get(close + 2)?;
    Some(match state {
        b'R' => KernelState::Runnable,
        b'S' | b'D' => {
            let mut buf = [0u8; 256];
            let syscall = read_proc(tid, b"syscall", &mut buf).and_then(parse_leading_int);
            KernelState::Sleeping { syscall }
        }
        other => KernelState::Other(other),
    })
}

/// Whether signal `sig` is pending for thread `tid` and not blocked by it
/// (`SigPnd` and `SigBlk` in `/proc/self/task/TID/status`); `None` if
/// the file cannot be read. A thread with such a signal pending runs no
/// instruction of its own code before the signal's handler: the kernel
/// delivers it on the thread's next return to user mode.
pub(crate) fn signal_pending(tid: libc::pid_t, sig: libc::c_int) -> Option<bool> {
    let mut buf = [0u8; 4096];
    let status = read_proc(tid, b"status", &mut buf)?;
    let bit = 1u64 << (sig - 1);
    let pending = hex_field(status, b"SigPnd:")?;
    let blocked = hex_field(status, b"SigBlk:")?;
    Some(pending & bit != 0 && blocked & bit == 0)
}

/// The hexadecimal value of the line of `text` that starts with `name`.
fn hex_field(text: &[u8], name: &[u8]) -> Option<u64> {
    let start = text
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(name))?;
    let digits = start[name.len()..].trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        v = (v << 4) | (d as char).to_digit(16)? as u64;
    }
    Some(v)
}

/// The leading decimal integer of `text` (the system call number that
/// starts `/proc/.../syscall`; "running" gives `None`).
fn parse_leading_int(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in &digits[..end] {
        n = n.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -n } else { n })
}

/// Reads `/proc/self/task/TID/FILE` into `buf` (without allocating);
/// returns the bytes read.
fn read_proc<'a>(tid: libc::pid_t, file: &[u8], buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let mut path = [0u8; 64];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        for &b in bytes {
            path[len] = b;
            len += 1;
        }
    };
    push(b"/proc/self/task/");
    let mut digits = [0u8; 12];
    let mut n = tid.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(&digits[i..]);
    push(b"/");
    push(file);
    // `path` is zeroed past `len`: a C string.
    // SAFETY: `path` is NUL-terminated; open has no other precondition.
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast::<libc::c_char>(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: reads at most `buf.len()` bytes into `buf`, which we own.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast::<libc::c_void>(), buf.len()) };
    // SAFETY: `fd` is ours, opened above.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return None;
    }
    Some(&buf[..n as usize])
}

/// A thread that sleeps for `sleep` (for the tests of what is seen of a
/// thread from another), and its kernel thread id once it runs.
#[cfg(test)]
pub(crate) fn sleeper(sleep: Duration) -> (std::thread::JoinHandle<()>, libc::pid_t) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        std::thread::sleep(sleep);
    });
    (handle, rx.recv().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_thread_uses_cpu_time_and_a_sleeping_one_does_not() {
        let (sleeper, tid) = sleeper(Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(50));
        let before = cpu_time(tid).expect("a live thread has a CPU clock");
        std::thread::sleep(Duration::from_millis(50));
        let after = cpu_time(tid).unwrap();
        assert!(
            after - before < Duration::from_millis(5),
            "{before:?} {after:?}"
        );
        match kernel_state(tid) {
            Some(KernelState::Sleeping { syscall }) => {
                // nanosleep or clock_nanosleep.
                assert!(
                    syscall == Some(libc::SYS_nanosleep)
                        || syscall == Some(libc::SYS_clock_nanosleep),
                    "{syscall:?}"
                );
            }
            other => panic!("a sleeping thread reads as {other:?}"),
        }
        sleeper.join().unwrap();

        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let start = own_cpu_time();
        while own_cpu_time() - start < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        assert!(cpu_time(me).unwrap() >= start + Duration::from_millis(20));
        assert_eq!(kernel_state(me), Some(KernelState::Runnable));
    }

    #[test]
    fn a_blocked_pending_signal_is_seen_and_so_is_its_unblocking() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        assert_eq!(signal_pending(me, libc::SIGURG), Some(false));
        // SAFETY: a sigset we own, then a mask change of this thread only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            // SIGWINCH is ignored by default: unblocking it below is harmless.
            libc::syscall(libc::SYS_tgkill, libc::getpid(), me, libc::SIGWINCH);
        }
        // Pending, but blocked: the thread could go on running.
        assert_eq!(signal_pending(me, libc::SIGWINCH), Some(false));
        let mut buf = [0u8; 4096];
        let status = read_proc(me, b"status", &mut buf).unwrap();
        let bit = 1u64 << (libc::SIGWINCH - 1);
        assert_ne!(hex_field(status, b"SigPnd:").unwrap() & bit, 0);
        assert_ne!(hex_field(status, b"SigBlk:").unwrap() & bit, 0);
        // SAFETY: as above.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGWINCH);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        assert_eq!(signal_pending(me, libc::SIGWINCH), Some(false));
    }

    #[test]
    fn hex_fields() {
        let text = b"Name:\tx\nSigPnd:\t0000000000400000\nSigBlk:\tfffffffe7ffbfeff\n";
        assert_eq!(hex_field(text, b"SigPnd:"), Some(0x40_0000));
        assert_eq!(hex_field(text, b"SigBlk:"), Some(0xffff_fffe_7ffb_feff));
        assert_eq!(hex_field(text, b"ShdPnd:"), None);
    }

    #[test]
    fn leading_integers() {
        assert_eq!(parse_leading_int(b"230 0x1 0x2"), Some(230));
        assert_eq!(parse_leading_int(b"-1 0x7ff"), Some(-1));
        assert_eq!(parse_leading_int(b"running\n"), None);
    }
}
