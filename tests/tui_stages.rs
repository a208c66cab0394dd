//! The inference view's stage line comes from the run record's stage outcomes: a MAP-only fit shows
//! MAP alone (not "MAP ✓ → VI ✓ → HMC ✓"), a failed later stage is marked on that stage only, and a
//! MAP-only table is labelled as MAP values with Laplace widths.

use arclight::app::{App, Screen};
use arclight_core::record::{Run, RunKind, RunSpec};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;
use std::path::Path;

/// The screen as text, one line per row.
fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| arclight::views::draw(app, f)).unwrap();
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..h {
        for x in 0..w {
            s.push_str(buf.cell((x, y)).map(|c| c.symbol()).unwrap_or(" "));
        }
        s.push('\n');
    }
    s
}

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Open the run whose id contains `needle` (through the list's text filter).
fn open_run(app: &mut App, needle: &str) {
    press(app, KeyCode::Char('/'));
    for c in needle.chars() {
        press(app, KeyCode::Char(c));
    }
    press(app, KeyCode::Enter);
    press(app, KeyCode::Enter);
    assert!(
        matches!(&app.screen, Screen::Run(id) if id.contains(needle)),
        "{:?}",
        app.screen
    );
}

/// A fit record in `root/<id>` as `infer fit` writes it: the stages in `ran` finish, then `failed`
/// (if any) fails; finished runs get a MAP-only summary.
fn fit_record(root: &Path, id: &str, ran: &[&str], failed: Option<&str>) {
    let mut run = Run::create_at(
        &root.join(id),
        RunSpec {
            kind: RunKind::Fit,
            name: id,
            config: json!({}),
            device: "flex".into(),
            seed: Some(0),
        },
    )
    .unwrap();
    for s in ran {
        run.begin_stage(s).unwrap();
        run.log("stage", json!({"stage": s})).unwrap();
        run.log(s, json!({"step": 0, "loss": 1.0})).unwrap();
        run.end_stage(s).unwrap();
    }
    match failed {
        Some(s) => {
            run.begin_stage(s).unwrap();
            run.log("stage", json!({"stage": s})).unwrap();
            run.fail("VI: the variational parameters became non-finite")
                .unwrap();
        }
        None => {
            run.log("stage", json!({"stage": "done"})).unwrap();
            run.finish(json!({
                "estimate": "map",
                "params": {"lens.theta_e": {"mean": 1.2345, "std": 0.0123, "q50": 1.2345}},
                "chi2_dof": 1.01,
            }))
            .unwrap();
        }
    }
}

/// The stage line of a rendered inference view.
fn stage_row(screen: &str) -> &str {
    screen
        .lines()
        .find(|l| l.trim_start().starts_with("stage "))
        .unwrap_or_else(|| panic!("no stage line in\n{screen}"))
}

#[test]
fn stage_line_shows_only_the_stages_that_ran() {
    let root = tempfile::tempdir().unwrap();
    fit_record(root.path(), "fit-maponly", &["map"], None);
    fit_record(root.path(), "fit-vifailed", &["map"], Some("vi"));

    let mut app = App::new(root.path());
    app.clock = Some(1_795_400_000);
    open_run(&mut app, "maponly");
    let s = render(&app, 120, 30);
    let line = stage_row(&s);
    assert!(line.contains("MAP ✓"), "{line}");
    assert!(!line.contains("VI") && !line.contains("HMC"), "{line}");
    assert!(
        s.contains("MAP point, sd from Laplace (1 parameters)"),
        "{s}"
    );
    assert!(s.contains("1.234"), "{s}");

    let mut app = App::new(root.path());
    app.clock = Some(1_795_400_000);
    open_run(&mut app, "vifailed");
    let s = render(&app, 120, 30);
    let line = stage_row(&s);
    assert!(line.contains("MAP ✓ → VI ✗"), "{line}");
    assert!(!line.contains("HMC"), "{line}");
}
