//! Traffic classes: the unit every counter and event is keyed by.

/// What a packet was counted as. The discriminant indexes the per-CPU
/// counter array, so the order is part of the kernel/user ABI.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Icmp = 0,
    Icmpv6 = 1,
    Http = 2,
    /// TCP to an HTTPS port, or QUIC (UDP to an HTTPS port).
    Https = 3,
    OtherIpv4 = 4,
    OtherIpv6 = 5,
    NonIp = 6,
    /// Truncated or inconsistent headers: counted, never parsed further.
    Malformed = 7,
}

/// Number of classes; the length of the counter array.
pub const CLASS_COUNT: usize = 8;

/// Classes that per-source statistics and events are kept for.
pub const TRACKED_CLASS_COUNT: usize = 4;

impl Class {
    pub const ALL: [Class; CLASS_COUNT] = [
        Class::Icmp,
        Class::Icmpv6,
        Class::Http,
        Class::Https,
        Class::OtherIpv4,
        Class::OtherIpv6,
        Class::NonIp,
        Class::Malformed,
    ];

    pub const fn from_u8(value: u8) -> Option<Class> {
        if (value as usize) < CLASS_COUNT {
            Some(Self::ALL[value as usize])
        } else {
            None
        }
    }

    /// Stable lower-case name used in the API, metrics labels and the UI.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Icmp => "icmp",
            Class::Icmpv6 => "icmpv6",
            Class::Http => "http",
            Class::Https => "https",
            Class::OtherIpv4 => "other_ipv4",
            Class::OtherIpv6 => "other_ipv6",
            Class::NonIp => "non_ip",
            Class::Malformed => "malformed",
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// True for the classes that get per-source statistics and events.
    pub const fn is_tracked(self) -> bool {
        (self as usize) < TRACKED_CLASS_COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminants_index_all() {
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(Class::from_u8(i as u8), Some(*c));
            assert_eq!(Class::from_name(c.name()), Some(*c));
        }
        assert_eq!(Class::from_u8(CLASS_COUNT as u8), None);
        assert_eq!(Class::from_name("nope"), None);
    }
}
