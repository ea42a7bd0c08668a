//! dockling: a small, real container runtime that shows how Docker builds a container.

mod cgroups;
mod cli;
mod container;
mod error;
mod explain;
mod image;
mod network;
mod security;
mod state;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; bad flags exit 125 like Docker.
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            // One clear line for bad input, as the rest of dockling does.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("dockling: {}", first.trim_start_matches("error: "));
            std::process::exit(error::RUNTIME_ERROR);
        }
    };
    let code = match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dockling: {err:#}");
            error::code_of(&err)
        }
    };
    std::process::exit(code);
}
