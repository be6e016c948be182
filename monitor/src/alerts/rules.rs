//! The rules file (`--alert-rules`): YAML in the shape of a Prometheus rule
//! group, with a typed `kind` and its `params` in place of a PromQL `expr`.
//!
//! ```yaml
//! groups:
//!   - name: monitor
//!     rules:
//!       - alert: IcmpFlood
//!         kind: icmp_flood
//!         params: { packets_per_s: 1000, scope: per_source, window: 10s }
//!         for: 30s
//!         labels: { severity: warning }
//!         annotations: { summary: "ICMP flood from {{ $labels.source }}" }
//! ```
//!
//! Every error names the line: YAML and type errors as the YAML parser
//! reports them, the rest by the line of the rule's `alert:` key.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;
use thiserror::Error;

use super::{
    duration::Duration, http_availability::HttpParams, icmp_flood::FloodParams, new_origin::OriginParams,
    ping_sweep::SweepParams, pipeline::PipelineParams, template,
};

/// The rules shipped with the daemon, used when no file is given.
pub const DEFAULT_RULES: &str = include_str!("../../../docs/alert-rules.yaml");
/// The name errors give the shipped rules.
pub const DEFAULT_RULES_NAME: &str = "docs/alert-rules.yaml (built in)";

/// Rules in a file at most: each is evaluated every second.
pub const RULES_MAX: usize = 200;
/// Labels and annotations per rule at most.
const LABELS_MAX: usize = 32;

#[derive(Debug, Error)]
pub enum RulesError {
    #[error("cannot read alert rules file {path}")]
    Read {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("alert rules {path}")]
    Yaml {
        path: String,
        #[source]
        cause: serde_yaml::Error,
    },
    #[error("alert rules {path}: line {line}: rule {rule:?}: {message}")]
    Invalid { path: String, line: usize, rule: String, message: String },
    #[error("alert rules {path}: {message}")]
    File { path: String, message: String },
}

/// A rule, validated.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `alert`: the `alertname` label.
    pub name: String,
    pub kind: RuleKind,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Line of its `alert:` key in the file.
    pub line: usize,
}

/// What a rule watches, with its parameters.
#[derive(Clone, Debug)]
pub enum RuleKind {
    IcmpFlood(FloodParams),
    PingSweep(SweepParams),
    NewOrigin(OriginParams),
    HttpAvailability(HttpParams),
    Pipeline(PipelineParams),
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::IcmpFlood(_) => "icmp_flood",
            RuleKind::PingSweep(_) => "ping_sweep",
            RuleKind::NewOrigin(_) => "new_origin",
            RuleKind::HttpAvailability(_) => "http_availability",
            RuleKind::Pipeline(_) => "pipeline",
        }
    }

    /// The labels each alert of this kind adds (the instance it is about).
    fn instance_labels(&self) -> &'static [&'static str] {
        match self {
            RuleKind::IcmpFlood(_) | RuleKind::PingSweep(_) => &["source"],
            RuleKind::NewOrigin(_) => &["country", "asn"],
            RuleKind::HttpAvailability(_) | RuleKind::Pipeline(_) => &["measure"],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[expect(dead_code, reason = "a group's name is for the reader; alerts are named by `alert`")]
    name: String,
    rules: Vec<RawRule>,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "snake_case")]
enum Kind {
    IcmpFlood,
    PingSweep,
    NewOrigin,
    HttpAvailability,
    Pipeline,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: String,
    kind: Kind,
    #[serde(default)]
    params: serde_yaml::Value,
    #[serde(rename = "for", default)]
    for_: Duration,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The rules in `path`, or the shipped ones when there is none.
pub fn load(path: Option<&Path>) -> Result<Vec<Rule>, RulesError> {
    match path {
        None => parse(DEFAULT_RULES, DEFAULT_RULES_NAME),
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|cause| RulesError::Read { path: name.clone(), cause })?;
            parse(&text, &name)
        }
    }
}

/// Parses and validates a rules file's text; `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Vec<Rule>, RulesError> {
    let raw: RawFile = serde_yaml::from_str(text).map_err(|cause| RulesError::Yaml { path: path.to_owned(), cause })?;
    let lines = alert_lines(text);
    let mut rules = Vec::new();
    for (i, raw) in raw.groups.into_iter().flat_map(|g| g.rules).enumerate() {
        let line = lines.get(i).copied().unwrap_or(0);
        let invalid =
            |message: String| RulesError::Invalid { path: path.to_owned(), line, rule: raw.alert.clone(), message };
        let rule = validate(&raw, line).map_err(invalid)?;
        if rules.iter().any(|r: &Rule| r.name == rule.name) {
            return Err(invalid("another rule has this name".into()));
        }
        rules.push(rule);
    }
    if rules.len() > RULES_MAX {
        return Err(RulesError::File { path: path.to_owned(), message: format!("more than {RULES_MAX} rules") });
    }
    Ok(rules)
}

