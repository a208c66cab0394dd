//! The run list: one row per run (id, kind, status, started, duration, progress, headline),
//! filtered and sorted by [`crate::query::ListQuery`]. Only the visible window of rows is built,
//! so thousands of runs cost nothing per frame. Narrow terminals drop the kind and start columns
//! (the id starts with the kind anyway).

use super::common::status_style;
use crate::app::App;
use crate::format;
use crate::store::RunEntry;
use crate::store::headline::headline;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

/// Width from which the kind and started columns are shown.
const WIDE: u16 = 110;

/// A progress cell: a 6-cell bar and the percentage.
pub fn progress_cell(run: &RunEntry) -> String {
    let f = run.progress();
    let filled = (f * 6.0).round() as usize;
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(6 - filled.min(6)),
        f * 100.0
    )
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let visible = app.visible();
    let runs = app.catalog.runs();
    let now = app.now();
    let mut title = format!(
        " runs {}/{} · sort {}{} ",
        visible.len(),
        runs.len(),
        app.query.sort.as_str(),
        if app.query.reverse { " (reversed)" } else { "" }
    );
    let filters = app.query.describe();
    if !filters.is_empty() {
        title.push_str(&format!("· filter {filters} "));
    }
    let block = Block::bordered().title(title);
    if visible.is_empty() {
        let msg = if runs.is_empty() {
            format!(
                "No runs in {} yet. Runs of train-vae and infer appear here as they start.",
                app.catalog.root().display()
            )
        } else {
            "No run matches the filter (x clears it).".to_string()
        };
        frame.render_widget(Paragraph::new(msg).block(block), area);
        return;
    }
    let wide = area.width >= WIDE;
    let height = area.height.saturating_sub(3) as usize;
    let pos = app.selected_pos(&visible).unwrap_or(0);
    let offset = if height == 0 || pos < height {
        0
    } else {
        pos + 1 - height
    };
    let id_width = visible
        .iter()
        .map(|&i| runs[i].id.chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 44) as u16;
    // narrow terminals: what the fixed columns and a ~26-cell headline leave to the id
    let id_width = if wide {
        id_width
    } else {
        id_width.min(area.width.saturating_sub(54).max(20))
    };

    let mut header = vec!["", "id"];
    if wide {
        header.push("kind");
    }
    header.push("status");
    if wide {
        header.push("started");
    }
    header.extend(["time", "progress", "headline"]);

    let rows: Vec<Row> = visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(height.max(1))
        .map(|(n, &i)| {
            let r = &runs[i];
            let mark = if app.marked.contains(&r.id) { "*" } else { " " };
            let label = r.status_label();
            let mut cells = vec![
                Cell::from(mark).fg(Color::Yellow),
                Cell::from(format::truncate(&r.id, id_width as usize)),
            ];
            if wide {
                cells.push(Cell::from(r.kind().map(|k| k.as_str()).unwrap_or("?")));
            }
            cells.push(Cell::from(label).style(status_style(label)));
            if wide {
                cells.push(Cell::from(
                    r.info
                        .as_ref()
                        .map(|i| format::started(&i.started))
                        .unwrap_or_default(),
                ));
            }
            cells.push(Cell::from(
                r.duration_s(now)
                    .map(|d| format::duration(d as f64))
                    .unwrap_or_default(),
            ));
            cells.push(Cell::from(progress_cell(r)));
            cells.push(Cell::from(headline(r)));
            let row = Row::new(cells);
            if n == pos {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![Constraint::Length(1), Constraint::Length(id_width)];
    if wide {
        widths.push(Constraint::Length(7));
    }
    widths.push(Constraint::Length(11));
    if wide {
        widths.push(Constraint::Length(16));
    }
    widths.extend([
        Constraint::Length(6),
        Constraint::Length(11),
        Constraint::Fill(1),
    ]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .column_spacing(1)
        .block(block);
    frame.render_widget(table, area);
    if visible.len() > height && height > 0 {
        let info = Line::from(format!(
            " {}-{} of {} ",
            offset + 1,
            (offset + height).min(visible.len()),
            visible.len()
        ));
        let bottom = Rect {
            y: area.bottom().saturating_sub(1),
            height: 1,
            x: area.x + 2,
            width: area.width.saturating_sub(4),
        };
        frame.render_widget(Paragraph::new(info).right_aligned(), bottom);
    }
}
