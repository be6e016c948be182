//! The bounded fuzz run of the syslog line parser that `cargo xtask test`
//! includes (cargo-fuzz, libFuzzer, nightly), seeded with the golden lines
//! real rsyslog and the kernel produced.

use std::{path::Path, process::Command};

use anyhow::Context as _;

const TARGET: &str = "syslog_line";

pub fn run(root: &Path, seconds: u32) -> anyhow::Result<()> {
    let crate_dir = root.join("monitor-common");
    let corpus = root.join("target/fuzz/corpus").join(TARGET);
    std::fs::create_dir_all(&corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    let mut cmd = Command::new("cargo");
    // The rustup proxy picks the toolchain; drop what the outer (stable)
    // cargo exported so it cannot leak into the nightly build.
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.current_dir(&crate_dir)
        .args(["+nightly", "fuzz", "run", "--target-dir"])
        .arg(root.join("target/fuzz"))
        .arg(TARGET)
        .arg(&corpus)
        .arg(crate_dir.join("tests/golden"))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", root.join("target/fuzz").display()));
    crate::status(&mut cmd).context("the syslog parser fuzz run failed (is cargo-fuzz installed? ./setup.sh --tests)")
}
