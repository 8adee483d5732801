//! The durable task queue, seen from outside: work queued with a change
//! survives Stripe being down, is retried, is dead-lettered when it keeps
//! failing, and an owner can put it back.

use patronage::queue::{SyncTier, Task};
use reqwest::StatusCode;
use serde_json::json;

use crate::fake_stripe::FakeStripe;
use crate::helpers::{TestApp, expect_problem};
use crate::with_stripe_on_both_backends;

with_stripe_on_both_backends!(
    a_tier_change_reaches_stripe_after_an_outage,
    a_task_that_keeps_failing_is_dead_lettered_and_an_owner_retries_it,
    a_copy_of_a_running_task_waits_until_that_run_ends,
);

/// Runs the queue until no task is pending or running, as the worker's
/// retries would (the tests' backoff starts at 1 s).
async fn until_no_pending(app: &TestApp, owner: &str, fake: &FakeStripe) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending = app.tasks(owner, "pending").await;
        let running = app.tasks(owner, "running").await;
        if pending.is_empty() && running.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tasks never ran: {pending:?} {running:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        fake.settle().await;
    }
}

async fn a_tier_change_reaches_stripe_after_an_outage(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    fake.break_endpoint("products");
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    assert_eq!(
        tier["name"], "Friend",
        "the change commits while Stripe is down"
    );
    fake.settle().await;
    let waiting = app.tasks(&owner, "pending").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["kind"], "sync_tier");
    assert_eq!(waiting[0]["dedupe_key"], tier["id"].to_string());
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("payment provider"),
        "{waiting:?}"
    );
    assert_eq!(fake.count("price_"), 0);

    // Two more edits while it waits: whichever sync runs, it reads the
    // tier as it is then, so Stripe gets one price, for the last amount.
    for amount in [600, 700] {
        app.patch(
            &format!("/api/v1/admin/tiers/{}", tier["id"]),
            &owner,
            json!({"amount_minor": amount}),
        )
        .await;
    }

    // A try still under way read the tier before the last edit: were Stripe
    // back while it runs, it would rightly price the older amount first.
    while !app.tasks(&owner, "running").await.is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fake.restore();
    until_no_pending(&app, &owner, &fake).await;
    // The newest sync succeeded; a try that failed while an edit came in
    // was superseded by the sync queued with that edit.
    let done = app.tasks(&owner, "done").await;
    assert_eq!(
        fake.count("price_"),
        1,
        "one price, for the latest amount: {done:?}"
    );
    assert!(done[0]["last_error"].is_null(), "{done:?}");
    assert!(
        done[1..]
            .iter()
            .all(|t| t["last_error"].as_str().unwrap().starts_with("superseded")),
        "{done:?}"
    );
}

async fn a_task_that_keeps_failing_is_dead_lettered_and_an_owner_retries_it(
    app: TestApp,
    fake: FakeStripe,
) {
    let owner = app.owner_token().await;
    fake.break_endpoint("products");
    app.create_tier(
        &owner,
        json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
    )
    .await;
    fake.settle().await;
    // Its tries so far: all but the last of what a sync gets.
    sqlx_set_attempts(&app, SyncTier::MAX_ATTEMPTS - 1).await;
    until_no_pending(&app, &owner, &fake).await;
    let dead = app.tasks(&owner, "dead").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["kind"], "sync_tier");
    assert_eq!(dead[0]["attempts"], SyncTier::MAX_ATTEMPTS);
    let counts = app.get_json("/api/v1/admin/tasks", Some(&owner)).await["counts"].clone();
    assert!(
        counts
            .as_array()
            .unwrap()
            .contains(&json!({"status": "dead", "count": 1})),
        "{counts}"
    );

    let id = dead[0]["id"].as_i64().unwrap();
    let viewer = app.viewer_token("viewer@example.org").await;
    let res = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/admin/tasks/{id}/retry"),
            Some(&viewer),
            json!({}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    fake.restore();
    let revived = app
        .post_ok(
            &format!("/api/v1/admin/tasks/{id}/retry"),
            &owner,
            json!({}),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(revived["status"], "pending");
    assert_eq!(revived["attempts"], 0);
    fake.settle().await;
    assert_eq!(fake.count("price_"), 1, "the retried sync reached Stripe");
    assert!(app.tasks(&owner, "dead").await.is_empty());
    let res = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/admin/tasks/{id}/retry"),
            Some(&owner),
            json!({}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not-found").await;
    let audit = app
        .get_json("/api/v1/admin/audit?action=task.retry", Some(&owner))
        .await;
    assert_eq!(audit["items"][0]["target_id"], id, "{audit}");
}

async fn a_copy_of_a_running_task_waits_until_that_run_ends(app: TestApp, fake: FakeStripe) {
    let owner = app.owner_token().await;
    fake.break_endpoint("products");
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await;
    fake.settle().await;
    // Another replica takes the waiting sync and is still at it...
    sqlx_set_attempts(&app, 1).await;
    let lease = chrono::Duration::seconds(60);
    let taken = patronage::store::tasks::claim(&app.db, "replica-b", lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    // ...when an edit queues a new copy and Stripe comes back.
    fake.restore();
    app.patch(
        &format!("/api/v1/admin/tiers/{}", tier["id"]),
        &owner,
        json!({"amount_minor": 600}),
    )
    .await;
    // Neither this replica's worker (woken by the edit) nor a run here
    // takes the copy.
    assert_eq!(patronage::queue::run_due(&app.ctx).await.unwrap(), 0);
    let waiting = app.tasks(&owner, "pending").await;
    assert_eq!(waiting.len(), 1, "the copy waits for the run in progress");
    assert_eq!(
        fake.count("price_"),
        0,
        "so they cannot both create a price"
    );

    let finished = patronage::store::tasks::Outcome::Done;
    patronage::store::tasks::finish(&app.db, taken[0].id, "replica-b", finished)
        .await
        .unwrap();
    fake.settle().await;
    assert_eq!(fake.count("price_"), 1, "the copy ran once the first ended");
    assert!(app.tasks(&owner, "pending").await.is_empty());
}

/// Plays the earlier failed tries of every pending task.
async fn sqlx_set_attempts(app: &TestApp, attempts: i32) {
    patronage::db_run!(&app.db, |pool| {
        sqlx::query("UPDATE tasks SET attempts = $1, run_at = $2 WHERE status = 'pending'")
            .bind(attempts)
            .bind(patronage::store::now())
            .execute(pool)
            .await
            .unwrap();
    });
}
