//! Syslog over UDP, one message per datagram.
//!
//! A dedicated thread drains each socket with `recvmmsg`: up to BATCH
//! datagrams per system call, and no wait behind the async runtime's other
//! work (WebSocket fan-out, aggregation). When the pipeline falls behind the
//! thread waits for it, so a backlog queues in the socket's receive buffer
//! and nowhere else; what the kernel drops when that buffer is full is read
//! back (SO_MEMINFO) and reported, so no loss is silent.

use std::{
    io,
    mem::MaybeUninit,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    os::fd::{AsRawFd, RawFd},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::oneshot, task::JoinHandle};

use super::{ingest::MAX_LINE, Ingest};
use tokio_util::sync::CancellationToken;

use crate::sources::{EventSink, MAX_BATCH};

/// Datagrams per recvmmsg call: a gathered pause's worth at 10k lines/s.
/// The buffers are allocated once; only the pages lines land on are used.
const BATCH: usize = MAX_BATCH;
const _: () = assert!(BATCH <= MAX_BATCH);
/// One byte more than the longest line kept: a longer datagram shows as
/// truncated (MSG_TRUNC) and is counted as oversized.
const SLOT: usize = MAX_LINE + 1;
/// How often a quiet socket's drop counter is read anyway.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// After a batch that did not fill, the receiver pauses this long so the
/// next `recvmmsg` takes many datagrams at once: at 10k lines/s that is one
/// wake-up of this thread and of the pipeline per ~200 lines instead of per
/// line or two (context switches were most of the per-line cost). The
/// lines wait at most this long, in the socket buffer (32 MiB by default:
/// far more than 20 ms of any rate that does not fill a batch), and the
/// dashboard, which updates every 200 ms, shows them no later for it.
const GATHER: Duration = Duration::from_millis(20);

/// Binds `addr`, asks for a `rcvbuf`-byte receive buffer and starts the
/// receiving thread. The returned task ends if the thread does.
pub fn spawn_udp_listener(
    addr: SocketAddr,
    rcvbuf: usize,
    ingest: Arc<Ingest>,
    sink: EventSink,
    stop: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let socket = UdpSocket::bind(addr)?;
    let granted = grow_receive_buffer(&socket, rcvbuf);
    socket.set_read_timeout(Some(IDLE_WAKE))?;
    tracing::info!(%addr, receive_buffer = granted, "syslog UDP listening");
    if granted < rcvbuf {
        tracing::warn!(%addr, asked = rcvbuf, granted,
                       "syslog UDP receive buffer capped by net.core.rmem_max (raising it needs CAP_NET_ADMIN); \
                        datagrams a burst drops are counted as syslog.socket_drops");
    }
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new().name(format!("syslog-udp-{}", addr.port())).spawn(move || {
        match receive(&socket, &ingest, &sink, &stop) {
            Some(error) => tracing::error!(%addr, %error, "syslog UDP socket failed"),
            None => tracing::debug!(%addr, "syslog UDP receiver stopped"),
        }
        let _ = done_tx.send(());
    })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

/// Receives until the socket fails (its error) or the pipeline shuts down
/// (None).
fn receive(socket: &UdpSocket, ingest: &Ingest, sink: &EventSink, stop: &CancellationToken) -> Option<io::Error> {
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    let mut drops_seen = 0u32;
    loop {
        let received = match batch.receive(fd) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The socket itself is gone or unusable: nothing more will come.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF | libc::ENOTSOCK | libc::EINVAL | libc::EFAULT)) => {
                return Some(e)
            }
            // Anything else (a pending ICMP error, memory pressure) is
            // about one datagram or one moment: note it and go on.
            Err(error) => {
                tracing::debug!(%error, "syslog UDP receive error");
                std::thread::sleep(Duration::from_millis(1));
                0
            }
        };
        let mut events = Vec::with_capacity(received);
        for i in 0..received {
            let (sender, bytes, truncated) = batch.datagram(i);
            if truncated {
                ingest.handle_oversized(sender, bytes);
            } else {
                events.extend(ingest.handle(sender, bytes));
            }
        }
        // Waiting here when the pipeline is behind leaves the backlog in the
        // socket buffer, whose overflow is counted below.
        if stop.is_cancelled() || !sink.offer_waiting(events) {
            return None;
        }
        if received > 0 && received < BATCH {
            std::thread::sleep(GATHER);
        }
        // The kernel's counter is a u32 that wraps; count the difference.
        if let Some(drops) = socket_drops(fd) {
            ingest.count_socket_drops(u64::from(drops.wrapping_sub(drops_seen)));
            drops_seen = drops;
        }
    }
}

