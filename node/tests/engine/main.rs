//! Store and engine tests: the same suite on a fresh SQLite file and a fresh PostgreSQL database
//! (`REMESA_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`; skipped with a printed reason
//! when unreachable). Chain events are delivered through the engine's `ChainEventSink` exactly as the indexer
//! does (inside a transaction); the on-chain side is covered by the end-to-end tests in `tests/`.

mod cases;
mod console;
mod helpers;
mod holds;
mod http;
mod kyc;
mod lifecycle;
mod limits;
mod migrations;
mod model;
mod p2p;
mod quotes;
mod sanctions;
mod travel_rule;
mod write_group;
