//! Reads of the outbox.

use crate::error::BillingError;
use crate::events::{Event, EventType, sql};
use crate::ledger::{Ledger, Page, cursor, page, page_size};
use proto::ids::AccountId;

impl Ledger {
    /// Events of the outbox, newest first: of one account or all, of one type or all.
    pub async fn list_events(
        &self,
        account_id: Option<&AccountId>,
        kind: Option<EventType>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<Page<Event>, BillingError> {
        let limit = page_size(limit)?;
        let before = cursor(after)?;
        let mut connection = self.store.reader().acquire().await?;
        let rows = sql::list(&mut connection, account_id, kind, before, limit + 1).await?;
        Ok(page(rows, limit, |event| event.seq))
    }
}
