//! The `process_*` families, read from `/proc` at each scrape like
//! client_golang's process collector
//! (`github.com/prometheus/client_golang/prometheus/process_collector.go`):
//! CPU time, open and maximum file descriptors, virtual and resident
//! memory, start time and network bytes. A value that cannot be read (not
//! Linux) is left out.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Reports the current process; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self/stat` says.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    start_ticks: f64,
    virtual_bytes: f64,
    resident_pages: f64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name may contain spaces and parentheses: fields start
    // after the last ')'. Field 3 (state) is index 0.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / USER_HZ,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// The soft limit of the `/proc/self/limits` row starting with `name`;
/// `unlimited` is the largest 64-bit value, as procfs reports it.
fn parse_limit(text: &str, name: &str) -> Option<f64> {
    let row = text.lines().find(|line| line.starts_with(name))?;
    let soft = row[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX as f64);
    }
    soft.parse().ok()
}

/// `btime` of `/proc/stat`: boot time in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// `InOctets` and `OutOctets` of the `IpExt` rows of `/proc/self/net/netstat`.
fn parse_octets(text: &str) -> Option<(f64, f64)> {
    let mut rows = text.lines().filter(|line| line.starts_with("IpExt:"));
    let names: Vec<&str> = rows.next()?.split_whitespace().collect();
    let values: Vec<&str> = rows.next()?.split_whitespace().collect();
    let value = |name: &str| -> Option<f64> {
        let index = names.iter().position(|n| *n == name)?;
        values.get(index)?.parse().ok()
    };
    Some((value("InOctets")?, value("OutOctets")?))
}

/// Page size assumed for the resident pages of `/proc/self/stat` when
/// `/proc/self/status` has no `VmRSS`.
const PAGE_SIZE: f64 = 4096.0;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        if let Some(stat) = read("/proc/self/stat").as_deref().and_then(parse_stat) {
            counter(
                e,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                stat.cpu_seconds,
            )?;
            gauge(
                e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.virtual_bytes,
            )?;
            let resident = read("/proc/self/status")
                .as_deref()
                .and_then(|status| {
                    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
                    let kb: f64 = kb.trim().trim_end_matches("kB").trim().parse().ok()?;
                    Some(kb * 1024.0)
                })
                .unwrap_or(stat.resident_pages * PAGE_SIZE);
            gauge(
                e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                resident,
            )?;
            if let Some(boot) = read("/proc/stat").as_deref().and_then(parse_boot_time) {
                gauge(
                    e,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    boot + stat.start_ticks / USER_HZ,
                )?;
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                e,
                "process_open_fds",
                "Number of open file descriptors.",
                fds.count() as f64,
            )?;
        }
        if let Some(limits) = read("/proc/self/limits") {
            if let Some(max) = parse_limit(&limits, "Max open files") {
                gauge(
                    e,
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                    max,
                )?;
            }
            if let Some(max) = parse_limit(&limits, "Max address space") {
                gauge(
                    e,
                    "process_virtual_memory_max_bytes",
                    "Maximum amount of virtual memory available in bytes.",
                    max,
                )?;
            }
        }
        if let Some((received, sent)) = read("/proc/self/net/netstat")
            .as_deref()
            .and_then(parse_octets)
        {
            counter(
                e,
                "process_network_receive_bytes",
                "Number of bytes received by the process over the network.",
                received,
            )?;
            counter(
                e,
                "process_network_transmit_bytes",
                "Number of bytes sent by the process over the network.",
                sent,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let text = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 \
                    12345 1048576 300 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.cpu_seconds, 3.0);
        assert_eq!(stat.start_ticks, 12345.0);
        assert_eq!(stat.virtual_bytes, 1048576.0);
        assert_eq!(stat.resident_pages, 300.0);
    }

    #[test]
    fn limits_and_netstat() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 4096                 files\n\
                      Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(1024.0));
        assert_eq!(
            parse_limit(limits, "Max address space"),
            Some(u64::MAX as f64)
        );
        let netstat =
            "TcpExt: A B\nTcpExt: 1 2\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 77 88\n";
        assert_eq!(parse_octets(netstat), Some((77.0, 88.0)));
        assert_eq!(
            parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1700000000.0)
        );
    }
}