fn validate(raw: &RawRule, line: usize) -> Result<Rule, String> {
    if !is_label_name(&raw.alert) {
        return Err("`alert` must be a name of letters, digits and _ (not starting with a digit)".into());
    }
    let params = |v: &serde_yaml::Value| -> serde_yaml::Value {
        if v.is_null() {
            serde_yaml::Value::Mapping(serde_yaml::Mapping::new())
        } else {
            v.clone()
        }
    };
    fn typed<T: serde::de::DeserializeOwned>(v: serde_yaml::Value) -> Result<T, String> {
        serde_yaml::from_value(v).map_err(|e| format!("params: {e}"))
    }
    let p = params(&raw.params);
    let kind = match raw.kind {
        Kind::IcmpFlood => RuleKind::IcmpFlood(typed::<FloodParams>(p)?.validated()?),
        Kind::PingSweep => RuleKind::PingSweep(typed::<SweepParams>(p)?.validated()?),
        Kind::NewOrigin => RuleKind::NewOrigin(typed::<OriginParams>(p)?.validated()?),
        Kind::HttpAvailability => RuleKind::HttpAvailability(typed::<HttpParams>(p)?.validated()?),
        Kind::Pipeline => RuleKind::Pipeline(typed::<PipelineParams>(p)?.validated()?),
    };
    if raw.for_ > Duration::secs(86_400) {
        return Err("`for` is at most 1d".into());
    }
    if raw.labels.len() + raw.annotations.len() > LABELS_MAX {
        return Err(format!("more than {LABELS_MAX} labels and annotations"));
    }
    for name in raw.labels.keys() {
        if !is_label_name(name) || name.starts_with("__") {
            return Err(format!("label {name:?} is not a valid label name"));
        }
        if name == "alertname" || kind.instance_labels().contains(&name.as_str()) {
            return Err(format!("label {name:?} is set by the rule itself"));
        }
    }
    for (name, text) in &raw.annotations {
        if !is_label_name(name) {
            return Err(format!("annotation {name:?} is not a valid name"));
        }
        template::check(text).map_err(|e| format!("annotation {name}: {e}"))?;
    }
    Ok(Rule {
        name: raw.alert.clone(),
        kind,
        for_: raw.for_,
        labels: raw.labels.clone(),
        annotations: raw.annotations.clone(),
        line,
    })
}

/// Prometheus's label name syntax: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
}

/// The 1-based line of each rule's `alert:` key, in file order: rules are
/// read in that order, so the n-th rule is on the n-th such line.
fn alert_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start().trim_start_matches('-').trim_start();
            l.strip_prefix("alert").is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error as the daemon prints it: with its causes.
    fn error(text: &str) -> String {
        let e = parse(text, "test.yaml").expect_err("refused");
        format!("{:#}", anyhow::Error::from(e))
    }

    #[test]
    fn the_shipped_rules_are_valid() {
        let rules = load(None).expect("shipped rules");
        let kinds: Vec<_> = rules.iter().map(|r| r.kind.name()).collect();
        for kind in ["icmp_flood", "ping_sweep", "new_origin", "http_availability", "pipeline"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
    }

    #[test]
    fn a_rule_is_read_with_its_parameters() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: Flood\n    kind: icmp_flood\n    for: 5s\n    params: {packets_per_s: 50, scope: all}\n    labels: {severity: page}\n    annotations: {summary: 'at {{ $value }}'}\n";
        let rules = parse(text, "t").expect("valid");
        assert_eq!(rules[0].name, "Flood");
        assert_eq!(rules[0].for_, Duration::secs(5));
        assert_eq!(rules[0].line, 4);
        let RuleKind::IcmpFlood(p) = &rules[0].kind else { panic!("kind") };
        assert_eq!(p.packets_per_s, 50.0);
    }

    #[test]
    fn errors_name_the_line() {
        let head = "groups:\n- name: g\n  rules:\n  - alert: A\n    kind: pipeline\n    params: {measure: ring_full}\n";
        let e = error(&format!("{head}  - alert: B\n    kind: icmp_flood\n    params: {{packets_per_sec: 5}}\n"));
        assert!(e.contains("line 7") && e.contains("\"B\"") && e.contains("packets_per_sec"), "{e}");
        let e = error(&format!("{head}  - alert: C\n    kind: icmp_floods\n"));
        assert!(e.contains("line 8") && e.contains("icmp_floods"), "{e}");
        let e = error(&format!("{head}  - alert: D\n    kind: icmp_flood\n    params: {{packets_per_s: -1}}\n"));
        assert!(e.contains("line 7") && e.contains("packets_per_s"), "{e}");
        let e = error(&format!("{head}  - alert: A\n    kind: pipeline\n    params: {{measure: queue_full}}\n"));
        assert!(e.contains("line 7") && e.contains("another rule"), "{e}");
        let e = error(&format!("{head}    for: soon\n"));
        assert!(e.contains("line 4") && e.contains("invalid duration"), "{e}");
        let e = error(&format!("{head}    labels: {{alertname: x}}\n"));
        assert!(e.contains("line 4") && e.contains("alertname"), "{e}");
        let e = error(&format!("{head}    annotations: {{s: '{{{{ $nope }}}}'}}\n"));
        assert!(e.contains("line 4") && e.contains("$nope"), "{e}");
        let e = error("groups:\n- name: g\n  rules:\n  - alert: A\n    kind: pipeline\n   bad indent: [\n");
        assert!(e.contains("line"), "{e}");
    }
}
