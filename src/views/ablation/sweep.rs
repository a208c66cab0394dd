//! The sweep tables and chart of the ablation screen, drawn from [`Sweep`]s.

use super::super::common::{Curve, PALETTE, draw_chart, status_style};
use crate::query::sweep::{SettingRow, Sweep};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Block, Cell, Row, Table};

/// Headers of [`SettingRow::cells`] short enough for 80 columns (D: the latent dimension, as in
/// the paper).
const SHORT_HEADER: [&str; 9] = [
    "setting",
    "D",
    "widths",
    "val ELBO",
    "test ELBO",
    "chi2/px",
    "KL",
    "active",
    "log-vol",
];
const SHORT_WIDTHS: [u16; 9] = [8, 3, 14, 8, 9, 7, 6, 6, 7];

/// The TUI's sweep table: one row per setting, with a column of sweep ids (first 8 digits, on
/// each sweep's first row) only when there are several sweeps.
pub fn draw_table(frame: &mut Frame, area: Rect, sweeps: &[Sweep], title: String) {
    let multi = sweeps.len() > 1;
    let rows: Vec<Row> = sweeps
        .iter()
        .flat_map(|s| {
            s.settings.iter().enumerate().map(move |(i, row)| {
                let mut cells: Vec<Cell> = row.cells().into_iter().map(Cell::from).collect();
                // a setting still training (or failed) is coloured by its status
                if let Some(label) = row.train_status.filter(|l| *l != "done") {
                    cells[0] = Cell::from(row.setting.clone()).style(status_style(label));
                }
                if multi {
                    let id = if i == 0 {
                        short_id(&s.id)
                    } else {
                        String::new()
                    };
                    cells.insert(0, Cell::from(id));
                }
                Row::new(cells)
            })
        })
        .collect();
    let mut header = SHORT_HEADER.to_vec();
    let mut widths = SHORT_WIDTHS.to_vec();
    if multi {
        header.insert(0, "sweep");
        widths.insert(0, 8);
    }
    let table = Table::new(rows, widths.into_iter().map(Constraint::Length))
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

/// Test and best validation ELBO against the latent dimension.
pub fn draw_elbo_chart(frame: &mut Frame, area: Rect, sweeps: &[Sweep]) {
    draw_chart(
        frame,
        area,
        "ELBO vs latent dim",
        "latent dim",
        &curves(sweeps),
    );
}

/// The records behind the sweep table: per setting its training run and status, and the
/// evaluation run its test figures come from; scrolled by `scroll` rows.
pub fn draw_runs(frame: &mut Frame, area: Rect, sweeps: &[Sweep], scroll: usize) {
    let multi = sweeps.len() > 1;
    let rows: Vec<Row> = sweeps
        .iter()
        .flat_map(|s| s.settings.iter().map(move |r| (s, r)))
        .map(|(s, r)| {
            let status = r.train_status.unwrap_or_default();
            let mut cells = vec![
                Cell::from(r.setting.clone()),
                Cell::from(r.train_run.clone().unwrap_or_default()),
                Cell::from(status).style(status_style(status)),
                Cell::from(r.eval_run.clone().unwrap_or_else(|| "(none done)".into())),
            ];
            if multi {
                cells.insert(0, Cell::from(short_id(&s.id)));
            }
            Row::new(cells)
        })
        .collect();
    let n = rows.len();
    let rows: Vec<Row> = rows
        .into_iter()
        .skip(scroll.min(n.saturating_sub(1)))
        .collect();
    let id_w = |f: fn(&SettingRow) -> Option<&String>| {
        sweeps
            .iter()
            .flat_map(|s| &s.settings)
            .filter_map(f)
            .map(|id| id.chars().count())
            .max()
            .unwrap_or(10)
            .clamp(10, 44) as u16
    };
    let mut header = vec!["setting", "train run", "status", "eval run"];
    let mut widths = vec![
        8,
        id_w(|r| r.train_run.as_ref()),
        11,
        id_w(|r| r.eval_run.as_ref()),
    ];
    if multi {
        header.insert(0, "sweep");
        widths.insert(0, 8);
    }
    let table = Table::new(rows, widths.into_iter().map(Constraint::Length))
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(format!(" runs of the {n} sweep settings ")));
    frame.render_widget(table, area);
}

/// The first 8 hex digits of a sweep id (like a short git hash).
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// Test and best validation ELBO against latent dimension, per sweep (first three sweeps).
fn curves(sweeps: &[Sweep]) -> Vec<Curve> {
    let mut out = Vec::new();
    for s in sweeps.iter().take(3) {
        for (what, get) in [
            (
                "test ELBO",
                (|r: &SettingRow| r.test_elbo) as fn(&SettingRow) -> Option<f64>,
            ),
            ("best val ELBO", |r: &SettingRow| r.best_val_elbo),
        ] {
            let mut points: Vec<(f64, f64)> = s
                .settings
                .iter()
                .filter_map(|r| Some((r.latent_dim? as f64, get(r)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = if sweeps.len() > 1 {
                format!("{} {what}", short_id(&s.id))
            } else {
                what.to_string()
            };
            let color = PALETTE[out.len() % PALETTE.len()];
            out.push(Curve {
                name,
                points,
                color,
            });
        }
    }
    out
}
