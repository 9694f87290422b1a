//! Integration tests of ledge-vector (one test binary): the conformance suite on the embedded
//! driver, and what only the embedded driver promises (persistence, configuration, memory).

mod embedded;
