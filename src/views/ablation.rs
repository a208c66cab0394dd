//! Ablation: training runs grouped by a config key (latent dimension by default, any varying
//! key with ←/→), with per group the best and mean best-validation ELBO, the test
//! reconstruction chi^2 per pixel, epochs trained and seconds per epoch, all from the runs'
//! `summary.json`. Large terminals add a chart of the best validation ELBO against the key.

use super::common::{Curve, draw_chart};
use crate::app::App;
use crate::format;
use crate::store::{Catalog, RunEntry};
use arclight_core::record::RunKind;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The default grouping key (Chianese et al. 2020 vary the VAE's latent dimension).
pub const DEFAULT_KEY: &str = "latent_dim";

/// Figures of one group of training runs.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Group {
    /// The config value shared by the group.
    pub value: String,
    /// Run ids in the group.
    pub runs: Vec<String>,
    /// Runs without a readable summary (still running, failed or interrupted).
    pub without_summary: usize,
    /// Largest best-validation ELBO of the group (the ELBO is maximised).
    pub best_val_elbo: Option<f64>,
    /// Run that reached it.
    pub best_run: Option<String>,
    pub mean_val_elbo: Option<f64>,
    /// Mean test reconstruction chi^2 per pixel.
    pub test_chi2_per_pixel: Option<f64>,
    /// Mean epochs trained.
    pub epochs: Option<f64>,
    /// Mean wall time per epoch in seconds.
    pub s_per_epoch: Option<f64>,
}

fn train_runs(catalog: &Catalog) -> impl Iterator<Item = &RunEntry> {
    catalog
        .runs()
        .iter()
        .filter(|r| !r.gone && r.kind() == Some(RunKind::Train))
}

/// Config keys to group by: `latent_dim` first (if any run has it), then every flattened config
/// key with two or more distinct values among the training runs.
pub fn group_keys(catalog: &Catalog) -> Vec<String> {
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in train_runs(catalog) {
        if let Some(info) = &r.info {
            for (k, v) in format::flatten(&info.config) {
                values.entry(k).or_default().insert(v);
            }
        }
    }
    let mut keys: Vec<String> = Vec::new();
    // latent_dim first, wherever the config nests it (train-vae: architecture.latent_dim)
    if let Some(k) = values.keys().find(|k| is_key(k, DEFAULT_KEY)) {
        keys.push(k.clone());
    }
    keys.extend(
        values
            .iter()
            .filter(|(k, v)| v.len() > 1 && !is_key(k, DEFAULT_KEY))
            .map(|(k, _)| k.clone()),
    );
    if keys.is_empty() {
        keys.extend(values.keys().cloned());
    }
    keys
}

/// Whether a flattened config key is `name` itself or ends in `.name`.
fn is_key(flat: &str, name: &str) -> bool {
    flat == name || flat.strip_suffix(name).is_some_and(|p| p.ends_with('.'))
}

/// The flattened config key a user's `--by` names: itself if some training run has it, else
/// the unique key ending in `.<name>` (`latent_dim` -> `architecture.latent_dim`).
pub fn resolve_key(catalog: &Catalog, name: &str) -> String {
    let keys: BTreeSet<String> = train_runs(catalog)
        .filter_map(|r| r.info.as_ref())
        .flat_map(|i| format::flatten(&i.config).into_keys())
        .collect();
    if keys.contains(name) {
        return name.to_string();
    }
    let hits: Vec<&String> = keys.iter().filter(|k| is_key(k, name)).collect();
    match hits.as_slice() {
        [one] => (*one).clone(),
        _ => name.to_string(),
    }
}

/// The key in use: the user's pick if still offered, else the first offered key.
pub fn current_key(app: &App, keys: &[String]) -> String {
    match &app.ablation_key {
        Some(k) if keys.contains(k) => k.clone(),
        _ => keys.first().cloned().unwrap_or_else(|| DEFAULT_KEY.into()),
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Group the training runs by the flattened config `key` (missing values form group `-`),
/// sorted numerically when every value is a number.
pub fn groups(catalog: &Catalog, key: &str) -> Vec<Group> {
    let mut by: BTreeMap<String, Vec<&RunEntry>> = BTreeMap::new();
    for r in train_runs(catalog) {
        let v = r
            .info
            .as_ref()
            .and_then(|i| format::flatten(&i.config).remove(key))
            .unwrap_or_else(|| "-".into());
        by.entry(v).or_default().push(r);
    }
    let mut out: Vec<Group> = by
        .into_iter()
        .map(|(value, runs)| {
            let mut elbos = Vec::new();
            let (mut chi2, mut epochs, mut spe) = (Vec::new(), Vec::new(), Vec::new());
            let mut best: Option<(f64, String)> = None;
            let mut without = 0;
            for r in &runs {
                if r.summary.is_none() {
                    without += 1;
                    continue;
                }
                if let Some(v) = r.summary_f64("best_val_elbo") {
                    elbos.push(v);
                    if best.as_ref().is_none_or(|(b, _)| v > *b) {
                        best = Some((v, r.id.clone()));
                    }
                }
                if let Some(c) = r.summary_f64("test_chi2_per_pixel") {
                    chi2.push(c);
                }
                let e = r.summary_f64("epochs");
                if let Some(e) = e {
                    epochs.push(e);
                }
                if let (Some(t), Some(e)) = (r.summary_f64("time_s"), e)
                    && e > 0.0
                {
                    spe.push(t / e);
                }
            }
            Group {
                value,
                runs: runs.iter().map(|r| r.id.clone()).collect(),
                without_summary: without,
                best_val_elbo: best.as_ref().map(|b| b.0),
                best_run: best.map(|b| b.1),
                mean_val_elbo: mean(&elbos),
                test_chi2_per_pixel: mean(&chi2),
                epochs: mean(&epochs),
                s_per_epoch: mean(&spe),
            }
        })
        .collect();
    if out.iter().all(|g| g.value.parse::<f64>().is_ok()) {
        out.sort_by(|a, b| {
            a.value
                .parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.value.parse::<f64>().unwrap_or(0.0))
        });
    }
    out
}

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
    let key = current_key(app, &keys);
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

    let header = vec![
        key.clone(),
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
            let n = if g.without_summary > 0 {
                format!("{} ({} open)", g.runs.len(), g.without_summary)
            } else {
                g.runs.len().to_string()
            };
            Row::new(vec![
                g.value.clone(),
                n,
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
    let title = format!(
        " ablation · group by ◀ {key} ▶ ({} of {} keys) · {} groups ",
        keys.iter().position(|k| *k == key).unwrap_or(0) + 1,
        keys.len(),
        groups.len()
    );
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(title));
    frame.render_widget(table, table_area);

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
