//! Reads the guest's serial console (the markers init.sh prints), checks the
//! end-to-end step's JSON, and renders the per-kernel table.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use serde_json::Value;

/// One guest step: its output and how it ended.
#[derive(Debug, Default)]
pub(super) struct Step {
    pub name: String,
    pub output: Vec<String>,
    /// None: the step never ended (the guest died or timed out in it).
    pub rc: Option<i32>,
    pub ms: Option<u64>,
}

/// One `check-kernel program=... insns=... load_ms=... status=...` line.
#[derive(Debug, Clone, Default)]
pub(super) struct ProgramCheck {
    pub program: String,
    pub insns: String,
    pub load_ms: String,
    pub status: String,
}

#[derive(Debug, Default)]
pub(super) struct Run {
    /// `uname -r` in the guest.
    pub kernel: String,
    /// The guest's uptime when init started: the kernel's own boot time.
    pub init_uptime_ms: Option<u64>,
    pub done_uptime_ms: Option<u64>,
    pub steps: Vec<Step>,
    /// `@@kmx json NAME {...}` lines.
    pub json: BTreeMap<String, String>,
    /// Console lines outside any step (kernel messages, panics).
    pub other: Vec<String>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// `line` without ANSI escape sequences (CSI ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

pub(super) fn parse(console: &[String]) -> Run {
    let mut run = Run::default();
    let mut current: Option<Step> = None;
    for line in console {
        let line = &strip_ansi(line);
        let Some(marker) = line.find("@@kmx ").map(|i| &line[i + 6..]) else {
            match current.as_mut() {
                Some(step) => step.output.push(line.to_owned()),
                None => run.other.push(line.to_owned()),
            }
            continue;
        };
        let mut words = marker.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("init"), ..) => {
                run.init_uptime_ms = field(marker, "uptime_ms").and_then(|v| v.parse().ok());
                run.kernel = field(marker, "kernel").unwrap_or_default().to_owned();
            }
            (Some("begin"), Some(name), _) => {
                run.steps.extend(current.take());
                current = Some(Step { name: name.to_owned(), ..Step::default() });
            }
            (Some("end"), Some(name), rest) => {
                let mut step = current.take().unwrap_or_else(|| Step { name: name.to_owned(), ..Step::default() });
                let rest = rest.unwrap_or("");
                step.rc = field(rest, "rc").and_then(|v| v.parse().ok());
                step.ms = field(rest, "ms").and_then(|v| v.parse().ok());
                run.steps.push(step);
            }
            (Some("json"), Some(name), body) => {
                run.json.insert(name.to_owned(), body.unwrap_or("").to_owned());
            }
            (Some("done"), ..) => run.done_uptime_ms = field(marker, "uptime_ms").and_then(|v| v.parse().ok()),
            _ => run.other.push(line.to_owned()),
        }
    }
    run.steps.extend(current);
    run
}

impl Run {
    pub(super) fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The `check-kernel` lines of the check_kernel step.
    pub(super) fn program_checks(&self) -> Vec<ProgramCheck> {
        let Some(step) = self.step("check_kernel") else { return Vec::new() };
        step.output
            .iter()
            .filter_map(|l| l.find("check-kernel ").map(|i| &l[i..]))
            .filter(|l| field(l, "program").is_some())
            .map(|l| ProgramCheck {
                program: field(l, "program").unwrap_or("?").to_owned(),
                insns: field(l, "insns").unwrap_or("?").to_owned(),
                load_ms: field(l, "load_ms").unwrap_or("?").to_owned(),
                status: field(l, "status").unwrap_or("?").to_owned(),
            })
            .collect()
    }

    /// The instruction budget `monitor --check-kernel` checks against.
    pub(super) fn insn_budget(&self) -> Option<String> {
        let step = self.step("check_kernel")?;
        step.output.iter().filter(|l| l.contains("check-kernel ")).find_map(|l| field(l, "budget")).map(str::to_owned)
    }

    /// The daemon does not know `--check-kernel` yet (clap's message).
    pub(super) fn check_kernel_missing(&self) -> bool {
        self.step("check_kernel").is_some_and(|s| {
            s.output
                .iter()
                .any(|l| l.contains("unexpected argument '--check-kernel'") || l.contains("--check-kernel' found"))
        })
    }
}

