//! Payments: Stripe's webhook and REST client ([`stripe`]), auto-recharge's settings ([`auto_recharge`]) and
//! the charges it starts ([`recharges`]), and the ledger operations that credit what was paid ([`ops`])
//! (WEBHOOKS.md, "Stripe's webhook (payments)").

pub mod auto_recharge;
pub mod ops;
pub mod recharges;
pub mod stripe;
