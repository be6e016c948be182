//! Builds the kernel programs (monitor-ebpf) for the BPF target with the
//! nightly toolchain, so a plain `cargo build` builds everything.
use anyhow::{anyhow, Context as _};

fn main() -> anyhow::Result<()> {
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
    .context(
        "building the eBPF programs failed; run ./setup.sh to install the nightly \
         toolchain with rust-src and bpf-linker",
    )
}
