//! OpenAI's organization Usage and Costs APIs (BILLING.md, "Usage and Costs APIs"): which records a report
//! counts, its time buckets, groups, filters and pages, and how the sums of [`super::sql::bucket_sums`]
//! become buckets. The read itself is [`crate::ledger::Ledger::usage_buckets`] (`ops.rs`).

use std::collections::BTreeMap;

use crate::error::BillingError;
use crate::time::Millis;
use money::Money;

/// Which of OpenAI's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Every record but those of `/v1/embeddings`.
    Completions,
    /// The records of `/v1/embeddings`.
    Embeddings,
    /// What every record charged.
    Costs,
}

/// The endpoint embeddings are recorded under (BILLING.md, "How holds size and grow").
pub const EMBEDDINGS_ENDPOINT: &str = "/v1/embeddings";

/// A bucket's width; buckets are aligned on the Unix epoch, so a day is a UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Minute,
    Hour,
    Day,
}

impl Width {
    pub fn millis(self) -> Millis {
        match self {
            Width::Minute => 60_000,
            Width::Hour => 3_600_000,
            Width::Day => 86_400_000,
        }
    }

    /// OpenAI's default and largest number of buckets per page (its costs API allows 180 days).
    fn limits(self, report: Report) -> (u32, u32) {
        match (self, report) {
            (Width::Day, Report::Costs) => (7, 180),
            (Width::Day, Report::Completions | Report::Embeddings) => (7, 31),
            (Width::Hour, _) => (24, 168),
            (Width::Minute, _) => (60, 1440),
        }
    }
}

/// What results are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Model,
    ApiKey,
    EndUser,
    Workspace,
    /// A model's input, output and request fees, each its own result (costs only).
    LineItem,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Model => "model",
            Group::ApiKey => "api_key_id",
            Group::EndUser => "user_id",
            Group::Workspace => "project_id",
            Group::LineItem => "line_item",
        }
    }

    /// Whether `report` may group by it, as OpenAI's API does.
    fn allowed(self, report: Report) -> bool {
        match report {
            Report::Completions | Report::Embeddings => self != Group::LineItem,
            Report::Costs => matches!(self, Group::ApiKey | Group::Workspace | Group::LineItem),
        }
    }
}

/// Filters: each a list of values, empty for any.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub models: Vec<String>,
    pub api_key_ids: Vec<String>,
    pub end_user_ids: Vec<String>,
    pub workspace_ids: Vec<String>,
}

/// How many values a filter may list.
pub const MAX_FILTER_VALUES: usize = 100;

/// A query as asked.
#[derive(Debug, Clone)]
pub struct BucketQuery {
    pub report: Report,
    pub start: Millis,
    /// Absent: now.
    pub end: Option<Millis>,
    pub width: Width,
    /// Absent: the width's default.
    pub limit: Option<u32>,
    pub page: Option<String>,
    pub group_by: Vec<Group>,
    pub filters: Filters,
}

/// The columns a query groups by. A line item needs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grouping {
    pub model: bool,
    pub api_key: bool,
    pub end_user: bool,
    pub workspace: bool,
    pub line_item: bool,
}

impl Grouping {
    /// Whether the SQL groups by the model column.
    pub fn model_column(self) -> bool {
        self.model || self.line_item
    }
}

/// A checked query: the page's buckets and the time range the SQL reads.
#[derive(Debug, Clone)]
pub struct Plan {
    pub report: Report,
    pub width: Width,
    pub grouping: Grouping,
    pub filters: Filters,
    /// The query's range, `[start, end)`.
    pub start: Millis,
    pub end: Millis,
    /// The (aligned) start of the page's first bucket, and how many buckets the page has (at least 1).
    pub first_bucket: Millis,
    pub buckets: u32,
    /// The aligned start of the next page's first bucket, when there is one.
    pub next_page: Option<Millis>,
}

impl Plan {
    /// What the SQL reads: the page's buckets, cut to the query's range.
    pub fn range(&self) -> (Millis, Millis) {
        let page_end = self.first_bucket + i64::from(self.buckets) * self.width.millis();
        (self.start.max(self.first_bucket), self.end.min(page_end))
    }
}

const PAGE_PREFIX: &str = "page_";

