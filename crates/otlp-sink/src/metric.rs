//! Decoded metric points, flattened from OTLP's resource/scope/metric/data-point nesting.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{collector::metrics::v1::ExportMetricsServiceRequest, metrics::v1::metric::Data};
use prost::Message as _;

use trace_model::{
    AttributeValue,
    otlp::{attributes, service_name},
};

/// What kind of point a metric has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Histogram,
    /// A monotonic sum (a counter).
    Counter,
    /// A non-monotonic sum (an up-down counter).
    UpDownCounter,
    Gauge,
    Other,
}

/// One data point of one metric from one service.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    pub unit: String,
    pub kind: MetricKind,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Observations in a histogram point; 0 for others.
    pub count: u64,
    /// A histogram's sum, or the value of a sum or gauge.
    pub value: f64,
    /// A histogram's explicit bucket boundaries.
    pub bounds: Vec<f64>,
}

impl MetricPoint {
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes.get(key)
    }
}

/// Decodes the body of an OTLP/HTTP `POST /v1/metrics` (binary protobuf).
pub fn decode_metrics_request(body: &[u8]) -> Result<Vec<MetricPoint>, prost::DecodeError> {
    let request = ExportMetricsServiceRequest::decode(body)?;
    let mut points = Vec::new();
    for resource_metrics in request.resource_metrics {
        let service = service_name(resource_metrics.resource.as_ref());
        for scope_metrics in resource_metrics.scope_metrics {
            for metric in scope_metrics.metrics {
                let point = |kind, attrs: &[_], count, value, bounds: &[f64]| MetricPoint {
                    service: service.clone(),
                    name: metric.name.clone(),
                    unit: metric.unit.clone(),
                    kind,
                    attributes: attributes(attrs),
                    count,
                    value,
                    bounds: bounds.to_vec(),
                };
                match &metric.data {
                    Some(Data::Histogram(histogram)) => {
                        for p in &histogram.data_points {
                            points.push(point(
                                MetricKind::Histogram,
                                &p.attributes,
                                p.count,
                                p.sum.unwrap_or_default(),
                                &p.explicit_bounds,
                            ));
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        let kind = if sum.is_monotonic {
                            MetricKind::Counter
                        } else {
                            MetricKind::UpDownCounter
                        };
                        for p in &sum.data_points {
                            points.push(point(kind, &p.attributes, 0, number(p.value.as_ref()), &[]));
                        }
                    }
                    Some(Data::Gauge(gauge)) => {
                        for p in &gauge.data_points {
                            points.push(point(
                                MetricKind::Gauge,
                                &p.attributes,
                                0,
                                number(p.value.as_ref()),
                                &[],
                            ));
                        }
                    }
                    _ => points.push(point(MetricKind::Other, &[], 0, 0.0, &[])),
                }
            }
        }
    }
    Ok(points)
}

fn number(value: Option<&opentelemetry_proto::tonic::metrics::v1::number_data_point::Value>) -> f64 {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    match value {
        Some(Value::AsDouble(value)) => *value,
        // Counts fit f64 exactly far beyond what a test sees.
        #[allow(clippy::cast_precision_loss)]
        Some(Value::AsInt(value)) => *value as f64,
        None => 0.0,
    }
}
