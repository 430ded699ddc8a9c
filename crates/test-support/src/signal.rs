//! Signals to child processes, through `kill(1)`: the workspace forbids the unsafe code libc would need.

/// Sends `signal` (e.g. `-TERM`, `-STOP`) to `pid`; panics if it cannot.
pub(crate) fn send(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    assert!(
        status.is_ok_and(|status| status.success()),
        "kill {signal} {pid} failed"
    );
}
