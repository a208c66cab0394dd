//! The interactive event loop: draw, wait for a key, a hang-up, a signal or the next refresh
//! tick (~500 ms), repeat. Waiting is done by [`crate::hangup::Watch`] (poll(2) on the terminal),
//! crossterm only parses the bytes once they are there: its own reader spins forever on a
//! terminal that hung up.
//!
//! The terminal is restored on every exit path: normal quit, SIGTERM / SIGINT / SIGHUP and errors
//! through a drop guard, panics through a panic hook that turns mouse reporting off and then
//! runs the hook installed by `ratatui::try_init` (which leaves raw mode and the alternate screen
//! before the panic message is printed, so the message lands on a sane terminal). After a
//! hang-up there is no terminal left: the loop just returns.
//!
//! Fault injection for the end-to-end test: with `ARCLIGHT_PANIC_AFTER_DRAW=1` in the
//! environment the loop panics right after the first frame, so the test can check that a
//! panic, too, leaves the terminal usable.

use crate::app::App;
use crate::hangup::{self, Wake, Watch};
use crate::views;
use anyhow::{Context, Result};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, MouseEventKind,
};
use ratatui::crossterm::execute;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Interval between rescans of the experiments folder and polls of tailed metrics.
pub const TICK: Duration = Duration::from_millis(500);

/// Environment variable that makes the loop panic after the first frame (test hook).
pub const PANIC_ENV: &str = "ARCLIGHT_PANIC_AFTER_DRAW";

/// Restores the terminal when dropped (normal exit, `?` error returns, unwinding).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        // errors ignored: after a hang-up there is no terminal to restore (nor to report to)
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        let _ = ratatui::try_restore();
        hangup::mark_done();
    }
}

/// Run the TUI on `root` until the user quits.
pub fn run(root: &Path) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "arclight's interface needs a terminal; use `arclight runs list|show|compare [--json]` in scripts"
        );
    }
    let watch = Watch::install().context("cannot watch the terminal for input")?;
    let mut app = App::new(root);
    let mut terminal = ratatui::try_init().context("cannot put the terminal into raw mode")?;
    let _guard = RestoreGuard;
    let ratatui_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        ratatui_hook(info);
    }));
    // Mouse wheel scrolling; failure to enable it is harmless.
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let r = event_loop(&mut terminal, &mut app, &watch);
    if hangup::hung_up() {
        // nothing to restore or report to: writes would fail with EIO, which `eprintln!` (in
        // ratatui's drop and panic hook) turns into a panic, and a panic in the hook into an abort
        hangup::silence_output();
    }
    r
}

fn event_loop(terminal: &mut DefaultTerminal, app: &mut App, watch: &Watch) -> Result<()> {
    let mut last_tick = Instant::now();
    loop {
        if let Err(e) = terminal.draw(|f| views::draw(app, f)) {
            // a terminal that hung up mid-frame is an end, not an error to report on it
            if matches!(
                watch.wait(Duration::ZERO),
                Ok(Wake::HangUp | Wake::Terminate)
            ) {
                return Ok(());
            }
            return Err(e).context("cannot draw to the terminal");
        }
        if std::env::var_os(PANIC_ENV).is_some() {
            panic!("{PANIC_ENV} is set: panicking after the first frame");
        }
        let timeout = if app.loading() {
            Duration::ZERO
        } else {
            TICK.saturating_sub(last_tick.elapsed())
        };
        match watch
            .wait(timeout)
            .context("cannot wait for terminal input")?
        {
            Wake::HangUp | Wake::Terminate => return Ok(()),
            Wake::Timeout => {}
            Wake::Input => {
                // everything already typed, without blocking
                while !app.quit && event::poll(Duration::ZERO)? {
                    handle(app, event::read()?);
                }
            }
        }
        if app.quit || hangup::terminating() {
            return Ok(());
        }
        if last_tick.elapsed() >= TICK || app.loading() {
            app.tick();
            last_tick = Instant::now();
        }
    }
}

fn handle(app: &mut App, ev: Event) {
    match ev {
        Event::Key(k) => app.handle_key(k),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => app.scroll_by(3),
            MouseEventKind::ScrollUp => app.scroll_by(-3),
            _ => {}
        },
        _ => {}
    }
}
