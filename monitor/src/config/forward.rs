//! Where an agent forwards to (`--forward`): `tcp://HOST:PORT` (RFC 6587
//! octet counting, e.g. to the local rsyslog's imtcp) or `tls://HOST:PORT`
//! (RFC 5425).

use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardScheme {
    Tcp,
    Tls,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardTarget {
    pub scheme: ForwardScheme,
    /// Host name or address, as given (a TLS server name when a name).
    pub host: String,
    pub port: u16,
}

impl ForwardTarget {
    /// "host:port" for connecting, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ForwardScheme::Tcp => "tcp",
            ForwardScheme::Tls => "tls",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

impl FromStr for ForwardTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid forward target {s:?} (want tcp://HOST:PORT or tls://HOST:PORT)");
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme {
            "tcp" => ForwardScheme::Tcp,
            "tls" => ForwardScheme::Tls,
            _ => return Err(bad()),
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
            return Err(bad());
        }
        let port = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
        Ok(ForwardTarget { scheme, host: host.to_owned(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: ForwardTarget = "tls://central.example:6514".parse().expect("valid");
        assert_eq!((t.scheme, t.host.as_str(), t.port), (ForwardScheme::Tls, "central.example", 6514));
        let t: ForwardTarget = "tcp://[::1]:514".parse().expect("valid");
        assert_eq!(
            (t.host.as_str(), t.authority(), t.to_string()),
            ("::1", "[::1]:514".into(), "tcp://[::1]:514".into())
        );
        for bad in ["udp://h:1", "tcp://h", "tcp://:1", "tcp://h:0", "tcp://h:x", "h:1", "tcp://a/b:1"] {
            assert!(bad.parse::<ForwardTarget>().is_err(), "{bad}");
        }
    }
}
