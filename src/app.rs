//! State of the tracker and its key handling, independent of any terminal: the event loop
//! ([`crate::tui`]) and the render tests drive the same [`App`].

use crate::query::{self, KINDS, ListQuery, STATUSES, ablation};
use crate::store::Catalog;
use arclight_core::record::{RunKind, Status};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::Path;
use std::time::Duration;

/// Which screen is shown.
#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    /// The run list.
    List,
    /// One run: training, inference or generic view depending on its kind.
    Run(String),
    /// Several runs side by side.
    Compare(Vec<String>),
    /// Training runs grouped by a config key.
    Ablation,
}

/// Time spent tailing metrics per tick, at most.
pub const PUMP_BUDGET: Duration = Duration::from_millis(60);
/// Runs whose metrics are tailed in the background (running ones) at most.
const MAX_WATCHED_RUNNING: usize = 32;
/// Rows around the list selection whose missing headlines are read from the metrics.
const LIST_WINDOW: usize = 40;
/// Metrics digests kept in memory before unused ones are dropped.
const MAX_LOADED: usize = 64;

/// The tracker's state.
#[derive(Debug)]
pub struct App {
    pub catalog: Catalog,
    pub screen: Screen,
    /// Help overlay shown.
    pub help: bool,
    pub query: ListQuery,
    /// Typing into the text filter.
    pub editing_filter: bool,
    /// Selected run in the list (by id, so live updates do not move the cursor).
    pub selected: Option<String>,
    /// Runs marked for comparison, in marking order.
    pub marked: Vec<String>,
    /// Index of the chart picked with ←/→ (training, compare, generic views).
    pub metric: i64,
    /// First chart shown in the inference view.
    pub pane: i64,
    /// Scroll offset of the lower panel of detail views.
    pub scroll: usize,
    /// Config key picked for the ablation grouping (`None`: the sweep, else `latent_dim`, else the
    /// first varying key).
    pub ablation_key: Option<String>,
    /// Compare view: show only differing config keys.
    pub only_diff: bool,
    /// One-line message for the footer (e.g. why a key did nothing).
    pub message: Option<String>,
    pub quit: bool,
    /// "Now" for durations; `None` means the wall clock (tests pin it).
    pub clock: Option<u64>,
}

impl App {
    /// Open the tracker on an experiments folder.
    pub fn new(root: &Path) -> App {
        let mut app = App {
            catalog: Catalog::open(root),
            screen: Screen::List,
            help: false,
            query: ListQuery::default(),
            editing_filter: false,
            selected: None,
            marked: Vec::new(),
            metric: 0,
            pane: 0,
            scroll: 0,
            ablation_key: None,
            only_diff: false,
            message: None,
            quit: false,
            clock: None,
        };
        app.tick();
        app
    }

    /// Current time in Unix seconds.
    pub fn now(&self) -> u64 {
        self.clock.unwrap_or_else(query::now_secs)
    }

    /// Runs whose metrics are needed now: the ones on screen, then running ones (for live
    /// headlines).
    pub fn watched(&self) -> Vec<String> {
        let mut ids: Vec<String> = match &self.screen {
            Screen::List => Vec::new(),
            Screen::Run(id) => vec![id.clone()],
            Screen::Compare(ids) => ids.clone(),
            Screen::Ablation => Vec::new(),
        };
        for r in self.catalog.runs() {
            if ids.len() >= MAX_WATCHED_RUNNING {
                break;
            }
            if r.status == Some(Status::Running) && !ids.contains(&r.id) {
                ids.push(r.id.clone());
            }
        }
        if self.screen == Screen::List {
            // training runs on screen that ended without a summary (interrupted, failed): their
            // best validation ELBO so far comes from the metrics
            let visible = self.visible();
            let pos = self.selected_pos(&visible).unwrap_or(0);
            let window =
                &visible[pos.saturating_sub(LIST_WINDOW)..(pos + LIST_WINDOW).min(visible.len())];
            for &i in window {
                let r = &self.catalog.runs()[i];
                if r.kind() == Some(RunKind::Train) && r.summary.is_none() && !ids.contains(&r.id) {
                    ids.push(r.id.clone());
                }
            }
        }
        ids
    }

    /// Rescan the folder and tail the watched metrics (one time-budgeted step).
    pub fn tick(&mut self) {
        self.catalog.refresh();
        let ids = self.watched();
        self.catalog.pump_metrics(&ids, PUMP_BUDGET);
        self.catalog.evict_metrics(&ids, MAX_LOADED);
        self.fix_selection();
    }

    /// Whether watched metrics still have unread bytes (the loop then ticks again at once).
    pub fn loading(&self) -> bool {
        self.catalog.loading(&self.watched())
    }

    /// Indices of the listed runs, filtered and sorted.
    pub fn visible(&self) -> Vec<usize> {
        self.query.apply(&self.catalog, self.now())
    }

    /// Position of the selection within [`App::visible`].
    pub fn selected_pos(&self, visible: &[usize]) -> Option<usize> {
        let id = self.selected.as_ref()?;
        visible
            .iter()
            .position(|&i| &self.catalog.runs()[i].id == id)
    }

    /// Keep the selection on a listed run.
    fn fix_selection(&mut self) {
        let visible = self.visible();
        if self.selected_pos(&visible).is_none() {
            self.selected = visible.first().map(|&i| self.catalog.runs()[i].id.clone());
        }
    }

