//! SVG views: shields.io-style badges, the sponsor wall, and the
//! link-preview card (rasterised to PNG by `png`). Every piece of text and
//! every attribute value goes through `xml_escape`.

use std::fmt::Write;

use super::{PublicData, SponsorGroup, WallSponsor, thousands, xml_escape};

/// A badge: label on grey, message on a colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub label: String,
    pub message: String,
    /// A shields.io colour name.
    pub color: &'static str,
}

/// The badges: `patrons`, `monthly`, `goal`, and `costs` (how much of the
/// monthly costs pledges cover).
pub fn badge(data: &PublicData, name: &str) -> Option<Badge> {
    let f = &data.funding;
    Some(match name {
        "patrons" => Badge {
            label: "patrons".into(),
            message: thousands(f.patrons_count),
            color: "blue",
        },
        "monthly" => match &f.monthly_recurring {
            Some(m) => Badge {
                label: "monthly".into(),
                message: format!("{}/month", m.display),
                color: "blue",
            },
            None => Badge {
                label: "monthly".into(),
                message: "not shown yet".into(),
                color: "lightgrey",
            },
        },
        "goal" => match (&f.goal, &f.progress) {
            (Some(goal), Some(p)) => Badge {
                label: "goal".into(),
                message: format!("{}% of {}", p.percent, goal.display),
                color: match p.percent {
                    100.. => "brightgreen",
                    50..=99 => "green",
                    25..=49 => "yellow",
                    _ => "orange",
                },
            },
            (Some(goal), None) => Badge {
                label: "goal".into(),
                message: format!("{}/month", goal.display),
                color: "lightgrey",
            },
            (None, _) => Badge {
                label: "goal".into(),
                message: "none set".into(),
                color: "lightgrey",
            },
        },
        "costs" => match data.costs.as_ref().map(|c| &c.coverage) {
            Some(Some(p)) => Badge {
                label: "costs covered".into(),
                message: format!("{}%", p.percent),
                color: match p.percent {
                    100.. => "brightgreen",
                    50..=99 => "green",
                    25..=49 => "yellow",
                    _ => "orange",
                },
            },
            Some(None) => Badge {
                label: "costs covered".into(),
                message: "not shown yet".into(),
                color: "lightgrey",
            },
            None => Badge {
                label: "costs covered".into(),
                message: "no costs recorded".into(),
                color: "lightgrey",
            },
        },
        _ => return None,
    })
}

pub const BADGES: [&str; 4] = ["patrons", "monthly", "goal", "costs"];

fn color_hex(name: &str) -> &'static str {
    match name {
        "brightgreen" => "#4c1",
        "green" => "#97ca00",
        "yellow" => "#dfb317",
        "orange" => "#fe7d37",
        "blue" => "#007ec6",
        _ => "#9f9f9f",
    }
}

/// Width of `text` in Verdana 11px, roughly, as shields.io measures it.
pub fn text_width(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 35,
            'f' | 'r' | 't' | 'I' | '(' | ')' | '[' | ']' | ' ' | '/' | '-' => 45,
            'm' | 'w' | '%' => 100,
            'M' | 'W' | '@' => 110,
            'A'..='Z' | '€' | '£' | '$' | '#' | '&' => 75,
            '0'..='9' => 70,
            'a'..='z' => 65,
            c if c.is_ascii() => 65,
            _ => 90,
        })
        .sum();
    tenths.div_ceil(10)
}

/// A flat shields.io-style badge.
pub fn badge_svg(b: &Badge) -> String {
    let lw = text_width(&b.label) + 10;
    let mw = text_width(&b.message) + 10;
    let w = lw + mw;
    let (label, message) = (xml_escape(&b.label), xml_escape(&b.message));
    let color = color_hex(b.color);
    let (lx, mx) = (lw * 5, lw * 10 + mw * 5);
    let (ltl, mtl) = ((lw - 10) * 10, (mw - 10) * 10);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{color}"/><rect width="{w}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{ltl}">{label}</text><text x="{lx}" y="140" transform="scale(.1)" fill="#fff" textLength="{ltl}">{label}</text><text aria-hidden="true" x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{mtl}">{message}</text><text x="{mx}" y="140" transform="scale(.1)" fill="#fff" textLength="{mtl}">{message}</text></g></svg>"##
    )
}

/// shields.io "endpoint" JSON for the same badge.
pub fn badge_json(b: &Badge, cache_seconds: u32) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 1,
        "label": b.label,
        "message": b.message,
        "color": b.color,
        "cacheSeconds": cache_seconds.max(300),
    })
}

