//! Filtering and sorting of the run list, shared by the TUI list view and `arclight runs list`.
//! The ablation grouping of training runs is in [`ablation`] and [`sweep`], the compare table in
//! [`compare`].

pub mod ablation;
pub mod compare;
pub mod sweep;

use crate::store::{Catalog, RunEntry};
use arclight_core::record::RunKind;

/// Column the run list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Start time (newest first unless reversed).
    #[default]
    Started,
    Id,
    Kind,
    Status,
    Duration,
    Progress,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Started,
        SortKey::Id,
        SortKey::Kind,
        SortKey::Status,
        SortKey::Duration,
        SortKey::Progress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Started => "started",
            SortKey::Id => "id",
            SortKey::Kind => "kind",
            SortKey::Status => "status",
            SortKey::Duration => "duration",
            SortKey::Progress => "progress",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The next key, for cycling with one key press.
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// Kinds a filter can cycle through.
pub const KINDS: [RunKind; 5] = [
    RunKind::Train,
    RunKind::Fit,
    RunKind::Study,
    RunKind::Prepare,
    RunKind::Eval,
];
/// Status labels a filter can cycle through (see [`RunEntry::status_label`]).
pub const STATUSES: [&str; 8] = [
    "running",
    "done",
    "flagged",
    "failed",
    "interrupted",
    "unknown",
    "unreadable",
    "deleted",
];

/// Which runs to show and in which order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub kind: Option<RunKind>,
    pub status: Option<&'static str>,
    /// Case-insensitive substring of id, name, kind, status or headline.
    pub text: String,
    pub sort: SortKey,
    pub reverse: bool,
}

impl ListQuery {
    /// Whether a run passes the filters.
    pub fn matches(&self, r: &RunEntry) -> bool {
        if let Some(k) = self.kind
            && r.kind() != Some(k)
        {
            return false;
        }
        if let Some(s) = self.status
            && r.status_label() != s
        {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        let needle = self.text.to_lowercase();
        let name = r.info.as_ref().map(|i| i.name.as_str()).unwrap_or("");
        [
            r.id.as_str(),
            name,
            r.status_label(),
            r.kind().map(RunKind::as_str).unwrap_or(""),
        ]
        .iter()
        .any(|h| h.to_lowercase().contains(&needle))
            || crate::store::headline::headline(r)
                .to_lowercase()
                .contains(&needle)
    }

    /// Indices into `catalog.runs()` of the matching runs, sorted.
    pub fn apply(&self, catalog: &Catalog, now: u64) -> Vec<usize> {
        let runs = catalog.runs();
        let mut idx: Vec<usize> = (0..runs.len())
            .filter(|&i| self.matches(&runs[i]))
            .collect();
        let by_id = |a: &RunEntry, b: &RunEntry| a.id.cmp(&b.id);
        idx.sort_by(|&a, &b| {
            let (ra, rb) = (&runs[a], &runs[b]);
            let ord = match self.sort {
                // newest first; unreadable records (no start time) last; ties by id
                SortKey::Started => rb
                    .started_secs()
                    .cmp(&ra.started_secs())
                    .then_with(|| by_id(rb, ra)),
                SortKey::Id => by_id(ra, rb),
                SortKey::Kind => ra.kind().cmp(&rb.kind()).then_with(|| by_id(ra, rb)),
                SortKey::Status => ra
                    .status_label()
                    .cmp(rb.status_label())
                    .then_with(|| by_id(ra, rb)),
                SortKey::Duration => rb
                    .duration_s(now)
                    .cmp(&ra.duration_s(now))
                    .then_with(|| by_id(ra, rb)),
                SortKey::Progress => ra
                    .progress()
                    .total_cmp(&rb.progress())
                    .then_with(|| by_id(ra, rb)),
            };
            if self.reverse { ord.reverse() } else { ord }
        });
        idx
    }

    /// One-line description of the active filters (empty if none).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(k) = self.kind {
            parts.push(format!("kind={}", k.as_str()));
        }
        if let Some(s) = self.status {
            parts.push(format!("status={s}"));
        }
        if !self.text.is_empty() {
            parts.push(format!("text~'{}'", self.text));
        }
        parts.join(" ")
    }
}

/// Cycle an optional filter value through `all` and back to "no filter".
pub fn cycle<T: Copy + PartialEq>(current: Option<T>, all: &[T]) -> Option<T> {
    match current {
        None => all.first().copied(),
        Some(c) => {
            let i = all.iter().position(|x| *x == c).unwrap_or(all.len());
            all.get(i + 1).copied()
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
