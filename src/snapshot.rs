//! The public snapshot: every public response pre-rendered as bytes with its
//! ETag, swapped atomically. Requests never touch the database.
//!
//! Staleness bound: an admin's write on this replica refreshes the snapshot
//! before its response is sent; a webhook's within about 100 ms after.
//! Other replicas on PostgreSQL hear of the commit (`store::notify`) and
//! rebuild at once; a notice lost while their connection was down is made
//! up by the poll of the database's `data_version` every
//! `public.snapshot_poll_secs`. Every replica rebuilds at least once a
//! minute, so month and expiry boundaries pass too.
//! A sponsor whose paid period plus grace ends at midnight UTC therefore
//! leaves every public view by 00:01 UTC at the latest (plus the clients'
//! `public.cache_max_age_secs`).
//!
//! Besides the JSON API it holds every public page and image (see
//! `crate::render`): the support page, the embed in two themes, the badges,
//! the default sponsor wall, funding.json, the Mastodon campaign and the
//! approved logos. Sponsor walls with other parameters and the PNG images
//! are rendered on first request from the snapshot's own data and cached in
//! it (at most `MAX_CACHED_BYTES`), so no request ever reads the database.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex, OnceLock},
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use axum::{body::Bytes, http::HeaderValue};
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::{
    config::Settings,
    domain::{
        funding::{Funding, FundingFacts},
        logo::LogoVariant,
        money::{Money, MoneyView},
        tier::{Interval, TierKind},
        transparency::Period,
    },
    error::Result,
    render::{
        self, LogoImage, PublicData, SponsorGroup, WallSponsor,
        campaign::Campaign,
        page,
        svg::{self, WallParams},
    },
    service::transparency::{self as report, ReportCache},
    store::{self, Db, logos::PublicLogoRow, supporters::PublicSponsorRow, tiers::TierRow},
};

/// Most bytes of sponsor-wall renders (SVG and PNG) kept per snapshot.
pub const MAX_CACHED_BYTES: usize = 16 * 1024 * 1024;

/// The cache key of a `?tier=` that names no tier: never a slug or an id.
const NO_SUCH_TIER: &str = "#none";

#[derive(Default)]
struct WallCache {
    renders: HashMap<(WallParams, bool), Rendered>,
    bytes: usize,
}

const MAX_AGE: Duration = Duration::from_secs(60);

/// One pre-rendered body with its type.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// A strong ETag, quoted.
    pub etag: String,
    pub content_type: &'static str,
}

impl Rendered {
    pub fn json<T: Serialize>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serialisable");
        Self::bytes(body, "application/json")
    }

    pub fn bytes(body: impl Into<Bytes>, content_type: &'static str) -> Self {
        let body = body.into();
        let digest = Sha256::digest(&body);
        Rendered {
            etag: format!("\"{}\"", hex::encode(&digest[..12])),
            body,
            content_type,
        }
    }

    pub fn html(body: String) -> Self {
        Self::bytes(body, "text/html; charset=utf-8")
    }

    pub fn svg(body: String) -> Self {
        Self::bytes(body, "image/svg+xml")
    }
}

/// The campaign's answers, by locale and variant.
pub type CampaignViews = HashMap<(String, usize), Rendered>;

/// The transparency report in each form, per period.
#[derive(Debug)]
pub struct TransparencyViews {
    pub monthly: TransparencyForms,
    pub quarterly: TransparencyForms,
}

#[derive(Debug)]
pub struct TransparencyForms {
    pub html: Rendered,
    pub json: Rendered,
    pub csv: Rendered,
    pub markdown: Rendered,
}

impl TransparencyViews {
    pub fn of(&self, period: Period) -> &TransparencyForms {
        match period {
            Period::Month => &self.monthly,
            Period::Quarter => &self.quarterly,
        }
    }
}

/// A badge as SVG and as shields.io endpoint JSON.
#[derive(Debug)]
pub struct BadgeViews {
    pub svg: Rendered,
    pub json: Rendered,
}

