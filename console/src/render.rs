//! The templates (minijinja, auto-escaped HTML), embedded in the binary and compiled once, and the layout
//! every page shares.

use std::sync::LazyLock;

use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};
use serde_json::json;

use crate::error::PageError;
use crate::forms::Retry;
use crate::viewer::Viewer;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("refused.html", include_str!("../templates/refused.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("fields.html", include_str!("../templates/fields.html")),
    ("margins.html", include_str!("../templates/margins.html")),
    (
        "key_state.html",
        include_str!("../templates/key_state.html"),
    ),
    ("overview.html", include_str!("../templates/overview.html")),
    ("usage.html", include_str!("../templates/usage.html")),
    (
        "transactions.html",
        include_str!("../templates/transactions.html"),
    ),
    ("grants.html", include_str!("../templates/grants.html")),
    (
        "statements.html",
        include_str!("../templates/statements.html"),
    ),
    (
        "workspaces.html",
        include_str!("../templates/workspaces.html"),
    ),
    ("keys.html", include_str!("../templates/keys.html")),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    ("settings.html", include_str!("../templates/settings.html")),
    (
        "admin_accounts.html",
        include_str!("../templates/admin_accounts.html"),
    ),
    (
        "admin_account.html",
        include_str!("../templates/admin_account.html"),
    ),
    (
        "admin_key.html",
        include_str!("../templates/admin_key.html"),
    ),
    (
        "admin_key_created.html",
        include_str!("../templates/admin_key_created.html"),
    ),
    (
        "admin_prices.html",
        include_str!("../templates/admin_prices.html"),
    ),
    ("prices.html", include_str!("../templates/prices.html")),
    (
        "admin_overview.html",
        include_str!("../templates/admin_overview.html"),
    ),
    (
        "admin_events.html",
        include_str!("../templates/admin_events.html"),
    ),
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(error) = environment.add_template(name, source) {
            // A broken template is a bug caught by the tests (every page is rendered there).
            tracing::error!(%name, ?error, "console template does not compile");
        }
    }
    environment.add_filter("when", when);
    environment.add_filter("utc_day", utc_day);
    environment.add_filter("usd", usd);
    environment
});

/// The digits a rounded amount keeps: two decimals from 1 USD up, four significant digits below (a call
/// costs fractions of a cent), at most nine decimals (the nano-dollar).
fn readable(exact: rust_decimal::Decimal) -> rust_decimal::Decimal {
    use rust_decimal::{Decimal, RoundingStrategy};
    let away = RoundingStrategy::MidpointAwayFromZero;
    if exact.abs() >= Decimal::ONE {
        let mut rounded = exact.round_dp_with_strategy(2, away);
        rounded.rescale(2);
        return rounded;
    }
    let mut places = 2;
    while places < 9 && exact.abs() * Decimal::from(10u64.pow(places)) < Decimal::from(1000) {
        places += 1;
    }
    let mut rounded = exact.round_dp_with_strategy(places, away).normalize();
    if rounded.scale() < 2 {
        rounded.rescale(2);
    }
    rounded
}

/// Text made safe inside an HTML element or a double-quoted attribute, for the filters that write markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An amount in USD (a decimal string of billing-svc) rounded to readable precision, the exact figure in
/// its `value` and, on hover, in its `title`; the CSV and the API keep exact figures. Empty (not known) is
/// "—"; text that is not a decimal is shown as it is.
fn usd(value: Option<String>) -> Value {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        return Value::from("—");
    };
    let Ok(exact) = text.trim().parse::<rust_decimal::Decimal>() else {
        return Value::from(text);
    };
    Value::from_safe_string(format!(
        r#"<data value="{exact}" title="{exact} USD">{}</data>"#,
        readable(exact),
        exact = escape(&text),
    ))
}

/// A time (RFC 3339, UTC) as `<time>`: UTC in the text and on hover; the console's script shows it in the
/// viewer's time zone.
fn when(value: Option<String>) -> Value {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        return Value::from("—");
    };
    let utc = text.replace('T', " ").replace('Z', " UTC");
    let short = match utc.find('.') {
        Some(dot) => format!("{} UTC", &utc[..dot]),
        None => utc.clone(),
    };
    Value::from_safe_string(format!(
        r#"<time datetime="{}" title="{}">{}</time>"#,
        escape(&text),
        escape(&short),
        escape(&short)
    ))
}

