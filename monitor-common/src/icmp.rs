//! Human names for ICMP and ICMPv6 type/code pairs.
//!
//! The kernel program records only the raw type, code and (for echo) the
//! identifier and sequence; turning them into words is left to the daemon so
//! the tables can grow without touching the BPF verifier's budget.

use core::fmt::{self, Write};

/// What the tables know about a type/code pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    /// The pair is a defined message: the string says everything.
    Exact(&'static str),
    /// The type is known but the code is not; the string names the type.
    TypeOnly(&'static str),
    /// Neither is known.
    Unknown,
}

impl Name {
    /// `Exact` for code 0, `TypeOnly` otherwise: most informational messages
    /// define no codes, and a non-zero one is worth showing.
    const fn code_zero(name: &'static str, code: u8) -> Name {
        if code == 0 {
            Name::Exact(name)
        } else {
            Name::TypeOnly(name)
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Name::Exact(name) | Name::TypeOnly(name) => name,
            Name::Unknown => "unknown",
        }
    }
}

/// ICMPv4 (RFC 792, RFC 1812, RFC 8335, IANA registry).
const fn lookup_v4(type_: u8, code: u8) -> Name {
    use Name::{Exact, TypeOnly};
    match (type_, code) {
        (0, _) => Name::code_zero("echo reply", code),
        (3, 0) => Exact("net unreachable"),
        (3, 1) => Exact("host unreachable"),
        (3, 2) => Exact("protocol unreachable"),
        (3, 3) => Exact("port unreachable"),
        (3, 4) => Exact("fragmentation needed"),
        (3, 5) => Exact("source route failed"),
        (3, 6) => Exact("destination network unknown"),
        (3, 7) => Exact("destination host unknown"),
        (3, 8) => Exact("source host isolated"),
        (3, 9) => Exact("net administratively prohibited"),
        (3, 10) => Exact("host administratively prohibited"),
        (3, 11) => Exact("net unreachable for TOS"),
        (3, 12) => Exact("host unreachable for TOS"),
        (3, 13) => Exact("communication administratively prohibited"),
        (3, 14) => Exact("host precedence violation"),
        (3, 15) => Exact("precedence cutoff in effect"),
        (3, _) => TypeOnly("destination unreachable"),
        (4, _) => Name::code_zero("source quench", code),
        (5, 0) => Exact("redirect for network"),
        (5, 1) => Exact("redirect for host"),
        (5, 2) => Exact("redirect for TOS and network"),
        (5, 3) => Exact("redirect for TOS and host"),
        (5, _) => TypeOnly("redirect"),
        (8, _) => Name::code_zero("echo request", code),
        (9, 0) => Exact("router advertisement"),
        (9, 16) => Exact("router advertisement (does not route common traffic)"),
        (9, _) => TypeOnly("router advertisement"),
        (10, _) => Name::code_zero("router solicitation", code),
        (11, 0) => Exact("time exceeded: TTL exceeded in transit"),
        (11, 1) => Exact("time exceeded: fragment reassembly time exceeded"),
        (11, _) => TypeOnly("time exceeded"),
        (12, 0) => Exact("parameter problem: pointer indicates the error"),
        (12, 1) => Exact("parameter problem: missing a required option"),
        (12, 2) => Exact("parameter problem: bad length"),
        (12, _) => TypeOnly("parameter problem"),
        (13, _) => Name::code_zero("timestamp request", code),
        (14, _) => Name::code_zero("timestamp reply", code),
        (15, _) => Name::code_zero("information request", code),
        (16, _) => Name::code_zero("information reply", code),
        (17, _) => Name::code_zero("address mask request", code),
        (18, _) => Name::code_zero("address mask reply", code),
        (30, _) => Name::code_zero("traceroute", code),
        (42, _) => Name::code_zero("extended echo request", code),
        (43, 0) => Exact("extended echo reply: no error"),
        (43, 1) => Exact("extended echo reply: malformed query"),
        (43, 2) => Exact("extended echo reply: no such interface"),
        (43, 3) => Exact("extended echo reply: no such table entry"),
        (43, 4) => Exact("extended echo reply: multiple interfaces satisfy query"),
        (43, _) => TypeOnly("extended echo reply"),
        _ => Name::Unknown,
    }
}

/// ICMPv6 (RFC 4443, RFC 4861, RFC 2710, RFC 3810, RFC 8335, IANA registry).
const fn lookup_v6(type_: u8, code: u8) -> Name {
    use Name::{Exact, TypeOnly};
    match (type_, code) {
        (1, 0) => Exact("no route to destination"),
        (1, 1) => Exact("communication administratively prohibited"),
        (1, 2) => Exact("beyond scope of source address"),
        (1, 3) => Exact("address unreachable"),
        (1, 4) => Exact("port unreachable"),
        (1, 5) => Exact("source address failed ingress/egress policy"),
        (1, 6) => Exact("reject route to destination"),
        (1, 7) => Exact("error in source routing header"),
        (1, 8) => Exact("headers too long"),
        (1, _) => TypeOnly("destination unreachable"),
        (2, _) => Name::code_zero("packet too big", code),
        (3, 0) => Exact("time exceeded: hop limit exceeded in transit"),
        (3, 1) => Exact("time exceeded: fragment reassembly time exceeded"),
        (3, _) => TypeOnly("time exceeded"),
        (4, 0) => Exact("parameter problem: erroneous header field"),
        (4, 1) => Exact("parameter problem: unrecognized next header"),
        (4, 2) => Exact("parameter problem: unrecognized IPv6 option"),
        (4, 3) => Exact("parameter problem: incomplete header chain"),
        (4, _) => TypeOnly("parameter problem"),
        (128, _) => Name::code_zero("echo request", code),
        (129, _) => Name::code_zero("echo reply", code),
        (130, _) => Name::code_zero("MLD query", code),
        (131, _) => Name::code_zero("MLD report", code),
        (132, _) => Name::code_zero("MLD done", code),
        (133, _) => Name::code_zero("router solicitation", code),
        (134, _) => Name::code_zero("router advertisement", code),
        (135, _) => Name::code_zero("neighbor solicitation", code),
        (136, _) => Name::code_zero("neighbor advertisement", code),
        (137, _) => Name::code_zero("redirect", code),
        (138, 0) => Exact("router renumbering command"),
        (138, 1) => Exact("router renumbering result"),
        (138, 255) => Exact("router renumbering sequence number reset"),
        (138, _) => TypeOnly("router renumbering"),
        (139, 0..=2) => Exact("node information query"),
        (139, _) => TypeOnly("node information query"),
        (140, 0..=2) => Exact("node information response"),
        (140, _) => TypeOnly("node information response"),
        (141, _) => Name::code_zero("inverse neighbor discovery solicitation", code),
        (142, _) => Name::code_zero("inverse neighbor discovery advertisement", code),
        (143, _) => Name::code_zero("MLDv2 report", code),
        (151, _) => Name::code_zero("multicast router advertisement", code),
        (152, _) => Name::code_zero("multicast router solicitation", code),
        (153, _) => Name::code_zero("multicast router termination", code),
        (160, _) => Name::code_zero("extended echo request", code),
        (161, 0) => Exact("extended echo reply: no error"),
        (161, 1) => Exact("extended echo reply: malformed query"),
        (161, 2) => Exact("extended echo reply: no such interface"),
        (161, 3) => Exact("extended echo reply: no such table entry"),
        (161, 4) => Exact("extended echo reply: multiple interfaces satisfy query"),
        (161, _) => TypeOnly("extended echo reply"),
        _ => Name::Unknown,
    }
}

const fn lookup(v6: bool, type_: u8, code: u8) -> Name {
    if v6 {
        lookup_v6(type_, code)
    } else {
        lookup_v4(type_, code)
    }
}

/// Name of an ICMPv4 message: the specific one for a known type/code pair,
/// the type's name for an unknown code, `"unknown"` for an unknown type
/// (use [`describe`] to get the numbers printed instead).
pub const fn icmpv4_name(type_: u8, code: u8) -> &'static str {
    lookup_v4(type_, code).as_str()
}

