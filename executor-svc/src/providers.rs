//! Providers and routes: which upstream serves a model, in what order upstreams are tried, and under which
//! name the model is asked for (PROVIDERS.md is the operator's page).
//!
//! `PROVIDERS_FILE` (TOML) lists `[[providers]]` (`name`, `kind`, `base_url`, `api_key_env`, optional
//! `timeout_secs`, `max_concurrent`, `headers`) and `[[routes]]` (`model` as an exact name or a glob with `*`
//! and `?`, `providers` in fallback order, optional `upstream_model` and `weights`). The first route whose
//! pattern matches the request's model wins. Secrets never stand in the file: `api_key_env` names the
//! environment variable that holds the key. Everything is checked at start, and a mistake stops the service
//! with the provider or route it concerns. Without the file, one provider named [`DEFAULT_PROVIDER`] (the
//! endpoint of `OPENAI_BASE_URL` / `OPENAI_API_KEY`, or the mock model) serves every model, as before.
//!
//! A call tries the route's providers in order (with `weights`, the first is drawn by weight and the rest
//! follow in order): on a connect error, a timeout before the first chunk, a 429 or a 5xx, the next one is
//! tried; never once the provider's first chunk has arrived, so nothing a client received is ever sent
//! twice. A provider at its `max_concurrent` is passed over like one that answered 429.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rand::Rng;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::anthropic::Anthropic;
use crate::chat::ChatRequest;
use crate::config::{ModelEndpoint, Secret};
use crate::error::ExecutorError;
use crate::openai::OpenAi;
use crate::upstream::Upstream;

/// The name of the one provider used without `PROVIDERS_FILE`, recorded on its usage records.
pub const DEFAULT_PROVIDER: &str = "default";

/// Most providers one file may list, and most providers one route may name.
const MAX_PROVIDERS: usize = 64;
/// Most routes one file may list.
const MAX_ROUTES: usize = 1_024;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    #[serde(default)]
    providers: Vec<ProviderEntry>,
    #[serde(default)]
    routes: Vec<RouteEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    name: String,
    kind: ProviderKind,
    base_url: String,
    /// The environment variable holding the API key; absent for a server that needs none.
    api_key_env: Option<String>,
    timeout_secs: Option<u64>,
    max_concurrent: Option<u32>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat completions API (OpenAI, Azure's v1 API, vLLM, Ollama, OpenRouter, …).
    Openai,
    /// Anthropic's native Messages API.
    Anthropic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    model: String,
    providers: Vec<String>,
    upstream_model: Option<String>,
    weights: Option<Vec<u32>>,
}

/// Why the providers cannot be set up; each names what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    #[error("PROVIDERS_FILE {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("PROVIDERS_FILE {path}: {message}")]
    Parse { path: String, message: String },
    #[error("PROVIDERS_FILE: {0}")]
    Invalid(String),
}

/// One upstream.
pub struct Provider {
    pub name: String,
    api: Api,
    /// Calls in flight at most, when the operator set a limit.
    slots: Option<Arc<Semaphore>>,
    health: Health,
}

/// Failed attempts in a row, the provider down each time, after which a provider counts as down.
const DOWN_AFTER_FAILURES: u64 = 3;

/// What this executor saw of a provider since it started (see [`ProviderStatus`]).
#[derive(Debug, Default)]
struct Health {
    attempts: AtomicU64,
    failures: AtomicU64,
    fallbacks: AtomicU64,
    first_item_micros: AtomicU64,
    /// Attempts in a row that failed with the provider down; 0 after a success.
    down_in_a_row: AtomicU64,
}

/// A provider's health, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStatus {
    pub name: String,
    pub kind: &'static str,
    /// Not down: fewer than [`DOWN_AFTER_FAILURES`] attempts in a row failed with the provider down.
    pub up: bool,
    pub attempts: u64,
    pub failures: u64,
    pub fallbacks: u64,
    /// Time to the first item, summed over successful attempts.
    pub first_item_seconds_sum: f64,
}

/// The API a provider speaks, with its client.
enum Api {
    OpenAi(OpenAi),
    Anthropic(Anthropic),
}

/// Which providers serve the models matching a pattern.
#[derive(Debug, Clone)]
struct Route {
    pattern: String,
    /// Indexes into `Providers::providers`, in fallback order.
    providers: Vec<usize>,
    upstream_model: Option<String>,
    weights: Option<Vec<u32>>,
}