/// An expiry set as a UTC day (a grant's, a key's: the form's "Expires (UTC day)", stored as the start of that
/// day) as that UTC date, labelled UTC; `data-utc` keeps the console's script from moving it into the
/// viewer's time zone, where the day would read as the evening before in the Americas. A moment that is not
/// the start of a day keeps its time, still in UTC.
fn utc_day(value: Option<String>) -> Value {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        return Value::from("—");
    };
    let shown = match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(at) => {
            let at = at.with_timezone(&chrono::Utc);
            if at.time() == chrono::NaiveTime::MIN {
                format!("{} (UTC)", at.format("%Y-%m-%d"))
            } else {
                format!("{} UTC", at.format("%Y-%m-%d %H:%M:%S"))
            }
        }
        Err(_) => text.clone(),
    };
    Value::from_safe_string(format!(
        r#"<time datetime="{}" data-utc title="{}">{}</time>"#,
        escape(&text),
        escape(&shown),
        escape(&shown)
    ))
}

/// A JSON value as a template value. (The workspace's serde_json keeps numbers as text, which minijinja's
/// serde bridge would show as a map; whole numbers become integers, others stay text.)
fn template_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(flag) => Value::from(*flag),
        serde_json::Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(int), _) => Value::from(int),
            (None, Some(int)) => Value::from(int),
            (None, None) => Value::from(number.to_string()),
        },
        serde_json::Value::String(text) => Value::from(text.as_str()),
        serde_json::Value::Array(items) => items.iter().map(template_value).collect(),
        serde_json::Value::Object(fields) => Value::from_iter(
            fields
                .iter()
                .map(|(name, field)| (name.clone(), template_value(field))),
        ),
    }
}

/// Renders a page of the console's layout for a signed-in viewer: `active` names the navigation entry.
pub fn page(
    template: &str,
    viewer: &Viewer,
    title: &str,
    active: &str,
    data: serde_json::Value,
) -> Result<Html<String>, PageError> {
    let layout = json!({
        "operator": viewer.operator,
        "owner": viewer.owner(),
        "name": viewer.key_name,
        "account_id": viewer.account_id,
        "csrf": viewer.csrf,
    });
    let html = ENVIRONMENT.get_template(template)?.render(context! {
        viewer => template_value(&layout),
        title => title,
        active => active,
        data => template_value(&data),
    })?;
    Ok(Html(html))
}

/// Renders a page holding forms: with `retry`, one of them sent back after a refusal of what was typed
/// (`data.retry`: what was typed and the message, [`Retry`]), answered with the refusal's status.
pub fn form_page(
    template: &str,
    viewer: &Viewer,
    title: &str,
    active: &str,
    mut data: serde_json::Value,
    retry: Option<Retry>,
) -> Result<Response, PageError> {
    data["retry"] = retry
        .as_ref()
        .map_or(serde_json::Value::Null, Retry::to_json);
    let html = page(template, viewer, title, active, data)?;
    Ok(match retry {
        Some(retry) => (retry.status, html).into_response(),
        None => html.into_response(),
    })
}

