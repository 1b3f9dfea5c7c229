//! Rendering of the registry for a scrape: OpenMetrics 1.0.0 (what
//! prometheus-client encodes) when the scraper accepts it, otherwise the
//! Prometheus text format 0.0.4 that client_golang's `promhttp` serves by
//! default (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! The two differ, for what the registry holds, only in metadata: 0.0.4
//! names a counter family with its `_total` suffix, has no `# UNIT` lines
//! and no `# EOF` terminator.

use prometheus_client::registry::Registry;

/// Content type of an OpenMetrics rendering.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of a Prometheus 0.0.4 text rendering.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("encoding metrics failed")]
pub struct EncodeError(#[from] std::fmt::Error);

/// Whether an `Accept` header prefers OpenMetrics: it lists
/// `application/openmetrics-text` with a weight above zero and at least that
/// of any other type it lists.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let mut openmetrics: f64 = 0.0;
    let mut other: f64 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f64>().ok())
            .unwrap_or(1.0);
        if media == "application/openmetrics-text" {
            openmetrics = openmetrics.max(weight);
        } else if !media.is_empty() && media != "*/*" {
            other = other.max(weight);
        }
    }
    openmetrics > 0.0 && openmetrics >= other
}

/// Encodes `registry` for a scraper sending `accept`; returns the content
/// type and the body.
pub fn render(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(&'static str, String), EncodeError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    if accept.is_some_and(prefers_openmetrics) {
        Ok((OPENMETRICS, body))
    } else {
        Ok((PROMETHEUS_TEXT, to_prometheus_text(&body)))
    }
}

/// Rewrites prometheus-client's OpenMetrics output as Prometheus 0.0.4 text.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // Held back until the TYPE line tells whether it is a counter.
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                "info" | "stateset" => (name.to_owned(), "gauge"),
                other => (name.to_owned(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    #[test]
    fn negotiation() {
        // What Prometheus sends.
        assert!(prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!prefers_openmetrics("text/plain"));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
        assert!(!prefers_openmetrics(
            "text/plain, application/openmetrics-text;q=0.5"
        ));
    }

    #[test]
    fn counters_take_their_suffix_in_0_0_4() {
        let mut registry = Registry::default();
        let requests: Counter = Counter::default();
        requests.inc_by(3);
        registry.register("requests", "Requests served", requests);
        let depth: Gauge = Gauge::default();
        depth.set(2);
        registry.register("depth", "Queue depth", depth);

        let (kind, open) = render(&registry, Some("application/openmetrics-text")).unwrap();
        assert_eq!(kind, OPENMETRICS);
        assert!(open.contains("# TYPE requests counter\n"), "{open}");
        assert!(open.ends_with("# EOF\n"), "{open}");

        let (kind, text) = render(&registry, Some("text/plain")).unwrap();
        assert_eq!(kind, PROMETHEUS_TEXT);
        assert_eq!(
            text,
            "# HELP requests_total Requests served.\n\
             # TYPE requests_total counter\n\
             requests_total 3\n\
             # HELP depth Queue depth.\n\
             # TYPE depth gauge\n\
             depth 2\n"
        );
    }
}
