//! `arclight`: open the tracker UI on `--root` (default `./experiments`), or answer a
//! `runs list|show|compare|ablation` query on stdout.

use arclight::cli::{Cli, Command};
use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => arclight::tui::run(&cli.root),
        Some(Command::Runs { cmd }) => arclight::cli::runs(&cli.root, cmd).and_then(|text| {
            // a closed pipe (`arclight runs list | head`) is not an error worth a message
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }),
    };
    match result {
        // ended by SIGTERM / SIGINT / SIGHUP: 128 + the signal, as the shell reports a killed process
        Ok(()) => match arclight::hangup::exit_signal() {
            Some(sig) => ExitCode::from((128 + sig) as u8),
            None => ExitCode::SUCCESS,
        },
        Err(e) => {
            // not eprintln!: it panics when stderr is a terminal that hung up
            let _ = writeln!(std::io::stderr(), "arclight: {e:#}");
            ExitCode::FAILURE
        }
    }
}