/// What the end-to-end step's JSON must show: the three pings each way
/// counted exactly, the one GET seen with its request line, and its
/// response matched and timed by the TC egress program.
pub(super) fn check_e2e(run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let parse = |name: &str| -> Option<Value> { run.json.get(name).and_then(|t| serde_json::from_str(t.trim()).ok()) };
    let (Some(stats), Some(http), Some(events)) = (parse("stats"), parse("http"), parse("events")) else {
        problems.push("the guest printed no (or invalid) /api/stats, /api/http or /api/events JSON".to_owned());
        return problems;
    };
    let packets = |class: &str| stats["kernel"]["classes"][class]["packets"].as_u64().unwrap_or(0);
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    expect(packets("icmp") == 3, format!("kernel icmp packets: {} (want exactly 3 echo requests)", packets("icmp")));
    expect(
        packets("icmpv6") >= 3,
        format!("kernel icmpv6 packets: {} (want >= 3: echo requests plus ND)", packets("icmpv6")),
    );
    expect(packets("http") >= 3, format!("kernel http packets: {} (want >= 3: SYN, request, ACKs)", packets("http")));
    let events = events["events"].as_array().cloned().unwrap_or_default();
    let echo = |src: &str, icmp_type: u64| {
        events
            .iter()
            .filter(|e| e["src"] == src && e["icmp"]["type"] == icmp_type && e.get("response").is_none())
            .count()
    };
    expect(echo("198.18.0.1", 8) == 3, format!("echo request events v4: {} (want 3)", echo("198.18.0.1", 8)));
    expect(echo("fd6d:6f6e::1", 128) == 3, format!("echo request events v6: {} (want 3)", echo("fd6d:6f6e::1", 128)));
    let gets: Vec<&Value> =
        events.iter().filter(|e| e["http"]["method"] == "GET" && e.get("response").is_none()).collect();
    expect(gets.len() == 1, format!("GET request events: {} (want 1)", gets.len()));
    if let Some(get) = gets.first() {
        expect(get["http"]["target"] == "/hello.txt", format!("GET target: {}", get["http"]["target"]));
    }
    let k = &http["kernel"];
    let n = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    expect(http["enabled"] == true, format!("HTTP timing not enabled: {}", http["errors"]));
    expect(n(&k["requests_recorded"]) == 1, format!("http requests_recorded: {} (want 1)", k["requests_recorded"]));
    expect(n(&k["responses_matched"]) == 1, format!("http responses_matched: {} (want 1)", k["responses_matched"]));
    expect(
        n(&http["since_start"]["status"]["2xx"]) == 1,
        format!("2xx responses: {} (want 1)", http["since_start"]["status"]["2xx"]),
    );
    let responses: Vec<&Value> = events.iter().filter(|e| e["response"].is_object()).collect();
    expect(responses.len() == 1, format!("response events: {} (want 1)", responses.len()));
    if let Some(r) = responses.first() {
        expect(r["response"]["status"] == 200, format!("response status: {}", r["response"]["status"]));
        expect(r["response"]["latency_ms"].as_f64().is_some(), format!("response latency: {}", r["response"]));
    }
    problems
}

/// The end of a verifier log in a `VerifierRejected { log: "..." }` debug
/// string (one line, `\n` escaped): where the verifier gave up and why.
fn verifier_tail(line: &str, n: usize) -> Option<Vec<String>> {
    let log = &line[line.find("log: \"")? + 6..];
    let log = log.trim_end().trim_end_matches('}').trim_end().trim_end_matches('"');
    let lines: Vec<String> = log
        .split("\\n")
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("    {}", l.replace("\\\"", "\"").replace("\\\\", "\\")))
        .collect();
    Some(lines[lines.len().saturating_sub(n)..].to_vec())
}

/// The `reason: "..."` and `hint: "..."` of a refused program's error
/// (monitor's VerifierRejected), one line each.
fn verifier_reason(line: &str) -> Option<Vec<String>> {
    let quoted = |key: &str| {
        let start = line.find(key)? + key.len();
        let rest = &line[start..];
        let mut end = rest.len();
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        Some(rest[..end].replace("\\\"", "\"").replace("\\n", " | "))
    };
    let reason = quoted("reason: \"")?;
    let mut out = vec![format!("  the verifier's reason: {reason}")];
    out.extend(quoted("hint: \"").map(|h| format!("  hint: {h}")));
    Some(out)
}

/// At most `max` characters of `line`.
fn clip(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}[... {} more bytes]", &line[..i], line.len() - i),
        None => line.to_owned(),
    }
}

