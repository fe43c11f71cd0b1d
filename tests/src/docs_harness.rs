//! What the documentation tests need: the runnable examples of a Markdown file turned into one bash
//! script and run against a real stack, the tools those examples call (`DOCS_TOOLS_BIN`), the devstack
//! binary run as a process, and the environment variables each service binary accepts (from its `-h`).
//!
//! An example runs when its fence names a language: ```` ```sh ```` / `bash` (run as they are), ```` ```js ````
//! (Node, as an ES module, so top-level `await` works) and ```` ```python ````. Any other fence (`console`,
//! `json`, `text`, none) is illustration only. A document's examples share one shell, in order, so a
//! variable exported by one is seen by the next.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{START_TIMEOUT, binary_path};

/// Longest run of one document's examples.
pub const EXAMPLES_TIMEOUT: Duration = Duration::from_secs(180);

/// Longest wait for devstack to stop after a signal (executor-svc drains first).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (the parent of the `tests` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// A file of the workspace as text.
pub fn read_workspace_file(relative: &str) -> String {
    let path = workspace_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// How a runnable example is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Shell,
    JavaScript,
    Python,
}

impl Language {
    fn from_fence(info: &str) -> Option<Language> {
        match info.split_whitespace().next()? {
            "sh" | "bash" => Some(Language::Shell),
            "js" | "javascript" => Some(Language::JavaScript),
            "python" | "py" => Some(Language::Python),
            _ => None,
        }
    }
}

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct CodeBlock {
    /// The fence's info string (`sh`, `console`, ...), empty when there is none.
    pub info: String,
    pub code: String,
    /// 1-based line of the opening fence.
    pub line: usize,
}

impl CodeBlock {
    /// The language it runs in, `None` for an illustration.
    pub fn language(&self) -> Option<Language> {
        Language::from_fence(&self.info)
    }
}

/// Every fenced (```` ``` ````) code block of `markdown`, in order. Panics on an unclosed fence, which
/// would otherwise hide the rest of the document from the tests.
pub fn code_blocks(markdown: &str) -> Vec<CodeBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<CodeBlock> = None;
    for (index, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(CodeBlock {
                    info: info.trim().to_string(),
                    code: String::new(),
                    line: index + 1,
                });
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => {
                blocks.extend(open.take());
            }
            (Some(block), _) => {
                block.code.push_str(line);
                block.code.push('\n');
            }
            (None, None) => {}
        }
    }
    if let Some(block) = open {
        panic!(
            "the code block opened at line {} is never closed",
            block.line
        );
    }
    blocks
}

/// The runnable examples of `markdown` (file name `name` for messages) as one bash script: shell examples
/// as they are, the others fed to `node` / `python3` through a quoted heredoc. The first failing command
/// stops the script, and the example it belongs to is named on stderr.
pub fn examples_script(name: &str, markdown: &str) -> String {
    const END: &str = "__DOCS_EXAMPLE_END__";
    let mut script = String::from(
        "set -euo pipefail\ntrap 'echo \"docs example failed: $DOCS_EXAMPLE\" >&2' ERR\n",
    );
    let mut count = 0;
    for block in code_blocks(markdown) {
        let Some(language) = block.language() else {
            continue;
        };
        assert!(
            !block.code.contains(END),
            "{name}:{}: contains {END}",
            block.line
        );
        count += 1;
        script.push_str(&format!(
            "\nDOCS_EXAMPLE='{name}:{} ({language:?})'\n",
            block.line
        ));
        match language {
            Language::Shell => script.push_str(&block.code),
            Language::JavaScript => script.push_str(&format!(
                "node --input-type=module <<'{END}'\n{}{END}\n",
                block.code
            )),
            Language::Python => {
                script.push_str(&format!("python3 - <<'{END}'\n{}{END}\n", block.code))
            }
        }
    }
    assert!(count > 0, "{name} has no runnable example");
    script
}

/// The folder holding the examples' tools: `python3` with the OpenAI SDK, and `grpcurl`. `DOCS_TOOLS_BIN`
/// when set, else `target/docs-venv/bin` (where `scripts/test` installs them). Panics when they are
/// missing: the examples are part of the suite, never skipped.
pub fn docs_tools_bin() -> PathBuf {
    let dir = std::env::var_os("DOCS_TOOLS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/docs-venv/bin"));
    for tool in ["python3", "grpcurl"] {
        assert!(
            dir.join(tool).exists(),
            "{} has no `{tool}`: run ./scripts/test, which installs the documentation's tools \
             (the OpenAI Python SDK and grpcurl) in target/docs-venv, or set DOCS_TOOLS_BIN",
            dir.display()
        );
    }
    dir
}

