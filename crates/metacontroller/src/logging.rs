//! Logging configured by Metacontroller's zap flags (`--zap-log-level`,
//! `--zap-devel`, `--zap-encoder`, `--zap-stacktrace-level`,
//! `--zap-time-encoding`), written by `tracing-subscriber` in zap's shapes.
//!
//! Defaults follow controller-runtime's flag binding
//! (`sigs.k8s.io/controller-runtime/pkg/log/zap/zap.go`): production mode
//! logs JSON at `info`, stack traces from `error`, `ts` as epoch seconds;
//! `--zap-devel` switches to the console encoder, `debug`, stack traces from
//! `warn` and ISO 8601 times. Explicit flags override either set.
//!
//! JSON lines carry zap's production keys (`level`, `ts`, `logger`,
//! `caller` in development mode, `msg`, the event's fields, `stacktrace`).
//! The console encoder writes zap's tab-separated layout: time, level,
//! logger, message and the fields as one JSON object. Times are UTC.
//!
//! Verbosity: Metacontroller logs sync triggers and API interactions at V4,
//! diffs and hook bodies at V5, hook headers at V6 and discovery refreshes
//! at V7. `tracing` has two levels below `info`, so integer levels map by
//! target: `debug` (and 1–4) turns on this program's `debug` events (sync
//! triggers, writes); 5 adds the engine's `trace` events and the hook
//! client's request and response bodies (`metacontroller_hooks::body`); 6
//! adds the rest of the hook client's `trace` events (request and response
//! headers); 7 and above add discovery's and
//! kube-rs's own request lines (below 7 they are off: the engine logs each
//! failed request itself, naming the verb, resource, object and, for a
//! transport failure, the URL).
//! `RUST_LOG`, when set, replaces the computed filter.

use std::fmt::{self, Write as _};

use jiff::Timestamp;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A log flag with a value it does not accept.
#[derive(Debug, thiserror::Error)]
#[error("invalid --{flag} {value:?}: expected {expected}")]
pub struct InvalidLogFlag {
    flag: &'static str,
    value: String,
    expected: &'static str,
}

fn invalid(flag: &'static str, value: &str, expected: &'static str) -> InvalidLogFlag {
    InvalidLogFlag {
        flag,
        value: value.to_owned(),
        expected,
    }
}

/// The zap flags as given on the command line (`None` = not given).
#[derive(Clone, Debug, Default)]
pub struct LogFlags {
    /// `--zap-log-level`.
    pub level: Option<String>,
    /// `--zap-devel`.
    pub devel: bool,
    /// `--zap-encoder`.
    pub encoder: Option<String>,
    /// `--zap-stacktrace-level`.
    pub stacktrace_level: Option<String>,
    /// `--zap-time-encoding`.
    pub time_encoding: Option<String>,
}

/// How a line is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoder {
    /// One JSON object per line.
    Json,
    /// Tab-separated text.
    Console,
}

/// How `ts` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEncoding {
    /// Seconds since the epoch, as a float.
    Epoch,
    /// Milliseconds since the epoch, as a float.
    Millis,
    /// Nanoseconds since the epoch, as an integer.
    Nano,
    /// `2006-01-02T15:04:05.000Z0700`.
    Iso8601,
    /// `2006-01-02T15:04:05Z07:00`.
    Rfc3339,
    /// RFC 3339 with nanoseconds (trailing zeros trimmed).
    Rfc3339Nano,
}

/// The resolved logging settings.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Line layout.
    pub encoder: Encoder,
    /// `tracing` filter directives.
    pub filter: String,
    /// Events at this level or more severe carry a stack trace.
    pub stacktrace: Option<Level>,
    /// Encoding of `ts`.
    pub time: TimeEncoding,
    /// Development mode: capitalised console levels, `caller` field.
    pub devel: bool,
}

