//! Keyboard help, drawn over the current screen on `?`.

use crate::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// (section, [(keys, action)]) of every binding.
pub const BINDINGS: [(&str, &[(&str, &str)]); 4] = [
    (
        "everywhere",
        &[
            ("?", "this help (any of ? Esc q closes it)"),
            ("q  Ctrl-C", "quit"),
            ("Esc  Backspace", "back to the run list"),
        ],
    ),
    (
        "run list",
        &[
            ("↑↓ j k  PgUp PgDn  g G", "move"),
            ("Enter  → l", "open the run"),
            ("Space", "mark / unmark for compare"),
            ("c", "compare marked runs"),
            ("a", "ablation over training runs"),
            ("/", "text filter (Enter keeps, Esc clears)"),
            ("t  s", "cycle kind / status filter"),
            ("o  r", "cycle sort column / reverse"),
            ("x  u", "clear filters / unmark all"),
        ],
    ),
    (
        "run views",
        &[
            ("← →  [ ]", "pick chart / metric / group-by key"),
            ("↑↓  PgUp PgDn", "scroll tables"),
            ("Space", "mark this run"),
            ("n  p", "next / previous run"),
        ],
    ),
    ("compare", &[("d", "show only differing config keys")]),
];

pub fn draw(_app: &App, frame: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for (section, keys) in BINDINGS {
        lines.push(Line::from(Span::styled(
            section,
            Style::new().bold().underlined(),
        )));
        for (k, what) in keys.iter() {
            lines.push(Line::from(vec![
                Span::styled(format!("  {k:<24}"), Style::new().yellow()),
                Span::raw(*what),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 72.min(area.width);
    let popup = area.centered(Constraint::Length(w), Constraint::Length(h));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" keys ")),
        popup,
    );
}
