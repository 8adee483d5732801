//! Settings: `config/default.toml` (embedded in the binary, so it runs from any
//! directory), then an optional file, then `PATRONAGE__SECTION__KEY` variables.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use ipnet::IpNet;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::Error;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub public: PublicSettings,
    pub log: LogSettings,
    pub stripe: StripeSettings,
    pub mail: MailSettings,
    pub jobs: JobsSettings,
    pub queue: QueueSettings,
    pub sponsors: SponsorSettings,
    pub pages: PagesSettings,
    pub costs: CostsSettings,
    pub mastodon: MastodonSettings,
    pub webhooks: WebhooksSettings,
}

/// Outbound webhooks: which addresses endpoints may have, and how
/// deliveries behave.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSettings {
    /// Accept plain http:// endpoint URLs (for a receiver on the same host).
    pub allow_http: bool,
    /// Accept endpoints that resolve to loopback, link-local or private
    /// addresses (the SSRF guard is off).
    pub allow_private: bool,
    /// A delivery without a complete answer after this long failed.
    pub timeout_secs: u64,
    /// After a rotation, the previous secret signs too for this long.
    pub previous_secret_hours: i64,
    /// An endpoint whose deliveries all failed for this long, and at least
    /// `disable_after_failures` times in a row, is turned off and the
    /// owners are emailed.
    pub disable_after_hours: i64,
    pub disable_after_failures: i32,
}

/// The instance's own figures (active users), read with an admin token.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSettings {
    /// The instance's base URL; empty: `pages.instance_url`.
    pub instance_url: String,
    /// An access token with the `admin:read` scope; empty turns the
    /// instance figures off. Secret: never logged or shown.
    #[serde(serialize_with = "redact_secret")]
    pub admin_token: SecretString,
    /// Patrons may link an account on an instance they type (https, a
    /// public address), not only on this one.
    pub link_any_instance: bool,
    /// The bot account's access token (`write:statuses`); empty: no posts.
    /// Secret: never logged or shown.
    #[serde(serialize_with = "redact_secret")]
    pub bot_token: SecretString,
    /// Which posts the bot makes: "sponsor", "patron", "goal", "monthly".
    pub posts: Vec<String>,
    /// Who sees them: public, unlisted or private (followers only).
    pub post_visibility: crate::domain::fediverse::PostVisibility,
    /// The instance's limit on a post's length (Mastodon's default: 500).
    pub post_max_characters: usize,
    /// The role the role sync's `tootctl` lines give active supporters.
    pub role_sync_role: String,
    /// A command run by the daily role sync with the changes as JSON lines
    /// on stdin (argv, no shell); empty: none.
    pub role_sync_command: Vec<String>,
}

impl MastodonSettings {
    /// Whether the bot makes posts of this kind.
    pub fn posts(&self, kind: &str) -> bool {
        !self.bot_token.expose_secret().trim().is_empty() && self.posts.iter().any(|k| k == kind)
    }
}

impl Settings {
    /// The instance patronage is for: `mastodon.instance_url`, else
    /// `pages.instance_url`, without a trailing slash; None if neither.
    pub fn mastodon_instance(&self) -> Option<String> {
        let url = Some(self.mastodon.instance_url.trim())
            .filter(|u| !u.is_empty())
            .unwrap_or(self.pages.instance_url.trim());
        (!url.is_empty()).then(|| url.trim_end_matches('/').to_owned())
    }

    /// The instance whose measures are read, and the token, when both are
    /// set.
    pub fn mastodon_measures(&self) -> Option<(String, SecretString)> {
        let token = &self.mastodon.admin_token;
        if token.expose_secret().trim().is_empty() {
            return None;
        }
        let url = Some(self.mastodon.instance_url.trim())
            .filter(|u| !u.is_empty())
            .unwrap_or(self.pages.instance_url.trim());
        (!url.is_empty()).then(|| (url.trim_end_matches('/').to_owned(), token.clone()))
    }
}

/// Costs: what the runway is measured against.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostsSettings {
    /// Months of runway the instance aims to keep (1 to 120).
    pub runway_target_months: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

