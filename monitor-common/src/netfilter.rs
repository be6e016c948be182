//! Parser for the kernel lines of the netfilter `LOG` target (iptables `-j
//! LOG`, nftables `log`), as printed by `net/netfilter/nf_log_syslog.c`:
//!
//! ```text
//! IPT_ICMP IN=veth0 OUT= MAC=.. SRC=10.0.0.2 DST=10.0.0.1 LEN=84 TOS=0x00 PREC=0x00
//!     TTL=64 ID=12345 DF PROTO=ICMP TYPE=8 CODE=0 ID=4711 SEQ=1
//! ```
//!
//! The format is a configured prefix followed by space-separated `KEY=value`
//! pairs and bare flag words. Some keys mean different things before and
//! after `PROTO=`: the second `ID=` is the ICMP echo id, the second `LEN=`
//! the UDP length, and `SEQ=` is a TCP sequence number or an ICMP echo
//! sequence depending on the protocol. ICMP errors quote the offending
//! packet in brackets (`[SRC=.. DST=.. ...]`); that text is kept as
//! [`LogLine::inner`] and never mixed into the outer fields.
//!
//! One pass over the bytes, no allocation, no panics.

use core::fmt;
use core::net::IpAddr;

/// Why a message was not a usable netfilter line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetfilterError {
    /// The message does not start with any configured prefix: most likely
    /// not a netfilter line at all.
    NoPrefix,
    /// A prefix matched but the line carries neither `SRC=` nor `DST=`
    /// (ARP, or truncated before the addresses).
    MissingAddress,
    /// A known key whose value does not parse, e.g. `SRC=notanip`, `TTL=999`.
    BadField(&'static str),
}

impl NetfilterError {
    /// Stable snake_case name, used as a metrics label. The key of a
    /// [`NetfilterError::BadField`] is deliberately not part of it.
    pub const fn reason(&self) -> &'static str {
        match self {
            NetfilterError::NoPrefix => "no_prefix",
            NetfilterError::MissingAddress => "missing_address",
            NetfilterError::BadField(_) => "bad_field",
        }
    }
}

impl fmt::Display for NetfilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetfilterError::NoPrefix => f.write_str("no configured netfilter log prefix"),
            NetfilterError::MissingAddress => f.write_str("netfilter line without SRC or DST"),
            NetfilterError::BadField(key) => write!(f, "netfilter field {key}= has a bad value"),
        }
    }
}

/// The transport protocol named by `PROTO=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto<'a> {
    Icmp,
    Icmpv6,
    Tcp,
    Udp,
    /// Anything else verbatim: `UDPLITE`, `AH`, `ESP`, or a number (`47`).
    Other(&'a str),
}

impl<'a> Proto<'a> {
    /// Maps the kernel's spelling; numbers are kept as [`Proto::Other`]
    /// because the kernel only prints numbers for protocols it has no name for.
    pub fn from_name(name: &'a str) -> Proto<'a> {
        match name {
            "ICMP" => Proto::Icmp,
            "ICMPv6" => Proto::Icmpv6,
            "TCP" => Proto::Tcp,
            "UDP" => Proto::Udp,
            other => Proto::Other(other),
        }
    }

    /// The kernel's spelling.
    pub fn name(&self) -> &'a str {
        match self {
            Proto::Icmp => "ICMP",
            Proto::Icmpv6 => "ICMPv6",
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Other(name) => name,
        }
    }
}

/// TCP flags as logged. The low byte has the wire layout of the TCP flags
/// byte (and of [`crate::PacketEvent::tcp_flags`]); `AE` (accurate ECN) is
/// the bit above it, as in the header.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(u16);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x001);
    pub const SYN: TcpFlags = TcpFlags(0x002);
    pub const RST: TcpFlags = TcpFlags(0x004);
    pub const PSH: TcpFlags = TcpFlags(0x008);
    pub const ACK: TcpFlags = TcpFlags(0x010);
    pub const URG: TcpFlags = TcpFlags(0x020);
    pub const ECE: TcpFlags = TcpFlags(0x040);
    pub const CWR: TcpFlags = TcpFlags(0x080);
    pub const AE: TcpFlags = TcpFlags(0x100);

    /// Each flag with the word the kernel logs for it.
    pub const NAMED: [(TcpFlags, &'static str); 9] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
        (TcpFlags::AE, "AE"),
    ];

    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    pub const fn from_bits(bits: u16) -> TcpFlags {
        TcpFlags(bits & 0x1ff)
    }

    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// The flag the kernel logs as `word`.
    pub fn from_name(word: &str) -> Option<TcpFlags> {
        TcpFlags::NAMED.iter().find(|(_, name)| *name == word).map(|(flag, _)| *flag)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, other: TcpFlags) -> TcpFlags {
        self.union(other)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, other: TcpFlags) {
        *self = self.union(other);
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TcpFlags(")?;
        let mut first = true;
        for (flag, name) in TcpFlags::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        f.write_str(")")
    }
}

/// One parsed netfilter log line. Every `&str` borrows from the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The configured prefix that matched, without trailing whitespace.
    pub prefix: &'a str,
    /// `IN=`; `None` when empty (locally generated packets).
    pub in_iface: Option<&'a str>,
    /// `OUT=`; `None` when empty (packets being received).
    pub out_iface: Option<&'a str>,
    /// `MAC=` as printed: destination, source and ethertype, colon separated.
    pub mac: Option<&'a str>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// IP total length (IPv6: payload plus the 40-byte header).
    pub len: Option<u32>,
    pub tos: Option<u8>,
    pub prec: Option<u8>,
    pub ttl: Option<u8>,
    /// IPv4 `ID=`, or the IPv6 fragment header's `ID:` (hex in the log).
    pub ip_id: Option<u32>,
    /// IPv6 traffic class.
    pub tc: Option<u8>,
    pub hop_limit: Option<u8>,
    pub flow_label: Option<u32>,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// The `CE` word: the IPv4 reserved flag bit (0x8000, the kernel's
    /// `IP_CE`), not ECN.
    pub reserved_flag: bool,
    /// Fragment offset: IPv4 `FRAG:` in 8-byte units, IPv6 `FRAG:` in bytes.
    pub frag: Option<u16>,
    pub proto: Option<Proto<'a>>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// Echo identifier: the `ID=` after `PROTO=ICMP`/`ICMPv6`.
    pub icmp_id: Option<u16>,
    pub icmp_seq: Option<u16>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// The UDP header's length: the `LEN=` after `PROTO=UDP`.
    pub udp_len: Option<u16>,
    pub window: Option<u16>,
    pub tcp_flags: TcpFlags,
    /// The packet an ICMP error quotes, between its brackets and trimmed:
    /// `SRC=.. DST=.. ... PROTO=UDP SPT=.. DPT=.. LEN=..`. See
    /// [`LogLine::inner_packet`].
    pub inner: Option<&'a str>,
    /// Tokens with no field here (`MARK=`, `UID=`, `OPT (..)`, `MTU=`, ...).
    /// Keys the kernel always prints but that are not stored (`RES=`,
    /// `URGP=`, TCP `SEQ=`/`ACK=`) are validated and not counted.
    pub unknown_fields: usize,
}

