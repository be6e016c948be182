//! The load generator: ICMP echo requests written straight to one interface
//! with an AF_PACKET socket (PACKET_QDISC_BYPASS, sendmmsg batches).
//!
//! Network safety: it sends only on the interface it is given (the bench
//! runs it inside a namespace it created, on its own veth end), from
//! 198.18.0.0/15 (or a ULA /64 for IPv6) sources.
//!
//! Every packet carries its send time: the ICMP id and sequence hold the
//! wall clock in microseconds modulo 2^32 (see `frames::stamp_now`), and the
//! payload starts with the full nanosecond time and a counter.

use std::{
    ffi::CString,
    io,
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _};
use serde_json::json;

use crate::frames::{self, fold, sum16, v4, v6};

const PACKET_QDISC_BYPASS: libc::c_int = 20;

pub(crate) struct Args {
    pub iface: String,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub dst: std::net::IpAddr,
    /// First source address; sources are `src + i` for i in 0..sources.
    pub src: std::net::IpAddr,
    pub sources: u64,
    /// Packets per second; 0 = as fast as possible.
    pub rate: u64,
    pub duration: Duration,
    /// Stop after this many packets (0 = no limit).
    pub count: u64,
    pub batch: usize,
}

pub(crate) fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad MAC {s}"))?;
    parts.try_into().map_err(|_| anyhow::anyhow!("bad MAC {s}"))
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: closing our own fd once.
        unsafe { libc::close(self.0) };
    }
}

fn open(iface: &str) -> anyhow::Result<Socket> {
    let name = CString::new(iface)?;
    // SAFETY: plain syscalls with valid arguments; the fd is owned by Socket.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        if ifindex == 0 {
            bail!("no interface {iface} here: {}", io::Error::last_os_error());
        }
        // Protocol 0: this socket sends only and receives nothing.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        if fd < 0 {
            bail!("AF_PACKET socket: {}", io::Error::last_os_error());
        }
        let sock = Socket(fd);
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        if libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), std::mem::size_of_val(&addr) as u32) != 0 {
            bail!("bind to {iface}: {}", io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        if libc::setsockopt(fd, libc::SOL_PACKET, PACKET_QDISC_BYPASS, (&one as *const libc::c_int).cast(), 4) != 0 {
            eprintln!("PACKET_QDISC_BYPASS unavailable: {}", io::Error::last_os_error());
        }
        let sndbuf: libc::c_int = 4 << 20;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, (&sndbuf as *const libc::c_int).cast(), 4);
        // Sleep with microsecond precision for rate control.
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000, 0, 0, 0);
        Ok(sock)
    }
}

/// The per-packet rewrite: source address, stamp, payload time and counter,
/// checksums.
struct Template {
    frame: Vec<u8>,
    v6: bool,
    src4: u32,
    src6: u128,
    /// Checksum of the fixed part of the ICMPv6 pseudo-header (dst, length, next header).
    pseudo6: u32,
}

impl Template {
    fn new(args: &Args) -> anyhow::Result<Self> {
        Ok(match (args.src, args.dst) {
            (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) => Template {
                frame: frames::icmp4_echo(args.dst_mac, src.octets(), dst.octets(), 0, 0),
                v6: false,
                src4: u32::from(src),
                src6: 0,
                pseudo6: 0,
            },
            (std::net::IpAddr::V6(src), std::net::IpAddr::V6(dst)) => {
                let frame = frames::icmp6_echo(args.dst_mac, src.octets(), dst.octets(), 0, 0);
                let plen = (frame.len() - v6::ICMP) as u32;
                Template { frame, v6: true, src4: 0, src6: u128::from(src), pseudo6: sum16(&dst.octets(), plen + 58) }
            }
            _ => bail!("--src and --dst must be the same family"),
        })
    }

