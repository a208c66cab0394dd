//! Rendering: one module per screen, all drawing from the same [`App`] state.
//!
//! Every frame is: a title line, the screen body, and a two-line footer (key hints, then the
//! message or a note on what could not be read). The help overlay is drawn on top on `?`.

pub mod ablation;
pub mod common;
pub mod compare;
pub mod generic;
pub mod help;
pub mod inference;
pub mod list;
pub mod training;

use crate::app::{App, Screen};
use arclight_core::record::{RunKind, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draw the whole frame.
pub fn draw(app: &App, frame: &mut Frame) {
    let [title, body, hints, notes] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(title_line(app, title.width as usize)).style(Style::new().reversed()),
        title,
    );
    match &app.screen {
        Screen::List => list::draw(app, frame, body),
        Screen::Run(id) => match app.catalog.get(id) {
            Some(run) => match run.kind() {
                Some(RunKind::Train) => training::draw(app, run, frame, body),
                Some(RunKind::Fit) => inference::draw(app, run, frame, body),
                _ => generic::draw(app, run, frame, body),
            },
            None => frame.render_widget(
                Paragraph::new(format!("run {id} is no longer listed")),
                body,
            ),
        },
        Screen::Compare(ids) => compare::draw(app, ids, frame, body),
        Screen::Ablation => ablation::draw(app, frame, body),
    }
    frame.render_widget(
        Paragraph::new(hint_line(app)).style(Style::new().dark_gray()),
        hints,
    );
    frame.render_widget(Paragraph::new(note_line(app)), notes);
    if app.help {
        help::draw(app, frame, frame.area());
    }
}

/// The title bar: screen, run counts, then the experiments root, shortened from the left
/// (`…/tail`) so the counts stay visible however deep the root is.
fn title_line(app: &App, width: usize) -> Line<'static> {
    let runs = app.catalog.runs();
    let running = runs
        .iter()
        .filter(|r| r.status == Some(Status::Running))
        .count();
    let screen = match &app.screen {
        Screen::List => "runs".to_string(),
        Screen::Run(_) => "run".to_string(),
        Screen::Compare(ids) => format!("compare {}", ids.len()),
        Screen::Ablation => "ablation".to_string(),
    };
    let mut text = format!(
        " arclight · {screen} · {} runs, {running} running",
        runs.len()
    );
    if !app.marked.is_empty() {
        text.push_str(&format!(", {} marked", app.marked.len()));
    }
    let root = app.catalog.root().display().to_string();
    let room = width.saturating_sub(text.chars().count() + 3);
    if room >= 8 {
        text.push_str(" · ");
        text.push_str(&shorten_left(&root, room));
    }
    Line::from(text)
}

/// `s` if it fits in `max` characters, else `…` and its last `max - 1` characters.
fn shorten_left(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

fn hint_line(app: &App) -> Line<'static> {
    if app.editing_filter {
        return Line::from(vec![
            Span::styled(" filter: ", Style::new().fg(Color::Yellow)),
            Span::raw(format!("{}▏", app.query.text)),
            Span::raw("   (Enter apply · Esc clear)"),
        ]);
    }
    let text = match &app.screen {
        Screen::List => {
            " ? help  q quit  ⏎ open  ␣ mark  c compare  a ablation  / filter  t kind  s status  o sort  r reverse"
        }
        Screen::Run(_) => {
            " ? help  q quit  Esc back  ←→ chart  ↑↓ scroll  ␣ mark  n/p next/prev run"
        }
        Screen::Compare(_) => {
            " ? help  q quit  Esc back  ←→ metric  ↑↓ scroll  d only differing keys"
        }
        Screen::Ablation => " ? help  q quit  Esc back  ←→ group-by key  ↑↓ scroll",
    };
    Line::from(text)
}

fn note_line(app: &App) -> Line<'static> {
    if let Some(m) = &app.message {
        return Line::from(Span::styled(format!(" {m}"), Style::new().fg(Color::Cyan)));
    }
    let mut notes = Vec::new();
    if let Some(e) = &app.catalog.root_error {
        notes.push(e.clone());
    }
    let runs = app.catalog.runs();
    let unreadable = runs
        .iter()
        .filter(|r| r.info_error.is_some() || r.summary_error.is_some())
        .count();
    if unreadable > 0 {
        notes.push(format!(
            "{unreadable} run record(s) could not be read fully (open them for details)"
        ));
    }
    let deleted = runs.iter().filter(|r| r.gone).count();
    if deleted > 0 {
        notes.push(format!("{deleted} run dir(s) deleted"));
    }
    if notes.is_empty() {
        Line::from("")
    } else {
        Line::from(Span::styled(
            format!(" ! {}", notes.join("; ")),
            Style::new().fg(Color::Yellow),
        ))
    }
}
