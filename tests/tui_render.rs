//! Render tests: every screen drawn into ratatui's TestBackend from the fixture records in
//! tests/fixtures/experiments (see make_fixtures.py), at 80x24 and at a large size, driven by
//! the same key events as the real terminal.

use arclight::app::{App, Screen};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments")
}

fn app() -> App {
    let mut app = App::new(&fixtures());
    app.clock = Some(1_795_400_000);
    app
}

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

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

/// Select the run whose id contains `needle` through the text filter, open it, and clear the
/// filter again on the way back.
fn open_run(app: &mut App, needle: &str) {
    press(app, KeyCode::Char('/'));
    type_text(app, needle);
    press(app, KeyCode::Enter);
    press(app, KeyCode::Enter);
    assert!(
        matches!(&app.screen, Screen::Run(id) if id.contains(needle)),
        "{:?}",
        app.screen
    );
}

fn assert_has(screen: &str, needles: &[&str]) {
    for n in needles {
        assert!(screen.contains(n), "missing {n:?} in\n{screen}");
    }
}

#[test]
fn list_shows_every_run_with_status_progress_and_headline() {
    let app = app();
    let s = render(&app, 80, 24);
    assert_has(
        &s,
        &[
            "10 runs, 0 running",
            "train-20261120T131500-ld32",
            "fit-20261121T110000-hst-j1",
            "interrupted",
            "failed",
            "unreadable",
            "val ELBO -1154.8",
            // interrupted without a summary: read from its metrics
            "val ELBO -1296.5",
            "R-hat 1.004",
            "100%",
            " 40%",
            "? help",
            "2 run record(s) could not be read fully",
        ],
    );
    // newest first
    assert!(s.find("study-20261121T150000").unwrap() < s.find("train-20261120T101500").unwrap());
    let big = render(&app, 160, 48);
    assert_has(
        &big,
        &[
            "started",
            "2026-11-20 13:15",
            "30m00s",
            "R-hat 1.004  ESS 787",
            "bias gamma -0.013, theta_e 0.0021",
            "error: loss became NaN",
        ],
    );
}

#[test]
fn list_filters_by_kind_status_and_text_and_sorts() {
    let mut app = app();
    press(&mut app, KeyCode::Char('t')); // kind = train
    let s = render(&app, 100, 30);
    assert_has(&s, &["kind=train", "runs 5/10"]); // the corrupt record has no readable kind
    assert!(!s.contains("fit-2026"), "{s}");
    press(&mut app, KeyCode::Char('s')); // status = running: none
    assert_has(&render(&app, 100, 30), &["No run matches the filter"]);
    press(&mut app, KeyCode::Char('x'));
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "LD32");
    assert_has(&render(&app, 100, 30), &["filter: LD32"]);
    press(&mut app, KeyCode::Enter);
    let s = render(&app, 100, 30);
    assert_has(
        &s,
        &[
            "runs 3/10",
            "train-20261120T160000-ld32-s1",
            "eval-20261121T130000-ld32",
        ],
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('o')); // sort by id
    let s = render(&app, 100, 30);
    assert_has(&s, &["sort id"]);
    assert!(s.find("eval-2026").unwrap() < s.find("train-20261121T120000").unwrap());
}

