//! Integration tests of `ledge-auth`: one test binary, one module per primitive, plus property
//! tests that throw arbitrary input at every parser.

mod access;
mod bearer;
mod jwt;
mod password;
mod properties;
mod sealing;
mod stripe;
mod throttle;
mod token;
