//! Charts drawn on the server as SVG, so a page needs no charting library and no script:
//! [`Frame`], the drawing every chart shares (axes, time labels, dashed reference lines, the
//! line broken at gaps, the last sample's dot), and the 24-hour disk chart on a node's page
//! (`usage_chart` draws the CPU and memory charts on the same frame).

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
const MUTED: &str = "#6b7480";

/// A chart's box and its time axis: `window` up to `now` from left to right. Every label it
/// writes lies inside the view box, given margins that hold the labels (`left` the widest
/// value label, `right` half a time label, `top` a label's glyphs above the top line,
/// `bottom` the time labels).
pub(crate) struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    now: Timestamp,
    window: SignedDuration,
}

impl Frame {
    /// A `width` × `height` box with margins `[top, right, bottom, left]` (as in CSS) around
    /// the plot, showing `window` up to `now`.
    pub fn new(
        now: Timestamp,
        window: SignedDuration,
        [width, height]: [f64; 2],
        [top, right, bottom, left]: [f64; 4],
    ) -> Frame {
        Frame {
            width,
            height,
            left,
            right,
            top,
            bottom,
            now,
            window,
        }
    }

    fn start(&self) -> Timestamp {
        self.now - self.window
    }

    /// The plot's lowest y (its bottom edge).
    pub fn floor(&self) -> f64 {
        self.height - self.bottom
    }

    pub fn plot_width(&self) -> f64 {
        self.width - self.left - self.right
    }

    pub fn x(&self, at: Timestamp) -> f64 {
        let fraction = at.duration_since(self.start()).as_secs_f64() / self.window.as_secs_f64();
        self.left + fraction.clamp(0.0, 1.0) * self.plot_width()
    }

    /// The y of a value `fraction` of the way up the scale (clamped to the plot).
    pub fn y(&self, fraction: f64) -> f64 {
        self.floor() - fraction.clamp(0.0, 1.0) * (self.floor() - self.top)
    }

    /// Opens the `<svg>`; the caller closes it.
    pub fn open(&self, class: &str, label: &str) -> String {
        format!(
            r##"<svg class="{class}" viewBox="0 0 {} {}" role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">"##,
            self.width, self.height
        )
    }

    /// A grid line across the plot at `py` with its value's label on the left.
    pub fn grid_line(&self, svg: &mut String, py: f64, label: &str) {
        let _ = write!(
            svg,
            r##"<line x1="{}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e6ea"/><text x="{}" y="{:.1}" font-size="{FONT}" text-anchor="end" fill="{MUTED}">{label}</text>"##,
            self.left,
            self.width - self.right,
            self.left - 4.0,
            py + FONT * 0.35
        );
    }

    /// Time labels every `tick` back from now (`now`, `-6h`, …, in `unit`s of `unit_seconds`);
    /// the ends are anchored inwards so that neither runs off the box.
    pub fn time_labels(
        &self,
        svg: &mut String,
        tick: SignedDuration,
        unit: &str,
        unit_seconds: i64,
    ) {
        let mut ago = SignedDuration::ZERO;
        while ago <= self.window {
            let (label, anchor) = if ago.is_zero() {
                ("now".to_owned(), "end")
            } else if ago == self.window {
                (format!("-{}{unit}", ago.as_secs() / unit_seconds), "start")
            } else {
                (format!("-{}{unit}", ago.as_secs() / unit_seconds), "middle")
            };
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="{FONT}" text-anchor="{anchor}" fill="{MUTED}">{label}</text>"##,
                self.x(self.now - ago),
                self.height - 6.0
            );
            ago += tick;
        }
    }

    /// A dashed line across the plot at `py` (a threshold, a limit) with `title` as its tooltip.
    pub fn dashed_line(&self, svg: &mut String, py: f64, colour: &str, title: &str) {
        let _ = write!(
            svg,
            r##"<line x1="{}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="{colour}" stroke-dasharray="4 3"><title>{title}</title></line>"##,
            self.left,
            self.width - self.right
        );
    }

    /// The line through `runs` (each a list of (x, y)), optionally with the area under each
    /// run of two or more points filled; or `empty` in the middle when there is no point.
    pub fn line(&self, svg: &mut String, runs: &[Vec<(f64, f64)>], style: &LineStyle, empty: &str) {
        if runs.iter().all(Vec::is_empty) {
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="{MUTED}">{empty}</text>"##,
                self.left + self.plot_width() / 2.0,
                self.top + (self.floor() - self.top) / 2.0
            );
            return;
        }
        let bottom = self.floor();
        let mut area = String::new();
        let mut line = String::new();
        for run in runs {
            for (i, (px, py)) in run.iter().enumerate() {
                let _ = write!(line, "{}{px:.1} {py:.1} ", if i == 0 { 'M' } else { 'L' });
            }
            if let (true, Some((first, _)), Some((last, _))) =
                (style.area && run.len() > 1, run.first(), run.last())
            {
                let _ = write!(area, "M{first:.1} {bottom:.1} ");
                for (px, py) in run {
                    let _ = write!(area, "L{px:.1} {py:.1} ");
                }
                let _ = write!(area, "L{last:.1} {bottom:.1} Z ");
            }
        }
        if !area.is_empty() {
            let _ = write!(
                svg,
                r##"<path class="area" d="{}" fill="{}" fill-opacity="0.18" stroke="none"/>"##,
                area.trim_end(),
                style.colour
            );
        }
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="{}" stroke-width="{}"/>"##,
            line.trim_end(),
            style.colour,
            style.width
        );
    }

    /// The newest sample as a dot, visible even when it is the only one.
    pub fn dot(&self, svg: &mut String, (px, py): (f64, f64), colour: &str, title: &str) {
        let _ = write!(
            svg,
            r##"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{colour}"><title>{title}</title></circle>"##
        );
    }
}