/// Open Collective-style wall parameters, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WallParams {
    /// A tier id or slug; None for every tier.
    pub tier: Option<String>,
    pub width: u32,
    pub limit: usize,
    pub avatar_height: u32,
    pub margin: u32,
}

impl Default for WallParams {
    fn default() -> Self {
        WallParams {
            tier: None,
            width: 900,
            limit: 100,
            avatar_height: 64,
            margin: 5,
        }
    }
}

/// Widths are multiples of this; logo heights and margins come from short
/// lists. Every request is rounded down into this small set of walls, so a
/// cache holds the ones in use and nobody can force endless new renders.
const WIDTH_STEP: u32 = 50;
const AVATAR_HEIGHTS: [u32; 12] = [16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256];
const MARGINS: [u32; 8] = [0, 5, 10, 15, 20, 30, 40, 50];
/// No wall grows taller than this: 2000×3000 pixels is 24 MiB as a PNG
/// being drawn. Sponsors that would land below are left out.
pub const MAX_WALL_HEIGHT: u32 = 3000;

/// The largest of `steps` at or below `value`, else the smallest.
fn round_down(value: u32, steps: &[u32]) -> u32 {
    steps
        .iter()
        .copied()
        .filter(|s| *s <= value)
        .max()
        .unwrap_or(steps[0])
}

impl WallParams {
    /// Clamps and rounds each value into the small set of walls we draw.
    pub fn normalised(
        tier: Option<&str>,
        width: Option<u32>,
        limit: Option<usize>,
        avatar_height: Option<u32>,
        margin: Option<u32>,
    ) -> Self {
        let d = WallParams::default();
        WallParams {
            tier: tier
                .map(super::slug)
                .filter(|t| !t.is_empty() && t.len() <= 64),
            width: width.unwrap_or(d.width),
            limit: limit.unwrap_or(d.limit),
            avatar_height: avatar_height.unwrap_or(d.avatar_height),
            margin: margin.unwrap_or(d.margin),
        }
        .bounded()
    }

    /// The numbers within bounds that always fit together: margins leave
    /// most of the width, and a logo is never taller than the wall is wide.
    pub fn bounded(self) -> Self {
        let width = (self.width.clamp(100, 2000) / WIDTH_STEP) * WIDTH_STEP;
        let margin = round_down(self.margin.min(width / 8), &MARGINS);
        let inner = width - 2 * margin;
        let avatar_height = round_down(self.avatar_height.min(inner), &AVATAR_HEIGHTS);
        WallParams {
            tier: self.tier,
            width,
            limit: self.limit.clamp(1, 500),
            avatar_height,
            margin,
        }
    }
}

fn groups_for<'a>(data: &'a PublicData, tier: Option<&str>) -> Vec<&'a SponsorGroup> {
    data.sponsor_groups
        .iter()
        .filter(|g| match tier {
            None => true,
            Some(t) => g.tier_slug == t || g.tier_id.to_string() == t,
        })
        .collect()
}

/// Height of a sponsor's logo: higher tiers larger (100 %, 75 %, then 60 %).
fn height_for(group: &SponsorGroup, base: u32, single_tier: bool) -> u32 {
    if single_tier {
        return base;
    }
    let pct = match group.size_rank {
        0 => 100,
        1 => 75,
        _ => 60,
    };
    (base * pct / 100).max(16)
}

struct Placed<'a> {
    sponsor: &'a WallSponsor,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

