//! Inference run (`infer fit`): the stage pipeline (multistart MAP -> full-rank VI -> HMC),
//! MAP loss traces of the best starts, the VI ELBO, HMC acceptance rate, step size and
//! divergences, and once done the per-parameter posterior table (mean, std, 68% interval,
//! R-hat, bulk/tail ESS, truth and z-score = (mean - truth)/std) and the paths of the plots.
//! One chart is shown per ~60 columns; ←/→ pages through them.

use super::common::{ChartChoice, data_choices, draw_chart, problem_lines, run_header};
use crate::app::App;
use crate::format;
use crate::store::RunEntry;
use crate::store::metrics::RunMetrics;
use arclight_core::record::{StageStatus, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use serde_json::Value;

/// Pipeline stages in order.
const STAGES: [&str; 3] = ["map", "vi", "hmc"];

/// Standard charts (accepting both infer's field names and the generic ones: `best_loss` or
/// `loss`, `divergent` or `divergences`), then any other logged field of the map/vi/hmc lines.
/// Standard charts without data are left out once any chart has data.
pub fn choices(m: Option<&RunMetrics>) -> Vec<ChartChoice> {
    let std = vec![
        ChartChoice::new(
            "MAP loss (best / median start)",
            "map",
            &["loss", "best_loss", "loss_best", "median_loss", "loss_q50"],
        ),
        ChartChoice::new("MAP loss traces (best starts)", "map_trace", &["loss"]),
        ChartChoice::new("VI ELBO", "vi", &["elbo", "elbo_avg"]),
        ChartChoice::new("HMC acceptance", "hmc", &["accept", "accept_avg"]),
        ChartChoice::new("HMC step size", "hmc", &["step_size"]),
        ChartChoice::new("HMC divergences", "hmc", &["divergences", "divergent"]),
    ];
    let Some(m) = m else { return std };
    let has_data = |c: &ChartChoice| c.names.iter().any(|n| !m.groups(&c.kind, n).is_empty());
    let mut out: Vec<ChartChoice> = std.iter().filter(|c| has_data(c)).cloned().collect();
    if out.is_empty() {
        out = std.clone();
    }
    out.extend(data_choices(m, &["map", "map_trace", "vi", "hmc"], &std));
    out
}

/// The first of `names` present in the last line of `kind`.
fn last_of(m: &RunMetrics, kind: &str, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| m.last_f64(kind, n))
}

/// Current stage: the last `stage` line, else the progress stage, else `done` for finished runs.
fn current_stage(run: &RunEntry) -> String {
    if let Some(s) = run.metrics().and_then(|m| m.last_str("stage", "stage")) {
        return s.to_string();
    }
    if run.summary.is_some() {
        return "done".into();
    }
    run.info
        .as_ref()
        .map(|i| i.progress.stage.clone())
        .unwrap_or_default()
}

/// The stages of the run record's stage outcomes (only those that ran), with their marks: done ✓,
/// failed ✗, running ● (interrupted ‖ when the process is gone). `None` for records without them.
fn recorded_stages(run: &RunEntry) -> Option<Vec<Span<'static>>> {
    let info = run.info.as_ref()?;
    if info.stages.is_empty() {
        return None;
    }
    let dead = run.status != Some(Status::Running);
    let mut spans = Vec::new();
    for (i, s) in info.stages.iter().enumerate() {
        let (mark, style) = match s.status {
            StageStatus::Done => ("✓", Style::new().fg(Color::Green)),
            StageStatus::Failed => ("✗", Style::new().fg(Color::Red).bold()),
            StageStatus::Running if !dead => ("●", Style::new().fg(Color::Yellow).bold()),
            StageStatus::Running | StageStatus::Interrupted => {
                ("‖", Style::new().fg(Color::Yellow))
            }
            StageStatus::Unknown => ("?", Style::new().fg(Color::DarkGray)),
        };
        if i > 0 {
            spans.push(Span::raw(" → "));
        }
        spans.push(Span::styled(
            format!("{} {mark}", s.stage.to_uppercase()),
            style,
        ));
    }
    Some(spans)
}

