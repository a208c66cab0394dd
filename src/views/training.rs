//! Training run: ELBO curves (train and validation per epoch, or any other logged metric picked
//! with ←/→), the latest step figures (loss = -ELBO per batch with its reconstruction and KL
//! terms, learning rate, images/s), an epoch gauge with ETA, the early-stopping state (best
//! epoch, patience left) and the config. Large terminals add learning-rate and throughput charts.

use super::common::{ChartChoice, data_choices, draw_chart, kv_table, problem_lines, run_header};
use crate::app::App;
use crate::format;
use crate::store::RunEntry;
use crate::store::metrics::RunMetrics;
use arclight_core::record::Status;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph};

/// The charts a user can cycle through: the ELBO pair first, then every other logged field.
pub fn choices(m: Option<&RunMetrics>) -> Vec<ChartChoice> {
    let elbo = ChartChoice::new("ELBO (train / val)", "epoch", &["train_elbo", "val_elbo"]);
    let mut out = vec![elbo.clone()];
    if let Some(m) = m {
        out.extend(data_choices(m, &["epoch", "step"], &[elbo]));
    }
    out
}

/// Total planned epochs: from the config, else the summary.
fn planned_epochs(run: &RunEntry) -> Option<f64> {
    run.config_at("epochs")
        .and_then(|v| v.as_f64())
        .or_else(|| run.summary_f64("epochs"))
}

/// Epoch gauge: epochs done of planned, with ETA from the run's own estimate or mean epoch time.
fn gauge(run: &RunEntry) -> Gauge<'static> {
    let m = run.metrics();
    let done = m
        .and_then(|m| m.last_f64("epoch", "epoch"))
        .or_else(|| run.summary_f64("epochs"));
    let planned = planned_epochs(run);
    let ratio = match (done, planned) {
        (Some(d), Some(p)) if p > 0.0 => (d / p).clamp(0.0, 1.0),
        _ => run.progress(),
    };
    let mut label = format!(
        "epoch {}/{}",
        done.map(format::num).unwrap_or_else(|| "-".into()),
        planned.map(format::num).unwrap_or_else(|| "?".into())
    );
    if run.status == Some(Status::Running) {
        let eta = run
            .info
            .as_ref()
            .and_then(|i| i.progress.eta_s)
            .or_else(|| {
                // mean epoch time so far times the epochs left
                let s = m?.series("epoch", "epoch_s")?;
                let (x, _) = s.last()?;
                let pts = s.points(usize::MAX);
                let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len().max(1) as f64;
                Some(mean * (planned? - x).max(0.0))
            });
        if let Some(eta) = eta {
            label.push_str(&format!("  ETA {}", format::duration(eta)));
        }
    }
    Gauge::default()
        .ratio(ratio)
        .label(label)
        .gauge_style(Style::new().fg(Color::Blue).bg(Color::Black))
}

/// Early-stopping state in words.
fn early_stopping(run: &RunEntry) -> String {
    let m = run.metrics();
    let best = m
        .and_then(|m| m.last_f64("epoch", "best_epoch"))
        .or_else(|| run.summary_f64("best_epoch"));
    let left = m.and_then(|m| m.last_f64("epoch", "patience_left"));
    let patience = run.config_at("patience").and_then(|v| v.as_f64());
    let mut s = String::from("early stopping: ");
    match best {
        Some(b) => s.push_str(&format!("best epoch {}", format::num(b))),
        None => s.push_str("no epoch finished yet"),
    }
    if let Some(l) = left {
        s.push_str(&format!(", patience {} left", format::num(l)));
        if let Some(p) = patience {
            s.push_str(&format!(" of {}", format::num(p)));
        }
    }
    if let Some((v, _)) = crate::store::headline::best_val_elbo(run) {
        s.push_str(&format!(", best val ELBO {}", format::num(v)));
    }
    let done = m
        .and_then(|m| m.last_f64("epoch", "epoch"))
        .or_else(|| run.summary_f64("epochs"));
    // train-vae records the verdict; otherwise fewer epochs than planned means it stopped early
    let stopped = run.summary_at("stopped_early").and_then(|v| v.as_bool());
    if run.status == Some(Status::Done)
        && let (Some(d), Some(p)) = (done, planned_epochs(run))
        && stopped.unwrap_or(d < p)
    {
        s.push_str(&format!(" (stopped early at {})", format::num(d)));
    }
    s
}