/// The sponsor wall as one self-contained SVG: logos inlined as `data:`
/// URIs, sponsors without a logo as their name. Links carry the configured
/// `rel` and open in a new tab when the SVG is opened directly.
pub fn wall_svg(data: &PublicData, p: &WallParams) -> String {
    let p = &p.clone().bounded();
    let groups = groups_for(data, p.tier.as_deref());
    let single = p.tier.is_some();
    let inner = p.width - 2 * p.margin;
    let mut placed = Vec::new();
    let (mut x, mut y, mut row_h) = (p.margin, p.margin, 0u32);
    'groups: for group in groups {
        let h = height_for(group, p.avatar_height, single);
        for sponsor in &group.sponsors {
            if placed.len() >= p.limit {
                break 'groups;
            }
            let natural = match &sponsor.light {
                Some(logo) if logo.height > 0 => {
                    u64::from(logo.width) * u64::from(h) / u64::from(logo.height)
                }
                _ => u64::from(text_width(&sponsor.name)) * u64::from(h) / 40 + u64::from(h / 2),
            };
            // At least half as wide as high, never wider than the wall.
            let w = natural.max(u64::from(h / 2)).min(u64::from(inner.max(1))) as u32;
            if x + w + p.margin > p.width && x > p.margin {
                x = p.margin;
                y += row_h + p.margin;
                row_h = 0;
            }
            if y + h + p.margin > MAX_WALL_HEIGHT {
                break 'groups;
            }
            placed.push(Placed {
                sponsor,
                x,
                y,
                w,
                h,
            });
            x += w + p.margin;
            row_h = row_h.max(h);
        }
    }
    // With nobody to show, an empty row: a wall always has a size, so it
    // always rasterises (as Open Collective's empty walls do).
    let height = if placed.is_empty() {
        p.avatar_height + 2 * p.margin
    } else {
        y + row_h + p.margin
    };
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img" aria-label="Sponsors of {name}"><title>Sponsors of {name}</title>"#,
        w = p.width,
        name = xml_escape(&data.name),
    );
    let rel = data.sponsor_rel;
    for item in &placed {
        let s = item.sponsor;
        let (url, name) = (xml_escape(&s.url), xml_escape(&s.name));
        let _ = write!(
            out,
            r#"<a xlink:href="{url}" href="{url}" target="_blank" rel="{rel}"><title>{name}</title>"#
        );
        match &s.light {
            Some(logo) => {
                let _ = write!(
                    out,
                    r#"<image x="{}" y="{}" width="{}" height="{}" xlink:href="{}" preserveAspectRatio="xMidYMid meet" aria-label="{}"/>"#,
                    item.x,
                    item.y,
                    item.w,
                    item.h,
                    logo.data_uri,
                    xml_escape(&logo.alt)
                );
            }
            None => {
                let size = (item.h / 3).max(10);
                let _ = write!(
                    out,
                    r##"<rect x="{}" y="{}" width="{}" height="{}" rx="4" fill="#f4f4f8" stroke="#c9c9d6"/><text x="{}" y="{}" font-family="DejaVu Sans,Verdana,sans-serif" font-size="{size}" fill="#1f2328" text-anchor="middle" dominant-baseline="middle">{name}</text>"##,
                    item.x,
                    item.y,
                    item.w,
                    item.h,
                    item.x + item.w / 2,
                    item.y + item.h / 2,
                );
            }
        }
        out.push_str("</a>");
    }
    out.push_str("</svg>");
    out
}

