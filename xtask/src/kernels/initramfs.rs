//! The guest's initramfs (cpio newc, uncompressed): busybox, the guest
//! scripts (guest/; init.sh is /init), the test binaries and the daemon
//! (debug info stripped), iproute2's `ip` (busybox's has no netns), every
//! shared library they load (from ldd), and the kernel modules the tests
//! need with their dependencies, decompressed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, ensure, Context as _};

use super::debian::Kernel;

/// Modules the guest loads (in dependency order, with what they depend on):
/// veth for the end-to-end check, sch_ingress for the clsact qdisc and
/// cls_bpf for the TC egress program.
pub(super) const MODULES: &[&str] = &["veth", "sch_ingress", "cls_bpf"];

/// The guest's PID 1, and the scripts of its steps.
const INIT: &str = include_str!("guest/init.sh");
const SUITE: &str = include_str!("guest/suite.sh");
const E2E: &str = include_str!("guest/e2e.sh");

/// What goes into the guest besides busybox and the modules.
pub(super) struct Payload {
    /// (name in /tests, path on the host), run in this order.
    pub suites: Vec<(String, PathBuf)>,
    pub daemon: PathBuf,
}

/// Writes `dest` for `kernel`; returns its size in bytes.
pub(super) fn build(kernel: &Kernel, payload: &Payload, work: &Path, dest: &Path) -> anyhow::Result<u64> {
    let mut files = Cpio::default();
    for dir in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "lib", "lib64", "etc", "proc", "sys", "dev", "tmp", "run", "root",
        "tests", "www", "var",
    ] {
        files.dir(dir);
    }
    files.symlink("var/run", "../run");
    files.char_dev("dev/console", 5, 1);
    files.char_dev("dev/null", 1, 3);

    let busybox = which("busybox").context("busybox not found: apt install busybox-static (./setup.sh --tests)")?;
    ensure!(is_static(&busybox)?, "{} is not statically linked: apt install busybox-static", busybox.display());
    files.file("bin/busybox", fs::read(&busybox).with_context(|| format!("cannot read {}", busybox.display()))?, 0o755);
    files.symlink("bin/sh", "busybox");
    files.file("init", INIT.as_bytes().to_vec(), 0o755);
    files.file("bin/kmx-suite", SUITE.as_bytes().to_vec(), 0o755);
    files.file("bin/kmx-e2e", E2E.as_bytes().to_vec(), 0o755);

    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("iproute2's ip not found: apt install iproute2")?;
    let stripped = work.join("stripped");
    fs::create_dir_all(&stripped).with_context(|| format!("cannot create {}", stripped.display()))?;
    let mut dynamic = vec![ip.clone()];
    files.file("usr/sbin/ip", fs::read(&ip).with_context(|| format!("cannot read {}", ip.display()))?, 0o755);
    for (name, path) in &payload.suites {
        files.file(&format!("tests/{name}"), strip(path, &stripped.join(name))?, 0o755);
        dynamic.push(path.clone());
    }
    files.file("usr/bin/monitor", strip(&payload.daemon, &stripped.join("monitor"))?, 0o755);
    dynamic.push(payload.daemon.clone());

    let mut libs = BTreeSet::new();
    for binary in &dynamic {
        libs.extend(shared_libraries(binary)?);
    }
    for lib in libs {
        let data = fs::read(&lib).with_context(|| format!("cannot read {}", lib.display()))?;
        let inside = lib.to_string_lossy().trim_start_matches('/').to_owned();
        files.parents(&inside);
        files.file(&inside, data, 0o755);
    }

    let order = module_order(&kernel.modules, MODULES)?;
    let mut list = String::new();
    for (name, path) in &order {
        let inside = format!("lib/modules/{}/{name}.ko", kernel.release);
        files.parents(&inside);
        files.file(&inside, module_bytes(path)?, 0o644);
        list.push_str(&format!("{name}\n"));
    }
    files.file("etc/kernel-matrix-modules", list.into_bytes(), 0o644);
    files.file("www/hello.txt", b"hello from the kernel matrix\n".to_vec(), 0o644);

    let bytes = files.finish();
    let size = bytes.len() as u64;
    fs::write(dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(size)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/bin", "/usr/bin", "/sbin", "/usr/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An ELF without a PT_INTERP program header.
fn is_static(path: &Path) -> anyhow::Result<bool> {
    let out = Command::new("ldd").arg(path).output().context("cannot run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(!out.status.success() || text.contains("not a dynamic executable") || text.contains("statically linked"))
}

/// `src` without debug info (debug builds are mostly DWARF), or as is when
/// `strip` is missing.
fn strip(src: &Path, dest: &Path) -> anyhow::Result<Vec<u8>> {
    let ok =
        Command::new("strip").arg("--strip-debug").arg("-o").arg(dest).arg(src).status().is_ok_and(|s| s.success());
    let from = if ok { dest } else { src };
    fs::read(from).with_context(|| format!("cannot read {}", from.display()))
}

/// The absolute paths of the shared libraries (and the dynamic loader)
/// `binary` loads, as ldd resolves them on this host.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output().context("cannot run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "ldd {} failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    let mut libs = Vec::new();
    for line in text.lines() {
        if line.contains("not found") {
            bail!("ldd {}: {}", binary.display(), line.trim());
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no path.
        let path = line.split("=>").last().and_then(|s| s.split_whitespace().next()).unwrap_or("");
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Every module file under `dir` by module name (dashes as underscores).
fn module_files(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            module_files(&path, out)?;
        } else if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) {
            for ext in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] {
                if let Some(stem) = name.strip_suffix(ext) {
                    out.insert(stem.replace('-', "_"), path.clone());
                }
            }
        }
    }
    Ok(())
}

