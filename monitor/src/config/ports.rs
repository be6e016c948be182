//! Port lists on the command line: "80,8080" or "8000-8010".

use std::{fmt, str::FromStr};

/// A set of TCP/UDP ports given as a comma-separated list of ports and ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid port list {input:?}: {reason}")]
pub struct PortListError {
    input: String,
    reason: &'static str,
}

/// Ranges wider than this are almost certainly a typo; the XDP port table
/// would accept them, but counting every port as HTTP is not useful.
const MAX_PORTS: usize = 1024;

impl FromStr for PortList {
    type Err = PortListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PortListError { input: s.to_owned(), reason };
        let mut ports = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.trim(), hi.trim()),
                None => (part, part),
            };
            let lo: u16 = lo.parse().map_err(|_| err("not a port number (1-65535)"))?;
            let hi: u16 = hi.parse().map_err(|_| err("not a port number (1-65535)"))?;
            if lo == 0 || hi < lo {
                return Err(err("ports are 1-65535 and ranges go low-high"));
            }
            ports.extend(lo..=hi);
            if ports.len() > MAX_PORTS {
                return Err(err("more than 1024 ports"));
            }
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(PortList(ports))
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u16::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!("80, 8080".parse(), Ok(PortList(vec![80, 8080])));
        assert_eq!("8000-8002,80,8001".parse(), Ok(PortList(vec![80, 8000, 8001, 8002])));
        assert_eq!("".parse(), Ok(PortList(vec![])));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["0", "70000", "9-3", "http", "1-2000"] {
            assert!(bad.parse::<PortList>().is_err(), "{bad}");
        }
    }
}
