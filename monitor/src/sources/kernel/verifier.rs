//! What the running kernel's verifier spends on each program.
//!
//! Aya keeps the verifier log only when a load fails, and
//! `bpf_prog_info.verified_insns` exists only from Linux 5.16, so each
//! program is loaded once more here, from the same object and against the
//! maps the real load created, with the log at its statistics level: the
//! "processed N insns" line is then there on every kernel.

use std::{
    collections::HashSet,
    ffi::CStr,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use aya::{maps::Map, Ebpf};

use super::KernelError;

/// A BPF helper's number (include/uapi/linux/bpf.h).
const BPF_FUNC_KTIME_GET_COARSE_NS: i32 = 160;

/// Whether this kernel has `bpf_ktime_get_coarse_ns` (Linux 5.11, and
/// distribution kernels that carry it): probed by loading a two-instruction
/// XDP program that calls it, since a version number says nothing of
/// backports.
pub(super) fn has_coarse_clock() -> bool {
    let probe = [
        Insn { code: 0x85, regs: 0, off: 0, imm: BPF_FUNC_KTIME_GET_COARSE_NS }, // call
        Insn { code: 0xb7, regs: 0, off: 0, imm: 2 },                            // r0 = XDP_PASS
        Insn { code: 0x95, regs: 0, off: 0, imm: 0 },                            // exit
    ];
    let license = c"GPL";
    let found = raw_load("probe_coarse", ProgramKind::Xdp, probe.as_ptr(), probe.len(), license).is_ok();
    tracing::debug!(found, "probed bpf_ktime_get_coarse_ns");
    found
}

/// The running kernel's release, as `uname -r` prints it.
pub(super) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "(unknown)".into(), |s| s.trim().to_owned())
}

/// The error for a program the verifier refused: the reason in a line, a
/// hint, and the full log in a file (it can run to megabytes) and the
/// debug log.
pub(super) fn rejected(program: &str, log: &str) -> KernelError {
    tracing::debug!(program, log, "verifier log");
    let findings: String = log
        .lines()
        .filter(|l| !["processed ", "verification time ", "stack depth "].iter().any(|p| l.starts_with(p)))
        .collect::<Vec<_>>()
        .join("\n");
    let reason = last_lines(&findings, 2);
    let reason = if reason.is_empty() { "no reason given (empty verifier log)".to_owned() } else { reason };
    let hint = if log.contains("unknown#") || log.contains("unknown func") {
        "The program calls a BPF helper this kernel does not have."
    } else if log.contains("too large") || log.contains("too complex") {
        "The kernel's verifier gave up on the program's size or complexity."
    } else {
        "This kernel's verifier could not prove the program safe."
    };
    let path = std::env::temp_dir().join(format!("monitor-verifier-{program}-{}.log", std::process::id()));
    let log_place = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut file) => match std::io::Write::write_all(&mut file, log.as_bytes()) {
            Ok(()) => path.display().to_string(),
            Err(_) => "the debug log (--log debug)".to_owned(),
        },
        Err(_) => "the debug log (--log debug)".to_owned(),
    };
    KernelError::VerifierRejected { program: program.to_owned(), kernel: kernel_release(), reason, hint, log_place }
}

/// Processed instructions a program may cost on any supported kernel:
/// well under the kernel's 1M limit, so the next feature has room.
pub const INSN_BUDGET: u32 = 150_000;

/// One program's verification on this kernel.
#[derive(Clone, Debug)]
pub struct VerifierStats {
    pub program: String,
    /// From the log's "processed N insns" line.
    pub processed_insns: u32,
    /// Wall time of the BPF_PROG_LOAD call (verification dominates it).
    pub load_time: Duration,
}

/// The BPF program types the check loads.
#[derive(Clone, Copy, Debug)]
pub(super) enum ProgramKind {
    Xdp,
    SchedCls,
}

impl ProgramKind {
    const fn bpf_type(self) -> u32 {
        match self {
            ProgramKind::Xdp => 6,      // BPF_PROG_TYPE_XDP
            ProgramKind::SchedCls => 3, // BPF_PROG_TYPE_SCHED_CLS
        }
    }

    /// As aya loads them: a program array takes only programs whose
    /// expected attach type matches its first user's.
    const fn expected_attach_type(self) -> u32 {
        match self {
            ProgramKind::Xdp => 37, // BPF_XDP
            ProgramKind::SchedCls => 0,
        }
    }
}

