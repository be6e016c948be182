use clap::Parser as _;
use monitor::cli::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {:?}: {e}", cli.log))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
    monitor::app::run(cli).await
}