    fn move_selection(&mut self, delta: isize) {
        let visible = self.visible();
        if visible.is_empty() {
            self.selected = None;
            return;
        }
        let pos = self.selected_pos(&visible).unwrap_or(0) as isize;
        let new = (pos + delta).clamp(0, visible.len() as isize - 1) as usize;
        self.selected = Some(self.catalog.runs()[visible[new]].id.clone());
    }

    fn toggle_mark(&mut self, id: String) {
        if let Some(p) = self.marked.iter().position(|m| *m == id) {
            self.marked.remove(p);
        } else {
            self.marked.push(id);
        }
    }

    fn open(&mut self, screen: Screen) {
        self.screen = screen;
        self.metric = 0;
        self.pane = 0;
        self.scroll = 0;
        // load the new screen's metrics right away rather than on the next tick
        let ids = self.watched();
        self.catalog.pump_metrics(&ids, PUMP_BUDGET);
    }

    /// Handle one key press.
    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.message = None;
        if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.query.text.clear();
                }
                KeyCode::Backspace => {
                    self.query.text.pop();
                }
                KeyCode::Char(c) => self.query.text.push(c),
                _ => {}
            }
            self.fix_selection();
            return;
        }
        if self.help {
            if matches!(
                key.code,
                KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter
            ) {
                self.help = false;
            }
            return;
        }
        match key.code {
            KeyCode::Char('?') => {
                self.help = true;
                return;
            }
            KeyCode::Char('q') => {
                self.quit = true;
                return;
            }
            _ => {}
        }
        match self.screen.clone() {
            Screen::List => self.list_key(key.code),
            Screen::Run(id) => self.run_key(key.code, &id),
            Screen::Compare(_) | Screen::Ablation => self.detail_key(key.code),
        }
    }

    fn list_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-10),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
                if let Some(id) = self.selected.clone() {
                    self.open(Screen::Run(id));
                }
            }
            KeyCode::Char(' ') => {
                if let Some(id) = self.selected.clone() {
                    self.toggle_mark(id);
                    self.move_selection(1);
                }
            }
            KeyCode::Char('c') => self.compare(),
            KeyCode::Char('a') => self.open(Screen::Ablation),
            KeyCode::Char('/') => self.editing_filter = true,
            KeyCode::Char('t') => self.query.kind = query::cycle(self.query.kind, &KINDS),
            KeyCode::Char('s') => self.query.status = query::cycle(self.query.status, &STATUSES),
            KeyCode::Char('o') => self.query.sort = self.query.sort.next(),
            KeyCode::Char('r') => self.query.reverse = !self.query.reverse,
            KeyCode::Char('u') => self.marked.clear(),
            KeyCode::Char('x') | KeyCode::Esc => {
                self.query = ListQuery {
                    sort: self.query.sort,
                    reverse: self.query.reverse,
                    ..ListQuery::default()
                }
            }
            _ => {}
        }
        self.fix_selection();
    }

    /// Open the compare screen on the marked runs (plus the selected one if only one is marked).
    fn compare(&mut self) {
        let mut ids: Vec<String> = self
            .marked
            .iter()
            .filter(|id| self.catalog.get(id).is_some())
            .cloned()
            .collect();
        if ids.len() == 1
            && let Some(sel) = &self.selected
            && !ids.contains(sel)
        {
            ids.push(sel.clone());
        }
        if ids.len() < 2 {
            self.message = Some("mark two or more runs with space, then press c".into());
            return;
        }
        self.open(Screen::Compare(ids));
    }

    fn run_key(&mut self, code: KeyCode, id: &str) {
        match code {
            KeyCode::Char(' ') => self.toggle_mark(id.to_string()),
            KeyCode::Char('n') | KeyCode::Char('p') => {
                self.selected = Some(id.to_string());
                self.move_selection(if code == KeyCode::Char('n') { 1 } else { -1 });
                if let Some(next) = self.selected.clone()
                    && next != id
                {
                    self.open(Screen::Run(next));
                }
            }
            _ => self.detail_key(code),
        }
    }

    fn detail_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Char('h') => self.screen = Screen::List,
            KeyCode::Right | KeyCode::Char(']') | KeyCode::Char('l') => {
                self.metric += 1;
                self.pane += 1;
                self.cycle_ablation(1);
            }
            KeyCode::Left | KeyCode::Char('[') => {
                self.metric -= 1;
                self.pane -= 1;
                self.cycle_ablation(-1);
            }
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Char('d') => self.only_diff = !self.only_diff,
            _ => {}
        }
    }

    /// Mouse wheel: move the list selection or scroll the detail tables.
    pub fn scroll_by(&mut self, delta: isize) {
        match self.screen {
            Screen::List => self.move_selection(delta),
            _ => self.scroll = self.scroll.saturating_add_signed(delta),
        }
    }

    /// Index into `n` choices picked by a signed cursor (wraps both ways).
    pub fn pick(cursor: i64, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            cursor.rem_euclid(n as i64) as usize
        }
    }

    fn cycle_ablation(&mut self, step: isize) {
        if self.screen != Screen::Ablation {
            return;
        }
        let keys = ablation::group_keys(&self.catalog);
        if keys.is_empty() {
            return;
        }
        let current = ablation::current_key(self.ablation_key.as_deref(), &keys);
        let i = keys.iter().position(|k| *k == current).unwrap_or(0) as isize;
        let n = keys.len() as isize;
        self.ablation_key = Some(keys[((i + step) % n + n) as usize % keys.len()].clone());
    }
}
