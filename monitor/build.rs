//! Builds the kernel programs (monitor-ebpf) for the BPF target with the
//! nightly toolchain, so a plain `cargo build` builds everything.
//!
//! aya-build forwards every line the inner cargo prints ("Compiling core",
//! "Finished", ...) as `cargo:warning=`, which cargo then shows as dozens of
//! warnings on every build of the kernel programs. So this script runs
//! aya-build in a child copy of itself and passes its output on filtered:
//! cargo's progress lines only when the build failed, everything else
//! (rustc's own warnings and errors, and every other `cargo:` directive)
//! always.
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context as _};

/// Set in the child copy of this script, which does the actual build.
const INNER: &str = "MONITOR_BUILD_EBPF_INNER";

fn main() -> anyhow::Result<()> {
    if std::env::var_os(INNER).is_some() {
        return build_ebpf();
    }
    let me = std::env::current_exe().context("locating the build script")?;
    let out = Command::new(&me)
        .env(INNER, "1")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", me.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let progress = line.strip_prefix("cargo:warning=").is_some_and(is_cargo_progress);
        if !progress || !out.status.success() {
            println!("{line}");
        }
    }
    if !out.status.success() {
        return Err(anyhow!(
            "building the eBPF programs failed (the inner cargo's output is above, as warnings); run \
             ./setup.sh to install the nightly toolchain with rust-src and bpf-linker"
        ));
    }
    Ok(())
}

/// Cargo's own status lines: right-aligned verbs such as "   Compiling x"
/// and "    Finished `release` profile".
fn is_cargo_progress(line: &str) -> bool {
    const VERBS: [&str; 12] = [
        "Compiling",
        "Finished",
        "Fresh",
        "Checking",
        "Updating",
        "Locking",
        "Adding",
        "Downloading",
        "Downloaded",
        "Blocking",
        "Building",
        "Running",
    ];
    let verb = line.trim_start().split(' ').next().unwrap_or("");
    line.starts_with(' ') && VERBS.contains(&verb)
}

fn build_ebpf() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("monitor crate has no parent directory"))?
        .join("monitor-ebpf");
    let root = root.to_str().context("non-UTF-8 path to monitor-ebpf")?;
    println!("cargo:rerun-if-changed=../monitor-common/src");
    aya_build::build_ebpf(
        [aya_build::Package { name: "monitor-ebpf", root_dir: root, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF programs failed")
}
