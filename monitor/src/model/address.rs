//! Special-purpose address ranges get a label instead of "unknown".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address this is; only `Public` is worth a database lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressLabel {
    Public,
    Private,
    Loopback,
    LinkLocal,
    Cgnat,
    Multicast,
    Documentation,
    Benchmarking,
    Unspecified,
    Reserved,
}

pub fn label(ip: IpAddr) -> AddressLabel {
    match ip {
        IpAddr::V4(v4) => label_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => label_v4(v4),
            None => label_v6(v6),
        },
    }
}

fn label_v4(ip: Ipv4Addr) -> AddressLabel {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_unspecified() => AddressLabel::Unspecified,
        _ if ip.is_loopback() => AddressLabel::Loopback,
        _ if ip.is_private() => AddressLabel::Private,
        _ if ip.is_link_local() => AddressLabel::LinkLocal,
        (100, 64..=127, _) => AddressLabel::Cgnat,
        _ if ip.is_multicast() => AddressLabel::Multicast,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressLabel::Documentation,
        (198, 18..=19, _) => AddressLabel::Benchmarking,
        (0, ..) | (240..=255, ..) | (192, 0, 0) => AddressLabel::Reserved,
        _ => AddressLabel::Public,
    }
}

fn label_v6(ip: Ipv6Addr) -> AddressLabel {
    let s = ip.segments();
    match s[0] {
        _ if ip.is_unspecified() => AddressLabel::Unspecified,
        _ if ip.is_loopback() => AddressLabel::Loopback,
        0xfc00..=0xfdff => AddressLabel::Private,
        0xfe80..=0xfebf => AddressLabel::LinkLocal,
        0xff00..=0xffff => AddressLabel::Multicast,
        0x2001 if s[1] == 0x0db8 => AddressLabel::Documentation,
        0x3fff if s[1] < 0x1000 => AddressLabel::Documentation,
        0x2001 if s[1] == 0x0002 && s[2] == 0 => AddressLabel::Benchmarking,
        0x2000..=0x3fff => AddressLabel::Public,
        _ => AddressLabel::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> AddressLabel {
        label(s.parse().expect("ip"))
    }

    #[test]
    fn labels() {
        assert_eq!(l("10.1.2.3"), AddressLabel::Private);
        assert_eq!(l("172.31.0.1"), AddressLabel::Private);
        assert_eq!(l("192.168.1.1"), AddressLabel::Private);
        assert_eq!(l("127.0.0.1"), AddressLabel::Loopback);
        assert_eq!(l("169.254.1.1"), AddressLabel::LinkLocal);
        assert_eq!(l("100.64.0.1"), AddressLabel::Cgnat);
        assert_eq!(l("100.128.0.1"), AddressLabel::Public);
        assert_eq!(l("224.0.0.251"), AddressLabel::Multicast);
        assert_eq!(l("203.0.113.9"), AddressLabel::Documentation);
        assert_eq!(l("198.18.3.1"), AddressLabel::Benchmarking);
        assert_eq!(l("8.8.8.8"), AddressLabel::Public);
        assert_eq!(l("0.0.0.0"), AddressLabel::Unspecified);
        assert_eq!(l("255.255.255.255"), AddressLabel::Reserved);
        assert_eq!(l("::1"), AddressLabel::Loopback);
        assert_eq!(l("fd00::1"), AddressLabel::Private);
        assert_eq!(l("fe80::1"), AddressLabel::LinkLocal);
        assert_eq!(l("ff02::1"), AddressLabel::Multicast);
        assert_eq!(l("2001:db8::1"), AddressLabel::Documentation);
        assert_eq!(l("2a00:1450::1"), AddressLabel::Public);
        assert_eq!(l("::ffff:10.0.0.1"), AddressLabel::Private);
    }
}
