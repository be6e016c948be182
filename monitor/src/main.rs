use std::process::ExitCode;

use monitor::config_file::{self, ConfigError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match config_file::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        // clap formats --help, --version and usage errors itself.
        Err(ConfigError::Clap(e)) => e.exit(),
        Err(e) => return fail(&e.into()),
    };
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(filter) => filter,
        Err(e) => return fail(&anyhow::anyhow!("invalid --log filter {:?}: {e}", cli.log)),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(monitor::app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// One line a sysadmin can act on (the whole cause chain), not a backtrace.
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("monitor: error: {error:#}");
    ExitCode::FAILURE
}