/// Every provider and route.
pub struct Providers {
    providers: Vec<Provider>,
    routes: Vec<Route>,
}

/// A provider's answer and who serves it.
pub struct Served {
    pub stream: Upstream,
    /// The provider that answered.
    pub provider: String,
    /// Providers asked, the one that answered included.
    pub attempts: u32,
}

/// A call no provider of its route served: the last provider's error, and how many were asked.
#[derive(Debug)]
pub struct NotServed {
    pub error: ExecutorError,
    pub attempts: u32,
}

impl From<NotServed> for ExecutorError {
    fn from(not_served: NotServed) -> ExecutorError {
        not_served.error
    }
}

/// Embeddings and who made them.
pub struct Embedded {
    pub answer: Box<RawValue>,
    pub provider: String,
    pub attempts: u32,
}

impl Providers {
    /// The single provider used without `PROVIDERS_FILE`.
    pub fn single(endpoint: &ModelEndpoint, timeout: Duration) -> Providers {
        Providers {
            providers: vec![Provider {
                name: DEFAULT_PROVIDER.to_string(),
                api: Api::OpenAi(OpenAi::new(
                    &endpoint.base_url,
                    &endpoint.api_key,
                    &BTreeMap::new(),
                    timeout,
                )),
                slots: None,
                health: Health::default(),
            }],
            routes: vec![Route {
                pattern: "*".into(),
                providers: vec![0],
                upstream_model: None,
                weights: None,
            }],
        }
    }

    /// Reads and checks `path`; secrets come from `env` (the process environment in the service).
    pub fn load(
        path: &Path,
        default_timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Providers, ProvidersError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProvidersError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: ProvidersFile = toml::from_str(&text).map_err(|error| ProvidersError::Parse {
            path: shown,
            message: error.to_string(),
        })?;
        Providers::from_file(file, default_timeout, env)
    }