pub struct Snapshot {
    pub funding: Rendered,
    pub tiers: Rendered,
    pub sponsors: Rendered,
    pub support_page: Rendered,
    pub embed_light: Rendered,
    pub embed_dark: Rendered,
    /// The embed's "costs covered" variant (`?show=costs`).
    pub embed_costs_light: Rendered,
    pub embed_costs_dark: Rendered,
    pub badges: HashMap<&'static str, BadgeViews>,
    pub funding_manifest: Rendered,
    /// The transparency report by month and by quarter.
    pub transparency: TransparencyViews,
    /// Per locale, the campaign's variants; None when no campaign is set.
    pub campaign: Option<(Campaign, CampaignViews)>,
    /// The embed's Content-Security-Policy (with `frame-ancestors`).
    pub embed_csp: HeaderValue,
    /// `public, max-age=<public.cache_max_age_secs>`.
    pub cache_control: HeaderValue,
    /// Approved logos of public sponsors, by content hash.
    pub logos: HashMap<String, LogoImage>,
    /// What the views were rendered from, for walls with other parameters.
    pub data: Arc<PublicData>,
    walls: StdMutex<WallCache>,
    card: OnceLock<Rendered>,
    /// Whether checkout works, and the sponsor tiers sold out: what the
    /// support page needs to be rendered again with a visitor's choice.
    payments: bool,
    sold_out: Vec<i64>,
    /// The data version it was built at (`Db::data_version`).
    pub version: i64,
    /// When the build began reading: a snapshot reflects every write
    /// committed before this instant.
    started: Instant,
    built: Instant,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The sponsor wall for `params`, as SVG or (`png`) rasterised; cached.
    /// Rendering a PNG takes milliseconds, so callers on the async runtime
    /// should run it on a bounded pool (`HeavyPools::walls`).
    pub fn wall(&self, params: &WallParams, png: bool) -> Rendered {
        let key = (self.wall_key(params), png);
        if let Some(r) = self.walls.lock().expect("not poisoned").renders.get(&key) {
            return r.clone();
        }
        let svg = svg::wall_svg(&self.data, &key.0);
        let rendered = if png {
            match render::png::rasterize(&svg) {
                Ok(bytes) => Rendered::bytes(bytes, "image/png"),
                Err(e) => {
                    tracing::error!(error = %e, "sponsor wall PNG failed");
                    Rendered::svg(svg)
                }
            }
        } else {
            Rendered::svg(svg)
        };
        let mut walls = self.walls.lock().expect("not poisoned");
        let size = rendered.body.len();
        if walls.bytes + size <= MAX_CACHED_BYTES
            && walls.renders.insert(key, rendered.clone()).is_none()
        {
            walls.bytes += size;
        }
        rendered
    }

    /// The wall for `params` if it is already rendered.
    pub fn cached_wall(&self, params: &WallParams, png: bool) -> Option<Rendered> {
        let key = (self.wall_key(params), png);
        self.walls
            .lock()
            .expect("not poisoned")
            .renders
            .get(&key)
            .cloned()
    }

    /// `params` as the cache knows them: walls that look the same share a
    /// key (a tier nobody has, a limit above the sponsors shown).
    fn wall_key(&self, params: &WallParams) -> WallParams {
        let mut p = params.clone().bounded();
        let matches = |g: &&SponsorGroup| match &p.tier {
            None => true,
            Some(t) => g.tier_slug == *t || g.tier_id.to_string() == *t,
        };
        let shown: usize = self
            .data
            .sponsor_groups
            .iter()
            .filter(matches)
            .map(|g| g.sponsors.len())
            .sum();
        if p.tier.is_some() && shown == 0 {
            p.tier = Some(NO_SUCH_TIER.to_owned());
        }
        p.limit = p.limit.min(shown.max(1));
        p
    }

    /// The 1200×630 link-preview card, rendered once per snapshot.
    pub fn card(&self) -> Rendered {
        self.card
            .get_or_init(|| {
                let svg = svg::card_svg(&self.data);
                match render::png::rasterize(&svg) {
                    Ok(bytes) => Rendered::bytes(bytes, "image/png"),
                    Err(e) => {
                        tracing::error!(error = %e, "card PNG failed");
                        Rendered::svg(svg)
                    }
                }
            })
            .clone()
    }

    /// The support page with a visitor's choice pre-selected (the amount and
    /// frequency Mastodon's apps put in `donation_url`) and their return
    /// URLs carried into the forms. Rendered per request, from the
    /// snapshot's own data.
    pub fn support_page_with(&self, prefill: &page::Prefill) -> String {
        page::support_page(
            &self.data,
            self.payments,
            |id| self.sold_out.contains(&id),
            prefill,
        )
    }

