//! Command line: `arclight [--root DIR]` opens the TUI; `arclight runs list|show|compare|ablation`
//! print the same information as plain tables, or as JSON with `--json`, for scripts and
//! notebooks.

use crate::format;
use crate::query::{self, ListQuery, STATUSES, SortKey, ablation, compare, sweep};
use crate::store::headline::headline;
use crate::store::{Catalog, RunEntry};
use anyhow::{Result, anyhow, bail};
use arclight_core::record::RunKind;
use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "arclight",
    version,
    about = "Track arclight runs: live terminal UI, or tables/JSON with `runs`"
)]
pub struct Cli {
    /// Experiments folder holding one directory per run.
    #[arg(long, global = true, default_value = "experiments", value_name = "DIR")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Query run records without the interface.
    Runs {
        #[command(subcommand)]
        cmd: RunsCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunsCmd {
    /// One line per run: id, kind, status, started, duration, progress, headline.
    List {
        #[arg(long)]
        json: bool,
        /// Only runs of this kind (train, fit, study, prepare, eval).
        #[arg(long)]
        kind: Option<String>,
        /// Only runs with this status (running, done, flagged, failed, interrupted, unknown: written by a
        /// newer program, unreadable, deleted).
        #[arg(long)]
        status: Option<String>,
        /// Only runs whose id, name or headline contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Sort column: started (default, newest first), id, kind, status, duration, progress.
        #[arg(long, default_value = "started")]
        sort: String,
        #[arg(long)]
        reverse: bool,
    },
    /// Everything about one run: record, config, summary, metrics digest.
    Show {
        /// Run id, or a unique prefix or substring of it.
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Configs and summary figures of several runs side by side; differing keys marked.
    Compare {
        /// Two or more run ids (or unique prefixes / substrings).
        #[arg(num_args = 2.., required = true)]
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Print only the keys whose values differ.
        #[arg(long)]
        only_diff: bool,
    },
    /// Training runs grouped by a config key: by sweep when runs of `train-vae sweep` are
    /// present (one row per setting, with its test-split evaluation), else by latent_dim.
    Ablation {
        /// Config key to group by: in full (`architecture.latent_dim`), by its last part
        /// (`latent_dim`), or `sweep`. Default: `sweep` if any run has one, else `latent_dim`.
        #[arg(long, value_name = "KEY")]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Time allowed for reading metrics files in a CLI query.
const METRICS_BUDGET: Duration = Duration::from_secs(600);

/// Run a `runs` subcommand, returning what to print.
pub fn runs(root: &std::path::Path, cmd: &RunsCmd) -> Result<String> {
    let mut catalog = Catalog::open(root);
    if let Some(e) = &catalog.root_error {
        bail!("{e}");
    }
    match cmd {
        RunsCmd::List {
            json,
            kind,
            status,
            filter,
            sort,
            reverse,
        } => {
            let q = ListQuery {
                kind: kind.as_deref().map(parse_kind).transpose()?,
                status: status.as_deref().map(parse_status).transpose()?,
                text: filter.clone().unwrap_or_default(),
                sort: SortKey::parse(sort).ok_or_else(|| anyhow!("--sort {sort}: expected one of started, id, kind, status, duration, progress"))?,
                reverse: *reverse,
            };
            // headlines of running runs, and of training runs that ended without a summary,
            // come from their metrics
            read_metrics_best(&mut catalog, |r| {
                r.status_label() == "running"
                    || (r.kind() == Some(RunKind::Train) && r.summary.is_none())
            });
            Ok(list(&catalog, &q, *json))
        }
        RunsCmd::Show { id, json } => {
            let id = catalog.find(id).map_err(|e| anyhow!(e))?.id.clone();
            catalog.pump_metrics(std::slice::from_ref(&id), METRICS_BUDGET);
            let run = catalog.get(&id).expect("found above");
            Ok(show(run, *json))
        }
        RunsCmd::Compare {
            ids,
            json,
            only_diff,
        } => {
            let mut found = Vec::new();
            for q in ids {
                let id = catalog.find(q).map_err(|e| anyhow!(e))?.id.clone();
                if !found.contains(&id) {
                    found.push(id);
                }
            }
            Ok(compare_runs(&catalog, &found, *json, *only_diff))
        }
        RunsCmd::Ablation { by, json } => {
            // a sweep setting still training shows its best validation ELBO so far
            read_metrics_best(&mut catalog, |r| {
                r.kind() == Some(RunKind::Train) && r.summary.is_none()
            });
            ablation_cmd(&catalog, by.as_deref(), *json)
        }
    }
}

/// Read the metrics of the runs `needed` picks, one at a time, keeping only what the headline
/// needs ([`RunEntry::metrics_best`]) and dropping each digest (bounded memory).
fn read_metrics_best(catalog: &mut Catalog, needed: impl Fn(&RunEntry) -> bool) {
    let ids: Vec<String> = catalog
        .runs()
        .iter()
        .filter(|r| needed(r))
        .map(|r| r.id.clone())
        .collect();
    for id in ids {
        catalog.pump_metrics(std::slice::from_ref(&id), METRICS_BUDGET);
        if let Some(r) = catalog.get_mut(&id) {
            r.feed = None;
        }
    }
}

/// `runs ablation`: the sweeps (grouping by sweep) or the groups of one key, as text or JSON.
fn ablation_cmd(catalog: &Catalog, by: Option<&str>, as_json: bool) -> Result<String> {
    let by = match by {
        Some(name) => {
            ablation::resolve_key(catalog, name).map_err(|e| anyhow!("--by {name}: {e}"))?
        }
        None => ablation::default_key(catalog),
    };
    if by == sweep::SWEEP_KEY {
        let view = ablation::sweep_view(catalog);
        if as_json {
            let v = json!({"by": by, "sweeps": view.sweeps,
                "others": {"by": view.others_by, "groups": view.others}});
            return Ok(format!("{}\n", serde_json::to_string_pretty(&v)?));
        }
        return Ok(sweep_tables(&view));
    }
    let groups = ablation::groups(catalog, &by);
    if as_json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"by": by, "groups": groups}))?
        ));
    }
    Ok(group_table(&by, &groups))
}

