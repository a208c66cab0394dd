//! Live-update and robustness tests: records written by core's `Run` while the tracker reads
//! them, half-written lines, corrupt and vanishing files, thousands of runs and a metrics file
//! of hundreds of thousands of lines — never a panic, always a visible note.

use arclight::app::{App, Screen};
use arclight::store::Catalog;
use arclight::store::run::SLICE_BYTES;
use arclight_core::record::{Run, RunKind, RunSpec};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

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

fn assert_has(screen: &str, needles: &[&str]) {
    for n in needles {
        assert!(screen.contains(n), "missing {n:?} in\n{screen}");
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn fixture(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/experiments")
        .join(id)
}

#[test]
fn a_running_training_updates_live_and_finishes() {
    let root = tempfile::tempdir().unwrap();
    let mut app = App::new(root.path());
    assert_has(&render(&app, 80, 24), &["No runs in"]);

    // a run starts after the tracker: it appears on the next tick, live (this process's pid)
    let spec = RunSpec {
        kind: RunKind::Train,
        name: "live",
        config: json!({"latent_dim": 8, "epochs": 4, "patience": 2}),
        device: "flex".into(),
        seed: Some(1),
    };
    let mut run = Run::create(root.path(), spec).unwrap();
    app.tick();
    let s = render(&app, 100, 24);
    assert_has(&s, &["1 runs, 1 running", "-live", "running"]);

    press(&mut app, KeyCode::Enter);
    assert!(matches!(app.screen, Screen::Run(_)));
    assert_has(&render(&app, 100, 24), &["no data yet", "epoch -/4"]);

    run.log("step", json!({"step": 1, "epoch": 1, "loss": 812.5, "rec": 800.0, "kl": 12.5, "lr": 0.001, "images_per_s": 640.0})).unwrap();
    run.log("epoch", json!({"epoch": 1, "train_elbo": -812.5, "val_elbo": -820.5, "best_epoch": 1, "patience_left": 2, "epoch_s": 30.0}))
        .unwrap();
    app.tick();
    let s = render(&app, 100, 24);
    assert_has(
        &s,
        &[
            "812.5",
            "-820.5",
            "epoch 1/4",
            "ETA 1m30s",
            "best epoch 1",
            "patience 2 left of 2",
        ],
    );

    // a half-written line is not shown (and not an error) until it is complete
    let metrics = run.dir().join("metrics.jsonl");
    append(
        &metrics,
        br#"{"t":2.0,"kind":"epoch","epoch":2,"train_elbo":-700.5,"val_e"#,
    );
    app.tick();
    let s = render(&app, 100, 24);
    assert!(
        !s.contains("-700.5") && !s.contains("unreadable line"),
        "{s}"
    );
    append(
        &metrics,
        br#"lbo":-705.5,"best_epoch":2,"patience_left":2,"epoch_s":30.0}"#,
    );
    append(&metrics, b"\n");
    app.tick();
    assert_has(&render(&app, 100, 24), &["-700.5", "-705.5", "epoch 2/4"]);

    run.finish(json!({"best_val_elbo": -705.5, "best_epoch": 2, "epochs": 2, "time_s": 60.0, "test_chi2_per_pixel": 1.05})).unwrap();
    app.tick();
    let s = render(&app, 100, 24);
    assert_has(
        &s,
        &[
            "done",
            "test chi2/px 1.05",
            "0 running",
            "(stopped early at 2)",
        ],
    );
    press(&mut app, KeyCode::Esc);
    assert_has(&render(&app, 100, 24), &["val ELBO -705.5 @ep 2"]);
}

#[test]
fn running_runs_update_their_list_headline_from_the_tail() {
    let root = tempfile::tempdir().unwrap();
    let spec = RunSpec {
        kind: RunKind::Train,
        name: "bg",
        config: json!({"epochs": 10}),
        device: "flex".into(),
        seed: None,
    };
    let mut run = Run::create(root.path(), spec).unwrap();
    let mut app = App::new(root.path());
    run.log(
        "epoch",
        json!({"epoch": 1, "val_elbo": -123.5, "best_epoch": 1}),
    )
    .unwrap();
    run.progress(0.1, "epoch 1/10", Some(90.0), true).unwrap();
    app.tick();
    assert_has(&render(&app, 100, 24), &["val ELBO -123.5 @ep 1", " 10%"]);
}

#[test]
fn run_directory_deleted_while_shown() {
    let root = tempfile::tempdir().unwrap();
    let id = "train-20261120T101500-ld16";
    copy_dir(&fixture(id), &root.path().join(id));
    let mut app = App::new(root.path());
    press(&mut app, KeyCode::Enter);
    assert_has(&render(&app, 100, 30), &["best epoch 19"]);
    std::fs::remove_dir_all(root.path().join(id)).unwrap();
    app.tick();
    let s = render(&app, 100, 30);
    // the last known figures stay, with the news in plain sight
    assert_has(
        &s,
        &[
            "deleted",
            "was deleted",
            "best epoch 19",
            "1 run dir(s) deleted",
        ],
    );
    press(&mut app, KeyCode::Esc);
    assert_has(&render(&app, 100, 30), &["deleted"]);
    // the whole experiments folder going away is a note, not a crash
    drop(root);
    app.tick();
    assert_has(&render(&app, 100, 30), &["cannot list"]);
}

#[test]
fn corrupt_records_are_reported_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let id = "fit-20261121T100000-mock-sie";
    let dir = root.path().join(id);
    copy_dir(&fixture(id), &dir);
    // a directory without run.json, and stray files at the top level
    std::fs::create_dir(root.path().join("not-a-run")).unwrap();
    std::fs::write(root.path().join("README.md"), "notes").unwrap();
    let mut app = App::new(root.path());
    assert_has(
        &render(&app, 100, 24),
        &["2 runs", "not-a-run", "unreadable"],
    );
    app.selected = Some(id.into());
    press(&mut app, KeyCode::Enter);
    assert_has(&render(&app, 100, 30), &["posterior (8 parameters)"]);

    // run.json replaced by garbage: the last good record stays, the problem is shown
    std::fs::write(dir.join("run.json"), b"{{ not json").unwrap();
    // summary.json truncated
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    std::fs::write(dir.join("summary.json"), &summary[..summary.len() / 2]).unwrap();
    // binary garbage and an over-long junk line appended to the metrics
    append(&dir.join("metrics.jsonl"), b"\xde\xad\xbe\xef\n[1,2,3]\n");
    append(&dir.join("metrics.jsonl"), &vec![b'x'; 100_000]);
    append(&dir.join("metrics.jsonl"), b"\n");
    app.tick();
    let s = render(&app, 120, 40);
    assert_has(
        &s,
        &[
            "run.json: not a valid run record",
            "summary.json is not valid JSON",
            "3 unreadable line(s)",
            "posterior (8 parameters)",
        ],
    );

    // metrics rewritten shorter (e.g. a resumed run cut it): read again from the start
    std::fs::write(
        dir.join("metrics.jsonl"),
        b"{\"kind\":\"stage\",\"stage\":\"vi\",\"t\":1}\n",
    )
    .unwrap();
    app.tick();
    let s = render(&app, 120, 40);
    assert_has(&s, &["VI ●"]);
    assert!(!s.contains("unreadable line"), "{s}");

    // metrics file removed: a note, the rest stays
    std::fs::remove_file(dir.join("metrics.jsonl")).unwrap();
    app.tick();
    assert_has(&render(&app, 120, 40), &["metrics.jsonl missing"]);
    // empty files everywhere
    std::fs::write(dir.join("run.json"), b"").unwrap();
    std::fs::write(dir.join("summary.json"), b"").unwrap();
    std::fs::write(dir.join("metrics.jsonl"), b"").unwrap();
    app.tick();
    render(&app, 80, 24);
}

#[test]
fn thousands_of_runs_list_quickly_and_scroll() {
    let root = tempfile::tempdir().unwrap();
    let n = 1000;
    for i in 0..n {
        let id = format!("fit-20261121T{:06}-r{i}", i);
        let dir = root.path().join(&id);
        std::fs::create_dir(&dir).unwrap();
        let info = json!({"format": 1, "id": id, "kind": "fit", "name": format!("r{i}"), "status": "done", "pid": 0,
            "started": format!("2026-11-21T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60), "updated": "2026-11-21T23:00:00Z",
            "ended": "2026-11-21T23:00:00Z", "progress": {"fraction": 1.0, "stage": "done"}});
        std::fs::write(dir.join("run.json"), info.to_string()).unwrap();
    }
    let start = std::time::Instant::now();
    let mut app = App::new(root.path());
    let s = render(&app, 100, 30);
    assert_has(
        &s,
        &[
            "1000 runs",
            "runs 1000/1000",
            "fit-20261121T000999-r999",
            "1-24 of 1000",
        ],
    );
    press(&mut app, KeyCode::End);
    assert_has(
        &render(&app, 100, 30),
        &["fit-20261121T000000-r0", "977-1000 of 1000"],
    );
    // a refresh tick (rescan + stat of every record) and a frame stay interactive
    let tick = std::time::Instant::now();
    app.tick();
    render(&app, 100, 30);
    eprintln!(
        "open {:?}, tick+frame {:?}",
        start.elapsed(),
        tick.elapsed()
    );
    assert!(
        tick.elapsed().as_secs_f64() < 2.0,
        "tick+frame took {:?}",
        tick.elapsed()
    );
}

#[test]
fn huge_metrics_file_loads_in_bounded_slices_and_keeps_spikes() {
    let root = tempfile::tempdir().unwrap();
    let spec = RunSpec {
        kind: RunKind::Train,
        name: "huge",
        config: json!({"epochs": 1}),
        device: "flex".into(),
        seed: None,
    };
    let run = Run::create(root.path(), spec).unwrap();
    let lines = 300_000usize;
    {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(run.dir().join("metrics.jsonl"))
                .unwrap(),
        );
        for i in 0..lines {
            let loss = if i == 123_457 {
                1.0e6
            } else {
                100.0 + (i % 10) as f64
            };
            writeln!(
                f,
                r#"{{"t":{},"kind":"step","step":{i},"epoch":1,"loss":{loss},"lr":0.001}}"#,
                i as f64 * 0.01
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(run.dir().join("metrics.jsonl"))
        .unwrap()
        .len();
    assert!(
        size > 3 * SLICE_BYTES,
        "file too small for the test: {size}"
    );
    let mut catalog = Catalog::open(root.path());
    let id = run.id().to_string();
    // one pump reads one slice, not the file
    let entry = catalog.get_mut(&id).unwrap();
    entry.pump_metrics();
    let f = entry.feed.as_ref().unwrap();
    assert!(
        f.offset() <= SLICE_BYTES && f.behind() > 0,
        "{} {}",
        f.offset(),
        f.behind()
    );
    // the catalog keeps pumping until caught up; the digest stays bounded
    while catalog.loading(std::slice::from_ref(&id)) {
        catalog.pump_metrics(
            std::slice::from_ref(&id),
            std::time::Duration::from_millis(200),
        );
    }
    let m = catalog.get(&id).unwrap().metrics().unwrap();
    assert_eq!(m.count("step"), lines as u64);
    let loss = m.series("step", "loss").unwrap();
    assert_eq!(loss.len(), lines as u64);
    assert!(loss.stored_buckets() <= loss.capacity());
    assert_eq!(loss.argmax(), Some((123_457.0, 1.0e6)));
    assert!(
        loss.points(200).contains(&(123_457.0, 1.0e6)),
        "spike lost by downsampling"
    );
    // and the TUI shows it while loading, then complete
    let mut app = App::new(root.path());
    press(&mut app, KeyCode::Enter);
    while app.loading() {
        assert_has(&render(&app, 100, 30), &["loading metrics"]);
        app.tick();
    }
    let s = render(&app, 100, 30);
    assert_has(&s, &["299999", "loss"]);
    assert!(!s.contains("loading metrics"));
}
