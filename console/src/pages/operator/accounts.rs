//! The operator's list of accounts (oldest first, or those whose name or id contains a search) and the form
//! that creates one.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::error::PageError;
use crate::forms;
use crate::pages::display::account;
use crate::pages::operator::admin_service::client;
use crate::render::form_page;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Accounts read at most by a search.
const SEARCHED_ACCOUNTS: usize = 5_000;

#[derive(Debug, Deserialize, Default)]
pub struct AccountsQuery {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

/// Every account, oldest first, or those whose name or id contains the search.
pub async fn accounts(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Query(query): Query<AccountsQuery>,
) -> Result<Response, PageError> {
    viewer.require_operator()?;
    accounts_view(&state, &viewer, &query, None).await
}

/// The accounts page; with `retry`, its new account form sent back with the name typed and why it was
/// refused.
async fn accounts_view(
    state: &ConsoleState,
    viewer: &Viewer,
    query: &AccountsQuery,
    retry: Option<forms::Retry>,
) -> Result<Response, PageError> {
    let mut admin = client(state);
    let search = query.q.trim().to_lowercase();
    let (rows, next) = if search.is_empty() {
        let page_of_accounts = admin
            .list_accounts(viewer.request(pb::ListAccountsRequest {
                limit: 50,
                cursor: query.cursor.clone(),
            }))
            .await?
            .into_inner();
        (page_of_accounts.accounts, page_of_accounts.next_cursor)
    } else {
        let (mut found, mut cursor, mut read) = (Vec::new(), None, 0usize);
        loop {
            let page_of_accounts = admin
                .list_accounts(viewer.request(pb::ListAccountsRequest {
                    limit: 1000,
                    cursor,
                }))
                .await?
                .into_inner();
            read += page_of_accounts.accounts.len();
            found.extend(page_of_accounts.accounts.into_iter().filter(|account| {
                account.name.to_lowercase().contains(&search)
                    || account.account_id.to_lowercase().contains(&search)
            }));
            match page_of_accounts.next_cursor {
                Some(next) if read < SEARCHED_ACCOUNTS => cursor = Some(next),
                _ => break,
            }
        }
        (found, None)
    };
    let data = json!({
        "q": query.q,
        "accounts": rows.iter().map(account).collect::<Vec<_>>(),
        "next": next,
    });
    form_page(
        "admin_accounts.html",
        viewer,
        "Accounts",
        "accounts",
        data,
        retry,
    )
}

#[derive(Debug, Deserialize)]
pub struct NewAccountForm {
    csrf: String,
    name: String,
}

/// The new account form's field ([`forms::Retry`]).
const ACCOUNT_FIELDS: forms::Fields = &[("name", &["name"])];

/// Creates an account and opens its page; a refusal of the name typed sends the form back with it.
pub async fn create_account(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require_operator()?;
    let created = client(&state)
        .create_account(viewer.request(pb::CreateAccountRequest {
            name: form.name.trim().to_string(),
        }))
        .await;
    match created {
        Ok(created) => Ok(Redirect::to(&format!(
            "/console/admin/accounts/{}?done=account",
            created.into_inner().account_id
        ))
        .into_response()),
        Err(status) => {
            let values = json!({"name": form.name});
            let retry = forms::Retry::of(status.into(), "account", ACCOUNT_FIELDS, values)?;
            accounts_view(&state, &viewer, &AccountsQuery::default(), Some(retry)).await
        }
    }
}