#[test]
fn training_view_shows_curves_early_stopping_gauge_and_config() {
    let mut app = app();
    open_run(&mut app, "ld16");
    let s = render(&app, 80, 24);
    assert_has(
        &s,
        &[
            "ELBO (train / val)",
            "▶ 1/12",
            "best epoch 19",
            "patience 0 left of 5",
            "epoch 24/30",
            "latest",
            "images/s",
            "833.2",
            "config",
        ],
    );
    let big = render(&app, 160, 48);
    assert_has(
        &big,
        &[
            "(stopped early at 24)",
            "learning rate",
            "architecture.latent_dim 16",
            "test chi2/px 1.22",
            "train_elbo",
            "val_elbo",
            "took 24m00s",
        ],
    );
    // → picks the next logged metric, data-driven from the epoch lines
    press(&mut app, KeyCode::Right);
    let s = render(&app, 120, 30);
    assert_has(&s, &["▶ 2/12", "(epoch)"]);
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    assert_has(&render(&app, 120, 30), &["▶ 12/12", "(step)"]);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn interrupted_training_shows_its_partial_state() {
    let mut app = app();
    open_run(&mut app, "ld64");
    let s = render(&app, 100, 30);
    assert_has(
        &s,
        &[
            "interrupted",
            "epoch 12/30",
            "best epoch 12",
            "patience 5 left of 5",
        ],
    );
    // the half-written last step line is held back, not an error
    assert!(!s.contains("unreadable line"), "{s}");
}

#[test]
fn inference_view_shows_stages_traces_and_posterior_table() {
    let mut app = app();
    open_run(&mut app, "mock-sie");
    let s = render(&app, 80, 24);
    assert_has(
        &s,
        &[
            "MAP ✓",
            "VI ✓",
            "HMC ✓",
            "MAP loss (best / median start)",
            "R-hat max 1.004",
            "ESS min 787",
            "posterior (8 parameters)",
            "theta_e",
            "plots: artifacts/fit.png  artifacts/corner.png",
        ],
    );
    let big = render(&app, 180, 50);
    assert_has(
        &big,
        &[
            "VI ELBO",
            "q16",
            "ESS bulk",
            "truth",
            "1.205",
            "HMC sampling draw 990",
            "MAP loss traces (best starts)",
            "map 20s",
            "chi2/dof 1.02",
        ],
    );
    for _ in 0..3 {
        press(&mut app, KeyCode::Right);
    }
    assert_has(&render(&app, 80, 24), &["HMC acceptance ▶ 4/"]);
    // the traces of the best starts come from the map_trace arrays, one curve per start
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    let s = render(&app, 200, 60);
    assert_has(
        &s,
        &["MAP loss traces (best starts) ▶ 2/", "loss #0", "loss #4"],
    );
    assert!(
        !s.contains("loss #7"),
        "only the 5 best starts are drawn\n{s}"
    );
}

#[test]
fn interrupted_fit_shows_current_stage_and_unreadable_lines() {
    let mut app = app();
    open_run(&mut app, "hst-j1");
    let s = render(&app, 100, 30);
    assert_has(
        &s,
        &[
            "interrupted",
            "HMC ●",
            "MAP ✓",
            "HMC warmup draw 10",
            "divergences 3",
            "1 unreadable line(s) in metrics.jsonl skipped",
        ],
    );
    assert!(
        !s.contains("posterior ("),
        "no table before the run is done\n{s}"
    );
}

#[test]
fn compare_overlays_marked_runs_and_highlights_differing_keys() {
    let mut app = app();
    press(&mut app, KeyCode::Char('c'));
    assert_has(&render(&app, 80, 24), &["mark two or more runs"]);
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "20261120");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.marked.len(), 3);
    press(&mut app, KeyCode::Char('c'));
    assert!(matches!(&app.screen, Screen::Compare(ids) if ids.len() == 3));
    let s = render(&app, 120, 40);
    assert_has(
        &s,
        &[
            "val_elbo (epoch)",
            "3 runs",
            "≠ architecture.latent_dim",
            "≠ seed",
            "≠ summary.best_val_elbo",
            "  batch_size",
            "ld32-s1",
            "ld16",
        ],
    );
    press(&mut app, KeyCode::Char('d'));
    let s = render(&app, 120, 40);
    assert_has(&s, &["only differing shown", "≠ architecture.latent_dim"]);
    assert!(!s.contains("batch_size"), "{s}");
    let small = render(&app, 80, 24);
    assert_has(&small, &["val_elbo (epoch)", "≠ "]);
}

#[test]
fn ablation_groups_training_runs_by_latent_dim_and_other_keys() {
    let mut app = app();
    press(&mut app, KeyCode::Char('a'));
    let s = render(&app, 120, 40);
    assert_has(
        &s,
        &[
            "group by ◀ architecture.latent_dim ▶",
            "best val ELBO",
            "test chi2/px",
            "s/epoch",
            "train-20261120T131500-ld32",
            "best val ELBO vs architecture.latent_dim",
        ],
    );
    // group 32: two finished runs, the better one is -1154.8, 60 s per epoch
    let row32 = s
        .lines()
        .find(|l| l.contains("│32 "))
        .unwrap_or_else(|| panic!("no row for 32\n{s}"));
    assert!(
        row32.contains(" 2 ") && row32.contains("-1154.8") && row32.contains("60"),
        "{row32}"
    );
    let row64 = s.lines().find(|l| l.contains("│64 ")).unwrap();
    assert!(row64.contains("1 (1 open)"), "{row64}");
    assert_has(&render(&app, 80, 24), &["latent_dim", "-1243.4"]);
    press(&mut app, KeyCode::Right);
    let s = render(&app, 120, 40);
    assert!(!s.contains("◀ architecture.latent_dim ▶"), "{s}");
    assert_has(&s, &["group by ◀ lr ▶"]);
}

#[test]
fn help_overlay_lists_the_keys_and_closes() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    let s = render(&app, 80, 24);
    assert_has(
        &s,
        &[
            "keys",
            "compare marked runs",
            "ablation over training runs",
            "show only differing config keys",
        ],
    );
    press(&mut app, KeyCode::Char('?'));
    assert!(!render(&app, 80, 24).contains("compare marked runs"));
    assert!(!app.quit);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn study_and_unreadable_records_get_a_generic_view_with_notes() {
    let mut app = app();
    open_run(&mut app, "recovery");
    assert_has(
        &render(&app, 100, 30),
        &[
            "summary",
            "bias.theta_e",
            "0.0021",
            "coverage.gamma",
            "theta_e_err (fit)",
        ],
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Esc);
    open_run(&mut app, "corrupt");
    assert_has(
        &render(&app, 100, 30),
        &["unreadable", "run.json: not a valid run record"],
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Esc);
    open_run(&mut app, "eval-");
    assert_has(
        &render(&app, 100, 30),
        &["summary.json is not valid JSON", "chi2 (batch)"],
    );
}