/// What a script printed and how it ended.
#[derive(Debug)]
pub struct ScriptOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutput {
    /// Panics with everything printed unless the script exited 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `script` with bash in `dir`, with only `PATH` (the tools' folder first), `HOME` (= `dir`) and
/// `envs` set: no proxy or other setting of the machine leaks in.
pub async fn run_bash(script: &str, dir: &Path, envs: &[(&str, &str)]) -> ScriptOutput {
    let path = format!(
        "{}:{}",
        docs_tools_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = tokio::time::timeout(EXAMPLES_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the script did not finish in {EXAMPLES_TIMEOUT:?}"))
        .expect("run bash");
    ScriptOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The environment variables a service binary reads through its flags, with their defaults (`None` when
/// a variable has none), from its `-h` output (`[env: NAME=] [default: VALUE]`).
pub fn env_vars_of(binary: &str) -> BTreeMap<String, Option<String>> {
    let output = std::process::Command::new(binary_path(binary))
        .arg("-h")
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("{binary} -h: {e}"));
    assert!(output.status.success(), "{binary} -h failed");
    let help = String::from_utf8_lossy(&output.stdout);
    let mut vars = BTreeMap::new();
    for line in help.lines() {
        let Some((_, after_env)) = line.split_once("[env: ") else {
            continue;
        };
        let name: String = after_env
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let default = line
            .split_once("[default: ")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(value, _)| value.to_string());
        vars.insert(name, default);
    }
    assert!(
        !vars.is_empty(),
        "{binary} -h lists no environment variable"
    );
    vars
}

/// Variables every service reads outside its flags: the log filter and format.
pub const LOGGING_VARS: [&str; 2] = ["RUST_LOG", "LOG_FORMAT"];

/// Every variable `binary` accepts: its flags' variables and [`LOGGING_VARS`].
pub fn accepted_vars(binary: &str) -> BTreeSet<String> {
    env_vars_of(binary)
        .into_keys()
        .chain(LOGGING_VARS.map(String::from))
        .collect()
}

/// The devstack binary running as a process, its stdout captured.
pub struct DevStack {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
    /// The fields of its `ready` log event: `gateway`, `billing`, `executor`, `model`.
    pub ready: serde_json::Value,
}

impl DevStack {
    /// Starts devstack in `dir` with only `PATH`, `LOG_FORMAT=json` and `envs`, and waits for its
    /// `ready` event (every service answering).
    pub async fn start(dir: &Path, envs: &[(&str, &str)]) -> DevStack {
        let mut command = Command::new(binary_path("devstack"));
        command
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn devstack");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(capture(stdout, lines.clone(), ready_tx));
        let ready = tokio::time::timeout(START_TIMEOUT, ready_rx)
            .await
            .expect("devstack did not report `ready` in time")
            .expect("devstack exited before it was ready");
        DevStack {
            child,
            lines,
            reader,
            ready,
        }
    }

    /// A field of the `ready` event, e.g. `gateway`.
    pub fn ready_field(&self, name: &str) -> String {
        self.ready[name]
            .as_str()
            .unwrap_or_else(|| panic!("ready event has no `{name}`: {}", self.ready))
            .to_string()
    }

    /// Everything printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Sends `signal` (`INT`, `TERM`) and waits for the exit.
    pub async fn signal(mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().expect("devstack is running");
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!("devstack did not stop within {STOP_TIMEOUT:?} of SIG{signal}")
            })
            .expect("wait for devstack");
        // stdout closes with the process: the reader ends once it has read the last line.
        tokio::time::timeout(STOP_TIMEOUT, &mut self.reader)
            .await
            .expect("devstack's stdout closes after its exit")
            .expect("stdout reader");
        let lines = self.stdout();
        (status, lines)
    }
}

async fn capture(
    stdout: tokio::process::ChildStdout,
    lines: Arc<Mutex<Vec<String>>>,
    ready_tx: tokio::sync::oneshot::Sender<serde_json::Value>,
) {
    let echo = std::env::var_os("TEST_LOG").is_some();
    let mut ready_tx = Some(ready_tx);
    let mut reader = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if echo {
            eprintln!("[devstack] {line}");
        }
        lines.lock().expect("lines lock").push(line.clone());
        if let Some(fields) = event_fields(&line, "ready")
            && let Some(tx) = ready_tx.take()
        {
            let _ = tx.send(fields);
        }
    }
}

/// The `fields` of a JSON log line whose message is `message`.
pub fn event_fields(line: &str, message: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    (fields.get("message")?.as_str()? == message).then(|| fields.clone())
}
