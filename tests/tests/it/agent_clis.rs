//! The real Claude Code and Codex CLIs through the gateway (QUICK_START.md §6), set up exactly as
//! QUICK_START.md §6 says and with no workaround flag or variable: a text answer; a tool round trip (the mock
//! model calls a tool the CLI declares because the prompt names it, the CLI runs it, the answer follows);
//! usage records exact and nothing held afterwards; a revoked key, a key without credit and a credit cut-off
//! each end the CLI within 10 s with words that say why.
//!
//! The only settings added to the documented ones keep the CLIs on 127.0.0.1, as every test here must:
//! Claude Code's `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (no telemetry, no title call to the model)
//! and Codex's `check_for_update_on_startup = false`, `[analytics] enabled = false`, `[features] plugins =
//! false`. Codex is also told the provider supports WebSockets, so its first attempt is the WebSocket
//! upgrade the gateway refuses with 426, and the test proves it falls back at once. Tools run without a
//! question: `--allowedTools Bash` for Claude Code, `--dangerously-bypass-approvals-and-sandbox` for Codex
//! (the sandbox needs namespaces a CI container may not have; each run works in its own temporary folder).
//! These run on SQLite only: what they prove is the HTTP dialogue, which no backend changes.

use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use sha2::Digest;
use tests::agent_clis::{AgentCli, CliRun, run};
use tests::docs_harness::{code_blocks, read_workspace_file};
use tests::{Backend, Stack, assert_ledger_invariants, default_cost};

/// How long a CLI may take to give up on a refused key or credit.
const STOPS_WITHIN: Duration = Duration::from_secs(10);

/// Credit above a call's input cost that pays for a few hundred output tokens, not for 4,000.
const CUT_OFF_MARGIN: &str = "0.02";

/// The usage records of `key`, oldest first.
async fn usage_records(stack: &Stack, key: &str) -> Vec<Value> {
    let answer = stack.get("/billing/usage?limit=1000", key).await;
    assert!(answer.status.is_success(), "{}", answer.text);
    let mut records = answer.json["records"].as_array().unwrap().clone();
    records.reverse();
    records
}

/// Chat completions the mock model answered since it started.
async fn upstream_calls(stack: &Stack) -> u64 {
    let stats: Value = stack
        .http
        .get(format!("{}/stats", stack.mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["requests"].as_u64().unwrap()
}

/// Every record of `key` is priced exactly at the default prices for its tokens, came through `endpoint`,
/// the balance went down by exactly their sum, and nothing is held.
async fn assert_usage_exact(stack: &Stack, key: &str, credit: Decimal, endpoint: &str) -> usize {
    let records = usage_records(stack, key).await;
    let mut spent = Decimal::ZERO;
    for record in &records {
        let input = record["inputTokens"].as_u64().unwrap();
        let output = record["outputTokens"].as_u64().unwrap();
        let cost: Decimal = record["totalCost"].to_string().parse().unwrap();
        assert_eq!(cost, default_cost(input, output), "{record}");
        assert_eq!(record["endpoint"], endpoint, "{record}");
        spent += cost;
    }
    let account = stack.get("/billing/account", key).await;
    let balance: Decimal = account.json["creditsBalance"].to_string().parse().unwrap();
    assert_eq!(balance, credit - spent, "{}", account.text);
    assert_eq!(account.json["heldCredits"], 0, "{}", account.text);
    records.len()
}

/// A key holding `credit`, and its id.
async fn key_with_credit(stack: &Stack, name: &str, credit: Decimal) -> (String, String) {
    let (id, key) = stack.create_key(name, "standard").await;
    if credit > Decimal::ZERO {
        stack
            .add_credits(&id, serde_json::from_str(&credit.to_string()).unwrap())
            .await;
    }
    (id, key)
}

async fn revoked_key(stack: &Stack) -> String {
    let (id, key) = key_with_credit(stack, "revoked", Decimal::ONE).await;
    let revoked = stack
        .call(
            reqwest::Method::DELETE,
            &format!("/admin/keys/{id}"),
            Some(&stack.billing.admin_key),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text);
    key
}

/// The input cost of the last record of `key`, plus [`CUT_OFF_MARGIN`]: enough to start the same call
/// again, not to finish a long answer.
async fn credit_for_a_cut_off(stack: &Stack, key: &str) -> Decimal {
    let records = usage_records(stack, key).await;
    let last = records.last().unwrap();
    let input_cost: Decimal = last["inputCost"].to_string().parse().unwrap();
    input_cost + CUT_OFF_MARGIN.parse::<Decimal>().unwrap()
}

/// The one call of `key` was stopped by credit, settled, and nothing is held; the ledger audit holds.
async fn assert_cut_off_settled(stack: &Stack, key: &str) {
    let records = usage_records(stack, key).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "stopped_by_credit", "{records:?}");
    let account = stack.get("/billing/account", key).await;
    assert_eq!(account.json["heldCredits"], 0, "{}", account.text);
    assert_ledger_invariants(&stack.billing.database).await;
}

fn read_file(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|error| panic!("{name} was not written by the agent's tool: {error}"))
}

