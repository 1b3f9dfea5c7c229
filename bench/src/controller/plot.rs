//! PNG plots of the report (plotters, bitmap backend).
//!
//! * `w2-throughput.png`: W2 parents per second by contender, grouped by N
//!   (log scale);
//! * `w2-latency.png`: W2 p50 and p99 convergence latency by contender,
//!   grouped by N (log scale; p99 is the lighter bar);
//! * `w2-latency-cdf-n<N>.png`: the distribution of per-parent convergence
//!   latency in one run (the median-throughput repeat) of each contender;
//! * `cost-curve.png`: the controller's W2 CPU seconds and peak RSS against
//!   N (log-log), ours-tuned and kube-rs ([`super::cost`]).
//!
//! Text needs a TrueType font: the first of a few well-known system fonts is
//! loaded at run time. Without one the plots are drawn without any text
//! (colours follow [`color`]: blue ours-defaults, green ours-tuned,
//! orange kube-rs, red kopf, grey floor; purple, brown and pink for
//! ours-tuned with the Python, 1 ms and 10 ms hooks).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::cost;
pub use super::cost::CostPoint;
use super::report::Summary;
use super::run::RunResult;

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers a system font as "sans-serif"; `false` when none was found.
pub fn fonts() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for path in FONT_CANDIDATES {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// The colour of a contender in every plot.
pub fn color(contender: &str) -> RGBColor {
    match contender {
        "ours-defaults" => RGBColor(31, 119, 180),
        "ours-tuned" => RGBColor(44, 160, 44),
        "ours-tuned+python" => RGBColor(148, 103, 189),
        "ours-tuned+rust-1ms" => RGBColor(140, 86, 75),
        "ours-tuned+rust-10ms" => RGBColor(227, 119, 194),
        "kube-rs" => RGBColor(255, 127, 14),
        "kopf" => RGBColor(214, 39, 40),
        _ => RGBColor(127, 127, 127),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

type Metric<'a> = &'a dyn Fn(&Summary) -> f64;

/// Grouped bars: one group per N, one bar per contender (`values`, with
/// `light` drawn behind it, lighter, when given).
fn bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    s: &[Summary],
    values: Metric<'_>,
    light: Option<Metric<'_>>,
    text: bool,
) -> Result<()> {
    let mut ns: Vec<usize> = s.iter().map(|x| x.n).collect();
    ns.sort_unstable();
    ns.dedup();
    let mut contenders: Vec<String> = Vec::new();
    for x in s {
        if !contenders.contains(&x.contender) {
            contenders.push(x.contender.clone());
        }
    }
    let all: Vec<f64> = s
        .iter()
        .flat_map(|x| [Some(values(x)), light.map(|l| l(x))])
        .flatten()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let y_min = all.iter().cloned().fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let y_max = all.iter().cloned().fold(0.0, f64::max).max(1.0) * 3.0;

    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .y_label_area_size(70)
            .x_label_area_size(20);
    }
    let groups = ns.len().max(1) as f64;
    let mut chart = builder
        .build_cartesian_2d(0f64..groups, (y_min..y_max).log_scale())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh().x_labels(0);
    if text {
        mesh.y_desc(y_desc).label_style(("sans-serif", 14));
    } else {
        mesh.y_labels(0);
    }
    mesh.draw().map_err(err)?;

    let width = 0.8 / contenders.len().max(1) as f64;
    for (ci, c) in contenders.iter().enumerate() {
        let colour = color(c);
        let mut rects = Vec::new();
        for (g, n) in ns.iter().enumerate() {
            let Some(x) = s.iter().find(|x| x.n == *n && &x.contender == c) else {
                continue;
            };
            let x0 = g as f64 + 0.1 + ci as f64 * width;
            let x1 = x0 + width * 0.9;
            if let Some(l) = light {
                let lv = l(x);
                if lv.is_finite() && lv > 0.0 {
                    rects.push(Rectangle::new(
                        [(x0, y_min), (x1, lv)],
                        colour.mix(0.35).filled(),
                    ));
                }
            }
            let v = values(x);
            if v.is_finite() && v > 0.0 {
                let x1 = if light.is_some() {
                    x0 + width * 0.45
                } else {
                    x1
                };
                rects.push(Rectangle::new([(x0, y_min), (x1, v)], colour.filled()));
            }
        }
        let series = chart.draw_series(rects).map_err(err)?;
        if text {
            series.label(c.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
            });
        }
    }
    if text {
        for (g, n) in ns.iter().enumerate() {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("N = {n}"),
                    (g as f64 + 0.42, y_max / 1.6),
                    ("sans-serif", 16),
                )))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Per-parent W2 latency distribution at one N.
