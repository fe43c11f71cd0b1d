//! Accounts: the holders of money (BILLING.md, "The ledger"): balance, holds, total spent, overage, caps,
//! volume tiers, `balance.low` thresholds and auto-recharge settings. Their operations are in [`ops`], their
//! SQL in [`sql`].

pub mod ops;
pub mod sql;

use proto::ids::AccountId;

use crate::credits::grants::CreditGrant;
use crate::events::alerts::LowBalance;
use crate::payments::auto_recharge::AutoRecharge;
use crate::prices::DiscountTier;
use crate::time::Millis;
use money::Money;

/// One account, as read at a point in a transaction.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub credits_balance: Money,
    pub held_credits: Money,
    pub total_spent: Money,
    /// What was charged beyond every grant (BILLING.md, "Credit grants"); the next grant pays it first.
    pub overage: Money,
    /// The `balance.low` thresholds and whether each may fire.
    pub low_balance: Vec<LowBalance>,
    /// Auto-recharge's settings and state, once configured.
    pub auto_recharge: Option<AutoRecharge>,
    pub daily_limit: Option<Money>,
    pub monthly_limit: Option<Money>,
    /// Volume discounts, lowest threshold first (BILLING.md, "Volume tiers").
    pub discount_tiers: Vec<DiscountTier>,
    /// Where mail goes (BILLING.md, "Email"); empty: none.
    pub email: String,
    /// The `hash` of the account's last ledger row (DESIGN §19); empty before its first.
    pub ledger_hash: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The grants that still hold credit: loaded with the lock ([`crate::store::Batch::lock`]), empty on
    /// plain reads.
    pub grants: Vec<CreditGrant>,
    /// Ids of the grants in `grants` whose remainder changed and must be written back.
    pub changed_grants: Vec<proto::ids::GrantId>,
}

impl Account {
    /// A new empty account.
    pub fn new(name: &str, now: Millis) -> Account {
        Account {
            id: AccountId::generate(),
            name: name.to_string(),
            credits_balance: Money::ZERO,
            held_credits: Money::ZERO,
            total_spent: Money::ZERO,
            overage: Money::ZERO,
            low_balance: Vec::new(),
            auto_recharge: None,
            daily_limit: None,
            monthly_limit: None,
            discount_tiers: Vec::new(),
            email: String::new(),
            ledger_hash: String::new(),
            created_at: now,
            updated_at: now,
            grants: Vec::new(),
            changed_grants: Vec::new(),
        }
    }

    /// What the account's next ledger row chains to: its last row's hash, or the chain's genesis.
    pub fn ledger_head(&self) -> &str {
        if self.ledger_hash.is_empty() {
            crate::credits::transactions::chain::GENESIS
        } else {
            &self.ledger_hash
        }
    }

    /// Balance minus active holds.
    pub fn available(&self) -> Money {
        Money::from_nanos(
            self.credits_balance
                .nanos()
                .saturating_sub(self.held_credits.nanos()),
        )
    }
}