/// The 1200×630 link-preview card: name, headline, progress bar.
pub fn card_svg(data: &PublicData) -> String {
    let name = xml_escape(&truncate(&data.name, 40));
    let headline = xml_escape(&truncate(&data.headline(), 60));
    let goal = data.goal_line().map(|g| xml_escape(&g)).unwrap_or_default();
    let site = xml_escape(&truncate(
        data.site_url
            .trim_start_matches("https://")
            .trim_start_matches("http://"),
        60,
    ));
    let bar = match data.bar_percent() {
        Some(pct) => format!(
            r##"<rect x="80" y="380" width="1040" height="40" rx="20" fill="#d9d9e8"/><rect x="80" y="380" width="{}" height="40" rx="20" fill="#563acc"/>"##,
            (1040 * pct / 100).max(if pct > 0 { 40 } else { 0 })
        ),
        None => String::new(),
    };
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" viewBox="0 0 1200 630"><rect width="1200" height="630" fill="#ffffff"/><rect width="1200" height="16" fill="#563acc"/><text x="80" y="170" font-family="DejaVu Sans" font-size="64" font-weight="bold" fill="#1f2328">{name}</text><text x="80" y="290" font-family="DejaVu Sans" font-size="40" fill="#1f2328">{headline}</text>{bar}<text x="80" y="490" font-family="DejaVu Sans" font-size="34" fill="#3d3d4e">{goal}</text><text x="80" y="580" font-family="DejaVu Sans" font-size="28" fill="#563acc">{site}/support</text></svg>"##
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_text_is_escaped_and_widths_grow_with_text() {
        let b = Badge {
            label: "<script>".into(),
            message: "a&b".into(),
            color: "blue",
        };
        let svg = badge_svg(&b);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a&amp;b"));
        assert!(text_width("3,091") < text_width("3,091,000"));
    }

    #[test]
    fn wall_params_are_clamped_and_rounded() {
        let p =
            WallParams::normalised(Some("Gold Tier"), Some(99_999), Some(0), Some(1), Some(500));
        assert_eq!(p.tier.as_deref(), Some("gold-tier"));
        assert_eq!(
            (p.width, p.limit, p.avatar_height, p.margin),
            (2000, 1, 16, 50)
        );
        let p = WallParams::normalised(None, Some(623), None, Some(70), Some(12));
        assert_eq!((p.width, p.avatar_height, p.margin), (600, 64, 10));
        // The request that panicked: margins would have eaten the width.
        let p = WallParams::normalised(None, Some(100), None, Some(256), Some(50));
        assert_eq!((p.width, p.avatar_height, p.margin), (100, 80, 10));
    }

    fn data_with_sponsors() -> PublicData {
        use crate::domain::funding::{Funding, FundingFacts};
        let currency = crate::domain::money::Currency::parse("EUR").unwrap();
        let facts = FundingFacts {
            currency,
            monthly_goal_minor: None,
            monthly_pledges_sum: 0,
            yearly_pledges_sum: 0,
            patrons_count: 0,
            sponsors_count: 3,
            raised_this_month: 0,
            raised_total: 0,
            givers_this_month: 0,
            givers_total: 0,
            tiers: Vec::new(),
            years: Vec::new(),
            updated_at: chrono::Utc::now(),
        };
        let logo = |w: u32, h: u32| {
            Some(super::super::LogoImage::new(
                "0".repeat(64),
                w,
                h,
                "logo".into(),
                Vec::new(),
            ))
        };
        let sponsor = |id: i64, name: &str, light| WallSponsor {
            id,
            name: name.into(),
            url: "https://example.org/".into(),
            light,
            dark: None,
        };
        let group = |rank: usize, sponsors| SponsorGroup {
            tier_id: rank as i64 + 1,
            tier_name: format!("Tier {rank}"),
            tier_slug: format!("tier-{rank}"),
            size_rank: rank,
            sponsors,
        };
        PublicData {
            name: "Example".into(),
            description: String::new(),
            currency,
            site_url: "https://fund.example".into(),
            instance_url: String::new(),
            rel_me: String::new(),
            funding: Funding::from_facts(&facts, 1),
            tiers: Vec::new(),
            sponsor_groups: vec![
                group(0, vec![sponsor(1, "Wide", logo(4000, 10))]),
                group(1, vec![sponsor(2, "Tall", logo(10, 4000))]),
                group(
                    2,
                    vec![sponsor(3, &"A very long company name ".repeat(10), None)],
                ),
            ],
            patron_names: Vec::new(),
            sponsor_rel: "sponsored",
            costs: None,
        }
    }

    /// Every combination, from nothing to absurd, gives a wall whose every
    /// piece lies inside it.
    #[test]
    fn any_wall_parameters_give_a_well_formed_wall() {
        let data = data_with_sponsors();
        let mut empty = data.clone();
        empty.sponsor_groups.clear();
        let sizes = [0, 1, 16, 50, 100, 101, 256, 257, 890, 2001, u32::MAX];
        let limits = [0, 1, 2, 500, usize::MAX];
        for width in sizes {
            for margin in sizes {
                for avatar_height in sizes {
                    for limit in limits {
                        for tier in [None, Some("tier-1".to_owned())] {
                            let raw = WallParams {
                                tier,
                                width,
                                limit,
                                avatar_height,
                                margin,
                            };
                            for data in [&data, &empty] {
                                check_wall(data, &raw);
                            }
                        }
                    }
                }
            }
        }
    }

    fn check_wall(data: &PublicData, raw: &WallParams) {
        let svg = wall_svg(data, raw);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        let num = |n: roxmltree::Node, a: &str| -> u32 { n.attribute(a).unwrap().parse().unwrap() };
        let root = doc.root_element();
        let (w, h) = (num(root, "width"), num(root, "height"));
        assert!(
            (100..=2000).contains(&w) && (1..=MAX_WALL_HEIGHT).contains(&h),
            "{raw:?}"
        );
        for n in doc
            .descendants()
            .filter(|n| matches!(n.tag_name().name(), "image" | "rect"))
        {
            let (x, y) = (num(n, "x"), num(n, "y"));
            let (nw, nh) = (num(n, "width"), num(n, "height"));
            assert!(nw > 0 && nh > 0, "{raw:?}");
            assert!(x + nw <= w && y + nh <= h, "{raw:?}: {n:?} outside {w}x{h}");
        }
    }

    #[test]
    fn an_empty_wall_and_the_panicking_request_rasterise() {
        let data = data_with_sponsors();
        let mut empty = data.clone();
        empty.sponsor_groups.clear();
        let panicked = WallParams::normalised(None, Some(100), None, Some(256), Some(50));
        for (data, p) in [(&empty, WallParams::default()), (&data, panicked)] {
            let png = crate::render::png::rasterize(&wall_svg(data, &p)).unwrap();
            let img = image::load_from_memory(&png).unwrap();
            assert_eq!(img.width(), p.width);
            assert!(img.height() > 0);
        }
    }
}
