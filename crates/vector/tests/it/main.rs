//! Integration tests of ledge-vector (one test binary): the conformance suite on the embedded
//! driver, and what only the embedded driver promises (persistence, configuration, memory, the
//! quantized search and its migration).

mod embedded;
mod quantized;
