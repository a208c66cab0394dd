//! Building blocks shared by the views: line charts from downsampled series, key/value tables,
//! the run header and the problem notes.

use crate::format;
use crate::store::RunEntry;
use crate::store::metrics::RunMetrics;
use arclight_core::record::Status;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, LegendPosition, Paragraph, Row, Table, Wrap,
};

/// Colours of overlaid curves, in order.
pub const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
    Color::White,
    Color::Red,
];

/// One curve of a chart.
#[derive(Clone, Debug)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Color,
}

/// A chart the user can pick: a title and the series (by line kind and field) it overlays.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartChoice {
    pub title: String,
    pub kind: String,
    pub names: Vec<String>,
}

impl ChartChoice {
    pub fn new(title: &str, kind: &str, names: &[&str]) -> ChartChoice {
        ChartChoice {
            title: title.into(),
            kind: kind.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The curves of this choice in one run's metrics (grouped series: up to `max_groups` with
    /// the lowest final value, e.g. the best MAP starts).
    pub fn curves(&self, m: Option<&RunMetrics>, width: usize, max_groups: usize) -> Vec<Curve> {
        let mut out = Vec::new();
        let Some(m) = m else { return out };
        for name in &self.names {
            let mut groups = m.groups(&self.kind, name);
            groups.sort_by(|a, b| {
                let la = a.1.last().map(|p| p.1).unwrap_or(f64::INFINITY);
                let lb = b.1.last().map(|p| p.1).unwrap_or(f64::INFINITY);
                la.total_cmp(&lb)
            });
            for (group, s) in groups.into_iter().take(max_groups) {
                let label = match group {
                    Some(g) => format!("{name} #{g}"),
                    None => name.clone(),
                };
                let points = s.points(width);
                // the same values logged under two names (best_loss / loss_best): draw once
                if out.iter().any(|c: &Curve| c.points == points) {
                    continue;
                }
                let color = PALETTE[out.len() % PALETTE.len()];
                out.push(Curve {
                    name: label,
                    points,
                    color,
                });
            }
        }
        out
    }

    /// Label of the x axis for this line kind.
    pub fn x_label(&self) -> &'static str {
        match self.kind.as_str() {
            "epoch" => "epoch",
            "hmc" => "draw",
            _ => "step",
        }
    }
}

/// Every (kind, numeric field) pair of a digest as single-series choices, skipping `skip`.
pub fn data_choices(m: &RunMetrics, kinds: &[&str], skip: &[ChartChoice]) -> Vec<ChartChoice> {
    let mut out = Vec::new();
    let all_kinds: Vec<String> = m.kinds().map(|(k, _)| k.to_string()).collect();
    let ordered = kinds.iter().map(|k| k.to_string()).chain(
        all_kinds
            .into_iter()
            .filter(|k| !kinds.contains(&k.as_str())),
    );
    for kind in ordered {
        if kind == "stage" {
            continue;
        }
        for name in m.names(&kind) {
            if name == "t" {
                continue;
            }
            let covered = skip
                .iter()
                .any(|c| c.kind == kind && c.names.contains(&name));
            if !covered {
                out.push(ChartChoice {
                    title: format!("{name} ({kind})"),
                    kind: kind.clone(),
                    names: vec![name],
                });
            }
        }
    }
    out
}

/// Draw a line chart of `curves` into `area`, or a framed "no data" note if there is nothing.
pub fn draw_chart(frame: &mut Frame, area: Rect, title: &str, x_label: &str, curves: &[Curve]) {
    let block = Block::bordered().title(Span::styled(title.to_string(), Style::new().bold()));
    let all = || curves.iter().flat_map(|c| c.points.iter());
    if all().next().is_none() {
        let p = Paragraph::new("no data yet")
            .style(Style::new().dark_gray())
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.05 };
        y0 -= pad;
        y1 += pad;
    } else {
        let pad = (y1 - y0) * 0.05;
        y0 -= pad;
        y1 += pad;
    }
    let labels = |a: f64, b: f64| {
        vec![
            Span::raw(format::num(a)),
            Span::raw(format::num((a + b) / 2.0)),
            Span::raw(format::num(b)),
        ]
    };
    let datasets: Vec<Dataset> = curves
        .iter()
        .map(|c| {
            Dataset::default()
                .name(c.name.clone())
                .marker(Marker::Braille)
                .graph_type(if c.points.len() > 1 {
                    GraphType::Line
                } else {
                    GraphType::Scatter
                })
                .style(Style::new().fg(c.color))
                .data(&c.points)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(x_label.to_string())
                .bounds([x0, x1])
                .labels(labels(x0, x1))
                .style(Style::new().dark_gray()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(labels(y0, y1))
                .style(Style::new().dark_gray()),
        )
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
    frame.render_widget(chart, area);
}

/// Style of a status label.
pub fn status_style(label: &str) -> Style {
    match label {
        "running" => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        "done" => Style::new().fg(Color::Blue),
        "failed" | "unreadable" | "deleted" => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        "interrupted" => Style::new().fg(Color::Yellow),
        "flagged" => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        _ => Style::new(),
    }
}

/// First line of every detail view: id, kind, status, device, start, duration, progress stage.
pub fn run_header(run: &RunEntry, now: u64) -> Line<'static> {
    let mut spans = vec![
        Span::styled(run.id.clone(), Style::new().bold()),
        Span::raw("  "),
    ];
    let label = run.status_label();
    spans.push(Span::styled(label.to_string(), status_style(label)));
    if let Some(info) = &run.info {
        spans.push(Span::raw(format!("  {}", info.kind.as_str())));
        if !info.device.is_empty() {
            spans.push(Span::raw(format!("  device {}", info.device)));
        }
        spans.push(Span::raw(format!(
            "  started {}",
            format::started(&info.started)
        )));
        if let Some(d) = run.duration_s(now) {
            spans.push(Span::raw(format!("  took {}", format::duration(d as f64))));
        }
        if info.resumed > 0 {
            spans.push(Span::raw(format!("  resumed x{}", info.resumed)));
        }
        if run.status == Some(Status::Running) && !info.progress.stage.is_empty() {
            spans.push(Span::raw(format!("  [{}]", info.progress.stage)));
        }
    }
    Line::from(spans)
}

/// The run's problems as warning lines (empty if none), plus a loading note.
pub fn problem_lines(run: &RunEntry) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = run
        .problems()
        .into_iter()
        .map(|p| {
            Line::from(Span::styled(
                format!("! {p}"),
                Style::new().fg(Color::Yellow),
            ))
        })
        .collect();
    if let Some(f) = &run.feed
        && f.behind() > 0
    {
        let total = f.offset() + f.behind();
        out.push(Line::from(Span::styled(
            format!(
                "loading metrics {:.0}% ({} lines so far)",
                100.0 * f.offset() as f64 / total as f64,
                f.metrics.lines()
            ),
            Style::new().fg(Color::Cyan),
        )));
    }
    if let (Some(info), Some(Status::Failed)) = (&run.info, run.status)
        && let Some(e) = &info.error
    {
        out.insert(
            0,
            Line::from(Span::styled(
                format!("error: {e}"),
                Style::new().fg(Color::Red),
            )),
        );
    }
    out
}

