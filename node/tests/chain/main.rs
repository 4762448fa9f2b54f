//! Chain outbox, indexer and refund keeper against real databases (SQLite files, PostgreSQL schemas) and, where a
//! chain is needed, a real anvil with the real contracts.

/// Repeats `$body` (a block giving `bool`, may use `?`) until it is true, failing after `$secs` seconds.
macro_rules! until {
    ($what:expr, $secs:expr, $body:block) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            let done: bool = $body;
            if done {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {}",
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}

mod harness;
mod indexer;
mod multi;
mod outbox;
mod queue;
mod runtime;