impl LogFlags {
    /// Applies controller-runtime's defaults and validates every value.
    pub fn resolve(&self) -> Result<LogSettings, InvalidLogFlag> {
        let encoder = match self.encoder.as_deref().map(str::trim) {
            None | Some("") => {
                if self.devel {
                    Encoder::Console
                } else {
                    Encoder::Json
                }
            }
            Some("json") => Encoder::Json,
            Some("console") => Encoder::Console,
            Some(other) => return Err(invalid("zap-encoder", other, "json or console")),
        };
        let default_level = if self.devel { "debug" } else { "info" };
        let filter = filter_for(self.level.as_deref().unwrap_or(default_level))?;
        let stacktrace = match self.stacktrace_level.as_deref() {
            None => Some(if self.devel {
                Level::WARN
            } else {
                Level::ERROR
            }),
            Some(text) => stacktrace_level(text)?,
        };
        let time = match self.time_encoding.as_deref().map(str::trim) {
            None | Some("") => {
                if self.devel {
                    TimeEncoding::Iso8601
                } else {
                    TimeEncoding::Epoch
                }
            }
            Some(text) => time_encoding(text)?,
        };
        Ok(LogSettings {
            encoder,
            filter,
            stacktrace,
            time,
            devel: self.devel,
        })
    }
}

const OURS: [&str; 5] = [
    "metacontroller",
    "metacontroller_engine",
    "metacontroller_hooks",
    "metacontroller_apiserver",
    "metacontroller_apply",
];

/// The `tracing` filter for a `--zap-log-level` value (see the [module
/// documentation](self) for the verbosity mapping).
pub fn filter_for(level: &str) -> Result<String, InvalidLogFlag> {
    let text = level.trim().to_ascii_lowercase();
    let verbosity: i64 = match text.as_str() {
        "panic" | "dpanic" | "fatal" | "error" => -2,
        "warn" | "warning" => -1,
        "info" => 0,
        "debug" => 1,
        other => match other.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(invalid(
                    "zap-log-level",
                    level,
                    "debug, info, error, panic or an integer >= 0",
                ));
            }
        },
    };
    let (ours, engine, hooks, discovery) = match verbosity {
        -2 => ("error", "error", "error", "error"),
        -1 => ("warn", "warn", "warn", "warn"),
        0 => ("info", "info", "info", "info"),
        1..=4 => ("debug", "debug", "debug", "debug"),
        5 => ("debug", "trace", "debug", "debug"),
        6 => ("debug", "trace", "trace", "debug"),
        _ => ("trace", "trace", "trace", "trace"),
    };
    let others = if verbosity < 0 { ours } else { "warn" };
    let mut filter = others.to_owned();
    for krate in OURS {
        let level = match krate {
            "metacontroller_engine" => engine,
            "metacontroller_hooks" => hooks,
            _ => ours,
        };
        let _ = write!(filter, ",{krate}={level}");
    }
    let _ = write!(filter, ",metacontroller_engine::discovery={discovery}");
    if verbosity == 5 {
        // Hook request and response bodies from V5; their headers from V6.
        let _ = write!(filter, ",metacontroller_hooks::body=trace");
    }
    // kube-rs logs every failed request at ERROR ("failed with status 500")
    // and every watch cut at WARN, naming neither the object nor the server,
    // even when the request is retried. The engine logs failed requests
    // itself with those details; kube-rs's own lines appear from V7.
    let kube = if verbosity >= 7 { "debug" } else { "off" };
    let _ = write!(filter, ",kube_client::client={kube}");
    Ok(filter)
}

fn stacktrace_level(text: &str) -> Result<Option<Level>, InvalidLogFlag> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" | "warning" => Some(Level::WARN),
        "error" => Some(Level::ERROR),
        // Nothing is logged at these levels; no event gets a stack trace.
        "dpanic" | "panic" | "fatal" => None,
        _ => {
            return Err(invalid(
                "zap-stacktrace-level",
                text,
                "info, error or panic",
            ));
        }
    })
}