/// A two-column key/value table in a titled block, starting at row `scroll`, with the keys in
/// `highlight` emphasised.
pub fn kv_table<'a>(
    title: &'a str,
    rows: &[(String, String)],
    scroll: usize,
    highlight: &[String],
) -> Table<'a> {
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 28) as u16;
    let body: Vec<Row> = rows
        .iter()
        .skip(scroll)
        .map(|(k, v)| {
            let style = if highlight.contains(k) {
                Style::new().fg(Color::Yellow).bold()
            } else {
                Style::new()
            };
            Row::new(vec![k.clone(), v.clone()]).style(style)
        })
        .collect();
    Table::new(body, [Constraint::Length(key_w), Constraint::Fill(1)])
        .block(Block::bordered().title(title))
}

/// A paragraph of lines in a titled block, wrapping long lines.
pub fn text_block<'a>(title: &'a str, lines: Vec<Line<'a>>) -> Paragraph<'a> {
    Paragraph::new(lines)
        .block(Block::bordered().title(title))
        .wrap(Wrap { trim: false })
}

/// Run label for legends: the run's name if set, else its id.
pub fn short_label(run: &RunEntry) -> String {
    match &run.info {
        Some(i) if !i.name.is_empty() => i.name.clone(),
        _ => run.id.clone(),
    }
}
