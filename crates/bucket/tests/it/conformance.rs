//! The bucket conformance suite, run on the embedded driver.

ledge_bucket::bucket_conformance!(driver: crate::temp_bucket(), heap: &crate::HEAP);
