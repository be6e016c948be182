//! Loading the XDP observer: map sizes, port table, sampling limits.

use aya::{
    maps::{Array, MapData, ProgramArray, RingBuf},
    programs::{ProgramError, SchedClassifier, Xdp},
    Ebpf, EbpfError, EbpfLoader, VerifierLogLevel,
};
use monitor_common::{
    maps::{
        SamplingConfig, Stage, GLOBAL_COARSE_CLOCK, MAP_EVENTS, MAP_PORTS, MAP_SAMPLING, MAP_SOURCES, MAP_STAGES,
        PORT_HTTP, PORT_HTTPS, PORT_QUIC, PROGRAM_XDP,
    },
    timing::{HttpTimingConfig, MAP_HTTP_CONFIG, MAP_HTTP_EVENTS, MAP_HTTP_REQUESTS, PROGRAM_TC_HTTP},
};

use super::{attach, error::has_errno, verifier, AttachedInterface, KernelError};
use crate::config::{PortList, XdpModeArg};

/// Everything the kernel side is configured with.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub http_ports: PortList,
    pub https_ports: PortList,
    pub quic_ports: PortList,
    pub sources_max: u32,
    pub ring_bytes: u32,
    /// Total events per second over all CPUs; 0 = unlimited.
    pub events_per_sec: u64,
    /// Events per second per source; 0 = unlimited.
    pub events_per_source: u64,
    pub events_enabled: bool,
    /// Capacity of the kernel's pending HTTP request table (LRU).
    pub http_requests_max: u32,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            http_ports: PortList(vec![80, 8080]),
            https_ports: PortList(vec![443, 8443]),
            quic_ports: PortList(vec![443]),
            sources_max: monitor_common::maps::DEFAULT_SOURCES_MAX,
            ring_bytes: monitor_common::maps::DEFAULT_RING_BYTES,
            events_per_sec: 20_000,
            events_per_source: 100,
            events_enabled: true,
            http_requests_max: monitor_common::timing::DEFAULT_HTTP_REQUESTS_MAX,
        }
    }
}

impl KernelConfig {
    fn validate(&self) -> Result<(), KernelError> {
        let page = page_size();
        if !self.ring_bytes.is_power_of_two() || self.ring_bytes < page {
            return Err(KernelError::Config(format!(
                "--ring-bytes {} must be a power of two and at least the page size ({page})",
                self.ring_bytes
            )));
        }
        if self.ring_bytes > 1 << 30 {
            return Err(KernelError::Config("--ring-bytes must be at most 1 GiB".into()));
        }
        if !(1024..=16_777_216).contains(&self.sources_max) {
            return Err(KernelError::Config("--sources-max must be 1024..=16777216".into()));
        }
        if !(128..=16_777_216).contains(&self.http_requests_max) {
            return Err(KernelError::Config("--http-requests-max must be 128..=16777216".into()));
        }
        Ok(())
    }

    fn sampling(&self) -> SamplingConfig {
        let cpus = aya::util::nr_cpus().map(|n| n as u64).unwrap_or(1).max(1);
        SamplingConfig {
            // Each CPU keeps its own window; share the global budget among
            // them, rounding up so a small budget never becomes zero (= no limit).
            global_per_cpu_per_sec: self.events_per_sec.div_ceil(cpus),
            per_source_per_sec: self.events_per_source,
            events_enabled: self.events_enabled.into(),
            wakeup_bytes: self.ring_bytes / 8,
        }
    }
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

/// The loaded XDP observer. Dropping it detaches every interface.
pub struct Observer {
    ebpf: Ebpf,
    interfaces: Vec<AttachedInterface>,
    http_timing: HttpTimingStatus,
}

/// Where the HTTP timing egress program is attached, and why not elsewhere.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HttpTimingStatus {
    /// True once the egress program is attached to at least one interface.
    pub enabled: bool,
    /// Interfaces whose egress carries the program.
    pub interfaces: Vec<String>,
    /// Why it is not attached (disabled, verifier, attach failures).
    pub errors: Vec<String>,
}