/// Name of an ICMPv6 message; see [`icmpv4_name`].
pub const fn icmpv6_name(type_: u8, code: u8) -> &'static str {
    lookup_v6(type_, code).as_str()
}

/// True for error messages, which quote the packet that caused them and so
/// describe somebody else's traffic rather than the sender's intent.
///
/// ICMPv6 marks errors by a clear high bit of the type (RFC 4443 §2.1);
/// ICMPv4 has no such rule, so this is the list Linux uses (`icmp_is_err`).
pub const fn is_error(v6: bool, type_: u8) -> bool {
    if v6 {
        type_ & 0x80 == 0
    } else {
        matches!(type_, 3 | 4 | 5 | 11 | 12)
    }
}

/// True for an echo request ("ping"), the message a flood or sweep is made of.
pub const fn is_echo_request(v6: bool, type_: u8) -> bool {
    if v6 {
        type_ == 128
    } else {
        type_ == 8
    }
}

/// True for echo request and reply, the only messages that carry an
/// identifier and a sequence number the kernel program records (and the
/// netfilter LOG target prints as `ID=` and `SEQ=`).
pub const fn is_echo(v6: bool, type_: u8) -> bool {
    if v6 {
        matches!(type_, 128 | 129)
    } else {
        matches!(type_, 0 | 8)
    }
}