impl<'a> LogLine<'a> {
    /// Parses [`LogLine::inner`], the packet an ICMP error quotes.
    pub fn inner_packet(&self) -> Option<Result<LogLine<'a>, NetfilterError>> {
        self.inner.map(parse_packet)
    }

    /// Applies one `KEY=value` pair.
    fn apply_field(&mut self, key: &'a str, value: &'a str) -> Result<(), NetfilterError> {
        let after_proto = self.proto.is_some();
        match key {
            "IN" => self.in_iface = non_empty(value),
            "OUT" => self.out_iface = non_empty(value),
            "MAC" => self.mac = non_empty(value),
            "SRC" => self.src = Some(value.parse().map_err(|_| NetfilterError::BadField("SRC"))?),
            "DST" => self.dst = Some(value.parse().map_err(|_| NetfilterError::BadField("DST"))?),
            "LEN" if after_proto => self.udp_len = Some(decimal("LEN", value)?),
            "LEN" => self.len = Some(decimal("LEN", value)?),
            "TOS" => self.tos = Some(hex_byte("TOS", value)?),
            "PREC" => self.prec = Some(hex_byte("PREC", value)?),
            "TTL" => self.ttl = Some(decimal("TTL", value)?),
            "ID" if after_proto => self.icmp_id = Some(decimal("ID", value)?),
            "ID" => self.ip_id = Some(decimal("ID", value)?),
            "TC" => self.tc = Some(decimal("TC", value)?),
            "HOPLIMIT" => self.hop_limit = Some(decimal("HOPLIMIT", value)?),
            "FLOWLBL" => match decimal::<u32>("FLOWLBL", value)? {
                label if label <= 0xf_ffff => self.flow_label = Some(label),
                _ => return Err(NetfilterError::BadField("FLOWLBL")),
            },
            "FRAG" => self.frag = Some(decimal("FRAG", value)?),
            "PROTO" if value.is_empty() => return Err(NetfilterError::BadField("PROTO")),
            "PROTO" => self.proto = Some(Proto::from_name(value)),
            "TYPE" => self.icmp_type = Some(decimal("TYPE", value)?),
            "CODE" => self.icmp_code = Some(decimal("CODE", value)?),
            "SEQ" if self.proto == Some(Proto::Tcp) => {
                decimal::<u32>("SEQ", value)?;
            }
            "SEQ" => self.icmp_seq = Some(decimal("SEQ", value)?),
            "ACK" => {
                decimal::<u32>("ACK", value)?;
            }
            "SPT" => self.src_port = Some(decimal("SPT", value)?),
            "DPT" => self.dst_port = Some(decimal("DPT", value)?),
            "WINDOW" => self.window = Some(decimal("WINDOW", value)?),
            "RES" => {
                hex_byte("RES", value)?;
            }
            "URGP" => {
                decimal::<u16>("URGP", value)?;
            }
            _ => self.unknown_fields += 1,
        }
        Ok(())
    }

    /// Applies one bare word: a flag, or `FRAG:n` / `ID:hex` (the kernel
    /// prints fragment information with colons).
    fn apply_word(&mut self, word: &str) -> Result<(), NetfilterError> {
        match word {
            "DF" => self.dont_fragment = true,
            "MF" => self.more_fragments = true,
            "CE" => self.reserved_flag = true,
            _ => {
                if let Some(flag) = TcpFlags::from_name(word) {
                    self.tcp_flags |= flag;
                } else if let Some(offset) = word.strip_prefix("FRAG:") {
                    // `FRAG:TRUNCATED`: the kernel could not read the header.
                    match offset {
                        "TRUNCATED" => self.unknown_fields += 1,
                        _ => self.frag = Some(decimal("FRAG", offset)?),
                    }
                } else if let Some(id) = word.strip_prefix("ID:") {
                    self.ip_id = Some(hex_u32(id).ok_or(NetfilterError::BadField("ID"))?);
                } else {
                    self.unknown_fields += 1;
                }
            }
        }
        Ok(())
    }
}

/// Parses a syslog MSG that should be a netfilter line starting with one
/// of `prefixes` (a kernel uptime stamp in front is tolerated). Prefixes are
/// matched exactly as configured, trailing space or not; when several
/// match, the longest wins. A prefix that ends in a letter or digit must be
/// followed by a space or by `IN=`, so `IPT_ICMP` does not match
/// `IPT_ICMP6 IN=...`. Empty prefixes are ignored.
pub fn parse<'a, P: AsRef<str>>(msg: &'a str, prefixes: &[P]) -> Result<LogLine<'a>, NetfilterError> {
    let (_, text) = crate::syslog::split_kernel_uptime(msg.trim_start());
    let (prefix, rest) = match_prefix(text, prefixes).ok_or(NetfilterError::NoPrefix)?;
    let mut line = parse_packet(rest)?;
    line.prefix = prefix.trim_end();
    Ok(line)
}

/// Parses the key/value part of a line, without any prefix: what follows a
/// prefix, or an ICMP error's [`LogLine::inner`].
pub fn parse_packet(text: &str) -> Result<LogLine<'_>, NetfilterError> {
    let mut line = LogLine::default();
    // `INCOMPLETE [24 bytes]` is a truncation note, not a quoted packet.
    let mut after_incomplete = false;
    for token in tokens(text) {
        let was_after_incomplete = core::mem::replace(&mut after_incomplete, false);
        match token {
            Token::Field(key, value) => line.apply_field(key, value)?,
            Token::Word(word) => {
                after_incomplete = word == "INCOMPLETE";
                line.apply_word(word)?;
            }
            Token::Bracketed(quoted) if !was_after_incomplete && line.inner.is_none() => {
                line.inner = Some(quoted);
            }
            Token::Bracketed(_) => line.unknown_fields += 1,
        }
    }
    if line.src.is_none() && line.dst.is_none() {
        return Err(NetfilterError::MissingAddress);
    }
    Ok(line)
}

/// The longest matching prefix and the text after it.
fn match_prefix<'a, P: AsRef<str>>(text: &'a str, prefixes: &[P]) -> Option<(&'a str, &'a str)> {
    let mut longest = 0;
    for prefix in prefixes {
        let prefix = prefix.as_ref();
        let Some(rest) = text.strip_prefix(prefix) else {
            continue;
        };
        let ends_word = prefix.ends_with(|c: char| !c.is_ascii_alphanumeric());
        let bounded = ends_word || rest.is_empty() || rest.starts_with([' ', '\t']) || rest.starts_with("IN=");
        if bounded && prefix.len() > longest {
            longest = prefix.len();
        }
    }
    // Empty prefixes never get here: `longest` stays 0.
    (longest > 0).then(|| text.split_at_checked(longest)).flatten()
}