/// Renders a page shown without a session (sign-in).
pub fn public_page(template: &str, data: serde_json::Value) -> Result<Html<String>, PageError> {
    let html = ENVIRONMENT.get_template(template)?.render(context! {
        data => template_value(&data),
    })?;
    Ok(Html(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut environment = Environment::new();
        environment.add_filter("when", when);
        environment.add_filter("utc_day", utc_day);
        environment.add_filter("usd", usd);
        for (name, source) in TEMPLATES {
            environment
                .add_template(name, source)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }

    fn render(template: &str, data: serde_json::Value) -> String {
        ENVIRONMENT
            .get_template(template)
            .and_then(|template| {
                template.render(context! {
                    viewer => template_value(&json!({"operator": true, "csrf": "c"})),
                    title => "t",
                    active => "accounts",
                    data => template_value(&data),
                })
            })
            .unwrap_or_else(|error| panic!("{template}: {error:#}"))
    }

    #[test]
    fn a_utc_day_expiry_is_shown_as_its_utc_date_and_not_localised() {
        let html = utc_day(Some("2025-01-31T00:00:00Z".to_string())).to_string();
        assert_eq!(
            html,
            r#"<time datetime="2025-01-31T00:00:00Z" data-utc title="2025-01-31 (UTC)">2025-01-31 (UTC)</time>"#
        );
        let later = utc_day(Some("2025-01-31T16:30:00Z".to_string())).to_string();
        assert!(later.contains(">2025-01-31 16:30:00 UTC<"), "{later}");
        assert_eq!(utc_day(None).to_string(), "—");
    }

    #[test]
    fn amounts_are_rounded_to_readable_precision_with_the_exact_figure_on_hover() {
        for (exact, shown) in [
            ("9.89692", "9.90"),
            ("1234.5", "1234.50"),
            ("-2.005", "-2.01"),
            ("0.5", "0.50"),
            ("0.0012345", "0.001235"),
            ("0.000000001", "0.000000001"),
            ("0", "0.00"),
            ("-0.03", "-0.03"),
        ] {
            let html = usd(Some(exact.to_string())).to_string();
            assert_eq!(
                html,
                format!(r#"<data value="{exact}" title="{exact} USD">{shown}</data>"#),
                "{exact}"
            );
        }
        assert_eq!(usd(None).to_string(), "—");
        assert_eq!(usd(Some(String::new())).to_string(), "—");
    }

    fn no_calls() -> serde_json::Value {
        json!({"rows": [], "filter": {"key": "", "model": "", "status": "", "from": "", "to": ""}, "keep": []})
    }

    fn no_ledger() -> serde_json::Value {
        json!({"rows": [], "type": "", "keep": []})
    }

    #[test]
    fn a_call_row_shows_its_token_classes_costs_and_a_refund_link_while_something_is_left() {
        let call = |id: &str, refundable: bool| {
            json!({"id": id, "timestamp": "2025-01-02T03:04:05Z", "key_id": "k1", "key": "backend",
                   "model": "gpt-4o", "endpoint": "/v1/chat/completions", "provider": "default", "attempts": 2,
                   "status": "completed", "input_tokens": 1000, "output_tokens": 500,
                   "cached_input_tokens": 400, "cache_write_tokens": 0, "reasoning_tokens": 120,
                   "total_cost": "0.0123456", "charged": "0.0123456", "provider_cost": null,
                   "duration_ms": 812, "refunded": if refundable { None } else { Some("0.0123456") },
                   "refundable": refundable,
                   "refund_link": format!("/console/admin/accounts/acct?refund={id}#refund")})
        };
        let mut calls = no_calls();
        calls["rows"] = json!([call("41", true), call("42", false)]);
        let html = render(
            "admin_account.html",
            json!({
                "account": {"id": "acct"},
                "range": {"from": "2025-01-01", "to": "2025-01-31"},
                "totals": {"requests": 0, "revenue": "0"},
                "models": [], "days": [], "tier_rows": [],
                "calls": calls, "ledger": no_ledger(), "range_keep": [], "refund": "41",
            }),
        );
        assert_eq!(html.matches("?refund=").count(), 1, "{html}");
        assert!(
            html.contains("acct?refund=41#refund\""),
            "the row links to the filled form"
        );
        assert!(html.contains("400 cached") && html.contains("120 reasoning"));
        assert!(html.contains(r#"<data value="0.0123456" title="0.0123456 USD">0.01235</data>"#));
        assert!(html.contains(r#"num unknown" data-col="provider-cost">—</td>"#));
        assert!(html.contains(r#"name="usage_record_id" inputmode="numeric" required value="41""#));
    }

    #[test]
    fn a_revoked_key_is_shown_revoked_with_no_actions() {
        let key = |state: &str| {
            json!({"id": state, "name": state, "hint": "tb_…", "role": "owner", "spent_today": "0",
                   "spent_this_month": "0", "policy": "none", "state": state, "live": state == "live",
                   "revoked_at": "2025-01-02T03:04:05Z", "expires_at": "2025-01-01T00:00:00Z"})
        };
        let html = render(
            "admin_account.html",
            json!({
                "account": {"id": "acct"},
                "keys": [key("live"), key("revoked"), key("expired")],
                "range": {"from": "2025-01-01", "to": "2025-01-31"},
                "totals": {"requests": 0, "revenue": "0"},
                "models": [], "days": [], "tier_rows": [],
                "calls": no_calls(), "ledger": no_ledger(), "range_keep": [],
            }),
        );
        assert_eq!(html.matches("/rotate").count(), 1, "{html}");
        assert_eq!(html.matches("/revoke").count(), 1);
        assert!(html.contains("<strong>revoked</strong> <time"));
        assert!(
            html.contains(
                "<strong>expired</strong> <time datetime=\"2025-01-01T00:00:00Z\" data-utc"
            )
        );
    }

    #[test]
    fn an_unknown_provider_cost_or_margin_is_a_dash_and_a_zero_stays_zero() {
        let html = render(
            "admin_account.html",
            json!({
                "account": {"id": "acct"},
                "range": {"from": "2025-01-01", "to": "2025-01-31"},
                "totals": {"requests": 2, "revenue": "1.5", "provider_cost": null, "margin": null},
                "models": [
                    {"model": "old", "requests": 1, "tokens": 10, "revenue": "1", "provider_cost": null, "margin": null},
                    {"model": "free", "requests": 1, "tokens": 10, "revenue": "0.5", "provider_cost": "0", "margin": "0.5"},
                ],
                "days": [],
                "tier_rows": [{"from": "", "percent": ""}],
                "calls": no_calls(), "ledger": no_ledger(), "range_keep": [],
            }),
        );
        assert!(
            html.contains(r#"data-testid="provider-cost" class="unknown">—"#),
            "{html}"
        );
        assert!(html.contains(r#"data-testid="margin" class="unknown">—"#));
        assert!(html.contains(
            r#"data-col="provider-cost"><data value="0" title="0 USD">0.00</data></td>"#
        ));
        assert!(html.contains(r#"num unknown" data-col="margin">—</td>"#));
        assert!(html.contains("No volume tiers"));
    }

    /// `data` with one of its forms sent back after a refusal, as `forms::Retry::to_json` gives it.
    fn render_with_retry(
        template: &str,
        mut data: serde_json::Value,
        (form, field, message, values): (&str, &str, &str, serde_json::Value),
    ) -> String {
        data["retry"] = json!({"form": form, "field": field, "message": message, "values": values});
        render(template, data)
    }

    #[test]
    fn every_amount_of_the_customer_overview_is_rounded_with_the_exact_figure_on_hover() {
        let html = render(
            "overview.html",
            json!({
                "account": {"balance": "9.89692", "held": "0.0012345", "total_spent": "0.36",
                            "daily_limit": "5", "monthly_limit": null},
                "today": "0.0123456", "month": "12.345",
                "models": [{"model": "gpt-4o", "requests": 3, "tokens": 10, "cost": "0.0123456"}],
                "low": false, "payments": false, "own_key": null,
            }),
        );
        assert!(html.contains(
            r#"data-testid="balance"><data value="9.89692" title="9.89692 USD">9.90</data> USD</dd>"#
        ), "{html}");
        assert!(html.contains(r#"<data value="0.0012345" title="0.0012345 USD">0.001235</data>"#));
        assert!(html.contains(r#"<data value="12.345" title="12.345 USD">12.35</data> USD"#));
        assert!(html.contains(r#"of <data value="5" title="5 USD">5.00</data> USD daily cap"#));
        assert_eq!(
            html.matches("<data value=\"0.0123456\"").count(),
            2,
            "today and the model"
        );
    }

    #[test]
    fn a_refused_webhook_keeps_what_was_typed_and_says_why_beside_the_url() {
        let values = json!({"url": "ftp://example.com/hook", "event_types": "credits.added"});
        let html = render_with_retry(
            "webhooks.html",
            json!({"endpoints": [], "created": null, "base": "/console/webhooks"}),
            (
                "webhook",
                "url",
                "invalid url: must be http or https",
                values,
            ),
        );
        // (minijinja escapes `/` in attributes.)
        assert!(html.contains(r#"value="ftp:&#x2f;&#x2f;example.com&#x2f;hook" aria-invalid="true" aria-describedby="url-error" autofocus>"#), "{html}");
        assert!(html.contains(r#"<p class="field-error" id="url-error" role="alert">invalid url: must be http or https</p>"#));
        assert!(html.contains(r#"value="credits.added">"#));
    }

    #[test]
    fn a_refused_alert_or_recharge_keeps_its_form_as_typed_and_the_other_as_saved() {
        let data = json!({
            "low_balance": "10, 2",
            "recharge": {"payments": true, "saved_card": true, "enabled": true, "threshold": "5",
                         "amount": "20", "monthly_max": "100", "charged_this_month": "20",
                         "consecutive_failures": 0, "recent": []},
        });
        let alerts = render_with_retry(
            "settings.html",
            data.clone(),
            (
                "alerts",
                "low_balance",
                "invalid low_balance: not a decimal",
                json!({"low_balance": "5, lots"}),
            ),
        );
        assert!(
            alerts.contains(r#"value="5, lots" placeholder="10, 2" aria-invalid="true""#),
            "{alerts}"
        );
        assert!(alerts.contains(r#"id="low_balance-error""#));
        assert!(alerts.contains(
            r#"id="threshold" name="threshold" inputmode="decimal" required value="5">"#
        ));
        assert!(
            alerts.contains(r#"type="checkbox" value="true" checked>"#),
            "the recharge form as saved"
        );

        let recharge = render_with_retry(
            "settings.html",
            data,
            (
                "recharge",
                "monthly_max",
                "invalid monthly_max: must be at least the amount of one recharge",
                json!({"enabled": false, "threshold": "1", "amount": "50", "monthly_max": "10"}),
            ),
        );
        assert!(recharge.contains(r#"value="10, 2""#), "the alerts as saved");
        assert!(
            recharge.contains(r#"type="checkbox" value="true">"#),
            "unchecked as sent: {recharge}"
        );
        assert!(recharge.contains(
            r#"value="10" aria-invalid="true" aria-describedby="monthly_max-error" autofocus>"#
        ));
        assert!(recharge.contains(
            r#"id="recharge_amount" name="amount" inputmode="decimal" required value="50">"#
        ));
    }

    #[test]
    fn a_refused_tier_keeps_the_rows_as_typed_and_says_why_beside_the_row() {
        let data = json!({
            "account": {"id": "acct"},
            "range": {"from": "2025-01-01", "to": "2025-01-31"},
            "totals": {"requests": 0, "revenue": "0"},
            "models": [], "days": [], "tiers": [], "tier_rows": [{"from": "", "percent": ""}],
            "calls": no_calls(), "ledger": no_ledger(), "range_keep": [],
        });
        let rows =
            json!({"rows": [{"from": "100", "percent": "5"}, {"from": "1000", "percent": "ten"}]});
        let html = render_with_retry(
            "admin_account.html",
            data,
            (
                "tiers",
                "tier_percent_2",
                "Tier 2: enter the percent off as a number",
                rows,
            ),
        );
        assert!(
            html.contains(
                r#"id="tier_from_2" name="from_monthly_spend" inputmode="decimal" value="1000">"#
            ),
            "{html}"
        );
        assert!(html.contains(
            r#"value="ten" aria-invalid="true" aria-describedby="tier_percent_2-error" autofocus>"#
        ));
        assert!(html.contains(
            r#"<p class="field-error" id="tier_percent_2-error" role="alert">Tier 2: enter"#
        ));
        assert_eq!(html.matches("aria-invalid").count(), 1);
    }

    #[test]
    fn a_refused_key_policy_keeps_what_was_typed() {
        let data = json!({
            "account_id": "acct", "id": "k1", "name": "backend", "hint": "tb_…", "role": "owner",
            "policy": {"daily_limit": "5", "requests_per_minute": "100"},
        });
        let values = json!({"account_id": "acct", "name": "renamed", "role": "member", "daily_limit": "lots",
                            "monthly_limit": "", "requests_per_minute": "100", "tokens_per_minute": "",
                            "max_concurrent": "", "allowed_models": "", "expires_at": ""});
        let html = render_with_retry(
            "admin_key.html",
            data,
            (
                "key",
                "daily_limit",
                "invalid policy.daily_limit: not a decimal",
                values,
            ),
        );
        assert!(html.contains(r#"value="renamed">"#), "{html}");
        assert!(html.contains(r#"<option value="member" selected>"#));
        assert!(html.contains(
            r#"value="lots" aria-invalid="true" aria-describedby="daily_limit-error" autofocus>"#
        ));
        assert!(html.contains(r#"id="daily_limit-error""#));
    }

    #[test]
    fn the_price_book_shows_base_and_charged_prices_and_ends_only_rows_in_effect() {
        let price = |status: &str, ended: bool| {
            json!({
                "model": "gpt-4o", "account": "",
                "base": {"input": "0.002", "output": "0.008", "cached_input": "0.001", "cache_write": "0.002",
                         "cache_write_1h": "0.002", "audio_input": "0.002", "audio_output": "0.008"},
                "request_fee": "0", "markup": "1.5", "charged": {"input": "0.003", "output": "0.012"},
                "effective_from": "2025-01-01T00:00:00Z", "status": status, "ended": ended,
            })
        };
        let html = render(
            "admin_prices.html",
            json!({
                "prices": [price("replaced", false), price("in effect", false), price("ended", true)],
                "default_in_effect": true,
                "default_markup": "1.5",
            }),
        );
        assert_eq!(
            html.matches(r#"action="/console/admin/prices/end""#)
                .count(),
            1
        );
        assert!(html.contains(r#"data-col="charged-input">0.003</td>"#));
        assert!(html.contains("<strong>ended</strong>"));
        assert!(html.contains("every model without a row of its own"));
    }
}
