//! Log lines written off the request path: a thread of its own writes them from a bounded queue, which drops, and counts, lines when the output stalls.
//!
//! Written from a Tokio worker straight to stdout, a log line waits for the
//! pipe: when whatever reads it (a container runtime, a terminal, a test)
//! falls behind and the pipe's 64 KiB fill, every request that logs stops
//! with it. Here a line is queued and the request goes on; a full queue
//! (`BUFFERED_LINES`) drops the line rather than wait. The lines dropped are
//! counted in `eshop.logs.dropped` (over OTLP) and said on stderr at exit;
//! the same events still go out as OTLP log records, which have their own
//! bounded queue.

use std::io::Write;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Lines queued for the writer thread before new ones are dropped: at a few
/// hundred bytes a line, a few MiB at most.
pub(crate) const BUFFERED_LINES: usize = 8_192;

/// The writer thread: flushed when dropped (at exit), with what it dropped said on stderr.
#[derive(Debug)]
pub struct LogWriterGuard {
    worker: WorkerGuard,
    dropped: ErrorCounter,
    _counted: Option<opentelemetry::metrics::ObservableCounter<u64>>,
}

impl LogWriterGuard {
    /// Writes what is queued and stops the thread.
    pub(crate) fn flush(self) {
        let Self { worker, dropped, .. } = self;
        drop(worker);
        let dropped = dropped.dropped_lines();
        if dropped > 0 {
            eprintln!("telemetry: {dropped} log lines were dropped because the output did not keep up");
        }
    }

    /// Counts the dropped lines as a metric, once the meter provider is global.
    pub(crate) fn count_dropped(&mut self) {
        let dropped = self.dropped.clone();
        self._counted = Some(
            opentelemetry::global::meter(crate::metrics::SCOPE)
                .u64_observable_counter(crate::semconv::eshop::metric::LOGS_DROPPED)
                .with_unit("{line}")
                .with_description("Log lines dropped because stdout did not keep up.")
                .with_callback(move |observer| {
                    observer.observe(u64::try_from(dropped.dropped_lines()).unwrap_or(u64::MAX), &[]);
                })
                .build(),
        );
    }
}

/// A writer for the log layer that queues lines for a thread writing to `out`.
pub(crate) fn off_the_request_path<W: Write + Send + 'static>(out: W) -> (NonBlocking, LogWriterGuard) {
    let (writer, worker) = NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(true)
        .thread_name("log-writer")
        .finish(out);
    let dropped = writer.error_counter();
    (
        writer,
        LogWriterGuard {
            worker,
            dropped,
            _counted: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Barrier},
    };

    use tracing_subscriber::fmt::MakeWriter as _;

    use super::*;

    /// An output that blocks until the barrier opens, like a pipe nobody reads.
    struct Stalled(Arc<Barrier>);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.wait();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_instead_of_blocking() {
        let barrier = Arc::new(Barrier::new(2));
        let (writer, guard) = off_the_request_path(Stalled(barrier.clone()));
        // The writer thread takes the first line and blocks on it; the queue
        // fills; every line after that is dropped, and none of these writes waits.
        for _ in 0..BUFFERED_LINES + 100 {
            writer
                .make_writer()
                .write_all(b"a line\n")
                .expect("queued or dropped, never an error");
        }
        assert!(
            guard.dropped.dropped_lines() >= 99,
            "{} dropped",
            guard.dropped.dropped_lines()
        );
        // Let the writer through so the guard's flush ends.
        std::thread::spawn(move || {
            loop {
                barrier.wait();
            }
        });
        guard.flush();
    }
}
