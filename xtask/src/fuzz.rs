//! The bounded fuzz runs that `cargo xtask test` includes (cargo-fuzz,
//! libFuzzer, nightly): every parser in monitor-common that reads bytes from
//! the network, each for the given time, seeded with real inputs (the golden
//! syslog lines real rsyslog and the kernel produced; a curl ClientHello
//! (whole, and cut into segments for the reassembler),
//! request lines and netfilter LOG fields under monitor-common/fuzz/seeds).

use std::{path::Path, process::Command};

use anyhow::Context as _;

/// Each target and its seed directory, relative to monitor-common.
const TARGETS: &[(&str, &str)] = &[
    ("syslog_line", "tests/golden"),
    ("tls_client_hello", "fuzz/seeds/tls_client_hello"),
    ("tls_hello_reassembly", "fuzz/seeds/tls_hello_reassembly"),
    ("http_request_line", "fuzz/seeds/http_request_line"),
    ("netfilter_fields", "fuzz/seeds/netfilter_fields"),
];

/// Fuzzes every target for `seconds` each.
pub(crate) fn run(root: &Path, seconds: u32) -> anyhow::Result<()> {
    for (target, seeds) in TARGETS {
        run_target(root, target, seeds, seconds)?;
    }
    Ok(())
}

fn run_target(root: &Path, target: &str, seeds: &str, seconds: u32) -> anyhow::Result<()> {
    let crate_dir = root.join("monitor-common");
    let corpus = root.join("target/fuzz/corpus").join(target);
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
        .arg(target)
        .arg(&corpus)
        .arg(crate_dir.join(seeds))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/{target}-", root.join("target/fuzz").display()));
    crate::status(&mut cmd)
        .with_context(|| format!("the {target} fuzz run failed (is cargo-fuzz installed? ./setup.sh --tests)"))
}
