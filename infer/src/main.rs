//! `infer`: thin command-line front end of the lens-modelling library (the commands are `infer::cli`).

use clap::Parser;

fn main() {
    let cli = infer::cli::Cli::parse();
    if let Err(e) = infer::cli::run(cli) {
        eprintln!("infer: error: {e:#}");
        std::process::exit(1);
    }
}
