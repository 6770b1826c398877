//! CPU and memory charts of a node, a service or a task: SVG drawn on the server from
//! [`swarmkeeper_report::UsagePoint`]s, like the disk chart, so the page needs no charting
//! library and no script. The points come from `report::series` (rates, sums, resolution);
//! this only draws them.

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::{max_gap, UsagePoint, UsageRange};
use swarmkeeper_units::bytes as format_bytes;

use super::chart::{runs, Frame, LineStyle};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 170.0;
/// Room for a memory label (`512.0 MiB`) on the left, half a time label on the right, the top
/// label's glyphs above its line and the time labels below.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
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
    let frame = Frame::new(
        now,
        range.window(),
        [WIDTH, HEIGHT],
        [TOP, RIGHT, BOTTOM, LEFT],
    );
    let start = now - range.window();
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
    let y = |value: f64| frame.y(value / top);
    let (what, colour) = match measure {
        Measure::Cpu => ("CPU", "#2957c4"),
        Measure::Memory => ("Memory", "#7b3fb0"),
    };
    let mut svg = frame.open(
        &format!("chart usage-{}", what.to_lowercase()),
        &format!("{what} over the last {}", range.as_str()),
    );
    for quarter in 0..=4 {
        let value = top * f64::from(quarter) / 4.0;
        frame.grid_line(&mut svg, y(value), &label(value, measure));
    }
    let (tick, unit, per_unit) = match range {
        UsageRange::Hour => (SignedDuration::from_mins(15), "m", 60),
        UsageRange::Day => (SignedDuration::from_hours(6), "h", 3600),
        UsageRange::Month => (SignedDuration::from_hours(24 * 7), "d", 86_400),
    };
    frame.time_labels(&mut svg, tick, unit, per_unit);
    if let Some(limit) = limit {
        frame.dashed_line(
            &mut svg,
            y(limit),
            "#c0392b",
            &format!("limit {}", format_bytes(limit as u64)),
        );
    }
    let runs = runs(
        values
            .iter()
            .map(|&(at, value)| (at, value.map(|v| (frame.x(at), y(v))))),
        max_gap(range.step_seconds()),
    );
    let style = LineStyle {
        colour,
        width: 1.5,
        area: false,
    };
    frame.line(&mut svg, &runs, &style, "no usage samples in this window");
    if let Some(&(at, Some(value))) = values.iter().rev().find(|(_, v)| v.is_some()) {
        frame.dot(
            &mut svg,
            (frame.x(at), y(value)),
            colour,
            &format!("{} at the last sample", label(value, measure)),
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
        // The limit is the top of the scale: a line along the plot's top edge.
        assert!(
            svg.contains(r##"y1="10.0" y2="10.0" stroke="#c0392b""##),
            "{svg}"
        );
        assert!(path(&svg).starts_with('M'));
    }

    #[test]
    fn every_label_lies_inside_the_view_box() {
        let now: Timestamp = NOW.parse().unwrap();
        for range in UsageRange::ALL {
            for measure in [Measure::Cpu, Measure::Memory] {
                for points in [
                    vec![],
                    vec![point(10, Some(3.7), 900 << 20)],
                    vec![point(0, Some(0.25), 64 << 20)],
                ] {
                    let svg = usage_chart(&points, measure, range, now);
                    crate::views::chart::tests::assert_labels_inside(
                        &svg,
                        (WIDTH, HEIGHT),
                        &["now"],
                    );
                }
            }
        }
    }

    #[test]
    fn no_points_say_so() {
        let svg = usage_chart(&[], Measure::Cpu, UsageRange::Month, NOW.parse().unwrap());
        assert!(svg.contains("no usage samples"));
        assert!(!svg.contains("<path"));
    }
}
