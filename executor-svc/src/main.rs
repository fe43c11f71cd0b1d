//! Placeholder entry point until the service is built.
fn main() {}