fn time_encoding(text: &str) -> Result<TimeEncoding, InvalidLogFlag> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "epoch" => TimeEncoding::Epoch,
        "millis" => TimeEncoding::Millis,
        "nano" => TimeEncoding::Nano,
        "iso8601" => TimeEncoding::Iso8601,
        "rfc3339" => TimeEncoding::Rfc3339,
        "rfc3339nano" => TimeEncoding::Rfc3339Nano,
        _ => {
            return Err(invalid(
                "zap-time-encoding",
                text,
                "epoch, millis, nano, iso8601, rfc3339 or rfc3339nano",
            ));
        }
    })
}

impl TimeEncoding {
    fn encode(self, now: Timestamp) -> Value {
        let nanos = now.as_nanosecond();
        match self {
            TimeEncoding::Epoch => Value::from(nanos as f64 / 1e9),
            TimeEncoding::Millis => Value::from(nanos as f64 / 1e6),
            TimeEncoding::Nano => Value::from(nanos as i64),
            TimeEncoding::Iso8601 => now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into(),
            TimeEncoding::Rfc3339 => now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
            TimeEncoding::Rfc3339Nano => now.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string().into(),
        }
    }
}

/// Installs the global subscriber, writing to stderr as zap does.
pub fn init(settings: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No escape sequences unless stderr is a terminal (and NO_COLOR is unset).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .event_format(ZapFormat {
            settings: settings.clone(),
        })
        .init();
}

/// Formats events as zap's JSON or console encoder does.
struct ZapFormat {
    settings: LogSettings,
}

/// zap's level names; `tracing`'s trace level is below zap's debug and is
/// reported as `debug`.
fn level_name(level: Level, capital: bool) -> &'static str {
    match (level, capital) {
        (Level::ERROR, false) => "error",
        (Level::WARN, false) => "warn",
        (Level::INFO, false) => "info",
        (_, false) => "debug",
        (Level::ERROR, true) => "ERROR",
        (Level::WARN, true) => "WARN",
        (Level::INFO, true) => "INFO",
        (_, true) => "DEBUG",
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }
}