/// The cursor of the page whose first bucket starts at `bucket` (whole seconds: buckets are).
pub fn page_cursor(bucket: Millis) -> String {
    format!("{PAGE_PREFIX}{}", bucket / 1000)
}

impl BucketQuery {
    /// Checks the query against OpenAI's rules and plans its page; `now` ends a query without an end.
    pub fn plan(self, now: Millis) -> Result<Plan, BillingError> {
        let width = self.width.millis();
        let end = self.end.unwrap_or(now);
        if end <= self.start {
            return Err(BillingError::invalid(
                "end_time",
                "must be after start_time (without end_time: now)",
            ));
        }
        let (default, max) = self.width.limits(self.report);
        let limit = match self.limit {
            None => default,
            Some(limit) if (1..=max).contains(&limit) => limit,
            Some(_) => {
                return Err(BillingError::invalid(
                    "limit",
                    format!("must be between 1 and {max} for this bucket_width"),
                ));
            }
        };
        let mut grouping = Grouping::default();
        for group in &self.group_by {
            if !group.allowed(self.report) {
                return Err(BillingError::invalid(
                    "group_by",
                    format!("`{}` is not a group of this report", group.name()),
                ));
            }
            let flag = match group {
                Group::Model => &mut grouping.model,
                Group::ApiKey => &mut grouping.api_key,
                Group::EndUser => &mut grouping.end_user,
                Group::Workspace => &mut grouping.workspace,
                Group::LineItem => &mut grouping.line_item,
            };
            *flag = true;
        }
        let filters = &self.filters;
        for (name, values) in [
            ("models", &filters.models),
            ("api_key_ids", &filters.api_key_ids),
            ("user_ids", &filters.end_user_ids),
            ("project_ids", &filters.workspace_ids),
        ] {
            if values.len() > MAX_FILTER_VALUES {
                return Err(BillingError::invalid(
                    name,
                    format!("at most {MAX_FILTER_VALUES} values"),
                ));
            }
        }
        if self.report == Report::Costs
            && !(filters.models.is_empty() && filters.end_user_ids.is_empty())
        {
            return Err(BillingError::invalid(
                "models",
                "costs filter by project_ids and api_key_ids only",
            ));
        }
        let aligned_start = self.start - self.start.rem_euclid(width);
        let first_bucket = match self.page.as_deref() {
            None => aligned_start,
            Some(page) => parse_page(page, aligned_start, end, width)?,
        };
        // Buckets from the first up to the one holding the last millisecond of the range, at most `limit`.
        let remaining = (end - first_bucket + width - 1) / width;
        let buckets = u32::try_from(remaining).unwrap_or(u32::MAX).min(limit);
        let after = first_bucket + i64::from(buckets) * width;
        Ok(Plan {
            report: self.report,
            width: self.width,
            grouping,
            filters: self.filters,
            start: self.start,
            end,
            first_bucket,
            buckets,
            next_page: (after < end).then_some(after),
        })
    }
}

/// A `next_page` this query could have returned: a bucket start inside the range.
fn parse_page(
    page: &str,
    aligned_start: Millis,
    end: Millis,
    width: Millis,
) -> Result<Millis, BillingError> {
    page.strip_prefix(PAGE_PREFIX)
        .and_then(|seconds| seconds.parse::<i64>().ok())
        .and_then(|seconds| seconds.checked_mul(1000))
        .filter(|bucket| {
            *bucket >= aligned_start && *bucket < end && (bucket - aligned_start) % width == 0
        })
        .ok_or_else(|| BillingError::invalid("page", "is not a next_page of this query"))
}

/// The sums of one group in one bucket (a row of [`super::sql::bucket_sums`]); grouped values are `None`
/// when not grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSums {
    pub bucket: Millis,
    pub model: Option<String>,
    pub api_key_id: Option<String>,
    pub end_user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub audio_input_tokens: u64,
    pub audio_output_tokens: u64,
    /// What the records charged, and of it the input and the request fees.
    pub charged: Money,
    pub charged_input: Money,
    pub charged_fees: Money,
}

