//! The operator's overview of every account: revenue, provider cost and margin over a range of UTC days (a
//! preset or custom), by day, by model, the accounts with the most revenue, and the latest failed deliveries.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::operator::admin_service::client;
use crate::pages::operator::events::event_summary;
use crate::pages::operator::margins::margins;
use crate::render::page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// The overview's query: a preset range of UTC days, or a custom one (`from`, `to`).
#[derive(Debug, Deserialize, Default)]
pub struct OverviewQuery {
    #[serde(default)]
    range: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The overview's preset ranges of UTC days, as its links name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preset {
    Today,
    LastSevenDays,
    ThisMonth,
    LastMonth,
}

impl Preset {
    const ALL: [Preset; 4] = [
        Preset::Today,
        Preset::LastSevenDays,
        Preset::ThisMonth,
        Preset::LastMonth,
    ];

    fn name(self) -> &'static str {
        match self {
            Preset::Today => "today",
            Preset::LastSevenDays => "7d",
            Preset::ThisMonth => "month",
            Preset::LastMonth => "last_month",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Preset::Today => "Today",
            Preset::LastSevenDays => "Last 7 days",
            Preset::ThisMonth => "This month",
            Preset::LastMonth => "Last month",
        }
    }

    /// The first and last UTC day of the preset, both included, as seen on `today`.
    fn days(self, today: chrono::NaiveDate) -> (chrono::NaiveDate, chrono::NaiveDate) {
        let first_of_month = today.with_day(1).unwrap_or(today);
        match self {
            Preset::Today => (today, today),
            Preset::LastSevenDays => (today - chrono::Duration::days(6), today),
            Preset::ThisMonth => (first_of_month, today),
            Preset::LastMonth => {
                let last = first_of_month - chrono::Duration::days(1);
                (last.with_day(1).unwrap_or(last), last)
            }
        }
    }
}

/// Top accounts the overview lists.
const TOP_ACCOUNTS: u32 = 10;

/// The overview looks for failed deliveries among this many of the latest events, and lists at most
/// [`SHOWN_FAILURES`] of them.
const FAILURE_SCAN_EVENTS: u32 = 100;
const SHOWN_FAILURES: usize = 10;

/// The overview of every account: revenue, provider cost and margin over a range of UTC days (a preset or
/// custom), by day, by model, and the accounts with the most revenue, each linked to its page.
pub async fn overview(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<OverviewQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    let today = chrono::Utc::now().date_naive();
    let custom = query.range == "custom"
        || (query.range.is_empty()
            && !(query.from.trim().is_empty() && query.to.trim().is_empty()));
    let preset = if custom {
        None
    } else {
        let named = if query.range.is_empty() {
            "month"
        } else {
            query.range.as_str()
        };
        Some(
            Preset::ALL
                .into_iter()
                .find(|preset| preset.name() == named)
                .ok_or_else(|| PageError::Invalid(format!("no range {named:?}")))?,
        )
    };
    let (from, to) = match preset {
        Some(preset) => preset.days(today),
        None => {
            let first_of_month = today.with_day(1).unwrap_or(today);
            forms::day_range(&query.from, &query.to, first_of_month, today)?
        }
    };
    let stats = client(&state)
        .get_platform_stats(viewer.request(pb::GetPlatformStatsRequest {
            range: Some(pb::TimeRange {
                from: Some(forms::start_of(from)),
                to: Some(forms::end_of(to)),
            }),
            top_accounts: TOP_ACCOUNTS,
        }))
        .await?
        .into_inner();
    let named = |label: &str, value: &str, totals: Option<&pb::UsageTotals>| {
        let mut row = margins(totals);
        row[label] = value.into();
        row
    };
    // Newest day first, as the account's page lists days.
    let days: Vec<Value> = stats
        .by_day
        .iter()
        .rev()
        .map(|day| named("day", &day.day, day.totals.as_ref()))
        .collect();
    let models: Vec<Value> = stats
        .by_model
        .iter()
        .map(|model| named("model", &model.model, model.totals.as_ref()))
        .collect();
    let accounts: Vec<Value> = stats
        .top_accounts
        .iter()
        .map(|top| {
            let mut row = named("id", &top.account_id, top.totals.as_ref());
            row["name"] = top.name.clone().into();
            row["link"] = format!(
                "/console/admin/accounts/{}",
                url::form_urlencoded::byte_serialize(top.account_id.as_bytes()).collect::<String>()
            )
            .into();
            row
        })
        .collect();
    // Failed deliveries: the latest events whose last attempt at some endpoint failed.
    let failed: Vec<Value> = client(&state)
        .list_events(viewer.request(pb::ListEventsRequest {
            account_id: None,
            r#type: None,
            limit: FAILURE_SCAN_EVENTS,
            cursor: None,
        }))
        .await?
        .into_inner()
        .events
        .iter()
        .map(event_summary)
        .filter(|event| event["failed"].as_u64().is_some_and(|failed| failed > 0))
        .take(SHOWN_FAILURES)
        .collect();
    let presets: Vec<Value> = Preset::ALL
        .into_iter()
        .map(|each| {
            json!({"name": each.name(), "label": each.label(), "current": Some(each) == preset})
        })
        .collect();
    let data = json!({
        "range": {"from": from.to_string(), "to": to.to_string()},
        "presets": presets,
        "custom": preset.is_none(),
        "totals": margins(stats.totals.as_ref()),
        "days": days,
        "models": models,
        "accounts": accounts,
        "top": TOP_ACCOUNTS,
        "failed": failed,
        "scanned": FAILURE_SCAN_EVENTS,
    });
    Ok(page("admin_overview.html", &viewer, "Overview", "overview", data)?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_cover_whole_utc_days() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a day");
        let today = day("2025-03-15");
        for (preset, from, to) in [
            (Preset::Today, "2025-03-15", "2025-03-15"),
            (Preset::LastSevenDays, "2025-03-09", "2025-03-15"),
            (Preset::ThisMonth, "2025-03-01", "2025-03-15"),
            (Preset::LastMonth, "2025-02-01", "2025-02-28"),
        ] {
            assert_eq!(preset.days(today), (day(from), day(to)), "{preset:?}");
        }
        assert_eq!(
            Preset::LastMonth.days(day("2025-01-01")),
            (day("2024-12-01"), day("2024-12-31")),
            "last month across a year"
        );
    }
}
