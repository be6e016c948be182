//! The event record the XDP program writes into the ring buffer.

/// Bytes of TCP/UDP payload copied into an event: enough for an HTTP request
/// line and, for common clients, a TLS ClientHello's SNI extension.
pub const PAYLOAD_CAPTURE: usize = 256;

/// One sampled packet. `weight` is how many eligible packets of this source
/// it stands for (1 plus those suppressed since the previous event), so sums
/// of weights stay honest under sampling.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketEvent {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub timestamp_ns: u64,
    /// Source and destination; IPv4 is IPv4-mapped.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub ifindex: u32,
    /// Length of the whole frame.
    pub packet_len: u32,
    pub weight: u32,
    /// A [`crate::Class`] discriminant.
    pub class: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Echo identifier and sequence (host byte order), for echo messages.
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 ...).
    pub tcp_flags: u8,
    /// IP protocol / IPv6 next header of the transport layer.
    pub protocol: u8,
    /// Bytes of `payload` that are valid.
    pub payload_len: u16,
    /// Explicit padding (written as 0) so the layout has no hidden holes.
    pub _pad: u32,
    pub payload: [u8; PAYLOAD_CAPTURE],
}

impl PacketEvent {
    pub const fn zeroed() -> Self {
        PacketEvent {
            timestamp_ns: 0,
            src: [0; 16],
            dst: [0; 16],
            ifindex: 0,
            packet_len: 0,
            weight: 0,
            class: 0,
            ip_version: 0,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            icmp_seq: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            protocol: 0,
            payload_len: 0,
            _pad: 0,
            payload: [0; PAYLOAD_CAPTURE],
        }
    }

    /// The captured payload bytes.
    pub fn payload(&self) -> &[u8] {
        let len = (self.payload_len as usize).min(PAYLOAD_CAPTURE);
        &self.payload[..len]
    }

    /// Reads an event from ring-buffer bytes; `None` if the record is short.
    pub fn from_bytes(bytes: &[u8]) -> Option<PacketEvent> {
        if bytes.len() < core::mem::size_of::<PacketEvent>() {
            return None;
        }
        // SAFETY: length checked above; PacketEvent is repr(C) plain data
        // valid for any bit pattern; read_unaligned copes with alignment.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<PacketEvent>()) })
    }
}

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_no_hidden_padding() {
        // timestamp, addresses, 3 u32, 4 u8, 4 u16, 2 u8 + u16, pad, payload
        assert_eq!(core::mem::size_of::<PacketEvent>(), 8 + 32 + 12 + 4 + 8 + 4 + 4 + PAYLOAD_CAPTURE);
    }

    #[test]
    fn from_bytes_rejects_short_and_clamps_payload() {
        assert!(PacketEvent::from_bytes(&[0u8; 10]).is_none());
        let mut ev = PacketEvent::zeroed();
        ev.payload_len = 9999;
        let bytes = unsafe {
            core::slice::from_raw_parts((&ev as *const PacketEvent).cast::<u8>(), core::mem::size_of::<PacketEvent>())
        };
        let back = PacketEvent::from_bytes(bytes).expect("full record");
        assert_eq!(back.payload().len(), PAYLOAD_CAPTURE);
    }
}
