//! The 24-hour disk chart on a node's page: an SVG drawn on the server from the stored
//! samples, so the page needs no charting library and no script.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::DiskSample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

/// Usage in percent over `window` up to `now`, with the GC thresholds as dashed lines. A gap
/// longer than ten minutes between samples (the agent was down) breaks the line rather than
/// drawing a slope nobody measured.
pub fn disk_chart(
    samples: &[DiskSample],
    now: Timestamp,
    window: SignedDuration,
    high: u8,
    low: u8,
) -> String {
    let start = now - window;
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let x = |at: Timestamp| {
        let fraction = at.duration_since(start).as_secs_f64() / window.as_secs_f64();
        LEFT + fraction.clamp(0.0, 1.0) * plot_w
    };
    let y = |percent: f64| plot_h - percent.clamp(0.0, 100.0) / 100.0 * plot_h;
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Disk usage over the last {} hours" xmlns="http://www.w3.org/2000/svg">"##,
        window.as_hours()
    );
    for percent in [0, 25, 50, 75, 100] {
        let py = y(f64::from(percent));
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e6ea"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#6b7480">{percent}%</text>"##,
            LEFT - 4.0,
            py + 3.0
        );
    }
    for hours_ago in (0..=window.as_hours()).step_by(6) {
        let px = x(now - SignedDuration::from_hours(hours_ago));
        let label = if hours_ago == 0 {
            "now".to_owned()
        } else {
            format!("-{hours_ago}h")
        };
        let _ = write!(
            svg,
            r##"<text x="{px:.1}" y="{}" font-size="10" text-anchor="middle" fill="#6b7480">{label}</text>"##,
            HEIGHT - 6.0
        );
    }
    for (threshold, colour, name) in [(high, "#c0392b", "high"), (low, "#b7791f", "low")] {
        let py = y(f64::from(threshold));
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{py:.1}" y2="{py:.1}" stroke="{colour}" stroke-dasharray="4 3"><title>GC {name} threshold {threshold}%</title></line>"##
        );
    }
    let mut path = String::new();
    let mut previous: Option<Timestamp> = None;
    let mut newest = None;
    for sample in samples
        .iter()
        .filter(|s| s.at >= start && s.capacity_bytes > 0)
    {
        let percent = sample.used_bytes as f64 * 100.0 / sample.capacity_bytes as f64;
        let command = match previous {
            Some(prev) if sample.at.duration_since(prev) <= SignedDuration::from_mins(10) => 'L',
            _ => 'M',
        };
        let _ = write!(path, "{command}{:.1} {:.1} ", x(sample.at), y(percent));
        previous = Some(sample.at);
        newest = Some((x(sample.at), y(percent), percent));
    }
    if path.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#6b7480">no reports from this node's agent in this window</text>"##,
            LEFT + plot_w / 2.0,
            plot_h / 2.0
        );
    } else {
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="#2957c4" stroke-width="1.5"/>"##,
            path.trim_end()
        );
    }
    // The latest sample as a dot: visible even when it is the only one.
    if let Some((px, py, percent)) = newest {
        let _ = write!(
            svg,
            r##"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="#2957c4"><title>{percent:.1}% used at the last report</title></circle>"##
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: &str, used: u64) -> DiskSample {
        DiskSample {
            at: at.parse().unwrap(),
            used_bytes: used,
            capacity_bytes: 100,
        }
    }

    const NOW: &str = "2026-11-26T12:00:00Z";

    #[test]
    fn samples_become_one_line_and_a_gap_starts_a_new_one() {
        let samples = [
            sample("2026-11-26T11:00:00Z", 50),
            sample("2026-11-26T11:01:00Z", 60),
            sample("2026-11-26T11:30:00Z", 40),
        ];
        let svg = disk_chart(
            &samples,
            NOW.parse().unwrap(),
            SignedDuration::from_hours(24),
            85,
            80,
        );
        let path = svg
            .split("<path d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 1, "{path}");
        assert!(svg.contains("GC high threshold 85%"));
    }

    #[test]
    fn the_newest_sample_is_at_the_right_edge_and_full_is_at_the_top() {
        let svg = disk_chart(
            &[sample(NOW, 100)],
            NOW.parse().unwrap(),
            SignedDuration::from_hours(24),
            85,
            80,
        );
        assert!(svg.contains("M720.0 0.0"), "{svg}");
    }

    #[test]
    fn no_samples_say_so() {
        let svg = disk_chart(
            &[sample("2026-11-24T12:00:00Z", 1)],
            NOW.parse().unwrap(),
            SignedDuration::from_hours(24),
            85,
            80,
        );
        assert!(svg.contains("no reports"));
        assert!(!svg.contains("<path"));
    }
}