/// The uncompressed module.
fn module_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        return fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    };
    let out = Command::new(tool).arg("-dc").arg(path).output().with_context(|| format!("cannot run {tool}"))?;
    ensure!(out.status.success(), "{tool} -dc {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(out.stdout)
}

/// The `depends=` field of a module's .modinfo section.
fn module_depends(ko: &[u8]) -> Vec<String> {
    let key = b"depends=";
    let Some(start) = ko.windows(key.len()).position(|w| w == key).map(|i| i + key.len()) else { return Vec::new() };
    let end = ko[start..].iter().position(|&b| b == 0).map_or(ko.len(), |n| start + n);
    String::from_utf8_lossy(&ko[start..end]).split(',').filter(|s| !s.is_empty()).map(|s| s.replace('-', "_")).collect()
}

/// `wanted` and their dependencies, dependencies first. A module that is
/// built into the kernel (modules.builtin) is left out.
fn module_order(modules_dir: &Path, wanted: &[&str]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = BTreeMap::new();
    module_files(&modules_dir.join("kernel"), &mut files)?;
    let builtin: BTreeSet<String> = fs::read_to_string(modules_dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|n| n.trim_end_matches(".ko").replace('-', "_"))
        .collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit(
        name: &str,
        files: &BTreeMap<String, PathBuf>,
        builtin: &BTreeSet<String>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<(String, PathBuf)>,
        depth: usize,
    ) -> anyhow::Result<()> {
        ensure!(depth < 32, "module dependency loop at {name}");
        if !seen.insert(name.to_owned()) || builtin.contains(name) {
            return Ok(());
        }
        let path = files.get(name).with_context(|| format!("module {name} is neither built in nor in the package"))?;
        for dep in module_depends(&module_bytes(path)?) {
            visit(&dep, files, builtin, seen, order, depth + 1)?;
        }
        order.push((name.to_owned(), path.clone()));
        Ok(())
    }
    for name in wanted {
        visit(name, &files, &builtin, &mut seen, &mut order, 0)?;
    }
    Ok(order)
}

/// A cpio archive in the "newc" format the kernel unpacks.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() & 3 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        if self.dirs.insert(name.to_owned()) {
            self.entry(name, 0o040_755, &[], (0, 0));
        }
    }

    /// The directories above `path`.
    fn parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            self.dir(&parts[..i].join("/"));
        }
    }

    fn file(&mut self, name: &str, data: Vec<u8>, perm: u32) {
        self.entry(name, 0o100_000 | perm, &data, (0, 0));
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120_777, target.as_bytes(), (0, 0));
    }

    fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, &[], (major, minor));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        // The kernel reads the archive in 512-byte blocks.
        while self.out.len() & 511 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_depends() {
        assert_eq!(module_depends(b"\x7fELF..\0license=GPL\0depends=ipv6,nf-defrag\0name=x\0"), ["ipv6", "nf_defrag"]);
        assert!(module_depends(b"\0depends=\0name=veth\0").is_empty());
        assert!(module_depends(b"no modinfo").is_empty());
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::default();
        c.file("init", b"#!/bin/sh\n".to_vec(), 0o755);
        let out = c.finish();
        assert!(out.starts_with(b"070701"));
        // namesize of "init" + NUL is 5, filesize 10.
        assert_eq!(&out[6 + 6 * 8..6 + 7 * 8], b"0000000a");
        assert_eq!(&out[6 + 11 * 8..6 + 12 * 8], b"00000005");
        assert_eq!(out.len() % 512, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
