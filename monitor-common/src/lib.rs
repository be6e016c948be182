//! Types shared by the Monitor kernel programs and the daemon, and the pure
//! parsers the daemon runs on their output.
//!
//! Everything here is `no_std` so the kernel crate can use the `#[repr(C)]`
//! types; the parsers borrow from their input and never allocate, so they are
//! equally at home in a hot receive loop and in a property test. The one
//! exception, ClientHello reassembly, needs `alloc` (feature `alloc`, which
//! the daemon's `user` feature turns on).
#![cfg_attr(not(test), no_std)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

pub mod class;
pub mod event;
#[cfg(any(feature = "alloc", test))]
pub mod hello_reassembly;
pub mod http;
pub mod icmp;
pub mod maps;
pub mod netfilter;
pub mod syslog;
pub mod timing;
pub mod tls;
pub mod tls_capture;
#[cfg(any(feature = "alloc", test))]
pub mod tls_sample;

pub use class::Class;
pub use event::PacketEvent;
