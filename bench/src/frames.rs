//! Hand-built Ethernet frames: the packet classes the kernel benchmark feeds
//! to BPF_PROG_TEST_RUN, and the ICMP echo template the generator rewrites
//! in place for every packet it sends.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const SRC_MAC: [u8; 6] = [0x02, 0x6d, 0x62, 0, 0, 0x01];
pub(crate) const DST_MAC: [u8; 6] = [0x02, 0x6d, 0x62, 0, 0, 0x02];
pub(crate) const SRC4: [u8; 4] = [198, 18, 0, 10];
pub(crate) const DST4: [u8; 4] = [198, 19, 0, 1];
/// fd6d:6f6e:6265:6e63::10 / ::1 (ULA, "monbenc").
pub(crate) const SRC6: [u8; 16] = [0xfd, 0x6d, 0x6f, 0x6e, 0x62, 0x65, 0x6e, 0x63, 0, 0, 0, 0, 0, 0, 0, 0x10];
pub(crate) const DST6: [u8; 16] = [0xfd, 0x6d, 0x6f, 0x6e, 0x62, 0x65, 0x6e, 0x63, 0, 0, 0, 0, 0, 0, 0, 0x01];

pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;
pub(crate) const ETH_P_ARP: u16 = 0x0806;
pub(crate) const ICMP_PAYLOAD: usize = 56;

/// Offsets inside the IPv4 echo template.
pub(crate) mod v4 {
    pub(crate) const IP: usize = 14;
    pub(crate) const IP_ID: usize = IP + 4;
    pub(crate) const IP_CSUM: usize = IP + 10;
    pub(crate) const SRC: usize = IP + 12;
    pub(crate) const ICMP: usize = IP + 20;
    pub(crate) const ICMP_CSUM: usize = ICMP + 2;
    pub(crate) const ICMP_ID: usize = ICMP + 4;
    pub(crate) const ICMP_SEQ: usize = ICMP + 6;
    pub(crate) const PAYLOAD: usize = ICMP + 8;
}

/// Offsets inside the IPv6 echo template.
pub(crate) mod v6 {
    pub(crate) const IP: usize = 14;
    pub(crate) const SRC: usize = IP + 8;
    pub(crate) const ICMP: usize = IP + 40;
    pub(crate) const ICMP_CSUM: usize = ICMP + 2;
    pub(crate) const ICMP_ID: usize = ICMP + 4;
    pub(crate) const ICMP_SEQ: usize = ICMP + 6;
    pub(crate) const PAYLOAD: usize = ICMP + 8;
}

/// Ones' complement sum of `data` as big-endian 16-bit words, plus `initial`.
pub(crate) fn sum16(data: &[u8], initial: u32) -> u32 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

pub(crate) fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend(dst);
    f.extend(src);
    f.extend(ethertype.to_be_bytes());
    f
}

fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> [u8; 20] {
    let total = (20 + payload_len) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = fold(sum16(&h, 0));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// IPv4 ICMP echo request, 98 bytes on the wire.
pub(crate) fn icmp4_echo(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], id: u16, seq: u16) -> Vec<u8> {
    let mut f = eth(dst_mac, SRC_MAC, ETH_P_IP);
    f.extend(ipv4_header(src, dst, 1, 8 + ICMP_PAYLOAD));
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend(id.to_be_bytes());
    icmp.extend(seq.to_be_bytes());
    icmp.extend([0xab; ICMP_PAYLOAD]);
    let c = fold(sum16(&icmp, 0));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend(icmp);
    f
}

fn icmp6_checksum(frame: &[u8]) -> u16 {
    let icmp = &frame[v6::ICMP..];
    let mut sum = sum16(&frame[v6::SRC..v6::SRC + 32], 0);
    sum += icmp.len() as u32 + 58;
    fold(sum16(icmp, sum))
}

