//! Types shared by the Monitor kernel programs and the daemon, and the pure
//! parsers the daemon runs on their output.
//!
//! Everything here is `no_std` so the kernel crate can use the `#[repr(C)]`
//! types; the parsers borrow from their input and never allocate, so they are
//! equally at home in a hot receive loop and in a property test.
#![cfg_attr(not(test), no_std)]

pub mod class;
pub mod event;
pub mod http;
pub mod icmp;
pub mod maps;
pub mod netfilter;
pub mod syslog;
pub mod timing;
pub mod tls;

pub use class::Class;
pub use event::PacketEvent;