/// One element of a netfilter line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// `KEY=value`; the value may be empty (`OUT=`).
    Field(&'a str, &'a str),
    /// A word without `=`: a flag (`DF`, `SYN`), `FRAG:185`, `ID:522219fa`,
    /// or option syntax (`OPT`, `(0204..)`).
    Word(&'a str),
    /// The trimmed text between `[` and its matching `]`; runs to the end
    /// of the line when the closing bracket was cut off.
    Bracketed(&'a str),
}

/// Splits a netfilter line (after its prefix) into tokens.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { rest: text }
}

/// The `KEY=value` pairs as `(key, Some(value))` and the bare words as
/// `(word, None)`, skipping bracketed groups (see [`tokens`] for those).
pub fn fields(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    tokens(text).filter_map(|token| match token {
        Token::Field(key, value) => Some((key, Some(value))),
        Token::Word(word) => Some((word, None)),
        Token::Bracketed(_) => None,
    })
}

/// Iterator returned by [`tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let text = self.rest.trim_start_matches([' ', '\t']);
        let bytes = text.as_bytes();
        if *bytes.first()? == b'[' {
            let mut depth = 0usize;
            let close = bytes.iter().position(|&b| {
                match b {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    _ => {}
                }
                depth == 0
            });
            // `[` and `]` are ASCII, so these slices start and end on char
            // boundaries; without a `]` the group runs to the end.
            let (quoted, rest) = match close {
                Some(at) => (&text[1..at], &text[at + 1..]),
                None => (&text[1..], &text[text.len()..]),
            };
            self.rest = rest;
            return Some(Token::Bracketed(quoted.trim_matches([' ', '\t'])));
        }
        let mut equals = None;
        let mut end = bytes.len();
        for (at, &b) in bytes.iter().enumerate() {
            match b {
                b' ' | b'\t' => {
                    end = at;
                    break;
                }
                b'=' if equals.is_none() => equals = Some(at),
                _ => {}
            }
        }
        let (word, rest) = text.split_at(end);
        self.rest = rest;
        Some(match equals {
            Some(at) if at > 0 => Token::Field(&word[..at], &word[at + 1..]),
            _ => Token::Word(word),
        })
    }
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// Unsigned decimal that fits `T`; digits only (no sign, no spaces).
#[inline]
fn decimal<T: TryFrom<u32>>(key: &'static str, value: &str) -> Result<T, NetfilterError> {
    let bad = NetfilterError::BadField(key);
    if value.is_empty() || value.len() > 10 {
        return Err(bad);
    }
    let mut n: u32 = 0;
    for b in value.bytes() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(bad);
        }
        n = n.checked_mul(10).and_then(|n| n.checked_add(u32::from(digit))).ok_or(bad)?;
    }
    T::try_from(n).map_err(|_| bad)
}

/// A byte in hex, as `TOS=`, `PREC=` and `RES=` print it: the kernel writes
/// `0x1F`, and firmware that formats the line itself (UniFi's `TOS=00`, say)
/// varies the spelling harmlessly. So the `0x`/`0X` is optional, either case
/// of digit is fine and leading zeros do not count (`0x0`, `00`, `0x0010`);
/// anything that is not hex digits, or a value above 0xFF, is refused.
fn hex_byte(key: &'static str, value: &str) -> Result<u8, NetfilterError> {
    let bad = NetfilterError::BadField(key);
    let digits = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad);
    }
    match digits.trim_start_matches('0') {
        "" => Ok(0),
        significant if significant.len() <= 2 => hex_u32(significant).and_then(|n| u8::try_from(n).ok()).ok_or(bad),
        _ => Err(bad),
    }
}

