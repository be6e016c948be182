//! Runs the Playwright tests in tests-browser/ with `node --test` and reads
//! the TAP summary. Missing tools are a failure with a pointer to setup.sh,
//! never a skip: a green run must mean the page was really tested.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const SETUP_HINT: &str = "run ./setup.sh --tests (it installs node, chromium and runs `npm ci` in tests-browser/)";

pub(crate) struct BrowserTools {
    pub node: PathBuf,
    pub chromium: PathBuf,
    pub dir: PathBuf,
}

impl BrowserTools {
    /// Finds node, Chromium and tests-browser/node_modules, or panics saying how to get them.
    pub(crate) fn find(workspace: &Path) -> Self {
        // The first node in PATH, as in a shell: setup.sh's fallback build is
        // /usr/local/bin/node (a wrapper that also sets NODE_EXTRA_CA_CERTS),
        // found before a distribution's older /usr/bin/node.
        let node = which("node").unwrap_or_else(|| panic!("node is not installed: {SETUP_HINT}"));
        let version = Command::new(&node)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| panic!("{} does not run: {SETUP_HINT}", node.display()));
        let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        assert!(
            major >= 18,
            "{} is {version}, the browser tests need Node.js >= 18 (is /usr/local/bin before /usr/bin in PATH?): {SETUP_HINT}",
            node.display()
        );
        let candidates = [
            std::env::var_os("MONITOR_CHROMIUM").map(PathBuf::from),
            Some("/usr/bin/chromium".into()),
            Some("/usr/bin/chromium-browser".into()),
            Some("/usr/bin/google-chrome-stable".into()),
            Some("/usr/bin/google-chrome".into()),
        ];
        let chromium = candidates
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no Chromium found (or set MONITOR_CHROMIUM): {SETUP_HINT}"));
        let dir = workspace.join("tests-browser");
        assert!(
            dir.join("node_modules/playwright-core/package.json").is_file(),
            "tests-browser/node_modules/playwright-core is missing: {SETUP_HINT}"
        );
        BrowserTools { node, chromium, dir }
    }

    /// `node --test` on `files` with `env`; panics unless every test ran and passed.
    /// Returns the pass count. The TAP output goes to `artifacts/<name>.tap`.
    pub(crate) fn run(&self, name: &str, files: &[&str], env: &[(&str, String)], artifacts: &Path) -> u32 {
        let out = Command::new(&self.node)
            .current_dir(&self.dir)
            .args(["--test", "--test-reporter=tap"])
            .args(files)
            .env("MONITOR_CHROMIUM", &self.chromium)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("cannot run node: {e}"));
        let tap = String::from_utf8_lossy(&out.stdout);
        let _ = std::fs::write(artifacts.join(format!("{name}.tap")), tap.as_bytes());
        println!("---- node --test {files:?} ----\n{tap}\n{}", String::from_utf8_lossy(&out.stderr));
        let count = |key: &str| -> u32 {
            tap.lines()
                .filter_map(|l| l.strip_prefix(&format!("# {key} ")))
                .filter_map(|n| n.trim().parse().ok())
                .next_back()
                .unwrap_or(0)
        };
        let (pass, fail, skipped, cancelled, todo) =
            (count("pass"), count("fail"), count("skipped"), count("cancelled"), count("todo"));
        assert!(
            out.status.success() && fail == 0 && cancelled == 0,
            "{name}: browser tests failed ({fail} failed, {cancelled} cancelled; see the TAP output above)"
        );
        assert_eq!(skipped + todo, 0, "{name}: {skipped} browser tests skipped: the harness must enable them all");
        assert!(pass > 0, "{name}: no browser test ran");
        pass
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}