/// Latest figures of the step and epoch lines, plus final summary figures (absent ones left out).
fn now_rows(run: &RunEntry) -> Vec<(String, String)> {
    let m = run.metrics();
    let step = |k: &str| m.and_then(|m| m.last_f64("step", k));
    let epoch = |k: &str| m.and_then(|m| m.last_f64("epoch", k));
    let mut rows = vec![
        (
            "step".to_string(),
            format::opt(
                step("step").or_else(|| m.map(|m| m.count("step") as f64).filter(|n| *n > 0.0)),
            ),
        ),
        ("loss".into(), format::opt(step("loss"))),
        (
            "rec / kl".into(),
            format!("{} / {}", format::opt(step("rec")), format::opt(step("kl"))),
        ),
        ("lr".into(), format::opt(step("lr"))),
        ("images/s".into(), format::opt(step("images_per_s"))),
        ("train ELBO".into(), format::opt(epoch("train_elbo"))),
        ("val ELBO".into(), format::opt(epoch("val_elbo"))),
        (
            "val chi2/px".into(),
            format::opt(epoch("val_chi2_per_pixel")),
        ),
        (
            "epoch time".into(),
            epoch("epoch_s").map(format::duration).unwrap_or_default(),
        ),
    ];
    for (key, label) in [
        ("test_elbo", "test ELBO"),
        ("test_chi2_per_pixel", "test chi2/px"),
    ] {
        if let Some(v) = run.summary_f64(key) {
            rows.push((label.into(), format::num(v)));
        }
    }
    if let Some(c) = run.summary_at("checkpoint").and_then(|v| v.as_str()) {
        rows.push(("checkpoint".into(), c.to_string()));
    }
    // figures this run does not log take no room
    rows.retain(|(_, v)| !matches!(v.trim(), "" | "/"));
    rows
}

pub fn draw(app: &App, run: &RunEntry, frame: &mut Frame, area: Rect) {
    let problems = problem_lines(run);
    let [head, stop, gauge_area, probs, main] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(problems.len().min(3) as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(run_header(run, app.now())), head);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(
            early_stopping(run),
            Style::new().fg(Color::Green),
        ))),
        stop,
    );
    frame.render_widget(gauge(run), gauge_area);
    frame.render_widget(Paragraph::new(problems), probs);

    let [charts, side] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Fill(1)]).areas(main);
    let m = run.metrics();
    let choices = choices(m);
    let choice = &choices[App::pick(app.metric, choices.len())];
    let title = format!(
        "◀ {} ▶ {}/{}",
        choice.title,
        App::pick(app.metric, choices.len()) + 1,
        choices.len()
    );
    let big = charts.height >= 30;
    let (top, bottom) = if big {
        let [t, b] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(charts);
        (t, Some(b))
    } else {
        (charts, None)
    };
    let w = top.width as usize * 2;
    draw_chart(
        frame,
        top,
        &title,
        choice.x_label(),
        &choice.curves(m, w, 8),
    );
    if let Some(b) = bottom {
        let [l, r] =
            Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(b);
        for (rect, name, title) in [(l, "lr", "learning rate"), (r, "images_per_s", "images/s")] {
            let c = ChartChoice::new(title, "step", &[name]);
            draw_chart(
                frame,
                rect,
                title,
                "step",
                &c.curves(m, rect.width as usize * 2, 1),
            );
        }
    }

    let now = now_rows(run);
    let [now_area, cfg_area] = Layout::vertical([
        Constraint::Length(now.len() as u16 + 2),
        Constraint::Fill(1),
    ])
    .areas(side);
    frame.render_widget(kv_table(" latest ", &now, 0, &[]), now_area);
    let cfg: Vec<(String, String)> = run
        .info
        .as_ref()
        .map(|i| format::flatten(&i.config).into_iter().collect())
        .unwrap_or_default();
    let scroll = app.scroll.min(cfg.len().saturating_sub(1));
    frame.render_widget(kv_table(" config ", &cfg, scroll, &[]), cfg_area);
}