/// 1 to 8 hex digits, no prefix.
fn hex_u32(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits.bytes().try_fold(0u32, |n, b| {
        let digit = (b as char).to_digit(16)?;
        Some(n << 4 | digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const PREFIXES: &[&str] = &["IPT_ICMP ", "IPT_ICMP6 ", "IPT_HTTP ", "IPT_DROP:"];

    fn ok<'a>(msg: &'a str) -> LogLine<'a> {
        match parse(msg, PREFIXES) {
            Ok(line) => line,
            Err(e) => panic!("{msg:?}: {e}"),
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn v6(s: &str) -> Option<IpAddr> {
        Some(IpAddr::V6(s.parse::<Ipv6Addr>().expect("test address")))
    }

    #[test]
    fn icmp_echo_request() {
        let line = ok("IPT_ICMP IN=veth0 OUT= MAC=aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:08:00 \
            SRC=10.0.0.2 DST=10.0.0.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=12345 DF PROTO=ICMP \
            TYPE=8 CODE=0 ID=4711 SEQ=1 ");
        assert_eq!(
            line,
            LogLine {
                prefix: "IPT_ICMP",
                in_iface: Some("veth0"),
                mac: Some("aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:08:00"),
                src: v4(10, 0, 0, 2),
                dst: v4(10, 0, 0, 1),
                len: Some(84),
                tos: Some(0),
                prec: Some(0),
                ttl: Some(64),
                ip_id: Some(12345),
                dont_fragment: true,
                proto: Some(Proto::Icmp),
                icmp_type: Some(8),
                icmp_code: Some(0),
                icmp_id: Some(4711),
                icmp_seq: Some(1),
                ..LogLine::default()
            }
        );
    }

    #[test]
    fn tcp_syn() {
        let line = ok("IPT_HTTP IN=ens3 OUT= MAC=00:01 SRC=10.0.0.2 DST=10.0.0.1 LEN=60 \
            TOS=0x10 PREC=0x20 TTL=63 ID=1 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 \
            CWR ECE SYN URGP=0");
        assert_eq!(line.prefix, "IPT_HTTP");
        assert_eq!((line.tos, line.prec, line.ttl), (Some(0x10), Some(0x20), Some(63)));
        assert_eq!(line.proto, Some(Proto::Tcp));
        assert_eq!((line.src_port, line.dst_port, line.window), (Some(40000), Some(80), Some(64240)));
        assert_eq!(line.tcp_flags, TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR);
        assert_eq!((line.icmp_id, line.icmp_seq, line.unknown_fields), (None, None, 0));
    }

    #[test]
    fn tcp_with_sequence_options_uid_and_mark() {
        let line = ok("IPT_HTTP IN= OUT=gold0 SRC=10.213.0.1 DST=10.213.0.2 LEN=52 TOS=0x00 \
            PREC=0x00 TTL=64 ID=39329 DF PROTO=TCP SPT=80 DPT=42494 SEQ=1380031855 \
            ACK=1574739241 WINDOW=64 RES=0x00 ACK FIN URGP=0 OPT (0101080AB9D412EF040DD240) \
            UID=0 GID=0 MARK=0x2a");
        assert_eq!((line.in_iface, line.out_iface, line.mac), (None, Some("gold0"), None));
        assert_eq!(line.tcp_flags, TcpFlags::ACK | TcpFlags::FIN);
        // SEQ= after PROTO=TCP is the TCP sequence, not an ICMP one.
        assert_eq!(line.icmp_seq, None);
        // OPT, (..), UID, GID, MARK.
        assert_eq!(line.unknown_fields, 5);
        assert_eq!(
            parse("IPT_HTTP SRC=1.1.1.1 PROTO=TCP SEQ=4294967296", PREFIXES),
            Err(NetfilterError::BadField("SEQ"))
        );
        assert_eq!(parse("IPT_HTTP SRC=1.1.1.1 PROTO=TCP ACK=x", PREFIXES), Err(NetfilterError::BadField("ACK")));
    }

    #[test]
    fn all_tcp_flags() {
        let line = ok("IPT_HTTP SRC=1.1.1.1 PROTO=TCP AE CWR ECE URG ACK PSH RST SYN FIN");
        assert_eq!(line.tcp_flags.bits(), 0x1ff);
        assert_eq!(line.tcp_flags, TcpFlags::from_bits(0xffff));
        assert!(TcpFlags::empty().is_empty());
        assert_eq!(format!("{:?}", TcpFlags::SYN | TcpFlags::ACK), "TcpFlags(SYN | ACK)");
    }

    #[test]
    fn udp_second_len_is_udp_length() {
        let line = ok("IPT_DROP:IN=ens3 OUT= SRC=10.0.0.2 DST=10.0.0.1 LEN=30 TOS=0x00 \
            PREC=0x00 TTL=64 ID=47002 DF PROTO=UDP SPT=43929 DPT=9999 LEN=10");
        assert_eq!(line.prefix, "IPT_DROP:");
        assert_eq!(line.in_iface, Some("ens3"));
        assert_eq!((line.len, line.udp_len), (Some(30), Some(10)));
        assert_eq!((line.proto, line.src_port, line.dst_port), (Some(Proto::Udp), Some(43929), Some(9999)));
        assert_eq!(parse("IPT_DROP:SRC=1.1.1.1 PROTO=UDP LEN=65536", PREFIXES), Err(NetfilterError::BadField("LEN")));
    }

    /// Firmware that writes the LOG line itself spells the hex bytes its
    /// own way: `TOS=00` (UniFi), no `0x`, upper or lower case, one digit
    /// or leading zeros. Same value, same line.
    #[test]
    fn hex_byte_spellings() {
        let cases: &[(&str, u8)] = &[
            ("0x00", 0),
            ("00", 0),
            ("0", 0),
            ("0x0", 0),
            ("0X00", 0),
            ("0x000000000000", 0),
            ("0x1F", 0x1f),
            ("0x1f", 0x1f),
            ("1f", 0x1f),
            ("1F", 0x1f),
            ("0x8", 8),
            ("8", 8),
            ("0x0010", 0x10),
            ("0010", 0x10),
            ("C0", 0xc0),
            ("0xff", 0xff),
            ("FF", 0xff),
        ];
        for &(spelling, value) in cases {
            let msg = format!("IPT_ICMP SRC=1.1.1.1 TOS={spelling} PREC={spelling} PROTO=TCP RES={spelling} SYN");
            let line = ok(&msg);
            assert_eq!((line.tos, line.prec), (Some(value), Some(value)), "{msg:?}");
            assert_eq!(line.tcp_flags, TcpFlags::SYN);
        }
        let unifi = ok("IPT_ICMP IN=eth8 OUT= MAC=00:00:5e:00:53:01:00:00:5e:00:53:02:08:00 SRC=203.0.113.9 \
            DST=192.0.2.1 LEN=84 TOS=00 PREC=0x00 TTL=53 ID=0 DF PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1");
        assert_eq!((unifi.tos, unifi.prec, unifi.ttl), (Some(0), Some(0), Some(53)));
        assert_eq!((unifi.icmp_type, unifi.icmp_id, unifi.icmp_seq), (Some(8), Some(7), Some(1)));
        assert_eq!(unifi.unknown_fields, 0);
    }

    #[test]
    fn ipv6_echo_both_address_spellings() {
        for (src, dst) in [
            ("fd00::2", "fd00::1"),
            ("fd00:0000:0000:0000:0000:0000:0000:0002", "fd00:0000:0000:0000:0000:0000:0000:0001"),
        ] {
            let msg = format!(
                "IPT_ICMP6 IN=veth0 OUT= MAC=33:33 SRC={src} DST={dst} LEN=104 TC=0 HOPLIMIT=64 \
                 FLOWLBL=123456 PROTO=ICMPv6 TYPE=128 CODE=0 ID=5 SEQ=1 "
            );
            let line = ok(&msg);
            assert_eq!(line.prefix, "IPT_ICMP6");
            assert_eq!((line.src, line.dst), (v6("fd00::2"), v6("fd00::1")));
            assert_eq!((line.len, line.tc, line.hop_limit), (Some(104), Some(0), Some(64)));
            assert_eq!(line.flow_label, Some(123456));
            assert_eq!(line.proto, Some(Proto::Icmpv6));
            assert_eq!((line.icmp_type, line.icmp_code), (Some(128), Some(0)));
            assert_eq!((line.icmp_id, line.icmp_seq), (Some(5), Some(1)));
            assert_eq!((line.ttl, line.ip_id, line.unknown_fields), (None, None, 0));
        }
    }

    #[test]
    fn ipv4_fragments_and_flags() {
        let line = ok("IPT_ICMP SRC=10.0.0.2 DST=10.0.0.1 LEN=1500 TOS=0x00 PREC=0x00 TTL=64 \
            ID=43949 CE MF FRAG:185 PROTO=ICMP");
        assert!(line.more_fragments && line.reserved_flag && !line.dont_fragment);
        assert_eq!((line.frag, line.proto, line.icmp_type), (Some(185), Some(Proto::Icmp), None));
        // The spelling with `=` some tools emit.
        assert_eq!(ok("IPT_ICMP SRC=1.1.1.1 FRAG=8").frag, Some(8));
        assert_eq!(parse("IPT_ICMP SRC=1.1.1.1 FRAG:65536", PREFIXES), Err(NetfilterError::BadField("FRAG")));
    }

    #[test]
    fn ipv6_fragment_header() {
        let line = ok("IPT_ICMP6 SRC=fd13::2 DST=fd13::1 LEN=1496 TC=0 HOPLIMIT=64 \
            FLOWLBL=54982 FRAG:1448 INCOMPLETE ID:522219fa PROTO=ICMPv6");
        assert_eq!((line.frag, line.ip_id), (Some(1448), Some(0x5222_19fa)));
        assert_eq!(line.unknown_fields, 1); // INCOMPLETE
        assert_eq!(ok("IPT_ICMP6 SRC=::1 FRAG:TRUNCATED ").unknown_fields, 1);
        assert_eq!(parse("IPT_ICMP6 SRC=::1 ID:xyz", PREFIXES), Err(NetfilterError::BadField("ID")));
    }

    #[test]
    fn icmp_error_keeps_inner_packet_apart() {
        let line = ok("IPT_ICMP IN=gold0 OUT= SRC=10.213.0.2 DST=10.213.0.1 LEN=62 TOS=0x00 \
            PREC=0xC0 TTL=64 ID=25750 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.213.0.1 DST=10.213.0.2 \
            LEN=34 TOS=0x00 PREC=0x00 TTL=64 ID=52781 DF PROTO=UDP SPT=35935 DPT=33434 LEN=14 ] ");
        assert_eq!((line.src, line.dst), (v4(10, 213, 0, 2), v4(10, 213, 0, 1)));
        assert_eq!((line.len, line.ip_id, line.prec), (Some(62), Some(25750), Some(0xc0)));
        assert!(!line.dont_fragment);
        assert_eq!((line.proto, line.icmp_type, line.icmp_code), (Some(Proto::Icmp), Some(3), Some(3)));
        assert_eq!((line.src_port, line.dst_port, line.udp_len), (None, None, None));
        assert_eq!(
            line.inner,
            Some(
                "SRC=10.213.0.1 DST=10.213.0.2 LEN=34 TOS=0x00 PREC=0x00 TTL=64 ID=52781 DF \
                PROTO=UDP SPT=35935 DPT=33434 LEN=14"
            )
        );
        let inner = line.inner_packet().expect("has inner").expect("inner parses");
        assert_eq!((inner.src, inner.dst), (v4(10, 213, 0, 1), v4(10, 213, 0, 2)));
        assert_eq!((inner.src_port, inner.dst_port, inner.udp_len), (Some(35935), Some(33434), Some(14)));
        assert!(inner.dont_fragment);
        assert_eq!(inner.prefix, "");
    }

    #[test]
    fn icmp_error_quoting_an_echo_and_a_nested_error() {
        let line = ok("IPT_ICMP IN=lo SRC=10.0.0.1 DST=10.0.0.1 LEN=112 TTL=64 ID=44411 \
            PROTO=ICMP TYPE=3 CODE=1 [SRC=10.0.0.1 DST=10.0.0.9 LEN=84 TTL=64 ID=52291 DF \
            PROTO=ICMP TYPE=8 CODE=0 ID=11370 SEQ=1 ] MTU=1500");
        assert_eq!((line.ip_id, line.icmp_id, line.icmp_seq), (Some(44411), None, None));
        assert_eq!(line.unknown_fields, 1); // MTU
        let inner = line.inner_packet().expect("inner").expect("parses");
        assert_eq!((inner.icmp_id, inner.icmp_seq, inner.ip_id), (Some(11370), Some(1), Some(52291)));

        let nested = ok("IPT_ICMP SRC=10.0.0.1 DST=10.0.0.2 PROTO=ICMP TYPE=11 CODE=0 \
            [SRC=10.0.0.2 DST=10.0.0.3 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.0.3 DST=10.0.0.4 \
            PROTO=UDP SPT=1 DPT=2 LEN=8 ] ] ");
        assert_eq!(nested.icmp_type, Some(11));
        let inner = nested.inner_packet().expect("inner").expect("parses");
        assert_eq!((inner.src, inner.icmp_type), (v4(10, 0, 0, 2), Some(3)));
        let innermost = inner.inner_packet().expect("inner").expect("parses");
        assert_eq!((innermost.dst, innermost.dst_port), (v4(10, 0, 0, 4), Some(2)));
    }

    #[test]
    fn incomplete_byte_count_is_not_an_inner_packet() {
        let line = ok("IPT_ICMP SRC=10.0.0.1 DST=10.0.0.2 PROTO=ICMP INCOMPLETE [65535 bytes] ");
        assert_eq!(line.inner, None);
        assert_eq!(line.unknown_fields, 2);
        let line = ok("IPT_ICMP SRC=10.0.0.1 PROTO=ICMP TYPE=3 CODE=1 [TRUNCATED] [SRC=1.1.1.1]");
        assert_eq!(line.inner, Some("TRUNCATED"));
        assert_eq!(line.unknown_fields, 1);
    }

    #[test]
    fn truncated_inner_packet_runs_to_end() {
        let line = ok("IPT_ICMP SRC=10.0.0.1 DST=10.0.0.2 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.0.2 DST=10.0");
        assert_eq!(line.inner, Some("SRC=10.0.0.2 DST=10.0"));
        assert_eq!(line.dst, v4(10, 0, 0, 2));
        assert_eq!(line.inner_packet(), Some(Err(NetfilterError::BadField("DST"))));
    }

    #[test]
    fn unknown_keys_and_words_are_counted_not_fatal() {
        let line = ok("IPT_ICMP IN=br0 OUT= PHYSIN=veth1 MACSRC=aa MACDST=bb MACPROTO=0800 \
            VPROTO=8100 VID=7 SRC=10.0.0.1 DST=10.0.0.2 FUTURE WEIRD=a=b =odd PROTO=47 UID=0 \
            GID=0 MARK=0x1");
        assert_eq!(line.in_iface, Some("br0"));
        assert_eq!(line.proto, Some(Proto::Other("47")));
        // PHYSIN MACSRC MACDST MACPROTO VPROTO VID FUTURE WEIRD =odd UID GID MARK
        assert_eq!(line.unknown_fields, 12);
    }

    #[test]
    fn other_protocols() {
        for name in ["UDPLITE", "AH", "ESP", "47", "132"] {
            let msg = format!("IPT_ICMP SRC=1.1.1.1 PROTO={name} SPI=0x100");
            let line = ok(&msg);
            assert_eq!(line.proto, Some(Proto::Other(name)));
            assert_eq!(line.proto.map(|p| p.name()), Some(name));
        }
        assert_eq!(Proto::from_name("ICMPv6").name(), "ICMPv6");
    }

    #[test]
    fn bad_values() {
        let cases: &[(&str, &str)] = &[
            ("SRC=notanip", "SRC"),
            ("SRC=10.0.0.256", "SRC"),
            ("SRC=1.1.1.1 DST=fd00::1::2", "DST"),
            ("SRC=1.1.1.1 DST=", "DST"),
            ("SRC=1.1.1.1 TTL=999", "TTL"),
            ("SRC=1.1.1.1 TTL=-1", "TTL"),
            ("SRC=1.1.1.1 TTL=+1", "TTL"),
            ("SRC=1.1.1.1 TTL=", "TTL"),
            ("SRC=1.1.1.1 LEN=99999999999", "LEN"),
            ("SRC=1.1.1.1 LEN=4294967296", "LEN"),
            ("SRC=1.1.1.1 TOS=0x100", "TOS"),
            ("SRC=1.1.1.1 TOS=100", "TOS"),
            ("SRC=1.1.1.1 TOS=0x", "TOS"),
            ("SRC=1.1.1.1 TOS=", "TOS"),
            ("SRC=1.1.1.1 TOS=0x0x10", "TOS"),
            ("SRC=1.1.1.1 TOS=x10", "TOS"),
            ("SRC=1.1.1.1 TOS=-1", "TOS"),
            ("SRC=1.1.1.1 TOS=+1", "TOS"),
            ("SRC=1.1.1.1 TOS=0x1g", "TOS"),
            ("SRC=1.1.1.1 TOS=0x000000000000000100", "TOS"),
            ("SRC=1.1.1.1 TOS=low", "TOS"),
            ("SRC=1.1.1.1 PREC=0xZZ", "PREC"),
            ("SRC=1.1.1.1 PREC=é", "PREC"),
            ("SRC=1.1.1.1 ID=65536x", "ID"),
            ("SRC=1.1.1.1 TC=256", "TC"),
            ("SRC=1.1.1.1 HOPLIMIT=300", "HOPLIMIT"),
            ("SRC=1.1.1.1 FLOWLBL=1048576", "FLOWLBL"),
            ("SRC=1.1.1.1 PROTO=", "PROTO"),
            ("SRC=1.1.1.1 PROTO=ICMP TYPE=256", "TYPE"),
            ("SRC=1.1.1.1 PROTO=ICMP CODE=x", "CODE"),
            ("SRC=1.1.1.1 PROTO=ICMP ID=65536", "ID"),
            ("SRC=1.1.1.1 PROTO=ICMP SEQ=70000", "SEQ"),
            ("SRC=1.1.1.1 PROTO=TCP SPT=65536", "SPT"),
            ("SRC=1.1.1.1 PROTO=TCP DPT=80a", "DPT"),
            ("SRC=1.1.1.1 PROTO=TCP WINDOW=1e3", "WINDOW"),
            ("SRC=1.1.1.1 PROTO=TCP RES=0x1000", "RES"),
            ("SRC=1.1.1.1 PROTO=TCP URGP=65536", "URGP"),
        ];
        for (body, key) in cases {
            let msg = format!("IPT_ICMP {body}");
            assert_eq!(parse(&msg, PREFIXES), Err(NetfilterError::BadField(key)), "{msg:?}");
        }
        // A bad field after a good one still fails: no half-parsed lines.
        assert_eq!(parse("IPT_ICMP SRC=1.1.1.1 DST=x", PREFIXES), Err(NetfilterError::BadField("DST")));
    }

    #[test]
    fn missing_addresses() {
        for msg in [
            "IPT_ICMP ",
            "IPT_ICMP IN=ens3 OUT= MAC=00:11",
            "IPT_ICMP IN=ens3 OUT= ARP HTYPE=1 PTYPE=0x0800 OPCODE=1 MACSRC=aa IPSRC=1.1.1.1",
            "IPT_ICMP TRUNCATED",
            "IPT_ICMP [SRC=1.1.1.1]",
        ] {
            assert_eq!(parse(msg, PREFIXES), Err(NetfilterError::MissingAddress), "{msg:?}");
        }
        assert_eq!(ok("IPT_ICMP DST=1.1.1.1").src, None);
        // Cut inside the prefix: a configured trailing space is part of it.
        assert_eq!(parse("IPT_ICMP", PREFIXES), Err(NetfilterError::NoPrefix));
    }

    #[test]
    fn truncation_at_every_token_boundary() {
        let full = "IPT_ICMP IN=gold0 OUT= MAC=06:22 SRC=10.213.0.2 DST=10.213.0.1 LEN=84 \
            TOS=0x00 PREC=0x00 TTL=64 ID=25651 DF PROTO=ICMP TYPE=8 CODE=0 ID=10671 SEQ=1";
        for (cut, _) in full.match_indices(' ').filter(|(at, _)| *at > "IPT_ICMP".len()) {
            let truncated = &full[..cut];
            let result = parse(truncated, PREFIXES);
            if cut < full.find(" SRC").unwrap_or(0) + 1 {
                assert_eq!(result, Err(NetfilterError::MissingAddress), "{truncated:?}");
            } else {
                let line = result.unwrap_or_else(|e| panic!("{truncated:?}: {e}"));
                assert_eq!(line.src, v4(10, 213, 0, 2));
            }
        }
        // Cut inside a value: the partial value is judged like any other.
        let cut_in_dst = &full[..full.find("DST=10").unwrap_or(0) + 6];
        assert_eq!(parse(cut_in_dst, PREFIXES), Err(NetfilterError::BadField("DST")));
        assert_eq!(ok("IPT_ICMP SRC=1.1.1.1 PROTO=IC").proto, Some(Proto::Other("IC")));
        assert_eq!(parse("IPT_ICMP SRC=1.1.1.1 PROTO=ICMP TYPE=", PREFIXES), Err(NetfilterError::BadField("TYPE")));
    }

    #[test]
    fn prefix_matching() {
        assert_eq!(parse("IPT_FOO SRC=1.1.1.1", PREFIXES), Err(NetfilterError::NoPrefix));
        assert_eq!(parse("", PREFIXES), Err(NetfilterError::NoPrefix));
        assert_eq!(parse::<&str>("IPT_ICMP SRC=1.1.1.1", &[]), Err(NetfilterError::NoPrefix));
        assert_eq!(parse("IPT_ICMP SRC=1.1.1.1", &[""]), Err(NetfilterError::NoPrefix));
        // Prefixes match exactly as configured, case included.
        assert_eq!(parse("ipt_icmp SRC=1.1.1.1", PREFIXES), Err(NetfilterError::NoPrefix));
        assert_eq!(parse("IPT_DROP SRC=1.1.1.1", PREFIXES), Err(NetfilterError::NoPrefix));
        // Leading whitespace and a kernel uptime stamp are tolerated.
        assert_eq!(ok("  IPT_ICMP SRC=1.1.1.1").prefix, "IPT_ICMP");
        assert_eq!(ok("[ 1234.567890] IPT_ICMP6 SRC=::1").prefix, "IPT_ICMP6");

        // Without trailing spaces the longest bounded match wins.
        let bare = ["IPT_ICMP", "IPT_ICMP6"];
        assert_eq!(parse("IPT_ICMP6 SRC=::1", &bare).map(|l| l.prefix), Ok("IPT_ICMP6"));
        assert_eq!(parse("IPT_ICMP SRC=1.1.1.1", &bare).map(|l| l.prefix), Ok("IPT_ICMP"));
        assert_eq!(parse("IPT_ICMPIN=lo SRC=1.1.1.1", &bare).map(|l| l.in_iface), Ok(Some("lo")));
        assert_eq!(parse("IPT_ICMP6 SRC=::1", &["IPT_ICMP"]), Err(NetfilterError::NoPrefix));
        assert_eq!(parse("IPT_ICMPX SRC=::1", &["IPT_ICMP"]), Err(NetfilterError::NoPrefix));
        assert_eq!(parse("IPT_ICMP", &["IPT_ICMP"]), Err(NetfilterError::MissingAddress));
        // A prefix ending in punctuation needs no separator.
        let line = ok("IPT_DROP:IN=gold0 OUT= SRC=1.1.1.1");
        assert_eq!((line.prefix, line.in_iface), ("IPT_DROP:", Some("gold0")));
        assert_eq!(parse("IPT_DROP:x SRC=1.1.1.1", PREFIXES).map(|l| l.unknown_fields), Ok(1));
        // Order of the configured list does not matter.
        assert_eq!(parse("IPT_ICMP6 SRC=::1", &["IPT_ICMP6", "IPT_ICMP"]).map(|l| l.prefix), Ok("IPT_ICMP6"));
    }

    #[test]
    fn tokenizer() {
        let got: Vec<Token<'_>> = tokens("  IN=a OUT=  DF [x [y] z]  OPT (0A) =v k==v [open").collect();
        assert_eq!(
            got,
            [
                Token::Field("IN", "a"),
                Token::Field("OUT", ""),
                Token::Word("DF"),
                Token::Bracketed("x [y] z"),
                Token::Word("OPT"),
                Token::Word("(0A)"),
                Token::Word("=v"),
                Token::Field("k", "=v"),
                Token::Bracketed("open"),
            ]
        );
        assert_eq!(tokens("   ").next(), None);
        let pairs: Vec<_> = fields("SRC=1.1.1.1 DF [SRC=2.2.2.2] OUT=").collect();
        assert_eq!(pairs, [("SRC", Some("1.1.1.1")), ("DF", None), ("OUT", Some(""))]);
        assert_eq!(tokens("a]b ]").collect::<Vec<_>>(), [Token::Word("a]b"), Token::Word("]")]);
    }

    #[test]
    fn error_reasons_and_display() {
        let all = [NetfilterError::NoPrefix, NetfilterError::MissingAddress, NetfilterError::BadField("TTL")];
        let reasons: Vec<&str> = all.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons, ["no_prefix", "missing_address", "bad_field"]);
        assert!(NetfilterError::BadField("TTL").to_string().contains("TTL"));
    }

    // ---- property tests ----

    /// What a generated line should parse to, built alongside its text.
    #[derive(Clone, Debug)]
    struct Generated {
        text: String,
        expected: LogLine<'static>,
    }

    /// `%pI6`: the kernel prints every IPv6 group with four digits.
    fn kernel_ipv6(addr: Ipv6Addr) -> String {
        let s = addr.segments();
        format!(
            "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        )
    }

    #[derive(Clone, Debug)]
    enum Transport {
        Echo {
            request: bool,
            id: u16,
            seq: u16,
        },
        Tcp {
            spt: u16,
            dpt: u16,
            window: u16,
            flags: u16,
        },
        Udp {
            spt: u16,
            dpt: u16,
            len: u16,
        },
        /// Destination unreachable quoting a UDP packet going the other way.
        Unreachable {
            code: u8,
            spt: u16,
            dpt: u16,
        },
    }

    /// How a hex byte is written: the kernel's `0x%02X`, or a firmware's
    /// variant (no `0x`, lower case, leading zeros or none).
    #[derive(Clone, Copy, Debug)]
    struct HexStyle {
        prefix: &'static str,
        lower: bool,
        width: usize,
    }

    impl HexStyle {
        fn spell(self, byte: u8) -> String {
            let width = self.width;
            match self.lower {
                true => format!("{}{byte:0width$x}", self.prefix),
                false => format!("{}{byte:0width$X}", self.prefix),
            }
        }
    }

    fn hex_style() -> impl Strategy<Value = HexStyle> {
        (prop_oneof![Just("0x"), Just("0X"), Just("")], any::<bool>(), 0usize..6)
            .prop_map(|(prefix, lower, width)| HexStyle { prefix, lower, width })
    }

    fn transport() -> impl Strategy<Value = Transport> {
        prop_oneof![
            (any::<bool>(), any::<u16>(), any::<u16>()).prop_map(|(request, id, seq)| Transport::Echo {
                request,
                id,
                seq
            }),
            (any::<u16>(), any::<u16>(), any::<u16>(), 0u16..0x200)
                .prop_map(|(spt, dpt, window, flags)| Transport::Tcp { spt, dpt, window, flags }),
            (any::<u16>(), any::<u16>(), any::<u16>()).prop_map(|(spt, dpt, len)| Transport::Udp { spt, dpt, len }),
            (0u8..16, any::<u16>(), any::<u16>()).prop_map(|(code, spt, dpt)| Transport::Unreachable {
                code,
                spt,
                dpt
            }),
        ]
    }

    prop_compose! {
        fn generated_line()(
            v6 in any::<bool>(),
            a4 in any::<[u8; 4]>(), b4 in any::<[u8; 4]>(),
            a6 in any::<u128>(), b6 in any::<u128>(),
            len in 20u32..65_575, ttl in any::<u8>(), ip_id in any::<u16>(), df in any::<bool>(),
            tos in any::<u8>(), flow in 0u32..0x10_0000, hex_style in hex_style(),
            received in any::<bool>(), mark in proptest::option::of(any::<u32>()),
            transport in transport(),
        ) -> Generated {
            let (src, dst) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(a6)), IpAddr::V6(Ipv6Addr::from(b6)))
            } else {
                (IpAddr::V4(Ipv4Addr::from(a4)), IpAddr::V4(Ipv4Addr::from(b4)))
            };
            let show = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => kernel_ipv6(v6),
            };
            let prefix = if v6 { "IPT_ICMP6" } else { "IPT_ICMP" };
            let mut expected = LogLine { prefix, src: Some(src), dst: Some(dst), len: Some(len), ..LogLine::default() };
            let mut text = String::from(prefix);
            if received {
                text += " IN=veth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00";
                expected.in_iface = Some("veth0");
                expected.mac = Some("02:00:00:00:00:01:02:00:00:00:00:02:08:00");
            } else {
                text += " IN= OUT=veth0";
                expected.out_iface = Some("veth0");
            }
            text += &format!(" SRC={} DST={} LEN={len}", show(src), show(dst));
            if v6 {
                text += &format!(" TC={tos} HOPLIMIT={ttl} FLOWLBL={flow}");
                expected.tc = Some(tos);
                expected.hop_limit = Some(ttl);
                expected.flow_label = Some(flow);
            } else {
                let (tos_bits, prec) = (tos & 0x1e, tos & 0xe0);
                text += &format!(" TOS={} PREC={} TTL={ttl} ID={ip_id}", hex_style.spell(tos_bits), hex_style.spell(prec));
                expected.tos = Some(tos_bits);
                expected.prec = Some(prec);
                expected.ttl = Some(ttl);
                expected.ip_id = Some(u32::from(ip_id));
                if df {
                    text += " DF";
                    expected.dont_fragment = true;
                }
            }
            let (icmp_name, icmp_proto) = if v6 { ("ICMPv6", Proto::Icmpv6) } else { ("ICMP", Proto::Icmp) };
            match transport {
                Transport::Echo { request, id, seq } => {
                    let kind = match (v6, request) { (false, true) => 8, (false, false) => 0, (true, true) => 128, (true, false) => 129 };
                    text += &format!(" PROTO={icmp_name} TYPE={kind} CODE=0 ID={id} SEQ={seq}");
                    expected.proto = Some(icmp_proto);
                    (expected.icmp_type, expected.icmp_code) = (Some(kind), Some(0));
                    (expected.icmp_id, expected.icmp_seq) = (Some(id), Some(seq));
                }
                Transport::Tcp { spt, dpt, window, flags } => {
                    let flags = TcpFlags::from_bits(flags);
                    text += &format!(" PROTO=TCP SPT={spt} DPT={dpt} WINDOW={window} RES=0x00");
                    // The kernel's order: AE CWR ECE URG ACK PSH RST SYN FIN.
                    for (flag, name) in TcpFlags::NAMED.iter().rev() {
                        if flags.contains(*flag) {
                            text += " ";
                            text += name;
                        }
                    }
                    text += " URGP=0";
                    expected.proto = Some(Proto::Tcp);
                    (expected.src_port, expected.dst_port, expected.window) = (Some(spt), Some(dpt), Some(window));
                    expected.tcp_flags = flags;
                }
                Transport::Udp { spt, dpt, len } => {
                    text += &format!(" PROTO=UDP SPT={spt} DPT={dpt} LEN={len}");
                    expected.proto = Some(Proto::Udp);
                    (expected.src_port, expected.dst_port, expected.udp_len) = (Some(spt), Some(dpt), Some(len));
                }
                Transport::Unreachable { code, spt, dpt } => {
                    let kind = if v6 { 1 } else { 3 };
                    let inner = format!("SRC={} DST={} LEN=34 PROTO=UDP SPT={spt} DPT={dpt} LEN=14", show(dst), show(src));
                    text += &format!(" PROTO={icmp_name} TYPE={kind} CODE={code} [{inner} ]");
                    expected.proto = Some(icmp_proto);
                    (expected.icmp_type, expected.icmp_code) = (Some(kind), Some(code));
                    expected.inner = Some(Box::leak(inner.into_boxed_str()));
                }
            }
            if let Some(mark) = mark {
                text += &format!(" MARK=0x{mark:x}");
                expected.unknown_fields += 1;
            }
            text += " ";
            Generated { text, expected }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(msg in any::<String>(), prefix in "[A-Z_:]{0,6} ?") {
            let _ = parse(&msg, &[&prefix, "IPT_ICMP "]);
            let _ = parse_packet(&msg);
        }

        #[test]
        fn never_panics_on_netfilter_shaped_strings(
            body in "([A-Z]{1,4}(=[0-9a-fx.:]{0,6})? ?|\\[|\\]| |é){0,40}"
        ) {
            let msg = format!("IPT_ICMP {body}");
            if let Ok(line) = parse(&msg, PREFIXES) {
                prop_assert!(line.src.is_some() || line.dst.is_some());
                if let Some(Ok(inner)) = line.inner_packet() {
                    prop_assert!(inner.src.is_some() || inner.dst.is_some());
                }
            }
        }

        #[test]
        fn hex_bytes_parse_in_any_spelling(byte in any::<u8>(), style in hex_style(), zeros in 0usize..12) {
            let spelled = style.spell(byte);
            let padded = match spelled.strip_prefix(style.prefix) {
                Some(digits) => format!("{}{}{digits}", style.prefix, "0".repeat(zeros)),
                None => spelled.clone(),
            };
            prop_assert_eq!(hex_byte("TOS", &spelled), Ok(byte), "{}", spelled);
            prop_assert_eq!(hex_byte("TOS", &padded), Ok(byte), "{}", padded);
        }

        #[test]
        fn hex_bytes_out_of_range_or_not_hex_are_refused(
            big in 0x100u32..,
            style in hex_style(),
            junk in "[^0-9a-fA-FxX]{1,3}",
            at in 0usize..4,
        ) {
            let width = style.width;
            let too_big = format!("{}{big:0width$x}", style.prefix);
            prop_assert_eq!(hex_byte("TOS", &too_big), Err(NetfilterError::BadField("TOS")), "{}", too_big);
            let digits = style.spell(0x5a);
            let cut = digits.len().min(style.prefix.len() + at);
            let garbage = format!("{}{junk}{}", &digits[..cut], &digits[cut..]);
            prop_assert_eq!(hex_byte("TOS", &garbage), Err(NetfilterError::BadField("TOS")), "{}", garbage);
        }

        #[test]
        fn generated_lines_parse_to_their_values(generated in generated_line()) {
            let line = parse(&generated.text, PREFIXES);
            prop_assert_eq!(line, Ok(generated.expected), "{}", generated.text);
        }

        #[test]
        fn generated_lines_survive_syslog_wrapping(generated in generated_line(), uptime in 0u64..10_000_000) {
            let stamp = format!("[{:5}.{:06}]", uptime / 1_000_000, uptime % 1_000_000);
            let wrapped = [
                format!("<4>Nov  4 20:31:02 myhost kernel: {stamp} {}", generated.text),
                format!("<6>Nov 24 20:31:02 myhost kernel: {}", generated.text),
                format!("<6>1 2026-11-24T20:31:02.123456+00:00 myhost kernel - - [meta x=\"\\]\"] \u{FEFF}{}\r\n", generated.text),
                format!("<6>1 2026-11-24T20:31:02Z - kernel - - -  {stamp} {}\n", generated.text),
                format!("{stamp} {}", generated.text),
            ];
            let direct = parse(&generated.text, PREFIXES);
            for line in &wrapped {
                let message = crate::syslog::parse(line);
                prop_assert!(message.is_ok(), "{:?}: {:?}", line, message);
                if let Ok(message) = message {
                    prop_assert_eq!(parse(message.msg, PREFIXES), direct, "{}", line);
                }
            }
        }
    }
}
