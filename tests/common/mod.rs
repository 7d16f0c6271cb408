//! Shared helpers for the example-server tests: build an example, start it on
//! an ephemeral port, and find external clients.

#![allow(dead_code)] // each test file uses a different subset

pub mod child;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running example server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Drains the server's stdout (so it never blocks on a full pipe) and
    /// returns the lines after "listening on".
    stdout: Option<JoinHandle<String>>,
}

impl Server {
    /// Builds (if needed) and starts example `name` on 127.0.0.1:0 with the
    /// given environment, and waits for its "listening on ADDR" line.
    pub fn start(name: &str, envs: &[(&str, &str)]) -> Server {
        Server::start_with_fd_limit(name, envs, None)
    }

    /// [`start`](Server::start), with the server's open-file limit set to
    /// `nofile` (if given).
    pub fn start_with_fd_limit(name: &str, envs: &[(&str, &str)], nofile: Option<u64>) -> Server {
        let bin = build_example(name);
        let mut cmd = Command::new(&bin);
        if let Some(nofile) = nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: nofile as libc::rlim_t,
                rlim_max: nofile as libc::rlim_t,
            };
            // SAFETY: the closure runs in the forked child before exec and
            // only calls setrlimit, which is async-signal-safe, on a value
            // it owns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("RUST_LOG", "warn");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The first line that says where it listens (log lines may come first).
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("{name} exited before printing \"listening on ADDR\"");
            }
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                break addr.parse().unwrap();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        let stdout = std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
            String::from_utf8_lossy(&rest).into_owned()
        });
        Server {
            child,
            addr,
            stdout: Some(stdout),
        }
    }

    /// What the server wrote to stdout after "listening on ADDR", once it
    /// has exited (call after `wait_exit`).
    pub fn stdout_after_exit(&mut self) -> String {
        assert!(
            self.child.try_wait().unwrap().is_some(),
            "the server still runs"
        );
        self.stdout
            .take()
            .expect("stdout already taken")
            .join()
            .unwrap()
    }

    /// Sends `signal`, waits for a clean exit, and returns the figures of
    /// the `gc pauses: n=… p50=…us …` line the server printed (the number
    /// before any unit, by name).
    pub fn gc_pause_report(&mut self, signal: libc::c_int) -> Vec<(String, f64)> {
        self.signal(signal);
        let status = self
            .wait_exit(Duration::from_secs(10))
            .expect("the server did not exit after the signal");
        assert!(status.success(), "{status}");
        let out = self.stdout_after_exit();
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("gc pauses: "))
            .unwrap_or_else(|| panic!("no `gc pauses:` line in stdout:\n{out}"));
        line.split_whitespace()
            .map(|field| {
                let (name, value) = field
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad field {field:?} in {line:?}"));
                let number = value.trim_end_matches("us");
                let number = number
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value {value:?} in {line:?}"));
                (name.to_string(), number)
            })
            .collect()
    }

    /// Sends `signal`, waits for a clean exit, and checks the `gc pauses:`
    /// line: at least one cycle, two pauses per cycle, ordered percentiles.
    pub fn check_gc_pause_report(&mut self, signal: libc::c_int) {
        let report = self.gc_pause_report(signal);
        let field = |name: &str| {
            report
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no {name} in {report:?}"))
                .1
        };
        assert!(field("cycles") >= 1.0, "{report:?}");
        assert!(field("n") >= 2.0 * field("cycles"), "{report:?}");
        assert!(
            field("p50") > 0.0 && field("p50") <= field("p99"),
            "{report:?}"
        );
        assert!(field("max") > 0.0, "{report:?}");
        assert!(field("stopping_p99") <= field("p99"), "{report:?}");
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Panics if the server has exited (crashed).
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server exited"
        );
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds example `name` with the test's own profile and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    // target/<profile>/deps/<this test> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name, "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cannot run cargo");
    assert!(status.success(), "building example {name} failed");
    profile_dir.join("examples").join(name)
}

/// Whether an external tool is installed; prints why a test is skipped if not.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIPPED {test}: `{tool}` is not installed (apt-get install curl wrk redis-tools)"
        );
    }
    found
}

/// Runs a command and returns its stdout; panics on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Raises RLIMIT_NOFILE towards `want` (the soft limit up to the hard limit)
/// and returns the new soft limit. Children inherit it.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let target = (want as libc::rlim_t).min(lim.rlim_max);
        if target > lim.rlim_cur {
            lim.rlim_cur = target;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let soft = lim.rlim_cur as u64;
    soft
}

/// Opens up to `want` idle connections to `addr` (fewer if the fd limit is
/// lower, keeping headroom); returns them.
pub fn idle_connections(addr: SocketAddr, want: usize) -> Vec<TcpStream> {
    let limit = raise_fd_limit(want as u64 + 512) as usize;
    let n = want.min(limit.saturating_sub(256));
    if n < want {
        eprintln!("fd limit {limit}: opening {n} idle connections instead of {want}");
    }
    (0..n)
        .map(|i| {
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("idle connection {i} failed: {e}"))
        })
        .collect()
}

/// Writes `request` on a fresh connection and reads until EOF or timeout.
pub fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).unwrap();
    read_until_close(&mut s)
}

/// Reads until EOF, an error or the socket's read timeout.
pub fn read_until_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}
