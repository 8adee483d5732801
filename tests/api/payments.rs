//! Paying through Stripe, end to end: the real service and async-stripe
//! client against a fake Stripe on loopback, with webhooks delivered the way
//! Stripe may deliver them.

use patronage::payments::{envelope::EventObject, webhook};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_stripe::{
    Delivery, FEE_FIXED, FEE_PERCENT_BP, FakeStripe, WEBHOOK_SECRET, example,
};
use crate::helpers::{TestApp, expect_json, expect_problem, minor};
use crate::{on_both_backends, with_stripe_on_both_backends};

with_stripe_on_both_backends!(
    a_patron_subscribes_and_the_totals_rise,
    twelve_payments_land_once_despite_duplicated_shuffled_concurrent_webhooks,
    a_failed_renewal_goes_past_due_then_recovers,
    when_stripe_gives_up_the_pledge_ends_and_totals_fall,
    refunds_and_disputes_reduce_net,
    a_sponsor_pays_stays_hidden_until_approved_and_leaves_when_it_ends,
    the_same_idempotency_key_returns_the_same_session,
    forged_stale_and_unknown_webhooks,
    a_patron_manages_their_pledge_through_an_emailed_link,
    price_changes_make_new_prices_and_keep_old_subscriptions,
    a_sponsor_pays_a_yearly_invoice_and_is_published_once_paid,
    a_failed_event_is_kept_and_can_be_replayed,
    two_replicas_receiving_the_same_events_book_each_payment_once,
    a_checkout_cannot_rename_an_existing_patron,
    an_abandoned_checkout_leaves_a_patrons_language_alone,
    a_payment_is_booked_while_stripe_cannot_say_the_fee_and_the_fee_follows,
    refunds_and_disputes_land_on_the_payments_tier_whichever_event_arrives_first,
    a_fee_not_known_yet_follows_once_and_only_once,
    a_refund_whose_payment_never_comes_is_shown_to_admins_after_three_days,
    deliveries_that_share_a_commit_book_once_and_a_bad_one_fails_alone,
);

// No task worker runs in the background here: the test plays the dead
// replica, and the queue runs only when the test drives it.
with_stripe_on_both_backends!(@adjust (|s| s.queue.enabled = false)
    an_event_left_behind_by_a_crash_is_applied_after_its_lease,
);

on_both_backends!(payments_answer_503_without_a_secret_key);

fn fee(amount: i64) -> i64 {
    amount * FEE_PERCENT_BP / 10_000 + FEE_FIXED
}

fn session_id(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

async fn checkout(app: &TestApp, body: Value) -> String {
    let res = app
        .send(reqwest::Method::POST, "/api/v1/checkout", None, body)
        .await;
    let body = expect_json(res, StatusCode::OK).await;
    session_id(body["checkout_url"].as_str().unwrap())
}

async fn patron_checkout(app: &TestApp, tier: i64, email: &str) -> String {
    checkout(app, json!({"kind": "patron", "tier_id": tier, "email": email, "display_name": "Ann", "visibility": "public"})).await
}

async fn tier(app: &TestApp, owner: &str, amount: i64, interval: &str) -> i64 {
    app.create_tier(owner, json!({"kind": "patron", "name": format!("Tier {amount}"), "amount_minor": amount, "interval": interval}))
        .await["id"]
        .as_i64()
        .unwrap()
}

async fn ledger(app: &TestApp, owner: &str) -> Vec<Value> {
    let body = app
        .get_json("/api/v1/admin/ledger?limit=200", Some(owner))
        .await;
    body["items"].as_array().unwrap().clone()
}

fn sum(entries: &[Value], kind: &str) -> (usize, i64) {
    let of_kind: Vec<_> = entries.iter().filter(|e| e["kind"] == kind).collect();
    (
        of_kind.len(),
        of_kind.iter().map(|e| minor(&e["amount"])).sum(),
    )
}

/// Waits until every stored event is applied: events that arrived before
/// what they need (a refund before its payment) are applied by the retry
/// worker once it has arrived.
/// Tasks queued and not done yet (waiting to be retried, or running).
async fn pending_tasks(app: &TestApp, owner: &str) -> Vec<Value> {
    let mut left = app.tasks(owner, "pending").await;
    left.extend(app.tasks(owner, "running").await);
    left
}

/// Waits until every event is applied and every task done (retries of
/// fees and events come due with the test's 1 s backoff).
async fn settled(app: &TestApp, owner: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut left = pending_tasks(app, owner).await;
        for status in ["pending", "failed"] {
            let events = app
                .get_json(
                    &format!("/api/v1/admin/stripe/events?status={status}"),
                    Some(owner),
                )
                .await;
            left.extend(events.as_array().unwrap().clone());
        }
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events never applied: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn monthly_report(app: &TestApp, owner: &str) -> Value {
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    app.get_json(
        &format!("/api/v1/admin/reports/monthly?from={month}&to={month}"),
        Some(owner),
    )
    .await
}

async fn pledge_status(app: &TestApp, owner: &str) -> String {
    let pledges = app.get_json("/api/v1/admin/pledges", Some(owner)).await;
    pledges["items"][0]["status"].as_str().unwrap().to_owned()
}

async fn a_patron_subscribes_and_the_totals_rise(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    assert!(
        fake.object(&session)["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.test/")
    );
    assert_eq!(
        app.funding().await["patrons_count"],
        0,
        "nothing counts before payment"
    );

    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 1);
    assert_eq!(minor(&f["monthly_recurring"]), 500);
    assert_eq!(minor(&f["raised_this_month"]), 500);
    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (1, 500));
    assert_eq!(sum(&entries, "fee"), (1, -fee(500)));
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = app
        .get_json(
            &format!("/api/v1/admin/reports/monthly?from={month}&to={month}"),
            Some(&owner),
        )
        .await;
    assert_eq!(minor(&report["months"][0]["net"]), 500 - fee(500));
    assert_eq!(report["months"][0]["new_patrons"], 1);
    // The catalogue was created in Stripe with our ids, and every create
    // call carried an idempotency key.
    assert_eq!(
        fake.object("patronage_tier_1")["metadata"]["patronage_tier_id"],
        "1"
    );
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| {
            [
                "POST /v1/customers ",
                "POST /v1/products ",
                "POST /v1/prices ",
                "POST /v1/checkout/sessions ",
                "POST /v1/refunds ",
            ]
            .iter()
            .any(|p| r.starts_with(p))
        })
        .collect();
    assert!(creates.len() >= 4, "{creates:?}");
    assert!(creates.iter().all(|r| !r.ends_with("key=-")), "{creates:?}");
}

