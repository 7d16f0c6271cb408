//! Installing a signal handler beside whatever was there before: the
//! overflow report (`SIGSEGV`, `SIGBUS`), preemption (`SIGURG`) and the
//! cancellation abort (`SIGABRT`) each read the previous action once,
//! install theirs, and hand on the signals that are not theirs.
//!
//! A leaf: imports nothing from the crate.

/// A three-argument (`SA_SIGINFO`) handler.
pub(crate) type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The action a signal had before fibra installed its own.
#[derive(Clone, Copy)]
pub(crate) struct Previous(libc::sigaction);

// SAFETY: plain data (a handler address, a mask, flags), written once
// before our handler is installed and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

impl Previous {
    /// The action installed for `sig` now.
    pub(crate) fn read(sig: libc::c_int) -> Previous {
        // SAFETY: sigaction with a null new action only reads the current
        // one into a zeroed struct.
        unsafe {
            let mut prev: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut prev);
            Previous(prev)
        }
    }

    /// Calls the previous handler, if it was one (not the default action
    /// or "ignore"); returns whether it did.
    ///
    /// # Safety
    ///
    /// Only from a signal handler for `sig`, with its arguments.
    pub(crate) unsafe fn call(
        &self,
        sig: libc::c_int,
        info: *mut libc::siginfo_t,
        ctx: *mut libc::c_void,
    ) -> bool {
        let act = &self.0;
        if act.sa_sigaction == libc::SIG_DFL || act.sa_sigaction == libc::SIG_IGN {
            return false;
        }
        if act.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: with SA_SIGINFO the address is a three-argument
            // handler, installed by whoever set it.
            let f: Handler = unsafe { std::mem::transmute(act.sa_sigaction) };
            f(sig, info, ctx);
        } else {
            // SAFETY: without SA_SIGINFO it is a one-argument handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(act.sa_sigaction) };
            f(sig);
        }
        true
    }
}

/// Installs `handler` for `sig` with `SA_SIGINFO | flags` and an empty
/// mask; returns whether the kernel took it.
///
/// # Safety
///
/// `handler` must be safe to run whenever `sig` arrives on any thread.
pub(crate) unsafe fn install(sig: libc::c_int, handler: Handler, flags: libc::c_int) -> bool {
    // SAFETY: the action struct is fully initialised; the caller vouches
    // for the handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut()) == 0
    }
}
