//! Patrons link their Mastodon account (OAuth 2 with PKCE against the fake
//! instance of `mastodon.rs`), are shown on the public page only when they
//! agreed, are thanked by the bot once, and the role sync lists each change
//! of status once, with `tootctl` lines for local accounts only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::mastodon::{Shared, approve, fake_mastodon};
use crate::second_factor::Browser;

const BOT_TOKEN: &str = "bot-token-never-logged";

macro_rules! with_an_instance {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::run(crate::helpers::Backend::Sqlite, super::$name).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::run(crate::helpers::Backend::Postgres, super::$name).await;
                }
            }
        )*
    };
}

with_an_instance!(
    a_patron_links_their_account_is_shown_thanked_once_and_unlinks,
    only_patrons_who_agreed_are_shown_and_names_are_escaped,
    a_forged_state_another_browser_and_a_replayed_code_are_refused,
    an_instance_answering_garbage_gives_a_clear_error_and_stores_nothing,
    posts_go_out_once_with_their_idempotency_key_even_run_twice,
    role_sync_lists_local_accounts_only_and_each_change_once,
    the_thank_you_page_after_checkout_offers_the_link,
    the_cli_prints_each_tootctl_line_once,
);

mod the_role_sync_command_gets_each_change_once_on_stdin {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::role_sync_command(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::role_sync_command(crate::helpers::Backend::Postgres).await;
    }
}

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp, Shared) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    run_with(backend, |_| {}, test).await;
}

async fn run_with<F, Fut>(
    backend: Backend,
    adjust: impl FnOnce(&mut patronage::config::Settings) + Send + 'static,
    test: F,
) where
    F: FnOnce(TestApp, Shared) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (url, instance) = fake_mastodon().await;
    {
        let mut i = instance.lock().unwrap();
        i.bot_token = BOT_TOKEN.into();
        i.signed_in = "ann".into();
        i.profile_url = Some("https://127.0.0.1/@ann".into());
    }
    let app = TestApp::spawn_with(backend, move |s| {
        s.mastodon.instance_url = url;
        s.mastodon.bot_token = secrecy::SecretString::from(BOT_TOKEN);
        s.mastodon.post_visibility = patronage::domain::fediverse::PostVisibility::Private;
        s.mail.transport = patronage::config::MailTransport::Memory;
        s.queue.retry_base_secs = 1;
        adjust(s);
    })
    .await;
    match app {
        Some(app) => test(app, instance).await,
        None => eprintln!("skipped: set PATRONAGE_TEST_DATABASE_URL to run on PostgreSQL"),
    }
}