async fn twelve_payments_land_once_despite_duplicated_shuffled_concurrent_webhooks(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 1000, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let mut events = fake.complete_checkout(&session);
    let sub = fake.subscription_of(&session);
    for _ in 0..11 {
        events.extend(fake.renew(&sub));
    }
    fake.deliver(&events, Delivery::HOSTILE).await;
    let entries = ledger(&app, &owner).await;
    assert_eq!(
        sum(&entries, "payment"),
        (12, 12 * 1000),
        "twelve invoices, twelve payments"
    );
    assert_eq!(sum(&entries, "fee"), (12, -12 * fee(1000)));
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 1);
    assert_eq!(minor(&f["monthly_recurring"]), 1000);
    assert_eq!(pledge_status(&app, &owner).await, "active");
    for status in ["pending", "failed"] {
        let left = app
            .get_json(
                &format!("/api/v1/admin/stripe/events?status={status}"),
                Some(&owner),
            )
            .await;
        assert!(left.as_array().unwrap().is_empty(), "{status}: {left}");
    }
    let processed = app
        .get_json(
            "/api/v1/admin/stripe/events?status=processed&limit=200",
            Some(&owner),
        )
        .await;
    assert_eq!(
        processed.as_array().unwrap().len(),
        events.len(),
        "each event stored once, all processed"
    );
    // Delivering everything again changes nothing.
    fake.deliver(
        &events,
        Delivery {
            copies: 1,
            shuffle: true,
            concurrent: true,
        },
    )
    .await;
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (12, 12 * 1000));
}

async fn a_failed_renewal_goes_past_due_then_recovers(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 700, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let sub = fake.subscription_of(&session);

    let (invoice, failed) = fake.fail_renewal(&sub);
    fake.deliver(&failed, Delivery::HOSTILE).await;
    assert_eq!(pledge_status(&app, &owner).await, "past_due");
    assert_eq!(
        minor(&app.funding().await["monthly_recurring"]),
        700,
        "past due still counts while Stripe retries"
    );
    assert_eq!(sum(&ledger(&app, &owner).await, "payment").0, 1);

    fake.deliver(&fake.recover(&sub, &invoice), Delivery::HOSTILE)
        .await;
    assert_eq!(pledge_status(&app, &owner).await, "active");
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (2, 1400));
}

async fn when_stripe_gives_up_the_pledge_ends_and_totals_fall(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 700, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let sub = fake.subscription_of(&session);
    let (_, failed) = fake.fail_renewal(&sub);
    let mut events = failed;
    events.extend(fake.give_up(&sub));
    // Out of order: the deletion may arrive before the failure.
    fake.deliver(&events, Delivery::HOSTILE).await;
    assert_eq!(pledge_status(&app, &owner).await, "canceled");
    let f = app.funding().await;
    assert_eq!(f["patrons_count"], 0);
    assert_eq!(minor(&f["monthly_recurring"]), 0);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = app
        .get_json(
            &format!("/api/v1/admin/reports/monthly?from={month}&to={month}"),
            Some(&owner),
        )
        .await;
    assert_eq!(report["months"][0]["churned_patrons"], 1);
    // A late "updated" from before the end cannot revive it.
    let late = fake.renew(&sub);
    fake.deliver(&late[1..], Delivery::ONCE).await;
    assert_eq!(pledge_status(&app, &owner).await, "canceled");
}

