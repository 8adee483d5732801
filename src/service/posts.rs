//! The bot's thank-you and milestone posts (opt-in: `mastodon.bot_token`
//! and `mastodon.posts`). Each is a `PostStatus` task queued with the change
//! that causes it; the task renders the text from `templates/posts/` and
//! posts it once: the posts table remembers each key, and Mastodon's
//! `Idempotency-Key` (the same key) covers a crash between the two.

use include_dir::{Dir, include_dir};
use minijinja::{AutoEscape, Environment};
use serde_json::{Value, json};

use crate::{
    config::Settings,
    context::{Context, Effects},
    domain::{
        fediverse::Post,
        money::{Currency, Money},
        month::Month,
    },
    error::{Error, Result},
    fediverse::statuses,
    queue::PostStatus,
    store::{self, Tx},
};

static POSTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/posts");

/// Queues the thank-you to a sponsor published on `on` (in the transaction
/// that published it).
pub async fn sponsor_published(
    tx: &mut Tx,
    settings: &Settings,
    sponsor_id: i64,
    on: chrono::NaiveDate,
) -> Result<()> {
    queue(tx, settings, Post::Sponsor { sponsor_id, on }).await
}

/// Queues the thank-you to a patron whose support starts, if they linked an
/// account and agreed to be mentioned (once per patron, ever). Where no
/// settings are at hand (Stripe's events), the task itself checks that
/// such posts are on.
pub async fn patron_started(tx: &mut Tx, supporter_id: i64) -> Result<()> {
    if !store::fediverse::wants_mention(tx, supporter_id).await? {
        return Ok(());
    }
    tx.enqueue(&PostStatus {
        post: Post::Patron { supporter_id },
    })
    .await
}

/// Queues the post saying the monthly goal was reached in `month` (once
/// per month and goal), in the transaction that records the milestone
/// (`service::milestones::check_goal`). Queued whatever the settings: the
/// task drops it when goal posts are off, and a goal is reached rarely.
pub async fn goal_reached(tx: &mut Tx, month: Month, goal: Money) -> Result<()> {
    let post = Post::Goal {
        month: month.to_string(),
        goal_minor: goal.amount_minor,
        currency: goal.currency.code().to_owned(),
    };
    tx.enqueue(&PostStatus { post }).await
}