/// One table per sweep (a title line, then a row per setting), then the training runs outside
/// any sweep grouped by latent dimension.
fn sweep_tables(view: &ablation::SweepView) -> String {
    let mut parts = Vec::new();
    for s in &view.sweeps {
        let mut header: Vec<&str> = sweep::HEADER.to_vec();
        header.extend(["train run", "eval run"]);
        let rows: Vec<Vec<String>> = s
            .settings
            .iter()
            .map(|r| {
                let mut cells = r.cells();
                let train = match (&r.train_run, r.train_status) {
                    (Some(id), Some(st)) if st != "done" => format!("{id} ({st})"),
                    (id, _) => id.clone().unwrap_or_default(),
                };
                cells.extend([train, r.eval_run.clone().unwrap_or_default()]);
                cells
            })
            .collect();
        let dir = s.dir.as_deref().unwrap_or("?");
        let title = format!("sweep {} in {dir}: {} settings\n", s.id, s.settings.len());
        parts.push(title + &table(&header, &rows));
    }
    if !view.others.is_empty() {
        let title = format!("training runs without a sweep, by {}\n", view.others_by);
        parts.push(title + &group_table(&view.others_by, &view.others));
    }
    parts.join("\n")
}

/// The groups of one key, a row each.
fn group_table(by: &str, groups: &[ablation::Group]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.value.clone(),
                g.runs_text(),
                format::opt(g.best_val_elbo),
                format::opt(g.mean_val_elbo),
                format::opt(g.test_chi2_per_pixel),
                format::opt(g.epochs),
                format::opt(g.s_per_epoch),
                g.best_run.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            by,
            "runs",
            "best val ELBO",
            "mean val ELBO",
            "test chi2/px",
            "epochs",
            "s/epoch",
            "best run",
        ],
        &rows,
    )
}

fn parse_kind(s: &str) -> Result<RunKind> {
    query::KINDS
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| anyhow!("--kind {s}: expected one of train, fit, study, prepare, eval"))
}

fn parse_status(s: &str) -> Result<&'static str> {
    STATUSES
        .into_iter()
        .find(|k| *k == s)
        .ok_or_else(|| anyhow!("--status {s}: expected one of {}", STATUSES.join(", ")))
}

/// Plain left-aligned columns separated by two spaces.
pub fn table<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.as_ref().chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.as_ref()).collect());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn list_json(r: &RunEntry, now: u64) -> Value {
    let info = r.info.as_ref();
    json!({
        "id": r.id,
        "kind": r.kind().map(RunKind::as_str),
        "name": info.map(|i| i.name.clone()),
        "status": r.status_label(),
        "started": info.map(|i| i.started.clone()),
        "ended": info.and_then(|i| i.ended.clone()),
        "duration_s": r.duration_s(now),
        "progress": r.progress(),
        "stage": info.map(|i| i.progress.stage.clone()),
        "headline": headline(r),
        "problems": r.problems(),
    })
}

