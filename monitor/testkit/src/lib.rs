//! The one test kit behind every harness of Monitor that needs a network or
//! a running daemon: the integration tests (`monitor/tests/`), the browser
//! tests, the benchmark (`cargo xtask bench`) and the demo (`cargo xtask
//! demo`). Each of them used to carry its own copy of the same few things;
//! a fix to one (a namespace left behind after a panic, a daemon log lost on
//! a failed start) now reaches all of them.
//!
//! What it owns, one job per module:
//!
//! - [`cmd`]: running a command (iproute2, sysctl, ...) and failing with its
//!   output; root checks.
//! - [`netns`]: network namespaces that are removed when their guard drops
//!   (also while a panic unwinds), and the clean-up of namespaces a killed
//!   process left behind.
//! - [`enter`]: running work on a thread inside a namespace, without moving
//!   the whole process.
//! - [`link`]: an interface in a namespace (or the root namespace) and its
//!   addresses and routes. No default route is ever added: see the safety
//!   note below.
//! - [`veth`]: veth pairs between two namespaces, or between the root
//!   namespace and one.
//! - [`process`]: a child process with its output in a log file, stopped
//!   when dropped.
//! - [`daemon`]: the `monitor` binary as a child process, started and waited
//!   for until `/healthz` answers; its log is shown when it does not.
//! - [`poll`]: waiting for a condition, with a message saying what was
//!   awaited when it times out.
//! - [`ports`], [`http`]: free loopback ports, GET and GET-as-JSON.
//!
//! Network safety: the kit only ever touches interfaces and namespaces its
//! callers created through it (plus the root-side end of a pair they asked
//! for). A namespace has no default route unless a caller adds one, so
//! traffic from synthetic public addresses inside it cannot leave the
//! machine; [`netns::Netns::ensure_no_default_route`] checks that before a
//! caller sends from such addresses.
//!
//! Errors are [`anyhow::Error`]s carrying what failed and its output;
//! tests turn them into panics where they want them.

pub mod cmd;
pub mod daemon;
pub mod enter;
pub mod http;
pub mod link;
pub mod netns;
pub mod poll;
pub mod ports;
pub mod process;
pub mod veth;

pub use daemon::{Daemon, DaemonBuilder};
pub use link::Link;
pub use netns::Netns;
pub use poll::{poll_until, try_poll};
pub use process::Process;
pub use veth::{Veth, VethEnd};
