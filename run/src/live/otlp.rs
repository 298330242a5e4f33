//! `fleet --otlp-endpoint URL`: the run's metrics (`Live::metrics`, the same ones
//! `--metrics-listen` serves) pushed to an OpenTelemetry collector over OTLP/HTTP in protobuf,
//! every `--otlp-interval-s` and once more with the final figures.
//!
//! Counters are monotonic sums and histograms explicit-bucket histograms, both cumulative from
//! the run's start (so a lost export loses nothing: the next one carries it). The process's
//! identity is the resource: `otpfleet.run.id` (the run's seed, the same in every shard),
//! `otpfleet.shard.index`, `otpfleet.shard.count`, `otpfleet.role`, and a `service.instance.id`
//! of its own, so a backend sums the shards of one run. Exports never overlap and never slow
//! the run: one at a time on their own task, each bounded by the interval and by 10 s.

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otpfleet_client::{ApiRequest, HttpTransport, Target, Transport as _};
use otpfleet_emulator::Live;
use otpfleet_emulator::live::{Kind, Series, Value};
use prost::Message as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The path of the metrics signal under a collector's base URL.
const METRICS_PATH: &str = "/v1/metrics";
/// Attempts at the last export (the final figures), a second apart.
const FINAL_ATTEMPTS: u32 = 3;
/// The longest one export may take (OpenTelemetry's default export timeout), or the interval
/// when that is shorter: a collector that never answers holds up neither the exports nor the
/// run's end for long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the exports go: a collector's base URL (`/v1/metrics` is added) or the signal's
/// own URL (ending in `/v1/metrics`).
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    url: String,
    target: Target,
}

impl Endpoint {
    pub(super) fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let bad = |why: String| crate::BadInput(format!("--otlp-endpoint {url}: {why}"));
        let mut target: Target = url.parse().map_err(|e| bad(format!("{e}")))?;
        let base = target.base_path.trim_end_matches('/');
        target.base_path = base.strip_suffix(METRICS_PATH).unwrap_or(base).to_owned();
        let url = format!("{}{}", target.url().trim_end_matches('/'), METRICS_PATH);
        Ok(Endpoint { url, target })
    }

    /// The URL the exports are posted to.
    pub(super) fn url(&self) -> &str {
        &self.url
    }
}

/// How the exports went.
#[derive(Debug, Default)]
struct Outcomes {
    sent: u64,
    failed: u64,
    last_failure: Option<String>,
}

/// A running exporter.
#[derive(Debug)]
pub(super) struct Exporter {
    shared: Arc<Shared>,
    periodic: tokio::task::JoinHandle<()>,
}

/// What the exporter's periodic task and its end share.
#[derive(Debug)]
struct Shared {
    endpoint: Endpoint,
    transport: HttpTransport,
    outcomes: Mutex<Outcomes>,
    /// The run's start on the wall clock, nanoseconds (the cumulative series' start), set at
    /// the first export.
    start_ns: OnceLock<u64>,
}

impl Exporter {
    /// Exports `live`'s metrics every `interval` once the run has started; an export takes
    /// at most `interval` or `EXPORT_TIMEOUT`, the shorter. Call from within the run's runtime.
    pub(super) fn start(
        endpoint: Endpoint,
        interval: Duration,
        live: Arc<OnceLock<Live>>,
    ) -> anyhow::Result<Exporter> {
        let tls = if endpoint.target.tls {
            Some(otpfleet_client::tls_config(None)?)
        } else {
            None
        };
        let timeout = interval.min(EXPORT_TIMEOUT);
        let transport = HttpTransport::to(endpoint.target.clone(), tls, 1, timeout);
        let shared = Arc::new(Shared {
            endpoint,
            transport,
            outcomes: Mutex::default(),
            start_ns: OnceLock::new(),
        });
        let periodic = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Some(live) = live.get() {
                        shared.export(live).await;
                    }
                }
            })
        };
        Ok(Exporter { shared, periodic })
    }

    /// Stops the periodic exports, sends the final figures (a few attempts), and says how the
    /// exports went.
    pub(super) async fn finish(self, live: &Live) {
        self.periodic.abort();
        let shared = &self.shared;
        for attempt in 1..=FINAL_ATTEMPTS {
            if shared.export(live).await {
                break;
            }
            if attempt < FINAL_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let o = shared
            .outcomes
            .lock()
            .expect("the outcomes' lock is never poisoned");
        let url = &shared.endpoint.url;
        match &o.last_failure {
            None => eprintln!("fleet: {} OTLP exports to {url}, every one taken", o.sent),
            Some(why) => eprintln!(
                "warning: {} of {} OTLP exports to {url} failed (the last: {why}); the run's \
                 figures are in its folder",
                o.failed, o.sent
            ),
        }
    }
}