impl Observer {
    /// Loads and configures the program without attaching it anywhere.
    pub fn load(config: &KernelConfig) -> Result<Self, KernelError> {
        config.validate()?;
        raise_memlock_limit();
        let coarse_clock = u32::from(verifier::has_coarse_clock());
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_COARSE_CLOCK, &coarse_clock, true)
            .map_max_entries(MAP_SOURCES, config.sources_max)
            .map_max_entries(MAP_EVENTS, config.ring_bytes)
            .map_max_entries(MAP_HTTP_REQUESTS, config.http_requests_max)
            .verifier_log_level(VerifierLogLevel::DEBUG | VerifierLogLevel::STATS)
            .load(super::objects::ebpf_object())
            .map_err(classify_load_error)?;
        configure_ports(&mut ebpf, config)?;
        let mut sampling: Array<_, SamplingConfig> =
            Array::try_from(ebpf.map_mut(MAP_SAMPLING).ok_or(missing(MAP_SAMPLING))?)?;
        sampling.set(0, config.sampling(), 0)?;
        let program: &mut Xdp = program(&mut ebpf)?;
        program.load().map_err(|e| classify_program_error(PROGRAM_XDP, e))?;
        load_stages(&mut ebpf)?;
        Ok(Observer { ebpf, interfaces: Vec::new(), http_timing: HttpTimingStatus::default() })
    }

    /// Attaches to each interface; on error, interfaces attached so far stay
    /// attached until the observer is dropped.
    /// With `netns`, the interfaces are looked up and attached from inside
    /// that network namespace.
    pub fn attach(&mut self, ifaces: &[String], mode: XdpModeArg, netns: Option<&str>) -> Result<(), KernelError> {
        let program = program(&mut self.ebpf)?;
        let attached = match netns {
            None => attach::attach_all(program, ifaces, mode),
            Some(netns) => attach::attach_all_in_netns(program, ifaces, mode, netns),
        };
        for a in &attached.0 {
            tracing::info!(iface = %a.name, ifindex = a.ifindex, mode = a.mode.as_str(), netns,
                           "XDP observer attached");
        }
        self.interfaces.extend(attached.0);
        attached.1
    }

    /// Loads the HTTP timing egress program and attaches it to every
    /// interface the XDP program is attached to (inside `netns` if given),
    /// then tells the XDP program to record requests. Never fails: what went
    /// wrong is logged and kept in [`Observer::http_timing`], and the XDP
    /// path carries on regardless.
    pub fn attach_http_timing(&mut self, netns: Option<&str>) -> &HttpTimingStatus {
        let ifaces: Vec<String> = self.interfaces.iter().map(|i| i.name.clone()).collect();
        let mut status = HttpTimingStatus::default();
        match self.load_tc() {
            Err(e) => status.errors.push(format!("loading the HTTP timing program: {e}")),
            Ok(program) => {
                let results = match netns {
                    None => Ok(attach::attach_tc_egress_all(program, &ifaces)),
                    Some(netns) => attach::in_netns(netns, || attach::attach_tc_egress_all(program, &ifaces)),
                };
                match results {
                    Err(e) => status.errors.push(e.to_string()),
                    Ok(results) => {
                        for (iface, result) in results {
                            match result {
                                Ok(()) => status.interfaces.push(iface),
                                Err(e) => status.errors.push(e),
                            }
                        }
                    }
                }
            }
        }
        if !status.interfaces.is_empty() {
            match self.set_http_recording(true) {
                Ok(()) => status.enabled = true,
                Err(e) => status.errors.push(format!("enabling request recording: {e}")),
            }
        }
        for e in &status.errors {
            tracing::warn!(error = %e, "HTTP timing unavailable here; the XDP observer carries on");
        }
        if status.enabled {
            tracing::info!(ifaces = ?status.interfaces, netns, "HTTP timing egress program attached");
        }
        self.http_timing = status;
        &self.http_timing
    }

    /// Records why HTTP timing is off (e.g. --no-http-timing).
    pub fn disable_http_timing(&mut self, reason: &str) {
        self.http_timing = HttpTimingStatus { enabled: false, interfaces: Vec::new(), errors: vec![reason.to_owned()] };
    }

    pub fn http_timing(&self) -> &HttpTimingStatus {
        &self.http_timing
    }

    /// Loads (once) and returns the TC egress program, e.g. for BPF_PROG_TEST_RUN.
    pub fn load_tc(&mut self) -> Result<&mut SchedClassifier, KernelError> {
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(PROGRAM_TC_HTTP)
            .ok_or_else(|| KernelError::Config(format!("program {PROGRAM_TC_HTTP} missing from the object")))?
            .try_into()?;
        if program.fd().is_err() {
            program.load().map_err(|e| classify_program_error(PROGRAM_TC_HTTP, e))?;
        }
        Ok(program)
    }

    /// Turns request recording in the XDP program on or off.
    pub fn set_http_recording(&mut self, on: bool) -> Result<(), KernelError> {
        let mut config: Array<_, HttpTimingConfig> =
            Array::try_from(self.ebpf.map_mut(MAP_HTTP_CONFIG).ok_or(missing(MAP_HTTP_CONFIG))?)?;
        config.set(0, HttpTimingConfig { enabled: on.into(), _pad: 0 }, 0)?;
        Ok(())
    }

    /// Takes the HTTP response event ring buffer (once).
    pub fn take_http_events(&mut self) -> Result<RingBuf<MapData>, KernelError> {
        let map = self.ebpf.take_map(MAP_HTTP_EVENTS).ok_or(missing(MAP_HTTP_EVENTS))?;
        Ok(RingBuf::try_from(map)?)
    }

    pub fn interfaces(&self) -> &[AttachedInterface] {
        &self.interfaces
    }

    /// The XDP program, e.g. for BPF_PROG_TEST_RUN.
    pub fn program(&mut self) -> Result<&mut Xdp, KernelError> {
        program(&mut self.ebpf)
    }

    /// Takes the event ring buffer (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, KernelError> {
        let map = self.ebpf.take_map(MAP_EVENTS).ok_or(missing(MAP_EVENTS))?;
        Ok(RingBuf::try_from(map)?)
    }

    pub(super) fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    pub(super) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, KernelError> {
    let program = ebpf
        .program_mut(PROGRAM_XDP)
        .ok_or_else(|| KernelError::Config(format!("program {PROGRAM_XDP} missing from the object")))?;
    Ok(program.try_into()?)
}

