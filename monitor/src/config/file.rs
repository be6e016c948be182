//! The optional TOML configuration file (`--config`). Its keys are the long
//! option names (`events-per-sec = 5000`, `iface = ["ens3", "eth1"]`,
//! underscores allowed too); command-line flags and environment variables win
//! over the file, the file wins over the defaults.

use std::{ffi::OsString, path::Path};

use clap::{parser::ValueSource, ArgAction, CommandFactory as _, FromArgMatches as _};
use thiserror::Error;

use super::cli::Cli;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Toml { path: String, message: String },
    #[error("config file {path}: unknown option {key:?} (see --help for the names)")]
    UnknownKey { path: String, key: String },
    #[error("config file {path}: {key}: {message}")]
    BadValue { path: String, key: String, message: String },
    #[error("{0}")]
    Clap(#[from] clap::Error),
}

/// Parses `args` (argv with the program name first); when they name a config
/// file, its settings fill every option the command line and environment
/// left at its default.
pub fn parse(args: Vec<OsString>) -> Result<Cli, ConfigError> {
    let matches = Cli::command().try_get_matches_from(&args)?;
    let Some(path) = matches.get_one::<std::path::PathBuf>("config").cloned() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let mut args = args;
    args.extend(file_args(&path, &matches)?);
    Ok(<Cli as clap::Parser>::try_parse_from(args)?)
}

/// The file's settings as extra command-line arguments, for the options not
/// already given on the command line or in the environment.
fn file_args(path: &Path, matches: &clap::ArgMatches) -> Result<Vec<OsString>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: shown.clone(), cause })?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| ConfigError::Toml { path: shown.clone(), message: e.to_string() })?;
    let command = Cli::command();
    let mut out = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .ok_or_else(|| ConfigError::UnknownKey { path: shown.clone(), key: key.clone() })?;
        let given = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        let bad =
            |message: &str| ConfigError::BadValue { path: shown.clone(), key: key.clone(), message: message.into() };
        let flag = format!("--{long}");
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            match value {
                toml::Value::Boolean(true) => out.push(flag.into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("expected true or false")),
            }
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items,
            single => vec![single],
        };
        for item in values {
            let text = match item {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(bad("expected a string, a number, a boolean or a list of them")),
            };
            // `--flag=value`, so a value starting with '-' is not taken for a flag.
            out.push(format!("{flag}={text}").into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(toml: &str, args: &[&str]) -> Result<Cli, ConfigError> {
        let dir = std::env::temp_dir().join(format!("monitor-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = dir.join(format!("{}.toml", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        std::fs::write(&path, toml).expect("write");
        let mut argv: Vec<OsString> = vec!["monitor".into(), "--config".into(), path.into()];
        argv.extend(args.iter().map(OsString::from));
        parse(argv)
    }

    #[test]
    fn file_fills_defaults_and_flags_win() {
        let cli = with_file(
            "iface = [\"veth0\", \"veth1\"]\nevents_per_sec = 5000\nno-events = true\nlisten = \"127.0.0.1:9999\"\n",
            &["--events-per-sec", "7"],
        )
        .expect("parses");
        assert_eq!(cli.ifaces, ["veth0", "veth1"]);
        assert_eq!(cli.events_per_sec, 7);
        assert!(cli.no_events);
        assert_eq!(cli.listen.port(), 9999);
    }

    #[test]
    fn the_documented_example_parses() {
        let cli =
            with_file(include_str!("../../../docs/monitor.example.toml"), &[]).expect("docs/monitor.example.toml");
        assert_eq!(cli.ifaces, ["ens3"]);
        assert_eq!(cli.syslog_rcvbuf, 32 << 20);
    }

    #[test]
    fn exposure_and_logging_settings_come_from_the_file() {
        let cli = with_file("public-name = [\"monitor.example.com\", \"10.0.0.5\"]\nlog-format = \"json\"\n", &[])
            .expect("parses");
        assert_eq!(cli.public_names, ["monitor.example.com", "10.0.0.5"]);
        assert_eq!(cli.log_format, crate::config::LogFormat::Json);
    }

    #[test]
    fn command_line_lists_replace_the_files() {
        let cli = with_file("iface = [\"veth0\"]\n", &["--iface", "eth9"]).expect("parses");
        assert_eq!(cli.ifaces, ["eth9"]);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |toml: &str| with_file(toml, &[]).expect_err("rejected").to_string();
        assert!(err("colour = \"blue\"\n").contains("unknown option \"colour\""));
        assert!(err("events-per-sec = \n").contains("config file"));
        assert!(err("no-events = \"yes\"\n").contains("expected true or false"));
        assert!(err("events-per-sec = \"many\"\n").contains("events-per-sec"));
        assert!(err("config = \"x.toml\"\n").contains("unknown option"));
        let missing = parse(vec!["monitor".into(), "--config".into(), "/nonexistent/monitor.toml".into()]);
        assert!(missing.expect_err("missing file").to_string().contains("cannot read config file"));
    }
}
