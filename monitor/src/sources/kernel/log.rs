//! Kernel diagnostics: the programs' rare conditions (a map insert that
//! failed, a header chain the parser gave up on, a failed tail call),
//! written with aya-log into their own ring buffer and passed on here to
//! `tracing` at debug level, target `monitor::kernel`. Nothing on a packet's
//! common path logs.

use aya_log::EbpfLogger;
use tokio::{io::unix::AsyncFd, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{KernelError, Observer};

/// Forwards aya-log records to `tracing`.
pub(super) struct KernelLog;

impl log::Log for KernelLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        tracing::enabled!(target: "monitor::kernel", tracing::Level::DEBUG)
    }

    fn log(&self, record: &log::Record<'_>) {
        tracing::debug!(target: "monitor::kernel", level = %record.level(), "{}", record.args());
    }

    fn flush(&self) {}
}

impl Observer {
    /// Takes the kernel programs' log ring (once); `flush` passes what it
    /// holds to `logger`.
    pub fn kernel_log<L: log::Log>(&mut self, logger: L) -> Result<EbpfLogger<L>, KernelError> {
        EbpfLogger::init_with_logger(self.ebpf_mut(), logger)
            .map_err(|e| KernelError::Config(format!("kernel log: {e}")))
    }
}

/// Reads the kernel programs' log records until their ring buffer fails.
pub fn spawn_kernel_log(observer: &mut Observer, stop: CancellationToken) -> Result<JoinHandle<()>, KernelError> {
    let logger = observer.kernel_log(KernelLog)?;
    // SAFETY: the logger owns its ring buffer's fd and keeps it open and
    // unchanged for as long as the AsyncFd owns the logger.
    let mut fd = unsafe { AsyncFd::register(logger) }.map_err(|e| KernelError::Config(format!("kernel log: {e}")))?;
    Ok(tokio::spawn(async move {
        loop {
            let readable = tokio::select! {
                () = stop.cancelled() => return,
                readable = fd.readable_mut() => readable,
            };
            match readable {
                Ok(mut guard) => {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                Err(error) => {
                    tracing::warn!(%error, "kernel log ring failed; kernel diagnostics stop");
                    return;
                }
            }
        }
    }))
}