/// IPv6 ICMPv6 echo request, 118 bytes on the wire.
pub(crate) fn icmp6_echo(dst_mac: [u8; 6], src: [u8; 16], dst: [u8; 16], id: u16, seq: u16) -> Vec<u8> {
    let mut f = eth(dst_mac, SRC_MAC, ETH_P_IPV6);
    let plen = (8 + ICMP_PAYLOAD) as u16;
    f.extend([0x60, 0, 0, 0]);
    f.extend(plen.to_be_bytes());
    f.extend([58, 64]);
    f.extend(src);
    f.extend(dst);
    f.extend([128, 0, 0, 0]);
    f.extend(id.to_be_bytes());
    f.extend(seq.to_be_bytes());
    f.extend([0xcd; ICMP_PAYLOAD]);
    let c = icmp6_checksum(&f);
    f[v6::ICMP_CSUM..v6::ICMP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// IPv4 TCP segment with PSH|ACK (SYN if `syn`) and `payload`.
pub(crate) fn tcp4(dst_port: u16, payload: &[u8], syn: bool) -> Vec<u8> {
    let mut f = eth(DST_MAC, SRC_MAC, ETH_P_IP);
    f.extend(ipv4_header(SRC4, DST4, 6, 20 + payload.len()));
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend(40_000u16.to_be_bytes());
    tcp.extend(dst_port.to_be_bytes());
    tcp.extend(1u32.to_be_bytes());
    tcp.extend(if syn { 0u32 } else { 1u32 }.to_be_bytes());
    tcp.push(0x50);
    tcp.push(if syn { 0x02 } else { 0x18 });
    tcp.extend(64_240u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]);
    tcp.extend(payload);
    let mut pseudo = sum16(&SRC4, 0);
    pseudo = sum16(&DST4, pseudo);
    pseudo += 6 + tcp.len() as u32;
    let c = fold(sum16(&tcp, pseudo));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend(tcp);
    f
}

pub(crate) fn arp_request() -> Vec<u8> {
    let mut f = eth([0xff; 6], SRC_MAC, ETH_P_ARP);
    f.extend([0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend(SRC_MAC);
    f.extend(SRC4);
    f.extend([0; 6]);
    f.extend(DST4);
    f.extend([0; 18]); // padding to the 60-byte minimum
    f
}

/// A minimal, valid TLS 1.2 ClientHello record with one SNI extension.
pub(crate) fn client_hello(sni: &str) -> Vec<u8> {
    monitor_common::tls_sample::client_hello(sni, 0)
}

/// The packet classes of the kernel benchmark: (name, frame).
pub(crate) fn classes() -> Vec<(&'static str, Vec<u8>)> {
    let http = b"GET /api/users?page=2 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n";
    let mut truncated = icmp4_echo(DST_MAC, SRC4, DST4, 1, 1);
    truncated.truncate(30); // cut inside the IPv4 header
    vec![
        ("ICMP echo v4", icmp4_echo(DST_MAC, SRC4, DST4, 4, 17)),
        ("ICMPv6 echo", icmp6_echo(DST_MAC, SRC6, DST6, 9, 2)),
        ("HTTP GET", tcp4(80, http, false)),
        ("TLS ClientHello", tcp4(443, &client_hello("api.example.com"), false)),
        ("other TCP (SSH)", tcp4(22, b"SSH-2.0-OpenSSH_9.6\r\n", false)),
        ("non-IP (ARP)", arp_request()),
        ("malformed (truncated IPv4)", truncated),
    ]
}

/// Microseconds of the wall clock, modulo 2^32: what the generator and the
/// syslog sender put in the ICMP id (high half) and sequence (low half), so
/// any process on this machine can tell an event's age from its id/seq
/// alone (valid for ages up to ~71 minutes).
pub(crate) fn stamp_now() -> u32 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_micros() as u32
}

pub(crate) fn stamp_split(stamp: u32) -> (u16, u16) {
    ((stamp >> 16) as u16, stamp as u16)
}

/// Age in microseconds of an (id, seq) stamp, or None if implausible (> 10 min).
pub(crate) fn stamp_age_us(id: u16, seq: u16) -> Option<u32> {
    let sent = (u32::from(id) << 16) | u32::from(seq);
    let age = stamp_now().wrapping_sub(sent);
    (age < 600_000_000).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify() {
        let f = icmp4_echo(DST_MAC, SRC4, DST4, 1, 2);
        assert_eq!(f.len(), 98);
        assert_eq!(fold(sum16(&f[v4::IP..v4::ICMP], 0)), 0);
        assert_eq!(fold(sum16(&f[v4::ICMP..], 0)), 0);
        let f6 = icmp6_echo(DST_MAC, SRC6, DST6, 1, 2);
        assert_eq!(f6.len(), 118);
        assert_eq!(icmp6_checksum(&f6), 0);
    }

    #[test]
    fn stamps_round_trip() {
        let (id, seq) = stamp_split(stamp_now());
        assert!(stamp_age_us(id, seq).is_some_and(|a| a < 1_000_000));
    }
}
