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
//!
//! Where things are: [`Providers`] here (a call along its route, the model list, health); [`file`] (the
//! file and its checks), [`provider`] (one provider and its call slots), [`routes`] (patterns, order,
//! `upstream_model`), [`health`] (what this executor saw of each provider).

mod file;
mod health;
mod provider;
mod routes;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;

use crate::chat::ChatRequest;
use crate::config::ModelEndpoint;
use crate::error::ExecutorError;
use crate::openai::OpenAi;
use crate::upstream::Upstream;
use health::Health;
use provider::Api;
use routes::{Route, is_glob, renamed};

pub use crate::config::DEFAULT_PROVIDER;
pub use file::{ProviderKind, ProvidersError};
pub use health::ProviderStatus;
pub use provider::Provider;
pub use routes::glob_matches;

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
        let (providers, routes) = file::read(path, default_timeout, env)?;
        Ok(Providers { providers, routes })
    }

    /// The route of `model`, or `ModelNotRouted`.
    fn route_of(&self, model: &str) -> Result<&Route, ExecutorError> {
        self.routes
            .iter()
            .find(|route| glob_matches(&route.pattern, model))
            .ok_or_else(|| ExecutorError::ModelNotRouted(model.to_string()))
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
        let order = route.attempts();
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;
    use file::tests::TWO;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Providers, ProvidersError> {
        let (providers, routes) = file::tests::load(text, env)?;
        Ok(Providers { providers, routes })
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
        let firsts = (0..4_000).filter(|_| spread.attempts()[0] == 0).count();
        assert!((2_700..3_300).contains(&firsts), "{firsts}");
        assert!(
            (0..100).all(|_| spread.attempts().len() == 2),
            "every provider stays a fallback"
        );
    }

    /// PROVIDERS.md's example is a file executor-svc starts with, routing as the page says.
    #[test]
    fn the_documented_file_is_valid() {
        let page = include_str!("../../../PROVIDERS.md");
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
