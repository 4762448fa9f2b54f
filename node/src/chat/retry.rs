//! Bounded retries with exponential back-off and full jitter, shared by the outbound platform clients.

use std::time::Duration;

use rand::Rng;

/// How outbound calls are retried. Every field is a limit: attempts are bounded and so is every wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (at least 1).
    pub max_attempts: u32,
    /// First back-off ceiling; doubles per attempt.
    pub base_delay_ms: u64,
    /// Largest back-off between two attempts.
    pub max_delay_ms: u64,
    /// Largest server-requested wait (`Retry-After`, Telegram `retry_after`) we honour; a longer one gives up at once
    /// and is reported as rate limited (the caller's queue tries again later).
    pub max_server_wait_ms: u64,
    /// Timeout of one HTTP attempt.
    pub request_timeout_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay_ms: 250,
            max_delay_ms: 8_000,
            max_server_wait_ms: 30_000,
            request_timeout_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// Back-off before attempt `attempt + 1` (attempt counts from 1): a random duration in
    /// `[ceiling/2, ceiling]` where `ceiling = min(max_delay, base * 2^(attempt-1))` ("equal jitter").
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_ms)
            .max(1);
        let low = ceiling / 2;
        let ms = rand::thread_rng().gen_range(low..=ceiling);
        Duration::from_millis(ms)
    }

    /// The wait before the next attempt: the server's request if it gave one (bounded by `max_server_wait_ms`;
    /// `None` when it asks for longer), else the jittered back-off.
    pub fn wait(&self, attempt: u32, server_wait: Option<Duration>) -> Option<Duration> {
        match server_wait {
            Some(w) if w > Duration::from_millis(self.max_server_wait_ms) => None,
            Some(w) => Some(w.max(self.backoff(attempt) / 4)),
            None => Some(self.backoff(attempt)),
        }
    }

    /// At least one attempt.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let p = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            ..RetryPolicy::default()
        };
        for _ in 0..200 {
            let d1 = p.backoff(1).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            let d3 = p.backoff(3).as_millis();
            assert!((200..=400).contains(&d3), "{d3}");
            let d30 = p.backoff(30).as_millis();
            assert!((500..=1_000).contains(&d30), "{d30}");
        }
        assert_eq!(p.wait(1, Some(Duration::from_secs(123_456))), None);
        assert!(
            p.wait(1, Some(Duration::from_secs(2)))
                .is_some_and(|d| d >= Duration::from_secs(2))
        );
        assert_eq!(RetryPolicy { max_attempts: 0, ..p }.attempts(), 1);
    }
}