/// A public patron with an active pledge, and their management link.
async fn patron(app: &TestApp, owner: &str, email: &str, name: &str) -> (i64, String) {
    let tier = app
        .create_tier(
            owner,
            json!({"kind": "patron", "name": format!("Friends of {name}"), "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let id = app.create_patron(owner, email, name).await;
    app.create_pledge(owner, id, tier, None).await;
    let token = format!("manage-{}", uuid::Uuid::new_v4().simple());
    patronage::store::stripe::create_magic_links(
        &app.db,
        &[(
            patronage::links::token_hash(&token),
            id,
            chrono::Duration::hours(1),
        )],
    )
    .await
    .unwrap();
    (id, token)
}

/// Presses "Link your Mastodon account" with these choices and returns
/// the callback path the instance sends the browser back to (not followed).
async fn start_link(b: &mut Browser, token: &str, public: bool, mention: bool) -> String {
    let mut form = vec![("token", token), ("instance", "")];
    if public {
        form.push(("public", "yes"));
    }
    if mention {
        form.push(("mention", "yes"));
    }
    let (status, to_instance, page) = b.post("/patron/fediverse/link", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    approve(&to_instance, "/patron/fediverse/callback").await
}

async fn link(b: &mut Browser, token: &str, public: bool, mention: bool) -> (StatusCode, String) {
    let path = start_link(b, token, public, mention).await;
    let (status, _, page) = b.get(&path).await;
    (status, page)
}

async fn support_page(app: &TestApp) -> String {
    app.get("/support", None).await.text().await.unwrap()
}

async fn supporter(app: &TestApp, owner: &str, id: i64) -> Value {
    app.get_json(&format!("/api/v1/admin/supporters/{id}"), Some(owner))
        .await
}

async fn drain(app: &TestApp) {
    patronage::queue::run_until_idle(&app.ctx.core, std::time::Duration::from_secs(20))
        .await
        .unwrap();
}

async fn a_patron_links_their_account_is_shown_thanked_once_and_unlinks(
    app: TestApp,
    instance: Shared,
) {
    let owner = app.owner_token().await;
    let (ann, token) = patron(&app, &owner, "ann@example.org", "Ann").await;
    let mut b = Browser::new(&app);
    let (status, _, page) = b.get(&format!("/patron/fediverse?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Link your Mastodon account"), "{page}");

    let (status, page) = link(&mut b, &token, true, true).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Your Mastodon account is linked"), "{page}");
    assert!(page.contains("@ann@127.0.0.1"), "{page}");

    // The admin sees it, in the supporter's JSON.
    let s = supporter(&app, &owner, ann).await;
    assert_eq!(s["fediverse_acct"], "ann@127.0.0.1");
    assert_eq!(s["fediverse_url"], "https://127.0.0.1/@ann");

    // The public page links to the profile, rel="me nofollow".
    let html = support_page(&app).await;
    assert!(
        html.contains(r#"<a href="https://127.0.0.1/@ann" rel="me nofollow">@ann@127.0.0.1</a>"#),
        "{html}"
    );

    // Agreed to a mention and already supporting: thanked, once, as the
    // configured visibility, with the task's key as Idempotency-Key.
    drain(&app).await;
    {
        let i = instance.lock().unwrap();
        assert_eq!(i.statuses.len(), 1, "{:?}", i.statuses);
        let (key, text, visibility) = &i.statuses[0];
        assert_eq!(key, &format!("patron:{ann}"));
        assert!(text.contains("@ann@127.0.0.1"), "{text}");
        assert_eq!(visibility, "private");
    }

    // Linking again (same account) registers no second app and posts no
    // second thank-you.
    let (status, _) = link(&mut b, &token, true, true).await;
    assert_eq!(status, StatusCode::OK);
    drain(&app).await;
    {
        let i = instance.lock().unwrap();
        let ours = i
            .apps
            .iter()
            .filter(|(_, _, uri)| uri.ends_with("/patron/fediverse/callback"))
            .count();
        assert_eq!(ours, 1, "the app is registered once per instance");
        assert_eq!(i.statuses.len(), 1, "thanked once");
    }

    // Unlink: gone from the page and the admin's view.
    let (status, _, page) = b
        .post("/patron/fediverse/unlink", &[("token", &token)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("is unlinked"), "{page}");
    assert!(!support_page(&app).await.contains("@ann@127.0.0.1"));
    assert!(supporter(&app, &owner, ann).await["fediverse_acct"].is_null());

    // The management link still opens the billing page: linking did not
    // spend it.
    let (status, _, page) = b.get(&format!("/patron/fediverse?token={token}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

async fn only_patrons_who_agreed_are_shown_and_names_are_escaped(app: TestApp, instance: Shared) {
    let owner = app.owner_token().await;
    let (_, ann_token) = patron(&app, &owner, "ann@example.org", "<script>alert(1)</script>").await;
    let (_, bob_token) = patron(&app, &owner, "bob@example.org", "Bob").await;

    // Ann agrees to be shown; her profile URL carries markup.
    instance.lock().unwrap().profile_url =
        Some("https://127.0.0.1/@ann?x=\"><script>alert(2)</script>".into());
    let mut b = Browser::new(&app);
    assert_eq!(
        link(&mut b, &ann_token, true, false).await.0,
        StatusCode::OK
    );

    // Bob links but does not agree to be shown.
    {
        let mut i = instance.lock().unwrap();
        i.signed_in = "bob".into();
        i.profile_url = Some("https://127.0.0.1/@bob".into());
    }
    let mut b = Browser::new(&app);
    assert_eq!(
        link(&mut b, &bob_token, false, false).await.0,
        StatusCode::OK
    );

    let html = support_page(&app).await;
    assert!(html.contains("@ann@127.0.0.1"), "{html}");
    assert!(
        html.contains(r#"rel="me nofollow">@ann@127.0.0.1</a>"#),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "nothing reaches the page unescaped: {html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
    assert!(html.contains("Bob"), "Bob is still named");
    assert!(
        !html.contains("@bob@127.0.0.1"),
        "but not his account: {html}"
    );

    // Bob changes his mind on his page, without linking again.
    let (status, _, page) = b
        .post(
            "/patron/fediverse/consent",
            &[("token", bob_token.as_str()), ("public", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Saved"), "{page}");
    assert!(
        page.contains(r#"id="linked-public" name="public" type="checkbox" value="yes" checked"#),
        "{page}"
    );
    assert!(support_page(&app).await.contains("@bob@127.0.0.1"));
    // And back; a forged token changes nothing.
    let (status, _, _) = b
        .post("/patron/fediverse/consent", &[("token", "forged")])
        .await;
    assert_ne!(status, StatusCode::OK);
    assert!(support_page(&app).await.contains("@bob@127.0.0.1"));
    b.post(
        "/patron/fediverse/consent",
        &[("token", bob_token.as_str())],
    )
    .await;
    assert!(!support_page(&app).await.contains("@bob@127.0.0.1"));

    // A profile on another host is not linked at all.
    {
        let mut i = instance.lock().unwrap();
        i.profile_url = Some("https://evil.example/@bob".into());
    }
    let mut b = Browser::new(&app);
    assert_eq!(
        link(&mut b, &bob_token, true, false).await.0,
        StatusCode::OK
    );
    let html = support_page(&app).await;
    assert!(html.contains("@bob@127.0.0.1"), "{html}");
    assert!(!html.contains("evil.example"), "{html}");
    // No bot post without a mention agreed.
    drain(&app).await;
    assert!(instance.lock().unwrap().statuses.is_empty());
}

async fn a_forged_state_another_browser_and_a_replayed_code_are_refused(
    app: TestApp,
    _instance: Shared,
) {
    let owner = app.owner_token().await;
    let (ann, token) = patron(&app, &owner, "ann@example.org", "Ann").await;

    // A state we never issued.
    let mut b = Browser::new(&app);
    let (status, _, page) = b
        .get("/patron/fediverse/callback?code=code-1&state=forged")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Nothing was linked"), "{page}");

    // A flow started in one browser, finished in another (an attacker's
    // approval sent to a victim): refused, and the state is spent.
    let mut started = Browser::new(&app);
    let path = start_link(&mut started, &token, true, true).await;
    let mut other = Browser::new(&app);
    let (status, _, page) = other.get(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, _, _) = started.get(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "each state is taken once");
    assert!(supporter(&app, &owner, ann).await["fediverse_acct"].is_null());

    // A finished link's callback, replayed (same state and code): refused.
    let mut b = Browser::new(&app);
    let path = start_link(&mut b, &token, true, false).await;
    assert_eq!(b.get(&path).await.0, StatusCode::OK);
    let (status, _, page) = b.get(&path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("used already"), "{page}");

    // The code itself, replayed under a fresh state: the instance refuses
    // it, and nothing changes.
    let mut b = Browser::new(&app);
    let fresh = start_link(&mut b, &token, false, false).await;
    let fresh_state = fresh.split("state=").nth(1).unwrap().to_owned();
    let old_code = path
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, _) = b
        .get(&format!(
            "/patron/fediverse/callback?code={old_code}&state={fresh_state}"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let s = supporter(&app, &owner, ann).await;
    assert_eq!(
        s["fediverse_acct"], "ann@127.0.0.1",
        "the earlier link stands"
    );
    let public = support_page(&app).await;
    assert!(
        public.contains("@ann@127.0.0.1"),
        "still shown as agreed then"
    );

    // A spent or unknown management link cannot start a link.
    let (status, _, _) = b.post("/patron/fediverse/link", &[("token", "nope")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn an_instance_answering_garbage_gives_a_clear_error_and_stores_nothing(
    app: TestApp,
    instance: Shared,
) {
    let owner = app.owner_token().await;
    let (ann, token) = patron(&app, &owner, "ann@example.org", "Ann").await;
    let base = app.ctx.settings.mastodon_instance().unwrap();
    let redirect_count = || {
        instance
            .lock()
            .unwrap()
            .apps
            .iter()
            .filter(|(_, _, uri)| uri.ends_with("/patron/fediverse/callback"))
            .count()
    };

    // Garbage when the app is registered: a clear page, no app kept.
    for kind in ["json", "500", "html"] {
        instance.lock().unwrap().garbage = Some(kind);
        let mut b = Browser::new(&app);
        let (status, _, page) = b.post("/patron/fediverse/link", &[("token", &token)]).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{kind}: {page}");
        assert!(
            page.contains("did not give an answer we could use"),
            "{kind}: {page}"
        );
        assert!(page.contains("Nothing was linked") || page.contains("nothing was linked"));
    }
    assert_eq!(redirect_count(), 0);
    let apps = patronage::store::oauth::app(
        &app.db,
        &base,
        &format!(
            "{}/patron/fediverse/callback",
            app.ctx.public.current().data.site_url
        ),
    )
    .await
    .unwrap();
    assert!(apps.is_none(), "no app stored");

    // Garbage when the code is traded: a clear page, no link kept.
    for kind in ["json", "500", "html"] {
        instance.lock().unwrap().garbage = None;
        let mut b = Browser::new(&app);
        let path = start_link(&mut b, &token, true, true).await;
        instance.lock().unwrap().garbage = Some(kind);
        let (status, _, page) = b.get(&path).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{kind}: {page}");
        assert!(
            page.contains("did not give an answer we could use"),
            "{page}"
        );
    }
    assert!(supporter(&app, &owner, ann).await["fediverse_acct"].is_null());
    assert!(!support_page(&app).await.contains("@ann@"));

    // An instance typed by the patron must be a public https host.
    instance.lock().unwrap().garbage = None;
    for typed in [
        "http://mastodon.example",
        "https://127.0.0.1:1",
        "https://10.0.0.1",
        "https://user:pw@mastodon.example",
        "https://localhost",
        "mastodon.example/@ann",
    ] {
        let mut b = Browser::new(&app);
        let (status, _, page) = b
            .post(
                "/patron/fediverse/link",
                &[("token", &token), ("instance", typed)],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{typed}: {page}");
        assert!(page.contains("instance"), "{page}");
    }
}

async fn posts_go_out_once_with_their_idempotency_key_even_run_twice(
    app: TestApp,
    instance: Shared,
) {
    use patronage::queue::Task;
    let owner = app.owner_token().await;

    // A sponsor approved while paid is published: one thank-you, with its
    // name and link, and no amount (it did not allow one).
    let tier = crate::public_pages::sponsor_tier(&app, &owner, "Gold", 50_000).await;
    let paid = chrono::Utc::now().date_naive() + chrono::Duration::days(60);
    let acme = crate::public_pages::create_sponsor(
        &app,
        &owner,
        tier,
        "ACME Hosting",
        "https://acme.example",
        paid,
    )
    .await;
    crate::public_pages::approve(&app, &owner, acme).await;
    drain(&app).await;
    {
        let i = instance.lock().unwrap();
        assert_eq!(i.statuses.len(), 1, "{:?}", i.statuses);
        let (key, text, visibility) = &i.statuses[0];
        assert!(key.starts_with(&format!("sponsor:{acme}:")), "{key}");
        assert!(
            text.contains("ACME Hosting") && text.contains("https://acme.example"),
            "{text}"
        );
        assert!(!text.contains("500"), "no amount unless allowed: {text}");
        assert_eq!(visibility, "private", "mastodon.post_visibility");
    }

    // A sponsor who allowed its amount gets it in its post.
    let globex = crate::public_pages::create_sponsor(
        &app,
        &owner,
        tier,
        "Globex",
        "https://globex.example",
        paid,
    )
    .await;
    let res = app
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/sponsors/{globex}/amount-in-posts"),
            Some(&owner),
            json!({"allowed": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    crate::public_pages::approve(&app, &owner, globex).await;
    drain(&app).await;
    {
        let i = instance.lock().unwrap();
        let post = i
            .statuses
            .iter()
            .find(|(k, _, _)| k.starts_with(&format!("sponsor:{globex}:")))
            .unwrap_or_else(|| panic!("no post for Globex in {:?}", i.statuses));
        assert!(
            post.1.contains("Globex") && post.1.contains("€500 a year"),
            "{}",
            post.1
        );
    }

    // The goal is reached: queued twice (two replicas noticing), run by
    // two workers at once, and again later: one status.
    let month = patronage::domain::month::Month::parse("month", "2026-12").unwrap();
    let eur = patronage::domain::money::Currency::parse("EUR").unwrap();
    for _ in 0..2 {
        let mut tx = app.db.begin_write().await.unwrap();
        patronage::service::posts::goal_reached(
            &mut tx,
            month,
            patronage::domain::money::Money::new(100_000, eur),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    // The monthly summary, queued twice (a job slot taken over): one post.
    let november = patronage::domain::month::Month::parse("month", "2026-11").unwrap();
    for _ in 0..2 {
        assert!(
            patronage::service::posts::monthly_summary(&app.ctx.core, november)
                .await
                .unwrap()
        );
        drain(&app).await;
    }
    {
        let i = instance.lock().unwrap();
        let monthly: Vec<_> = i
            .statuses
            .iter()
            .filter(|(k, _, _)| k == "monthly:2026-11")
            .collect();
        assert_eq!(monthly.len(), 1, "{:?}", i.statuses);
        assert!(monthly[0].1.contains("2026-11"), "{}", monthly[0].1);
    }
    let task = patronage::queue::PostStatus {
        post: patronage::domain::fediverse::Post::Goal {
            month: "2026-12".into(),
            goal_minor: 100_000,
            currency: "EUR".into(),
        },
    };
    let replica = app.replica().await;
    let (a, b) = tokio::join!(task.run(&app.ctx.core), task.run(&replica.ctx.core));
    app.ctx.after_commit(a.unwrap());
    app.ctx.after_commit(b.unwrap());
    drain(&app).await;
    app.ctx.after_commit(task.run(&app.ctx.core).await.unwrap());
    let i = instance.lock().unwrap();
    let goal: Vec<_> = i
        .statuses
        .iter()
        .filter(|(k, _, _)| k.starts_with("goal:"))
        .collect();
    assert_eq!(goal.len(), 1, "{:?}", i.statuses);
    assert_eq!(goal[0].0, "goal:2026-12:100000:EUR");
    assert!(goal[0].1.contains("goal"), "{}", goal[0].1);
    assert!(
        i.status_requests <= 5,
        "a post already recorded is not sent again: {} requests",
        i.status_requests
    );
}

async fn role_sync_lists_local_accounts_only_and_each_change_once(app: TestApp, instance: Shared) {
    let owner = app.owner_token().await;
    let (ann, ann_token) = patron(&app, &owner, "ann@example.org", "Ann").await;
    let (_, bob_token) = patron(&app, &owner, "bob@example.org", "Bob").await;
    let mut b = Browser::new(&app);
    assert_eq!(
        link(&mut b, &ann_token, false, false).await.0,
        StatusCode::OK
    );
    // Bob's account lives elsewhere (the instance knows him as remote).
    {
        let mut i = instance.lock().unwrap();
        i.signed_in = "bob@remote.example".into();
        i.profile_url = Some("https://remote.example/@bob".into());
    }
    let mut b = Browser::new(&app);
    assert_eq!(
        link(&mut b, &bob_token, false, false).await.0,
        StatusCode::OK
    );

    // The daily look, twice: each change is found once.
    for _ in 0..2 {
        patronage::service::fediverse::daily(&app.ctx.core)
            .await
            .unwrap();
    }
    let report = app
        .get_json("/api/v1/admin/fediverse/role-sync", Some(&owner))
        .await;
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{report}");
    assert_eq!(
        report["lines"],
        json!(["tootctl accounts modify ann --role 'Patron'"]),
        "{report}"
    );
    let bob = changes
        .iter()
        .find(|c| c["acct"] == "bob@remote.example")
        .unwrap();
    assert_eq!(bob["local"], false);
    assert!(bob["line"].is_null());
    assert!(bob["note"].as_str().unwrap().contains("remote"), "{bob}");

    // Acknowledged: reported once.
    let up_to = report["up_to"].as_i64().unwrap();
    app.post_ok(
        "/api/v1/admin/fediverse/role-sync/acknowledge",
        &owner,
        json!({"up_to": up_to}),
        StatusCode::OK,
    )
    .await;
    patronage::service::fediverse::daily(&app.ctx.core)
        .await
        .unwrap();
    let report = app
        .get_json("/api/v1/admin/fediverse/role-sync", Some(&owner))
        .await;
    assert_eq!(report["changes"], json!([]), "{report}");

    // Ann stops: one line removing the role, once.
    let pledges = app
        .get_json(
            &format!("/api/v1/admin/pledges?supporter_id={ann}"),
            Some(&owner),
        )
        .await;
    let pledge = pledges["items"][0]["id"].as_i64().unwrap();
    app.post_ok(
        &format!("/api/v1/admin/pledges/{pledge}/cancel"),
        &owner,
        json!({"reason": "moved away"}),
        StatusCode::OK,
    )
    .await;
    for _ in 0..2 {
        patronage::service::fediverse::daily(&app.ctx.core)
            .await
            .unwrap();
    }
    let report = app
        .get_json("/api/v1/admin/fediverse/role-sync", Some(&owner))
        .await;
    assert_eq!(
        report["lines"],
        json!(["tootctl accounts modify ann --remove-role"]),
        "{report}"
    );
    // The console shows the same lines, and marks them done.
    let mut console = Browser::new(&app);
    console.sign_in(crate::helpers::OWNER_EMAIL).await;
    let (status, _, page) = console.get("/admin/fediverse").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("tootctl accounts modify ann --remove-role"),
        "{page}"
    );
    assert!(
        page.contains("remote accounts are listed without a line"),
        "{page}"
    );
    let csrf = crate::second_factor::hidden(&page, "csrf");
    let up_to = report["up_to"].as_i64().unwrap().to_string();
    let (status, _, _) = console
        .post(
            "/admin/fediverse/role-sync/acknowledge",
            &[("csrf", &csrf), ("up_to", &up_to)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = console.get("/admin/fediverse").await;
    assert!(page.contains("No changes since"), "{page}");
    // The export and the supporter's page carry the account.
    let (_, _, csv) = console.get("/admin/supporters.csv").await;
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",fediverse_acct,fediverse_url"),
        "{csv}"
    );
    assert!(
        csv.contains(",ann@127.0.0.1,https://127.0.0.1/@ann"),
        "{csv}"
    );
    let (_, _, detail) = console.get(&format!("/admin/supporters/{ann}")).await;
    assert!(detail.contains("@ann@127.0.0.1"), "{detail}");

    // Viewers read it; only owners acknowledge.
    let viewer = app.viewer_token("viewer@example.org").await;
    let res = app
        .post(
            "/api/v1/admin/fediverse/role-sync/acknowledge",
            &viewer,
            json!({"up_to": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

async fn the_thank_you_page_after_checkout_offers_the_link(app: TestApp, _instance: Shared) {
    let owner = app.owner_token().await;
    let (ann, _) = patron(&app, &owner, "ann@example.org", "Ann").await;
    // The checkout Stripe sent Ann back from.
    patronage::db_run!(&app.db, |pool| {
        sqlx::query(
            "INSERT INTO checkout_sessions (idempotency_key, request_hash, stripe_session_id, purpose, supporter_id, \
             amount_minor, currency, status, created_at) VALUES ('k1', 'h1', 'cs_test_ann', 'patron', $1, 500, 'EUR', 'completed', $2)",
        )
        .bind(ann)
        .bind(patronage::store::now())
        .execute(pool)
        .await
        .unwrap();
    });
    let mut b = Browser::new(&app);
    let (status, _, page) = b.get("/thanks?session_id=cs_test_ann").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Thank you!"), "{page}");
    assert!(page.contains("Link your Mastodon account"), "{page}");
    assert!(
        page.contains(r#"name="session_id" value="cs_test_ann""#),
        "{page}"
    );
    let (status, to_instance, _) = b
        .post(
            "/patron/fediverse/link",
            &[("session_id", "cs_test_ann"), ("public", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let path = approve(&to_instance, "/patron/fediverse/callback").await;
    assert_eq!(b.get(&path).await.0, StatusCode::OK);
    assert_eq!(
        supporter(&app, &owner, ann).await["fediverse_acct"],
        "ann@127.0.0.1"
    );

    // A session id we do not know: thanks, but no form.
    let (status, _, page) = Browser::new(&app)
        .get("/thanks?session_id=cs_unknown")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("/patron/fediverse/link"), "{page}");
}

async fn role_sync_command(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let script = format!("cat >> '{}'", out.display());
    run_with(
        backend,
        move |s| s.mastodon.role_sync_command = vec!["sh".into(), "-c".into(), script],
        |app, _instance| async move {
            let owner = app.owner_token().await;
            let (_, token) = patron(&app, &owner, "ann@example.org", "Ann").await;
            let mut b = Browser::new(&app);
            assert_eq!(link(&mut b, &token, false, false).await.0, StatusCode::OK);
            for _ in 0..3 {
                patronage::service::fediverse::daily(&app.ctx.core)
                    .await
                    .unwrap();
            }
            let lines = std::fs::read_to_string(&out).unwrap();
            let lines: Vec<Value> = lines
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert_eq!(lines[0]["acct"], "ann@127.0.0.1");
            assert_eq!(lines[0]["change"], "grant");
            assert_eq!(lines[0]["username"], "ann");
            assert_eq!(
                lines[0]["line"],
                "tootctl accounts modify ann --role 'Patron'"
            );
            // Given to the command: done, not listed again.
            let report = app
                .get_json("/api/v1/admin/fediverse/role-sync", Some(&owner))
                .await;
            assert_eq!(report["changes"], json!([]));
        },
    )
    .await;
}

async fn the_cli_prints_each_tootctl_line_once(app: TestApp, _instance: Shared) {
    let owner = app.owner_token().await;
    let (_, token) = patron(&app, &owner, "ann@example.org", "Ann").await;
    let mut b = Browser::new(&app);
    assert_eq!(link(&mut b, &token, false, false).await.0, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let database = app.ctx.settings.database_url();
    let instance = app.ctx.settings.mastodon_instance().unwrap();
    let cli = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patronage"));
        for (key, _) in std::env::vars() {
            if key.starts_with("PATRONAGE") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(dir.path())
            .env("PATRONAGE__DATABASE__URL", &database)
            .env("PATRONAGE__MASTODON__INSTANCE_URL", &instance)
            .args(["fediverse", "role-sync"])
            .output()
            .unwrap()
    };
    let out = cli();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "tootctl accounts modify ann --role 'Patron'\n"
    );
    let again = cli();
    assert!(again.status.success());
    assert_eq!(String::from_utf8(again.stdout).unwrap(), "", "printed once");
    assert!(String::from_utf8_lossy(&again.stderr).contains("no changes"));
}