/// `map ✓ → vi ✓ → hmc ●` style pipeline line plus the latest HMC figures. The stages are the
/// record's stage outcomes when it has them (a MAP-only fit shows MAP alone), else inferred from
/// the metrics' `stage` lines over all three.
fn stage_line(run: &RunEntry) -> Line<'static> {
    let mut spans = vec![Span::raw("stage ")];
    if let Some(recorded) = recorded_stages(run) {
        spans.extend(recorded);
    } else {
        let stage = current_stage(run);
        let pos = STAGES.iter().position(|s| stage.starts_with(s));
        let finished = stage == "done";
        for (i, s) in STAGES.iter().enumerate() {
            let (mark, style) = match pos {
                _ if finished => ("✓", Style::new().fg(Color::Green)),
                Some(p) if i < p => ("✓", Style::new().fg(Color::Green)),
                Some(p) if i == p => ("●", Style::new().fg(Color::Yellow).bold()),
                _ => ("·", Style::new().dark_gray()),
            };
            if i > 0 {
                spans.push(Span::raw(" → "));
            }
            spans.push(Span::styled(format!("{} {mark}", s.to_uppercase()), style));
        }
    }
    if let Some(m) = run.metrics() {
        let f = |kind: &str, names: &[&str]| format::opt(last_of(m, kind, names));
        if m.count("hmc") > 0 {
            // infer: `stage` hmc_burn / hmc_sample and `step` within it; generic: `phase`, `draw`
            let phase = m
                .last_str("hmc", "phase")
                .or_else(|| m.last_str("hmc", "stage"))
                .unwrap_or("");
            // infer samples again while the draws miss its convergence targets: name the round
            let round = match last_of(m, "hmc", &["round"]) {
                Some(r) if r > 1.0 => format!(" (round {r:.0})"),
                _ => String::new(),
            };
            spans.push(Span::raw(format!(
                "   HMC {phase}{round} draw {}  accept {}  step {}  divergences {}",
                f("hmc", &["draw", "step"]),
                f("hmc", &["accept"]),
                f("hmc", &["step_size"]),
                f("hmc", &["divergences", "divergent"])
            )));
        } else if m.count("vi") > 0 {
            spans.push(Span::raw(format!(
                "   VI step {}  ELBO {}",
                f("vi", &["step"]),
                f("vi", &["elbo"])
            )));
        } else if m.count("map") > 0 {
            spans.push(Span::raw(format!(
                "   MAP step {}  best loss {}",
                f("map", &["step"]),
                f("map", &["best_loss", "loss_best", "loss"])
            )));
        }
    }
    Line::from(spans)
}

/// Summary figures on one line: worst R-hat, smallest ESS, reduced chi^2, timings.
fn summary_line(run: &RunEntry) -> Option<Line<'static>> {
    let s = run.summary.as_ref()?;
    let mut parts = Vec::new();
    for (k, label) in [
        ("rhat_max", "R-hat max"),
        ("ess_min", "ESS min"),
        ("chi2_dof", "chi2/dof"),
    ] {
        if let Some(v) = s.get(k).and_then(Value::as_f64) {
            parts.push(format!("{label} {}", format::num(v)));
        }
    }
    if let Some(t) = s.get("timings").and_then(Value::as_object) {
        let ts: Vec<String> = t
            .iter()
            .filter_map(|(k, v)| {
                Some(format!(
                    "{} {}",
                    k.trim_end_matches("_s"),
                    format::duration(v.as_f64()?)
                ))
            })
            .collect();
        if !ts.is_empty() {
            parts.push(format!("time: {}", ts.join(" ")));
        }
    }
    let rhat_bad = s
        .get("rhat_max")
        .and_then(Value::as_f64)
        .is_some_and(|r| r > 1.01);
    let style = if rhat_bad {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    Some(Line::from(Span::styled(parts.join("   "), style)))
}

/// A plot path relative to its run directory when it lies inside it (`artifacts/fit.png`), so
/// it stays short and valid after the experiments folder is moved.
fn short_path(path: &str, run_id: &str) -> String {
    let marker = format!("/{run_id}/");
    match path.find(&marker) {
        Some(i) => path[i + marker.len()..].to_string(),
        None => path.to_string(),
    }
}

