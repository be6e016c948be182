//! Section 1: the kernel's own per-run time (BPF_PROG_TEST_RUN) of the real
//! XDP observer, per packet class and configuration, next to the trivial
//! XDP_PASS baseline program.

use anyhow::{bail, Context as _};
use aya::{
    maps::{MapData, RingBuf},
    programs::{TestRun as _, TestRunOptions, Xdp},
    Ebpf,
};
use monitor::sources::kernel::{KernelConfig, Observer};
use serde_json::json;

use crate::frames;

const XDP_PASS: u32 = 2;
/// Ring buffer for the unlimited event path: big enough for a whole chunk.
const RING_BYTES: u32 = 64 << 20;
/// Bytes one event takes in the ring (record plus the 8-byte header).
const EVENT_BYTES: u32 = 336;

pub(crate) struct Args {
    pub repeat: u32,
    /// Measurements per case; the median is reported.
    pub rounds: u32,
}

/// One measured program: the baseline or a configuration of the observer.
enum Subject {
    Baseline(Ebpf),
    Observer { observer: Box<Observer>, ring: RingBuf<MapData> },
}

impl Subject {
    fn program(&mut self) -> anyhow::Result<&mut Xdp> {
        match self {
            Subject::Baseline(ebpf) => {
                let p = ebpf.program_mut("baseline_xdp").context("baseline_xdp missing")?;
                Ok(p.try_into()?)
            }
            Subject::Observer { observer, .. } => Ok(observer.program()?),
        }
    }

    fn counters(&self) -> anyhow::Result<Option<monitor::sources::kernel::KernelCounters>> {
        Ok(match self {
            Subject::Observer { observer, .. } => Some(observer.counters()?),
            Subject::Baseline(_) => None,
        })
    }

    fn drain(&mut self) -> u64 {
        let mut n = 0;
        if let Subject::Observer { ring, .. } = self {
            while ring.next().is_some() {
                n += 1;
            }
        }
        n
    }

    /// Average ns per run over `repeat` runs, in chunks of at most `chunk`
    /// (the ring is drained between chunks so it never fills).
    fn time(&mut self, frame: &[u8], repeat: u32, chunk: u32) -> anyhow::Result<f64> {
        let mut total_ns = 0f64;
        let mut left = repeat;
        while left > 0 {
            let n = left.min(chunk);
            let mut opts = TestRunOptions::new();
            opts.data_in = Some(frame);
            opts.repeat = n;
            let r = self.program()?.test_run(opts).context("BPF_PROG_TEST_RUN")?;
            if r.return_value != XDP_PASS {
                bail!("program returned {} instead of XDP_PASS", r.return_value);
            }
            total_ns += r.duration.as_nanos() as f64 * f64::from(n);
            left -= n;
            self.drain();
        }
        Ok(total_ns / f64::from(repeat))
    }
}

fn observer(config: KernelConfig) -> anyhow::Result<Subject> {
    let mut observer = Observer::load(&config).context("loading the XDP observer (root needed)")?;
    let ring = observer.take_events()?;
    Ok(Subject::Observer { observer: Box::new(observer), ring })
}

fn baseline() -> anyhow::Result<Subject> {
    let mut ebpf = Ebpf::load(monitor::baseline_object()).context("loading the baseline object")?;
    let program: &mut Xdp = ebpf.program_mut("baseline_xdp").context("baseline_xdp missing")?.try_into()?;
    program.load().context("loading baseline_xdp")?;
    Ok(Subject::Baseline(ebpf))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let unlimited =
        KernelConfig { events_per_sec: 0, events_per_source: 0, ring_bytes: RING_BYTES, ..KernelConfig::default() };
    type Make = Box<dyn Fn() -> anyhow::Result<Subject>>;
    let configs: Vec<(&str, Make)> = vec![
        ("baseline", Box::new(baseline)),
        ("counting", Box::new(|| observer(KernelConfig { events_enabled: false, ..KernelConfig::default() }))),
        ("events_unlimited", Box::new(move || observer(unlimited.clone()))),
        // The daemon's defaults: 100 events/s per source, 20k/s in total.
        // The same source repeated a million times: nearly all suppressed.
        ("events_sampled", Box::new(|| observer(KernelConfig::default()))),
    ];
    let chunk = (RING_BYTES / EVENT_BYTES / 2).max(1);
    for (config, make) in &configs {
        // One program per configuration (loading runs the verifier, which
        // takes a while); counters are read before and after each case.
        let mut subject = make()?;
        for (class, frame) in frames::classes() {
            // Warm-up: JIT'ed code and map entries in cache.
            subject.time(&frame, args.repeat.min(1000), chunk)?;
            let before = subject.counters()?;
            let mut samples = Vec::new();
            for _ in 0..args.rounds.max(1) {
                samples.push(subject.time(&frame, args.repeat, chunk)?);
            }
            let pipeline = match (before, subject.counters()?) {
                (Some(a), Some(b)) => json!({
                    "eligible": b.pipeline.event_eligible - a.pipeline.event_eligible,
                    "submitted": b.pipeline.event_submitted - a.pipeline.event_submitted,
                    "suppressed": (b.pipeline.suppressed_source + b.pipeline.suppressed_global)
                        - (a.pipeline.suppressed_source + a.pipeline.suppressed_global),
                    "ring_full": b.pipeline.ring_full - a.pipeline.ring_full,
                    "counted": b.classes.iter().map(|x| x.packets).sum::<u64>()
                        - a.classes.iter().map(|x| x.packets).sum::<u64>()}),
                _ => json!(null),
            };
            println!(
                "{}",
                json!({"config": config, "class": class, "frame_len": frame.len(), "repeat": args.repeat,
                       "rounds": args.rounds, "ns": median(samples.clone()), "samples": samples,
                       "pipeline": pipeline})
            );
        }
    }
    Ok(())
}
