//! `--syslog-prefix`: which iptables LOG prefixes are ours, and their class.

use monitor_common::Class;

/// A LOG prefix and the class its lines count as; `None` derives the class
/// from the logged packet (protocol and ports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: String,
    pub class: Option<Class>,
}

impl std::str::FromStr for PrefixRule {
    type Err = String;

    /// `PREFIX` or `PREFIX=class`, e.g. `IPT_HTTP =http`. The prefix is
    /// matched exactly as iptables' --log-prefix wrote it, trailing space
    /// included.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, class) = match s.rsplit_once('=') {
            Some((prefix, class)) => {
                let class = Class::from_name(class.trim())
                    .ok_or_else(|| format!("unknown class {class:?} in prefix rule {s:?}"))?;
                (prefix, Some(class))
            }
            None => (s, None),
        };
        if prefix.trim().is_empty() || prefix.len() > 29 {
            return Err(format!("LOG prefix {prefix:?} must be 1-29 characters (iptables' limit)"));
        }
        Ok(PrefixRule { prefix: prefix.to_owned(), class })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rules_parse_and_name_a_class() {
        let rule: PrefixRule = "IPT_HTTP =http".parse().expect("valid");
        assert_eq!(rule, PrefixRule { prefix: "IPT_HTTP ".into(), class: Some(Class::Http) });
        let rule: PrefixRule = "IPT_ICMP ".parse().expect("valid");
        assert_eq!(rule, PrefixRule { prefix: "IPT_ICMP ".into(), class: None });
        for bad in ["X=nonsense", "", "  =http", &"P".repeat(30)] {
            assert!(bad.parse::<PrefixRule>().is_err(), "{bad:?} must be refused");
        }
    }
}
