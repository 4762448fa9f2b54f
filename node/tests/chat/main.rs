//! Chat bridge integration tests: one binary, a module per feature.

mod conversation;
mod fake_engine;
mod full_node;
mod harness;
mod multi;
mod p2p;
mod restart;
mod store;
mod terminal;
mod webhooks;
