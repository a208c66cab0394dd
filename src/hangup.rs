//! Ending with the terminal: the interface waits for input itself (poll(2) on the terminal and
//! on a wake-up pipe) so that a hang-up (the terminal closed: POLLHUP / POLLERR, as after
//! `tmux kill-session` or an SSH connection dropping) and SIGHUP / SIGTERM / SIGINT end the event
//! loop at once, instead of crossterm's reader spinning forever on EOF / EIO.
//!
//! Belt and braces: a request to end that the event loop has not honoured within [`GRACE`]
//! (e.g. it is stuck inside a read from a terminal that hung up an instant after the poll) ends
//! the process from the signal or watcher thread, after a best-effort terminal restore.
//!
//! A signal's end exits with 128 + its number (143 for SIGTERM), as the shell reports a process the
//! signal killed, and a hang-up as SIGHUP's (129); a SIGHUP ignored at start (`nohup`, `trap "" HUP`)
//! stays ignored, and the hang-up it would have announced ends the interface normally (exit 0).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// Time the event loop has to return after an end request before the process is ended for it.
pub const GRACE: Duration = Duration::from_millis(700);

/// Set by a signal or a hang-up: the event loop returns at its next wake-up.
static TERMINATE: AtomicBool = AtomicBool::new(false);
/// The terminal hung up (seen by the watcher thread or a wait).
static HUNG_UP: AtomicBool = AtomicBool::new(false);
/// Set once the event loop has returned and the terminal is restored.
static DONE: AtomicBool = AtomicBool::new(false);
/// Write end of the wake-up pipe (-1 before [`Watch::install`]).
static WAKE_TX: AtomicI32 = AtomicI32::new(-1);
/// The signal that asked the interface to end (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Write end of the pipe the grace thread waits on (-1 before the handlers are installed).
static GRACE_TX: AtomicI32 = AtomicI32::new(-1);

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The terminal has bytes to read.
    Input,
    /// Nothing happened within the timeout.
    Timeout,
    /// The terminal hung up: nothing to draw on or read from any more.
    HangUp,
    /// SIGTERM, SIGHUP or SIGINT arrived.
    Terminate,
}

/// The terminal's input side and the wake-up pipe the signal handler writes to.
pub struct Watch {
    tty: RawFd,
    /// `/dev/tty` when stdin is not the terminal (kept open for the lifetime of the watch).
    _dev_tty: Option<File>,
    wake_rx: RawFd,
}

impl Watch {
    /// Watch the terminal crossterm reads (stdin if it is one, else `/dev/tty`), install the
    /// SIGTERM / SIGHUP / SIGINT handler and start the hang-up watcher thread.
    pub fn install() -> io::Result<Watch> {
        let (tty, dev_tty) = if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
            (libc::STDIN_FILENO, None)
        } else {
            let f = std::fs::OpenOptions::new().read(true).open("/dev/tty")?;
            (f.as_raw_fd(), Some(f))
        };
        let watch = Watch::on_fd(tty, dev_tty)?;
        install_signal_handlers()?;
        std::thread::Builder::new()
            .name("hangup-watch".into())
            .spawn(move || {
                if wait_for_hangup(tty) {
                    HUNG_UP.store(true, Ordering::SeqCst);
                    request_end();
                }
            })?;
        Ok(watch)
    }

    /// A watch on `tty` without handlers or watcher thread (for tests on a pseudo-terminal).
    pub fn on_fd(tty: RawFd, dev_tty: Option<File>) -> io::Result<Watch> {
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // a second watch in the same process (tests) takes over the wake-ups
        WAKE_TX.store(fds[1], Ordering::SeqCst);
        Ok(Watch {
            tty,
            _dev_tty: dev_tty,
            wake_rx: fds[0],
        })
    }

    /// Wait at most `timeout` for terminal input, a hang-up or an end request.
    pub fn wait(&self, timeout: Duration) -> io::Result<Wake> {
        if TERMINATE.load(Ordering::SeqCst) {
            return Ok(Wake::Terminate);
        }
        let mut fds = [
            libc::pollfd {
                fd: self.tty,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake_rx,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(if TERMINATE.load(Ordering::SeqCst) {
                    Wake::Terminate
                } else {
                    Wake::Timeout
                })
            } else {
                Err(e)
            };
        }
        if TERMINATE.load(Ordering::SeqCst) || fds[1].revents != 0 {
            return Ok(Wake::Terminate);
        }
        let tty = fds[0].revents;
        Ok(
            if tty & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                HUNG_UP.store(true, Ordering::SeqCst);
                Wake::HangUp
            } else if tty & libc::POLLIN != 0 {
                Wake::Input
            } else {
                Wake::Timeout
            },
        )
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let tx = WAKE_TX.swap(-1, Ordering::SeqCst);
        unsafe {
            if tx >= 0 {
                libc::close(tx);
            }
            libc::close(self.wake_rx);
        }
    }
}

/// Whether the terminal hung up.
pub fn hung_up() -> bool {
    HUNG_UP.load(Ordering::SeqCst)
}

/// Whether an end was requested (signal or hang-up).
pub fn terminating() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// Point stdout and stderr at /dev/null after the terminal hung up, so the restore and any message
/// written while the program ends (ratatui's "Failed to show the cursor", a panic hook's) succeed
/// instead of failing with EIO, which `eprintln!` turns into a panic, and a panic in the panic hook
/// into an abort.
pub fn silence_output() {
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if null >= 0 {
        unsafe {
            libc::dup2(null, libc::STDOUT_FILENO);
            libc::dup2(null, libc::STDERR_FILENO);
            libc::close(null);
        }
    }
}