struct Claude<'a> {
    stack: &'a Stack,
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Claude<'_> {
    /// `claude <args>` with QUICK_START's two variables.
    async fn run(&self, key: &str, args: &[&str]) -> CliRun {
        let gateway = self.stack.gateway.url();
        run(
            AgentCli::ClaudeCode,
            args,
            self.dir.path(),
            self.home.path(),
            &[
                ("ANTHROPIC_BASE_URL", gateway.as_str()),
                ("ANTHROPIC_API_KEY", key),
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_works_through_the_gateway_unchanged() {
    let stack = Stack::start(Backend::Sqlite).await;
    let claude = Claude {
        stack: &stack,
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
    };
    let credit = Decimal::from(20);
    let (_, key) = key_with_credit(&stack, "claude", credit).await;

    // A text answer: Claude Code's request (thinking, context_management, output_config, a system message
    // inside messages, cache_control) is translated, not refused.
    let text = claude.run(&key, &["-p", "say hello in five words"]).await;
    text.assert_success("claude -p (text)");
    assert!(
        text.stdout.contains("The quick brown fox"),
        "{}",
        text.printed()
    );
    let upstream = stack.last_upstream_request().await;
    assert!(
        upstream["reasoning_effort"].is_string(),
        "thinking mapped: {upstream}"
    );
    // Claude Code's metadata.user_id (a JSON text longer than 128 characters) is each call's end user, as
    // its SHA-256: the same id the provider gets as `user` (BILLING.md, "End users").
    let user = upstream["user"].as_str().expect("the chat user");
    assert_eq!(user.len(), 64, "{upstream}");
    for record in usage_records(&stack, &key).await {
        assert_eq!(record["endUserId"], user, "{record}");
    }
    for anthropic_only in ["thinking", "context_management", "output_config", "system"] {
        assert!(
            upstream.get(anthropic_only).is_none(),
            "{anthropic_only} reached the provider"
        );
    }

    // A tool round trip: the mock calls Bash with the command in backticks, Claude Code runs it and sends
    // the result back, and the mock answers in words.
    let tool = claude
        .run(
            &key,
            &[
                "-p",
                "Use the Bash tool to run `echo claude-ok > made-by-claude.txt`",
                "--allowedTools",
                "Bash",
            ],
        )
        .await;
    tool.assert_success("claude -p (Bash tool)");
    assert_eq!(
        read_file(claude.dir.path(), "made-by-claude.txt"),
        "claude-ok\n"
    );
    assert!(
        tool.stdout.contains("The quick brown fox"),
        "{}",
        tool.printed()
    );

    let records = assert_usage_exact(&stack, &key, credit, "/v1/messages").await;
    assert_eq!(
        records as u64,
        upstream_calls(&stack).await,
        "one record per model call"
    );
    assert!(
        records >= 3,
        "text, tool call, answer after the result: {records}"
    );

    // A revoked key: one 401, marked not retryable, and Claude Code stops at once.
    let revoked = claude.run(&revoked_key(&stack).await, &["-p", "hi"]).await;
    revoked.assert_stopped_saying("a revoked key", STOPS_WITHIN, &["401", "revoked"]);

    // No credit: 402 billing_error.
    let (_, broke) = key_with_credit(&stack, "broke", Decimal::ZERO).await;
    let refused = claude.run(&broke, &["-p", "hi"]).await;
    refused.assert_stopped_saying("a key without credit", STOPS_WITHIN, &["402", "credit"]);

    // Credit running out mid-answer: the answer is cut off (stop_reason max_tokens), Claude Code asks to
    // go on, is refused for credit, and says so.
    let calibrate = claude
        .run(
            &key,
            &["--model", "mock-tokens-8", "-p", "say hello in five words"],
        )
        .await;
    calibrate.assert_success("claude -p (calibration)");
    let (_, low) = key_with_credit(&stack, "low", credit_for_a_cut_off(&stack, &key).await).await;
    let cut = claude
        .run(
            &low,
            &[
                "--model",
                "mock-tokens-4000",
                "-p",
                "say hello in five words",
            ],
        )
        .await;
    cut.assert_stopped_saying("a credit cut-off", STOPS_WITHIN, &["credit"]);
    assert_cut_off_settled(&stack, &low).await;
}

/// Claude Code against a native Anthropic provider (PROVIDERS.md): its requests reach the provider as it
/// sent them (thinking, context management, cache breakpoints, its system prompt), the provider's thinking
/// blocks and tool calls come back unchanged, and usage is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_works_through_a_native_anthropic_route() {
    let stack = Stack::start_anthropic(Backend::Sqlite).await;
    let claude = Claude {
        stack: &stack,
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
    };
    let credit = Decimal::from(20);
    let (_, key) = key_with_credit(&stack, "claude-native", credit).await;

    let text = claude.run(&key, &["-p", "say hello in five words"]).await;
    text.assert_success("claude -p (text, native)");
    assert!(
        text.stdout.contains("The quick brown fox"),
        "{}",
        text.printed()
    );
    let upstream = stack.last_upstream_call().await;
    assert_eq!(upstream["path"], "/v1/messages");
    let body = &upstream["body"];
    assert!(
        body["system"].is_array(),
        "the system prompt passes: {body}"
    );
    assert!(
        body.get("reasoning_effort").is_none(),
        "nothing is translated: {body}"
    );
    assert!(
        upstream["headers"]["anthropic-beta"].is_string(),
        "Claude Code's betas pass: {upstream}"
    );
    // Passed through unchanged, its metadata.user_id is recorded as the call's end user, as its SHA-256 when
    // longer than 128 characters (BILLING.md, "End users").
    let user_id = body["metadata"]["user_id"]
        .as_str()
        .expect("Claude Code's user id");
    let end_user = if user_id.chars().count() <= 128 {
        user_id.to_string()
    } else {
        hex::encode(sha2::Sha256::digest(user_id.as_bytes()))
    };
    for record in usage_records(&stack, &key).await {
        assert_eq!(record["endUserId"], end_user.as_str(), "{record}");
    }

    let tool = claude
        .run(
            &key,
            &[
                "-p",
                "Use the Bash tool to run `echo native-ok > made-natively.txt`",
                "--allowedTools",
                "Bash",
            ],
        )
        .await;
    tool.assert_success("claude -p (Bash tool, native)");
    assert_eq!(
        read_file(claude.dir.path(), "made-natively.txt"),
        "native-ok\n"
    );
    let records = assert_usage_exact(&stack, &key, credit, "/v1/messages").await;
    assert_eq!(
        records as u64,
        upstream_calls(&stack).await,
        "one record per model call"
    );
    assert!(
        records >= 3,
        "text, tool call, answer after the result: {records}"
    );
}

struct Codex {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    codex_home: tempfile::TempDir,
}

impl Codex {
    /// QUICK_START's `config.toml` with the gateway's address, plus the settings that keep Codex off the
    /// network (see the module docs).
    fn new(stack: &Stack) -> Codex {
        let quick_start = read_workspace_file("QUICK_START.md");
        let documented = code_blocks(&quick_start)
            .into_iter()
            .find(|block| block.info == "toml" && block.code.contains("[model_providers."))
            .expect("QUICK_START.md shows Codex's config.toml");
        assert!(
            documented.code.contains("http://127.0.0.1:8080/v1"),
            "{}",
            documented.code
        );
        let config = format!(
            "check_for_update_on_startup = false\n{}\n[analytics]\nenabled = false\n\n[features]\nplugins = false\n",
            documented
                .code
                .replace("http://127.0.0.1:8080", &stack.gateway.url())
        );
        let codex_home = tempfile::tempdir().unwrap();
        std::fs::write(codex_home.path().join("config.toml"), config).unwrap();
        Codex {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
            codex_home,
        }
    }

    /// `codex exec <args> <prompt>` with QUICK_START's variable.
    async fn exec(&self, key: &str, args: &[&str], prompt: &str) -> CliRun {
        let mut all = vec![
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-c",
            "model_providers.token-billing.supports_websockets=true",
        ];
        all.extend_from_slice(args);
        all.push(prompt);
        let codex_home = self.codex_home.path().display().to_string();
        run(
            AgentCli::Codex,
            &all,
            self.dir.path(),
            self.home.path(),
            &[
                ("CODEX_HOME", codex_home.as_str()),
                ("TOKEN_BILLING_API_KEY", key),
            ],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_works_through_the_gateway_unchanged() {
    let stack = Stack::start(Backend::Sqlite).await;
    let codex = Codex::new(&stack);
    let credit = Decimal::from(20);
    let (_, key) = key_with_credit(&stack, "codex", credit).await;

    // A text answer, after one WebSocket attempt refused with 426 (no "Reconnecting" storm).
    let text = codex.exec(&key, &[], "say hello in five words").await;
    text.assert_success("codex exec (text)");
    assert!(
        text.stdout.contains("The quick brown fox"),
        "{}",
        text.printed()
    );
    assert!(
        !text.printed().contains("Reconnecting"),
        "{}",
        text.printed()
    );

    // A function tool round trip: exec_command runs the command in backticks.
    let shell = codex
        .exec(
            &key,
            &[],
            "Use exec_command to run `echo codex-ok > made-by-codex.txt`",
        )
        .await;
    shell.assert_success("codex exec (exec_command)");
    assert_eq!(
        read_file(codex.dir.path(), "made-by-codex.txt"),
        "codex-ok\n"
    );

    // A custom (freeform) tool round trip: apply_patch gets the patch as its one string, answered as a
    // custom_tool_call item.
    let patch = codex
        .exec(
            &key,
            &[],
            "Use apply_patch: `*** Begin Patch\n*** Add File: patched.txt\n+patched by codex\n*** End Patch\n`",
        )
        .await;
    patch.assert_success("codex exec (apply_patch)");
    assert_eq!(
        read_file(codex.dir.path(), "patched.txt"),
        "patched by codex\n"
    );

    let records = assert_usage_exact(&stack, &key, credit, "/v1/responses").await;
    assert_eq!(
        records as u64,
        upstream_calls(&stack).await,
        "one record per model call"
    );
    assert!(records >= 5, "text, two calls and their answers: {records}");

    // A revoked key: Codex retries a 401 whatever the answer says, and still stops within 10 s.
    let revoked = codex.exec(&revoked_key(&stack).await, &[], "hi").await;
    revoked.assert_stopped_saying("a revoked key", STOPS_WITHIN, &["401", "revoked"]);

    // No credit: OpenAI's own answer (429 insufficient_quota), on which Codex stops at once with its fixed
    // words for it.
    let (_, broke) = key_with_credit(&stack, "broke", Decimal::ZERO).await;
    let refused = codex.exec(&broke, &[], "hi").await;
    refused.assert_stopped_saying(
        "a key without credit",
        STOPS_WITHIN,
        &["Quota exceeded", "billing"],
    );

    // Credit running out mid-answer: the response ends incomplete, reason credit_exhausted.
    let model = ["-c", "model=\"mock-tokens-8\""];
    codex
        .exec(&key, &model, "say hello in five words")
        .await
        .assert_success("codex exec (calibration)");
    let (_, low) = key_with_credit(&stack, "low", credit_for_a_cut_off(&stack, &key).await).await;
    let cut = codex
        .exec(
            &low,
            &["-c", "model=\"mock-tokens-4000\""],
            "say hello in five words",
        )
        .await;
    cut.assert_stopped_saying("a credit cut-off", STOPS_WITHIN, &["credit_exhausted"]);
    assert_cut_off_settled(&stack, &low).await;
}
