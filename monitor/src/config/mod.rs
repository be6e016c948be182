//! The bottom layer with the model: what the operator asked for (command
//! line, environment, TOML file) and the value types it is made of.

mod cli;
mod file;
mod forward;
mod ports;
mod prefix;

pub use cli::{Cli, LogFormat, XdpModeArg};
pub use file::{parse, ConfigError};
pub use forward::{ForwardScheme, ForwardTarget};
pub use ports::PortList;
pub use prefix::PrefixRule;