/// recvmmsg buffers for BATCH datagrams, allocated once.
struct Batch {
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    /// Only pointed to by `headers`; the heap buffers never move after `new`.
    _iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl Batch {
    fn new() -> Batch {
        let mut data = vec![0u8; BATCH * SLOT];
        // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
        let mut addrs: Vec<libc::sockaddr_storage> =
            (0..BATCH).map(|_| unsafe { MaybeUninit::zeroed().assume_init() }).collect();
        let mut iovecs: Vec<libc::iovec> = data
            .chunks_mut(SLOT)
            .map(|slot| libc::iovec { iov_base: slot.as_mut_ptr().cast(), iov_len: SLOT })
            .collect();
        let headers = iovecs
            .iter_mut()
            .zip(addrs.iter_mut())
            .map(|(iov, addr)| {
                // SAFETY: msghdr is plain data; all zeroes is valid.
                let mut hdr: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
                hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr { msg_hdr: hdr, msg_len: 0 }
            })
            .collect();
        Batch { data, addrs, _iovecs: iovecs, headers }
    }

    /// Blocks (up to the socket's read timeout) for at least one datagram,
    /// then takes whatever else is already queued, up to BATCH.
    fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        for hdr in &mut self.headers {
            hdr.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        // SAFETY: every header points at a live iovec and sockaddr_storage of
        // this batch; the kernel writes at most iov_len / msg_namelen bytes.
        let n = unsafe {
            libc::recvmmsg(fd, self.headers.as_mut_ptr(), BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last receive: sender, bytes, and whether it was
    /// longer than a slot.
    fn datagram(&self, i: usize) -> (IpAddr, &[u8], bool) {
        let hdr = &self.headers[i];
        let len = (hdr.msg_len as usize).min(SLOT);
        let truncated = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (sender(&self.addrs[i]), &self.data[i * SLOT..i * SLOT + len], truncated)
    }
}

fn sender(addr: &libc::sockaddr_storage) -> IpAddr {
    match i32::from(addr.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let v4 = unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let v6 = unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr))
        }
        // Not for a UDP socket; an address no allowlist holds.
        _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Datagrams the kernel dropped on this socket (receive buffer full), a
/// counter that wraps at 2^32; None if the kernel does not say (< 4.12).
fn socket_drops(fd: RawFd) -> Option<u32> {
    // SK_MEMINFO_VARS (9) on every kernel so far; room for more.
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    (rc == 0 && len as usize > libc::SK_MEMINFO_DROPS as usize * 4).then(|| info[libc::SK_MEMINFO_DROPS as usize])
}

/// Asks for `bytes` of receive buffer, beyond rmem_max when privileged
/// (SO_RCVBUFFORCE); returns what the kernel granted.
fn grow_receive_buffer(socket: &UdpSocket, bytes: usize) -> usize {
    let size = i32::try_from(bytes).unwrap_or(i32::MAX);
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on our own socket with a valid int option.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    let mut granted = 0i32;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int.
    unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut granted as *mut i32).cast(),
            &mut len,
        )
    };
    // The kernel reports twice what it accounts for payload (its overhead).
    usize::try_from(granted).unwrap_or(0) / 2
}
