//! The ablation screen: the table of groups of training runs (with, on large terminals, a chart
//! of the best validation ELBO against the key) and their runs; sweeps are drawn by [`sweep`].

use super::common::{Curve, draw_chart};
use crate::app::App;
use crate::format;
use crate::query::ablation::{Group, current_key, group_keys, groups, sweep_view};
use crate::query::sweep::SWEEP_KEY;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

pub mod sweep;

/// One row per training run of the grouping, ordered by group then id.
fn run_rows(app: &App, groups: &[Group]) -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    for g in groups {
        for id in &g.runs {
            let Some(r) = app.catalog.get(id) else {
                continue;
            };
            let epochs = r.summary_f64("epochs");
            let spe = match (r.summary_f64("time_s"), epochs) {
                (Some(t), Some(e)) if e > 0.0 => Some(t / e),
                _ => None,
            };
            let label = r.status_label();
            let style = if g.best_run.as_deref() == Some(id.as_str()) {
                Style::new().fg(Color::Green)
            } else {
                Style::new()
            };
            rows.push(
                Row::new(vec![
                    Cell::from(g.value.clone()),
                    Cell::from(id.clone()),
                    Cell::from(label).style(super::common::status_style(label)),
                    Cell::from(format::opt(r.summary_f64("best_val_elbo"))),
                    Cell::from(format::opt(r.summary_f64("test_chi2_per_pixel"))),
                    Cell::from(format::opt(epochs)),
                    Cell::from(format::opt(spe)),
                ])
                .style(style),
            );
        }
    }
    rows
}

/// Title of the top table: the key in use and its place among the keys ←/→ cycle through.
fn title(keys: &[String], key: &str) -> String {
    format!(
        " ablation · group by ◀ {key} ▶ ({} of {} keys)",
        keys.iter().position(|k| *k == key).unwrap_or(0) + 1,
        keys.len(),
    )
}

/// The table of groups: one row per value of `key`.
fn group_table(groups: &[Group], key: &str, title: String) -> Table<'static> {
    let header = vec![
        key.to_string(),
        "runs".into(),
        "best val ELBO".into(),
        "mean val ELBO".into(),
        "test chi2/px".into(),
        "epochs".into(),
        "s/epoch".into(),
    ];
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| {
            Row::new(vec![
                g.value.clone(),
                g.runs_text(),
                format::opt(g.best_val_elbo),
                format::opt(g.mean_val_elbo),
                format::opt(g.test_chi2_per_pixel),
                format::opt(g.epochs),
                format::opt(g.s_per_epoch),
            ])
        })
        .collect();
    let key_w = key.chars().count().clamp(8, 20) as u16;
    let widths = [key_w, 10, 13, 13, 12, 6, 7].map(Constraint::Length);
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(title))
}

/// Grouping by sweep: the settings table (and on large terminals the ELBO chart), the runs
/// outside any sweep grouped by latent dimension, then the records behind each setting.
fn draw_sweeps(app: &App, frame: &mut Frame, area: Rect, title: &str) {
    let view = sweep_view(&app.catalog);
    let settings: usize = view.sweeps.iter().map(|s| s.settings.len()).sum();
    let chart = area.height >= 36 && view.sweeps.iter().any(|s| s.settings.len() >= 2);
    let others_h = if view.others.is_empty() {
        0
    } else {
        (view.others.len() as u16 + 3).min(area.height / 3).max(4)
    };
    let [table_area, chart_area, others_area, runs_area] = Layout::vertical([
        Constraint::Length((settings as u16 + 3).min(area.height / 2).max(4)),
        Constraint::Length(if chart { area.height / 3 } else { 0 }),
        Constraint::Length(others_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let what = match view.sweeps.as_slice() {
        [one] => format!("sweep {}", sweep::short_id(&one.id)),
        many => format!("{} sweeps", many.len()),
    };
    let title = format!("{title} · {what}, {settings} settings ");
    sweep::draw_table(frame, table_area, &view.sweeps, title);
    if chart {
        sweep::draw_elbo_chart(frame, chart_area, &view.sweeps);
    }
    if !view.others.is_empty() {
        let n: usize = view.others.iter().map(|g| g.runs.len()).sum();
        let title = format!(" {n} training runs without a sweep, by {} ", view.others_by);
        frame.render_widget(
            group_table(&view.others, &view.others_by, title),
            others_area,
        );
    }
    sweep::draw_runs(frame, runs_area, &view.sweeps, app.scroll);
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let keys = group_keys(&app.catalog);
    if keys.is_empty() {
        let p = Paragraph::new(
            "No training runs with a config yet: ablation needs runs of `train-vae train`.",
        )
        .block(Block::bordered().title(" ablation "));
        frame.render_widget(p, area);
        return;
    }
    let key = current_key(app.ablation_key.as_deref(), &keys);
    if key == SWEEP_KEY {
        return draw_sweeps(app, frame, area, &title(&keys, &key));
    }
    let groups = groups(&app.catalog, &key);
    let numeric = groups.iter().all(|g| g.value.parse::<f64>().is_ok());
    let show_chart = numeric && area.height >= 36 && groups.len() >= 2;
    let group_h = (groups.len() as u16 + 3).min(area.height / 2).max(4);
    let chart_h = if show_chart { area.height / 3 } else { 0 };
    let [table_area, chart_area, runs_area] = Layout::vertical([
        Constraint::Length(group_h),
        Constraint::Length(chart_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let title = format!("{} · {} groups ", title(&keys, &key), groups.len());
    frame.render_widget(group_table(&groups, &key, title), table_area);

    if show_chart {
        let points: Vec<(f64, f64)> = groups
            .iter()
            .filter_map(|g| Some((g.value.parse::<f64>().ok()?, g.best_val_elbo?)))
            .collect();
        let curves = [Curve {
            name: "best val ELBO".into(),
            points,
            color: Color::Cyan,
        }];
        draw_chart(
            frame,
            chart_area,
            &format!("best val ELBO vs {key}"),
            &key,
            &curves,
        );
    }

    let key_w = key.chars().count().clamp(8, 20) as u16;
    let runs = run_rows(app, &groups);
    let n = runs.len();
    let runs: Vec<Row> = runs
        .into_iter()
        .skip(app.scroll.min(n.saturating_sub(1)))
        .collect();
    let id_w = groups
        .iter()
        .flat_map(|g| g.runs.iter())
        .map(|id| id.chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 44) as u16;
    let widths = [
        Constraint::Length(key_w),
        Constraint::Length(id_w),
        Constraint::Length(11),
        Constraint::Length(13),
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    let header = Row::new(vec![
        key.as_str(),
        "run",
        "status",
        "best val ELBO",
        "test chi2/px",
        "epochs",
        "s/epoch",
    ])
    .style(Style::new().bold().underlined());
    let table = Table::new(runs, widths).header(header).block(
        Block::bordered().title(format!(" {n} training runs (best of each group in green) ")),
    );
    frame.render_widget(table, runs_area);
}