/// Writes a one-line description for the UI: `"echo request id 4 seq 17"`,
/// `"port unreachable"`, `"time exceeded: TTL exceeded in transit"`,
/// `"redirect code 9"` for an unknown code, `"type 42 code 1"` for an
/// unknown type. `id` and `seq` are shown when the message has them (echo
/// request and reply); a message without them shows neither, never a 0.
///
/// # Errors
///
/// Only those of `out`.
pub fn describe(v6: bool, type_: u8, code: u8, id: Option<u16>, seq: Option<u16>, out: &mut impl Write) -> fmt::Result {
    match lookup(v6, type_, code) {
        Name::Exact(name) => out.write_str(name)?,
        Name::TypeOnly(name) => write!(out, "{name} code {code}")?,
        Name::Unknown => write!(out, "type {type_} code {code}")?,
    }
    if let Some(id) = id {
        write!(out, " id {id}")?;
    }
    if let Some(seq) = seq {
        write!(out, " seq {seq}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The description of a message carrying `id` and `seq` when it is an
    /// echo (as both paths fill them), nothing otherwise.
    fn described(v6: bool, type_: u8, code: u8, id: u16, seq: u16) -> String {
        let echo = is_echo(v6, type_);
        described_with(v6, type_, code, echo.then_some(id), echo.then_some(seq))
    }

    fn described_with(v6: bool, type_: u8, code: u8, id: Option<u16>, seq: Option<u16>) -> String {
        let mut out = String::new();
        describe(v6, type_, code, id, seq, &mut out).expect("String never fails");
        out
    }

    #[test]
    fn v4_names() {
        let cases: &[(u8, u8, &str)] = &[
            (0, 0, "echo reply"),
            (8, 0, "echo request"),
            (3, 0, "net unreachable"),
            (3, 1, "host unreachable"),
            (3, 2, "protocol unreachable"),
            (3, 3, "port unreachable"),
            (3, 4, "fragmentation needed"),
            (3, 9, "net administratively prohibited"),
            (3, 10, "host administratively prohibited"),
            (3, 13, "communication administratively prohibited"),
            (3, 16, "destination unreachable"),
            (4, 0, "source quench"),
            (5, 0, "redirect for network"),
            (5, 1, "redirect for host"),
            (5, 7, "redirect"),
            (9, 0, "router advertisement"),
            (10, 0, "router solicitation"),
            (11, 0, "time exceeded: TTL exceeded in transit"),
            (11, 1, "time exceeded: fragment reassembly time exceeded"),
            (11, 2, "time exceeded"),
            (12, 0, "parameter problem: pointer indicates the error"),
            (12, 9, "parameter problem"),
            (13, 0, "timestamp request"),
            (14, 0, "timestamp reply"),
            (17, 0, "address mask request"),
            (18, 0, "address mask reply"),
            (1, 0, "unknown"),
            (99, 0, "unknown"),
            (255, 255, "unknown"),
        ];
        for &(type_, code, name) in cases {
            assert_eq!(icmpv4_name(type_, code), name, "type {type_} code {code}");
        }
    }

    #[test]
    fn v6_names() {
        let cases: &[(u8, u8, &str)] = &[
            (128, 0, "echo request"),
            (129, 0, "echo reply"),
            (1, 0, "no route to destination"),
            (1, 1, "communication administratively prohibited"),
            (1, 2, "beyond scope of source address"),
            (1, 3, "address unreachable"),
            (1, 4, "port unreachable"),
            (1, 5, "source address failed ingress/egress policy"),
            (1, 6, "reject route to destination"),
            (1, 9, "destination unreachable"),
            (2, 0, "packet too big"),
            (3, 0, "time exceeded: hop limit exceeded in transit"),
            (3, 1, "time exceeded: fragment reassembly time exceeded"),
            (4, 0, "parameter problem: erroneous header field"),
            (4, 1, "parameter problem: unrecognized next header"),
            (4, 2, "parameter problem: unrecognized IPv6 option"),
            (130, 0, "MLD query"),
            (131, 0, "MLD report"),
            (132, 0, "MLD done"),
            (133, 0, "router solicitation"),
            (134, 0, "router advertisement"),
            (135, 0, "neighbor solicitation"),
            (136, 0, "neighbor advertisement"),
            (137, 0, "redirect"),
            (143, 0, "MLDv2 report"),
            (0, 0, "unknown"),
            (42, 1, "unknown"),
            (200, 0, "unknown"),
        ];
        for &(type_, code, name) in cases {
            assert_eq!(icmpv6_name(type_, code), name, "type {type_} code {code}");
        }
    }

    #[test]
    fn v4_and_v6_numbering_differ() {
        // Type 3 is "destination unreachable" in v4 but "time exceeded" in v6.
        assert_eq!(icmpv4_name(3, 3), "port unreachable");
        assert_eq!(icmpv6_name(3, 0), "time exceeded: hop limit exceeded in transit");
        assert_eq!(icmpv4_name(128, 0), "unknown");
        assert_eq!(icmpv6_name(8, 0), "unknown");
    }

    #[test]
    fn errors() {
        for type_ in [3, 4, 5, 11, 12] {
            assert!(is_error(false, type_), "v4 type {type_}");
        }
        for type_ in [0, 8, 9, 10, 13, 14, 17, 18, 42, 255] {
            assert!(!is_error(false, type_), "v4 type {type_}");
        }
        for type_ in [1, 2, 3, 4, 100, 127] {
            assert!(is_error(true, type_), "v6 type {type_}");
        }
        for type_ in [128, 129, 133, 135, 143, 255] {
            assert!(!is_error(true, type_), "v6 type {type_}");
        }
    }

    #[test]
    fn echo_requests() {
        assert!(is_echo_request(false, 8));
        assert!(is_echo_request(true, 128));
        assert!(!is_echo_request(false, 0));
        assert!(!is_echo_request(false, 128));
        assert!(!is_echo_request(true, 8));
        assert!(!is_echo_request(true, 129));
    }

    #[test]
    fn descriptions() {
        assert_eq!(described(false, 8, 0, 4, 17), "echo request id 4 seq 17");
        assert_eq!(described(false, 0, 0, 4, 17), "echo reply id 4 seq 17");
        assert_eq!(described(true, 128, 0, 65535, 0), "echo request id 65535 seq 0");
        assert_eq!(described(true, 129, 0, 1, 2), "echo reply id 1 seq 2");
        assert_eq!(described(false, 3, 3, 0, 0), "port unreachable");
        assert_eq!(described(true, 1, 4, 0, 0), "port unreachable");
        assert_eq!(described(false, 11, 0, 0, 0), "time exceeded: TTL exceeded in transit");
        assert_eq!(described(true, 2, 0, 0, 0), "packet too big");
        assert_eq!(described(true, 42, 1, 0, 0), "type 42 code 1");
        assert_eq!(described(false, 99, 7, 3, 4), "type 99 code 7");
        assert_eq!(described(false, 5, 9, 0, 0), "redirect code 9");
        assert_eq!(described(true, 135, 3, 0, 0), "neighbor solicitation code 3");
        // An echo with an odd code still shows its identifiers.
        assert_eq!(described(false, 8, 1, 4, 17), "echo request code 1 id 4 seq 17");
        // id/seq belong to echo only; other messages never print them.
        assert_eq!(described(false, 13, 0, 4, 17), "timestamp request");
        assert_eq!(described(true, 135, 0, 4, 17), "neighbor solicitation");
        assert_eq!(described(true, 134, 0, 4, 17), "router advertisement");
    }

    #[test]
    fn descriptions_show_only_the_identifiers_given() {
        assert_eq!(described_with(false, 8, 0, Some(0), Some(0)), "echo request id 0 seq 0");
        assert_eq!(described_with(false, 8, 0, None, None), "echo request");
        assert_eq!(described_with(false, 0, 0, Some(9), None), "echo reply id 9");
        assert_eq!(described_with(true, 129, 0, None, Some(3)), "echo reply seq 3");
        assert_eq!(described_with(false, 13, 0, Some(4), Some(17)), "timestamp request id 4 seq 17");
        assert_eq!(described_with(false, 3, 3, None, None), "port unreachable");
        assert_eq!(described_with(true, 42, 1, None, None), "type 42 code 1");
    }

    #[test]
    fn echo_types() {
        for (v6, type_) in [(false, 0), (false, 8), (true, 128), (true, 129)] {
            assert!(is_echo(v6, type_), "v6={v6} type {type_}");
        }
        for (v6, type_) in
            [(false, 3), (false, 9), (false, 13), (false, 128), (true, 0), (true, 8), (true, 134), (true, 135)]
        {
            assert!(!is_echo(v6, type_), "v6={v6} type {type_}");
        }
    }

    /// Every possible pair yields a non-empty name and a description that
    /// agrees with it; the tables are `const fn` matches, so this is also the
    /// whole input space.
    #[test]
    fn exhaustive() {
        for v6 in [false, true] {
            for type_ in 0..=u8::MAX {
                for code in 0..=u8::MAX {
                    let name = if v6 { icmpv6_name(type_, code) } else { icmpv4_name(type_, code) };
                    assert!(!name.is_empty());
                    let text = described(v6, type_, code, 1, 2);
                    if name == "unknown" {
                        assert_eq!(text, format!("type {type_} code {code}"));
                    } else {
                        assert!(text.starts_with(name), "{text:?} vs {name:?}");
                    }
                }
            }
        }
    }

    /// A writer that refuses everything: errors must propagate, not panic.
    struct Full;
    impl Write for Full {
        fn write_str(&mut self, _: &str) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    #[test]
    fn writer_errors_propagate() {
        assert!(describe(false, 8, 0, Some(1), Some(2), &mut Full).is_err());
        assert!(describe(false, 5, 9, None, None, &mut Full).is_err());
        assert!(describe(true, 42, 1, None, None, &mut Full).is_err());
    }
}
