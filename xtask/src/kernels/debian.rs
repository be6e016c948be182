//! A Debian kernel by package name: the newest `linux-image-<series>.*-cloud-amd64`
//! in the suites' `Packages` indexes (from the mirror configured in
//! /etc/apt/sources.list*), downloaded, checked against the index's SHA256
//! and unpacked under target/kernels/.

use std::{
    cmp::Ordering,
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{bail, ensure, Context as _};
use sha2::{Digest as _, Sha256};

/// One kernel of the matrix.
pub(super) struct Series {
    /// "5.10", "6.1": what `--kernel` takes.
    pub name: &'static str,
    /// The Debian release it comes from (for the report).
    pub release: &'static str,
    /// (archive, suite): "debian" is the main archive, "debian-security" the
    /// security archive.
    pub suites: &'static [(Archive, &'static str)],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Archive {
    Main,
    Security,
}

pub(super) const MATRIX: &[Series] = &[
    Series {
        name: "5.10",
        release: "bullseye",
        suites: &[
            (Archive::Main, "bullseye"),
            (Archive::Main, "bullseye-updates"),
            (Archive::Security, "bullseye-security"),
        ],
    },
    Series {
        name: "6.1",
        release: "bookworm",
        suites: &[
            (Archive::Main, "bookworm"),
            (Archive::Main, "bookworm-updates"),
            (Archive::Security, "bookworm-security"),
        ],
    },
];

/// The Packages indexes are re-fetched when older than this.
const INDEX_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// A kernel package picked from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Package {
    pub name: String,
    pub version: String,
    /// URL of the .deb.
    pub url: String,
    pub sha256: String,
    pub size: u64,
}

/// An unpacked kernel package.
pub(super) struct Kernel {
    pub vmlinuz: PathBuf,
    /// lib/modules/<release>
    pub modules: PathBuf,
    /// `uname -r` of the kernel.
    pub release: String,
}

/// Base URLs of the main and security archives: the http(s) URIs of
/// /etc/apt/sources.list* whose path ends in /debian or /debian-security,
/// else deb.debian.org.
pub(super) fn mirrors() -> (String, String) {
    let mut uris = Vec::new();
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        if let Ok(text) = fs::read_to_string(&file) {
            uris.extend(source_uris(&text));
        }
    }
    pick_mirrors(&uris)
}

/// The URIs of a sources.list (one-line `deb URI suite ...`) or deb822
/// (`URIs: ...`) file.
fn source_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("URIs:") {
            out.extend(rest.split_whitespace().map(str::to_owned));
        } else if let Some(rest) = line.strip_prefix("deb ") {
            // deb [options] URI suite components
            let mut words = rest.split_whitespace().peekable();
            if words.peek().is_some_and(|w| w.starts_with('[')) {
                for w in words.by_ref() {
                    if w.ends_with(']') {
                        break;
                    }
                }
            }
            out.extend(words.next().map(str::to_owned));
        }
    }
    out
}

fn pick_mirrors(uris: &[String]) -> (String, String) {
    // ureq is built without TLS: plain http mirrors only (the .debs are
    // checked against the index's SHA256 anyway).
    let find = |suffix: &str| {
        uris.iter()
            .map(|u| u.trim_end_matches('/'))
            .find(|u| u.starts_with("http://") && u.ends_with(suffix))
            .map(str::to_owned)
    };
    let main = find("/debian").unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let security = find("/debian-security").unwrap_or_else(|| "http://deb.debian.org/debian-security".into());
    (main, security)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(20)).timeout_read(Duration::from_secs(60)).build()
}

/// GETs `url` into `dest` (through a temporary file), returning its SHA256.
fn download(url: &str, dest: &Path) -> anyhow::Result<String> {
    let response = agent().get(url).call().with_context(|| format!("GET {url}"))?;
    let tmp = dest.with_extension("part");
    let mut file = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut reader = response.into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {url}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).with_context(|| format!("writing {}", tmp.display()))?;
    }
    file.sync_all().ok();
    fs::rename(&tmp, dest).with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn is_fresh(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < INDEX_MAX_AGE)
}