impl Shared {
    /// One export of `live`'s figures now; answers whether the collector took all of it.
    async fn export(&self, live: &Live) -> bool {
        // Milliseconds are all an export's timestamp needs.
        let now_ns = crate::wall_clock_ms().saturating_mul(1_000_000);
        let elapsed_ns = u64::try_from(live.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let start_ns = *self
            .start_ns
            .get_or_init(|| now_ns.saturating_sub(elapsed_ns));
        let body = request(live, start_ns, now_ns).encode_to_vec();
        let req = ApiRequest {
            content_type: Some("application/x-protobuf"),
            body: body.into(),
            ..ApiRequest::post(METRICS_PATH)
        };
        let failure = match self.transport.send(req).await {
            Ok(answer) if answer.ok() => rejected(&answer.body),
            Ok(answer) => Some(format!(
                "HTTP {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
            )),
            Err(e) => Some(e.to_string()),
        };
        let mut o = self
            .outcomes
            .lock()
            .expect("the outcomes' lock is never poisoned");
        o.sent += 1;
        if let Some(why) = &failure {
            o.failed += 1;
            o.last_failure = Some(why.clone());
        }
        failure.is_none()
    }
}

/// What a collector's 2xx answer says it rejected (OTLP's partial success), if anything.
fn rejected(body: &[u8]) -> Option<String> {
    let response = ExportMetricsServiceResponse::decode(body).ok()?;
    let partial = response.partial_success?;
    (partial.rejected_data_points > 0 || !partial.error_message.is_empty()).then(|| {
        format!(
            "the collector rejected {} data points: {}",
            partial.rejected_data_points, partial.error_message
        )
    })
}

/// The export request of `live`'s metrics now, cumulative from `start_ns`.
pub(super) fn request(live: &Live, start_ns: u64, now_ns: u64) -> ExportMetricsServiceRequest {
    let cfg = live.config();
    let (seed, role) = (cfg.seed.to_string(), cfg.role.to_string());
    let (index, count) = (cfg.shard.index(), cfg.shard.count());
    let resource = Resource {
        attributes: vec![
            text("service.name", "otpfleet"),
            text(
                "service.instance.id",
                &format!("seed{seed}-shard{index}of{count}-{role}"),
            ),
            text("otpfleet.run.id", &seed),
            int("otpfleet.shard.index", index.into()),
            int("otpfleet.shard.count", count.into()),
            text("otpfleet.role", &role),
        ],
        ..Resource::default()
    };
    let metrics = live
        .metrics()
        .into_iter()
        .map(|m| metric(&m, start_ns, now_ns))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "otpfleet".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn metric(m: &otpfleet_emulator::live::Metric, start_ns: u64, now_ns: u64) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let numbers = || {
        m.series
            .iter()
            .map(|s| number(s, start_ns, now_ns))
            .collect()
    };
    let data = match m.family.kind {
        Kind::Counter => Data::Sum(Sum {
            data_points: numbers(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        Kind::Gauge => Data::Gauge(Gauge {
            data_points: numbers(),
        }),
        Kind::Histogram => Data::Histogram(Histogram {
            data_points: m
                .series
                .iter()
                .filter_map(|s| histogram(s, start_ns, now_ns))
                .collect(),
            aggregation_temporality: cumulative,
        }),
    };
    Metric {
        name: m.family.name.into(),
        description: m.family.help.into(),
        unit: m.family.unit.into(),
        data: Some(data),
        ..Metric::default()
    }
}

fn number(s: &Series, start_ns: u64, now_ns: u64) -> NumberDataPoint {
    let n = match &s.value {
        Value::Int(n) => *n,
        Value::Histogram(b) => b.count,
    };
    NumberDataPoint {
        attributes: attributes(s),
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsInt(
            i64::try_from(n).unwrap_or(i64::MAX),
        )),
        ..NumberDataPoint::default()
    }
}

fn histogram(s: &Series, start_ns: u64, now_ns: u64) -> Option<HistogramDataPoint> {
    let Value::Histogram(b) = &s.value else {
        return None;
    };
    let seen = b.count > 0;
    Some(HistogramDataPoint {
        attributes: attributes(s),
        start_time_unix_nano: start_ns,
        time_unix_nano: now_ns,
        count: b.count,
        sum: Some(b.sum),
        bucket_counts: b.counts.clone(),
        explicit_bounds: b.bounds.to_vec(),
        min: seen.then_some(b.min),
        max: seen.then_some(b.max),
        ..HistogramDataPoint::default()
    })
}

fn attributes(s: &Series) -> Vec<KeyValue> {
    s.labels.iter().map(|(k, v)| text(k, v)).collect()
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}
