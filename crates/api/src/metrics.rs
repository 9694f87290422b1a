//! Process metrics in the Prometheus text format: HTTP requests by route and status, request
//! latency, queue and dead-letter depths, consumer batch latency, resident memory.
//!
//! Recording is on the hot path of every request, so it touches only the recording thread's own
//! shard (an uncontended lock and a few atomic adds); rendering happens only when `/metrics` is
//! scraped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A fixed-bucket latency histogram updated with atomics.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds `other`'s observations to this histogram.
    fn add(&self, other: &Histogram) {
        for (total, bucket) in self.buckets.iter().zip(&other.buckets) {
            total.fetch_add(bucket.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.count.fetch_add(other.count.load(Ordering::Relaxed), Ordering::Relaxed);
        self.sum_micros.fetch_add(other.sum_micros.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` series of this histogram with `labels`
    /// (`key="value",…` without braces, may be empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Requests counted by one shard: route template → (method, status, count) rows.
type RouteCounts = HashMap<Box<str>, Vec<(&'static str, u16, u64)>>;

/// One thread's share of [`HttpMetrics`], on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    routes: Mutex<RouteCounts>,
    latency: Histogram,
}

/// How many shards [`HttpMetrics`] has: threads beyond it share one (correct, only slower).
const SHARDS: usize = 8;

/// The shard the calling thread records into: threads take the next one on their first request.
fn shard_index() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static INDEX: usize = (NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS as u64) as usize;
    }
    INDEX.with(|i| *i)
}

/// HTTP request metrics. Each thread that answers requests counts into a shard of its own, so
/// the HTTP threads never write the same cache lines or wait for one another's lock; `/metrics`
/// adds the shards up.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    shards: [Shard; SHARDS],
}

fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl HttpMetrics {
    /// Counts one answered request. `route` is the matched route template (never the raw path,
    /// so the label set stays bounded), or `unmatched`.
    pub fn record(&self, method: &http::Method, route: &str, status: u16, elapsed: Duration) {
        let shard = &self.shards[shard_index()];
        shard.latency.observe(elapsed);
        let method = method_label(method);
        let mut routes = shard.routes.lock().unwrap_or_else(|p| p.into_inner());
        let rows = match routes.get_mut(route) {
            Some(rows) => rows,
            None => routes.entry(route.into()).or_default(),
        };
        match rows.iter_mut().find(|(m, s, _)| *m == method && *s == status) {
            Some(row) => row.2 += 1,
            None => rows.push((method, status, 1)),
        }
    }

    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP ledge_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE ledge_http_requests_total counter\n");
        let mut totals: std::collections::BTreeMap<Box<str>, Vec<(&'static str, u16, u64)>> =
            Default::default();
        let latency = Histogram::default();
        for shard in &self.shards {
            latency.add(&shard.latency);
            for (route, rows) in shard.routes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let total = totals.entry(route.clone()).or_default();
                for &(method, status, n) in rows {
                    match total.iter_mut().find(|(m, s, _)| *m == method && *s == status) {
                        Some(row) => row.2 += n,
                        None => total.push((method, status, n)),
                    }
                }
            }
        }
        for (route, rows) in totals {
            for (method, status, n) in rows {
                let _ = writeln!(
                    out,
                    "ledge_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(&route)
                );
            }
        }
        out.push_str("# HELP ledge_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE ledge_http_request_duration_seconds histogram\n");
        latency.render(out, "ledge_http_request_duration_seconds", "");
    }
}

/// Every metric of the process.
#[derive(Debug, Default)]
pub struct Metrics {
    pub http: HttpMetrics,
    consumers: RwLock<Vec<(String, Arc<ledge_queue::ConsumerStats>)>>,
}

impl Metrics {
    /// Makes a queue consumer's counters part of `/metrics`.
    pub fn register_consumer(&self, queue: &str, stats: Arc<ledge_queue::ConsumerStats>) {
        self.consumers.write().unwrap_or_else(|p| p.into_inner()).push((queue.to_string(), stats));
    }

    /// The Prometheus text exposition of everything.
    pub async fn render(&self, env: &ledge_env::Env, modules: &crate::Modules) -> String {
        let mut out = String::with_capacity(8192);
        self.http.render(&mut out);
        render_queues(&mut out, env).await;
        self.render_consumers(&mut out);
        out.push_str(
            "# HELP ledge_module_loaded Whether a route module's state has been built (1) or not (0).\n",
        );
        out.push_str("# TYPE ledge_module_loaded gauge\n");
        for m in modules.statuses() {
            let _ = writeln!(out, "ledge_module_loaded{{module=\"{}\"}} {}", m.name, u8::from(m.loaded));
        }
        out.push_str("# HELP ledge_process_resident_memory_bytes Resident set size of the process.\n");
        out.push_str("# TYPE ledge_process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "ledge_process_resident_memory_bytes {}", resident_bytes().unwrap_or(0));
        out
    }

    fn render_consumers(&self, out: &mut String) {
        let consumers = self.consumers.read().unwrap_or_else(|p| p.into_inner());
        let counters: [(&str, &str, Counter); 6] = [
            ("ledge_consumer_batches_total", "Batches handled.", |s| s.batches),
            ("ledge_consumer_handler_failures_total", "Batches whose handler failed.", |s| {
                s.handler_failures
            }),
            ("ledge_consumer_messages_acked_total", "Messages acknowledged.", |s| s.messages_acked),
            ("ledge_consumer_messages_retried_total", "Messages retried.", |s| s.messages_retried),
            (
                "ledge_consumer_messages_dead_lettered_total",
                "Messages moved to the dead-letter queue.",
                |s| s.messages_dead_lettered,
            ),
            ("ledge_consumer_messages_discarded_total", "Messages dropped out of retries.", |s| {
                s.messages_discarded
            }),
        ];
        let snapshots: Vec<_> = consumers.iter().map(|(q, s)| (q.as_str(), s.snapshot())).collect();
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (queue, snap) in &snapshots {
                let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", escape(queue), get(snap));
            }
        }
        let name = "ledge_consumer_batch_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a batch's delivery to its settlement.\n# TYPE {name} histogram"
        );
        for (queue, snap) in &snapshots {
            let labels = format!("queue=\"{}\"", escape(queue));
            for (bound, count) in &snap.batch_latency.buckets {
                let le = if bound.is_infinite() { "+Inf".to_string() } else { bound.to_string() };
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
            }
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", snap.batch_latency.sum_seconds);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", snap.batch_latency.count);
        }
    }
}

/// Reads one counter out of a consumer's stats.
type Counter = fn(&ledge_queue::ConsumerStatsSnapshot) -> u64;

/// Queue depth by state and dead-letter depth, per declared queue.
async fn render_queues(out: &mut String, env: &ledge_env::Env) {
    let backend = match env.queue_backend().await {
        Ok(b) => b,
        Err(error) => {
            tracing::warn!(%error, "queue metrics unavailable");
            return;
        }
    };
    out.push_str("# HELP ledge_queue_depth Messages in a queue, by state (ready, delayed, in_flight).\n");
    out.push_str("# TYPE ledge_queue_depth gauge\n");
    let mut totals = std::collections::HashMap::new();
    for name in env.config().queues.keys() {
        match backend.depth(name).await {
            Ok(d) => {
                for (state, n) in [("ready", d.ready), ("delayed", d.delayed), ("in_flight", d.in_flight)] {
                    let _ = writeln!(
                        out,
                        "ledge_queue_depth{{queue=\"{}\",state=\"{state}\"}} {n}",
                        escape(name)
                    );
                }
                totals.insert(name.as_str(), d.ready + d.delayed + d.in_flight);
            }
            Err(error) => tracing::warn!(queue = %name, %error, "cannot read queue depth"),
        }
    }
    out.push_str("# HELP ledge_queue_dlq_depth Messages in a queue's dead-letter queue.\n");
    out.push_str("# TYPE ledge_queue_dlq_depth gauge\n");
    for (name, q) in &env.config().queues {
        if let Some(depth) = q.dead_letter_queue.as_deref().and_then(|dlq| totals.get(dlq)) {
            let _ = writeln!(out, "ledge_queue_dlq_depth{{queue=\"{}\"}} {depth}", escape(name));
        }
    }
}

/// Escapes a Prometheus label value.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Resident set size of this process in bytes (Linux), if it can be read.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = HttpMetrics::default();
        m.record(&http::Method::GET, "/health", 200, Duration::from_micros(100));
        m.record(&http::Method::GET, "/health", 200, Duration::from_micros(100));
        m.record(&http::Method::POST, "/webhooks/github", 401, Duration::from_millis(2));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("ledge_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2\n")
        );
        assert!(out.contains(
            "ledge_http_requests_total{route=\"/webhooks/github\",method=\"POST\",status=\"401\"} 1\n"
        ));
        assert!(out.contains("ledge_http_request_duration_seconds_bucket{le=\"0.0005\"} 2\n"), "{out}");
        assert!(out.contains("ledge_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(out.contains("ledge_http_request_duration_seconds_count 3\n"));
    }

    #[test]
    fn requests_counted_on_many_threads_add_up() {
        let m = HttpMetrics::default();
        std::thread::scope(|s| {
            for _ in 0..SHARDS + 3 {
                s.spawn(|| {
                    for _ in 0..100 {
                        m.record(&http::Method::GET, "/health", 200, Duration::from_micros(100));
                    }
                    m.record(&http::Method::GET, "/health", 503, Duration::from_secs(2));
                });
            }
        });
        let mut out = String::new();
        m.render(&mut out);
        let threads = SHARDS + 3;
        assert!(out.contains(&format!(
            "ledge_http_requests_total{{route=\"/health\",method=\"GET\",status=\"200\"}} {}\n",
            threads * 100
        )));
        assert!(out.contains(&format!(
            "ledge_http_requests_total{{route=\"/health\",method=\"GET\",status=\"503\"}} {threads}\n"
        )));
        assert_eq!(out.matches("route=\"/health\",method=\"GET\",status=\"200\"").count(), 1, "{out}");
        assert!(out.contains(&format!(
            "ledge_http_request_duration_seconds_bucket{{le=\"1\"}} {}\n",
            threads * 100
        )));
        assert!(out.contains(&format!("ledge_http_request_duration_seconds_count {}\n", threads * 101)));
    }

    #[test]
    fn resident_memory_is_readable_on_linux() {
        assert!(resident_bytes().unwrap() > 1024 * 1024);
    }
}
