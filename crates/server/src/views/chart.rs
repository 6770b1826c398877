//! The 24-hour disk chart on a node's page: an SVG drawn on the server from the stored
//! samples, so the page needs no charting library and no script.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::DiskSample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
/// Room for the percent labels on the left, for half a time label on the right, for the top
/// label's glyphs above its line, and for the time labels below.
const LEFT: f64 = 40.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
const FONT: f64 = 10.0;

/// The lowest percent the y axis shows: 10 points under the lowest sample or threshold, on a
/// multiple of 10, so that a disk that sits at 40 % for a day is a filled band well inside the
/// plot rather than a hairline on a 0-100 scale, and the thresholds stay in view. The top is
/// always 100 %: how far the disk is from full is what the chart is for.
fn axis_floor(lowest: f64) -> f64 {
    ((lowest - 10.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0
}

/// The step between labelled percents for a range of `span` points (a multiple of 10 from
/// 10 to 100), one that lands on both ends: at most six labels where possible.
fn tick_step(span: f64) -> f64 {
    match span {
        s if s <= 50.0 => 10.0,
        s if s >= 100.0 => 25.0,
        s if s % 20.0 == 0.0 => 20.0,
        s if s % 30.0 == 0.0 => 30.0,
        _ => 10.0,
    }
}

/// Usage in percent over `window` up to `now`, with the GC thresholds as dashed lines and the
/// area under the line filled. A gap longer than ten minutes between samples (the agent was
/// down) breaks the line rather than drawing a slope nobody measured. Every label lies inside
/// the view box.
pub fn disk_chart(
    samples: &[DiskSample],
    now: Timestamp,
    window: SignedDuration,
    high: u8,
    low: u8,
) -> String {
    let start = now - window;
    let plot_w = WIDTH - LEFT - RIGHT;
    let bottom = HEIGHT - BOTTOM;
    let plot_h = bottom - TOP;
    let shown: Vec<(Timestamp, f64)> = samples
        .iter()
        .filter(|s| s.at >= start && s.capacity_bytes > 0)
        .map(|s| (s.at, s.used_bytes as f64 * 100.0 / s.capacity_bytes as f64))
        .collect();
    let lowest = shown
        .iter()
        .map(|(_, p)| *p)
        .fold(f64::from(high.min(low)), f64::min);
    let floor = axis_floor(lowest);
    let x = |at: Timestamp| {
        let fraction = at.duration_since(start).as_secs_f64() / window.as_secs_f64();
        LEFT + fraction.clamp(0.0, 1.0) * plot_w
    };
    let y =
        |percent: f64| bottom - (percent.clamp(floor, 100.0) - floor) / (100.0 - floor) * plot_h;
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Disk usage over the last {} hours" xmlns="http://www.w3.org/2000/svg">"##,
        window.as_hours()
    );
    let step = tick_step(100.0 - floor);
    let mut percent = 100.0;
    while percent >= floor {
        let py = y(percent);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e6ea"/><text x="{}" y="{:.1}" font-size="{FONT}" text-anchor="end" fill="#6b7480">{percent}%</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            py + FONT * 0.35
        );
        percent -= step;
    }
    for hours_ago in (0..=window.as_hours()).step_by(6) {
        let px = x(now - SignedDuration::from_hours(hours_ago));
        // The ends are anchored inwards so that neither "now" nor "-24h" runs off the box.
        let (label, anchor) = match hours_ago {
            0 => ("now".to_owned(), "end"),
            h if h == window.as_hours() => (format!("-{h}h"), "start"),
            h => (format!("-{h}h"), "middle"),
        };
        let _ = write!(
            svg,
            r##"<text x="{px:.1}" y="{}" font-size="{FONT}" text-anchor="{anchor}" fill="#6b7480">{label}</text>"##,
            HEIGHT - 6.0
        );
    }
    for (threshold, colour, name) in [(high, "#c0392b", "high"), (low, "#b7791f", "low")] {
        let py = y(f64::from(threshold));
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="{colour}" stroke-dasharray="4 3"><title>GC {name} threshold {threshold}%</title></line>"##,
            WIDTH - RIGHT
        );
    }
    // Runs of samples no more than ten minutes apart.
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut previous: Option<Timestamp> = None;
    for &(at, percent) in &shown {
        let joined =
            previous.is_some_and(|p| at.duration_since(p) <= SignedDuration::from_mins(10));
        if !joined {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push((x(at), y(percent)));
        }
        previous = Some(at);
    }
    if runs.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#6b7480">no reports from this node's agent in this window</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    } else {
        let mut area = String::new();
        let mut line = String::new();
        for run in &runs {
            for (i, (px, py)) in run.iter().enumerate() {
                let _ = write!(line, "{}{px:.1} {py:.1} ", if i == 0 { 'M' } else { 'L' });
            }
            if let (Some((first, _)), Some((last, _))) = (run.first(), run.last()) {
                if run.len() > 1 {
                    let _ = write!(area, "M{first:.1} {bottom:.1} ");
                    for (px, py) in run {
                        let _ = write!(area, "L{px:.1} {py:.1} ");
                    }
                    let _ = write!(area, "L{last:.1} {bottom:.1} Z ");
                }
            }
        }
        if !area.is_empty() {
            let _ = write!(
                svg,
                r##"<path class="area" d="{}" fill="#2957c4" fill-opacity="0.18" stroke="none"/>"##,
                area.trim_end()
            );
        }
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="#2957c4" stroke-width="2"/>"##,
            line.trim_end()
        );
    }
    // The latest sample as a dot: visible even when it is the only one.
    if let Some(&(at, percent)) = shown.last() {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2957c4"><title>{percent:.1}% used at the last report</title></circle>"##,
            x(at),
            y(percent)
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
        assert!(svg.contains("M708.0 10.0"), "{svg}");
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

    /// Each `<text>`'s box, from its anchor and an estimate of its width (0.6 em a glyph).
    fn label_boxes(svg: &str) -> Vec<(String, f64, f64, f64, f64)> {
        let attr = |tag: &str, name: &str| -> String {
            tag.split(&format!(" {name}=\""))
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        };
        svg.split("<text")
            .skip(1)
            .map(|rest| {
                let (tag, rest) = rest.split_once('>').unwrap();
                let label = rest.split("</text>").next().unwrap().to_owned();
                let x: f64 = attr(tag, "x").parse().unwrap();
                let y: f64 = attr(tag, "y").parse().unwrap();
                let size: f64 = attr(tag, "font-size").parse().unwrap();
                let width = label.chars().count() as f64 * size * 0.6;
                let left = match attr(tag, "text-anchor").as_str() {
                    "end" => x - width,
                    "middle" => x - width / 2.0,
                    _ => x,
                };
                (label, left, left + width, y - size * 0.8, y + size * 0.25)
            })
            .collect()
    }

    #[test]
    fn every_label_lies_inside_the_view_box() {
        for samples in [
            vec![],
            vec![sample(NOW, 100)],
            vec![sample("2026-11-26T11:59:00Z", 3)],
        ] {
            let svg = disk_chart(
                &samples,
                NOW.parse().unwrap(),
                SignedDuration::from_hours(24),
                85,
                80,
            );
            let boxes = label_boxes(&svg);
            for label in ["100%", "now", "-24h"] {
                assert!(boxes.iter().any(|b| b.0 == label), "{label} missing: {svg}");
            }
            for (label, left, right, top, bottom) in boxes {
                assert!(
                    left >= 0.0 && right <= WIDTH,
                    "{label} runs off sideways: {left}..{right}"
                );
                assert!(
                    top >= 0.0 && bottom <= HEIGHT,
                    "{label} runs off vertically: {top}..{bottom}"
                );
            }
        }
    }

    #[test]
    fn a_flat_day_is_a_filled_band_on_a_range_that_shows_it() {
        // A day at 40 %, a sample every 5 minutes.
        let now: Timestamp = NOW.parse().unwrap();
        let samples: Vec<DiskSample> = (0..288)
            .rev()
            .map(|i| DiskSample {
                at: now - SignedDuration::from_mins(5 * i),
                used_bytes: 40,
                capacity_bytes: 100,
            })
            .collect();
        let svg = disk_chart(&samples, now, SignedDuration::from_hours(24), 85, 80);
        // The axis starts at 30 %, not 0: 40 % is a seventh of the plot up, not two fifths.
        assert!(svg.contains(">30%</text>"), "{svg}");
        assert!(!svg.contains(">0%</text>"), "{svg}");
        let area = svg
            .split("<path class=\"area\" d=\"")
            .nth(1)
            .expect("an area")
            .split('"')
            .next()
            .unwrap();
        assert!(area.ends_with('Z'), "{area}");
        // The band is taller than a hairline: from the line down to the plot's bottom.
        let line_y = y_of(&svg, "M");
        assert!(
            BOTTOM_Y - line_y > 15.0,
            "the band is {} px tall",
            BOTTOM_Y - line_y
        );
    }

    const BOTTOM_Y: f64 = HEIGHT - BOTTOM;

    /// The y of the first point of the line.
    fn y_of(svg: &str, command: &str) -> f64 {
        let line = svg.split("<path d=\"").nth(1).unwrap();
        let point = line.split(command).nth(1).unwrap();
        point.split([' ', 'L']).nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_full_disk_still_starts_the_axis_at_the_thresholds() {
        let svg = disk_chart(
            &[sample(NOW, 97)],
            NOW.parse().unwrap(),
            SignedDuration::from_hours(24),
            85,
            80,
        );
        assert!(svg.contains(">70%</text>"), "{svg}");
        assert!(svg.contains("GC low threshold 80%"));
    }
}