fn list(catalog: &Catalog, q: &ListQuery, as_json: bool) -> String {
    let now = query::now_secs();
    let idx = q.apply(catalog, now);
    let runs = catalog.runs();
    if as_json {
        let v: Vec<Value> = idx.iter().map(|&i| list_json(&runs[i], now)).collect();
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let rows: Vec<Vec<String>> = idx
        .iter()
        .map(|&i| {
            let r = &runs[i];
            vec![
                r.id.clone(),
                r.kind()
                    .map(|k| k.as_str().to_string())
                    .unwrap_or_else(|| "?".into()),
                r.status_label().to_string(),
                r.info
                    .as_ref()
                    .map(|i| format::started(&i.started))
                    .unwrap_or_default(),
                r.duration_s(now)
                    .map(|d| format::duration(d as f64))
                    .unwrap_or_default(),
                format!("{:.0}%", r.progress() * 100.0),
                headline(r),
            ]
        })
        .collect();
    table(
        &[
            "id", "kind", "status", "started", "time", "progress", "headline",
        ],
        &rows,
    )
}

/// Metrics digest as JSON: line count, unreadable lines, and per kind its count and last line.
fn metrics_json(r: &RunEntry) -> Value {
    let Some(f) = &r.feed else { return Value::Null };
    let m = &f.metrics;
    let kinds: Map<String, Value> = m
        .kinds()
        .map(|(k, n)| {
            (
                k.to_string(),
                json!({"count": n, "last": m.last(k).cloned().map(Value::Object)}),
            )
        })
        .collect();
    json!({"lines": m.lines(), "bad_lines": f.bad_lines(), "kinds": kinds})
}

fn show(r: &RunEntry, as_json: bool) -> String {
    let now = query::now_secs();
    if as_json {
        let v = json!({
            "id": r.id,
            "dir": r.dir,
            "status": r.status_label(),
            "duration_s": r.duration_s(now),
            "headline": headline(r),
            "info": r.info,
            "summary": r.summary,
            "metrics": metrics_json(r),
            "problems": r.problems(),
        });
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let mut rows = vec![
        vec!["id".to_string(), r.id.clone()],
        vec!["dir".into(), r.dir.display().to_string()],
        vec!["status".into(), r.status_label().to_string()],
        vec!["headline".into(), headline(r)],
    ];
    if let Some(i) = &r.info {
        rows.push(vec!["kind".into(), i.kind.as_str().into()]);
        rows.push(vec!["started".into(), i.started.clone()]);
        rows.push(vec!["ended".into(), i.ended.clone().unwrap_or_default()]);
        rows.push(vec![
            "duration".into(),
            r.duration_s(now)
                .map(|d| format::duration(d as f64))
                .unwrap_or_default(),
        ]);
        rows.push(vec![
            "progress".into(),
            format!("{:.0}% {}", r.progress() * 100.0, i.progress.stage),
        ]);
        rows.push(vec!["device".into(), i.device.clone()]);
        rows.push(vec![
            "seed".into(),
            i.seed.map(|s| s.to_string()).unwrap_or_default(),
        ]);
        rows.push(vec!["git".into(), i.git_rev.clone().unwrap_or_default()]);
        rows.push(vec!["argv".into(), i.argv.join(" ")]);
        if let Some(e) = &i.error {
            rows.push(vec!["error".into(), e.clone()]);
        }
    }
    for p in r.problems() {
        rows.push(vec!["problem".into(), p]);
    }
    out.push_str(&table(&["run", ""], &rows));
    if let Some(i) = &r.info {
        let cfg: Vec<Vec<String>> = format::flatten(&i.config)
            .into_iter()
            .map(|(k, v)| vec![k, v])
            .collect();
        out.push('\n');
        out.push_str(&table(&["config", ""], &cfg));
    }
    if let Some(s) = &r.summary {
        let rows: Vec<Vec<String>> = format::flatten(s)
            .into_iter()
            .map(|(k, v)| vec![k, v])
            .collect();
        out.push('\n');
        out.push_str(&table(&["summary", ""], &rows));
    }
    if let Some(f) = &r.feed {
        let m = &f.metrics;
        let rows: Vec<Vec<String>> = m
            .kinds()
            .map(|(k, n)| {
                let last = m
                    .last(k)
                    .map(|l| {
                        l.iter()
                            .filter(|(key, _)| key.as_str() != "kind")
                            .map(|(key, v)| format!("{key}={}", format::value(v)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                vec![k.to_string(), n.to_string(), last]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["metrics", "lines", "last line"], &rows));
    }
    out
}

fn compare_runs(catalog: &Catalog, ids: &[String], as_json: bool, only_diff: bool) -> String {
    let runs: Vec<&RunEntry> = ids.iter().filter_map(|id| catalog.get(id)).collect();
    let rows = compare::table_rows(&runs);
    let differing: Vec<&String> = rows
        .iter()
        .filter(|(_, v)| compare::differs(v))
        .map(|(k, _)| k)
        .collect();
    if as_json {
        // the stored values: numbers as numbers, arrays as arrays, null where a run lacks a key
        let keys: Map<String, Value> = compare::table_values(&runs)
            .into_iter()
            .filter(|(k, _)| !only_diff || rows.get(k).is_some_and(|v| compare::differs(v)))
            .map(|(k, v)| (k, json!(v)))
            .collect();
        let v = json!({"runs": ids, "keys": keys, "differing": differing});
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let mut header = vec!["key".to_string()];
    header.extend(ids.iter().cloned());
    let body: Vec<Vec<String>> = rows
        .iter()
        .filter(|(_, v)| !only_diff || compare::differs(v))
        .map(|(k, v)| {
            let mut row = vec![format!(
                "{}{k}",
                if compare::differs(v) { "* " } else { "  " }
            )];
            row.extend(v.iter().cloned());
            row
        })
        .collect();
    let mut out = table(&header, &body);
    out.push_str(&format!(
        "{} of {} keys differ (marked *)\n",
        differing.len(),
        rows.len()
    ));
    out
}
