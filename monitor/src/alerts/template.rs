//! Annotation templates: the two forms Prometheus rules use most,
//! `{{ $labels.NAME }}` and `{{ $value }}`; any other `{{ }}` is refused
//! when the rules are loaded.

use std::collections::BTreeMap;

enum Part<'a> {
    Text(&'a str),
    Value,
    Label(&'a str),
}

fn parts(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push(Part::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| "`{{` without `}}`".to_owned())?;
        let expr = after[..close].trim();
        out.push(match expr.strip_prefix("$labels.") {
            Some(name) => Part::Label(name),
            None if expr == "$value" => Part::Value,
            None => return Err(format!("unsupported template {{{{ {expr} }}}}: use $value or $labels.NAME")),
        });
        rest = &after[close + 2..];
    }
    out.push(Part::Text(rest));
    Ok(out)
}

/// Whether `text` is a template this renderer understands.
pub fn check(text: &str) -> Result<(), String> {
    parts(text).map(drop)
}

/// `text` with its labels and value filled in.
pub fn render(text: &str, labels: &BTreeMap<String, String>, value: f64) -> String {
    let Ok(parts) = parts(text) else { return text.to_owned() };
    let mut out = String::with_capacity(text.len());
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Label(name) => out.push_str(labels.get(name).map_or("", String::as_str)),
            Part::Value => out.push_str(&format_value(value)),
        }
    }
    out
}

/// A value the way a person reads it: integers without decimals.
pub fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}").trim_end_matches('0').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_labels_and_value() {
        let labels = [("source".to_owned(), "192.0.2.1".to_owned())].into_iter().collect();
        assert_eq!(render("{{ $labels.source }} at {{$value}}/s", &labels, 12.0), "192.0.2.1 at 12/s");
        assert_eq!(render("{{ $labels.nope }}{{ $value }}", &labels, 0.25), "0.25");
        assert!(check("{{ $labels.x }} {{ $value }}").is_ok());
        assert!(check("{{ humanize $value }}").is_err());
        assert!(check("{{ $value").is_err());
    }
}
