//! Bar charts as SVG for the console, drawn on the server. Under the
//! console's CSP there is no inline style: every colour comes from a class
//! in the stylesheet, and text goes through `xml_escape`. The page puts
//! the data's table under every chart.

use std::fmt::Write;

use super::xml_escape;

pub struct Series {
    pub name: &'static str,
    /// The stylesheet class that colours it ("s1", "s2", …).
    pub class: &'static str,
    pub values: Vec<i64>,
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 260;
const LEFT: i64 = 78;
const BOTTOM: i64 = 44;
const TOP: i64 = 30;

/// Grouped bars, one group per label ("2026-01" labels read as months),
/// with a zero line, four gridlines labelled by `shown`, and a legend.
pub fn bars(
    title: &str,
    labels: &[String],
    series: &[Series],
    shown: &dyn Fn(i64) -> String,
) -> String {
    let all = series.iter().flat_map(|s| s.values.iter().copied());
    let max = all.clone().max().unwrap_or(0).max(0);
    let min = all.min().unwrap_or(0).min(0);
    let span = nice_step(max - min) * 4;
    let (top, bottom) = if min < 0 {
        let step = span / 4;
        let below = (-min + step - 1) / step * step;
        (span - below, -below)
    } else {
        (span, 0)
    };
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = |v: i64| TOP + (top - v) * plot_h / (top - bottom).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = xml_escape(title)
    );
    for i in 0..=4 {
        let v = bottom + (top - bottom) * i / 4;
        let _ = write!(
            svg,
            r#"<line class="grid{zero}" x1="{LEFT}" x2="{WIDTH}" y1="{y}" y2="{y}"/><text class="tick" x="{x}" y="{ty}" text-anchor="end">{label}</text>"#,
            zero = if v == 0 { " zero" } else { "" },
            y = y(v),
            x = LEFT - 6,
            ty = y(v) + 4,
            label = xml_escape(&shown(v)),
        );
    }
    let groups = labels.len().max(1) as i64;
    let group_w = (WIDTH - LEFT) / groups;
    let bar_w = (group_w * 7 / 10 / series.len().max(1) as i64).max(1);
    for (g, label) in labels.iter().enumerate() {
        let gx = LEFT + g as i64 * group_w + group_w * 15 / 100;
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(g).copied().unwrap_or(0);
            let (y0, y1) = (y(v.max(0)), y(v.min(0)));
            let _ = write!(
                svg,
                r#"<rect class="bar {c}" x="{x}" y="{y0}" width="{bar_w}" height="{h}"><title>{name} {label}: {value}</title></rect>"#,
                c = s.class,
                x = gx + k as i64 * bar_w,
                h = (y1 - y0).max(if v == 0 { 0 } else { 1 }),
                name = xml_escape(s.name),
                label = xml_escape(label),
                value = xml_escape(&shown(v)),
            );
        }
        let (month, year) = month_label(label, g == 0);
        let x = LEFT + g as i64 * group_w + group_w / 2;
        let _ = write!(
            svg,
            r#"<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{m}"#,
            ty = HEIGHT - BOTTOM + 16,
            m = xml_escape(&month),
        );
        if let Some(year) = year {
            let _ = write!(
                svg,
                r#"<tspan x="{x}" dy="1.2em">{}</tspan>"#,
                xml_escape(&year)
            );
        }
        svg.push_str("</text>");
    }
    for (k, s) in series.iter().enumerate() {
        let x = LEFT + k as i64 * 200;
        let _ = write!(
            svg,
            r#"<rect class="bar {c}" x="{x}" y="6" width="12" height="12"/><text class="legend" x="{tx}" y="16">{n}</text>"#,
            c = s.class,
            tx = x + 18,
            n = xml_escape(s.name),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A gridline step of 1, 2 or 5 times a power of ten, so four of them
/// cover `range`.
fn nice_step(range: i64) -> i64 {
    let raw = (range.max(1) + 3) / 4;
    let mut power = 1i64;
    while power.saturating_mul(10) <= raw {
        power *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10 * power)
}

/// "2026-01" → ("Jan", Some("2026")) for the first bar and each January
/// (the year goes on a line of its own), else ("Feb", None).
fn month_label(label: &str, first: bool) -> (String, Option<String>) {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some((year, m)) = label.split_once('-') else {
        return (label.to_owned(), None);
    };
    match m
        .parse::<usize>()
        .ok()
        .and_then(|m| NAMES.get(m.wrapping_sub(1)))
    {
        Some(name) if first || *name == "Jan" => ((*name).to_owned(), Some(year.to_owned())),
        Some(name) => ((*name).to_owned(), None),
        None => (label.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_cover_the_range() {
        assert_eq!(nice_step(0), 1);
        assert_eq!(nice_step(100), 50);
        assert_eq!(nice_step(1_561_000), 500_000);
        assert!(nice_step(999) * 4 >= 999);
    }

    #[test]
    fn charts_escape_their_text_and_use_no_inline_style() {
        let svg = bars(
            "<script>",
            &["2026-01".into(), "2026-02".into()],
            &[Series {
                name: "a&b",
                class: "s1",
                values: vec![500, -200],
            }],
            &|v| format!("<{v}>"),
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("a&amp;b"));
        assert!(!svg.contains("style="));
        assert!(
            svg.contains(">Jan<tspan")
                && svg.contains(">2026</tspan>")
                && svg.contains(">Feb</text>")
        );
    }
}
