//! billing_auth tests.
