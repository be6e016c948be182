//! Two network namespaces joined by a veth pair, for traffic from public
//! source addresses (which the GeoIP databases place on the map).
//!
//! Network safety: both ends live in namespaces this test creates, neither
//! namespace has a default route, and the public addresses exist only on
//! the sender's end (with a /32 route back to them on the receiver's end),
//! so no packet, reply included, can reach any other interface. The daemon
//! attaches XDP to the receiver's end with --netns.

use std::{
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

use crate::support::{must, require_root, sh};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct TwinNet {
    /// Namespace of the receiving end, where the daemon attaches.
    pub rx_ns: String,
    pub rx_if: String,
    pub rx_v4: String,
    /// Namespace of the sending end, which owns the public source addresses.
    pub tx_ns: String,
    pub tx_if: String,
}

impl TwinNet {
    /// `public_sources`: addresses put on the sender's end (as /32s).
    pub fn new(public_sources: &[&str]) -> Self {
        require_root();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let subnet = (pid.wrapping_mul(13).wrapping_add(n)) % 250;
        // montest-<pid>-...: other test processes remove only namespaces
        // whose <pid> is gone (support::remove_stale_namespaces).
        let net = TwinNet {
            rx_ns: format!("montest-{pid}-{n}r"),
            rx_if: format!("mr{tag}"),
            rx_v4: format!("198.18.{subnet}.1"),
            tx_ns: format!("montest-{pid}-{n}s"),
            tx_if: format!("ms{tag}"),
        };
        must("ip", &["netns", "add", &net.rx_ns]);
        must("ip", &["netns", "add", &net.tx_ns]);
        // Created inside the receiver's namespace with the peer straight in
        // the sender's: neither end ever exists in the root namespace.
        must(
            "ip",
            &[
                "-n", &net.rx_ns, "link", "add", &net.rx_if, "type", "veth", "peer", "name", &net.tx_if, "netns",
                &net.tx_ns,
            ],
        );
        let rx = |args: &[&str]| must("ip", &[&["-n", net.rx_ns.as_str()], args].concat());
        let tx = |args: &[&str]| must("ip", &[&["-n", net.tx_ns.as_str()], args].concat());
        rx(&["addr", "add", &format!("{}/24", net.rx_v4), "dev", &net.rx_if]);
        tx(&["addr", "add", &format!("198.18.{subnet}.2/24"), "dev", &net.tx_if]);
        // Up first: a route needs its device up.
        for (ns, dev) in [(&net.rx_ns, &net.rx_if), (&net.tx_ns, &net.tx_if)] {
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        for src in public_sources {
            tx(&["addr", "add", &format!("{src}/32"), "dev", &net.tx_if]);
            rx(&["route", "add", &format!("{src}/32"), "dev", &net.rx_if]);
        }
        net
    }

    /// Starts a long-running command in the sender's namespace (output discarded).
    pub fn spawn_in_sender(&self, args: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.tx_ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.tx_ns));
        Background(child)
    }

    pub fn rx_has_xdp(&self) -> bool {
        must("ip", &["-n", &self.rx_ns, "link", "show", "dev", &self.rx_if]).contains("xdp")
    }
}

impl Drop for TwinNet {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth end, and so the pair.
        let _ = sh("ip", &["netns", "del", &self.tx_ns]);
        let _ = sh("ip", &["netns", "del", &self.rx_ns]);
    }
}

/// A child process killed when dropped.
pub struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