/// The lines of a failed step worth showing: verifier and panic lines
/// first, then the end of the output; a verifier log is cut to its last
/// lines (the reason for the rejection), long lines are clipped.
pub(super) fn excerpt(output: &[String], tail: usize) -> Vec<String> {
    excerpt_lines(output, tail)
        .into_iter()
        .flat_map(|l| {
            if let Some(reason) = verifier_reason(&l) {
                let mut v = vec![clip(&l, 200)];
                v.extend(reason);
                v
            } else if let Some(end) = verifier_tail(&l, 10) {
                let mut v = vec![clip(&l, 200), "  the verifier log ends with:".to_owned()];
                v.extend(end);
                v
            } else {
                vec![clip(&l, 400)]
            }
        })
        .collect()
}

fn excerpt_lines(output: &[String], tail: usize) -> Vec<String> {
    let interesting = |l: &str| {
        let l = l.to_ascii_lowercase();
        ["verifier", "invalid", "unknown func", "too large", "processed ", "panicked", "error", "failed", "---- "]
            .iter()
            .any(|k| l.contains(k))
    };
    let start = output.len().saturating_sub(tail);
    let mut out: Vec<String> = output[..start].iter().filter(|l| interesting(l)).take(40).cloned().collect();
    if !out.is_empty() {
        out.push(format!("[... {} lines of output; its end:]", output.len()));
    }
    out.extend(output[start..].iter().cloned());
    out
}

