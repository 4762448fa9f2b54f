//! Store and engine tests: the same suite on a fresh SQLite file and a fresh PostgreSQL database
//! (`REMESA_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`; skipped with a printed reason
//! when unreachable). Chain events are delivered through the engine's `ChainEventSink` exactly as the indexer
//! does (inside a transaction); the on-chain side is covered by the end-to-end tests in `tests/`.

mod helpers;
mod http;
mod lifecycle;
mod migrations;
mod model;
mod p2p;
mod quotes;

/// Runs an async test body against SQLite and then PostgreSQL.
#[macro_export]
macro_rules! both_dbs {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = $crate::helpers::TestEnv::sqlite().await;
                super::$body(t).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(t) = $crate::helpers::TestEnv::postgres().await else {
                    return;
                };
                super::$body(t).await;
            }
        }
    };
}
