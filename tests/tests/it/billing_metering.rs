//! billing_metering tests.
