//! `arclight`: open the tracker UI on `--root` (default `./experiments`), or answer a
//! `runs list|show|compare|ablation` query on stdout.

use anyhow::Result;
use arclight::cli::{Cli, Command};
use clap::Parser;
use std::io::Write;

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        None => arclight::tui::run(&cli.root),
        Some(Command::Runs { cmd }) => {
            let text = arclight::cli::runs(&cli.root, cmd)?;
            let mut out = std::io::stdout().lock();
            // a closed pipe (`arclight runs list | head`) is not an error worth a message
            match out.write_all(text.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}
