//! The `--plot` chart: receivers completed over time above, the sender's rate over time below,
//! as a self-contained SVG.

use std::fmt::Write;

use crate::report::Report;

const WIDTH: f64 = 800.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 60.0;

/// A round step for an axis running to `max`, about five ticks.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag)
}

fn fmt_num(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One panel: a step line of `values` (one per bucket of `bucket_s`) over `t_max` seconds.
fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    unit: &str,
    values: &[f64],
    bucket_s: f64,
    t_max: f64,
) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let y_max = values.iter().copied().fold(0.0, f64::max).max(1e-9);
    let y_step = tick_step(y_max);
    let y_top = (y_max / y_step).ceil() * y_step;
    let x = |t: f64| LEFT + t / t_max * plot_w;
    let y = |v: f64| top + PANEL - v / y_top * PANEL;
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">{title}</text>"##,
        top - 10.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#888"/>"##
    );
    let mut v = 0.0;
    while v <= y_top + y_step / 2.0 {
        let yy = y(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            fmt_num(v)
        );
        v += y_step;
    }
    let x_step = tick_step(t_max);
    let mut t = 0.0;
    while t <= t_max + x_step / 2.0 {
        let xx = x(t.min(t_max));
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#888"/><text x="{xx:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            top + PANEL,
            top + PANEL + 4.0,
            top + PANEL + 16.0,
            fmt_num(t)
        );
        t += x_step;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">seconds</text><text x="14" y="{:.1}" font-size="11" transform="rotate(-90 14 {:.1})" text-anchor="middle">{unit}</text>"##,
        LEFT + plot_w / 2.0,
        top + PANEL + 32.0,
        top + PANEL / 2.0,
        top + PANEL / 2.0
    );
    let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
    for (i, &val) in values.iter().enumerate() {
        let (t0, t1) = (i as f64 * bucket_s, ((i + 1) as f64 * bucket_s).min(t_max));
        let _ = write!(
            points,
            " {:.1},{:.1} {:.1},{:.1}",
            x(t0),
            y(val),
            x(t1),
            y(val)
        );
    }
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>"##
    );
}

/// The chart for `report`.
pub fn svg(report: &Report) -> String {
    let tl = &report.timeline;
    let t_max = (tl.completed.len().max(tl.sender_bps.len()) as f64 * tl.bucket_s)
        .max(report.completion_s)
        .max(tl.bucket_s);
    let height = TOP + 2.0 * PANEL + GAP + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let completed: Vec<f64> = tl.completed.iter().map(|&c| f64::from(c)).collect();
    panel(
        &mut svg,
        TOP,
        &format!(
            "Receivers completed ({} of {}, seed {})",
            report.completed, report.receivers, report.seed
        ),
        "receivers",
        &completed,
        tl.bucket_s,
        t_max,
    );
    let mbps: Vec<f64> = tl.sender_bps.iter().map(|b| b / 1e6).collect();
    panel(
        &mut svg,
        TOP + PANEL + GAP,
        "Sender's rate",
        "Mbit/s",
        &mbps,
        tl.bucket_s,
        t_max,
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_ticks() {
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(100.0), 20.0);
        assert_eq!(tick_step(12.0), 2.5);
        assert_eq!(tick_step(0.0), 1.0);
    }
}
