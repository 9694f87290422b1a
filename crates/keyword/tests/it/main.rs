//! The keyword index's integration tests: one test binary, one module per behaviour.

mod durability;
mod search;
mod support;
mod writes;
