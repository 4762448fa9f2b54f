//! Load generators: a closed loop (N connections, each sends its next request when the last one is answered) for
//! throughput, and an open loop (requests start on a fixed schedule, whatever the server does) for latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

/// Builds the `i`-th request (signed afresh: every request must be new to the server).
pub type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> anyhow::Result<reqwest::Request> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Throughput {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

impl Throughput {
    pub fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// `connections` workers, each with its own connection, send back to back for `duration` (or until `max_requests`
/// were sent, when given: a burst); 2xx answers count as ok.
pub async fn closed_loop(
    connections: usize,
    duration: Duration,
    max_requests: Option<u64>,
    make: MakeRequest,
) -> anyhow::Result<Throughput> {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        // One client per worker: one keep-alive connection each, like 64 concurrent webhook senders.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        let (stop, ok, errors, first_error, seq, make) = (
            stop.clone(),
            ok.clone(),
            errors.clone(),
            first_error.clone(),
            seq.clone(),
            make.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                if max_requests.is_some_and(|max| i >= max) {
                    break;
                }
                let req = make(&client, i)?;
                let result = client.execute(req).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match result {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        first_error
                            .lock()
                            .await
                            .get_or_insert(format!("HTTP {status}: {body}"));
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().await.get_or_insert(e.to_string());
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    let all = futures::future::join_all(tasks);
    tokio::pin!(all);
    let (elapsed, results) = tokio::select! {
        results = &mut all => (start.elapsed(), results),
        () = tokio::time::sleep(duration) => {
            stop.store(true, Ordering::Relaxed);
            let elapsed = start.elapsed();
            (elapsed, all.await)
        }
    };
    for r in results {
        r??;
    }
    let first_error = first_error.lock().await.clone();
    Ok(Throughput {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        first_error,
    })
}

#[derive(Debug, Clone)]
pub struct Latency {
    /// Microseconds from handing each request to the HTTP client to its complete answer. Requests are dispatched
    /// on a fixed schedule whatever the server does (open loop), so a stalled server is charged for everything that
    /// queues behind it; the generator's own lateness is tracked apart in `dispatch_lag`.
    pub histogram: Histogram<u64>,
    /// Microseconds each request was dispatched after its scheduled time (the generator's health).
    pub dispatch_lag: Histogram<u64>,
    pub sent: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub achieved_per_s: f64,
}

impl Latency {
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Starts `rate` requests per second for `duration` on a fixed schedule, each in its own task, over one shared
/// connection pool; records the latency of every answer (errors count separately and are not in the histogram).
pub async fn open_loop(rate: u32, duration: Duration, make: MakeRequest) -> anyhow::Result<Latency> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let lag = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let total = u64::from(rate) * duration.as_secs().max(1);
    let period = Duration::from_secs(1) / rate.max(1);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for i in 0..total {
        let scheduled = start + period * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(scheduled).await;
        let (client, hist, lag, errors, first_error, make) = (
            client.clone(),
            hist.clone(),
            lag.clone(),
            errors.clone(),
            first_error.clone(),
            make.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let outcome = match make(&client, i) {
                Ok(req) => {
                    let sent = tokio::time::Instant::now();
                    let lag_us = u64::try_from((sent - scheduled).as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    lag.lock().await.saturating_record(lag_us);
                    match client.execute(req).await {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.map(|_| sent.elapsed()).map_err(|e| e.to_string())
                        }
                        Ok(r) => {
                            let status = r.status();
                            Err(format!("HTTP {status}: {}", r.text().await.unwrap_or_default()))
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(format!("{e:#}")),
            };
            match outcome {
                Ok(latency) => {
                    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                    hist.lock().await.saturating_record(us);
                }
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().await.get_or_insert(e);
                }
            }
        }));
    }
    let sending = start.elapsed();
    for t in tasks {
        t.await?;
    }
    let histogram = hist.lock().await.clone();
    let dispatch_lag = lag.lock().await.clone();
    let first_error = first_error.lock().await.clone();
    Ok(Latency {
        histogram,
        dispatch_lag,
        sent: total,
        errors: errors.load(Ordering::Relaxed),
        first_error,
        achieved_per_s: total as f64 / sending.as_secs_f64().max(1e-9),
    })
}
