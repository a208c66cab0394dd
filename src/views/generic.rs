//! Any other run (study, prepare, eval, or a record whose kind could not be read): the summary
//! flattened into key/value rows (a study's `bias.<param>`, coverage, ...), a chart of any logged
//! field (←/→), and the config.

use super::common::{data_choices, draw_chart, kv_table, problem_lines, run_header};
use crate::app::App;
use crate::format;
use crate::store::RunEntry;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

pub fn draw(app: &App, run: &RunEntry, frame: &mut Frame, area: Rect) {
    let problems = problem_lines(run);
    let [head, probs, main] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(problems.len().min(4) as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(run_header(run, app.now())), head);
    frame.render_widget(Paragraph::new(problems), probs);

    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)]).areas(main);
    let summary: Vec<(String, String)> = run
        .summary
        .as_ref()
        .map(|s| format::flatten(s).into_iter().collect())
        .unwrap_or_default();
    let config: Vec<(String, String)> = run
        .info
        .as_ref()
        .map(|i| format::flatten(&i.config).into_iter().collect())
        .unwrap_or_default();
    let [sum_area, cfg_area] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(left);
    let title = if run.summary.is_some() {
        " summary "
    } else {
        " summary (not written yet) "
    };
    frame.render_widget(
        kv_table(
            title,
            &summary,
            app.scroll.min(summary.len().saturating_sub(1)),
            &[],
        ),
        sum_area,
    );
    frame.render_widget(kv_table(" config ", &config, 0, &[]), cfg_area);

    let m = run.metrics();
    let choices = m.map(|m| data_choices(m, &[], &[])).unwrap_or_default();
    if choices.is_empty() {
        draw_chart(frame, right, "no metrics logged", "", &[]);
    } else {
        let i = App::pick(app.metric, choices.len());
        let c = &choices[i];
        let title = format!("◀ {} ▶ {}/{}", c.title, i + 1, choices.len());
        draw_chart(
            frame,
            right,
            &title,
            c.x_label(),
            &c.curves(m, right.width as usize * 2, 5),
        );
    }
}