/// Addresses and CIDR ranges of reverse proxies we run. Empty: the peer is
/// the client and `X-Forwarded-For` is ignored. In TOML a list; in the
/// environment a comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| {
                let item = item.as_ref().trim();
                item.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            Text(String),
        }
        let items = match Raw::deserialize(d)? {
            Raw::List(items) => items,
            Raw::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        TrustedProxies::parse(&items).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|net| net.to_string()))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, so it is redacted when printed.
    #[serde(serialize_with = "redact_url_password")]
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(serialize_with = "redact_secret")]
    pub jwt_secret: SecretString,
    pub token_ttl_secs: u64,
    pub issuer: String,
    pub audience: String,
    pub login_attempts_per_ip_per_minute: u32,
    /// Attempts on one account from one client.
    pub login_attempts_per_account_per_minute: u32,
    /// Attempts on one account from every client together.
    pub login_attempts_per_account_all_clients_per_minute: u32,
    /// Password hashes computed at once; 0 means one per core.
    pub password_hashes_at_once: usize,
    /// Logins that may wait for a hash; more are answered 503.
    pub password_hash_queue: usize,
    pub setup_token_ttl_hours: i64,
    /// A console session ends after this long unused...
    pub session_idle_minutes: i64,
    /// ...and this long after sign-in in any case.
    pub session_max_hours: i64,
    pub mastodon: MastodonSignIn,
}

/// "Sign in with Mastodon" for the console.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonSignIn {
    /// The instance whose accounts may sign in, e.g. https://example.social;
    /// empty turns it off. Only accounts linked to an admin get in...
    pub instance_url: String,
    /// ...unless the owner opts in here: "viewer" or "owner" makes an
    /// account holding the instance's Administrator permission an admin of
    /// that role at its first sign-in. Empty (the default) is off.
    #[serde(default)]
    pub administrators_as: String,
}

