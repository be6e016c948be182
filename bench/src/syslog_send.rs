//! Syslog datagram sender: iptables LOG lines in the format rsyslog forwards
//! (RSYSLOG_TraditionalForwardFormat), one per datagram, sent with sendmmsg
//! batches on a connected UDP socket, paced like the generator.
//!
//! The lines carry a send stamp in the ICMP ID/SEQ fields (see
//! `frames::stamp_now`) so a WebSocket client can measure delivery latency.
//! Sources are 198.18.0.0/15 addresses, or with `--public` addresses spread
//! over public space so the GeoIP databases are exercised: those addresses
//! only ever appear as text inside datagrams sent to the loopback address.

use std::{io::Write as _, net::UdpSocket, os::fd::AsRawFd, time::Duration};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::{frames, gen::Pacer};

pub(crate) struct Args {
    pub target: std::net::SocketAddr,
    pub rate: u64,
    pub duration: Duration,
    pub count: u64,
    pub sources: u64,
    pub public: bool,
    /// Index of the first source.
    pub first: u64,
    pub batch: usize,
}

/// First octets of unicast space that is public (no special-purpose ranges).
const PUBLIC_FIRST: [u8; 16] = [2, 5, 31, 37, 41, 45, 62, 77, 81, 89, 91, 104, 151, 177, 185, 212];

/// The i-th source address: distinct for distinct i (up to 2^17 for the
/// benchmark range, 2^28 for public ones).
pub(crate) fn source(i: u64, sources: u64, public: bool) -> std::net::Ipv4Addr {
    let i = i % sources.max(1);
    if public {
        let first = PUBLIC_FIRST[(i % 16) as usize];
        // Multiplying by an odd number is a bijection modulo 2^24: spreads
        // the addresses over the /8 (and so over the database).
        let rest = ((i / 16) as u32).wrapping_mul(0x9E37_79B1) & 0x00ff_ffff;
        std::net::Ipv4Addr::from(u32::from(first) << 24 | rest)
    } else {
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 10)).wrapping_add((i % 131_000) as u32))
    }
}

fn line(buf: &mut Vec<u8>, src: std::net::Ipv4Addr, n: u64, (id, seq): (u16, u16)) {
    buf.clear();
    let _ = write!(
        buf,
        "<4>Nov 24 20:22:40 benchhost kernel: IPT_ICMP IN=mbr0 OUT= MAC=02:6d:62:00:00:02:02:6d:62:00:00:01:08:00 \
         SRC={src} DST=198.19.0.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID={} DF PROTO=ICMP TYPE=8 CODE=0 ID={id} SEQ={seq} ",
        n as u16
    );
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let bind = if args.target.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(args.target).with_context(|| format!("connect {}", args.target))?;
    let fd = sock.as_raw_fd();
    let sndbuf: libc::c_int = 4 << 20;
    // SAFETY: setsockopt/prctl with valid arguments.
    unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, (&sndbuf as *const libc::c_int).cast(), 4);
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    }
    let batch = crate::gen::batch_for(args.rate, args.batch.max(1));
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| Vec::with_capacity(512)).collect();
    let mut iovs: Vec<libc::iovec> = vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; batch];
    // SAFETY: an all-zero mmsghdr is valid.
    let mut msgs: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut first_error = None;
    let pacer = Pacer::new(args.rate);
    while pacer.elapsed() < args.duration && (args.count == 0 || sent < args.count) {
        pacer.wait(sent);
        let want = if args.count == 0 { batch } else { batch.min((args.count - sent) as usize) };
        let stamp = frames::stamp_split(frames::stamp_now());
        for i in 0..want {
            let n = sent + i as u64;
            line(&mut bufs[i], source(args.first + n, args.sources, args.public), n, stamp);
            iovs[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs point at live iovecs and buffers.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), want as u32, 0) };
        if n < 0 {
            errors += 1;
            let e = std::io::Error::last_os_error();
            first_error.get_or_insert_with(|| e.to_string());
            match e.raw_os_error() {
                // Loopback refuses when nobody listens; a full send buffer waits.
                Some(libc::ENOBUFS | libc::EAGAIN | libc::ECONNREFUSED) => {
                    std::thread::sleep(Duration::from_micros(100));
                    continue;
                }
                _ => bail!("sendmmsg to {}: {e}", args.target),
            }
        }
        sent += n as u64;
    }
    let elapsed = pacer.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"sent": sent, "errors": errors, "first_error": first_error, "elapsed_s": elapsed,
               "pps": sent as f64 / elapsed.max(1e-9), "batch": batch})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_sources_are_distinct_and_parse() {
        let set: std::collections::HashSet<_> = (0..100_000).map(|i| source(i, 1 << 20, true)).collect();
        assert_eq!(set.len(), 100_000);
        let mut buf = Vec::new();
        line(&mut buf, source(7, 100, false), 7, (1, 2));
        let text = std::str::from_utf8(&buf).unwrap_or_default();
        let msg = monitor_common::syslog::parse(text).expect("syslog");
        let l = monitor_common::netfilter::parse(msg.msg, &["IPT_ICMP "]).expect("netfilter");
        assert_eq!((l.icmp_id, l.icmp_seq), (Some(1), Some(2)));
    }
}
