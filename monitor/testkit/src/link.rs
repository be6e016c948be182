//! An interface, in a namespace or in the root namespace, and what a
//! harness sets on it: state, addresses, routes. Routes are always to a
//! prefix through this interface (or a gateway on its link): the kit has no
//! way to add a default route, so a namespace the harness sends synthetic
//! public addresses from stays sealed.

use crate::cmd;

/// Interface `name` in namespace `netns` (None: the root namespace). A
/// handle only: it creates and removes nothing (see [`crate::veth`]).
#[derive(Clone, Debug)]
pub struct Link {
    netns: Option<String>,
    name: String,
}

impl Link {
    pub fn new(netns: Option<&str>, name: &str) -> Link {
        Link { netns: netns.map(str::to_owned), name: name.to_owned() }
    }

    /// A root-namespace interface.
    pub fn root(name: &str) -> Link {
        Link::new(None, name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its namespace (None: the root namespace).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `ip [-n NS] args...` in the interface's namespace.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        match &self.netns {
            Some(ns) => cmd::run("ip", &[&["-n", ns.as_str()], args].concat()),
            None => cmd::run("ip", args),
        }
    }

    pub fn up(&self) -> anyhow::Result<()> {
        self.ip(&["link", "set", &self.name, "up"]).map(drop)
    }

    /// Adds an address with its prefix length ("198.18.0.1/24",
    /// "81.2.69.142/32"). IPv6 addresses are added with `nodad`: usable at
    /// once, without duplicate address detection's delay on a link that is
    /// ours alone.
    pub fn add_addr(&self, cidr: &str) -> anyhow::Result<()> {
        if cidr.contains(':') {
            self.ip(&["-6", "addr", "add", cidr, "dev", &self.name, "nodad"]).map(drop)
        } else {
            self.ip(&["addr", "add", cidr, "dev", &self.name]).map(drop)
        }
    }

    /// A route to `prefix` straight out of this interface (the other end of
    /// its link holds the addresses).
    pub fn add_route(&self, prefix: &str) -> anyhow::Result<()> {
        self.ip(&["route", "add", prefix, "dev", &self.name]).map(drop)
    }

    /// A route to `prefix` through `gateway` on this interface's link.
    pub fn add_route_via(&self, prefix: &str, gateway: &str) -> anyhow::Result<()> {
        self.ip(&["route", "add", prefix, "via", gateway, "dev", &self.name]).map(drop)
    }

    /// `ip link show` of the interface (with `-d`: details, e.g. the XDP mode).
    pub fn show(&self, details: bool) -> anyhow::Result<String> {
        let mut args = vec!["link", "show", "dev", &self.name];
        if details {
            args.insert(0, "-d");
        }
        self.ip(&args)
    }

    /// True if an XDP program is attached.
    pub fn has_xdp(&self) -> anyhow::Result<bool> {
        Ok(self.show(false)?.contains("xdp"))
    }

    /// Its MAC address ("02:6d:...").
    pub fn mac(&self) -> anyhow::Result<String> {
        let out = self.ip(&["-o", "link", "show", "dev", &self.name])?;
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no MAC address on {}", self.name))
    }
}