#[test]
fn tiny_and_huge_terminals_do_not_panic() {
    let mut app = app();
    for screen in ["list", "ld16", "mock-sie", "compare", "ablation"] {
        match screen {
            "list" => {}
            "compare" => {
                app.marked = vec![
                    "train-20261120T101500-ld16".into(),
                    "fit-20261121T100000-mock-sie".into(),
                ];
                app.screen = Screen::Compare(app.marked.clone());
            }
            "ablation" => app.screen = Screen::Ablation,
            id => open_run(&mut app, id),
        }
        for (w, h) in [(1, 1), (10, 5), (40, 10), (80, 24), (300, 100)] {
            render(&app, w, h);
        }
        app.help = true;
        render(&app, 20, 6);
        app.help = false;
        app.screen = Screen::List;
        app.query = Default::default();
    }
}

/// The title keeps its run counts at 80 columns however deep the experiments root is (CI checks
/// out under a longer path than a developer's machine); the root is shortened from the left.
#[test]
fn title_keeps_counts_with_a_deep_root() {
    let deep = std::env::temp_dir()
        .join("a-rather-long-directory-name-for-a-checkout".repeat(3))
        .join("experiments-root-tail");
    let mut app = App::new(&deep);
    app.clock = Some(1_795_400_000);
    let s = render(&app, 80, 24);
    let title = s.lines().next().unwrap();
    assert!(title.contains("0 runs, 0 running"), "{title}");
    assert!(
        title.contains("…") && title.contains("experiments-root-tail"),
        "{title}"
    );
}

/// The sweep fixtures (tests/fixtures/ablation-experiments): a 2-setting sweep with its
/// evaluations, plain training runs and a resumed one.
fn sweep_app() -> App {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ablation-experiments");
    let mut app = App::new(&root);
    app.clock = Some(1_795_400_000);
    app
}

/// The screen line holding `needle`.
fn line_with<'a>(s: &'a str, needle: &str) -> &'a str {
    s.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}\n{s}"))
}

#[test]
fn ablation_groups_a_sweep_by_default_with_its_evaluations() {
    let mut app = sweep_app();
    press(&mut app, KeyCode::Char('a'));
    let s = render(&app, 120, 40);
    assert_has(
        &s,
        &[
            "group by ◀ sweep.id ▶ (1 of 4 keys) · sweep 8c41d2f0, 2 settings",
            "ELBO vs latent dim",
            "3 training runs without a sweep, by architecture.latent_dim",
            "runs of the 2 sweep settings",
        ],
    );
    let words = |l: &str| -> Vec<String> {
        l.split(|c: char| c == '│' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(
        words(line_with(&s, "│ld8 ")),
        [
            "ld8",
            "8",
            "32,64,128,256",
            "-1249.1",
            "-1252.3",
            "1.305",
            "17.84",
            "7/8",
            "8.412"
        ]
    );
    assert_eq!(
        words(line_with(&s, "│ld16 ")),
        [
            "ld16",
            "16",
            "32,64,128,256",
            "-1233.1",
            "-1236.2",
            "1.236",
            "27.36",
            "11/16",
            "16.93"
        ]
    );
    // the records behind each setting: the newest finished evaluation
    assert_eq!(
        words(line_with(&s, "train-20261123T080000-ld8")),
        [
            "ld8",
            "train-20261123T080000-ld8",
            "done",
            "eval-20261123T093000-ld8"
        ]
    );
    // runs outside the sweep: by latent dimension, the resumed one among them
    assert_eq!(words(line_with(&s, "│32 "))[..3], ["32", "2", "-1165"]);
    // 80 columns keep every figure of the sweep table
    let small = render(&app, 80, 24);
    assert_eq!(
        words(line_with(&small, "│ld16 ")),
        [
            "ld16",
            "16",
            "32,64,128,256",
            "-1233.1",
            "-1236.2",
            "1.236",
            "27.36",
            "11/16",
            "16.93"
        ]
    );
    // → the latent dimension over all training runs: the resumed run groups with its ld32 sibling
    press(&mut app, KeyCode::Right);
    let s = render(&app, 120, 40);
    assert_has(
        &s,
        &["group by ◀ architecture.latent_dim ▶ (2 of 4 keys) · 4 groups"],
    );
    assert_eq!(words(line_with(&s, "│32 "))[..2], ["32", "2"]);
    assert!(!s.contains("│- "), "{s}");
    for (w, h) in [(1, 1), (10, 5), (40, 10), (300, 100)] {
        press(&mut app, KeyCode::Left);
        render(&app, w, h);
    }
}