/// One kernel's result, for the table.
pub(super) struct Summary {
    pub series: String,
    pub package: String,
    pub kernel: String,
    pub boot: Option<Duration>,
    pub kernel_boot_ms: Option<u64>,
    pub total: Duration,
    pub steps: Vec<(String, Option<i32>, Option<u64>)>,
    pub programs: Vec<ProgramCheck>,
    pub check_kernel_note: Option<String>,
    pub budget: Option<String>,
    pub failures: Vec<String>,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// The markdown table (target/kernel-matrix.md), also printed at the end.
pub(super) fn markdown(summaries: &[Summary], date: &str, setup: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Kernel matrix ({date}; `cargo xtask kernels`: {setup})\n");
    if let Some(budget) = summaries.iter().find_map(|k| k.budget.clone()) {
        let _ = writeln!(s, "`monitor --check-kernel`: processed instructions against a budget of {budget}.\n");
    }
    let _ = writeln!(s, "| Kernel | Program | Processed insns | Load time | Status |");
    let _ = writeln!(s, "|---|---|---:|---:|---|");
    for k in summaries {
        if k.programs.is_empty() {
            let why = k.check_kernel_note.clone().unwrap_or_else(|| "no check-kernel output".into());
            let _ = writeln!(s, "| {} | - | - | - | {why} |", k.kernel);
        }
        for p in &k.programs {
            let _ = writeln!(s, "| {} | {} | {} | {} ms | {} |", k.kernel, p.program, p.insns, p.load_ms, p.status);
        }
    }
    let _ = writeln!(s, "\n| Kernel | Package | Boot to init | Kernel boot | Steps (guest time) | Total | Result |");
    let _ = writeln!(s, "|---|---|---:|---:|---|---:|---|");
    for k in summaries {
        let steps: Vec<String> = k
            .steps
            .iter()
            .map(|(name, rc, t)| {
                let mark = if *rc == Some(0) { "" } else { " ✗" };
                format!("{name} {}{mark}", t.map_or("-".into(), |t| format!("{:.1} s", t as f64 / 1000.0)))
            })
            .collect();
        let result = if k.failures.is_empty() { "pass".to_owned() } else { format!("FAIL ({})", k.failures.len()) };
        let _ = writeln!(
            s,
            "| {} ({}) | {} | {} | {} | {} | {} | {result} |",
            k.kernel,
            k.series,
            k.package,
            ms(k.boot),
            k.kernel_boot_ms.map_or("-".into(), |t| format!("{:.1} s", t as f64 / 1000.0)),
            steps.join(", "),
            ms(Some(k.total)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn console_markers() {
        let console = lines(
            "[    0.5] kernel says hi\n@@kmx init uptime_ms=2310 kernel=6.1.0-57-cloud-amd64 cpus=2\n\
             @@kmx begin modules\n@@kmx end modules rc=0 ms=40\n@@kmx begin xdp_test_run\nrunning 3 tests\n\
             test a ... FAILED\n@@kmx end xdp_test_run rc=101 ms=5000\n@@kmx begin check_kernel\n\
             check-kernel program=monitor_xdp insns=12345 load_ms=87 status=ok\n@@kmx end check_kernel rc=0 ms=90\n\
             @@kmx begin e2e\n@@kmx json stats {\"a\":1}\n",
        );
        let run = parse(&console);
        assert_eq!(run.kernel, "6.1.0-57-cloud-amd64");
        assert_eq!(run.init_uptime_ms, Some(2310));
        assert_eq!(run.steps.len(), 4);
        let xdp = run.step("xdp_test_run").expect("step");
        assert_eq!((xdp.rc, xdp.ms), (Some(101), Some(5000)));
        assert_eq!(xdp.output, ["running 3 tests", "test a ... FAILED"]);
        assert_eq!(run.step("e2e").map(|s| s.rc), Some(None), "never ended");
        assert_eq!(run.json["stats"], "{\"a\":1}");
        let checks = run.program_checks();
        assert_eq!((checks[0].program.as_str(), checks[0].insns.as_str()), ("monitor_xdp", "12345"));
        assert_eq!(run.done_uptime_ms, None);
        assert!(!run.check_kernel_missing());
        assert!(check_e2e(&run).iter().any(|p| p.contains("no (or invalid)")));
    }

    #[test]
    fn verifier_log_end() {
        let line = "loading: VerifierRejected { log: \"0: (7b) r1 = r2\\n241: (85) call unknown#160\\ninvalid func unknown#160\\nprocessed 535 insns (limit 1000000)\\n\" }";
        let e = excerpt(&[line.to_owned()], 5);
        assert!(e.contains(&"    invalid func unknown#160".to_owned()), "{e:?}");
        assert!(e.contains(&"    processed 535 insns (limit 1000000)".to_owned()), "{e:?}");
        let line = "panicked: VerifierRejected { program: \"monitor_xdp\", kernel: \"6.1\", reason: \"978: (0f) r1 += r2 | math between pkt pointer\", hint: \"This kernel's verifier \\\"could not\\\" prove\", log_file: None }";
        let e = excerpt(&[line.to_owned()], 5);
        assert_eq!(e[1], "  the verifier's reason: 978: (0f) r1 += r2 | math between pkt pointer", "{e:?}");
        assert_eq!(e[2], "  hint: This kernel's verifier \"could not\" prove", "{e:?}");
        assert_eq!(strip_ansi("\u{1b}[1m\u{1b}[31merror:\u{1b}[0m unexpected"), "error: unexpected");
    }

    #[test]
    fn e2e_counts_are_exact() {
        let mut events = vec![];
        for (src, t) in [("198.18.0.1", 8), ("fd6d:6f6e::1", 128)] {
            for seq in 0..3 {
                events.push(serde_json::json!({"src": src, "icmp": {"type": t, "seq": seq}}));
            }
        }
        events.push(serde_json::json!({"class": "http", "http": {"method": "GET", "target": "/hello.txt"}}));
        events.push(serde_json::json!({"class": "http", "http": {"method": "GET"}, "response": {"status": 200, "latency_ms": 12.5}}));
        let stats = |icmp: u64| serde_json::json!({"kernel": {"classes": {"icmp": {"packets": icmp}, "icmpv6": {"packets": 6}, "http": {"packets": 5}}}});
        let http = serde_json::json!({"enabled": true, "kernel": {"requests_recorded": 1, "responses_matched": 1},
            "since_start": {"status": {"2xx": 1}}});
        let mut run = Run::default();
        run.json.insert("stats".into(), stats(3).to_string());
        run.json.insert("http".into(), http.to_string());
        run.json.insert("events".into(), serde_json::json!({ "events": events }).to_string());
        assert_eq!(check_e2e(&run), Vec::<String>::new());
        run.json.insert("stats".into(), stats(4).to_string());
        assert_eq!(check_e2e(&run), ["kernel icmp packets: 4 (want exactly 3 echo requests)"]);
    }

    #[test]
    fn excerpt_keeps_verifier_lines() {
        let mut out: Vec<String> = (0..500).map(|i| format!("{i}: r1 = r2")).collect();
        out[3] = "BPF program is too large. processed 1000001 insn".into();
        let e = excerpt(&out, 10);
        assert_eq!(e[0], out[3]);
        assert_eq!(e.len(), 12);
    }
}