/// The per-parameter posterior table, scrolled by `scroll` rows. After a MAP-only fit
/// (`estimate` "map") it holds the MAP values with their Laplace widths.
fn param_table(
    params: &serde_json::Map<String, Value>,
    estimate: Option<&str>,
    wide: bool,
    scroll: usize,
) -> Table<'static> {
    let title = if estimate == Some("map") {
        format!(" MAP point, sd from Laplace ({} parameters) ", params.len())
    } else {
        format!(" posterior ({} parameters) ", params.len())
    };
    let mut cols: Vec<(&str, &str)> = vec![("mean", "mean"), ("std", "std")];
    if wide {
        cols.extend([("q16", "q16"), ("q84", "q84")]);
    }
    cols.extend([
        ("rhat", "R-hat"),
        ("ess_bulk", "ESS bulk"),
        ("ess_tail", "ESS tail"),
        ("truth", "truth"),
        ("z", "z"),
    ]);
    let mut header = vec![Cell::from("param")];
    header.extend(cols.iter().map(|(_, h)| Cell::from(*h)));
    let rows: Vec<Row> = params
        .iter()
        .skip(scroll)
        .map(|(name, p)| {
            let mut cells = vec![Cell::from(name.clone())];
            for (key, _) in &cols {
                let alias = if *key == "std" { "sd" } else { key };
                let v = p.get(*key).or_else(|| p.get(alias)).and_then(Value::as_f64);
                let mut cell = Cell::from(format::opt(v));
                let bad = match *key {
                    "rhat" => v.is_some_and(|r| r > 1.01),
                    "z" => v.is_some_and(|z| z.abs() > 3.0),
                    "ess_bulk" | "ess_tail" => v.is_some_and(|e| e < 100.0),
                    _ => false,
                };
                if bad {
                    cell = cell.style(Style::new().fg(Color::Red).bold());
                }
                cells.push(cell);
            }
            Row::new(cells)
        })
        .collect();
    let name_w = params
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 24) as u16;
    let mut widths = vec![Constraint::Length(name_w)];
    widths.extend(cols.iter().map(|_| Constraint::Length(8)));
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().bold().underlined()))
        .block(Block::bordered().title(title))
}

pub fn draw(app: &App, run: &RunEntry, frame: &mut Frame, area: Rect) {
    let problems = problem_lines(run);
    let summary = summary_line(run);
    let [head, stage, sum, probs, main] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(summary.is_some() as u16),
        Constraint::Length(problems.len().min(3) as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(run_header(run, app.now())), head);
    frame.render_widget(Paragraph::new(stage_line(run)), stage);
    if let Some(s) = summary {
        frame.render_widget(Paragraph::new(s), sum);
    }
    frame.render_widget(Paragraph::new(problems), probs);

    let params = run.summary_at("params").and_then(Value::as_object);
    let plots: Vec<String> = run
        .summary_at("plots")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| short_path(&crate::format::value(p), &run.id))
                .collect()
        })
        .unwrap_or_default();
    // plot paths on as few lines as fit (wrapped), without a frame
    let mut plot_text = if plots.is_empty() {
        String::new()
    } else {
        format!("plots: {}", plots.join("  "))
    };
    // warnings the fit recorded about its input (e.g. masked pixels), after the plots
    if let Some(w) = run.summary_at("warnings").and_then(Value::as_array)
        && !w.is_empty()
    {
        let texts: Vec<String> = w.iter().map(crate::format::value).collect();
        if !plot_text.is_empty() {
            plot_text.push_str("   ");
        }
        plot_text.push_str(&format!("warnings: {}", texts.join("; ")));
    }
    let plot_h = if plot_text.is_empty() {
        0
    } else {
        (plot_text.chars().count() as u16)
            .div_ceil(main.width.max(1))
            .min(4)
    };
    let table_h = params
        .map(|p| (p.len() as u16 + 3).min(main.height / 2 + 1))
        .unwrap_or(0);
    let [charts, table_area, plot_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(table_h),
        Constraint::Length(plot_h),
    ])
    .areas(main);

    let m = run.metrics();
    let choices = choices(m);
    let n_vis = ((charts.width / 60).max(1) as usize)
        .min(3)
        .min(choices.len());
    let first = App::pick(app.pane, choices.len());
    let rects = Layout::horizontal(vec![Constraint::Ratio(1, n_vis as u32); n_vis]).split(charts);
    for (k, rect) in rects.iter().enumerate() {
        let idx = (first + k) % choices.len();
        let c = &choices[idx];
        let title = if k == 0 {
            format!("◀ {} ▶ {}/{}", c.title, idx + 1, choices.len())
        } else {
            c.title.clone()
        };
        draw_chart(
            frame,
            *rect,
            &title,
            c.x_label(),
            &c.curves(m, rect.width as usize * 2, 5),
        );
    }

    if let Some(p) = params {
        let scroll = app.scroll.min(p.len().saturating_sub(1));
        let estimate = run.summary_at("estimate").and_then(Value::as_str);
        frame.render_widget(
            param_table(p, estimate, table_area.width >= 100, scroll),
            table_area,
        );
    }
    if plot_h > 0 {
        frame.render_widget(
            Paragraph::new(plot_text).wrap(ratatui::widgets::Wrap { trim: false }),
            plot_area,
        );
    }
}