impl GroupSums {
    /// Adds `other`'s sums (of the same bucket and group) to these.
    pub fn add(&mut self, other: &GroupSums) -> Result<(), BillingError> {
        let count = |a: u64, b: u64| a.checked_add(b).ok_or(BillingError::Overflow);
        let money = |a: Money, b: Money| a.checked_add(b).ok_or(BillingError::Overflow);
        self.requests = count(self.requests, other.requests)?;
        self.input_tokens = count(self.input_tokens, other.input_tokens)?;
        self.output_tokens = count(self.output_tokens, other.output_tokens)?;
        self.cached_input_tokens = count(self.cached_input_tokens, other.cached_input_tokens)?;
        self.audio_input_tokens = count(self.audio_input_tokens, other.audio_input_tokens)?;
        self.audio_output_tokens = count(self.audio_output_tokens, other.audio_output_tokens)?;
        self.charged = money(self.charged, other.charged)?;
        self.charged_input = money(self.charged_input, other.charged_input)?;
        self.charged_fees = money(self.charged_fees, other.charged_fees)?;
        Ok(())
    }
}

/// One result of a bucket: a group's sums, or one line item of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketResult {
    pub model: Option<String>,
    pub api_key_id: Option<String>,
    pub end_user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub line_item: Option<String>,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub audio_input_tokens: u64,
    pub audio_output_tokens: u64,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub start: Millis,
    pub end: Millis,
    pub results: Vec<BucketResult>,
}

/// One page of a report.
#[derive(Debug, Clone)]
pub struct BucketPage {
    pub buckets: Vec<Bucket>,
    pub next_page: Option<String>,
}

impl Plan {
    /// Every bucket of the page, those without usage too, with the results of `rows`.
    pub fn page(&self, rows: Vec<GroupSums>) -> Result<BucketPage, BillingError> {
        let width = self.width.millis();
        let mut by_bucket: BTreeMap<Millis, Vec<GroupSums>> = BTreeMap::new();
        for row in rows {
            by_bucket.entry(row.bucket).or_default().push(row);
        }
        let mut buckets = Vec::with_capacity(self.buckets as usize);
        for index in 0..i64::from(self.buckets) {
            let bucket = self.first_bucket + index * width;
            let mut rows = by_bucket.remove(&bucket).unwrap_or_default();
            // By the grouped values, byte by byte: the same order on both databases, whatever their
            // collation.
            rows.sort_by(|a, b| {
                (&a.model, &a.api_key_id, &a.end_user_id, &a.workspace_id).cmp(&(
                    &b.model,
                    &b.api_key_id,
                    &b.end_user_id,
                    &b.workspace_id,
                ))
            });
            let mut results = Vec::with_capacity(rows.len());
            for row in rows {
                if self.grouping.line_item {
                    results.extend(line_items(row, self.grouping.model)?);
                } else {
                    results.push(result(row, self.grouping.model, None, None));
                }
            }
            buckets.push(Bucket {
                start: bucket.max(self.start),
                end: (bucket + width).min(self.end),
                results,
            });
        }
        // The SQL reads only the page's range, so every row has its bucket.
        debug_assert!(by_bucket.is_empty());
        Ok(BucketPage {
            buckets,
            next_page: self.next_page.map(page_cursor),
        })
    }
}

/// A group's sums as one result; `amount` when given (a line item's), else all it charged.
fn result(
    row: GroupSums,
    show_model: bool,
    line_item: Option<String>,
    amount: Option<Money>,
) -> BucketResult {
    BucketResult {
        model: if show_model { row.model } else { None },
        api_key_id: row.api_key_id,
        end_user_id: row.end_user_id,
        workspace_id: row.workspace_id,
        line_item,
        requests: row.requests,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_input_tokens: row.cached_input_tokens,
        audio_input_tokens: row.audio_input_tokens,
        audio_output_tokens: row.audio_output_tokens,
        amount: amount.unwrap_or(row.charged),
    }
}