async fn refunds_and_disputes_reduce_net(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    // A one-time gift of €50, refunded in two parts: once from Stripe's
    // dashboard, once by an admin through patronage.
    let gift = checkout(&app, json!({"kind": "gift", "amount_minor": 5000, "email": "gia@example.org", "display_name": "Gia"})).await;
    fake.deliver(&fake.complete_checkout(&gift), Delivery::ONCE)
        .await;
    let pi = fake.payment_intent_of(&gift);
    let charge = fake.charge_of_intent(&pi);
    fake.deliver(&fake.refund(&charge, 1000), Delivery::HOSTILE)
        .await;
    let payment = ledger(&app, &owner)
        .await
        .into_iter()
        .find(|e| e["kind"] == "payment")
        .unwrap();
    let path = format!("/api/v1/admin/payments/{}/refund", payment["id"]);
    let too_much = app.post(&path, &owner, json!({"amount_minor": 4001})).await;
    expect_problem(
        too_much,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    let refund = app
        .post_ok(
            &path,
            &owner,
            json!({"amount_minor": 1500, "reason": "asked"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(minor(&refund["amount"]), -1500);
    // Stripe's own charge.refunded webhook for the admin refund books nothing new.
    let fake_charge_event = {
        let mut e = fake.unhandled_event();
        e["type"] = json!("charge.refunded");
        e["data"]["object"] = fake.object(&charge);
        e
    };
    fake.deliver(&[fake_charge_event], Delivery::HOSTILE).await;

    // A subscription payment is disputed and lost.
    let tier = tier(&app, &owner, 2000, "month").await;
    let session = patron_checkout(&app, tier, "dan@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let sub_charge = fake.latest_charge(&fake.subscription_of(&session));
    let (dispute, opened) = fake.dispute(&sub_charge);
    let mut events = opened;
    events.extend(fake.close_dispute(&dispute, false));
    fake.deliver(&events, Delivery::HOSTILE).await;

    // Refunds and disputes of charges for other things sold on the same
    // Stripe account are not ours to book.
    let foreign = fake.foreign_charge(9999);
    let mut foreign_events = fake.refund(&foreign, 9999);
    foreign_events.extend(fake.dispute(&foreign).1);
    fake.deliver(&foreign_events, Delivery::ONCE).await;

    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (2, 7000));
    assert_eq!(sum(&entries, "refund"), (2, -2500));
    assert_eq!(sum(&entries, "dispute"), (1, -2000));
    assert_eq!(sum(&entries, "fee"), (3, -fee(5000) - fee(2000) - 1500));
    let dispute_entry = entries.iter().find(|e| e["kind"] == "dispute").unwrap();
    assert_eq!(
        dispute_entry["tier_id"], tier,
        "the dispute counts against the tier it was paid on"
    );

    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = app
        .get_json(
            &format!("/api/v1/admin/reports/monthly?from={month}&to={month}"),
            Some(&owner),
        )
        .await;
    let m = &report["months"][0];
    assert_eq!(minor(&m["gross"]), 7000);
    assert_eq!(minor(&m["refunds"]), 2500);
    assert_eq!(minor(&m["disputes"]), 2000);
    assert_eq!(
        minor(&m["net"]),
        7000 - 2500 - 2000 - fee(5000) - fee(2000) - 1500
    );
    assert_eq!(
        minor(&app.funding().await["raised_total"]),
        7000 - 2500 - 2000
    );
}

async fn a_sponsor_pays_stays_hidden_until_approved_and_leaves_when_it_ends(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let gold = app
        .create_tier(
            &owner,
            json!({"kind": "sponsor", "name": "Gold", "amount_minor": 100000, "interval": "year"}),
        )
        .await;
    let session = checkout(
        &app,
        json!({"kind": "sponsor", "tier_id": gold["id"], "email": "billing@acme.example",
        "company_name": "ACME", "website_url": "https://acme.example"}),
    )
    .await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::HOSTILE)
        .await;
    let public = || async {
        app.public_json("/api/v1/sponsors").await["sponsors"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(public().await, 0, "paid but not approved: hidden");
    let sponsors = app.get_json("/api/v1/admin/sponsors", Some(&owner)).await;
    let acme = &sponsors["items"][0];
    assert_eq!(acme["sponsor_status"], "pending");
    let expected_through = (chrono::Utc::now() + chrono::Duration::days(365))
        .date_naive()
        .to_string();
    assert_eq!(acme["paid_through"], expected_through);

    app.post_ok(
        &format!("/api/v1/admin/sponsors/{}/approve", acme["id"]),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(public().await, 1, "approved and paid: shown");

    // The sponsorship is cancelled at once: the sponsor leaves every view.
    let pledges = app.get_json("/api/v1/admin/pledges", Some(&owner)).await;
    let pledge = &pledges["items"][0];
    app.post_ok(
        &format!("/api/v1/admin/pledges/{}/cancel", pledge["id"]),
        &owner,
        json!({"at_period_end": false, "reason": "ended"}),
        StatusCode::OK,
    )
    .await;
    fake.deliver(
        &fake.give_up(&fake.subscription_of(&session)),
        Delivery::HOSTILE,
    )
    .await;
    // Ended: shown during the grace period (sponsors.grace_days), then gone.
    let sponsors = app.get_json("/api/v1/admin/sponsors", Some(&owner)).await;
    let ended = sponsors["items"][0]["paid_through"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = chrono::Utc::now().date_naive();
    assert!(
        ended.as_str() <= today.to_string().as_str(),
        "paid through {ended}"
    );
    assert_eq!(public().await, 1, "ended: still in its grace period");
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{}/paid-through", acme["id"]),
        &owner,
        json!({"paid_through": today - chrono::Duration::days(15)}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(public().await, 0, "ended and past grace: hidden");
    assert_eq!(app.funding().await["sponsors_count"], 0);
}

async fn a_sponsor_pays_a_yearly_invoice_and_is_published_once_paid(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let platinum = app.create_tier(&owner, json!({"kind": "sponsor", "name": "Platinum", "amount_minor": 500000, "interval": "year"})).await;
    let monthly = app.create_tier(&owner, json!({"kind": "sponsor", "name": "Monthly", "amount_minor": 10000, "interval": "month"})).await;
    let body = |tier: &Value| {
        json!({"kind": "sponsor", "tier_id": tier["id"], "email": "ap@bigco.example",
        "company_name": "BigCo", "website_url": "https://bigco.example", "pay_by": "invoice"})
    };
    let res = app
        .send(
            reqwest::Method::POST,
            "/api/v1/checkout",
            None,
            body(&monthly),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "pay_by");

    // The application waits for an owner: no invoice yet (Stripe would
    // email it to whatever address was typed), and no email to the
    // applicant; the owners hear of it.
    let res = app
        .send(
            reqwest::Method::POST,
            "/api/v1/checkout",
            None,
            body(&platinum),
        )
        .await;
    let answer = expect_json(res, StatusCode::ACCEPTED).await;
    assert_eq!(answer, json!({"status": "under_review"}));
    assert_eq!(fake.count("sub_"), 0, "no subscription");
    assert_eq!(fake.count("in_"), 0, "no invoice");
    app.mails(
        |m| m.to == crate::helpers::OWNER_EMAIL && m.subject.starts_with("New sponsor application"),
        1,
    )
    .await;
    assert!(
        app.ctx
            .mailer
            .sent()
            .await
            .iter()
            .all(|raw| !raw.contains("ap@bigco.example")),
        "nothing to the applicant yet"
    );

    let sponsors = app.get_json("/api/v1/admin/sponsors", Some(&owner)).await;
    let bigco = sponsors["items"][0].clone();
    app.post_ok(
        &format!("/api/v1/admin/sponsors/{}/approve", bigco["id"]),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    // Approved: the invoice is made now, and the applicant is told, with
    // a link to send the logo.
    let approved = app
        .mails(
            |m| m.to == "ap@bigco.example" && m.subject.contains("approved"),
            1,
        )
        .await;
    assert!(approved[0].link("/sponsor/logo?token=").is_some());
    let sub: String = patronage::db_run!(&app.db, |pool| {
        sqlx::query_scalar("SELECT stripe_session_id FROM checkout_sessions WHERE by_invoice = $1")
            .bind(true)
            .fetch_one(pool)
            .await
            .unwrap()
    });
    assert!(sub.starts_with("sub_"), "{sub}");
    assert_eq!(fake.object(&sub)["collection_method"], "send_invoice");
    let public = || async {
        app.public_json("/api/v1/sponsors").await["sponsors"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        public().await,
        0,
        "approved but the invoice is unpaid: hidden"
    );

    fake.deliver(&fake.pay_latest_invoice(&sub), Delivery::HOSTILE)
        .await;
    assert_eq!(public().await, 1, "approved and paid: shown");
    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (1, 500000));
}

async fn the_same_idempotency_key_returns_the_same_session(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let body = json!({"kind": "patron", "tier_id": tier, "email": "ann@example.org", "display_name": "Ann"});
    let send = |key: &'static str, body: Value| {
        app.client
            .post(app.url("/api/v1/checkout"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let responses = futures::future::join_all((0..4).map(|_| send("retry-me", body.clone()))).await;
    let mut urls = Vec::new();
    for r in responses {
        urls.push(
            expect_json(r.unwrap(), StatusCode::OK).await["checkout_url"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(urls.iter().all(|u| u == &urls[0]), "{urls:?}");
    assert_eq!(fake.count("cs_test"), 1, "one session in Stripe");
    let mut other = body.clone();
    other["email"] = json!("bob@example.org");
    let res = send("retry-me", other).await.unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    // A key a proxy could trim or fold differently is refused, as the
    // document's pattern says, before Stripe is asked.
    for bad in ["retry\tme", "retry me"] {
        let res = app
            .client
            .post(app.url("/api/v1/checkout"))
            .header("idempotency-key", bad)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    }
    assert_eq!(fake.count("cs_test"), 1);
    // Without a key, each request is a new session.
    checkout(&app, body.clone()).await;
    assert_eq!(fake.count("cs_test"), 2);

    // Sold-out tiers are refused before Stripe is asked.
    let one = app.create_tier(&owner, json!({"kind": "patron", "name": "Only one", "amount_minor": 900, "interval": "month", "slots": 1})).await;
    let s = patron_checkout(&app, one["id"].as_i64().unwrap(), "first@example.org").await;
    fake.deliver(&fake.complete_checkout(&s), Delivery::ONCE)
        .await;
    let res = app.send(reqwest::Method::POST, "/api/v1/checkout", None,
        json!({"kind": "patron", "tier_id": one["id"], "email": "second@example.org", "display_name": "B"})).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let res = app.send(reqwest::Method::POST, "/api/v1/checkout", None,
        json!({"kind": "gift", "amount_minor": 50, "email": "g@example.org", "display_name": "G"})).await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
}

async fn forged_stale_and_unknown_webhooks(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let events = fake.complete_checkout(&session);
    let payload = events[2].to_string();
    let now = chrono::Utc::now().timestamp();
    let forged = FakeStripe::sign(&payload, "whsec_attacker", now);
    assert_eq!(
        fake.post_raw(&payload, &forged).await,
        StatusCode::BAD_REQUEST
    );
    let stale = FakeStripe::sign(&payload, WEBHOOK_SECRET, now - 600);
    assert_eq!(
        fake.post_raw(&payload, &stale).await,
        StatusCode::BAD_REQUEST
    );
    let tampered = payload.replace("\"amount_paid\":500", "\"amount_paid\":50000");
    let signed_original = FakeStripe::sign(&payload, WEBHOOK_SECRET, now);
    assert_eq!(
        fake.post_raw(&tampered, &signed_original).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        fake.post_raw(&payload, "t=1,v1=nothex").await,
        StatusCode::BAD_REQUEST
    );
    assert!(
        ledger(&app, &owner).await.is_empty(),
        "nothing unverified is booked"
    );

    // Signed with the rotated-out secret: still accepted during rotation.
    let old_secret = FakeStripe::sign(&payload, "whsec_rotated_out", now);
    assert_eq!(fake.post_raw(&payload, &old_secret).await, StatusCode::OK);
    fake.settle().await;
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (1, 500));

    assert_eq!(
        fake.post_event(&fake.unhandled_event()).await,
        StatusCode::OK,
        "unhandled types are acknowledged"
    );
    assert_eq!(
        fake.post_event(&fake.future_event()).await,
        StatusCode::OK,
        "unknown types too"
    );
    let events = app
        .get_json("/api/v1/admin/stripe/events?status=processed", Some(&owner))
        .await;
    let types: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"customer.created".to_owned()), "{types:?}");
    assert!(
        types.contains(&"treasury.future_thing.created".to_owned()),
        "{types:?}"
    );
}

async fn a_checkout_cannot_rename_an_existing_patron(app: TestApp, _fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let ann = app
        .create_patron(&owner, "ann@example.org", "Ann Lovelace")
        .await;
    // Anyone may start a checkout with Ann's address; it must not rename her.
    checkout(
        &app,
        json!({"kind": "patron", "tier_id": tier, "email": "ann@example.org",
        "display_name": "Someone Else", "visibility": "public"}),
    )
    .await;
    let stored = app
        .get_json(&format!("/api/v1/admin/supporters/{ann}"), Some(&owner))
        .await;
    assert_eq!(stored["display_name"], "Ann Lovelace");
}

/// Someone starts a checkout with a French patron's address from an English
/// browser and walks away: her emails stay French.
async fn an_abandoned_checkout_leaves_a_patrons_language_alone(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = checkout(
        &app,
        json!({"kind": "patron", "tier_id": tier, "email": "ann@example.org",
        "display_name": "Ann", "locale": "fr"}),
    )
    .await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    checkout(
        &app,
        json!({"kind": "patron", "tier_id": tier, "email": "ann@example.org",
        "display_name": "Someone Else", "locale": "en"}),
    )
    .await;
    let res = app
        .send(
            reqwest::Method::POST,
            "/api/v1/patron/manage",
            None,
            json!({"email": "ann@example.org"}),
        )
        .await;
    expect_json(res, StatusCode::ACCEPTED).await;
    let sent = app
        .mails(
            |m| {
                m.to == "ann@example.org"
                    && (m.subject.starts_with("Manage") || m.subject.starts_with("Gérer"))
            },
            1,
        )
        .await;
    assert!(
        sent[0].subject.starts_with("Gérer votre soutien"),
        "{}",
        sent[0].subject
    );
}

async fn a_patron_manages_their_pledge_through_an_emailed_link(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;

    let ask = |email: &'static str| {
        app.send(
            reqwest::Method::POST,
            "/api/v1/patron/manage",
            None,
            json!({"email": email}),
        )
    };
    let known = expect_json(ask("Ann@example.org").await, StatusCode::ACCEPTED).await;
    let unknown = expect_json(ask("nobody@example.org").await, StatusCode::ACCEPTED).await;
    assert_eq!(known, unknown, "the answer does not reveal who supports us");

    let sent = app
        .mails(|m| m.subject.starts_with("Manage your support"), 1)
        .await;
    assert_eq!(sent.len(), 1, "one link for one request");
    assert_eq!(sent[0].to, "ann@example.org", "the address on file");
    let all = app.mails(|_| true, 1).await;
    assert!(
        all.iter().all(|m| m.to != "nobody@example.org"),
        "only the known patron gets mail"
    );
    let link = sent[0]
        .link("/api/v1/patron/portal?token=")
        .expect("a link in the message");
    let path = &link[link.find("/api/v1/patron/portal").unwrap()..];
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A mail scanner opening the link (twice) spends nothing: the page
    // only offers a button.
    let token = path.split("token=").nth(1).unwrap().to_owned();
    for _ in 0..2 {
        let page = no_redirect.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
            "{csp}"
        );
        assert_eq!(page.headers()["cache-control"], "no-store");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("method=\"post\" action=\"/api/v1/patron/portal\""),
            "{html}"
        );
        assert!(html.contains(&format!("value=\"{token}\"")), "{html}");
    }
    let press = || {
        no_redirect
            .post(app.url("/api/v1/patron/portal"))
            .form(&[("token", token.as_str())])
            .send()
    };
    let res = press().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://billing.stripe.test/p/session/")
    );
    // Spent: pressing again, or opening the link again, says so plainly.
    for again in [
        press().await.unwrap(),
        no_redirect.get(app.url(path)).send().await.unwrap(),
    ] {
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
        assert!(
            again.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = again.text().await.unwrap();
        assert!(html.contains("This link no longer works"), "{html}");
        assert!(
            html.contains("action=\"/patron/manage\""),
            "a way to a new link: {html}"
        );
    }
    // Which that page's form gives.
    let res = app
        .client
        .post(app.url("/patron/manage"))
        .form(&[("email", "ann@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("a link is on its way"));
    let fresh = app
        .mails(|m| m.subject.starts_with("Manage your support"), 2)
        .await;
    assert_eq!(fresh.len(), 2, "a second link for the second request");

    let mut limited = false;
    for _ in 0..8 {
        if ask("ann@example.org").await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "asking for links is rate-limited");
}

async fn price_changes_make_new_prices_and_keep_old_subscriptions(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let old_price = fake.object(&fake.subscription_of(&session))["items"]["data"][0]["price"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.patch(
        &format!("/api/v1/admin/tiers/{tier}"),
        &owner,
        json!({"amount_minor": 800}),
    )
    .await;
    // The catalogue sync is a task queued with the change.
    fake.settle().await;
    assert_eq!(
        fake.object(&old_price)["active"],
        false,
        "the old price is retired"
    );
    let synced = app
        .post_ok(
            "/api/v1/admin/stripe/sync",
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(synced["active_tiers"], 1);
    assert_eq!(fake.count("price_"), 2, "syncing twice makes nothing new");

    let bob = patron_checkout(&app, tier, "bob@example.org").await;
    fake.deliver(&fake.complete_checkout(&bob), Delivery::ONCE)
        .await;
    assert_eq!(
        minor(&app.funding().await["monthly_recurring"]),
        500 + 800,
        "Ann keeps her price"
    );

    app.post_ok(
        &format!("/api/v1/admin/tiers/{tier}/archive"),
        &owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    fake.settle().await;
    let new_price = fake.object(&fake.subscription_of(&bob))["items"]["data"][0]["price"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fake.object(&new_price)["active"],
        false,
        "archiving deactivates the price"
    );
}

async fn a_failed_event_is_kept_and_can_be_replayed(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let events = fake.complete_checkout(&session);
    // A renewal for a subscription Stripe cannot find fails to apply...
    let mut orphan = events[2].clone();
    orphan["id"] = json!("evt_orphan");
    orphan["data"]["object"]["id"] = json!("in_orphan");
    orphan["data"]["object"]["parent"]["subscription_details"]["subscription"] =
        json!("sub_missing");
    assert_eq!(
        fake.post_event(&orphan).await,
        StatusCode::OK,
        "stored, so Stripe need not retry"
    );
    // Its task tries it (Stripe is asked for the subscription) and fails.
    fake.settle().await;
    let failed = app
        .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
        .await;
    assert_eq!(failed[0]["id"], "evt_orphan");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("payment provider")
    );

    // ...and an admin can replay it; the real events apply normally.
    fake.deliver(&events, Delivery::ONCE).await;
    let replay = app
        .post_ok(
            "/api/v1/admin/stripe/events/evt_orphan/replay",
            &owner,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(replay["applied"], false, "still failing: it stays listed");
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (1, 500));
    let audit = app
        .get_json(
            "/api/v1/admin/audit?action=stripe_event.replay",
            Some(&owner),
        )
        .await;
    assert_eq!(audit["items"][0]["details"]["event_id"], "evt_orphan");
}

/// Deliveries that arrive together share one commit (`Intake`). Within one,
/// a repeat is still a repeat and an event we cannot make sense of is left
/// for the one-by-one path; a batch that fails in the database commits
/// nothing, and each of its events is then stored alone: the good ones
/// booked, the bad one kept as failed with its retry task.
async fn deliveries_that_share_a_commit_book_once_and_a_bad_one_fails_alone(
    app: TestApp,
    fake: FakeStripe,
) {
    use patronage::payments::{envelope::Event, events};
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 700, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    fake.deliver(&fake.complete_checkout(&session), Delivery::ONCE)
        .await;
    let sub = fake.subscription_of(&session);
    let paid = |events: Vec<Value>| {
        let paid = events.into_iter().find(|e| e["type"] == "invoice.paid");
        paid.unwrap().to_string()
    };
    let (first, second) = (paid(fake.renew(&sub)), paid(fake.renew(&sub)));
    // A gift whose session lost its payment intent: no sense to us.
    let gift = checkout(&app, json!({"kind": "gift", "amount_minor": 900, "email": "gia@example.org", "display_name": "Gia"})).await;
    let gift_event = fake.complete_checkout(&gift)[0].clone();
    let mut senseless = gift_event.clone();
    senseless["id"] = json!("evt_senseless");
    senseless["data"]["object"]["payment_intent"] = Value::Null;
    let senseless = senseless.to_string();

    let batch: Vec<(Event, &str)> = [&first, &first, &second, &senseless]
        .into_iter()
        .map(|p| (Event::parse(p).unwrap(), p.as_str()))
        .collect();
    let items: Vec<(&Event, &str)> = batch.iter().map(|(e, p)| (e, *p)).collect();
    let (stored, effects) = events::receive_together(&app.ctx.db, &items).await.unwrap();
    assert_eq!(stored, [Some(true), Some(false), Some(true), None]);
    assert!(
        effects.public && effects.mail && effects.tasks,
        "{effects:?}"
    );
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (3, 3 * 700));

    // A gift for a supporter that does not exist breaks the batch's
    // commit (a foreign key): nothing of it lands...
    let third = paid(fake.renew(&sub));
    let mut broken = gift_event;
    broken["id"] = json!("evt_broken");
    broken["data"]["object"]["metadata"]["patronage_supporter_id"] = json!("999999");
    let broken = broken.to_string();
    let batch: Vec<(Event, &str)> = [&third, &broken]
        .into_iter()
        .map(|p| (Event::parse(p).unwrap(), p.as_str()))
        .collect();
    let items: Vec<(&Event, &str)> = batch.iter().map(|(e, p)| (e, *p)).collect();
    assert!(events::receive_together(&app.ctx.db, &items).await.is_err());
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (3, 3 * 700));

    // ...and delivered together over HTTP, each goes alone: all answered
    // 200, the renewal booked once, the broken gift failed and retried.
    let posts = [&third, &broken, &senseless, &third, &broken].map(|p| {
        let signature = FakeStripe::sign(p, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
        let fake = &fake;
        async move { fake.post_raw(p, &signature).await }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (4, 4 * 700));
    let failed = app
        .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
        .await;
    let mut failed: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["evt_broken", "evt_senseless"]);
}

async fn two_replicas_receiving_the_same_events_book_each_payment_once(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let replica = app.replica().await;
    fake.send_webhooks_to(format!("{}/webhooks/stripe", replica.base));
    let tier = tier(&app, &owner, 1200, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let mut events = fake.complete_checkout(&session);
    let sub = fake.subscription_of(&session);
    for _ in 0..5 {
        events.extend(fake.renew(&sub));
    }
    events.extend(fake.refund(&fake.latest_charge(&sub), 200));
    // Three copies of each, shuffled, all at once, each to either replica.
    fake.deliver(&events, Delivery::HOSTILE).await;
    settled(&app, &owner).await;
    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (6, 6 * 1200));
    assert_eq!(sum(&entries, "fee"), (6, -6 * fee(1200)));
    assert_eq!(sum(&entries, "refund"), (1, -200));
    // Both replicas show the same totals once their snapshots catch up.
    replica.ctx.public.refresh().await.unwrap();
    let from_replica: Value = app
        .client
        .get(format!("{}/api/v1/funding", replica.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let from_first = app.funding().await;
    assert_eq!(from_replica["raised_total"], from_first["raised_total"]);
    assert_eq!(minor(&from_first["raised_total"]), 6 * 1200 - 200);
}

async fn an_event_left_behind_by_a_crash_is_applied_after_its_lease(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 900, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let events = fake.complete_checkout(&session);
    fake.settle().await;
    // A replica stored the invoice.paid event with its task, took the
    // task, and died before applying it (the lease has already run out).
    let paid = &events[2];
    patronage::payments::events::defer(
        &app.ctx,
        paid["id"].as_str().unwrap(),
        "invoice.paid",
        paid["created"].as_i64().unwrap(),
        &paid.to_string(),
        None,
    )
    .await
    .unwrap();
    let taken =
        patronage::store::tasks::claim(&app.db, "dead-replica", chrono::Duration::seconds(-1), 10)
            .await
            .unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert!(ledger(&app, &owner).await.is_empty());
    // Another worker takes the lapsed task over and applies it: the money
    // is not lost...
    fake.settle().await;
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (1, 900));
    // ...nor booked twice when Stripe delivers everything again.
    fake.deliver(&events, Delivery::HOSTILE).await;
    assert_eq!(sum(&ledger(&app, &owner).await, "payment"), (1, 900));
}

async fn a_payment_is_booked_while_stripe_cannot_say_the_fee_and_the_fee_follows(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 1000, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let events = fake.complete_checkout(&session);
    fake.break_endpoint("invoice_payments");
    fake.deliver(&events, Delivery::ONCE).await;
    let entries = ledger(&app, &owner).await;
    assert_eq!(
        sum(&entries, "payment"),
        (1, 1000),
        "the money is booked at once"
    );
    assert_eq!(sum(&entries, "fee").0, 0);
    let waiting = pending_tasks(&app, &owner).await;
    assert_eq!(
        waiting[0]["kind"], "settle_fee",
        "admins see what is pending"
    );
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("payment provider"),
        "{waiting:?}"
    );

    fake.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sum(&ledger(&app, &owner).await, "fee").0 == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fee never followed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (1, 1000));
    assert_eq!(sum(&entries, "fee"), (1, -fee(1000)));
}

/// Two patrons on two tiers of the same price each get a partial refund and
/// a lost dispute. Ann's events arrive in order; Bob's refund and dispute
/// (its close before its opening) arrive before the payment they undo.
/// The monthly report shows both tiers alike, and nothing without a tier.
async fn refunds_and_disputes_land_on_the_payments_tier_whichever_event_arrives_first(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let mut tiers = Vec::new();
    for (name, email, undo_first) in [
        ("In order", "ann@example.org", false),
        ("Out of order", "bob@example.org", true),
    ] {
        let tier = app
            .create_tier(
                &owner,
                json!({"kind": "patron", "name": name, "amount_minor": 1000, "interval": "month"}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        tiers.push(tier);
        let session = patron_checkout(&app, tier, email).await;
        let paid = fake.complete_checkout(&session);
        let charge = fake.latest_charge(&fake.subscription_of(&session));
        let mut undo = fake.refund(&charge, 300);
        let (dispute, opened) = fake.dispute(&charge);
        undo.extend(opened);
        undo.extend(fake.close_dispute(&dispute, false));
        if undo_first {
            undo.reverse();
            fake.deliver(&undo, Delivery::ONCE).await;
            let booked = ledger(&app, &owner).await;
            assert!(
                booked.iter().all(|e| e["tier_id"] == tiers[0]),
                "nothing of Bob's is booked before his payment: {booked:?}"
            );
            let failed = app
                .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
                .await;
            assert_eq!(failed, json!([]), "waiting is not failing");
            let waiting = app
                .get_json("/api/v1/admin/stripe/events?status=pending", Some(&owner))
                .await;
            assert_eq!(waiting.as_array().unwrap().len(), 3, "{waiting}");
            assert!(
                waiting[0]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("waiting for the payment of charge {charge}")),
                "{waiting}"
            );
            fake.deliver(&paid, Delivery::ONCE).await;
        } else {
            fake.deliver(&paid, Delivery::ONCE).await;
            fake.deliver(&undo, Delivery::ONCE).await;
        }
    }
    settled(&app, &owner).await;

    let report = monthly_report(&app, &owner).await;
    let rows = report["months"][0]["tiers"].as_array().unwrap();
    let row = |tier: i64| rows.iter().find(|r| r["tier_id"] == tier).unwrap();
    let (in_order, out_of_order) = (row(tiers[0]), row(tiers[1]));
    for column in ["gross", "refunds", "disputes", "fees", "net"] {
        assert_eq!(in_order[column], out_of_order[column], "{column}: {report}");
    }
    assert_eq!(minor(&in_order["refunds"]), 300);
    assert_eq!(minor(&in_order["disputes"]), 1000);
    assert_eq!(minor(&in_order["fees"]), fee(1000) + 1500);
    assert_eq!(
        minor(&in_order["net"]),
        1000 - 300 - 1000 - fee(1000) - 1500
    );
    assert!(
        rows.iter().all(|r| !r["tier_id"].is_null()),
        "no \"No tier\" row: {report}"
    );
    // Each dispute and its fee are booked on the tier the charge paid.
    let entries = ledger(&app, &owner).await;
    for tier in &tiers {
        let of_tier: Vec<&Value> = entries.iter().filter(|e| e["tier_id"] == *tier).collect();
        let kinds: Vec<(&str, &str)> = of_tier
            .iter()
            .map(|e| (e["kind"].as_str().unwrap(), e["note"].as_str().unwrap()))
            .collect();
        assert!(kinds.contains(&("dispute", "fraudulent")), "{kinds:?}");
        assert!(kinds.contains(&("fee", "dispute fee")), "{kinds:?}");
        assert_eq!(
            of_tier.len(),
            5,
            "payment, fee, refund, dispute, dispute fee: {kinds:?}"
        );
    }
    assert_eq!(entries.len(), 10, "{entries:?}");
}

/// The charge has no balance transaction when the invoice is paid: the
/// payment is booked at once, the event waits, and the fee is booked once
/// Stripe has it, once, however often the events come again.
async fn a_fee_not_known_yet_follows_once_and_only_once(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 1000, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let events = fake.complete_checkout(&session);
    let charge = fake.latest_charge(&fake.subscription_of(&session));
    let make_balance_transaction = fake.delay_balance_transaction(&charge);
    fake.deliver(&events, Delivery::ONCE).await;
    let entries = ledger(&app, &owner).await;
    assert_eq!(
        sum(&entries, "payment"),
        (1, 1000),
        "the money is booked at once"
    );
    assert_eq!(sum(&entries, "fee"), (0, 0), "no made-up fee of 0");
    let waiting = pending_tasks(&app, &owner).await;
    assert_eq!(waiting[0]["kind"], "settle_fee", "{waiting:?}");
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no balance transaction yet"),
        "{waiting:?}"
    );

    make_balance_transaction();
    settled(&app, &owner).await;
    fake.deliver(&events, Delivery::HOSTILE).await;
    let entries = ledger(&app, &owner).await;
    assert_eq!(sum(&entries, "payment"), (1, 1000));
    assert_eq!(sum(&entries, "fee"), (1, -fee(1000)));
}

/// The payment's events are lost for good: its refund waits quietly, then,
/// once Stripe's three days of retries are over, is listed as failed for
/// admins. Nothing is booked without its tier meanwhile.
async fn a_refund_whose_payment_never_comes_is_shown_to_admins_after_three_days(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 1000, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let _lost = fake.complete_checkout(&session);
    let charge = fake.latest_charge(&fake.subscription_of(&session));
    let refund = fake.refund(&charge, 300);
    fake.deliver(&refund, Delivery::ONCE).await;
    let id = refund[0]["id"].as_str().unwrap().to_owned();
    let failed = app
        .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
        .await;
    assert_eq!(failed, json!([]), "waiting quietly");

    // Received four days ago, and due again.
    let long_ago = patronage::store::now() - chrono::Duration::days(4);
    patronage::db_run!(&app.db, |pool| {
        sqlx::query(
            "UPDATE stripe_events SET received_at = $1, next_attempt_at = $1 WHERE id = $2",
        )
        .bind(long_ago)
        .bind(&id)
        .execute(pool)
        .await
        .unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let failed = app
            .get_json("/api/v1/admin/stripe/events?status=failed", Some(&owner))
            .await;
        if failed[0]["id"] == id.as_str() {
            assert!(
                failed[0]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("waiting for the payment"),
                "{failed}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never shown as failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ledger(&app, &owner).await.is_empty());
}

async fn payments_answer_503_without_a_secret_key(app: TestApp) {
    let res = app.send(reqwest::Method::POST, "/api/v1/checkout", None,
        json!({"kind": "gift", "amount_minor": 500, "email": "a@example.org", "display_name": "A"})).await;
    expect_problem(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "payments-not-configured",
    )
    .await;
    let res = app
        .client
        .post(app.url("/webhooks/stripe"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "payments-not-configured",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/funding", None).await.status(),
        StatusCode::OK,
        "everything else works"
    );
}

/// Every Stripe object patronage reads parses from Stripe's own examples.
#[test]
fn stripe_example_objects_parse_into_async_stripe_types() {
    // The way async-stripe's client reads them (patronage builds no serde
    // impls for Stripe's types).
    fn parses<T: miniserde::Deserialize>(kind: &str) {
        miniserde::json::from_str::<T>(&example(kind).to_string())
            .unwrap_or_else(|_| panic!("{kind} does not parse"));
    }
    parses::<stripe_shared::CheckoutSession>("checkout.session");
    parses::<stripe_shared::Subscription>("subscription");
    parses::<stripe_shared::Invoice>("invoice");
    parses::<stripe_shared::InvoicePayment>("invoice_payment");
    parses::<stripe_shared::Customer>("customer");
    parses::<stripe_shared::Price>("price");
    parses::<stripe_shared::Product>("product");
    parses::<stripe_shared::PaymentIntent>("payment_intent");
    parses::<stripe_shared::Charge>("charge");
    parses::<stripe_shared::Refund>("refund");
    parses::<stripe_shared::Dispute>("dispute");
    parses::<stripe_shared::BalanceTransaction>("balance_transaction");
    parses::<stripe_billing::BillingPortalSession>("billing_portal.session");
}

/// Every event type patronage handles parses from the fake's objects, which
/// start from Stripe's examples, into its async-stripe type (not `Unknown`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consumed_event_type_parses() {
    let (app, fake) = TestApp::spawn_with_stripe(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let owner = app.owner_token().await;
    let tier = tier(&app, &owner, 500, "month").await;
    let session = patron_checkout(&app, tier, "ann@example.org").await;
    let mut events = fake.complete_checkout(&session);
    let sub = fake.subscription_of(&session);
    events.extend(fake.renew(&sub));
    let (invoice, failed) = fake.fail_renewal(&sub);
    events.extend(failed);
    events.extend(fake.recover(&sub, &invoice));
    let charge = fake.latest_charge(&sub);
    events.extend(fake.refund(&charge, 100));
    let (dispute, opened) = fake.dispute(&charge);
    events.extend(opened);
    events.extend(fake.close_dispute(&dispute, true));
    events.extend(fake.give_up(&sub));
    let mut types = std::collections::BTreeSet::new();
    for e in &events {
        let payload = e.to_string();
        let header = FakeStripe::sign(&payload, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
        let event = webhook::verify(&payload, &header, &[WEBHOOK_SECRET.to_owned()])
            .unwrap_or_else(|err| panic!("{}: {err:?}", e["type"]));
        assert!(
            !matches!(event.data.object, EventObject::Unhandled),
            "{}",
            e["type"]
        );
        types.insert(e["type"].as_str().unwrap().to_owned());
    }
    for t in [
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    ] {
        assert!(types.contains(t), "{t} was not exercised");
    }
}
