//! Sponsor applications from strangers: the form and the API mail nobody
//! before the sponsorship is paid (or, on invoice terms, approved), are
//! limited per address and per email, and cannot be posted from another
//! site.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_stripe::{Delivery, FakeStripe};
use crate::helpers::{OWNER_EMAIL, TestApp, expect_json, expect_problem};

crate::with_stripe_on_both_backends!(@adjust (super::generous_limits)
    twenty_applications_mail_nobody_until_one_is_paid,
);
crate::with_stripe_on_both_backends!(@adjust (super::tight_limits)
    applications_are_limited_per_address_and_per_email,
);
crate::with_stripe_on_both_backends!(@adjust (super::public_site)
    the_support_form_refuses_posts_from_other_sites,
);

fn generous_limits(s: &mut patronage::config::Settings) {
    s.sponsors.applications_per_ip_per_hour = 100;
    s.sponsors.applications_per_email_per_hour = 100;
}

fn tight_limits(s: &mut patronage::config::Settings) {
    s.sponsors.applications_per_ip_per_hour = 4;
    s.sponsors.applications_per_email_per_hour = 2;
}

fn public_site(s: &mut patronage::config::Settings) {
    s.pages.site_url = "https://fund.example.social".into();
}

const VICTIM: &str = "victim@example.org";

async fn gold(app: &TestApp, owner: &str) -> i64 {
    app.create_tier(
        owner,
        json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

fn application(tier: i64, email: &str) -> Value {
    json!({"kind": "sponsor", "tier_id": tier, "email": email,
        "company_name": "Spam Inc", "website_url": "https://spam.example"})
}

async fn apply(app: &TestApp, body: Value) -> reqwest::Response {
    app.send(reqwest::Method::POST, "/api/v1/checkout", None, body)
        .await
}

/// Messages queued in the outbox, per (recipient, template).
async fn queued(app: &TestApp, recipient: &str, template: &str) -> i64 {
    patronage::db_run!(&app.db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND template = $2",
        )
        .bind(recipient)
        .bind(template)
        .fetch_one(pool)
        .await
        .unwrap()
    })
}

async fn queued_to(app: &TestApp, recipient: &str) -> i64 {
    patronage::db_run!(&app.db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE recipient = $1")
            .bind(recipient)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

async fn twenty_applications_mail_nobody_until_one_is_paid(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = gold(&app, &owner).await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let body = expect_json(apply(&app, application(tier, VICTIM)).await, StatusCode::OK).await;
        let url = body["checkout_url"].as_str().unwrap();
        sessions.push(url.rsplit('/').next().unwrap().to_owned());
    }
    // Emails are queued in the transaction of what causes them: nothing
    // queued now is nothing sent, ever.
    assert_eq!(queued_to(&app, VICTIM).await, 0, "nothing to the applicant");
    assert_eq!(
        queued_to(&app, OWNER_EMAIL).await,
        0,
        "nothing to the owner"
    );
    assert!(app.ctx.mailer.sent().await.is_empty());

    // One of them pays: now the applicant hears back, with the logo link,
    // and the owners learn there is a sponsor to review. Once each.
    fake.deliver(&fake.complete_checkout(&sessions[0]), Delivery::HOSTILE)
        .await;
    let confirmation = app
        .mails(
            |m| m.to == VICTIM && m.subject.starts_with("We received the sponsorship"),
            1,
        )
        .await;
    assert!(
        confirmation[0].link("/sponsor/logo?token=").is_some(),
        "{}",
        confirmation[0].text
    );
    app.mails(
        |m| m.to == OWNER_EMAIL && m.subject.starts_with("New sponsor application"),
        1,
    )
    .await;
    // A renewal while the owners have not decided yet announces nothing again.
    let sub = fake.subscription_of(&sessions[0]);
    fake.deliver(&fake.renew(&sub), Delivery::HOSTILE).await;
    assert_eq!(queued(&app, VICTIM, "sponsor_applied").await, 1);
    assert_eq!(queued(&app, OWNER_EMAIL, "sponsor_applied_admin").await, 1);
    assert_eq!(
        queued_to(&app, OWNER_EMAIL).await,
        1,
        "the nineteen unpaid applications reached nobody"
    );
}

async fn applications_are_limited_per_address_and_per_email(app: TestApp, _fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = gold(&app, &owner).await;
    for _ in 0..2 {
        expect_json(
            apply(&app, application(tier, "a@spam.example")).await,
            StatusCode::OK,
        )
        .await;
    }
    // The same address, differently written, is the same email.
    let res = apply(&app, application(tier, "A@Spam.example")).await;
    assert!(res.headers().contains_key("retry-after"));
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;

    // Another email from the same client: its fourth application passes
    // (the refused one above counted), the next is refused, by the form too.
    expect_json(
        apply(&app, application(tier, "b@spam.example")).await,
        StatusCode::OK,
    )
    .await;
    let res = apply(&app, application(tier, "c@spam.example")).await;
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;
    let tier_s = tier.to_string();
    let form = [
        ("kind", "sponsor"),
        ("tier_id", tier_s.as_str()),
        ("email", "d@spam.example"),
        ("company_name", "Spam"),
        ("website_url", "https://spam.example"),
    ];
    let res = app
        .client
        .post(app.url("/support/checkout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate-limited").await;

    // Patrons are not sponsors: their checkouts mail nobody before payment
    // and are not counted here.
    let patron = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friends", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    let res = apply(
        &app,
        json!({"kind": "patron", "tier_id": patron["id"], "email": "p@example.org", "display_name": "P"}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
}

async fn the_support_form_refuses_posts_from_other_sites(app: TestApp, _fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = gold(&app, &owner).await.to_string();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = [
        ("kind", "sponsor"),
        ("tier_id", tier.as_str()),
        ("email", VICTIM),
        ("company_name", "Spam Inc"),
        ("website_url", "https://spam.example"),
    ];
    let post = |headers: &[(&'static str, &str)]| {
        let mut req = no_redirects.post(app.url("/support/checkout")).form(&form);
        for (k, v) in headers {
            req = req.header(*k, v.to_string());
        }
        req.send()
    };
    let sponsors = || async {
        app.get_json("/api/v1/admin/sponsors", Some(&owner)).await["items"]
            .as_array()
            .unwrap()
            .len()
    };

    // A page elsewhere that posts the form for its visitors.
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ][..],
    ] {
        let res = post(headers).await.unwrap();
        expect_problem(res, StatusCode::FORBIDDEN, "cross-site-request").await;
    }
    assert_eq!(sponsors().await, 0, "nothing was created");

    // From the site itself: the configured public URL, or the host the
    // browser sent the form to.
    let res = post(&[
        ("origin", "https://fund.example.social"),
        ("sec-fetch-site", "same-origin"),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post(&[("origin", app.base.as_str())]).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(sponsors().await, 2);

    // The JSON API cannot be posted by another site's page: a form or a
    // no-cors fetch cannot send application/json, and the preflight that
    // would allow it is never granted.
    let res = app
        .client
        .post(app.url("/api/v1/checkout"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(application(tier.parse().unwrap(), VICTIM).to_string())
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/checkout"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(
        !res.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        res.headers()
    );
    assert_eq!(sponsors().await, 2);
}
