//! CPU and memory charts of a node, a service or a task: SVG drawn on the server from
//! [`swarmkeeper_report::UsagePoint`]s, like the disk chart, so the page needs no charting
//! library and no script. The points come from `report::series` (rates, sums, resolution);
//! this only draws them.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::{max_gap, UsagePoint, UsageRange};
use swarmkeeper_units::bytes as format_bytes;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 20.0;

/// What a chart plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// CPU cores busy on average.
    Cpu,
    /// Bytes of memory in use, with the limit (or a node's total) as a dashed line.
    Memory,
}

/// The chart of `measure` over `range` up to `now`. The scale runs to the highest value or
/// limit, rounded up to a round figure; a gap longer than [`max_gap`] breaks the line.
pub fn usage_chart(
    points: &[UsagePoint],
    measure: Measure,
    range: UsageRange,
    now: Timestamp,
) -> String {
    let window = range.window();
    let start = now - window;
    let values: Vec<(Timestamp, Option<f64>)> = points
        .iter()
        .filter(|p| p.at >= start && p.at <= now)
        .map(|p| {
            let value = match measure {
                Measure::Cpu => p.cpu_cores,
                Measure::Memory => Some(p.memory_bytes as f64),
            };
            (p.at, value)
        })
        .collect();
    // The newest limit: a task's limit may change with an update.
    let limit = match measure {
        Measure::Cpu => None,
        Measure::Memory => values
            .last()
            .and_then(|(at, _)| points.iter().rev().find(|p| p.at == *at))
            .and_then(|p| p.memory_limit_bytes)
            .filter(|l| *l > 0)
            .map(|l| l as f64),
    };
    let highest = values
        .iter()
        .filter_map(|(_, v)| *v)
        .chain(limit)
        .fold(0.0, f64::max);
    let top = round_up(highest, measure);
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let x = |at: Timestamp| {
        let fraction = at.duration_since(start).as_secs_f64() / window.as_secs_f64();
        LEFT + fraction.clamp(0.0, 1.0) * plot_w
    };
    let y = |value: f64| plot_h - (value / top).clamp(0.0, 1.0) * plot_h;
    let (what, colour) = match measure {
        Measure::Cpu => ("CPU", "#2957c4"),
        Measure::Memory => ("Memory", "#7b3fb0"),
    };
    let mut svg = format!(
        r##"<svg class="chart usage-{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{what} over the last {}" xmlns="http://www.w3.org/2000/svg">"##,
        what.to_lowercase(),
        range.as_str()
    );
    for quarter in 0..=4 {
        let value = top * f64::from(quarter) / 4.0;
        let py = y(value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e6ea"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#6b7480">{}</text>"##,
            LEFT - 4.0,
            py + 3.0,
            label(value, measure)
        );
    }
    let (tick, unit, per_unit) = match range {
        UsageRange::Hour => (SignedDuration::from_mins(15), "m", 60),
        UsageRange::Day => (SignedDuration::from_hours(6), "h", 3600),
        UsageRange::Month => (SignedDuration::from_hours(24 * 7), "d", 86_400),
    };
    let mut ago = SignedDuration::ZERO;
    while ago <= window {
        let text = if ago.is_zero() {
            "now".to_owned()
        } else {
            format!("-{}{unit}", ago.as_secs() / per_unit)
        };
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#6b7480">{text}</text>"##,
            x(now - ago).clamp(LEFT + 12.0, WIDTH - 12.0),
            HEIGHT - 6.0
        );
        ago += tick;
    }
    if let Some(limit) = limit {
        let py = y(limit);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{WIDTH}" y1="{py:.1}" y2="{py:.1}" stroke="#c0392b" stroke-dasharray="4 3"><title>limit {}</title></line>"##,
            format_bytes(limit as u64)
        );
    }
    let gap = max_gap(range.step_seconds());
    let mut path = String::new();
    let mut previous: Option<Timestamp> = None;
    let mut newest = None;
    for (at, value) in &values {
        let Some(value) = value else {
            previous = None;
            continue;
        };
        let command = match previous {
            Some(prev) if at.duration_since(prev) <= gap => 'L',
            _ => 'M',
        };
        let _ = write!(path, "{command}{:.1} {:.1} ", x(*at), y(*value));
        previous = Some(*at);
        newest = Some((x(*at), y(*value), *value));
    }
    if path.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#6b7480">no usage samples in this window</text>"##,
            LEFT + plot_w / 2.0,
            plot_h / 2.0
        );
    } else {
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"##,
            path.trim_end()
        );
    }
    if let Some((px, py, value)) = newest {
        let _ = write!(
            svg,
            r##"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"><title>{} at the last sample</title></circle>"##,
            label(value, measure)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A round top for the scale: CPU to the next quarter, half or whole core (at least a
/// quarter), memory to the next 1, 2 or 5 times a power of two's MiB (at least 1 MiB).
fn round_up(highest: f64, measure: Measure) -> f64 {
    match measure {
        Measure::Cpu => {
            let steps = [0.25, 0.5, 1.0];
            steps
                .into_iter()
                .find(|s| highest <= *s)
                .unwrap_or_else(|| highest.max(1.0).ceil())
        }
        Measure::Memory => {
            let mut top = f64::from(1u32 << 20);
            while top < highest {
                top *= 2.0;
            }
            top
        }
    }
}

fn label(value: f64, measure: Measure) -> String {
    match measure {
        Measure::Cpu if value == 0.0 => "0".to_owned(),
        Measure::Cpu if value < 1.0 => format!("{:.0}m", value * 1000.0),
        Measure::Cpu => format!("{value:.2}"),
        Measure::Memory => format_bytes(value as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-26T12:00:00Z";

    fn point(seconds_ago: i64, cpu: Option<f64>, memory: u64) -> UsagePoint {
        UsagePoint {
            at: NOW.parse::<Timestamp>().unwrap() - SignedDuration::from_secs(seconds_ago),
            cpu_cores: cpu,
            memory_bytes: memory,
            memory_limit_bytes: Some(64 << 20),
        }
    }

    fn path(svg: &str) -> &str {
        svg.split("<path d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
    }

    #[test]
    fn a_missing_rate_or_a_gap_breaks_the_line() {
        let points = [
            point(600, None, 1),
            point(590, Some(0.5), 1),
            point(580, Some(0.5), 1),
            point(570, None, 1),
            point(560, Some(0.2), 1),
            point(100, Some(0.2), 1),
        ];
        let svg = usage_chart(
            &points,
            Measure::Cpu,
            UsageRange::Hour,
            NOW.parse().unwrap(),
        );
        let d = path(&svg);
        assert_eq!(d.matches('M').count(), 3, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
        // Half a core is the top of a 0.5 scale.
        assert!(svg.contains(">500m<"), "{svg}");
    }

    #[test]
    fn memory_is_drawn_against_its_limit() {
        let svg = usage_chart(
            &[point(20, None, 32 << 20), point(10, None, 48 << 20)],
            Measure::Memory,
            UsageRange::Day,
            NOW.parse().unwrap(),
        );
        assert!(svg.contains("limit 64"), "{svg}");
        // The limit is the top of the scale: a line at y = 0.
        assert!(
            svg.contains(r##"y1="0.0" y2="0.0" stroke="#c0392b""##),
            "{svg}"
        );
        assert!(path(&svg).starts_with('M'));
    }

    #[test]
    fn no_points_say_so() {
        let svg = usage_chart(&[], Measure::Cpu, UsageRange::Month, NOW.parse().unwrap());
        assert!(svg.contains("no usage samples"));
        assert!(!svg.contains("<path"));
    }
}