/// Queues the summary of `month` (the monthly job).
pub async fn monthly_summary(ctx: &Context, month: Month) -> Result<bool> {
    if !ctx.settings.mastodon.posts("monthly") {
        return Ok(false);
    }
    let mut tx = ctx.db.begin_write().await?;
    queue(
        &mut tx,
        &ctx.settings,
        Post::Monthly {
            month: month.to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.after_commit(Effects::TASKS);
    Ok(true)
}

/// Records whether a sponsor allowed its amount (its tier's price) in its
/// thank-you post; off unless it did.
pub async fn set_amount_in_posts(
    ctx: &Context,
    actor: &store::audit::Actor,
    sponsor_id: i64,
    allowed: bool,
) -> Result<()> {
    if store::fediverse::set_amount_in_posts(&ctx.db, actor, sponsor_id, allowed).await? {
        Ok(())
    } else {
        Err(Error::NotFound("sponsor"))
    }
}

async fn queue(tx: &mut Tx, settings: &Settings, post: Post) -> Result<()> {
    if !settings.mastodon.posts(post.kind()) {
        return Ok(());
    }
    tx.enqueue(&PostStatus { post }).await
}

/// The task: renders and posts, once per key. A post whose subject is gone
/// (a patron who unlinked, a sponsor deleted) is dropped, not retried.
pub async fn send(ctx: &Context, post: &Post) -> Result<Effects> {
    let settings = &ctx.settings;
    if !settings.mastodon.posts(post.kind()) {
        tracing::info!(key = %post.key(), "posts of this kind are off; dropped");
        return Ok(Effects::NONE);
    }
    let key = post.key();
    if store::fediverse::posted(&ctx.db, &key).await? {
        return Ok(Effects::NONE);
    }
    let instance = settings
        .mastodon_instance()
        .ok_or_else(|| Error::Config("mastodon.bot_token is set but no instance URL".into()))?;
    let Some(context) = context(ctx, post).await? else {
        tracing::info!(%key, "nothing to post any more; dropped");
        return Ok(Effects::NONE);
    };
    let text = render(settings, post.kind(), &context)?;
    let made = statuses::post(
        &crate::fediverse::oauth::client()?,
        &instance,
        &settings.mastodon.bot_token,
        &key,
        &text,
        settings.mastodon.post_visibility,
    )
    .await?;
    store::fediverse::record_post(&ctx.db, &key, &made.id, made.url.as_deref()).await?;
    tracing::info!(%key, status = %made.id, "posted");
    Ok(Effects::NONE)
}

/// What the post's template is given; None when there is nothing to say.
async fn context(ctx: &Context, post: &Post) -> Result<Option<Value>> {
    let data = ctx.public.current().data.clone();
    let base = json!({
        "name": data.name, "support_url": data.support_url(), "site_url": data.site_url,
    });
    let extra = match post {
        Post::Sponsor { sponsor_id, .. } => {
            let Some(s) = store::fediverse::sponsor_for_post(&ctx.db, *sponsor_id).await? else {
                return Ok(None);
            };
            // Never an amount unless the sponsor allowed it.
            let amount = match (s.amount_in_posts, s.amount_minor, s.currency.as_deref()) {
                (true, Some(minor), Some(code)) => {
                    Currency::parse(code).map(|c| Money::new(minor, c).display())
                }
                _ => None,
            };
            json!({
                "sponsor_name": s.name, "sponsor_url": s.website_url, "tier_name": s.tier_name,
                "amount": amount, "interval": if amount_shown(&s) { s.interval } else { None },
            })
        }
        Post::Patron { supporter_id } => {
            let Some(p) = store::fediverse::patron_for_post(&ctx.db, *supporter_id).await? else {
                return Ok(None);
            };
            match p.acct {
                Some(acct) if p.mention && p.active_pledges > 0 => json!({"acct": acct}),
                _ => return Ok(None),
            }
        }
        Post::Goal {
            month,
            goal_minor,
            currency,
        } => {
            let goal = Currency::parse(currency).map(|c| Money::new(*goal_minor, c).display());
            json!({"month": month, "goal": goal, "headline": data.headline()})
        }
        Post::Monthly { month } => json!({
            "month": month, "headline": data.headline(), "goal_line": data.goal_line(),
        }),
    };
    let mut context = base;
    if let (Some(c), Value::Object(e)) = (context.as_object_mut(), extra) {
        c.extend(e);
    }
    Ok(Some(context))
}

fn amount_shown(s: &store::fediverse::SponsorForPost) -> bool {
    s.amount_in_posts && s.amount_minor.is_some()
}

/// The text of a post: `<data_dir>/posts/<kind>.txt` when the admin put one
/// there, else the built-in `templates/posts/<kind>.txt`. Plain text, not
/// escaped (Mastodon does not read HTML in a status); at most
/// `mastodon.post_max_characters`.
pub fn render(settings: &Settings, kind: &str, context: &Value) -> Result<String> {
    let file = format!("{kind}.txt");
    let local = settings.server.data_dir.join("posts").join(&file);
    let source = match std::fs::read_to_string(&local) {
        Ok(text) => text,
        Err(_) => POSTS
            .get_file(&file)
            .and_then(|f| f.contents_utf8())
            .ok_or_else(|| Error::internal(format!("no post template {file}")))?
            .to_owned(),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let text = env
        .render_str(&source, minijinja::value::Serde(context))
        .map_err(|e| Error::internal(format!("post template {file}: {e:#}")))?;
    Ok(fit(text.trim(), settings.mastodon.post_max_characters))
}

/// `text` in at most `max` characters: cut at a word's end with "…" when
/// longer (in the second half, else mid-word), so no link is half kept.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max.saturating_sub(1)).collect();
    let end = head
        .rfind(char::is_whitespace)
        .filter(|at| head[..*at].chars().count() >= max / 2)
        .unwrap_or(head.len());
    format!("{}…", head[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_post_is_cut_at_a_word_within_the_limit() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(
            fit("many thanks to you https://example.org/long", 25),
            "many thanks to you…"
        );
        let cut = fit(&"word ".repeat(200), 500);
        assert!(
            cut.chars().count() <= 500 && cut.ends_with("word…"),
            "{cut}"
        );
        // One long word: cut inside it rather than post nothing.
        assert_eq!(fit(&"x".repeat(30), 10), format!("{}…", "x".repeat(9)));
        assert_eq!(fit("Grüße an alle Patrons", 12), "Grüße an…");
    }

    #[test]
    fn every_post_renders_without_an_amount_unless_given() {
        let settings = Settings::defaults();
        let base = json!({"name": "Example Social", "support_url": "https://fund.example/support", "site_url": "https://fund.example"});
        let mut sponsor = base.clone();
        sponsor.as_object_mut().unwrap().extend(
            json!({"sponsor_name": "ACME", "sponsor_url": "https://acme.example", "tier_name": "Gold", "amount": null, "interval": null})
                .as_object()
                .unwrap()
                .clone(),
        );
        let text = render(&settings, "sponsor", &sponsor).unwrap();
        assert!(
            text.contains("ACME") && text.contains("https://acme.example"),
            "{text}"
        );
        assert!(!text.contains('€') && !text.contains("None"), "{text}");
        sponsor["amount"] = json!("€500.00");
        sponsor["interval"] = json!("year");
        assert!(
            render(&settings, "sponsor", &sponsor)
                .unwrap()
                .contains("€500.00")
        );
        let mut patron = base.clone();
        patron["acct"] = json!("ann@example.social");
        assert!(
            render(&settings, "patron", &patron)
                .unwrap()
                .contains("@ann@example.social")
        );
        let mut goal = base.clone();
        goal["month"] = json!("2026-12");
        goal["goal"] = json!("€1,000.00");
        goal["headline"] = json!("3 patrons contribute €1,200.00 a month");
        assert!(
            render(&settings, "goal", &goal)
                .unwrap()
                .contains("€1,000.00")
        );
        let mut monthly = base;
        monthly["month"] = json!("2026-11");
        monthly["headline"] = json!("3 patrons contribute €1,200.00 a month");
        monthly["goal_line"] = json!(null);
        assert!(
            render(&settings, "monthly", &monthly)
                .unwrap()
                .contains("2026-11")
        );
    }
}
