//! Header walk: Ethernet (up to two VLAN tags), IPv4 (any IHL), IPv6 (a
//! bounded number of extension headers), ICMP, ICMPv6, TCP, UDP.
//!
//! Every read is bounds-checked against `data_end` right before it, the shape
//! the verifier can follow; offsets stay small and bounded.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use aya_log_ebpf::debug;
use monitor_common::{
    maps::{PORT_HTTP, PORT_HTTPS, PORT_QUIC},
    Class,
};

use crate::{
    maps::port_flags,
    stash::{self, Stash},
};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const MAX_VLAN_TAGS: usize = 2;
const MAX_IPV6_EXT_HEADERS: usize = 6;

const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

/// What the walk learnt about one packet. The addresses come first and
/// 8-aligned, so an IPv4-mapped one is two stores (see [`ipv4_mapped`]).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct Summary {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub class: Class,
    pub ip_version: u8,
    pub protocol: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    /// TCP sequence number (host order).
    pub tcp_seq: u32,
    /// Offset of the transport payload in the frame.
    pub payload_offset: usize,
    /// Transport payload length according to the IP header.
    pub payload_len: usize,
}

impl Summary {
    const fn new(class: Class) -> Self {
        Summary {
            class,
            ip_version: 0,
            protocol: 0,
            src: [0; 16],
            dst: [0; 16],
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            icmp_seq: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            tcp_seq: 0,
            payload_offset: 0,
            payload_len: 0,
        }
    }
}

/// Largest offset read from (a mask): offsets that come through the stash
/// are unknown to the verifier but for this bound, which it needs before
/// adding them to a packet pointer. The deepest header chain the parser
/// follows (two VLAN tags, six IPv6 extension headers of 2 KiB) ends near
/// 12.4 KiB; for constant offsets the check folds away.
pub const MAX_OFFSET: usize = 0x7fff;

/// Pointer to a `T` at `offset`, if the whole `T` lies inside the packet.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    if offset > MAX_OFFSET {
        return None;
    }
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}

/// Writes `::ffff:a.b.c.d` to `out`, which must be 8-aligned, in two
/// stores: filling a zeroed array in part makes LLVM call memset (a
/// subprogram) per packet, and an array literal costs stack it lacks.
#[inline(always)]
pub fn ipv4_mapped(out: *mut [u8; 16], a: [u8; 4]) {
    let words = out.cast::<u64>();
    // SAFETY: `out` is a 16-byte field of an align(8) repr(C) struct.
    unsafe {
        words.write(0);
        words.add(1).write(u64::from_le_bytes([0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]]));
    }
}

/// Two bytes at `offset`. There is no one-byte reader on purpose: LLVM
/// folds `p + 1 > end` into `p >= end`, which the verifier cannot use.
#[inline(always)]
fn bytes2_at(ctx: &XdpContext, offset: usize) -> Option<[u8; 2]> {
    // SAFETY: ptr_at checked both bytes are inside the packet.
    ptr_at::<[u8; 2]>(ctx, offset).map(|p| unsafe { *p })
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, offset: usize) -> Option<u16> {
    // SAFETY: bounds checked by ptr_at; packet data may be unaligned.
    bytes2_at(ctx, offset).map(u16::from_be_bytes)
}

