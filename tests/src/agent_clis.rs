//! The real coding-agent CLIs, run as their users run them: Claude Code (`claude -p`) and Codex (`codex
//! exec`) from npm, pinned in `tests/agents/package-lock.json` and installed by `scripts/test` into
//! `target/agents` (or the folder `AGENT_CLIS` names). Each run gets an empty environment but `PATH`, its own
//! `HOME` and the variables the test gives, no standard input, and is killed after [`CLI_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::docs_harness::workspace_root;

/// The longest one CLI run may take; a run that takes longer fails the test.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(90);

/// A coding-agent CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentCli {
    ClaudeCode,
    Codex,
}

impl AgentCli {
    fn binary_name(self) -> &'static str {
        match self {
            AgentCli::ClaudeCode => "claude",
            AgentCli::Codex => "codex",
        }
    }

    /// The installed CLI. Panics when it is missing: the agent tests are part of the suite, never skipped.
    pub fn path(self) -> PathBuf {
        let dir = std::env::var_os("AGENT_CLIS")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/agents"));
        let path = dir.join("node_modules/.bin").join(self.binary_name());
        assert!(
            path.exists(),
            "{} is missing: run ./scripts/test, which installs Claude Code and Codex from \
             tests/agents/package-lock.json into target/agents, or set AGENT_CLIS",
            path.display()
        );
        path
    }
}

/// How one run of a CLI ended.
#[derive(Debug)]
pub struct CliRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl CliRun {
    /// Everything it printed, for assertions on what a user reads.
    pub fn printed(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with everything printed unless the run exited 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n{}",
            self.status,
            self.printed()
        );
    }

    /// Panics unless the run failed within `limit` and printed `words` (case-insensitive).
    pub fn assert_stopped_saying(&self, what: &str, limit: Duration, words: &[&str]) {
        assert!(
            !self.status.success(),
            "{what} succeeded:\n{}",
            self.printed()
        );
        assert!(
            self.elapsed < limit,
            "{what} took {:?} (more than {limit:?}):\n{}",
            self.elapsed,
            self.printed()
        );
        let printed = self.printed().to_lowercase();
        for word in words {
            assert!(
                printed.contains(&word.to_lowercase()),
                "{what} did not print {word:?}:\n{}",
                self.printed()
            );
        }
    }
}

/// Runs `cli` with `args` in `dir`, `HOME` = `home`, and `envs`.
pub async fn run(
    cli: AgentCli,
    args: &[&str],
    dir: &Path,
    home: &Path,
    envs: &[(&str, &str)],
) -> CliRun {
    let mut command = Command::new(cli.path());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in envs {
        command.env(key, value);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(CLI_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{cli:?} {args:?} did not finish in {CLI_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("run {cli:?}: {error}"));
    CliRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}