/// The SHA256 the Release file `inrelease` lists for `name`
/// (e.g. main/binary-amd64/Packages.xz).
fn release_sha256<'a>(inrelease: &'a str, name: &str) -> Option<&'a str> {
    let mut in_sha256 = false;
    for line in inrelease.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha256 {
            let mut fields = line.split_whitespace();
            let (Some(sum), Some(_size), Some(file)) = (fields.next(), fields.next(), fields.next()) else { continue };
            if file == name {
                return Some(sum);
            }
        }
    }
    None
}

/// The suite's decompressed main/binary-amd64 Packages index, cached under
/// `cache` for INDEX_MAX_AGE. Packages.xz is checked against the SHA256 in
/// the suite's InRelease, whose signature gpgv checks when the Debian
/// archive keyring is installed.
fn packages_index(base: &str, suite: &str, cache: &Path) -> anyhow::Result<String> {
    // No dots in the stem: the InRelease, .xz and .part files beside it are
    // named with `with_extension`, and the suites must not share them.
    let text_path = cache.join(format!("{}_{suite}_Packages", base.replace(['/', ':', '.'], "_")));
    if is_fresh(&text_path) {
        return fs::read_to_string(&text_path).with_context(|| format!("cannot read {}", text_path.display()));
    }
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let inrelease_url = format!("{base}/dists/{suite}/InRelease");
    let inrelease_path = text_path.with_extension("InRelease");
    download(&inrelease_url, &inrelease_path)?;
    verify_signature(&inrelease_path)?;
    let inrelease =
        fs::read_to_string(&inrelease_path).with_context(|| format!("cannot read {}", inrelease_path.display()))?;
    let name = "main/binary-amd64/Packages.xz";
    let expected =
        release_sha256(&inrelease, name).with_context(|| format!("{inrelease_url} lists no SHA256 for {name}"))?;
    let xz_path = text_path.with_extension("xz");
    let url = format!("{base}/dists/{suite}/{name}");
    let got = download(&url, &xz_path)?;
    ensure!(got == expected, "{url}: SHA256 {got}, but InRelease says {expected}");
    let out = Command::new("xz").arg("-dc").arg(&xz_path).output().context("cannot run xz (apt install xz-utils)")?;
    ensure!(out.status.success(), "xz -dc {} failed: {}", xz_path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).with_context(|| format!("{url} is not UTF-8"))?;
    fs::write(&text_path, &text).with_context(|| format!("cannot write {}", text_path.display()))?;
    let _ = fs::remove_file(&xz_path);
    Ok(text)
}