/// Classifies the packet; never fails: what cannot be parsed is `Malformed`.
#[inline(always)]
///
/// `stash` is where offsets go through to be blurred (see [`stash::blur`]):
/// after the VLAN tags and after each IPv6 extension header, so the paths
/// that led there are verified as one.
pub fn summarize(ctx: &XdpContext, stash: *mut Stash) -> Summary {
    let Some(mut ethertype) = be16_at(ctx, 12) else {
        return Summary::new(Class::Malformed);
    };
    let mut offset = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        let Some(inner) = be16_at(ctx, offset + 2) else {
            return Summary::new(Class::Malformed);
        };
        ethertype = inner;
        offset += 4;
    }
    match ethertype {
        ETH_P_IP => ipv4(ctx, stash::blur(stash, offset)),
        ETH_P_IPV6 => ipv6(ctx, stash::blur(stash, offset), stash),
        // A third VLAN tag is deeper than we look: not malformed, just not IP
        // as far as we are concerned.
        ETH_P_8021Q | ETH_P_8021AD => {
            debug!(ctx, "header walk stopped: more than {} VLAN tags", MAX_VLAN_TAGS);
            Summary::new(Class::NonIp)
        }
        _ => Summary::new(Class::NonIp),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Summary {
    let Some(hdr) = ptr_at::<[u8; 20]>(ctx, l3) else {
        return Summary::new(Class::Malformed);
    };
    // SAFETY: the 20-byte fixed header is inside the packet.
    let hdr = unsafe { &*hdr };
    let version = hdr[0] >> 4;
    let header_len = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if version != 4 || header_len < 20 || total_len < header_len {
        return Summary::new(Class::Malformed);
    }
    // Options must be present in full.
    if ptr_at::<[u8; 2]>(ctx, l3 + header_len - 2).is_none() {
        return Summary::new(Class::Malformed);
    }
    let mut s = Summary::new(Class::OtherIpv4);
    s.ip_version = 4;
    s.protocol = hdr[9];
    ipv4_mapped(&raw mut s.src, [hdr[12], hdr[13], hdr[14], hdr[15]]);
    ipv4_mapped(&raw mut s.dst, [hdr[16], hdr[17], hdr[18], hdr[19]]);
    let fragment_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
    if fragment_offset != 0 {
        // Later fragments carry no transport header to classify by.
        return s;
    }
    transport(ctx, s, l3 + header_len, total_len - header_len)
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize, stash: *mut Stash) -> Summary {
    let Some(hdr) = ptr_at::<[u8; 40]>(ctx, l3) else {
        return Summary::new(Class::Malformed);
    };
    // SAFETY: the 40-byte fixed header is inside the packet.
    let hdr = unsafe { &*hdr };
    if hdr[0] >> 4 != 6 {
        return Summary::new(Class::Malformed);
    }
    let mut s = Summary::new(Class::OtherIpv6);
    s.ip_version = 6;
    s.src.copy_from_slice(&hdr[8..24]);
    s.dst.copy_from_slice(&hdr[24..40]);
    let payload_len = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    let mut next = hdr[6];
    let mut offset = l3 + 40;
    let mut ext_len = 0usize;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !matches!(next, 0 | 43 | 44 | 51 | 60) {
            break;
        }
        // Every extension header starts with (next header, length).
        let Some([following, len]) = bytes2_at(ctx, offset) else {
            return Summary::new(Class::Malformed);
        };
        let len = match next {
            // Fragment: fixed 8 bytes; later fragments carry no transport header.
            44 => match be16_at(ctx, offset + 2) {
                Some(frag) if frag & 0xfff8 != 0 => {
                    s.protocol = 44;
                    return s;
                }
                Some(_) => 8,
                None => return Summary::new(Class::Malformed),
            },
            // Authentication header: (len + 2) * 4.
            51 => (len as usize + 2) * 4,
            // Hop-by-hop, routing, destination options: (len + 1) * 8.
            _ => (len as usize + 1) * 8,
        };
        next = following;
        offset = stash::blur(stash, offset + len);
        ext_len += len;
    }
    s.protocol = next;
    if ext_len > payload_len {
        return Summary::new(Class::Malformed);
    }
    match next {
        // Still an extension header after the bound: too deep to classify.
        0 | 43 | 44 | 51 | 60 => {
            debug!(ctx, "header walk stopped: more than {} IPv6 extension headers", MAX_IPV6_EXT_HEADERS);
            s
        }
        _ => transport(ctx, s, offset, payload_len - ext_len),
    }
}

/// `l4_len` is the transport segment length according to the IP header.
#[inline(always)]
fn transport(ctx: &XdpContext, mut s: Summary, l4: usize, l4_len: usize) -> Summary {
    match (s.ip_version, s.protocol) {
        (4, IPPROTO_ICMP) | (6, IPPROTO_ICMPV6) => {
            let Some(hdr) = ptr_at::<[u8; 8]>(ctx, l4) else {
                return Summary::new(Class::Malformed);
            };
            if l4_len < 8 {
                return Summary::new(Class::Malformed);
            }
            // SAFETY: 8 bytes checked above.
            let hdr = unsafe { &*hdr };
            s.class = if s.ip_version == 4 { Class::Icmp } else { Class::Icmpv6 };
            s.icmp_type = hdr[0];
            s.icmp_code = hdr[1];
            let echo = if s.ip_version == 4 { hdr[0] == 0 || hdr[0] == 8 } else { hdr[0] == 128 || hdr[0] == 129 };
            if echo {
                s.icmp_id = u16::from_be_bytes([hdr[4], hdr[5]]);
                s.icmp_seq = u16::from_be_bytes([hdr[6], hdr[7]]);
            }
            s.payload_offset = l4 + 8;
            s.payload_len = l4_len - 8;
        }
        (_, IPPROTO_TCP) => {
            let Some(hdr) = ptr_at::<[u8; 20]>(ctx, l4) else {
                return Summary::new(Class::Malformed);
            };
            // SAFETY: 20 bytes checked above.
            let hdr = unsafe { &*hdr };
            let data_offset = ((hdr[12] >> 4) as usize) * 4;
            if data_offset < 20 || l4_len < data_offset {
                return Summary::new(Class::Malformed);
            }
            s.src_port = u16::from_be_bytes([hdr[0], hdr[1]]);
            s.dst_port = u16::from_be_bytes([hdr[2], hdr[3]]);
            s.tcp_flags = hdr[13];
            s.tcp_seq = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            s.payload_offset = l4 + data_offset;
            s.payload_len = l4_len - data_offset;
            let flags = port_flags(s.dst_port);
            if flags & PORT_HTTP != 0 {
                s.class = Class::Http;
            } else if flags & PORT_HTTPS != 0 {
                s.class = Class::Https;
            }
        }
        (_, IPPROTO_UDP) => {
            let Some(hdr) = ptr_at::<[u8; 8]>(ctx, l4) else {
                return Summary::new(Class::Malformed);
            };
            if l4_len < 8 {
                return Summary::new(Class::Malformed);
            }
            // SAFETY: 8 bytes checked above.
            let hdr = unsafe { &*hdr };
            s.src_port = u16::from_be_bytes([hdr[0], hdr[1]]);
            s.dst_port = u16::from_be_bytes([hdr[2], hdr[3]]);
            s.payload_offset = l4 + 8;
            s.payload_len = l4_len - 8;
            if port_flags(s.dst_port) & PORT_QUIC != 0 {
                s.class = Class::Https;
            }
        }
        _ => {}
    }
    s
}
