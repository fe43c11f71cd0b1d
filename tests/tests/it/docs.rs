//! The documentation is tested like code: the examples of QUICK_START.md and API_KEY_MANAGEMENT.md run
//! against a real stack, README.md's commands and configuration table match the binaries, the local
//! stack (`cargo run -p devstack`) starts, bills a call and stops cleanly, PROVIDERS.md's two-provider
//! setup runs on it, BILLING.md's worked examples are what billing-svc charges, and docker-compose.yml is valid
//! Compose that sets only variables its services read.

use std::collections::{BTreeMap, BTreeSet};

use tests::docs_harness::{
    DevStack, LOGGING_VARS, accepted_vars, code_blocks, env_vars_of, event_fields, examples_script,
    read_workspace_file, run_bash, workspace_root,
};
use tests::{Backend, Stack};

/// The service binaries and their crates' names, as docker-compose.yml runs them.
const SERVICES: [&str; 4] = ["billing-svc", "executor-svc", "gateway", "mock-model"];

/// Runs every example of `document` in order, in one shell, against a fresh stack on SQLite, with the
/// variables the documents use set to the stack's real addresses.
async fn run_examples_of(document: &str) {
    let markdown = read_workspace_file(document);
    let script = examples_script(document, &markdown);
    let stack = Stack::start(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = stack.gateway.url();
    let billing = stack.billing.process.addr.clone();
    let output = run_bash(
        &script,
        dir.path(),
        &[
            ("GATEWAY", gateway.as_str()),
            ("ADMIN_API_KEY", stack.billing.admin_key.as_str()),
            ("BILLING", billing.as_str()),
        ],
    )
    .await;
    output.assert_success(&format!("the examples of {document}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_examples_run() {
    run_examples_of("QUICK_START.md").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_management_examples_run() {
    run_examples_of("API_KEY_MANAGEMENT.md").await;
}

/// BILLING.md's worked examples: each price is set and each usage settled on a real billing-svc, and every
/// figure the page shows is what billing-svc charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_worked_examples_are_what_billing_charges() {
    use proto::billing::v1 as pb;
    let page = read_workspace_file("BILLING.md");
    let examples: Vec<serde_json::Value> = code_blocks(&page)
        .into_iter()
        .filter(|block| block.info == "json" && block.code.contains("\"charge\""))
        .map(|block| serde_json::from_str(&block.code).expect("a worked example is JSON"))
        .collect();
    assert_eq!(examples.len(), 3, "BILLING.md shows three worked examples");
    let billing = tests::Billing::start(Backend::Sqlite, &[]).await;
    let (key_id, _) = billing.create_key(pb::KeyType::Standard).await;
    billing.add_credits(&key_id, "10").await;
    let text = |value: &serde_json::Value| value.as_number().map(ToString::to_string);
    for (index, example) in examples.iter().enumerate() {
        let price = &example["price"];
        let field = |name: &str| text(&price[name]);
        let model = price["model"].as_str().unwrap().to_string();
        billing
            .admin()
            .await
            .set_price(tests::authed(
                &billing.admin_key,
                pb::SetPriceRequest {
                    model: model.clone(),
                    base_input_price_per_1k: field("baseInputPricePer1k").unwrap(),
                    base_output_price_per_1k: field("baseOutputPricePer1k").unwrap(),
                    base_cached_input_price_per_1k: field("baseCachedInputPricePer1k"),
                    base_cache_write_price_per_1k: field("baseCacheWritePricePer1k"),
                    base_cache_write_1h_price_per_1k: field("baseCacheWrite1hPricePer1k"),
                    request_fee: field("requestFee"),
                    markup: field("markup"),
                    ..Default::default()
                },
            ))
            .await
            .expect("set the example's price");
        let usage = &example["usage"];
        let count = |name: &str| usage[name].as_u64().unwrap_or(0);
        let mut request = tonic::Request::new(pb::SettleRequest {
            api_key_id: key_id.clone(),
            execution_id: format!("billing-example-{index}"),
            labels: Some(pb::Labels {
                model,
                ..Default::default()
            }),
            input_tokens: count("inputTokens"),
            output_tokens: count("outputTokens"),
            status: pb::UsageStatus::Completed.into(),
            classes: Some(pb::TokenClasses {
                cached_input_tokens: count("cachedInputTokens"),
                cache_write_tokens: count("cacheWriteTokens"),
                cache_write_1h_tokens: count("cacheWrite1hTokens"),
                ..Default::default()
            }),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", tests::bearer(&billing.service_token));
        let record = billing
            .metering()
            .await
            .settle(request)
            .await
            .expect("settle the example's usage")
            .into_inner()
            .usage
            .unwrap();
        let decimal = |value: &str| value.parse::<rust_decimal::Decimal>().unwrap();
        let charge = &example["charge"];
        let expected = |name: &str| decimal(&text(&charge[name]).unwrap());
        assert_eq!(
            decimal(&record.input_cost),
            expected("inputCost"),
            "example {index}"
        );
        assert_eq!(
            decimal(&record.output_cost),
            expected("outputCost"),
            "example {index}"
        );
        assert_eq!(
            decimal(&record.total_cost),
            expected("totalCost"),
            "example {index}"
        );
        assert_eq!(
            record.provider_cost.as_deref().map(decimal),
            Some(expected("providerCost")),
            "example {index}"
        );
    }
    tests::assert_ledger_invariants(&billing.database).await;
}

#[test]
fn readme_starts_with_the_local_stack_and_names_the_ci_test_command() {
    let readme = read_workspace_file("README.md");
    let commands: Vec<String> = code_blocks(&readme)
        .into_iter()
        .filter(|block| block.info == "console")
        .map(|block| block.code.trim().to_string())
        .collect();
    assert_eq!(
        commands.first().map(String::as_str),
        Some("$ cargo run -p devstack"),
        "README's first command starts the local stack"
    );
    assert_eq!(
        commands.get(1).map(String::as_str),
        Some("$ ./scripts/test"),
        "README's second command is the test command"
    );
    let ci = read_workspace_file(".ci/run");
    assert!(
        ci.lines().any(|line| line.trim() == "exec ./scripts/test"),
        "CI runs the README's test command:\n{ci}"
    );
}

/// Every relative link of the Markdown documents points at a file of the workspace.
#[test]
fn document_links_resolve() {
    for document in [
        "README.md",
        "QUICK_START.md",
        "API_KEY_MANAGEMENT.md",
        "PROVIDERS.md",
    ] {
        let markdown = read_workspace_file(document);
        for target in markdown
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split_once(')'))
        {
            let path = target.0.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") {
                continue;
            }
            assert!(
                workspace_root().join(path).exists(),
                "{document} links to {path}, which does not exist"
            );
        }
    }
}

/// README's configuration table lists exactly the variables the binaries read, each with the services
/// that read it and their default.
#[test]
fn readme_configuration_table_matches_the_binaries() {
    let readme = read_workspace_file("README.md");
    let table = configuration_table(&readme);

    let mut expected: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for service in SERVICES {
        for (name, default) in env_vars_of(service) {
            let entry = expected.entry(name).or_default();
            entry.0.insert(service.to_string());
            entry.1.extend(default);
        }
    }
    for name in LOGGING_VARS {
        expected
            .entry(name.to_string())
            .or_default()
            .0
            .extend(SERVICES.map(String::from));
    }

    let documented: BTreeSet<&String> = table.keys().collect();
    let read: BTreeSet<&String> = expected.keys().collect();
    assert_eq!(
        documented, read,
        "README's configuration table and the binaries' variables differ"
    );
    for (name, (services, defaults)) in &expected {
        let row = &table[name];
        let documented_services: BTreeSet<String> = row[1]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let documented_services = if documented_services.contains("all") {
            SERVICES.map(String::from).into_iter().collect()
        } else {
            documented_services
        };
        assert_eq!(&documented_services, services, "services of {name}");
        for default in defaults {
            assert!(
                row[2].contains(&format!("`{default}`")),
                "README gives {name} the default {:?}, the binaries {default:?}",
                row[2]
            );
        }
    }
}

/// The rows of README's "Configuration" table: variable name -> its cells.
fn configuration_table(readme: &str) -> BTreeMap<String, Vec<String>> {
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("README has a `## Configuration` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|cell| cell.trim().to_string())
            .collect();
        assert!(cells.len() >= 4, "a configuration row has 4 cells: {line}");
        let name = cells[0].trim_matches('`').to_string();
        assert!(
            rows.insert(name.clone(), cells).is_none(),
            "{name} is listed twice"
        );
    }
    assert!(!rows.is_empty(), "README's configuration table is empty");
    rows
}

// ---------------------------------------------------------------------------------------------------------
// The local stack: `cargo run -p devstack`
// ---------------------------------------------------------------------------------------------------------

/// Every listener on a free port, so tests run side by side.
const FREE_PORTS: [(&str, &str); 4] = [
    ("BILLING_LISTEN", "127.0.0.1:0"),
    ("EXECUTOR_LISTEN", "127.0.0.1:0"),
    ("GATEWAY_LISTEN", "127.0.0.1:0"),
    ("MOCK_MODEL_LISTEN", "127.0.0.1:0"),
];

/// The shell snippet devstack prints after "Try it ...", without its two-space indent.
fn try_it_snippet(stdout: &[String]) -> String {
    let start = stdout
        .iter()
        .position(|line| line.starts_with("Try it from another shell"))
        .unwrap_or_else(|| panic!("devstack printed no try-it block:\n{}", stdout.join("\n")));
    stdout[start + 1..]
        .iter()
        .skip_while(|line| line.is_empty())
        .take_while(|line| line.starts_with("  "))
        .map(|line| format!("{}\n", &line[2..]))
        .collect()
}

/// The services whose `stopped` event devstack logged, in order.
fn stopped_services(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| event_fields(line, "stopped"))
        .filter_map(|fields| fields["service"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devstack_runs_the_whole_stack_bills_a_call_and_stops_on_ctrl_c() {
    // No DATABASE_URL, ADMIN_API_KEY nor SERVICE_TOKEN: the defaults a fresh machine gets.
    let dir = tempfile::tempdir().expect("temp dir");
    let devstack = DevStack::start(dir.path(), &FREE_PORTS).await;

    // The commands it prints create a key, add credit and make one billed call.
    let snippet = try_it_snippet(&devstack.stdout());
    assert!(
        snippet.contains(&format!("GATEWAY={}", devstack.ready_field("gateway"))),
        "{snippet}"
    );
    let output = run_bash(&snippet, dir.path(), &[]).await;
    output.assert_success("the commands devstack prints");
    assert!(
        output.stdout.contains(r#""billing":{"balanceAfter":"#),
        "the call was not billed: {}",
        output.stdout
    );
    assert!(dir.path().join("data/billing.db").exists());
    assert!(dir.path().join("data/executor-spool").is_dir());

    // Ctrl-C stops the services front to back, each after the one before it has drained.
    let (status, lines) = devstack.signal("INT").await;
    assert!(status.success(), "devstack exited with {status}");
    assert_eq!(
        stopped_services(&lines),
        ["gateway", "executor-svc", "mock-model", "billing-svc"]
    );
}

/// PROVIDERS.md's two-provider setup on the devstack, its file as the page shows it (the mock model's
/// port aside): a Claude model is passed through to the Anthropic side, another model goes to the
/// OpenAI-compatible side, and the usage records name each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_page_two_provider_setup_runs_on_the_devstack() {
    let page = read_workspace_file("PROVIDERS.md");
    let file = code_blocks(&page)
        .into_iter()
        .filter(|block| block.info == "toml")
        .map(|block| block.code)
        .find(|code| code.contains("mock-anthropic"))
        .expect("PROVIDERS.md shows the devstack's two providers");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let file = file.replace("127.0.0.1:8000", &format!("127.0.0.1:{port}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("providers.toml");
    std::fs::write(&path, file).expect("write providers.toml");
    let path = path.display().to_string();
    let mock_listen = format!("127.0.0.1:{port}");
    let admin = "local-admin-key-0123456789";
    let mut envs = FREE_PORTS[..3].to_vec();
    envs.extend([
        ("MOCK_MODEL_LISTEN", mock_listen.as_str()),
        ("PROVIDERS_FILE", path.as_str()),
        ("ADMIN_API_KEY", admin),
    ]);
    let devstack = DevStack::start(dir.path(), &envs).await;
    let gateway = devstack.ready_field("gateway");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |path: &str, bearer: &str, body: serde_json::Value| {
        http.post(format!("{gateway}{path}"))
            .bearer_auth(bearer)
            .json(&body)
            .send()
    };
    let created: serde_json::Value = post(
        "/admin/keys",
        admin,
        serde_json::json!({"name": "two providers", "keyType": "standard"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let funded = post(
        &format!("/billing/admin/{id}/credits"),
        admin,
        serde_json::json!({"amount": "5"}),
    )
    .await
    .unwrap();
    assert!(funded.status().is_success());

    let native: serde_json::Value = post(
        "/v1/messages",
        key,
        serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 2000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(native["content"][0]["type"], "thinking", "{native}");
    assert!(native["content"][0]["signature"].is_string(), "{native}");
    let chat = post(
        "/v1/chat/completions",
        key,
        serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await
    .unwrap();
    assert!(chat.status().is_success());
    let usage: serde_json::Value = http
        .get(format!("{gateway}/billing/usage"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let providers: Vec<&str> = usage["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|record| record["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["mock-anthropic", "mock-openai"], "{usage}");
    let (status, _) = devstack.signal("TERM").await;
    assert!(status.success(), "devstack exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devstack_uses_a_configured_model_and_given_secrets_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}/custom/billing.db", dir.path().display());
    let admin_key = "local-admin-key-0123456789";
    let mut envs = FREE_PORTS.to_vec();
    envs.extend([
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ("ADMIN_API_KEY", admin_key),
        ("SERVICE_TOKEN", "local-service-token-0123456789"),
        ("DATABASE_URL", database_url.as_str()),
    ]);
    let devstack = DevStack::start(dir.path(), &envs).await;

    assert_eq!(devstack.ready_field("model"), "http://127.0.0.1:9/v1");
    let stdout = devstack.stdout();
    assert!(
        !stdout
            .iter()
            .any(|line| line.contains(r#""target":"mock_model""#)),
        "the mock model ran although OPENAI_BASE_URL is set"
    );
    assert!(
        stdout
            .iter()
            .any(|line| line.contains(&format!("ADMIN_API_KEY={admin_key}"))),
        "devstack does not print the given admin key"
    );
    assert!(dir.path().join("custom/billing.db").exists());

    let (status, lines) = devstack.signal("TERM").await;
    assert!(status.success(), "devstack exited with {status}");
    assert_eq!(
        stopped_services(&lines),
        ["gateway", "executor-svc", "billing-svc"]
    );
}

// ---------------------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------------------

fn compose_file() -> compose_spec::Compose {
    let yaml = read_workspace_file("docker-compose.yml");
    // `apply_merge` resolves the `<<: *service` merge keys the file uses.
    let compose = compose_spec::Compose::options()
        .apply_merge(true)
        .from_yaml_str(&yaml)
        .unwrap_or_else(|e| panic!("docker-compose.yml is not valid Compose: {e}"));
    compose
        .validate_all()
        .unwrap_or_else(|e| panic!("docker-compose.yml: {e}"));
    compose
}

/// The binary a compose service runs (its command's first word), `None` for third-party images.
fn binary_of(service: &compose_spec::Service) -> Option<String> {
    match service.command.as_ref()? {
        compose_spec::service::Command::String(line) => {
            line.split_whitespace().next().map(String::from)
        }
        compose_spec::service::Command::List(words) => words.first().cloned(),
    }
}

fn environment_of(service: &compose_spec::Service) -> compose_spec::Map {
    service
        .environment
        .clone()
        .into_map()
        .unwrap_or_else(|e| panic!("environment: {e}"))
}

#[test]
fn docker_compose_runs_every_service_binary() {
    let compose = compose_file();
    let binaries: BTreeSet<String> = compose.services.values().filter_map(binary_of).collect();
    assert_eq!(
        binaries,
        SERVICES.map(String::from).into_iter().collect(),
        "the services docker-compose.yml runs"
    );
}

/// Each service gets only variables its binary reads, never an empty value (clap takes `""` as a value,
/// so `${X:-}` would hand executor-svc an empty OPENAI_BASE_URL instead of none), and every URL naming
/// another service uses the port that service listens on.
#[test]
fn docker_compose_sets_only_variables_the_services_read() {
    let compose = compose_file();
    let mut listen_ports: BTreeMap<String, String> = BTreeMap::new();
    for (name, service) in &compose.services {
        for (key, value) in environment_of(service) {
            if key.as_str().ends_with("_LISTEN")
                && let Some(value) = value
            {
                let port = value
                    .to_string()
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                listen_ports.insert(name.to_string(), port);
            }
        }
    }
    listen_ports.insert("postgres".into(), "5432".into());

    for (name, service) in &compose.services {
        let Some(binary) = binary_of(service) else {
            continue;
        };
        let accepted = accepted_vars(&binary);
        for (key, value) in environment_of(service) {
            let key = key.as_str();
            assert!(
                accepted.contains(key),
                "{name} sets {key}, which {binary} does not read (it reads {accepted:?})"
            );
            let Some(value) = value.map(|value| value.to_string()) else {
                continue;
            };
            assert!(
                !value.is_empty() && !value.contains(":-}"),
                "{name}: {key} may be empty ({value:?}); leave the value out to pass it through only when set"
            );
            let Some((_, authority)) = value.split_once("://") else {
                continue;
            };
            let authority = authority.split('/').next().unwrap_or_default();
            let authority = authority.rsplit('@').next().unwrap_or_default();
            if let Some((host, port)) = authority.split_once(':')
                && compose
                    .services
                    .keys()
                    .any(|service| service.as_str() == host)
            {
                assert_eq!(
                    listen_ports.get(host).map(String::as_str),
                    Some(port),
                    "{name}: {key} = {value} does not match the port {host} listens on"
                );
            }
        }
    }
}