    fn from_file(
        file: ProvidersFile,
        default_timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Providers, ProvidersError> {
        let invalid = |message: String| Err(ProvidersError::Invalid(message));
        if file.providers.is_empty() || file.routes.is_empty() {
            return invalid("at least one [[providers]] and one [[routes]] are needed".into());
        }
        if file.providers.len() > MAX_PROVIDERS || file.routes.len() > MAX_ROUTES {
            return invalid(format!(
                "at most {MAX_PROVIDERS} providers and {MAX_ROUTES} routes"
            ));
        }
        let mut names = HashSet::new();
        let mut providers = Vec::with_capacity(file.providers.len());
        for entry in file.providers {
            let name = entry.name.trim().to_string();
            if name.is_empty() || !names.insert(name.clone()) {
                return invalid(format!(
                    "provider names must be unique and not empty: {name:?}"
                ));
            }
            providers.push(provider(name, entry, default_timeout, &env)?);
        }
        let mut routes = Vec::with_capacity(file.routes.len());
        for entry in file.routes {
            routes.push(route(entry, &providers)?);
        }
        Ok(Providers { providers, routes })
    }

    /// The route of `model`, or `ModelNotRouted`.
    fn route_of(&self, model: &str) -> Result<&Route, ExecutorError> {
        self.routes
            .iter()
            .find(|route| glob_matches(&route.pattern, model))
            .ok_or_else(|| ExecutorError::ModelNotRouted(model.to_string()))
    }

    /// The providers to try for `model`, in order.
    fn attempts(&self, route: &Route) -> Vec<usize> {
        let mut order = route.providers.clone();
        if let Some(weights) = &route.weights {
            let total: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
            let mut draw = rand::rng().random_range(0..total.max(1));
            let first = weights
                .iter()
                .position(|weight| {
                    let weight = u64::from(*weight);
                    if draw < weight {
                        return true;
                    }
                    draw -= weight;
                    false
                })
                .unwrap_or(0);
            let chosen = order.remove(first);
            order.insert(0, chosen);
        }
        order
    }

    /// Starts the model's answer to `chat` for `model`, falling back along its route until a provider
    /// sends its first item (see the module docs). An OpenAI-compatible provider gets the chat request; an
    /// Anthropic one the client's own Messages request when there is one (the native pass-through of
    /// `/v1/messages`), else the chat request translated.
    pub async fn stream(&self, model: &str, chat: &ChatRequest) -> Result<Served, NotServed> {
        let (stream, provider, attempts) = self
            .in_route_order(model, |provider, upstream_model, slot| {
                Box::pin(async move {
                    let stream = match (&provider.api, &chat.messages_request) {
                        (Api::OpenAi(openai), _) => {
                            openai.stream(&renamed(&chat.body, upstream_model)).await?
                        }
                        (Api::Anthropic(anthropic), Some(native)) => {
                            let body = renamed(&native.body, upstream_model);
                            anthropic.stream(&body, &native.headers).await?
                        }
                        (Api::Anthropic(anthropic), None) => {
                            anthropic
                                .chat_stream(&renamed(&chat.body, upstream_model))
                                .await?
                        }
                    };
                    Ok(stream.holding(slot))
                })
            })
            .await?;
        Ok(Served {
            stream,
            provider,
            attempts,
        })
    }

    /// Creates embeddings for `model`, falling back along its route like [`Providers::stream`]; an
    /// Anthropic provider (no embeddings API) is passed over.
    pub async fn embed(
        &self,
        model: &str,
        body: &Map<String, Value>,
    ) -> Result<Embedded, NotServed> {
        let (answer, provider, attempts) = self
            .in_route_order(model, |provider, upstream_model, _slot| {
                Box::pin(async move {
                    let Api::OpenAi(openai) = &provider.api else {
                        return Err(ExecutorError::EmbeddingsNotServed(provider.name.clone()));
                    };
                    openai.embed(&renamed(body, upstream_model)).await
                })
            })
            .await?;
        Ok(Embedded {
            answer,
            provider,
            attempts,
        })
    }

    /// `call` on the providers of `model`'s route in order until one succeeds or fails in a way another
    /// provider would not change; what it made, the provider's name and the providers asked. `call` gets the
    /// route's `upstream_model`, and the provider's call slot to hold for as long as its answer lives.
    async fn in_route_order<'a, T>(
        &'a self,
        model: &str,
        call: impl Fn(
            &'a Provider,
            Option<&'a str>,
            Option<OwnedSemaphorePermit>,
        ) -> BoxFuture<'a, Result<T, ExecutorError>>,
    ) -> Result<(T, String, u32), NotServed> {
        let route = self
            .route_of(model)
            .map_err(|error| NotServed { error, attempts: 0 })?;
        let mut last_error = ExecutorError::ModelNotRouted(model.to_string());
        let mut asked = 0;
        let order = self.attempts(route);
        let count = order.len();
        for (position, index) in order.into_iter().enumerate() {
            let provider = &self.providers[index];
            asked += 1;
            let Some(slot) = provider.slot() else {
                last_error = ExecutorError::ProviderBusy(provider.name.clone());
                continue;
            };
            let started = Instant::now();
            let result = call(provider, route.upstream_model.as_deref(), slot).await;
            provider.health.record(&result, started.elapsed());
            match result {
                Ok(made) => return Ok((made, provider.name.clone(), asked)),
                Err(error) if error.tries_next_provider() => {
                    tracing::warn!(provider = %provider.name, %error, "provider failed before its first chunk; trying the next");
                    if position + 1 < count {
                        provider.health.fallbacks.fetch_add(1, Ordering::Relaxed);
                    }
                    last_error = error;
                }
                Err(error) => {
                    return Err(NotServed {
                        error,
                        attempts: asked,
                    });
                }
            }
        }
        Err(NotServed {
            error: last_error,
            attempts: asked,
        })
    }

    /// Refuses a model no route serves, before anything is held for it.
    pub fn check_routed(&self, model: &str) -> Result<(), ExecutorError> {
        self.route_of(model).map(|_| ())
    }