/// How a chart's line is drawn.
pub(crate) struct LineStyle {
    pub colour: &'static str,
    pub width: f64,
    /// Fill the area under the line.
    pub area: bool,
}

/// Points (time, (x, y)) oldest first, as runs to draw: a point without a value, or more than
/// `gap` after the previous point, starts a new run, so no line is drawn where nothing was
/// measured.
pub(crate) fn runs(
    points: impl IntoIterator<Item = (Timestamp, Option<(f64, f64)>)>,
    gap: SignedDuration,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut previous: Option<Timestamp> = None;
    for (at, point) in points {
        let Some(point) = point else {
            previous = None;
            continue;
        };
        if previous.is_none_or(|p| at.duration_since(p) > gap) {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push(point);
        }
        previous = Some(at);
    }
    runs
}

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
    let frame = Frame::new(now, window, [WIDTH, HEIGHT], [TOP, RIGHT, BOTTOM, LEFT]);
    let start = now - window;
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
    let y = |percent: f64| frame.y((percent.clamp(floor, 100.0) - floor) / (100.0 - floor));
    let mut svg = frame.open(
        "chart",
        &format!("Disk usage over the last {} hours", window.as_hours()),
    );
    let step = tick_step(100.0 - floor);
    let mut percent = 100.0;
    while percent >= floor {
        frame.grid_line(&mut svg, y(percent), &format!("{percent}%"));
        percent -= step;
    }
    frame.time_labels(&mut svg, SignedDuration::from_hours(6), "h", 3600);
    for (threshold, colour, name) in [(high, "#c0392b", "high"), (low, "#b7791f", "low")] {
        frame.dashed_line(
            &mut svg,
            y(f64::from(threshold)),
            colour,
            &format!("GC {name} threshold {threshold}%"),
        );
    }
    let runs = runs(
        shown
            .iter()
            .map(|&(at, percent)| (at, Some((frame.x(at), y(percent))))),
        SignedDuration::from_mins(10),
    );
    let style = LineStyle {
        colour: "#2957c4",
        width: 2.0,
        area: true,
    };
    frame.line(
        &mut svg,
        &runs,
        &style,
        "no reports from this node's agent in this window",
    );
    if let Some(&(at, percent)) = shown.last() {
        frame.dot(
            &mut svg,
            (frame.x(at), y(percent)),
            style.colour,
            &format!("{percent:.1}% used at the last report"),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn sample(at: &str, used: u64) -> DiskSample {
        DiskSample {
            at: at.parse().unwrap(),
            used_bytes: used,
            capacity_bytes: 100,
            reclaimable_bytes: 0,
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

    /// Every `<text>` of `svg` lies inside a view box of `width` × `height`, and each of
    /// `expected` is among them.
    pub(crate) fn assert_labels_inside(svg: &str, (width, height): (f64, f64), expected: &[&str]) {
        let boxes = label_boxes(svg);
        for label in expected {
            assert!(
                boxes.iter().any(|b| b.0 == *label),
                "{label} missing: {svg}"
            );
        }
        for (label, left, right, top, bottom) in boxes {
            assert!(
                left >= 0.0 && right <= width,
                "{label} runs off sideways: {left}..{right}"
            );
            assert!(
                top >= 0.0 && bottom <= height,
                "{label} runs off vertically: {top}..{bottom}"
            );
        }
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
            assert_labels_inside(&svg, (WIDTH, HEIGHT), &["100%", "now", "-24h"]);
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
                reclaimable_bytes: 0,
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
