//! What the processes behind a measured window cost: CPU seconds (from `/proc/<pid>/stat`), context
//! switches (from each thread's `/proc/<pid>/task/<tid>/status`) and, with `--count-fsyncs`, the
//! `fsync`/`fdatasync` calls they made (counted by `perf stat` on the syscall tracepoints, which costs them
//! next to nothing, unlike `strace`). Divided by the settlements of the window, these say whether a run is
//! bound by the disk's flushes, by CPU, or by handing work between threads.

use std::path::{Path, PathBuf};
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
    /// Voluntary plus involuntary context switches of the threads alive at either end of the window.
    pub context_switches: u64,
    /// Null unless `--count-fsyncs` was given and `perf` could count.
    pub fsyncs: Option<u64>,
}

/// A measurement in progress.
pub struct Probe {
    pids: Vec<u32>,
    cpu_ticks_at_start: u64,
    context_switches_at_start: u64,
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
            context_switches_at_start: context_switches(&pids),
            pids,
            perf,
        }
    }

    /// Stops measuring; waits for `perf` to report.
    pub async fn finish(self) -> Cost {
        let ticks = cpu_ticks(&self.pids).saturating_sub(self.cpu_ticks_at_start);
        let switches = context_switches(&self.pids).saturating_sub(self.context_switches_at_start);
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
            context_switches: switches,
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

/// Context switches so far of the live threads of `pids` (0 for a process that is gone). The process's
/// own `/proc/<pid>/status` counts its main thread only, hence the sum over `/proc/<pid>/task`. A thread
/// that ends takes its count with it, so a window's difference misses the switches of threads that end
/// inside it and counts all of those of threads that start inside it.
fn context_switches(pids: &[u32]) -> u64 {
    pids.iter()
        .flat_map(|pid| tasks(Path::new(&format!("/proc/{pid}/task"))))
        .filter_map(|task| task_context_switches(&task))
        .sum()
}

/// The directories of the live threads under `task_root` (a `/proc/<pid>/task`); none when it is gone.
fn tasks(task_root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(task_root)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

/// Context switches so far of the thread whose `/proc` directory is `task`; none once it has ended.
fn task_context_switches(task: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(task.join("status")).ok()?;
    status_context_switches(&status)
}

/// What this process's live threads named `name` have used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadsUsage {
    pub cpu_secs: f64,
    pub context_switches: u64,
}

/// User plus system CPU time and context switches so far of this process's live threads named `name` (a
/// thread's name is its `comm`, at most 15 bytes). `/proc/<tid>/stat` would count the whole process,
/// hence `/proc/self/task`.
pub fn own_threads_usage(name: &str) -> ThreadsUsage {
    let (mut ticks, mut context_switches) = (0, 0);
    for task in tasks(Path::new("/proc/self/task")) {
        let Ok(stat) = std::fs::read_to_string(task.join("stat")) else {
            continue;
        };
        if stat_command(&stat) == Some(name) {
            ticks += stat_cpu_ticks(&stat).unwrap_or(0);
            context_switches += task_context_switches(&task).unwrap_or(0);
        }
    }
    ThreadsUsage {
        cpu_secs: ticks as f64 / clock_ticks_per_sec(),
        context_switches,
    }
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

/// `voluntary_ctxt_switches` plus `nonvoluntary_ctxt_switches` of a `status` file (one thread's when it
/// is a task's).
fn status_context_switches(status: &str) -> Option<u64> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().parse::<u64>().ok()
        })
    };
    field("voluntary_ctxt_switches")?.checked_add(field("nonvoluntary_ctxt_switches")?)
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
        assert_eq!(context_switches(&[u32::MAX]), 0);
        let nobody = own_threads_usage("no such thread");
        assert_eq!((nobody.cpu_secs, nobody.context_switches), (0.0, 0));
    }

    #[test]
    fn context_switches_are_summed_over_threads() {
        let me = std::process::id();
        // A second thread that has switched at least once (it slept) and stays alive while we sample.
        let (ready, is_ready) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            ready.send(()).unwrap();
            let _ = stopped.recv();
        });
        is_ready.recv().unwrap();

        // The main thread's count first: the per-thread sum, read later, holds it and the helper's too.
        let main_thread_only = std::fs::read_to_string(format!("/proc/{me}/status"))
            .ok()
            .and_then(|status| status_context_switches(&status))
            .unwrap();
        let all_threads = context_switches(&[me]);

        drop(stop);
        helper.join().unwrap();
        assert!(all_threads > main_thread_only);
    }

    #[test]
    fn status_gives_voluntary_plus_involuntary_switches() {
        let status = "Name:\tbilling-svc\nState:\tS (sleeping)\nThreads:\t7\n\
                      voluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";
        assert_eq!(status_context_switches(status), Some(1234));
        assert_eq!(
            status_context_switches("voluntary_ctxt_switches:\t5\n"),
            None,
            "both counts are needed"
        );
        assert_eq!(
            status_context_switches(
                "voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t1\n"
            ),
            None
        );
    }

    #[test]
    fn stat_lines_give_command_and_cpu_ticks() {
        let stat =
            "4242 (null (billing)) S 1 4242 4242 0 -1 4194560 10 0 0 0 7 5 0 0 20 0 3 0 1 2 3";
        assert_eq!(stat_command(stat), Some("null (billing)"));
        assert_eq!(stat_cpu_ticks(stat), Some(12));
    }
}