    /// The routed models as one OpenAI model list: each exact route's model, and for a glob every model of
    /// its providers' own lists (cached by each provider) that it matches and no earlier route claims. A
    /// provider that cannot list its models is left out of the expansion; if none can, the error is passed
    /// on.
    pub async fn models(&self) -> Result<String, ExecutorError> {
        let mut listed: Vec<Value> = Vec::new();
        let mut seen = HashSet::new();
        let mut last_error = None;
        let mut lists: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        for (position, route) in self.routes.iter().enumerate() {
            if !is_glob(&route.pattern) {
                if seen.insert(route.pattern.clone()) {
                    let owner = &self.providers[route.providers[0]].name;
                    listed.push(serde_json::json!({"id": route.pattern, "object": "model", "created": 0, "owned_by": owner}));
                }
                continue;
            }
            for index in &route.providers {
                if !lists.contains_key(index) {
                    let provider = &self.providers[*index];
                    let models = match &provider.api {
                        Api::OpenAi(openai) => openai.models().await,
                        Api::Anthropic(anthropic) => anthropic.models(&provider.name).await,
                    };
                    match models {
                        Ok(text) => {
                            let data = serde_json::from_str::<Value>(&text)
                                .ok()
                                .and_then(|list| {
                                    list.get("data").and_then(Value::as_array).cloned()
                                })
                                .unwrap_or_default();
                            lists.insert(*index, data);
                        }
                        Err(error) => {
                            last_error = Some(error);
                            lists.insert(*index, Vec::new());
                        }
                    }
                }
                for model in lists.get(index).into_iter().flatten() {
                    let Some(id) = model.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    // A model an earlier route claims is that route's.
                    let claimed = self.routes[..position]
                        .iter()
                        .any(|earlier| glob_matches(&earlier.pattern, id));
                    if glob_matches(&route.pattern, id) && !claimed && seen.insert(id.to_string()) {
                        listed.push(model.clone());
                    }
                }
            }
        }
        if listed.is_empty()
            && let Some(error) = last_error
        {
            return Err(error);
        }
        Ok(serde_json::json!({"object": "list", "data": listed}).to_string())
    }

    /// Each provider's health, in the file's order.
    pub fn status(&self) -> Vec<ProviderStatus> {
        self.providers.iter().map(Provider::status).collect()
    }

    /// The routes (their patterns) none of whose providers is up.
    pub fn unserved_routes(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|route| {
                !route
                    .providers
                    .iter()
                    .any(|index| self.providers[*index].health.is_up())
            })
            .map(|route| route.pattern.clone())
            .collect()
    }

    /// The providers' names, for logs.
    pub fn names(&self) -> Vec<&str> {
        self.providers
            .iter()
            .map(|provider| provider.name.as_str())
            .collect()
    }
}

impl Health {
    /// Counts an attempt that ended with `result` after `elapsed`.
    fn record<T>(&self, result: &Result<T, ExecutorError>, elapsed: Duration) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                self.first_item_micros.fetch_add(micros, Ordering::Relaxed);
                self.down_in_a_row.store(0, Ordering::Relaxed);
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if error.means_provider_down() {
                    self.down_in_a_row.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.down_in_a_row.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    fn is_up(&self) -> bool {
        self.down_in_a_row.load(Ordering::Relaxed) < DOWN_AFTER_FAILURES
    }
}

impl Provider {
    fn status(&self) -> ProviderStatus {
        let health = &self.health;
        ProviderStatus {
            name: self.name.clone(),
            kind: match self.api {
                Api::OpenAi(_) => "openai",
                Api::Anthropic(_) => "anthropic",
            },
            up: health.is_up(),
            attempts: health.attempts.load(Ordering::Relaxed),
            failures: health.failures.load(Ordering::Relaxed),
            fallbacks: health.fallbacks.load(Ordering::Relaxed),
            first_item_seconds_sum: Duration::from_micros(
                health.first_item_micros.load(Ordering::Relaxed),
            )
            .as_secs_f64(),
        }
    }