/// gpgv against the Debian archive keyring, when both exist (Debian hosts);
/// elsewhere the index is trusted as fetched (the .deb's SHA256 still ties
/// it to the index).
fn verify_signature(inrelease: &Path) -> anyhow::Result<()> {
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    if !keyring.exists() {
        return Ok(());
    }
    let Ok(out) = Command::new("gpgv").arg("--keyring").arg(keyring).arg(inrelease).output() else {
        return Ok(());
    };
    ensure!(
        out.status.success(),
        "{}: bad signature (gpgv --keyring {}):\n{}",
        inrelease.display(),
        keyring.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The packages of a Packages index whose name is
/// `linux-image-<series>.<anything>-cloud-amd64`.
fn cloud_images(index: &str, series: &str, base: &str) -> Vec<Package> {
    let prefix = format!("linux-image-{series}.");
    let mut out = Vec::new();
    for stanza in index.split("\n\n") {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')).map(|v| v.trim().to_owned()))
        };
        let Some(name) = field("Package") else { continue };
        if !(name.starts_with(&prefix) && name.ends_with("-cloud-amd64")) {
            continue;
        }
        let (Some(version), Some(filename), Some(sha256)) = (field("Version"), field("Filename"), field("SHA256"))
        else {
            continue;
        };
        let size = field("Size").and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push(Package { name, version, url: format!("{base}/{filename}"), sha256, size });
    }
    out
}

/// The newest cloud kernel of `series` in its suites; when the archive
/// cannot be reached, the one the last successful resolution picked, if its
/// .deb is still cached (`fetch` checks its SHA256 again).
pub(super) fn resolve(series: &Series, cache: &Path) -> anyhow::Result<Package> {
    let remembered = cache.join(format!("resolved-{}", series.name));
    match resolve_online(series, cache) {
        Ok(package) => {
            let line = format!(
                "{}\n{}\n{}\n{}\n{}\n",
                package.name, package.version, package.url, package.sha256, package.size
            );
            let _ = fs::write(&remembered, line);
            Ok(package)
        }
        Err(e) => {
            let text = fs::read_to_string(&remembered).map_err(|_| e)?;
            let f: Vec<&str> = text.lines().collect();
            let [name, version, url, sha256, size] = f[..] else {
                bail!("{} is damaged; delete it", remembered.display());
            };
            let package = Package {
                name: name.into(),
                version: version.into(),
                url: url.into(),
                sha256: sha256.into(),
                size: size.parse().unwrap_or(0),
            };
            eprintln!("kernels: the archive cannot be reached; using the cached {} {}", package.name, package.version);
            Ok(package)
        }
    }
}

fn resolve_online(series: &Series, cache: &Path) -> anyhow::Result<Package> {
    let (main, security) = mirrors();
    let mut candidates = Vec::new();
    for (archive, suite) in series.suites {
        let base = if *archive == Archive::Main { &main } else { &security };
        match packages_index(base, suite, &cache.join("index")) {
            Ok(index) => candidates.extend(cloud_images(&index, series.name, base)),
            // An -updates or -security suite may be missing on a mirror;
            // the release suite may not.
            Err(e) if *suite != series.release => eprintln!("kernels: skipping {base} {suite}: {e:#}"),
            Err(e) => return Err(e.context(format!("the {suite} index"))),
        }
    }
    candidates
        .into_iter()
        .max_by(|a, b| compare_versions(&a.version, &b.version))
        .with_context(|| format!("no linux-image-{}.*-cloud-amd64 in {:?}", series.name, series.suites))
}

/// Downloads (once) and unpacks (once) `package` under `cache`.
pub(super) fn fetch(package: &Package, cache: &Path) -> anyhow::Result<Kernel> {
    fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let stem = format!("{}_{}", package.name, package.version.replace(':', "%3a"));
    let deb = cache.join(format!("{stem}.deb"));
    let cached_ok = deb.exists() && sha256_file(&deb)? == package.sha256;
    if !cached_ok {
        eprintln!("kernels: downloading {} ({} MB)", package.url, package.size / 1_000_000);
        let got = download(&package.url, &deb)?;
        if got != package.sha256 {
            let _ = fs::remove_file(&deb);
            bail!("{}: SHA256 {got}, but the index says {}", package.url, package.sha256);
        }
    }
    let root = cache.join(&stem);
    let done = root.join(".unpacked");
    if !done.exists() {
        let _ = fs::remove_dir_all(&root);
        let out = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).output().context("cannot run dpkg-deb")?;
        ensure!(out.status.success(), "dpkg-deb -x {} failed: {}", deb.display(), String::from_utf8_lossy(&out.stderr));
        fs::write(&done, "").with_context(|| format!("cannot write {}", done.display()))?;
    }
    let boot = root.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .with_context(|| format!("cannot list {}", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .with_context(|| format!("no vmlinuz-* in {}", boot.display()))?;
    let release =
        vmlinuz.file_name().map(|n| n.to_string_lossy().trim_start_matches("vmlinuz-").to_owned()).unwrap_or_default();
    let modules = root.join("lib/modules").join(&release);
    ensure!(modules.is_dir(), "{} has no lib/modules/{release}", deb.display());
    Ok(Kernel { vmlinuz, modules, release })
}

/// dpkg's version order: epoch, then upstream version and revision compared
/// by alternating non-digit parts (where `~` sorts before everything, even
/// the end) and numeric parts.
pub(super) fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream, revision)
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

fn compare_part(a: &str, b: &str) -> Ordering {
    fn order(c: Option<char>) -> i32 {
        match c {
            Some('~') => -1,
            None => 0,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix.
        let na = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
        let nb = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
        let (pa, pb) = (&a[..na], &b[..nb]);
        let (mut ca, mut cb) = (pa.chars(), pb.chars());
        loop {
            let (x, y) = (ca.next(), cb.next());
            if x.is_none() && y.is_none() {
                break;
            }
            match order(x).cmp(&order(y)) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        a = &a[na..];
        b = &b[nb..];
        // Digit prefix.
        let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
        let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
        let (xa, xb) = (a[..da].trim_start_matches('0'), b[..db].trim_start_matches('0'));
        match xa.len().cmp(&xb.len()).then_with(|| xa.cmp(xb)) {
            Ordering::Equal => {}
            other => return other,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_version_order() {
        let less = [
            ("5.10.218-1", "5.10.223-1"),
            ("6.1.192-2", "6.1.192-3"),
            ("6.1.176-1~deb11u1", "6.1.176-1"),
            ("6.1.9-1", "6.1.10-1"),
            ("1.0~rc1-1", "1.0-1"),
            ("9.9-1", "1:0.1-1"),
            ("1.0a-1", "1.0b-1"),
            ("1.0-1", "1.0+b1-1"),
        ];
        for (a, b) in less {
            assert_eq!(compare_versions(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare_versions(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare_versions("6.1.192-3", "6.1.192-3"), Ordering::Equal);
    }

    #[test]
    fn index_stanzas_and_release_sums() {
        let index = "Package: linux-image-6.1.0-57-cloud-amd64\nVersion: 6.1.192-3\nFilename: pool/a.deb\nSize: 10\nSHA256: aa\n\n\
                     Package: linux-image-6.1.0-57-cloud-amd64-dbg\nVersion: 6.1.192-3\nFilename: pool/b.deb\nSHA256: bb\n\n\
                     Package: linux-image-cloud-amd64\nVersion: 6.1.192-3\nFilename: pool/c.deb\nSHA256: cc\n\n\
                     Package: linux-image-5.10.0-32-cloud-amd64\nVersion: 5.10.223-1\nFilename: pool/d.deb\nSHA256: dd\n";
        let got = cloud_images(index, "6.1", "http://m/debian");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].url, "http://m/debian/pool/a.deb");
        assert_eq!((got[0].sha256.as_str(), got[0].size), ("aa", 10));
        let release = "Origin: Debian\nMD5Sum:\n 11 5 main/binary-amd64/Packages.xz\nSHA256:\n 22 5 main/binary-amd64/Packages\n 33 5 main/binary-amd64/Packages.xz\n";
        assert_eq!(release_sha256(release, "main/binary-amd64/Packages.xz"), Some("33"));
        assert_eq!(release_sha256(release, "contrib/x"), None);
    }

    #[test]
    fn mirrors_from_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nURIs: http://deb.debian.org/debian-security\n";
        let one_line = "deb [arch=amd64 signed-by=/x] https://packages.cloud.google.com/apt cloud-sdk main\ndeb http://ftp.de.debian.org/debian/ bullseye main\n";
        let mut uris = source_uris(deb822);
        assert_eq!(pick_mirrors(&uris).1, "http://deb.debian.org/debian-security");
        uris = source_uris(one_line);
        assert_eq!(uris, ["https://packages.cloud.google.com/apt", "http://ftp.de.debian.org/debian/"]);
        assert_eq!(
            pick_mirrors(&uris),
            ("http://ftp.de.debian.org/debian".into(), "http://deb.debian.org/debian-security".into())
        );
    }
}
