//! Two network namespaces joined by a veth pair (the kit's pieces), for
//! traffic from public source addresses (which the GeoIP databases place
//! on the map).
//!
//! Network safety: both ends live in namespaces this test creates, neither
//! namespace has a default route, and the public addresses exist only on
//! the sender's end (with a /32 route back to them on the receiver's end),
//! so no packet, reply included, can reach any other interface. The daemon
//! attaches XDP to the receiver's end with --netns.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use monitor_testkit::{
    process::{Log, OnDrop},
    Netns, Process, Veth, VethEnd,
};

use crate::support::require_root;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) struct TwinNet {
    /// Namespace of the receiving end, where the daemon attaches.
    pub rx_ns: String,
    pub rx_if: String,
    pub rx_v4: String,
    /// Namespace of the sending end, which owns the public source addresses.
    pub tx_ns: String,
    // Drop order: the sender's namespace, then the receiver's (each takes
    // its end of the pair along), then the pair, found gone.
    tx: Netns,
    rx: Netns,
    veth: Veth,
}

impl TwinNet {
    /// `public_sources`: addresses put on the sender's end (as /32s).
    pub(crate) fn new(public_sources: &[&str]) -> Self {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let subnet = (pid.wrapping_mul(13).wrapping_add(n)) % 250;
        // montest-<pid>-...: other test processes remove only namespaces
        // whose <pid> is gone (support::remove_stale_namespaces).
        let (rx_ns, tx_ns) = (format!("montest-{pid}-{n}r"), format!("montest-{pid}-{n}s"));
        let (rx_if, tx_if) = (format!("mr{tag}"), format!("ms{tag}"));
        let rx = Netns::create(&rx_ns).expect("receiver namespace");
        let tx = Netns::create(&tx_ns).expect("sender namespace");
        let veth = Veth::create(VethEnd::inside(&rx, &rx_if), VethEnd::inside(&tx, &tx_if)).expect("veth pair");
        let net = TwinNet { rx_ns, rx_if, rx_v4: format!("198.18.{subnet}.1"), tx_ns, tx, rx, veth };
        let (rx_end, tx_end) = (&net.veth.a, &net.veth.b);
        rx_end.add_addr(&format!("{}/24", net.rx_v4)).expect("receiver address");
        tx_end.add_addr(&format!("198.18.{subnet}.2/24")).expect("sender address");
        // Up first: a route needs its device up.
        rx_end.up().expect("receiver up");
        tx_end.up().expect("sender up");
        for src in public_sources {
            tx_end.add_addr(&format!("{src}/32")).expect("public source address");
            rx_end.add_route(&format!("{src}/32")).expect("route back to the source");
        }
        net.tx.ensure_no_default_route().expect("a sealed sender namespace");
        net.rx.ensure_no_default_route().expect("a sealed receiver namespace");
        net
    }

    /// Starts a long-running command in the sender's namespace (output
    /// discarded), killed when the returned guard drops.
    pub(crate) fn spawn_in_sender(&self, args: &[&str]) -> Process {
        let mut cmd: Command = self.tx.command(args[0]);
        cmd.args(&args[1..]);
        Process::spawn(args[0], &mut cmd, Log::None)
            .unwrap_or_else(|e| panic!("in {}: {e:#}", self.tx_ns))
            .on_drop(OnDrop::Kill)
    }

    pub(crate) fn rx_has_xdp(&self) -> bool {
        self.veth.a.has_xdp().expect("ip link show")
    }
}
