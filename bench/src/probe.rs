//! What the processes behind a measured window cost: CPU seconds (from `/proc/<pid>/stat`) and, with
//! `--count-fsyncs`, the `fsync`/`fdatasync` calls they made (counted by `perf stat` on the syscall
//! tracepoints, which costs them next to nothing, unlike `strace`). Divided by the settlements of the
//! window, these say whether a run is bound by the disk's flushes or by CPU.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::process::{Child, Command};

/// The syscalls that make a commit durable on SQLite (WAL) and PostgreSQL (WAL flush).
const FSYNC_EVENTS: &str = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync";

/// Costs of one group of processes over a window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    pub cpu_secs: f64,
    /// Null unless `--count-fsyncs` was given and `perf` could count.
    pub fsyncs: Option<u64>,
}

/// A measurement in progress.
pub struct Probe {
    pids: Vec<u32>,
    cpu_ticks_at_start: u64,
    perf: Option<Child>,
}

impl Probe {
    /// Starts measuring `pids` for `window` (the `perf` counter stops by itself after it).
    pub fn start(pids: Vec<u32>, count_fsyncs: bool, window: Duration) -> Probe {
        let perf = count_fsyncs
            .then(|| spawn_perf(&pids, window))
            .and_then(|spawned| {
                spawned
                    .inspect_err(|error| eprintln!("bench: cannot count fsyncs: {error:#}"))
                    .ok()
            });
        Probe {
            cpu_ticks_at_start: cpu_ticks(&pids),
            pids,
            perf,
        }
    }

    /// Stops measuring; waits for `perf` to report.
    pub async fn finish(self) -> Cost {
        let ticks = cpu_ticks(&self.pids).saturating_sub(self.cpu_ticks_at_start);
        let fsyncs = match self.perf {
            Some(perf) => match perf.wait_with_output().await {
                Ok(output) => parse_perf_counts(&String::from_utf8_lossy(&output.stderr)),
                Err(error) => {
                    eprintln!("bench: perf stat failed: {error}");
                    None
                }
            },
            None => None,
        };
        Cost {
            cpu_secs: ticks as f64 / clock_ticks_per_sec(),
            fsyncs,
        }
    }
}

fn spawn_perf(pids: &[u32], window: Duration) -> anyhow::Result<Child> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    Command::new("perf")
        .args(["stat", "-x", ",", "-e", FSYNC_EVENTS, "-p", &pids.join(",")])
        .args(["--", "sleep", &format!("{:.3}", window.as_secs_f64())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run perf stat (is perf installed and allowed?)")
}

/// Sums the counts of `perf stat -x,` output (`<count>,<unit>,<event>,...` per line).
fn parse_perf_counts(output: &str) -> Option<u64> {
    let counts: Vec<u64> = output
        .lines()
        .filter(|line| line.contains("sys_enter_"))
        .filter_map(|line| line.split(',').next()?.trim().parse().ok())
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum())
}

/// User plus system CPU time of `pids` so far, in clock ticks (0 for a process that is gone).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| stat_cpu_ticks(&stat))
        .sum()
}

/// User plus system CPU time so far of this process's live threads named `name` (a thread's name is its
/// `comm`, at most 15 bytes), in seconds. `/proc/<tid>/stat` would count the whole process, hence
/// `/proc/self/task`.
pub fn own_threads_cpu_secs(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ticks: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter(|stat| stat_command(stat) == Some(name))
        .filter_map(|stat| stat_cpu_ticks(&stat))
        .sum();
    ticks as f64 / clock_ticks_per_sec()
}

/// The command name of a `stat` line, between the first `(` and the last `)`.
fn stat_command(stat: &str) -> Option<&str> {
    let (head, _) = stat.rsplit_once(')')?;
    Some(head.split_once('(')?.1)
}

/// utime + stime of a `stat` line, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The fields after the command name, which may itself hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `pid` and its direct children (PostgreSQL's postmaster and its backends, WAL writer, checkpointer).
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if parent == Some(pid) {
            pids.push(child);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_counts_are_summed() {
        let output = "\n12,,syscalls:sys_enter_fsync,5000000,100.00,,\n\
                      30,,syscalls:sys_enter_fdatasync,5000000,100.00,,\n";
        assert_eq!(parse_perf_counts(output), Some(42));
        assert_eq!(parse_perf_counts("<not supported>,,x\n"), None);
    }

    #[test]
    fn processes_are_read_from_proc() {
        let me = std::process::id();
        assert!(with_children(me).contains(&me));
        assert_eq!(
            cpu_ticks(&[u32::MAX]),
            0,
            "a process that is gone costs nothing"
        );
        assert_eq!(own_threads_cpu_secs("no such thread"), 0.0);
    }

    #[test]
    fn stat_lines_give_command_and_cpu_ticks() {
        let stat =
            "4242 (null (billing)) S 1 4242 4242 0 -1 4194560 10 0 0 0 7 5 0 0 20 0 3 0 1 2 3";
        assert_eq!(stat_command(stat), Some("null (billing)"));
        assert_eq!(stat_cpu_ticks(stat), Some(12));
    }
}
