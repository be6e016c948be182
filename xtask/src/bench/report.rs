//! The report: markdown tables per section, printed as each section ends
//! and written whole to a file at the end.

use std::fmt::Write as _;

#[derive(Default)]
pub(crate) struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: &str, headers: &[&str]) -> Table {
        Table { title: title.to_owned(), headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        if !self.title.is_empty() {
            let _ = writeln!(out, "**{}**\n", self.title);
        }
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .chain([&self.headers[i]])
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(3)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut l = String::from("|");
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count().min(*w);
                let _ = write!(l, " {c}{} |", " ".repeat(pad));
            }
            l
        };
        let _ = writeln!(out, "{}", line(&self.headers));
        let _ = writeln!(out, "|{}", widths.iter().map(|w| format!("{}|", "-".repeat(w + 2))).collect::<String>());
        for r in &self.rows {
            let _ = writeln!(out, "{}", line(r));
        }
        out
    }
}

#[derive(Default)]
pub(crate) struct Section {
    pub number: u32,
    pub title: String,
    /// How to reproduce this section alone.
    pub command: String,
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
    /// Target checks: (what, met).
    pub targets: Vec<(String, Option<bool>)>,
    pub error: Option<String>,
    pub seconds: f64,
}

impl Section {
    pub(crate) fn new(number: u32, title: &str, command: String) -> Section {
        Section { number, title: title.to_owned(), command, ..Section::default() }
    }

    pub(crate) fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// Records a target check: PASS / MISS (None: not measurable in this run).
    pub(crate) fn target(&mut self, what: impl Into<String>, met: Option<bool>) {
        self.targets.push((what.into(), met));
    }

    /// A performance target: not judged in a smoke run (tiny sizes, debug build).
    pub(crate) fn perf_target(&mut self, quick: bool, what: impl Into<String>, met: Option<bool>) {
        self.targets.push((what.into(), if quick { None } else { met }));
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## {}. {}\n", self.number, self.title);
        let _ = writeln!(out, "Command: `{}` ({:.0} s)\n", self.command, self.seconds);
        for t in &self.tables {
            let _ = writeln!(out, "{}", t.markdown());
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "Targets:\n");
            for (what, met) in &self.targets {
                let verdict = match met {
                    Some(true) => "PASS",
                    Some(false) => "MISS",
                    None => "n/a",
                };
                let _ = writeln!(out, "- **{verdict}** {what}");
            }
            out.push('\n');
        }
        if !self.notes.is_empty() {
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
            out.push('\n');
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "**ERROR**: {e}\n");
        }
        out
    }
}

/// Number formatting for the tables.
pub(super) fn int(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let s = format!("{:.0}", x.round().abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < -0.5 {
        format!("-{out}")
    } else {
        out
    }
}

pub(super) fn fix(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "-".into()
    }
}

/// 1234567 -> "1.23M", 45600 -> "45.6k".
pub(super) fn si(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x.abs() >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

pub(super) fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.2}%", 100.0 * part / whole)
    } else {
        "-".into()
    }
}