fn cdf(path: &Path, n: usize, runs: &[&RunResult], text: bool) -> Result<()> {
    let all: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.w2.samples_ms.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let x_min = all.iter().cloned().fold(f64::INFINITY, f64::min).max(0.01) / 1.5;
    let x_max = all.iter().cloned().fold(0.0, f64::max) * 1.5;
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(
                format!("W2 convergence latency, N = {n} (fraction of parents converged)"),
                ("sans-serif", 22),
            )
            .y_label_area_size(60)
            .x_label_area_size(45);
    }
    let mut chart = builder
        .build_cartesian_2d((x_min..x_max).log_scale(), 0f64..1.0)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("latency, ms (log)")
            .y_desc("fraction converged")
            .label_style(("sans-serif", 14));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    for r in runs {
        let colour = color(&r.contender);
        let mut v: Vec<f64> =
            r.w2.samples_ms
                .iter()
                .copied()
                .filter(|v| *v > 0.0)
                .collect();
        v.sort_by(f64::total_cmp);
        let len = v.len().max(1) as f64;
        let points: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .map(|(i, x)| (*x, (i + 1) as f64 / len))
            .collect();
        let series = chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?;
        if text {
            series.label(r.contender.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The run of each contender at `n` whose W2 throughput is the median.
fn median_runs(runs: &[RunResult], n: usize) -> Vec<&RunResult> {
    let mut contenders: Vec<&str> = Vec::new();
    for r in runs.iter().filter(|r| r.n == n) {
        if !contenders.contains(&r.contender.as_str()) {
            contenders.push(&r.contender);
        }
    }
    contenders
        .into_iter()
        .filter_map(|c| {
            let mut rs: Vec<&RunResult> = runs
                .iter()
                .filter(|r| r.n == n && r.contender == c)
                .collect();
            rs.sort_by(|a, b| a.w2.per_sec.total_cmp(&b.w2.per_sec));
            rs.get(rs.len() / 2).copied()
        })
        .collect()
}

/// The cost curve's points of an earlier report's JSON.
pub fn cost_points_of_report(report: &serde_json::Value) -> Vec<CostPoint> {
    cost::of_report(report)
}

/// Log-axis bounds around `values` (positive ones; `None` without any).
fn log_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| (lo / 2.0, hi * 2.0))
}

/// Two panels, CPU seconds and peak RSS against N, one line per contender.
fn cost_curve(path: &Path, points: &[CostPoint], text: bool) -> Result<()> {
    let Some(xs) = log_range(points.iter().map(|p| p.n as f64)) else {
        return Ok(());
    };
    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, 2));
    type Field = fn(&CostPoint) -> f64;
    let specs: [(&str, &str, Field); 2] = [
        (
            "Controller CPU seconds in W2 vs N (log-log)",
            "CPU s",
            |p| p.cpu_seconds,
        ),
        ("Controller peak RSS vs N (log-log)", "MiB", |p| p.peak_mib),
    ];
    for (panel, (title, y_desc, field)) in panels.iter().zip(specs) {
        let Some(ys) = log_range(points.iter().map(field)) else {
            continue;
        };
        let mut builder = ChartBuilder::on(panel);
        builder.margin(15);
        if text {
            builder
                .caption(title, ("sans-serif", 18))
                .y_label_area_size(60)
                .x_label_area_size(45);
        }
        let mut chart = builder
            .build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale())
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("parents N (log)")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_desc(y_desc)
                .label_style(("sans-serif", 13));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(err)?;
        for contender in cost::CONTENDERS {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.contender == *contender && field(p) > 0.0)
                .map(|p| (p.n as f64, field(p)))
                .collect();
            if line.is_empty() {
                continue;
            }
            let colour = color(contender);
            let series = chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(err)?;
            if text {
                series.label(*contender).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
                });
            }
            chart
                .draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 4, colour.filled())),
                )
                .map_err(err)?;
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Draws every plot into `dir`; returns the files written. `earlier` are
/// cost-curve points of earlier reports.
pub fn draw_all(
    dir: &Path,
    s: &[Summary],
    runs: &[RunResult],
    earlier: &[CostPoint],
) -> Result<Vec<PathBuf>> {
    draw_all_with(dir, s, runs, earlier, fonts())
}