    /// A call slot: `None` when the provider is at its `max_concurrent`; always one without a limit.
    fn slot(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.slots {
            None => Some(None),
            Some(slots) => slots.clone().try_acquire_owned().ok().map(Some),
        }
    }
}

fn provider(
    name: String,
    entry: ProviderEntry,
    default_timeout: Duration,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Provider, ProvidersError> {
    let invalid = |message: String| {
        Err(ProvidersError::Invalid(format!(
            "provider {name:?}: {message}"
        )))
    };
    let base_url = entry.base_url.trim().trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
        || base_url.parse::<tonic::transport::Uri>().is_err()
    {
        return invalid(format!(
            "base_url {:?} is not an http(s) URL",
            entry.base_url
        ));
    }
    let api_key = match &entry.api_key_env {
        None => Secret::new(""),
        Some(variable) => match env(variable) {
            Some(key) if !key.trim().is_empty() => Secret::new(key),
            _ => {
                return invalid(format!(
                    "its secret {variable} is not set in the environment"
                ));
            }
        },
    };
    let timeout = match entry.timeout_secs {
        Some(0) => return invalid("timeout_secs must be at least 1".into()),
        Some(secs) => Duration::from_secs(secs),
        None => default_timeout,
    };
    let slots = match entry.max_concurrent {
        Some(0) => return invalid("max_concurrent must be at least 1".into()),
        Some(limit) => Some(Arc::new(Semaphore::new(limit as usize))),
        None => None,
    };
    for (header, value) in &entry.headers {
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return invalid(format!("header {header:?} is not a valid HTTP header"));
        }
    }
    Ok(Provider {
        api: match entry.kind {
            ProviderKind::Openai => {
                Api::OpenAi(OpenAi::new(&base_url, &api_key, &entry.headers, timeout))
            }
            ProviderKind::Anthropic => {
                Api::Anthropic(Anthropic::new(&base_url, &api_key, &entry.headers, timeout))
            }
        },
        name,
        slots,
        health: Health::default(),
    })
}

fn route(entry: RouteEntry, providers: &[Provider]) -> Result<Route, ProvidersError> {
    let pattern = entry.model.trim().to_string();
    let invalid = |message: String| {
        Err(ProvidersError::Invalid(format!(
            "route {pattern:?}: {message}"
        )))
    };
    if pattern.is_empty() {
        return invalid("`model` must not be empty".into());
    }
    if entry.providers.is_empty() || entry.providers.len() > MAX_PROVIDERS {
        return invalid(format!("it needs from 1 to {MAX_PROVIDERS} providers"));
    }
    let mut indexes = Vec::with_capacity(entry.providers.len());
    for name in &entry.providers {
        match providers.iter().position(|provider| &provider.name == name) {
            Some(index) if !indexes.contains(&index) => indexes.push(index),
            Some(_) => return invalid(format!("provider {name:?} is named twice")),
            None => return invalid(format!("unknown provider {name:?}")),
        }
    }
    if let Some(weights) = &entry.weights
        && (weights.len() != indexes.len() || weights.iter().all(|weight| *weight == 0))
    {
        return invalid("`weights` needs one weight per provider, not all zero".into());
    }
    if entry
        .upstream_model
        .as_ref()
        .is_some_and(|upstream| upstream.trim().is_empty())
    {
        return invalid("`upstream_model` must not be empty".into());
    }
    Ok(Route {
        pattern,
        providers: indexes,
        upstream_model: entry.upstream_model,
        weights: entry.weights,
    })
}

/// `body` as the provider is asked for it: the route's `upstream_model` in place of the client's name.
fn renamed<'b>(
    body: &'b Map<String, Value>,
    upstream_model: Option<&str>,
) -> Cow<'b, Map<String, Value>> {
    match upstream_model {
        None => Cow::Borrowed(body),
        Some(upstream) => {
            let mut renamed = body.clone();
            renamed.insert("model".into(), Value::String(upstream.to_string()));
            Cow::Owned(renamed)
        }
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for one.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Providers, ProvidersError> {
        let file: ProvidersFile = toml::from_str(text).map_err(|error| ProvidersError::Parse {
            path: "test".into(),
            message: error.to_string(),
        })?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Providers::from_file(file, Duration::from_secs(5), move |name| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    const TWO: &str = r#"
        [[providers]]
        name = "openai"
        kind = "openai"
        base_url = "https://api.openai.com/v1/"
        api_key_env = "OPENAI_KEY"

        [[providers]]
        name = "local"
        kind = "openai"
        base_url = "http://127.0.0.1:11434/v1"
        max_concurrent = 2
        headers = { "x-team" = "search" }

        [[routes]]
        model = "gpt-4o"
        providers = ["openai", "local"]
        upstream_model = "gpt-4o-2024-08-06"

        [[routes]]
        model = "llama*"
        providers = ["local"]

        [[routes]]
        model = "*"
        providers = ["openai", "local"]
        weights = [3, 1]
    "#;

    #[test]
    fn globs_match_like_shell_patterns() {
        let cases = [
            ("*", "anything", true),
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "gpt-4o", false),
            ("gpt-4?", "gpt-4o", true),
            ("gpt-4?", "gpt-4o-mini", false),
            ("*-mini", "gpt-4o-mini", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("", "", true),
        ];
        for (pattern, name, matches) in cases {
            assert_eq!(glob_matches(pattern, name), matches, "{pattern} {name}");
        }
    }

    #[test]
    fn routes_pick_their_providers_in_order() {
        let providers = load(TWO, &[("OPENAI_KEY", "sk-1")]).unwrap();
        let route = providers.route_of("gpt-4o").unwrap();
        assert_eq!(route.providers, [0, 1]);
        assert_eq!(route.upstream_model.as_deref(), Some("gpt-4o-2024-08-06"));
        let body: Map<String, Value> = serde_json::from_str(r#"{"model": "gpt-4o"}"#).unwrap();
        assert_eq!(
            renamed(&body, route.upstream_model.as_deref())["model"],
            "gpt-4o-2024-08-06"
        );
        assert_eq!(providers.route_of("llama3.1").unwrap().providers, [1]);
        assert_eq!(providers.route_of("o3").unwrap().pattern, "*");
        assert!(providers.slots_of("local").is_some());
        // Weights 3:1 put the first provider first about three times in four.
        let spread = providers.route_of("o3").unwrap();
        let firsts = (0..4_000)
            .filter(|_| providers.attempts(spread)[0] == 0)
            .count();
        assert!((2_700..3_300).contains(&firsts), "{firsts}");
        assert!(
            (0..100).all(|_| providers.attempts(spread).len() == 2),
            "every provider stays a fallback"
        );
    }

    #[test]
    fn mistakes_are_named_at_start() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 8] = [
            (TWO, &[], "OPENAI_KEY is not set"),
            (
                &TWO.replace("\"local\"]", "\"nope\"]"),
                &[("OPENAI_KEY", "k")],
                "unknown provider \"nope\"",
            ),
            (
                &TWO.replace("name = \"local\"", "name = \"openai\""),
                &[("OPENAI_KEY", "k")],
                "unique",
            ),
            (
                &TWO.replace("http://127.0.0.1:11434/v1", "localhost:11434"),
                &[("OPENAI_KEY", "k")],
                "not an http(s) URL",
            ),
            (
                &TWO.replace("weights = [3, 1]", "weights = [3]"),
                &[("OPENAI_KEY", "k")],
                "one weight per provider",
            ),
            (
                &TWO.replace("max_concurrent = 2", "max_concurrent = 0"),
                &[("OPENAI_KEY", "k")],
                "max_concurrent",
            ),
            (
                "[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://x\"\n",
                &[],
                "at least one",
            ),
            (
                &TWO.replace(
                    "[[routes]]\n        model = \"gpt-4o\"",
                    "[[routes]]\n        colour = \"red\"\n        model = \"gpt-4o\"",
                ),
                &[("OPENAI_KEY", "k")],
                "unknown field",
            ),
        ];
        for (text, env, expected) in cases {
            let error = load(text, env).err().expect(expected).to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    /// PROVIDERS.md's example is a file executor-svc starts with, routing as the page says.
    #[test]
    fn the_documented_file_is_valid() {
        let page = include_str!("../../PROVIDERS.md");
        let example = page
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("PROVIDERS.md shows a providers file");
        let secrets = [
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENROUTER_API_KEY", "sk-2"),
            ("ANTHROPIC_API_KEY", "sk-3"),
        ];
        let providers = load(example, &secrets).unwrap();
        let names = |model: &str| -> Vec<String> {
            let route = providers.route_of(model).unwrap();
            route
                .providers
                .iter()
                .map(|index| providers.providers[*index].name.clone())
                .collect()
        };
        assert_eq!(names("gpt-4o"), ["openai", "openrouter"]);
        assert_eq!(names("claude-opus-4-8"), ["anthropic"]);
        assert_eq!(names("llama3.1:70b"), ["vllm", "openrouter"]);
        assert_eq!(names("o3"), ["openai"]);
    }

    #[test]
    fn an_unrouted_model_is_named() {
        let only_gpt = TWO.replace("model = \"*\"", "model = \"o*\"");
        let providers = load(&only_gpt, &[("OPENAI_KEY", "k")]).unwrap();
        assert!(matches!(
            providers.route_of("claude-3"),
            Err(ExecutorError::ModelNotRouted(model)) if model == "claude-3"
        ));
    }

    impl Providers {
        fn slots_of(&self, name: &str) -> Option<&Arc<Semaphore>> {
            self.providers
                .iter()
                .find(|provider| provider.name == name)?
                .slots
                .as_ref()
        }
    }
}
