//! Event filters shared by /api/events, the NDJSON stream and the WebSocket.

use ipnet::IpNet;
use monitor_common::Class;

use super::event::Event;

/// Longest free-text filter accepted.
const MAX_TEXT: usize = 200;
/// Most hosts one filter names.
const MAX_HOSTS: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    classes: Option<Vec<Class>>,
    countries: Option<Vec<String>>,
    cidr: Option<IpNet>,
    /// Lower-cased free text matched against the event's visible fields.
    text: Option<String>,
    /// Hosts (event `host`), exactly.
    hosts: Option<Vec<String>>,
}

impl EventFilter {
    /// From comma-separated query values; an error names the bad value.
    pub fn parse(
        class: Option<&str>,
        country: Option<&str>,
        cidr: Option<&str>,
        text: Option<&str>,
    ) -> Result<Self, String> {
        let list = |s: Option<&str>| -> Option<Vec<String>> {
            let items: Vec<String> =
                s?.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect();
            (!items.is_empty()).then_some(items)
        };
        let classes = match list(class) {
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| Class::from_name(n).ok_or_else(|| format!("unknown class {:?}", sample(n, 40))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let countries = match list(country) {
            Some(codes) => {
                if let Some(bad) = codes.iter().find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
                {
                    return Err(format!("invalid country code {:?} (want two letters, e.g. DE)", sample(bad, 40)));
                }
                Some(codes.iter().map(|c| c.to_ascii_uppercase()).collect())
            }
            None => None,
        };
        let cidr = match cidr.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(parse_net(c).ok_or_else(|| format!("invalid CIDR {:?}", sample(c, 60)))?),
            None => None,
        };
        let text = match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) if t.len() > MAX_TEXT => return Err(format!("q must be at most {MAX_TEXT} bytes")),
            Some(t) => Some(t.to_lowercase()),
            None => None,
        };
        Ok(EventFilter { classes, countries, cidr, text, hosts: None })
    }

    /// The filter restricted to the comma-separated hosts in `host` (the
    /// `host` query parameter); none or empty: every host.
    pub fn with_hosts(mut self, host: Option<&str>) -> Result<Self, String> {
        let hosts: Vec<String> =
            host.unwrap_or("").split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_owned).collect();
        if hosts.len() > MAX_HOSTS || hosts.iter().any(|h| h.len() > 255) {
            return Err(format!("host: at most {MAX_HOSTS} names of at most 255 bytes"));
        }
        self.hosts = (!hosts.is_empty()).then_some(hosts);
        Ok(self)
    }

    pub fn matches(&self, e: &Event) -> bool {
        if let Some(hosts) = &self.hosts {
            if !e.host.as_deref().is_some_and(|h| hosts.iter().any(|w| w == h)) {
                return false;
            }
        }
        if let Some(classes) = &self.classes {
            if !classes.contains(&e.class) {
                return false;
            }
        }
        if let Some(countries) = &self.countries {
            let code = e.geo.as_ref().and_then(|g| g.country_code.as_deref());
            if !code.is_some_and(|c| countries.iter().any(|w| w.eq_ignore_ascii_case(c))) {
                return false;
            }
        }
        if let Some(net) = &self.cidr {
            if !net.contains(&e.src) {
                return false;
            }
        }
        if let Some(text) = &self.text {
            return haystack(e).contains(text.as_str());
        }
        true
    }
}

/// An address alone is a /32 or /128.
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

fn haystack(e: &Event) -> String {
    let mut s = format!("{} {} {} {} {}", e.src, e.dst, e.class.name(), e.detail, e.origin.label());
    if let Some(g) = &e.geo {
        for part in [&g.country_code, &g.country, &g.city].into_iter().flatten() {
            s.push(' ');
            s.push_str(part);
        }
        if let Some(org) = &g.as_org {
            s.push(' ');
            s.push_str(org);
        }
        if let Some(asn) = g.asn {
            s.push_str(&format!(" as{asn}"));
        }
    }
    s.to_lowercase()
}

/// At most `max` characters of client input, for error messages.
pub fn sample(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values_with_a_message() {
        assert!(EventFilter::parse(Some("icmp,nope"), None, None, None).unwrap_err().contains("nope"));
        assert!(EventFilter::parse(None, Some("Germany"), None, None).is_err());
        assert!(EventFilter::parse(None, None, Some("10.0.0.0/33"), None).is_err());
        assert!(EventFilter::parse(None, None, None, Some(&"x".repeat(500))).is_err());
        assert!(EventFilter::parse(Some("icmp"), Some("de"), Some("10.0.0.1"), Some("echo")).is_ok());
    }

    #[test]
    fn host_filter() {
        use std::sync::Arc;
        let mut e = Event::new(
            0,
            Class::Icmp,
            [192, 0, 2, 1].into(),
            [192, 0, 2, 2].into(),
            crate::model::Origin::Xdp { iface: Arc::from("e") },
            1,
            0,
        );
        e.host = Some(Arc::from("web-1"));
        let only = |h: &str| EventFilter::default().with_hosts(Some(h)).expect("valid");
        assert!(only("web-1").matches(&e) && only("db,web-1").matches(&e) && only("").matches(&e));
        assert!(!only("web-2").matches(&e));
        assert!(EventFilter::default().with_hosts(Some(&"h,".repeat(100))).is_err());
    }

    #[test]
    fn samples_are_short() {
        assert_eq!(sample("abc", 5), "abc");
        assert_eq!(sample("abcdef", 3), "abc…");
        assert_eq!(sample("ééééé", 2), "éé…");
    }
}
