//! The interactive event loop: draw, wait for a key or the next refresh tick (~500 ms), repeat.
//!
//! The terminal is restored on every exit path: normal quit and errors through a drop guard,
//! panics through the hook installed by `ratatui::try_init` (which restores, then runs the
//! previous hook so the panic message is printed on a sane terminal).

use crate::app::App;
use crate::views;
use anyhow::{Context, Result};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, MouseEventKind};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// Interval between rescans of the experiments folder and polls of tailed metrics.
pub const TICK: Duration = Duration::from_millis(500);

/// Restores the terminal when dropped (normal exit and `?` error returns).
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Run the TUI on `root` until the user quits.
pub fn run(root: &Path) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "arclight's interface needs a terminal; use `arclight runs list|show|compare [--json]` in scripts"
        );
    }
    let mut app = App::new(root);
    let mut terminal = ratatui::try_init().context("cannot put the terminal into raw mode")?;
    let _guard = RestoreGuard;
    // Mouse wheel scrolling; failure to enable it is harmless.
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::EnableMouseCapture);
    let result = event_loop(&mut terminal, &mut app);
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::DisableMouseCapture);
    result
}

fn event_loop(terminal: &mut DefaultTerminal, app: &mut App) -> Result<()> {
    let mut last_tick = Instant::now();
    loop {
        terminal
            .draw(|f| views::draw(app, f))
            .context("cannot draw to the terminal")?;
        let timeout = if app.loading() {
            Duration::ZERO
        } else {
            TICK.saturating_sub(last_tick.elapsed())
        };
        if event::poll(timeout)? {
            match event::read()? {
                Event::Key(k) => app.handle_key(k),
                Event::Mouse(m) => match m.kind {
                    MouseEventKind::ScrollDown => app.scroll_by(3),
                    MouseEventKind::ScrollUp => app.scroll_by(-3),
                    _ => {}
                },
                _ => {}
            }
        }
        if app.quit {
            return Ok(());
        }
        if last_tick.elapsed() >= TICK || app.loading() {
            app.tick();
            last_tick = Instant::now();
        }
    }
}
