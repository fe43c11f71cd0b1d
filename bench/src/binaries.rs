//! The service binaries a full run starts: which they are, the command that builds them, and whether the
//! billing-svc among them offers `--write-mode`.

use anyhow::Context;
use harness::Launcher;

/// The binaries a full run needs, and the command that builds them.
pub const SERVICES: [&str; 4] = ["billing-svc", "executor-svc", "gateway", "mock-model"];
pub const BUILD_COMMAND: &str =
    "cargo build --release -p billing-svc -p executor-svc -p gateway -p mock-model";

/// Fails with the build command when a service binary is missing from the launcher's folder.
pub fn check(launcher: &Launcher) -> anyhow::Result<()> {
    for name in SERVICES {
        launcher.binary(name).with_context(|| {
            format!(
                "the bench starts {} from --bin-dir (default: its own folder), release builds for \
                 figures (`{BUILD_COMMAND}`)",
                SERVICES.join(", ")
            )
        })?;
    }
    Ok(())
}

/// True when `billing-svc --help` offers `--write-mode` (group commit has landed).
pub fn billing_has_write_mode(launcher: &Launcher) -> anyhow::Result<bool> {
    let output = std::process::Command::new(launcher.binary("billing-svc")?)
        .arg("--help")
        .output()
        .context("run billing-svc --help")?;
    Ok(String::from_utf8_lossy(&output.stdout).contains("write-mode"))
}
