//! veth pairs: the only link a harness's namespaces have, between two of
//! them or between the root namespace and one. Both ends are created where
//! they belong in one `ip link add` (never made in the root namespace and
//! moved), so an end meant for a namespace never exists outside it.

use crate::{cmd, link::Link, netns::Netns};

/// One end of a pair to create: its name, its namespace (None: the root
/// namespace) and, optionally, its MAC address.
#[derive(Clone, Copy, Debug)]
pub struct VethEnd<'a> {
    pub name: &'a str,
    pub netns: Option<&'a Netns>,
    pub mac: Option<&'a str>,
}

impl<'a> VethEnd<'a> {
    /// An end in the root namespace.
    pub fn root(name: &'a str) -> Self {
        VethEnd { name, netns: None, mac: None }
    }

    /// An end inside `netns`.
    pub fn inside(netns: &'a Netns, name: &'a str) -> Self {
        VethEnd { name, netns: Some(netns), mac: None }
    }

    /// With this MAC address (else the kernel picks a random one).
    pub fn mac(self, mac: &'a str) -> Self {
        VethEnd { mac: Some(mac), ..self }
    }

    fn args(&self) -> Vec<&'a str> {
        let mut args = vec![self.name];
        if let Some(ns) = self.netns {
            args.extend(["netns", ns.name()]);
        }
        if let Some(mac) = self.mac {
            args.extend(["address", mac]);
        }
        args
    }
}

/// A veth pair, both ends down and without addresses when created. Dropping
/// it deletes the pair, which is already gone if a namespace holding an end
/// was deleted first: that is fine, and usual.
#[derive(Debug)]
pub struct Veth {
    pub a: Link,
    pub b: Link,
}

impl Veth {
    pub fn create(a: VethEnd, b: VethEnd) -> anyhow::Result<Veth> {
        let args: Vec<&str> = [&["link", "add"][..], &a.args(), &["type", "veth", "peer", "name"], &b.args()].concat();
        cmd::run("ip", &args)?;
        Ok(Veth { a: Link::new(a.netns.map(Netns::name), a.name), b: Link::new(b.netns.map(Netns::name), b.name) })
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let mut args = vec!["link", "del", self.a.name()];
        if let Some(ns) = self.a.netns() {
            args.splice(0..0, ["-n", ns]);
        }
        cmd::run_quiet("ip", &args);
    }
}