impl Fields {
    fn insert(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl<S, N> FormatEvent<S, N> for ZapFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *meta.level();
        let ts = self.settings.time.encode(Timestamp::now());
        let logger = meta.target().replace("::", ".");
        let caller = if self.settings.devel {
            meta.file()
                .map(|file| format!("{file}:{}", meta.line().unwrap_or(0)))
        } else {
            None
        };
        let stacktrace = self
            .settings
            .stacktrace
            .filter(|threshold| level <= *threshold)
            .map(|_| std::backtrace::Backtrace::force_capture().to_string());
        match self.settings.encoder {
            Encoder::Json => {
                let mut line = Map::new();
                line.insert("level".into(), level_name(level, false).into());
                line.insert("ts".into(), ts);
                line.insert("logger".into(), logger.into());
                if let Some(caller) = caller {
                    line.insert("caller".into(), caller.into());
                }
                line.insert("msg".into(), fields.message.into());
                for (key, value) in fields.fields {
                    line.entry(key).or_insert(value);
                }
                if let Some(stack) = stacktrace {
                    line.insert("stacktrace".into(), stack.into());
                }
                writeln!(writer, "{}", Value::Object(line))
            }
            Encoder::Console => {
                let ts = match ts {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                write!(
                    writer,
                    "{ts}\t{}\t{logger}",
                    level_name(level, self.settings.devel)
                )?;
                if let Some(caller) = caller {
                    write!(writer, "\t{caller}")?;
                }
                write!(writer, "\t{}", fields.message)?;
                if !fields.fields.is_empty() {
                    write!(writer, "\t{}", Value::Object(fields.fields))?;
                }
                writeln!(writer)?;
                if let Some(stack) = stacktrace {
                    writeln!(writer, "{stack}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(level: Option<&str>, devel: bool) -> LogFlags {
        LogFlags {
            level: level.map(str::to_owned),
            devel,
            ..LogFlags::default()
        }
    }

    #[test]
    fn production_and_development_defaults() {
        let prod = flags(None, false).resolve().unwrap();
        assert_eq!(prod.encoder, Encoder::Json);
        assert_eq!(prod.time, TimeEncoding::Epoch);
        assert_eq!(prod.stacktrace, Some(Level::ERROR));
        assert!(prod.filter.contains("metacontroller_engine=info"));
        let devel = flags(None, true).resolve().unwrap();
        assert_eq!(devel.encoder, Encoder::Console);
        assert_eq!(devel.time, TimeEncoding::Iso8601);
        assert_eq!(devel.stacktrace, Some(Level::WARN));
        assert!(devel.filter.contains("metacontroller_engine=debug"));
        let mixed = LogFlags {
            devel: true,
            encoder: Some("json".into()),
            time_encoding: Some("nano".into()),
            stacktrace_level: Some("panic".into()),
            ..LogFlags::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(mixed.encoder, Encoder::Json);
        assert_eq!(mixed.time, TimeEncoding::Nano);
        assert_eq!(mixed.stacktrace, None);
    }

    #[test]
    fn verbosity_maps_by_target() {
        let v4 = filter_for("4").unwrap();
        assert!(v4.contains("metacontroller_engine=debug"));
        assert!(v4.contains("metacontroller_hooks=debug"));
        let v5 = filter_for("5").unwrap();
        assert!(v5.contains("metacontroller_engine=trace"));
        assert!(v5.contains("metacontroller_hooks=debug"));
        assert!(v5.contains("metacontroller_hooks::body=trace"));
        assert!(v5.contains("metacontroller_engine::discovery=debug"));
        let v6 = filter_for("6").unwrap();
        assert!(v6.contains("metacontroller_hooks=trace"));
        assert!(v6.contains("metacontroller_engine::discovery=debug"));
        assert!(filter_for("7").unwrap().contains("discovery=trace"));
        assert!(
            filter_for("6")
                .unwrap()
                .ends_with(",kube_client::client=off")
        );
        assert!(
            filter_for("error")
                .unwrap()
                .ends_with(",kube_client::client=off")
        );
        assert!(
            filter_for("7")
                .unwrap()
                .ends_with(",kube_client::client=debug")
        );
        assert!(filter_for("error").unwrap().starts_with("error,"));
        assert!(filter_for("Info").unwrap().starts_with("warn,"));
        assert!(filter_for("loud").is_err());
        assert!(filter_for("-3").is_err());
    }

    #[test]
    fn invalid_values_name_the_flag() {
        let err = LogFlags {
            encoder: Some("xml".into()),
            ..LogFlags::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--zap-encoder"));
        for (time, ok) in [("RFC3339Nano", true), ("millis", true), ("unix", false)] {
            let result = LogFlags {
                time_encoding: Some(time.into()),
                ..LogFlags::default()
            }
            .resolve();
            assert_eq!(result.is_ok(), ok, "{time}");
        }
    }

    #[test]
    fn time_encodings() {
        let t: Timestamp = "2026-01-02T03:04:05.120Z".parse().unwrap();
        assert_eq!(
            TimeEncoding::Epoch.encode(t),
            Value::from(1_767_323_045.12_f64)
        );
        assert_eq!(
            TimeEncoding::Nano.encode(t),
            Value::from(1_767_323_045_120_000_000_i64)
        );
        assert_eq!(
            TimeEncoding::Iso8601.encode(t),
            Value::from("2026-01-02T03:04:05.120Z")
        );
        assert_eq!(
            TimeEncoding::Rfc3339.encode(t),
            Value::from("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            TimeEncoding::Rfc3339Nano.encode(t),
            Value::from("2026-01-02T03:04:05.12Z")
        );
    }
}