/// Record that the event loop returned and the terminal was restored: no forced exit needed.
pub fn mark_done() {
    DONE.store(true, Ordering::SeqCst);
}

/// SIGHUP was not ignored at start, so a hang-up ends the process as SIGHUP would.
static SIGHUP_HANDLED: AtomicBool = AtomicBool::new(false);

/// The signal that ended the interface, if one did: the process should exit with 128 + it. A hang-up
/// counts as SIGHUP unless SIGHUP was ignored at start (whichever of the two was noticed first).
pub fn exit_signal() -> Option<i32> {
    let sig = SIGNAL.load(Ordering::SeqCst);
    if sig > 0 {
        Some(sig)
    } else if hung_up() && SIGHUP_HANDLED.load(Ordering::SeqCst) {
        Some(libc::SIGHUP)
    } else {
        None
    }
}

/// SIGTERM / SIGINT / SIGHUP handlers (SIGHUP only when not ignored at start) and the thread that
/// ends the process if the event loop does not within [`GRACE`]. Once per process.
fn install_signal_handlers() -> io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // the handler's end never blocks (a full pipe already holds the news); the thread's end does
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    let rx = fds[0];
    GRACE_TX.store(fds[1], Ordering::SeqCst);
    std::thread::Builder::new()
        .name("signal-grace".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            // blocks until a handler writes; EINTR retried
            while unsafe { libc::read(rx, b.as_mut_ptr().cast(), 1) } < 0
                && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
            {}
            end_after_grace();
        })?;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: plain sigaction calls; the handler only stores atomics and write(2)s.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                return Err(io::Error::last_os_error());
            }
            if sig == libc::SIGHUP {
                if old.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                SIGHUP_HANDLED.store(true, Ordering::SeqCst);
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // other threads' interrupted reads and writes restart (poll(2) is never restarted)
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Async-signal-safe: record the signal, wake the event loop and the grace thread; errno is kept for
/// the interrupted code.
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: __errno_location is this thread's errno, valid for the thread's life
    let errno = unsafe { *libc::__errno_location() };
    let _ = SIGNAL.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    TERMINATE.store(true, Ordering::SeqCst);
    for tx in [
        WAKE_TX.load(Ordering::SeqCst),
        GRACE_TX.load(Ordering::SeqCst),
    ] {
        if tx >= 0 {
            // SAFETY: write(2) is async-signal-safe
            let _ = unsafe { libc::write(tx, [1u8].as_ptr().cast(), 1) };
        }
    }
    unsafe { *libc::__errno_location() = errno };
}

/// Ask the event loop to end (the terminal hung up); see [`end_after_grace`]. Runs on the watcher
/// thread, never on the event loop's.
fn request_end() {
    TERMINATE.store(true, Ordering::SeqCst);
    let tx = WAKE_TX.load(Ordering::SeqCst);
    if tx >= 0 {
        let _ = unsafe { libc::write(tx, [1u8].as_ptr().cast(), 1) };
    }
    end_after_grace();
}

/// If the event loop has not returned within [`GRACE`], restore what can be restored and end the
/// process (128 + the signal after one, else 0).
fn end_after_grace() {
    std::thread::sleep(GRACE);
    if !DONE.load(Ordering::SeqCst) {
        force_restore();
        let code = exit_signal().map_or(0, |s| 128 + s);
        // _exit: no stdout flush that could wait on a lock the stuck event loop holds
        unsafe { libc::_exit(code) };
    }
}

/// Best-effort restore without the stdout lock: cooked mode, mouse reporting off, normal
/// screen, cursor shown (each fails harmlessly on a terminal that is gone).
fn force_restore() {
    let _ = ratatui::crossterm::terminal::disable_raw_mode();
    let seq = b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h";
    let _ = unsafe { libc::write(libc::STDOUT_FILENO, seq.as_ptr().cast(), seq.len()) };
}

/// Block until `fd` reports a hang-up (POLLHUP / POLLERR / POLLNVAL; asking for no events
/// makes poll wake for nothing else, so the thread costs no CPU). Returns whether it hung up.
fn wait_for_hangup(fd: RawFd) -> bool {
    loop {
        let mut p = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        let n = unsafe { libc::poll(&mut p, 1, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-terminal pair (master, slave) that is not this process's controlling terminal,
    /// so closing the master is a pure hang-up of the slave without any SIGHUP.
    fn pty() -> (RawFd, RawFd) {
        let (mut master, mut slave) = (0, 0);
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", io::Error::last_os_error());
        (master, slave)
    }

    #[test]
    fn input_timeout_and_hangup_are_told_apart() {
        let (master, slave) = pty();
        let w = Watch::on_fd(slave, None).unwrap();
        assert_eq!(w.wait(Duration::from_millis(20)).unwrap(), Wake::Timeout);
        assert_eq!(unsafe { libc::write(master, b"q\n".as_ptr().cast(), 2) }, 2);
        assert_eq!(w.wait(Duration::from_millis(500)).unwrap(), Wake::Input);
        // the terminal goes away (tmux kill-session, SSH drop): reported at once, not after
        // the timeout, and reading would give EOF / EIO
        unsafe { libc::close(master) };
        let t = std::time::Instant::now();
        assert_eq!(w.wait(Duration::from_secs(5)).unwrap(), Wake::HangUp);
        assert!(t.elapsed() < Duration::from_secs(1));
        // the watcher thread's wait returns too
        assert!(wait_for_hangup(slave));
        drop(w);
        unsafe { libc::close(slave) };
    }
}