/// [`draw_all`], with or without text.
pub fn draw_all_with(
    dir: &Path,
    s: &[Summary],
    runs: &[RunResult],
    earlier: &[CostPoint],
    text: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let p = dir.join("w2-throughput.png");
    bars(
        &p,
        "W2 burst create: parents converged per second (log scale)",
        "parents / s",
        s,
        &|x| x.w2_parents_per_sec,
        None,
        text,
    )?;
    out.push(p);
    let p = dir.join("w2-latency.png");
    bars(
        &p,
        "W2 convergence latency: p50 (solid) and p99 (light), ms (log scale)",
        "ms",
        s,
        &|x| x.w2_p50_ms,
        Some(&|x| x.w2_p99_ms),
        text,
    )?;
    out.push(p);
    let mut ns: Vec<usize> = runs.iter().map(|r| r.n).collect();
    ns.sort_unstable();
    ns.dedup();
    for n in ns {
        let p = dir.join(format!("w2-latency-cdf-n{n}.png"));
        cdf(&p, n, &median_runs(runs, n), text)?;
        if p.exists() {
            out.push(p);
        }
    }
    let points = cost::merge(cost::of_summaries(s), earlier);
    if !points.is_empty() {
        let p = dir.join("cost-curve.png");
        cost_curve(&p, &points, text)?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(contender: &str, n: usize, per_sec: f64) -> Summary {
        Summary {
            contender: contender.into(),
            n,
            w2_parents_per_sec: per_sec,
            w2_p50_ms: 10.0,
            w2_p99_ms: 40.0,
            w2_cpu_s: Some(n as f64 / 1000.0),
            peak_mib: n as f64 / 100.0 + 10.0,
            ..Summary::default()
        }
    }

    #[test]
    fn plots_are_drawn_with_and_without_text() {
        let s = vec![
            summary("ours-tuned", 100, 500.0),
            summary("floor", 100, 900.0),
            summary("ours-tuned", 1000, 600.0),
        ];
        let mut run = RunResult {
            contender: "ours-tuned".into(),
            n: 100,
            ..RunResult::default()
        };
        run.w2.samples_ms = vec![1.0, 2.0, 5.0, 9.0];
        for text in [false, fonts()] {
            let dir = tempfile::tempdir().unwrap();
            let files =
                draw_all_with(dir.path(), &s, std::slice::from_ref(&run), &[], text).unwrap();
            assert_eq!(files.len(), 4);
            assert!(files.iter().any(|f| f.ends_with("cost-curve.png")));
            for f in files {
                assert!(
                    std::fs::metadata(&f).unwrap().len() > 1000,
                    "{}",
                    f.display()
                );
            }
        }
    }
}
