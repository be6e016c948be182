//! Free loopback ports for a daemon's listeners, so a harness never fails
//! because something else (a demo left open, another test) holds a default.
//! The port is released before the daemon binds it: a tiny race, accepted
//! for simplicity (the kernel does not hand the same ephemeral port out
//! again right away).

use std::net::{TcpListener, UdpSocket};

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}
