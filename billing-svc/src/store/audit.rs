//! The one ledger audit: every invariant of BILLING.md, "The ledger", checked straight in SQL, each as the
//! count of rows that break it, and every account's hash chain walked row by row. Used by the tests and the
//! bench after every scenario; it reads only, so it may run against a live database (a write between two
//! checks may then show as a violation).

use sqlx::AnyConnection;

/// The invariants, each a query counting the rows that break it.
const CHECKS: [(&str, &str); 11] = [
    (
        "accounts whose credits_balance != sum(transactions.amount)",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM billing_accounts a WHERE a.credits_balance <> \
         CAST(COALESCE((SELECT SUM(t.amount) FROM transactions t WHERE t.account_id = a.id), 0) AS BIGINT)",
    ),
    (
        "accounts whose total_spent != -(usage deductions + refunds)",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM billing_accounts a WHERE a.total_spent <> \
         -CAST(COALESCE((SELECT SUM(t.amount) FROM transactions t WHERE t.account_id = a.id \
           AND t.type IN ('usage_deduction', 'refund')), 0) AS BIGINT)",
    ),
    (
        "accounts whose held_credits != sum(holds.amount)",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM billing_accounts a WHERE a.held_credits <> \
         CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.account_id = a.id), 0) AS BIGINT)",
    ),
    (
        "transactions whose balance_after is not the running sum of their account",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT balance_after, \
           CAST(SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS BIGINT) AS running \
           FROM transactions) t WHERE t.running <> t.balance_after",
    ),
    (
        "execution ids with more than one usage record",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT execution_id FROM usage_records \
         GROUP BY execution_id HAVING COUNT(*) > 1) d",
    ),
    (
        "accounts whose credits_balance != sum(grants.remaining) - overage",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM billing_accounts a WHERE a.credits_balance <> \
         CAST(COALESCE((SELECT SUM(g.remaining) FROM credit_grants g WHERE g.account_id = a.id), 0) AS BIGINT) \
         - a.overage",
    ),
    (
        "expired grants that still hold credit past their expiry mark",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM credit_grants WHERE expired_at IS NOT NULL AND remaining <> 0",
    ),
    (
        "keys whose account does not exist",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM api_keys k \
         WHERE NOT EXISTS (SELECT 1 FROM billing_accounts a WHERE a.id = k.account_id)",
    ),
    (
        "usage records not in the account of their key",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM usage_records u JOIN api_keys k ON k.id = u.api_key_id \
         WHERE k.account_id <> u.account_id",
    ),
    (
        "holds not in the account of their key",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM holds h JOIN api_keys k ON k.id = h.api_key_id \
         WHERE k.account_id <> h.account_id",
    ),
    (
        "transactions not in the account of their key",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM transactions t JOIN api_keys k ON k.id = t.api_key_id \
         WHERE k.account_id <> t.account_id",
    ),
];

/// Every violation found, as "<count> <what>", then every account whose hash chain breaks, naming its first
/// broken row (`credits::chain_ops::verify_chains`); empty when the books balance.
pub async fn audit(connection: &mut AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut violations = Vec::new();
    for (what, sql) in CHECKS {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut *connection).await?;
        if count != 0 {
            violations.push(format!("{count} {what}"));
        }
    }
    violations.extend(crate::credits::chain_ops::verify_chains(connection).await?);
    Ok(violations)
}
