//! Frames of the demo's traffic mix that frames.rs has no builder for: TCP
//! segments (HTTP requests, TLS ClientHellos, SSH banners) between any two
//! IPv4 addresses. ICMP echo frames come from frames.rs.

use std::net::Ipv4Addr;

use crate::frames::{fold, sum16, ETH_P_IP};

/// A locally administered MAC for the sending end (veth does not check it).
pub(crate) const DEMO_SRC_MAC: [u8; 6] = [0x02, 0x6d, 0x64, 0x65, 0x6d, 0x6f];

const TCP_PSH_ACK: u8 = 0x18;

/// Ethernet + IPv4 + TCP (PSH|ACK) carrying `payload`, checksums filled in.
pub(crate) fn tcp4(
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend(dst_mac);
    f.extend(DEMO_SRC_MAC);
    f.extend(ETH_P_IP.to_be_bytes());
    let total = (40 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 52;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let c = fold(sum16(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(ip);
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend(src_port.to_be_bytes());
    tcp.extend(dst_port.to_be_bytes());
    tcp.extend(seq.to_be_bytes());
    tcp.extend(1u32.to_be_bytes());
    tcp.push(0x50);
    tcp.push(TCP_PSH_ACK);
    tcp.extend(64_240u16.to_be_bytes());
    tcp.extend([0, 0, 0, 0]);
    tcp.extend(payload);
    let mut pseudo = sum16(&src.octets(), 0);
    pseudo = sum16(&dst.octets(), pseudo);
    pseudo += 6 + tcp.len() as u32;
    let c = fold(sum16(&tcp, pseudo));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend(tcp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp4_checksums_verify() {
        let f = tcp4(
            [2; 6],
            Ipv4Addr::new(81, 2, 69, 142),
            Ipv4Addr::new(198, 18, 200, 1),
            40000,
            80,
            7,
            b"GET / HTTP/1.1\r\n\r\n",
        );
        assert_eq!(fold(sum16(&f[14..34], 0)), 0);
        let tcp = &f[34..];
        let mut pseudo = sum16(&f[26..34], 0);
        pseudo += 6 + tcp.len() as u32;
        assert_eq!(fold(sum16(tcp, pseudo)), 0);
    }
}
