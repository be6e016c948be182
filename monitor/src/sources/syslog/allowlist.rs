//! Which senders may report: UDP syslog is trivially spoofable, so only
//! loopback and the local subnets are trusted unless configured otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Clone, Debug)]
pub struct Allowlist(Vec<IpNet>);

impl Allowlist {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Allowlist(nets)
    }

    /// Loopback plus every subnet configured on a local interface.
    pub fn local_default() -> Self {
        let mut nets = vec![
            IpNet::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8).expect("valid prefix"),
            IpNet::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128).expect("valid prefix"),
        ];
        nets.extend(local_subnets());
        Allowlist(nets)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.0
    }
}

/// The subnets of the addresses configured on local interfaces (getifaddrs).
pub fn local_subnets() -> Vec<IpNet> {
    local_interface_nets().into_iter().map(|net| net.trunc()).collect()
}

/// The addresses configured on local interfaces, each with its prefix
/// length (getifaddrs).
pub fn local_interface_nets() -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` walks the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if let (Some(addr), Some(mask)) = (sockaddr_ip(entry.ifa_addr), sockaddr_ip(entry.ifa_netmask)) {
            let prefix = match mask {
                IpAddr::V4(m) => u32::from(m).count_ones() as u8,
                IpAddr::V6(m) => u128::from(m).count_ones() as u8,
            };
            if let Ok(net) = IpNet::new(addr, prefix) {
                out.push(net);
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: non-null sockaddr from getifaddrs; the family says which
    // concrete struct it is.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_loopback_and_mapped_loopback() {
        let list = Allowlist::local_default();
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(list.allows("::1".parse().unwrap()));
        assert!(list.allows("::ffff:127.0.0.5".parse().unwrap()));
        assert!(!list.allows("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn explicit_list() {
        let list = Allowlist::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(list.allows("10.1.2.3".parse().unwrap()));
        assert!(!list.allows("127.0.0.1".parse().unwrap()));
    }
}
