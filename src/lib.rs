//! `arclight`: the experiment tracker. Reads the run records that `train-vae` and `infer` write
//! under `experiments/` (format in `arclight_core::record`) and shows them live in a terminal UI,
//! or prints them as tables / JSON (`arclight runs ...`).
//!
//! - [`store`]: run discovery, incremental reloading, metrics tailing and downsampling;
//! - [`query`]: list filtering and sorting, ablation grouping, compare table; [`format`](mod@format):
//!   number/time/JSON cell formatting;
//! - [`app`]: UI state and key handling; [`views`]: one renderer per screen; [`tui`]: event loop;
//! - [`hangup`]: waiting on the terminal so that a hang-up or SIGTERM ends the interface;
//! - [`cli`]: command-line parsing and the `runs` subcommands.

pub mod app;
pub mod cli;
pub mod format;
pub mod hangup;
pub mod query;
pub mod store;
pub mod tui;
pub mod views;
