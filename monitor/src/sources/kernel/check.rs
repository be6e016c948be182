//! `monitor --check-kernel`: whether this kernel runs every kernel program
//! Monitor has, and what each costs its verifier.

use std::fmt;

use aya::{programs::Xdp, Ebpf};
use monitor_common::{
    maps::{Stage, PROGRAM_BASELINE, PROGRAM_XDP},
    timing::PROGRAM_TC_HTTP,
};

use super::{
    verifier::{self, ProgramKind, VerifierStats, INSN_BUDGET},
    KernelConfig, KernelError, Observer,
};

/// One program's outcome on this kernel.
pub struct ProgramCheck {
    pub program: &'static str,
    pub outcome: Result<VerifierStats, String>,
}

impl ProgramCheck {
    pub fn passed(&self) -> bool {
        self.outcome.as_ref().is_ok_and(|s| s.processed_insns <= INSN_BUDGET)
    }
}

/// Every program, loaded the way the daemon loads it, then measured.
pub struct KernelCheck {
    pub kernel: String,
    pub programs: Vec<ProgramCheck>,
}

impl KernelCheck {
    pub fn run(config: &KernelConfig) -> KernelCheck {
        let object = super::objects::ebpf_object();
        let mut programs = Vec::new();
        let observed: Vec<(&'static str, ProgramKind)> = [(PROGRAM_XDP, ProgramKind::Xdp)]
            .into_iter()
            .chain(Stage::ALL.map(|s| (s.program(), ProgramKind::Xdp)))
            .chain([(PROGRAM_TC_HTTP, ProgramKind::SchedCls)])
            .collect();
        match Observer::load(config) {
            Err(e) => programs.push(ProgramCheck { program: PROGRAM_XDP, outcome: Err(e.to_string()) }),
            Ok(mut observer) => {
                let tc = observer.load_tc().map(|_| ()).map_err(|e| e.to_string());
                for (program, kind) in observed {
                    let outcome = match (&tc, kind) {
                        (Err(e), ProgramKind::SchedCls) => Err(e.clone()),
                        _ => verifier::measure(observer.ebpf(), object, program, kind).map_err(|e| e.to_string()),
                    };
                    programs.push(ProgramCheck { program, outcome });
                }
            }
        }
        let outcome = baseline().map_err(|e| e.to_string());
        programs.push(ProgramCheck { program: PROGRAM_BASELINE, outcome });
        KernelCheck { kernel: verifier::kernel_release(), programs }
    }

    pub fn passed(&self) -> bool {
        self.programs.iter().all(ProgramCheck::passed)
    }
}

fn baseline() -> Result<VerifierStats, KernelError> {
    let object = super::objects::baseline_object();
    let mut ebpf = Ebpf::load(object)?;
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_BASELINE)
        .ok_or_else(|| KernelError::Config(format!("program {PROGRAM_BASELINE} missing")))?
        .try_into()?;
    program.load()?;
    verifier::measure(&ebpf, object, PROGRAM_BASELINE, ProgramKind::Xdp)
}

/// One `key=value` line per program, for people and scripts alike.
impl fmt::Display for KernelCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "check-kernel kernel={} budget={INSN_BUDGET}", self.kernel)?;
        for check in &self.programs {
            match &check.outcome {
                Ok(stats) => writeln!(
                    f,
                    "check-kernel program={} insns={} load_ms={:.1} status={}",
                    check.program,
                    stats.processed_insns,
                    stats.load_time.as_secs_f64() * 1e3,
                    if check.passed() { "ok" } else { "over-budget" }
                )?,
                Err(e) => writeln!(f, "check-kernel program={} status=failed error={e:?}", check.program)?,
            }
        }
        Ok(())
    }
}
