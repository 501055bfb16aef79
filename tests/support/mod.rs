//! Test doubles shared by the integration tests.

pub mod lex;
pub mod nlu;