/// Verifies `program` from `object` again, against the maps of `ebpf` (which
/// must have been loaded from the same object), and reads the statistics.
pub(super) fn measure(
    ebpf: &Ebpf,
    object: &[u8],
    program: &str,
    kind: ProgramKind,
) -> Result<VerifierStats, KernelError> {
    let fail = |what: String| KernelError::Config(format!("verifier statistics for {program}: {what}"));
    let mut obj = aya_obj::Object::parse(object).map_err(|e| fail(e.to_string()))?;
    let mut maps = Vec::new();
    for (name, def) in &obj.maps {
        let map = ebpf.map(name).ok_or_else(|| fail(format!("map {name} was not created")))?;
        maps.push((name.clone(), map_fd(map), def.clone()));
    }
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
    obj.relocate_maps(maps.iter().map(|(name, fd, def)| (name.as_str(), *fd, def)), &text_sections)
        .map_err(|e| fail(e.to_string()))?;
    obj.relocate_calls(&text_sections).map_err(|e| fail(e.to_string()))?;
    let key = obj.programs.get(program).ok_or_else(|| fail("not in the object".into()))?.function_key();
    let function = obj.functions.get(&key).ok_or_else(|| fail("no code".into()))?;
    let insns = &function.instructions;
    let started = Instant::now();
    let (_fd, log) = raw_load(program, kind, insns.as_ptr().cast(), insns.len(), &obj.license)
        .map_err(|(e, log)| fail(format!("{e}: {}", last_lines(&log, 3))))?;
    let load_time = started.elapsed();
    let processed_insns = processed_insns(&log).ok_or_else(|| fail(format!("no statistics in the log: {log:?}")))?;
    Ok(VerifierStats { program: program.to_owned(), processed_insns, load_time })
}

fn map_fd(map: &Map) -> RawFd {
    let data = match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::Queue(d)
        | Map::ReusePortSockArray(d)
        | Map::RingBuf(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::SkStorage(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    };
    data.fd().as_fd().as_raw_fd()
}

/// The BPF_PROG_LOAD part of `union bpf_attr` (include/uapi/linux/bpf.h),
/// as far as this load needs it.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
/// BPF_LOG_STATS: the summary lines only, so the log stays small.
const BPF_LOG_STATS: u32 = 4;

/// One BPF instruction (`struct bpf_insn`; `regs` holds dst and src).
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// aya_obj's instructions are handed over as `Insn`s: same layout.
const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<aya_obj::generated::bpf_insn>());

/// BPF_PROG_LOAD with the log at its statistics level; the program's fd and
/// the log, or the error and the log.
fn raw_load(
    name: &str,
    kind: ProgramKind,
    insns: *const Insn,
    count: usize,
    license: &CStr,
) -> Result<(OwnedFd, String), (std::io::Error, String)> {
    let mut log = vec![0u8; 1 << 16];
    let mut prog_name = [0u8; 16];
    for (dst, src) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    let attr = ProgLoadAttr {
        prog_type: kind.bpf_type(),
        insn_cnt: count as u32,
        insns: insns as u64,
        license: license.as_ptr() as u64,
        log_level: BPF_LOG_STATS,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: kind.expected_attach_type(),
    };
    // SAFETY: `attr` is a valid BPF_PROG_LOAD attribute whose pointers
    // (instructions, license, log) outlive the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &attr as *const ProgLoadAttr, std::mem::size_of::<ProgLoadAttr>())
    };
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).into_owned();
    if fd < 0 {
        return Err((std::io::Error::last_os_error(), text));
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor we own.
    Ok((unsafe { OwnedFd::from_raw_fd(fd as RawFd) }, text))
}

/// "processed 1234 insns (limit 1000000) max_states_per_insn ..."
fn processed_insns(log: &str) -> Option<u32> {
    log.lines().find_map(|line| line.strip_prefix("processed ")?.split_whitespace().next()?.parse().ok())
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_processed_line() {
        let log = "func#0 @0\nprocessed 8123 insns (limit 1000000) max_states_per_insn 4 total_states 512 \
                   peak_states 400 mark_read 30\nverification time 1234 usec\n";
        assert_eq!(processed_insns(log), Some(8123));
        assert_eq!(processed_insns("nothing here"), None);
    }
}