    pub fn has_card(&self) -> bool {
        self.card.get().is_some()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTier {
    pub id: i64,
    pub kind: TierKind,
    pub name: String,
    pub description: String,
    pub amount: MoneyView,
    pub interval: Interval,
    /// Pay what you want, from this amount; null for a fixed price.
    pub pay_what_you_want_min: Option<MoneyView>,
    pub slots: Option<i64>,
    pub sold_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTierList {
    pub tiers: Vec<PublicTier>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsor {
    pub name: String,
    pub url: String,
    pub tier: PublicSponsorTier,
    /// The approved logo, served by patronage itself; null without one.
    pub logo: Option<PublicLogo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicLogo {
    /// A path on this server, e.g. `/logos/<sha256>.png`.
    pub url: String,
    pub alt: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsorTier {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicSponsorList {
    pub sponsors: Vec<PublicSponsor>,
}

async fn build(
    db: &Db,
    settings: &Settings,
    payments: bool,
    memo: &ReportCache,
) -> Result<Snapshot> {
    // Read the version first: a write landing mid-build bumps it again, so
    // the next poll rebuilds rather than keeping a half-old snapshot.
    let started = Instant::now();
    let version = db.data_version().await?;
    let today = Utc::now().date_naive();
    let grace = settings.sponsors.grace_days;
    let facts = store::funding::facts(db, today, grace).await?;
    let campaign = store::campaign::get(db).await?;
    let tiers = store::tiers::list(db, false).await?;
    let sponsors = store::supporters::public_sponsors(db, today, grace).await?;
    let logo_rows = store::logos::public(db, today, grace).await?;
    let patron_names = store::supporters::public_patron_names(db, 1000).await?;

    let sold_out_ids = sold_out_tiers(&tiers, &facts);
    let sold_out = |id: i64| sold_out_ids.contains(&id);
    let public_tiers = public_tiers(&tiers, sold_out);
    let (logos, logo_of) = logo_images(logo_rows);
    let public_sponsors = public_sponsors(&sponsors, &logo_of);
    let groups = sponsor_groups(&sponsors, &logo_of);
    let funding = Funding::from_facts(&facts, settings.pages.privacy_threshold);
    let reports = report::reports(
        db,
        memo,
        today,
        settings.pages.privacy_threshold,
        settings.costs.runway_target_months,
        funding.monthly_recurring.as_ref().map(|m| m.amount_minor),
    )
    .await?;
    let data = Arc::new(PublicData {
        name: campaign.name.clone(),
        description: campaign.description.clone(),
        currency: campaign.currency,
        site_url: render::site_url(settings, campaign.public_base_url.as_deref()),
        instance_url: settings
            .pages
            .instance_url
            .trim()
            .trim_end_matches('/')
            .to_owned(),
        rel_me: settings.pages.rel_me.trim().to_owned(),
        funding: funding.clone(),
        tiers,
        sponsor_groups: groups,
        patron_names,
        sponsor_rel: render::sponsor_rel(settings.sponsors.nofollow),
        costs: reports.0.costs_covered(),
    });

    let transparency = TransparencyViews {
        monthly: transparency_forms(&data, &reports.0)?,
        quarterly: transparency_forms(&data, &reports.1)?,
    };

    let snapshot = Snapshot {
        transparency,
        funding: Rendered::json(&funding),
        tiers: Rendered::json(&public_tiers),
        sponsors: Rendered::json(&public_sponsors),
        support_page: Rendered::html(page::support_page(
            &data,
            payments,
            sold_out,
            &page::Prefill::default(),
        )),
        embed_light: Rendered::html(page::embed(&data, page::LIGHT)),
        embed_dark: Rendered::html(page::embed(&data, page::DARK)),
        embed_costs_light: Rendered::html(page::embed_costs(&data, page::LIGHT)),
        embed_costs_dark: Rendered::html(page::embed_costs(&data, page::DARK)),
        badges: badge_views(&data, settings.public.cache_max_age_secs),
        funding_manifest: Rendered::json(&render::manifest::funding_json(&data, &settings.pages)),
        campaign: campaign_views(&data, settings),
        embed_csp: HeaderValue::from_str(&render::embed_csp(&settings.pages))
            .unwrap_or(HeaderValue::from_static("frame-ancestors 'none'")),
        cache_control: HeaderValue::from_str(&format!(
            "public, max-age={}",
            settings.public.cache_max_age_secs
        ))
        .expect("ascii"),
        logos,
        walls: StdMutex::new(WallCache::default()),
        data,
        card: OnceLock::new(),
        payments,
        sold_out: sold_out_ids,
        version,
        started,
        built: Instant::now(),
    };
    // The default wall is the one embedded everywhere: render it now.
    snapshot.wall(&WallParams::default(), false);
    Ok(snapshot)
}

/// One report in every form.
fn transparency_forms(data: &PublicData, t: &report::Transparency) -> Result<TransparencyForms> {
    Ok(TransparencyForms {
        html: Rendered::html(render::transparency::html(data, t)?),
        json: Rendered::json(t),
        csv: Rendered::bytes(render::transparency::csv(t)?, "text/csv; charset=utf-8"),
        markdown: Rendered::bytes(
            render::transparency::markdown(data, t)?,
            "text/markdown; charset=utf-8",
        ),
    })
}

/// Tiers whose slots are all taken.
fn sold_out_tiers(tiers: &[TierRow], facts: &FundingFacts) -> Vec<i64> {
    let taken = |id: i64| {
        facts
            .tiers
            .iter()
            .find(|t| t.id == id)
            .map_or(0, |t| t.supporters)
    };
    tiers
        .iter()
        .filter(|t| t.slots.is_some_and(|s| taken(t.id) >= s))
        .map(|t| t.id)
        .collect()
}

fn public_tiers(tiers: &[TierRow], sold_out: impl Fn(i64) -> bool) -> PublicTierList {
    PublicTierList {
        tiers: tiers
            .iter()
            .map(|t| PublicTier {
                id: t.id,
                kind: t.kind,
                name: t.name.clone(),
                description: t.description.clone(),
                amount: Money::new(t.amount_minor, t.currency).view(),
                interval: t.interval,
                pay_what_you_want_min: t.pwyw_min_minor.map(|m| Money::new(m, t.currency).view()),
                slots: t.slots,
                sold_out: sold_out(t.id),
            })
            .collect(),
    }
}

type LogoOf = HashMap<(i64, LogoVariant), LogoImage>;

/// The public logos by content hash (what `/logos/{sha}.png` serves), and
/// by sponsor and variant.
fn logo_images(rows: Vec<PublicLogoRow>) -> (HashMap<String, LogoImage>, LogoOf) {
    let mut logos = HashMap::new();
    let mut logo_of = HashMap::new();
    for row in rows {
        let image = LogoImage::new(
            row.sha256,
            u32::try_from(row.width).unwrap_or(0),
            u32::try_from(row.height).unwrap_or(0),
            row.alt_text,
            row.bytes,
        );
        logos.insert(image.sha256.clone(), image.clone());
        logo_of.insert((row.supporter_id, row.variant), image);
    }
    (logos, logo_of)
}

fn public_sponsors(sponsors: &[PublicSponsorRow], logo_of: &LogoOf) -> PublicSponsorList {
    PublicSponsorList {
        sponsors: sponsors
            .iter()
            .map(|s| PublicSponsor {
                name: s.display_name.clone(),
                url: s.website_url.clone(),
                tier: PublicSponsorTier {
                    id: s.tier_id,
                    name: s.tier_name.clone(),
                },
                logo: logo_of
                    .get(&(s.id, LogoVariant::Light))
                    .map(|l| PublicLogo {
                        url: l.path(),
                        alt: l.alt.clone(),
                        width: l.width,
                        height: l.height,
                    }),
            })
            .collect(),
    }
}

/// Sponsors grouped by tier for the wall, the tier that pays most first.
fn sponsor_groups(sponsors: &[PublicSponsorRow], logo_of: &LogoOf) -> Vec<SponsorGroup> {
    let mut groups: Vec<SponsorGroup> = Vec::new();
    let mut ordered = sponsors.to_vec();
    ordered.sort_by_key(|s| {
        (
            std::cmp::Reverse(render::tier_weight(s.tier_amount_minor, s.tier_interval)),
            s.tier_rank,
            s.tier_id,
            s.id,
        )
    });
    for s in ordered {
        let sponsor = WallSponsor {
            id: s.id,
            name: s.display_name.clone(),
            url: s.website_url.clone(),
            light: logo_of.get(&(s.id, LogoVariant::Light)).cloned(),
            dark: logo_of.get(&(s.id, LogoVariant::Dark)).cloned(),
        };
        match groups.last_mut() {
            Some(g) if g.tier_id == s.tier_id => g.sponsors.push(sponsor),
            _ => groups.push(SponsorGroup {
                tier_id: s.tier_id,
                tier_name: s.tier_name.clone(),
                tier_slug: render::slug(&s.tier_name),
                size_rank: groups.len(),
                sponsors: vec![sponsor],
            }),
        }
    }
    groups
}

fn badge_views(data: &PublicData, cache_secs: u32) -> HashMap<&'static str, BadgeViews> {
    svg::BADGES
        .iter()
        .filter_map(|name| {
            let b = svg::badge(data, name)?;
            Some((
                *name,
                BadgeViews {
                    svg: Rendered::svg(svg::badge_svg(&b)),
                    json: Rendered::json(&svg::badge_json(&b, cache_secs)),
                },
            ))
        })
        .collect()
}

/// Mastodon's donation campaign, and each of its variants rendered.
fn campaign_views(data: &PublicData, settings: &Settings) -> Option<(Campaign, CampaignViews)> {
    Campaign::build(data, &settings.pages.mastodon).map(|c| {
        let rendered = c
            .by_locale
            .iter()
            .flat_map(|(locale, variants)| {
                variants
                    .iter()
                    .enumerate()
                    .map(move |(i, v)| ((locale.clone(), i), Rendered::json(v)))
            })
            .collect();
        (c, rendered)
    })
}

pub struct PublicCache {
    db: Db,
    settings: Settings,
    payments: bool,
    current: ArcSwap<Snapshot>,
    rebuilding: Mutex<()>,
    /// The transparency reports, kept between builds.
    memo: ReportCache,
    /// Signalled by writers that need not wait for the rebuild (webhooks).
    dirty: tokio::sync::Notify,
    /// Signalled when another replica says the data changed.
    changed: tokio::sync::Notify,
}

/// How long the poller gathers signals before rebuilding once for all.
const DEBOUNCE: Duration = Duration::from_millis(100);

impl PublicCache {
    /// `payments`: whether checkout works (the support page shows its forms).
    pub async fn new(db: Db, settings: Settings, payments: bool) -> Result<Self> {
        let memo = ReportCache::default();
        let first = build(&db, &settings, payments, &memo).await?;
        Ok(PublicCache {
            db,
            settings,
            payments,
            current: ArcSwap::from_pointee(first),
            rebuilding: Mutex::new(()),
            memo,
            dirty: tokio::sync::Notify::new(),
            changed: tokio::sync::Notify::new(),
        })
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot without counting a reference: for a glance
    /// per request, not to keep.
    pub fn peek(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Rebuilds now. Concurrent callers wait for one rebuild that started
    /// after their write, rather than each building their own.
    pub async fn refresh(&self) -> Result<()> {
        let requested = Instant::now();
        let _guard = self.rebuilding.lock().await;
        // Only a build that began reading after the request saw its write.
        if self.current.load().started > requested {
            return Ok(());
        }
        let next = build(&self.db, &self.settings, self.payments, &self.memo).await?;
        self.current.store(Arc::new(next));
        metrics::counter!("patronage_snapshot_rebuilds_total").increment(1);
        Ok(())
    }

    /// Asks for a rebuild soon, without waiting for it: many changes in a
    /// burst cost one rebuild.
    pub fn mark_dirty(&self) {
        self.dirty.notify_one();
    }

    /// Another replica committed a change: look now, not at the next poll.
    pub fn refresh_now(&self) {
        self.changed.notify_one();
    }

    /// Rebuilds if another replica changed the data, or the snapshot is old.
    pub async fn refresh_if_stale(&self) -> Result<()> {
        let snapshot = self.current.load();
        let stale = snapshot.built.elapsed() >= MAX_AGE
            || self.db.data_version().await? != snapshot.version;
        if stale {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Polls for changes until the token is cancelled; also rebuilds on
    /// `mark_dirty` and `refresh_now`.
    pub fn spawn_poller(
        self: Arc<Self>,
        every: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = self.refresh_if_stale().await {
                            tracing::warn!(error = %e, "public snapshot refresh failed; serving the previous one");
                        }
                    }
                    _ = self.changed.notified() => {
                        if let Err(e) = self.refresh_if_stale().await {
                            tracing::warn!(error = %e, "public snapshot refresh failed; serving the previous one");
                        }
                        // At once for one change; a burst of them costs one
                        // rebuild per DEBOUNCE.
                        tokio::time::sleep(DEBOUNCE).await;
                    }
                    _ = self.dirty.notified() => {
                        tokio::time::sleep(DEBOUNCE).await;
                        if let Err(e) = self.refresh().await {
                            tracing::warn!(error = %e, "public snapshot refresh failed; serving the previous one");
                        }
                    }
                }
            }
        });
    }
}
