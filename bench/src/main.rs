//! Benchmark tools for Monitor. `cargo xtask bench` runs them and builds the
//! report; each subcommand prints JSON lines on stdout.

mod demo;
mod demo_frames;
mod demo_http;
mod demo_sources;
mod frames;
mod gen;
mod geo;
mod history;
mod kernel;
mod syslog_send;
mod ws;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Monitor benchmark tools (driven by `cargo xtask bench`)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// BPF_PROG_TEST_RUN of the XDP observer and the baseline, per packet class.
    Kernel {
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Send ICMP echo requests on an interface with AF_PACKET.
    Gen {
        #[arg(long)]
        iface: String,
        #[arg(long)]
        dst_mac: String,
        #[arg(long, default_value = "02:6d:62:00:00:01")]
        src_mac: String,
        #[arg(long)]
        dst: std::net::IpAddr,
        #[arg(long)]
        src: std::net::IpAddr,
        #[arg(long, default_value_t = 4096)]
        sources: u64,
        /// Packets per second; 0 = as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0)]
        count: u64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Send iptables LOG lines as syslog datagrams.
    SyslogSend {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0)]
        count: u64,
        #[arg(long, default_value_t = 4096)]
        sources: u64,
        #[arg(long)]
        public: bool,
        /// Index of the first source (to continue a flood of distinct sources).
        #[arg(long, default_value_t = 0)]
        first: u64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// WebSocket fan-out clients measuring delivery latency.
    Ws {
        /// The daemon's API address (host:port).
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value = "/ws")]
        path: String,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 1)]
        probes: usize,
        #[arg(long, default_value_t = 0)]
        slow: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Poll /api/events instead (when /ws does not exist).
        #[arg(long)]
        poll: bool,
        /// End the run when stdin closes (as well as after --seconds).
        #[arg(long)]
        stdin_stop: bool,
        /// Only check whether the endpoint upgrades; exit 0 if it does.
        #[arg(long)]
        check: bool,
    },
    /// GeoIP lookups per second.
    Geo {
        #[arg(long, value_delimiter = ',')]
        city: Vec<PathBuf>,
        #[arg(long, value_delimiter = ',')]
        asn: Vec<PathBuf>,
        #[arg(long, default_value_t = 200_000)]
        cold: u64,
        #[arg(long, default_value_t = 20_000_000)]
        cached: u64,
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
    },
    /// The history store at the demo's shape: bytes per day, write cost per minute.
    History {
        #[arg(long, default_value_t = 1440)]
        minutes: u64,
        #[arg(long, default_value_t = 360)]
        sources: u32,
    },
    /// The demo's traffic mix (`cargo xtask demo`): pings, HTTP, TLS and
    /// syslog lines from located public sources, sent on an interface
    /// inside the demo's own network namespace.
    Demo(demo::Args),
    /// Attach the trivial XDP_PASS baseline program to an interface until
    /// stdin closes (to measure what any XDP program costs on that device).
    XdpHold {
        #[arg(long)]
        iface: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Kernel { repeat, rounds } => kernel::run(&kernel::Args { repeat, rounds }),
        Cmd::Gen { iface, dst_mac, src_mac, dst, src, sources, rate, seconds, count, batch } => gen::run(&gen::Args {
            iface,
            dst_mac: gen::parse_mac(&dst_mac)?,
            src_mac: gen::parse_mac(&src_mac)?,
            dst,
            src,
            sources,
            rate,
            duration: Duration::from_secs_f64(seconds),
            count,
            batch,
        }),
        Cmd::SyslogSend { target, rate, seconds, count, sources, public, first, batch } => {
            syslog_send::run(&syslog_send::Args {
                target,
                rate,
                duration: Duration::from_secs_f64(seconds),
                count,
                sources,
                public,
                first,
                batch,
            })
        }
        Cmd::Ws { addr, path, clients, probes, slow, seconds, poll, stdin_stop, check } => {
            if check {
                std::process::exit(if ws::probe_ws(addr, &path) { 0 } else { 1 });
            }
            ws::run(&ws::Args {
                addr,
                path,
                clients,
                probes: probes.min(clients),
                slow,
                duration: Duration::from_secs_f64(seconds),
                poll,
                stdin_stop,
            })
        }
        Cmd::Geo { city, asn, cold, cached, threads } => geo::run(&geo::Args { city, asn, cold, cached, threads }),
        Cmd::History { minutes, sources } => history::run(&history::Args { minutes, sources }),
        Cmd::XdpHold { iface } => xdp_hold(&iface),
        Cmd::Demo(args) => demo::run(&args),
    }
}

fn xdp_hold(iface: &str) -> anyhow::Result<()> {
    use aya::programs::{Xdp, XdpMode};
    let mut ebpf = aya::Ebpf::load(monitor::baseline_object()).context("loading the baseline object")?;
    let program: &mut Xdp = ebpf.program_mut("baseline_xdp").context("baseline_xdp missing")?.try_into()?;
    program.load()?;
    let mode = match program.attach(iface, XdpMode::Driver) {
        Ok(_) => "driver",
        Err(_) => {
            program.attach(iface, XdpMode::Skb).with_context(|| format!("attaching to {iface}"))?;
            "skb"
        }
    };
    println!("{}", serde_json::json!({"attached": iface, "mode": mode}));
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    Ok(())
}
