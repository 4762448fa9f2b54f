//! Partner API integration tests: real SQLite files, the real PostgreSQL server (skipped with a printed reason
//! when it cannot be reached), real HTTP servers on port 0.
#![allow(clippy::unwrap_used)]

mod agents;
mod api;
mod auth;
mod crash;
mod e2e;
#[path = "../chain/harness.rs"]
mod harness;
mod replay;
mod support;
mod webhooks;
