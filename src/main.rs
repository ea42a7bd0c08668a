//! dockling: a small, real container runtime that shows how Docker builds a container.

mod cgroups;
mod cli;
mod container;
mod engine;
mod error;
mod explain;
mod image;
mod network;
mod runc;
mod security;
mod state;
mod sys;
mod timing;
mod types;

use clap::Parser;

fn main() {
    timing::init();
    // A caller that ignores SIGCHLD would have our children (a container, its monitor's
    // child) reaped behind our back, and their exit codes lost; the monitor inherits this.
    // SAFETY: restoring the default disposition installs no handler.
    let _ =
        unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGCHLD, nix::sys::signal::SigHandler::SigDfl) };
    // The monitor's exit handler skips clap: it runs once per detached container.
    let args: Vec<std::ffi::OsString> = std::env::args_os().take(7).collect();
    // The same binary as `dockling-runc`: runc's command line, for containerd and Docker.
    let invoked = args.first().map(std::path::Path::new).and_then(|p| p.file_name()).map(|n| n.to_os_string());
    if invoked.is_some_and(|n| n == "dockling-runc") {
        std::process::exit(runc::main());
    }
    if args.get(1).is_some_and(|a| a == "_monitor-exit") {
        std::process::exit(monitor_exit(&args[2..]));
    }
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
    timing::mark("exit");
    std::process::exit(code);
}

/// `dockling _monitor-exit ROOT RUN ID CODE`, exec'd by dockling-monitor when its
/// container is gone.
fn monitor_exit(args: &[std::ffi::OsString]) -> i32 {
    let [root, runtime_dir, id, code] = args else {
        eprintln!("dockling: _monitor-exit ROOT RUN ID CODE (run by dockling-monitor)");
        return error::RUNTIME_ERROR;
    };
    let code = code.to_str().and_then(|c| c.parse().ok());
    container::monitor_exit(root.into(), runtime_dir.into(), &id.to_string_lossy(), code)
}