/// A group's charge as line items: `"<model>, input"`, `"<model>, output"` and, when its fees are not
/// zero, `"<model>, request fee"`. The output line is what the input and fee lines leave of the charge,
/// so the lines add up to it exactly (for every record it is the record's output cost: BILLING.md,
/// "Rounding and the cost of a call").
fn line_items(row: GroupSums, show_model: bool) -> Result<Vec<BucketResult>, BillingError> {
    let model = row.model.clone().unwrap_or_default();
    let output = row
        .charged
        .checked_sub(row.charged_input)
        .and_then(|rest| rest.checked_sub(row.charged_fees))
        .ok_or(BillingError::Overflow)?;
    let mut lines = vec![
        (format!("{model}, input"), row.charged_input),
        (format!("{model}, output"), output),
    ];
    if !row.charged_fees.is_zero() {
        lines.push((format!("{model}, request fee"), row.charged_fees));
    }
    Ok(lines
        .into_iter()
        .map(|(item, amount)| result(row.clone(), show_model, Some(item), Some(amount)))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const DAY: Millis = 86_400_000;

    fn query(start: Millis, end: Option<Millis>, width: Width, limit: Option<u32>) -> BucketQuery {
        BucketQuery {
            report: Report::Completions,
            start,
            end,
            width,
            limit,
            page: None,
            group_by: vec![],
            filters: Filters::default(),
        }
    }

    #[test]
    fn pages_cover_the_range_bucket_by_bucket() {
        // Ten days and a half from a day's noon: 11 buckets, the first and last cut to the range.
        let start = 100 * DAY + DAY / 2;
        let end = start + 10 * DAY;
        let plan = query(start, Some(end), Width::Day, Some(4))
            .plan(0)
            .unwrap();
        assert_eq!((plan.first_bucket, plan.buckets), (100 * DAY, 4));
        assert_eq!(plan.range(), (start, 104 * DAY));
        assert_eq!(plan.next_page, Some(104 * DAY));
        let page = plan.page(vec![]).unwrap();
        assert_eq!(page.buckets.len(), 4);
        assert_eq!(page.buckets[0].start, start);
        assert_eq!(page.buckets[0].end, 101 * DAY);
        assert_eq!(page.next_page.as_deref(), Some("page_8985600"));

        let mut last = query(start, Some(end), Width::Day, Some(4));
        last.page = Some(page_cursor(108 * DAY));
        let plan = last.plan(0).unwrap();
        assert_eq!((plan.first_bucket, plan.buckets), (108 * DAY, 3));
        assert_eq!(plan.next_page, None);
        let page = plan.page(vec![]).unwrap();
        assert_eq!(page.buckets.last().unwrap().end, end);
    }

    #[test]
    fn bad_queries_are_refused() {
        let cases = [
            (query(DAY, Some(DAY), Width::Day, None), "end_time"),
            (query(0, Some(DAY), Width::Day, Some(32)), "limit"),
            (query(0, Some(DAY), Width::Hour, Some(0)), "limit"),
            (query(0, Some(DAY), Width::Minute, Some(1441)), "limit"),
        ];
        for (query, field) in cases {
            let error = query.plan(0).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
        }
        for page in ["page_1", "page_x", "86400", "page_-86400", "page_864000"] {
            let mut query = query(0, Some(10 * DAY), Width::Day, None);
            query.page = Some(page.into());
            let error = query.plan(0).unwrap_err().to_string();
            assert!(error.contains("page"), "{page}: {error}");
        }
        let mut costs = query(0, Some(DAY), Width::Day, Some(180));
        costs.report = Report::Costs;
        assert!(costs.clone().plan(0).is_ok());
        costs.group_by = vec![Group::Model];
        assert!(costs.plan(0).is_err());
        let mut usage = query(0, Some(DAY), Width::Day, None);
        usage.group_by = vec![Group::LineItem];
        assert!(usage.plan(0).is_err());
    }

    #[test]
    fn line_items_add_up_to_the_charge() {
        let row = GroupSums {
            bucket: 0,
            model: Some("gpt-4o".into()),
            api_key_id: None,
            end_user_id: None,
            workspace_id: None,
            requests: 2,
            input_tokens: 10,
            output_tokens: 5,
            cached_input_tokens: 0,
            audio_input_tokens: 0,
            audio_output_tokens: 0,
            charged: Money::from_nanos(1_000),
            charged_input: Money::from_nanos(300),
            charged_fees: Money::from_nanos(100),
        };
        let lines = line_items(row, false).unwrap();
        let items: Vec<_> = lines
            .iter()
            .map(|line| (line.line_item.clone().unwrap(), line.amount.nanos()))
            .collect();
        assert_eq!(
            items,
            [
                ("gpt-4o, input".to_string(), 300),
                ("gpt-4o, output".to_string(), 600),
                ("gpt-4o, request fee".to_string(), 100)
            ]
        );
        assert!(lines.iter().all(|line| line.model.is_none()));
    }
}
