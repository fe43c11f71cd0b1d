//! `PROVIDERS_FILE` as written (TOML: `[[providers]]` and `[[routes]]`, PROVIDERS.md) and its checks: every
//! mistake stops the service at start, named with the provider or route it concerns; secrets are read from
//! the environment variable `api_key_env` names.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::health::Health;
use super::provider::{Api, Provider};
use super::routes::Route;
use crate::anthropic::Anthropic;
use crate::openai::OpenAi;
use lifecycle::secret::SecretString;

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

/// The providers and the routes a file sets up, in its order.
pub(super) type Setup = (Vec<Provider>, Vec<Route>);

/// Reads and checks `path`; secrets come from `env` (the process environment in the service).
pub(super) fn read(
    path: &Path,
    default_timeout: Duration,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Setup, ProvidersError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProvidersError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, shown, default_timeout, env)
}

/// Checks the file's `text`, read from `shown`.
fn parse(
    text: &str,
    shown: String,
    default_timeout: Duration,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Setup, ProvidersError> {
    let file: ProvidersFile = toml::from_str(text).map_err(|error| ProvidersError::Parse {
        path: shown,
        message: error.to_string(),
    })?;
    from_file(file, default_timeout, env)
}

fn from_file(
    file: ProvidersFile,
    default_timeout: Duration,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Setup, ProvidersError> {
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
    Ok((providers, routes))
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
        None => SecretString::from(""),
        Some(variable) => match env(variable) {
            Some(key) if !key.trim().is_empty() => SecretString::from(key),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(super) mod tests {
    use super::*;

    /// `text` checked as the service would, with `env` as its environment.
    pub(in crate::providers) fn load(
        text: &str,
        env: &[(&str, &str)],
    ) -> Result<Setup, ProvidersError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        parse(text, "test".into(), Duration::from_secs(5), move |name| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    pub(in crate::providers) const TWO: &str = r#"
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
}
