use std::{io::IsTerminal as _, process::ExitCode};

use monitor::config::{self, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

/// Every event allocates a few short-lived strings and buffers, and frees
/// those of an event seconds old: glibc's malloc spent about a tenth of the
/// daemon's CPU per event on them (chunk consolidation on cold memory);
/// mimalloc's per-thread pages cost a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages: mimalloc asks for them, and the kernel
    // then zeroes 2 MiB at every first touch of a fresh region; the
    // daemon's memory is small and churns, so that was a fifth of its CPU
    // per event. Best effort: if the kernel refuses, only speed is at stake.
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let cli = match config::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        // clap formats --help, --version and usage errors itself.
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => return fail(&e.into()),
    };
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(filter) => filter,
        Err(e) => return fail(&anyhow::anyhow!("invalid --log filter {:?}: {e}", cli.log)),
    };
    init_logging(filter, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(monitor::daemon::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Plain lines unless stdout is a terminal (journald, files and pipes get
/// no escape codes; NO_COLOR turns colours off everywhere); or JSON.
fn init_logging(filter: EnvFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => {
            let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(ansi).init();
        }
    }
}

/// One line a sysadmin can act on (the whole cause chain), not a backtrace.
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("monitor: error: {error:#}");
    ExitCode::FAILURE
}
