//! Integration tests of ledge-github against GitHub's published example payloads.

mod octokit_examples;
mod recorder;