/// Loads the observer's later stages and puts them in the stage table the
/// first stage tail-calls through. The table stays open in `ebpf`: the
/// kernel empties a program array when its last file descriptor closes.
fn load_stages(ebpf: &mut Ebpf) -> Result<(), KernelError> {
    let mut fds = Vec::new();
    for stage in Stage::ALL {
        let name = stage.program();
        let program: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| KernelError::Config(format!("program {name} missing from the object")))?
            .try_into()?;
        program.load().map_err(|e| classify_program_error(name, e))?;
        fds.push((stage, program.fd()?.try_clone().map_err(|e| KernelError::Config(format!("{name}: {e}")))?));
    }
    let mut table = ProgramArray::try_from(ebpf.map_mut(MAP_STAGES).ok_or(missing(MAP_STAGES))?)?;
    for (stage, fd) in &fds {
        table.set(*stage as u32, fd, 0)?;
    }
    Ok(())
}

pub(super) fn missing(name: &str) -> KernelError {
    KernelError::Config(format!("map {name} missing from the object"))
}

fn configure_ports(ebpf: &mut Ebpf, config: &KernelConfig) -> Result<(), KernelError> {
    let mut table: Array<_, u8> = Array::try_from(ebpf.map_mut(MAP_PORTS).ok_or(missing(MAP_PORTS))?)?;
    let mut flags = std::collections::BTreeMap::<u16, u8>::new();
    for (list, flag) in
        [(&config.http_ports, PORT_HTTP), (&config.https_ports, PORT_HTTPS), (&config.quic_ports, PORT_QUIC)]
    {
        for &port in &list.0 {
            *flags.entry(port).or_default() |= flag;
        }
    }
    for (port, flag) in flags {
        if flag & PORT_HTTP != 0 && flag & PORT_HTTPS != 0 {
            return Err(KernelError::Config(format!("port {port} is in both the HTTP and the HTTPS list")));
        }
        table.set(u32::from(port), flag, 0)?;
    }
    Ok(())
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) } != 0 {
        tracing::debug!("could not raise RLIMIT_MEMLOCK; fine on kernels >= 5.11");
    }
}

const PERMISSION: [i32; 2] = [libc::EPERM, libc::EACCES];

fn classify_load_error(error: EbpfError) -> KernelError {
    if has_errno(&error, &PERMISSION) {
        return KernelError::PermissionDenied(error);
    }
    KernelError::Ebpf(error)
}

fn classify_program_error(program: &str, error: ProgramError) -> KernelError {
    match error {
        ProgramError::LoadError { io_error, verifier_log } => {
            if PERMISSION.contains(&io_error.raw_os_error().unwrap_or(0)) && verifier_log.to_string().trim().is_empty()
            {
                KernelError::PermissionDenied(EbpfError::ProgramError(ProgramError::LoadError {
                    io_error,
                    verifier_log,
                }))
            } else {
                verifier::rejected(program, &verifier_log.to_string())
            }
        }
        other => KernelError::Program(other),
    }
}
