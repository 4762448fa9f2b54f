//! Remesa node library: the `remesa` binary is a thin shell over this crate.
//!
//! Codemap: [`config`] (file + `REMESA_*` env), [`store`] (sqlx `AnyPool`, migrations), [`domain`] (parsed
//! newtypes), [`engine`] (quotes, remittance state machine, ledger, custody, chain event sink), [`chain`] (outbox,
//! indexer, refund keeper), [`http`] (public API), [`chat`], [`partner`], [`app`] (wiring), [`cli`] (commands).
//!
//! Dependencies point one way (checked by a test in `layers.rs`):
//! `domain ← faults ← config ← store ← chain ← engine ← http ← (chat, partner) ← app ← cli`.

pub mod app;
pub mod chain;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod engine;
pub mod faults;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
#[cfg(test)]
mod layers;
pub mod partner;
pub mod store;
