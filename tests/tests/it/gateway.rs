//! gateway tests.
