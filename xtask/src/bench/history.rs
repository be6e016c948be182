//! Section 7: the history store (SQLite) at the demo's shape: bytes on disk
//! per day and the cost of one minute's commit (`monitor-bench history`,
//! the daemon's own `monitor::history::Store`). Needs no root.

use std::process::Command;

use super::{
    guarded,
    report::{fix, int, Section, Table},
    sys::{self, num, Proc},
    Ctx,
};

/// A minute's commit should be a small fraction of the writer's minute.
const WRITE_TARGET_MS: f64 = 50.0;
/// A day of the demo's minutes, at most (minutes are kept 2 days, hours 30).
const DAY_TARGET_MB: f64 = 64.0;

pub(super) fn run(ctx: &Ctx) -> Section {
    let section = Section::new(7, "History store", ctx.command_for("history"));
    guarded(section, |s| {
        let minutes: u64 = if ctx.quick { 60 } else { 1440 };
        let mut cmd = Command::new(&ctx.bin_bench);
        cmd.args(["history", "--minutes", &minutes.to_string(), "--sources", "360"]);
        let out =
            Proc::spawn("monitor-bench history", &mut cmd, Some(&ctx.out_dir.join("history.log")))?.wait_output()?;
        let v = sys::last_json(&out)?;
        let mb_day = num(&v, "bytes_per_day") / 1e6;
        let p99_ms = num(&v, "write_us/p99") / 1e3;
        let mut t = Table::new(
            &format!(
                "{} minutes of the demo's shape (360 sources, the top 100 kept per minute, 40 countries, 150 networks){}",
                int(minutes as f64),
                if ctx.quick { ", debug build" } else { "" }
            ),
            &["figure", "value"],
        );
        t.row(vec!["file on disk per day (minutes + hours)".into(), format!("{} MB", fix(mb_day, 2))]);
        t.row(vec!["pages in use per day".into(), format!("{} MB", fix(num(&v, "used_bytes_per_day") / 1e6, 2))]);
        t.row(vec![
            "one minute's commit (+ retention), p50".into(),
            format!("{} ms", fix(num(&v, "write_us/p50") / 1e3, 2)),
        ]);
        t.row(vec!["one minute's commit (+ retention), p99".into(), format!("{} ms", fix(p99_ms, 2))]);
        t.row(vec![
            "one minute's commit (+ retention), max".into(),
            format!("{} ms", fix(num(&v, "write_us/max") / 1e3, 2)),
        ]);
        s.tables.push(t);
        s.note(
            "Per-minute rows are kept for 2 days and hours for --history-days, so the file settles near two days of \
             minutes plus the hours (about 1/60 of a day's minutes per day)."
                .to_owned(),
        );
        // The smoke run judges no targets (debug build, an hour's sample).
        let judge = |met: bool| (!ctx.quick).then_some(met);
        s.target(format!("≤ {WRITE_TARGET_MS} ms per minute's commit (p99)"), judge(p99_ms <= WRITE_TARGET_MS));
        s.target(format!("≤ {DAY_TARGET_MB} MB per day of minutes"), judge(mb_day <= DAY_TARGET_MB));
        Ok(())
    })
}