    #[allow(clippy::too_many_arguments, reason = "one frame's fields, named at every call site")]
    fn write(
        &self,
        out: &mut [u8],
        src_mac: &[u8; 6],
        index: u64,
        sources: u64,
        n: u64,
        (id, seq): (u16, u16),
        ns: u64,
    ) {
        out[..self.frame.len()].copy_from_slice(&self.frame);
        out[6..12].copy_from_slice(src_mac);
        let offset = index % sources.max(1);
        if self.v6 {
            let src = Ipv6Addr::from(self.src6.wrapping_add(u128::from(offset))).octets();
            out[v6::SRC..v6::SRC + 16].copy_from_slice(&src);
            out[v6::ICMP_ID..v6::ICMP_ID + 2].copy_from_slice(&id.to_be_bytes());
            out[v6::ICMP_SEQ..v6::ICMP_SEQ + 2].copy_from_slice(&seq.to_be_bytes());
            out[v6::PAYLOAD..v6::PAYLOAD + 8].copy_from_slice(&ns.to_be_bytes());
            out[v6::PAYLOAD + 8..v6::PAYLOAD + 16].copy_from_slice(&n.to_be_bytes());
            out[v6::ICMP_CSUM..v6::ICMP_CSUM + 2].copy_from_slice(&[0, 0]);
            let sum = sum16(&src, self.pseudo6);
            let c = fold(sum16(&out[v6::ICMP..self.frame.len()], sum));
            out[v6::ICMP_CSUM..v6::ICMP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        } else {
            let src = Ipv4Addr::from(self.src4.wrapping_add(offset as u32)).octets();
            out[v4::SRC..v4::SRC + 4].copy_from_slice(&src);
            out[v4::IP_ID..v4::IP_ID + 2].copy_from_slice(&(n as u16).to_be_bytes());
            out[v4::IP_CSUM..v4::IP_CSUM + 2].copy_from_slice(&[0, 0]);
            let c = fold(sum16(&out[v4::IP..v4::ICMP], 0));
            out[v4::IP_CSUM..v4::IP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
            out[v4::ICMP_ID..v4::ICMP_ID + 2].copy_from_slice(&id.to_be_bytes());
            out[v4::ICMP_SEQ..v4::ICMP_SEQ + 2].copy_from_slice(&seq.to_be_bytes());
            out[v4::PAYLOAD..v4::PAYLOAD + 8].copy_from_slice(&ns.to_be_bytes());
            out[v4::PAYLOAD + 8..v4::PAYLOAD + 16].copy_from_slice(&n.to_be_bytes());
            out[v4::ICMP_CSUM..v4::ICMP_CSUM + 2].copy_from_slice(&[0, 0]);
            let c = fold(sum16(&out[v4::ICMP..self.frame.len()], 0));
            out[v4::ICMP_CSUM..v4::ICMP_CSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// Batch size for a rate: about 2000 wake-ups a second, at most `max`.
pub(crate) fn batch_for(rate: u64, max: usize) -> usize {
    if rate == 0 {
        max
    } else {
        ((rate / 2000) as usize).clamp(1, max)
    }
}

/// Paces batches: sleeps until batch k is due at `start + sent / rate`.
pub(crate) struct Pacer {
    start: Instant,
    rate: u64,
}

impl Pacer {
    pub(crate) fn new(rate: u64) -> Self {
        Pacer { start: Instant::now(), rate }
    }

    pub(crate) fn wait(&self, sent: u64) {
        if self.rate == 0 {
            return;
        }
        let due = self.start + Duration::from_secs_f64(sent as f64 / self.rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let sock = open(&args.iface)?;
    let template = Template::new(args)?;
    let batch = batch_for(args.rate, args.batch.max(1));
    let len = template.frame.len();
    let mut bufs = vec![vec![0u8; len]; batch];
    let mut iovs: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: len }).collect();
    // SAFETY: an all-zero mmsghdr is valid (no name, no control).
    let mut msgs: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    let (mut sent, mut errors, mut index) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let pacer = Pacer::new(args.rate);
    while pacer.elapsed() < args.duration && (args.count == 0 || sent < args.count) {
        pacer.wait(sent);
        let want = if args.count == 0 { batch } else { batch.min((args.count - sent) as usize) };
        // One clock read per batch: a batch leaves within microseconds.
        let stamp = frames::stamp_split(frames::stamp_now());
        let ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        for (i, buf) in bufs.iter_mut().take(want).enumerate() {
            template.write(buf, &args.src_mac, index + i as u64, args.sources, sent + i as u64, stamp, ns);
        }
        // SAFETY: msgs point at live iovecs and buffers of `len` bytes.
        let n = unsafe { libc::sendmmsg(sock.0, msgs.as_mut_ptr(), want as u32, 0) };
        if n < 0 {
            errors += 1;
            let e = io::Error::last_os_error();
            first_error.get_or_insert_with(|| e.to_string());
            if e.raw_os_error() == Some(libc::ENOBUFS) || e.raw_os_error() == Some(libc::EAGAIN) {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            bail!("sendmmsg on {}: {e}", args.iface);
        }
        sent += n as u64;
        index += n as u64;
    }
    let elapsed = pacer.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"sent": sent, "errors": errors, "first_error": first_error, "elapsed_s": elapsed,
               "pps": sent as f64 / elapsed.max(1e-9), "batch": batch, "frame_len": len})
    );
    Ok(())
}
