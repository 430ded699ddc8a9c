//! The real programs the tests run beside the suite (Prometheus, Jaeger, the Collector), found through their install scripts.

use std::path::{Path, PathBuf};

/// The repository's root, from this crate's source folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary `scripts/<script>` installs: each install script prints its
/// program's path (honouring its `*_BIN` override, reusing what is installed),
/// so the tests and `make test` agree on one place without repeating it here.
pub fn installed_program(script: &str) -> PathBuf {
    let path = repo_root().join("scripts").join(script);
    let output = std::process::Command::new(&path)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", path.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(printed.lines().last().unwrap_or_default().trim())
}