impl MastodonSignIn {
    /// The role given to the instance's administrators, when opted in.
    pub fn administrators_role(&self) -> Option<crate::auth::Role> {
        crate::auth::Role::parse(&self.administrators_as)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicSettings {
    pub cache_max_age_secs: u32,
    pub snapshot_poll_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    #[serde(serialize_with = "redact_secret")]
    pub secret_key: SecretString,
    #[serde(serialize_with = "redact_secret")]
    pub webhook_secret: SecretString,
    pub api_base: String,
    pub success_url: String,
    pub cancel_url: String,
    pub portal_return_url: String,
    pub one_time_min_minor: i64,
    pub invoice_days_until_due: u32,
}

impl StripeSettings {
    /// The configured webhook secrets, in order.
    pub fn webhook_secrets(&self) -> Vec<String> {
        self.webhook_secret
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The task queue (`queue`): how often workers look, how long they hold a
/// task, and the one backoff policy for every retry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub enabled: bool,
    pub poll_secs: u64,
    pub lease_secs: u64,
    pub retry_base_secs: u64,
    pub max_retry_delay_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub from: String,
    pub magic_link_ttl_minutes: i64,
    pub email_link_ttl_hours: i64,
    pub default_locale: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: String,
    #[serde(serialize_with = "redact_secret")]
    pub smtp_password: SecretString,
    pub smtp_timeout_secs: u64,
    pub outbox_poll_secs: u64,
    pub outbox_lease_secs: u64,
    pub outbox_max_retry_delay_secs: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
    Memory,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// No encryption: only for a relay on the same host or network.
    None,
}

/// Sponsor publication: when a sponsor shows, which links are refused, and
/// what a logo may be.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SponsorSettings {
    /// Days a sponsor stays public after its paid period ends.
    pub grace_days: i64,
    /// Domains refused as sponsor links (subdomains included).
    pub domain_blocklist: Vec<String>,
    /// Add `nofollow` to sponsor links (they always carry `sponsored noopener`).
    pub nofollow: bool,
    /// Largest logo upload, in bytes.
    pub logo_max_bytes: usize,
    /// Logos are scaled down to fit this box, in pixels.
    pub logo_max_width: u32,
    pub logo_max_height: u32,
    /// Smallest accepted logo side, in pixels.
    pub logo_min_side: u32,
    /// Lifetime of the logo upload link sent to a sponsor, in hours.
    pub upload_link_ttl_hours: i64,
    /// Sponsor applications (checkout or the /support form) accepted per
    /// client address, and per contact email, in an hour; then 429.
    pub applications_per_ip_per_hour: u32,
    pub applications_per_email_per_hour: u32,
    /// Seconds between publication sweeps (audit entries for sponsors that
    /// appear or disappear as time passes).
    pub sweep_secs: u64,
}

/// The public pages, embeds and feeds for an about page.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagesSettings {
    /// Where patronage is reached from outside, e.g. https://fund.example.social.
    /// Empty: the campaign's public_base_url, else http://<server.bind>.
    pub site_url: String,
    /// The instance these pages are for, e.g. https://example.social.
    pub instance_url: String,
    /// Origins allowed to frame /embed/progress (Content-Security-Policy
    /// frame-ancestors). Empty: the instance URL only.
    pub frame_ancestors: Vec<String>,
    /// The admin's profile, linked with rel="me" from every page.
    pub rel_me: String,
    /// Below this many supporters, a tier's count (and below this many
    /// contributors, every money total) is not shown.
    pub privacy_threshold: i64,
    /// funding.json: who is funded.
    pub entity_type: String,
    pub entity_role: String,
    pub entity_email: String,
    /// funding.json: the project's repository, if any.
    pub repository_url: String,
    pub licenses: Vec<String>,
    pub tags: Vec<String>,
    /// Mastodon donation campaign (DONATION_CAMPAIGNS_URL); off when empty.
    pub mastodon: MastodonCampaign,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    pub enabled: bool,
    pub lease_secs: u64,
    pub catch_up_limit: u32,
    pub reconcile: String,
    pub sponsorships: String,
    pub funding_snapshot: String,
    pub monthly_report: String,
    pub cleanup: String,
    /// The role sync's daily look at linked patrons.
    pub fediverse_role_sync: String,
    /// The bot's monthly summary post.
    pub fediverse_summary: String,
    pub sponsor_reminder_days: i64,
    pub event_retention_days: i64,
    pub outbox_retention_days: i64,
    pub job_run_retention_days: i64,
}

impl JobsSettings {
    /// Each job's name and cron schedule.
    pub fn schedules(&self) -> [(&'static str, &str); 7] {
        [
            ("reconcile", &self.reconcile),
            ("sponsorships", &self.sponsorships),
            ("funding_snapshot", &self.funding_snapshot),
            ("monthly_report", &self.monthly_report),
            ("cleanup", &self.cleanup),
            ("fediverse_role_sync", &self.fediverse_role_sync),
            ("fediverse_summary", &self.fediverse_summary),
        ]
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonCampaign {
    /// A stable name for this campaign; empty means no campaign (204).
    pub campaign_id: String,
    pub default_locale: String,
    /// Suggested amounts, minor units of the campaign currency.
    pub one_time: Vec<i64>,
    pub monthly: Vec<i64>,
    pub yearly: Vec<i64>,
    /// Messages per locale; several variants per locale are picked by seed.
    pub messages: Vec<CampaignMessage>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct CampaignMessage {
    pub locale: String,
    pub banner_message: String,
    pub banner_button_text: String,
    pub donation_message: String,
    pub donation_button_text: String,
    pub donation_success_post: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, Error> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("PATRONAGE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| Error::Config(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Defaults only, for tests and tools that adjust fields in code.
    pub fn defaults() -> Self {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("config/default.toml is valid");
        settings
    }

    fn validate(&self) -> Result<(), Error> {
        let secret = self.auth.jwt_secret.expose_secret();
        if !secret.is_empty() && secret.len() < 32 {
            return Err(Error::Config(
                "auth.jwt_secret must be at least 32 characters (or empty to generate one)".into(),
            ));
        }
        if self.auth.token_ttl_secs == 0 || self.auth.token_ttl_secs > 24 * 3600 {
            return Err(Error::Config(
                "auth.token_ttl_secs must be between 1 and 86400".into(),
            ));
        }
        if self.auth.login_attempts_per_ip_per_minute == 0
            || self.auth.login_attempts_per_account_per_minute == 0
            || self.auth.login_attempts_per_account_all_clients_per_minute == 0
        {
            return Err(Error::Config("login attempt limits must be above 0".into()));
        }
        let mastodon = &self.auth.mastodon;
        if !mastodon.administrators_as.is_empty() && mastodon.administrators_role().is_none() {
            return Err(Error::Config(
                "auth.mastodon.administrators_as must be \"viewer\", \"owner\" or empty".into(),
            ));
        }
        if self.sponsors.applications_per_ip_per_hour == 0
            || self.sponsors.applications_per_email_per_hour == 0
        {
            return Err(Error::Config(
                "sponsor application limits must be above 0".into(),
            ));
        }
        if self.stripe.one_time_min_minor <= 0 {
            return Err(Error::Config(
                "stripe.one_time_min_minor must be above 0".into(),
            ));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Error::Config(
                "mail.from must be an address, e.g. \"Name <a@b.org>\"".into(),
            ));
        }
        if self.mail.transport == MailTransport::Smtp && self.mail.smtp_host.trim().is_empty() {
            return Err(Error::Config(
                "mail.smtp_host is required when mail.transport = \"smtp\"".into(),
            ));
        }
        if self.mail.outbox_poll_secs == 0 || self.mail.outbox_lease_secs == 0 {
            return Err(Error::Config(
                "mail.outbox_poll_secs and mail.outbox_lease_secs must be above 0".into(),
            ));
        }
        if self.queue.poll_secs == 0
            || self.queue.lease_secs == 0
            || self.queue.retry_base_secs == 0
        {
            return Err(Error::Config(
                "queue.poll_secs, queue.lease_secs and queue.retry_base_secs must be above 0"
                    .into(),
            ));
        }
        if self.jobs.lease_secs == 0 {
            return Err(Error::Config("jobs.lease_secs must be above 0".into()));
        }
        for (job, schedule) in self.jobs.schedules() {
            crate::domain::schedule::Schedule::parse(schedule)
                .map_err(|e| Error::Config(format!("jobs.{job}: {e}")))?;
        }
        if self.sponsors.grace_days < 0 || self.sponsors.sweep_secs == 0 {
            return Err(Error::Config(
                "sponsors.grace_days must be 0 or more and sponsors.sweep_secs above 0".into(),
            ));
        }
        let email = self.pages.entity_email.trim();
        if !email.is_empty() && email.parse::<lettre::Address>().is_err() {
            return Err(Error::Config(
                "pages.entity_email must be a plain address, e.g. \"funding@example.social\""
                    .into(),
            ));
        }
        if self.pages.privacy_threshold < 1 {
            return Err(Error::Config(
                "pages.privacy_threshold must be at least 1".into(),
            ));
        }
        if !(1..=120).contains(&self.costs.runway_target_months) {
            return Err(Error::Config(
                "costs.runway_target_months must be between 1 and 120".into(),
            ));
        }
        if self.webhooks.timeout_secs == 0 || self.webhooks.previous_secret_hours < 0 {
            return Err(Error::Config(
                "webhooks.timeout_secs must be above 0 and webhooks.previous_secret_hours 0 or more"
                    .into(),
            ));
        }
        let m = &self.mastodon;
        if !crate::domain::fediverse::is_role_name(&m.role_sync_role) {
            return Err(Error::Config(
                "mastodon.role_sync_role must be letters, digits, spaces, dashes or underscores"
                    .into(),
            ));
        }
        if !(100..=100_000).contains(&m.post_max_characters) {
            return Err(Error::Config(
                "mastodon.post_max_characters must be between 100 and 100000".into(),
            ));
        }
        if let Some(kind) = m
            .posts
            .iter()
            .find(|k| !["sponsor", "patron", "goal", "monthly"].contains(&k.as_str()))
        {
            return Err(Error::Config(format!(
                "mastodon.posts: {kind:?} is not one of sponsor, patron, goal, monthly"
            )));
        }
        if self.public.snapshot_poll_secs == 0 {
            return Err(Error::Config(
                "public.snapshot_poll_secs must be above 0".into(),
            ));
        }
        Ok(())
    }

    /// Settings that work but that a deployment probably wants to change;
    /// `config check` prints them.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.pages.entity_email.trim().is_empty() {
            out.push(
                "pages.entity_email is empty: /funding.json has no contact email, and the \
                 FLOSS/fund directory refuses a manifest without one"
                    .to_owned(),
            );
        }
        out
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        if self.database.url.trim().is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("patronage.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = self.database_url();
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn redact_secret<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    if secret.expose_secret().is_empty() {
        s.serialize_str("")
    } else {
        s.serialize_str("[redacted]")
    }
}

fn redact_url_password<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// A URL as it may be shown (`config check`, `migrate`, the `serve` log
/// line): the password in the user part and every query parameter that can
/// carry a credential (sqlx takes `?password=`, `sslpassword=`, ...) read
/// `redacted`. The only function that prints a database URL.
pub fn redact_url(raw: &str) -> String {
    const HIDDEN: &str = "redacted";
    let Ok(mut url) = url::Url::parse(raw.trim()) else {
        // We cannot tell where a password would be: show the scheme only.
        return match raw.split_once(':') {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}:[{HIDDEN}]")
            }
            _ => format!("[{HIDDEN}]"),
        };
    };
    let mut changed = false;
    if url.password().is_some() {
        changed |= url.set_password(Some(HIDDEN)).is_ok();
    }
    if url.query_pairs().any(|(name, _)| names_a_secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if names_a_secret(&name) {
                    HIDDEN.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if url.fragment().is_some() {
        url.set_fragment(Some(HIDDEN));
        changed = true;
    }
    if changed {
        url.to_string()
    } else {
        raw.to_owned()
    }
}

/// Whether a URL parameter may hold a credential: `password`,
/// `sslpassword`, `passfile`, `sslkey`, `token`, `secret`, ... Better one
/// harmless value too many hidden than one password shown.
fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "key",
        "token",
        "auth",
        "credential",
    ]
    .iter()
    .any(|w| name.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_with_sqlite_in_data_dir() {
        let s = Settings::defaults();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://data/patronage.db");
    }

    #[test]
    fn redacted_output_hides_secrets_and_passwords() {
        let mut s = Settings::defaults();
        s.auth.jwt_secret = SecretString::from("x".repeat(40));
        s.database.url = "postgres://app:hunter2@db/patronage".into();
        s.mastodon.admin_token = SecretString::from("mastodon-admin-token-42");
        let out = s.to_redacted_toml();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("mastodon-admin-token-42"), "{out}");
        // The Debug form (logs) hides it too.
        assert!(!format!("{s:?}").contains("mastodon-admin-token-42"));
        assert!(!out.contains(&"x".repeat(40)), "{out}");
        assert!(out.contains("[redacted]"));
    }

    #[test]
    fn instance_measures_need_a_token_and_an_instance() {
        let mut s = Settings::defaults();
        assert!(s.mastodon_measures().is_none(), "off by default");
        s.pages.instance_url = "https://example.social/".into();
        assert!(s.mastodon_measures().is_none(), "no token: off");
        s.mastodon.admin_token = SecretString::from("t");
        let (url, _) = s.mastodon_measures().unwrap();
        assert_eq!(url, "https://example.social");
        s.mastodon.instance_url = "https://other.example".into();
        assert_eq!(s.mastodon_measures().unwrap().0, "https://other.example");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges_from_toml_or_a_string() {
        let from = |toml: &str| -> Result<TrustedProxies, String> {
            #[derive(Deserialize)]
            struct S {
                p: TrustedProxies,
            }
            toml::from_str::<S>(toml)
                .map(|s| s.p)
                .map_err(|e| e.to_string())
        };
        let list = from(r#"p = ["127.0.0.1", "10.0.0.0/8", "::1"]"#).unwrap();
        assert!(list.contains("10.200.0.1".parse().unwrap()));
        assert!(list.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!list.contains("127.0.0.2".parse().unwrap()));
        let text = from(r#"p = "192.168.0.0/16, 2001:db8::/32""#).unwrap();
        assert!(text.contains("2001:db8:1::9".parse().unwrap()));
        assert!(from(r#"p = []"#).unwrap().is_empty());
        assert!(from(r#"p = ["proxy.example"]"#).is_err());
    }

    #[test]
    fn database_urls_never_show_a_credential_anywhere() {
        for (raw, shown) in [
            (
                "postgres://app:hunter2@db/patronage",
                "postgres://app:redacted@db/patronage",
            ),
            (
                "postgres://app@db/patronage?sslmode=require&password=hunter2",
                "postgres://app@db/patronage?sslmode=require&password=redacted",
            ),
            (
                "postgresql://db/p?PassWord=hunter2&sslpassword=hunter2&application_name=x",
                "postgresql://db/p?PassWord=redacted&sslpassword=redacted&application_name=x",
            ),
            (
                "postgres://app:hunter2@db/p?password=hunter2#hunter2",
                "postgres://app:redacted@db/p?password=redacted#redacted",
            ),
            (
                "postgres://db/p?pass%77ord=hunter2",
                "postgres://db/p?password=redacted",
            ),
            ("sqlite://data/patronage.db", "sqlite://data/patronage.db"),
            ("postgres://app:hun ter2@[db/p", "postgres:[redacted]"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
        }
        let mut s = Settings::defaults();
        s.database.url = "postgres://app@db/patronage?password=hunter2".into();
        assert!(!s.to_redacted_toml().contains("hunter2"));
    }
}
