//! What the stack prints once it is up: where everything is, the admin key, and a few commands to try,
//! written as a shell snippet that runs as it is (the test suite runs it).

use crate::{Endpoints, Secrets};

/// The line after which the runnable "try it" snippet starts, each of its lines indented by two spaces.
pub const TRY_IT_HEADER: &str = "Try it from another shell (QUICK_START.md explains each step):";

/// The text printed on stdout when every service is serving.
pub fn render(endpoints: &Endpoints, secrets: &Secrets) -> String {
    let gateway = endpoints.gateway_url();
    let billing = endpoints.billing_target();
    let model = match endpoints.mock_model {
        Some(_) => format!("{} (the mock model)", endpoints.model_base_url),
        None => endpoints.model_base_url.clone(),
    };
    let admin_note = if secrets.admin_api_key_generated {
        " (generated for this run; set ADMIN_API_KEY to keep one)"
    } else {
        " (from ADMIN_API_KEY)"
    };
    let admin = &secrets.admin_api_key;
    let lines = [
        String::new(),
        "token-billing dev stack is up. Ctrl-C stops it.".to_string(),
        String::new(),
        format!("  console (browser)    {gateway}/console/  (sign in with the admin key below, or a customer key)"),
        format!("  gateway (REST)       {gateway}  (OpenAPI: {gateway}/openapi.json)"),
        format!("  billing-svc (gRPC)   {billing}"),
        format!("  executor-svc (gRPC)  {}", endpoints.executor),
        format!("  model                {model}"),
        format!("  database             {}", endpoints.database_url),
        format!("  admin key            {admin}{admin_note}"),
        String::new(),
        TRY_IT_HEADER.to_string(),
        String::new(),
        format!("  export GATEWAY={gateway} BILLING={billing} ADMIN_API_KEY={admin}"),
        r#"  created=$(curl -fsS "$GATEWAY/admin/keys" -H "authorization: Bearer $ADMIN_API_KEY" \"#.to_string(),
        r#"    -H 'content-type: application/json' -d '{"name": "my first key", "keyType": "standard"}')"#.to_string(),
        r#"  KEY_ID=$(printf '%s' "$created" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"#.to_string(),
        r#"  API_KEY=$(printf '%s' "$created" | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')"#.to_string(),
        r#"  curl -fsS "$GATEWAY/billing/admin/$KEY_ID/credits" -H "authorization: Bearer $ADMIN_API_KEY" \"#.to_string(),
        r#"    -H 'content-type: application/json' -d '{"amount": 10}'; echo"#.to_string(),
        r#"  curl -fsS "$GATEWAY/execute" -H "authorization: Bearer $API_KEY" \"#.to_string(),
        r#"    -H 'content-type: application/json' -d '{"prompt": "Say hello"}'; echo"#.to_string(),
    ];
    lines.join("\n")
}
