//! Compare several runs: one metric overlaid across them (picked with ←/→ among every field
//! any of them logged), and their configs and summary figures side by side with the keys whose
//! values differ highlighted (`d` shows only those).

use super::common::{ChartChoice, Curve, PALETTE, draw_chart, short_label};
use crate::app::App;
use crate::query::compare::{differs, table_rows};
use crate::store::{Catalog, RunEntry};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::widgets::{Block, Cell, Row, Table};
use std::collections::BTreeSet;

/// Metrics worth overlaying first, in order; everything else logged follows alphabetically.
const PREFERRED: [(&str, &str); 6] = [
    ("epoch", "val_elbo"),
    ("epoch", "train_elbo"),
    ("step", "loss"),
    ("map", "loss"),
    ("vi", "elbo"),
    ("hmc", "accept"),
];

/// Union of the (kind, field) pairs logged by the runs, preferred ones first.
pub fn choices(runs: &[&RunEntry]) -> Vec<ChartChoice> {
    let mut set: BTreeSet<(String, String)> = BTreeSet::new();
    for r in runs {
        if let Some(m) = r.metrics() {
            for (kind, _) in m.kinds() {
                if kind == "stage" {
                    continue;
                }
                for name in m.names(kind) {
                    if name != "t" {
                        set.insert((kind.to_string(), name));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (k, n) in PREFERRED {
        if set.remove(&(k.to_string(), n.to_string())) {
            out.push(ChartChoice::new(&format!("{n} ({k})"), k, &[n]));
        }
    }
    out.extend(set.into_iter().map(|(k, n)| ChartChoice {
        title: format!("{n} ({k})"),
        kind: k,
        names: vec![n],
    }));
    out
}

fn lookup<'a>(catalog: &'a Catalog, ids: &[String]) -> Vec<&'a RunEntry> {
    ids.iter().filter_map(|id| catalog.get(id)).collect()
}

pub fn draw(app: &App, ids: &[String], frame: &mut Frame, area: Rect) {
    let runs = lookup(&app.catalog, ids);
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(area);
    let choices = choices(&runs);
    if choices.is_empty() {
        draw_chart(
            frame,
            chart_area,
            "no metrics logged by these runs yet",
            "",
            &[],
        );
    } else {
        let i = App::pick(app.metric, choices.len());
        let c = &choices[i];
        let width = chart_area.width as usize * 2;
        let curves: Vec<Curve> = runs
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let mut cs = c.curves(r.metrics(), width, 1);
                let mut curve = cs.drain(..).next()?;
                curve.name = short_label(r);
                curve.color = PALETTE[k % PALETTE.len()];
                Some(curve)
            })
            .collect();
        let title = format!("◀ {} ▶ {}/{}", c.title, i + 1, choices.len());
        draw_chart(frame, chart_area, &title, c.x_label(), &curves);
    }

    let rows = table_rows(&runs);
    let n_diff = rows.values().filter(|v| differs(v)).count();
    let shown: Vec<(&String, &Vec<String>)> = rows
        .iter()
        .filter(|(_, v)| !app.only_diff || differs(v))
        .collect();
    let scroll = app.scroll.min(shown.len().saturating_sub(1));
    let key_w = shown
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 30) as u16;
    let mut header = vec![Cell::from("key")];
    header.extend(
        runs.iter()
            .enumerate()
            .map(|(k, r)| Cell::from(short_label(r)).fg(PALETTE[k % PALETTE.len()])),
    );
    let body: Vec<Row> = shown
        .iter()
        .skip(scroll)
        .map(|(k, vals)| {
            let d = differs(vals);
            let mut cells = vec![Cell::from(format!("{}{}", if d { "≠ " } else { "  " }, k))];
            cells.extend(vals.iter().map(|v| Cell::from(v.clone())));
            let row = Row::new(cells);
            if d {
                row.style(Style::new().fg(Color::Yellow).bold())
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![Constraint::Length(key_w + 2)];
    widths.extend(runs.iter().map(|_| Constraint::Fill(1)));
    let title = format!(
        " {} runs · {} of {} keys differ{} ",
        runs.len(),
        n_diff,
        rows.len(),
        if app.only_diff {
            " (only differing shown)"
        } else {
            ""
        }
    );
    let table = Table::new(body, widths)
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(title));
    frame.render_widget(table, table_area);
}
