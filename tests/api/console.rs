//! The admin console in a real browser: headless Chromium, driven over the
//! DevTools protocol (`cdp.rs`), signs in, fills the forms and presses the
//! buttons as a person would, on both databases. What is checked is what a
//! person sees (flash messages, tables, totals) and what protects them
//! (the session cookie, CSRF tokens, escaping, the Content-Security-Policy).
//! Screenshots of every page, light and dark, desktop and phone, are kept
//! in `target/screenshots/console-*.png`.

use std::collections::HashMap;

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::cdp::Browser;
use crate::helpers::{OWNER_EMAIL, PASSWORD, TestApp};
use crate::on_both_backends;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Text that would run or load something if a page did not escape it.
const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>";

/// The page background of console.css, light and dark: the stylesheet
/// loaded (under the CSP) and follows the colour scheme.
const LIGHT_BG: &str = "rgb(247, 247, 250)";
const DARK_BG: &str = "rgb(20, 21, 27)";

on_both_backends!(
    an_owner_signs_in_creates_a_tier_records_and_voids_a_contribution_and_signs_out,
    a_stolen_session_stops_working_after_sign_out_everywhere,
    forms_without_the_right_csrf_token_or_from_a_viewer_are_refused_and_change_nothing,
    hostile_names_and_notes_are_escaped_on_every_page,
    every_console_page_has_the_csp_header_and_loads_without_csp_violations,
);
// The tour includes webhook endpoints on loopback.
on_both_backends!(@adjust (crate::outbound_webhooks::open)
    every_console_page_renders_light_and_dark_on_a_desktop_and_a_phone,
);

async fn an_owner_signs_in_creates_a_tier_records_and_voids_a_contribution_and_signs_out(
    app: TestApp,
) {
    app.owner_token().await;
    let b = Browser::launch().await;

    // A page asked for before signing in is where signing in leads.
    b.goto(&app.url("/admin/tiers")).await;
    assert_eq!(b.path().await, "/admin/login?next=%2Fadmin%2Ftiers");
    b.type_into("#email", OWNER_EMAIL).await;
    b.type_into("#password", "not the password").await;
    b.click("main form button[type=submit]").await;
    assert_eq!(
        b.text(".flash.error").await,
        "That email and password do not match an admin."
    );
    assert_eq!(
        b.eval("document.querySelector('#email').value").await,
        OWNER_EMAIL,
        "the email is kept for the second try"
    );
    b.type_into("#password", PASSWORD).await;
    b.click("main form button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/tiers");
    assert!(b.text("header.top").await.contains(OWNER_EMAIL));

    // A mistake is said, and creates nothing.
    b.type_into("#name", "Friend").await;
    b.type_into("#amount", "five").await;
    b.click("form[action='/admin/tiers'] button[type=submit]")
        .await;
    assert_eq!(
        b.text(".flash.error").await,
        "price: enter an amount like 12.55, without thousands separators"
    );
    assert_eq!(b.texts("table tbody a").await, Vec::<String>::new());
    assert_eq!(
        b.eval("document.querySelector('#name').value").await,
        json!("Friend"),
        "what was typed stays, to be fixed"
    );
    b.eval("for (const f of ['#name', '#amount', '#rank', '#description']) document.querySelector(f).value = ''")
        .await;

    b.choose("#kind", "patron").await;
    b.type_into("#name", "Friend").await;
    b.type_into("#amount", "5.00").await;
    b.choose("#interval", "month").await;
    b.type_into("#rank", "1").await;
    b.type_into("#description", "Keeps the lights on.").await;
    b.click("form[action='/admin/tiers'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin/tiers");
    assert_eq!(b.text(".flash.ok").await, "Tier “Friend” created.");
    let row = row_with(&b, "table", "Friend").await;
    assert!(row.contains("€5 / month"), "{row}");

    // Its page: a new price.
    let href = b
        .eval("[...document.querySelectorAll('tbody th a')].find(a => a.innerText == 'Friend').getAttribute('href')")
        .await;
    let href = href.as_str().expect("a link to the tier").to_owned();
    b.click(&format!("tbody th a[href='{href}']")).await;
    assert_eq!(b.path().await, href);
    assert_eq!(b.text("h1").await, "Friend");
    b.type_into("#amount", "7.50").await;
    b.click(&format!("form[action='{href}'] button[type=submit]"))
        .await;
    assert_eq!(b.path().await, href);
    assert_eq!(b.text(".flash.ok").await, "Tier “Friend” saved.");
    assert!(b.text("dl.facts").await.contains("€7.50 / month"));
    b.click("a[href='/admin/tiers']").await;
    assert!(
        row_with(&b, "table", "Friend")
            .await
            .contains("€7.50 / month")
    );
    assert_eq!(
        b.texts(".flash").await,
        Vec::<String>::new(),
        "a flash is shown once"
    );

    // The ledger: a bank transfer of 25.00 shows in the totals.
    b.click("nav a[href='/admin/ledger']").await;
    assert_eq!(totals(&b).await["Net"], "€0");
    b.type_into("#amount", "25.00").await;
    b.type_into("#reference", "BANK-2026-0042").await;
    b.type_into("#note", "Transfer from Ana").await;
    b.click("form[method=post][action='/admin/ledger'] button[type=submit]")
        .await;
    let flash = b.text(".flash.ok").await;
    assert!(flash.starts_with("Recorded €25 on "), "{flash}");
    let t = totals(&b).await;
    assert_eq!((t["Income"].as_str(), t["Net"].as_str()), ("€25", "€25"));
    let row = row_with(&b, "table.ledger", "BANK-2026-0042").await;
    assert!(row.contains("Transfer from Ana"), "{row}");
    let id: i64 = row.split('\t').nth(1).unwrap().trim().parse().unwrap();
    let cookie = session_cookie(&b, &app).await;
    let csv = download_csv(&b, &cookie).await;
    assert_eq!(csv.len(), 1, "{csv:?}");
    assert_eq!(csv[0]["reference"], "BANK-2026-0042");
    assert_eq!(sum_minor(&csv), minor_of(&t["Net"]));

    // Voided with a reason: net back to nothing, both entries kept.
    b.eval(&format!(
        "document.querySelector('#reason-{id}').closest('details').querySelector('summary').click()"
    ))
    .await;
    assert_eq!(
        b.eval(&format!(
            "document.querySelector('#reason-{id}').closest('details').open"
        ))
        .await,
        true
    );
    b.type_into(&format!("#reason-{id}"), "Entered twice by mistake")
        .await;
    b.click(&format!(
        "form[action='/admin/ledger/{id}/void'] button[type=submit]"
    ))
    .await;
    let flash = b.text(".flash.ok").await;
    let reversal: i64 = flash
        .strip_prefix(&format!("Entry #{id} voided by entry #"))
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{flash}"))
        .parse()
        .unwrap();
    assert_eq!(totals(&b).await["Net"], "€0");
    let row = row_with(&b, "table.ledger", "BANK-2026-0042").await;
    assert!(row.contains(&format!("voided by #{reversal}")), "{row}");
    assert!(
        row_with(&b, "table.ledger", &format!("voids #{id}"))
            .await
            .contains("-€25")
    );
    assert_eq!(
        b.eval("document.querySelectorAll('details.void').length")
            .await,
        0,
        "neither entry can be voided again"
    );
    let csv = download_csv(&b, &cookie).await;
    assert_eq!(csv.len(), 2, "{csv:?}");
    assert_eq!(sum_minor(&csv), 0);

    // Signing out ends the session, not only the cookie.
    b.click("form[action='/admin/logout'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin/login?signed_out=1");
    assert_eq!(b.text(".flash.ok").await, "You are signed out.");
    b.goto(&app.url("/admin")).await;
    assert_eq!(b.path().await, "/admin/login?next=%2Fadmin");
    let res = cookie_client(&cookie)
        .get(app.url("/admin/ledger.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        b.csp_violations(),
        Vec::<String>::new(),
        "{:?}",
        b.messages()
    );
}

async fn a_stolen_session_stops_working_after_sign_out_everywhere(app: TestApp) {
    app.owner_token().await;
    let b = Browser::launch().await;
    sign_in(&b, &app).await;

    // The cookie is out of scripts' reach, and only sent by this site.
    let cookies = b.cookies(&app.base).await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "patronage")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert_eq!(b.eval("document.cookie").await, "");

    // Copied elsewhere, it works, as does a second device's session.
    let stolen = cookie_client(session["value"].as_str().unwrap());
    let res = stolen.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(OWNER_EMAIL));
    let (laptop, _) = form_client(&app, OWNER_EMAIL).await;
    let res = laptop.get(app.url("/admin/tiers")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    b.click("a[href='/admin/account']").await;
    b.click("form[action='/admin/account/sign-out-everywhere'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin/login?signed_out=1");

    for (who, client) in [("the copied cookie", &stolen), ("the laptop", &laptop)] {
        let res = client.get(app.url("/admin")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{who}");
        assert_eq!(
            res.headers()[header::LOCATION],
            "/admin/login?next=%2Fadmin",
            "{who}"
        );
    }
    b.goto(&app.url("/admin/account")).await;
    assert_eq!(b.path().await, "/admin/login?next=%2Fadmin%2Faccount");
}

async fn forms_without_the_right_csrf_token_or_from_a_viewer_are_refused_and_change_nothing(
    app: TestApp,
) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let entry = app
        .post_ok(
            "/api/v1/admin/contributions",
            &owner,
            json!({"amount_minor": 2500, "date": today(), "external_reference": "BANK-1"}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.viewer_token("viewer@example.org").await;
    let (as_owner, owner_csrf) = form_client(&app, OWNER_EMAIL).await;
    let (as_viewer, viewer_csrf) = form_client(&app, "viewer@example.org").await;
    let patron = app
        .post_ok(
            "/api/v1/admin/patrons",
            &owner,
            json!({"email": "ann@example.org", "display_name": "Ann", "visibility": "public"}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Every change is audited: an unchanged audit log means nothing changed.
    let state = || async {
        (
            app.get_json("/api/v1/admin/tiers", Some(&owner)).await,
            app.get_json("/api/v1/admin/ledger", Some(&owner)).await,
            app.get_json("/api/v1/admin/campaign", Some(&owner)).await,
            app.get_json("/api/v1/admin/audit", Some(&owner)).await,
            app.get_json("/api/v1/admin/outbox", Some(&owner)).await,
        )
    };
    let before = state().await;

    let today = today();
    let changes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/tiers".into(),
            vec![
                ("kind", "patron"),
                ("name", "Sneaky"),
                ("amount", "1.00"),
                ("interval", "month"),
            ],
        ),
        (
            format!("/admin/tiers/{tier}"),
            vec![
                ("name", "Renamed"),
                ("amount", "9.00"),
                ("interval", "year"),
            ],
        ),
        (format!("/admin/tiers/{tier}/archive"), vec![]),
        (
            "/admin/ledger".into(),
            vec![
                ("amount", "99.00"),
                ("date", today.as_str()),
                ("reference", "SNEAKY"),
            ],
        ),
        (
            format!("/admin/ledger/{entry}/void"),
            vec![("reason", "sneaky")],
        ),
        (
            format!("/admin/supporters/{patron}"),
            vec![("name", "Renamed"), ("visibility", "secret")],
        ),
        (format!("/admin/supporters/{patron}/manage-link"), vec![]),
        (
            format!("/admin/supporters/{patron}/pledges/1/cancel"),
            vec![("when", "now")],
        ),
        (
            format!("/admin/supporters/{patron}/payments/{entry}/refund"),
            vec![("amount", "1.00")],
        ),
        (
            format!("/admin/sponsors/{patron}/decision"),
            vec![("decision", "approve")],
        ),
        (format!("/admin/sponsors/{patron}/logo/approve"), vec![]),
        (
            format!("/admin/sponsors/{patron}/paid-through"),
            vec![("paid_through", today.as_str())],
        ),
        (format!("/admin/sponsors/{patron}/upload-link"), vec![]),
        ("/admin/operations/events/evt_1/replay".into(), vec![]),
        ("/admin/operations/outbox/1/retry".into(), vec![]),
        ("/admin/operations/tasks/1/retry".into(), vec![]),
        (
            "/admin/settings/campaign".into(),
            vec![("name", "Taken over"), ("currency", "EUR")],
        ),
        (
            "/admin/settings/invite".into(),
            vec![("email", "mallory@example.org"), ("role", "owner")],
        ),
        (
            "/admin/settings/admins/1/role".into(),
            vec![("role", "viewer")],
        ),
        ("/admin/settings/admins/1/revoke".into(), vec![]),
        (
            "/admin/settings/admins/1/mastodon".into(),
            vec![("acct", "mallory@evil.example")],
        ),
    ];
    let sign_outs: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/logout".into(), vec![]),
        ("/admin/account/sign-out-everywhere".into(), vec![]),
    ];
    let post =
        |client: &reqwest::Client, path: &str, fields: &[(&str, &str)], csrf: Option<&str>| {
            let mut form = fields.to_vec();
            if let Some(t) = csrf {
                form.push(("csrf", t));
            }
            client.post(app.url(path)).form(&form).send()
        };
    let wrong = "0".repeat(64);
    for (path, fields) in changes.iter().chain(&sign_outs) {
        for (what, csrf) in [("no token", None), ("a wrong token", Some(wrong.as_str()))] {
            let res = post(&as_owner, path, fields, csrf).await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} with {what}");
        }
        // The right token, posted from another site's page.
        let res = as_owner
            .post(app.url(path))
            .header(header::ORIGIN, "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .form(&[fields.as_slice(), &[("csrf", owner_csrf.as_str())]].concat())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} from elsewhere");
    }
    // A viewer reads the pages, which offer no forms that change things.
    for page in [
        "/admin",
        "/admin/tiers",
        "/admin/ledger",
        "/admin/supporters",
        &format!("/admin/supporters/{patron}"),
        "/admin/sponsors",
        "/admin/reports",
        "/admin/costs",
        "/admin/analytics",
        "/admin/operations",
        "/admin/fediverse",
        "/admin/audit",
    ] {
        let res = as_viewer.get(app.url(page)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let html = res.text().await.unwrap();
        assert_eq!(
            html.matches(r#"method="post""#).count(),
            1,
            "{page} offers a viewer only the sign-out form"
        );
    }
    for (path, fields) in &changes {
        let res = post(&as_viewer, path, fields, Some(&viewer_csrf))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} by a viewer");
    }
    let settings = as_viewer
        .get(app.url("/admin/settings"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        settings.status(),
        StatusCode::FORBIDDEN,
        "admin management is for owners"
    );
    assert_eq!(state().await, before, "nothing changed");
    let res = as_owner.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the owner is still signed in");

    // Control: the same form with the owner's token does change things.
    let (path, fields) = &changes[0];
    let res = post(&as_owner, path, fields, Some(&owner_csrf))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let tiers = app.get_json("/api/v1/admin/tiers", Some(&owner)).await;
    assert!(tiers.to_string().contains("Sneaky"), "{tiers}");
}

async fn hostile_names_and_notes_are_escaped_on_every_page(app: TestApp) {
    let owner = app.owner_token().await;
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 1000, "date": today(), "note": HOSTILE,
               "external_reference": format!("ref-{HOSTILE}")}),
        StatusCode::CREATED,
    )
    .await;
    let b = Browser::launch().await;

    // The login page echoes `next` into a hidden field.
    let next = "/admin\"><script>alert(3)</script>".to_owned();
    b.goto(&app.url(&format!(
        "/admin/login?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    )))
    .await;
    assert_nothing_injected(&b, "the login page").await;
    assert_eq!(
        b.eval("document.querySelector('input[name=next]').value")
            .await,
        next
    );
    sign_in(&b, &app).await;

    // Typed into the tier form: the flash and the table show it as text.
    b.goto(&app.url("/admin/tiers")).await;
    b.type_into("#name", HOSTILE).await;
    b.type_into("#amount", "5.00").await;
    b.type_into("#description", HOSTILE).await;
    b.click("form[action='/admin/tiers'] button[type=submit]")
        .await;
    assert_nothing_injected(&b, "the tiers page").await;
    assert_eq!(
        b.text(".flash.ok").await,
        format!("Tier “{HOSTILE}” created.")
    );
    let link = b
        .eval("document.querySelector('tbody th a').getAttribute('href')")
        .await;
    assert_eq!(b.text("tbody th a").await, HOSTILE);

    b.goto(&app.url(link.as_str().unwrap())).await;
    assert_nothing_injected(&b, "the tier's page").await;
    assert_eq!(b.text("h1").await, HOSTILE);
    assert_eq!(
        b.eval("document.title").await,
        format!("{HOSTILE} · patronage")
    );
    assert_eq!(
        b.eval("document.querySelector('#name').value").await,
        HOSTILE
    );
    assert_eq!(
        b.eval("document.querySelector('#description').value").await,
        HOSTILE
    );

    b.goto(&app.url("/admin/ledger")).await;
    assert_nothing_injected(&b, "the ledger").await;
    let row = row_with(&b, "table.ledger", "ref-<script>").await;
    assert!(row.contains(&format!("ref-{HOSTILE}")), "{row}");
    assert!(row.contains(&format!("\n{HOSTILE}")), "{row}");

    // The filter echoes what was asked for into its fields and an error.
    let asked = "\"><script>alert(4)</script>";
    let q = url::form_urlencoded::byte_serialize(asked.as_bytes()).collect::<String>();
    b.goto(&app.url(&format!("/admin/ledger?from={q}&kind={q}")))
        .await;
    assert_nothing_injected(&b, "the filtered ledger").await;
    assert_eq!(
        b.eval("document.querySelector('#from').getAttribute('value')")
            .await,
        asked
    );
    assert!(b.text(".flash.error").await.contains("from"));

    b.goto(&app.url("/admin")).await;
    assert_nothing_injected(&b, "the overview").await;
    b.goto(&app.url("/admin/tiers/%3Cscript%3Ealert(5)%3C%2Fscript%3E"))
        .await;
    assert_nothing_injected(&b, "an error page").await;

    assert_eq!(b.dialogs(), Vec::<String>::new(), "no dialog opened");
    assert_eq!(
        b.csp_violations(),
        Vec::<String>::new(),
        "nothing was even tried (the CSP would have refused it)"
    );
}

/// No element came out of text: the console has no scripts or images of
/// its own, and nothing else that a payload here would create.
async fn assert_nothing_injected(b: &Browser, page: &str) {
    let made = b
        .eval("[...document.querySelectorAll('script, img, iframe, object, embed, [onerror], [onload]')].map(e => e.outerHTML)")
        .await;
    assert_eq!(made, json!([]), "elements made from data on {page}");
}

async fn every_console_page_has_the_csp_header_and_loads_without_csp_violations(app: TestApp) {
    let b = Browser::launch().await;
    let token = app.setup_token.clone().unwrap();
    let setup = format!("/admin/setup?token={token}");
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.post_ok(
        "/api/v1/admin/contributions",
        &owner,
        json!({"amount_minor": 2500, "date": today()}),
        StatusCode::CREATED,
    )
    .await;

    // Signed out: the sign-in and setup pages, and the redirect to sign-in.
    let anonymous = cookie_client("");
    for (path, status) in [
        ("/admin/login", StatusCode::OK),
        (setup.as_str(), StatusCode::OK),
        ("/admin", StatusCode::SEE_OTHER),
        ("/admin/console.css", StatusCode::OK),
    ] {
        let res = anonymous.get(app.url(path)).send().await.unwrap();
        assert_headers(&res, path, status);
    }
    for path in ["/admin/login", setup.as_str()] {
        b.goto(&app.url(path)).await;
        assert_styled(&b, path, LIGHT_BG).await;
    }

    sign_in(&b, &app).await;
    let client = cookie_client(&session_cookie(&b, &app).await);
    let pages = [
        ("/admin".to_owned(), StatusCode::OK),
        ("/admin/tiers".to_owned(), StatusCode::OK),
        (format!("/admin/tiers/{tier}"), StatusCode::OK),
        ("/admin/ledger".to_owned(), StatusCode::OK),
        ("/admin/ledger?from=2026-13-01".to_owned(), StatusCode::OK),
        ("/admin/account".to_owned(), StatusCode::OK),
        ("/admin/supporters?sort=lifetime".to_owned(), StatusCode::OK),
        ("/admin/sponsors?status=all".to_owned(), StatusCode::OK),
        ("/admin/reports".to_owned(), StatusCode::OK),
        ("/admin/costs".to_owned(), StatusCode::OK),
        ("/admin/webhooks".to_owned(), StatusCode::OK),
        ("/admin/import".to_owned(), StatusCode::OK),
        ("/admin/analytics".to_owned(), StatusCode::OK),
        ("/admin/analytics?from=2026-13".to_owned(), StatusCode::OK),
        (
            "/admin/analytics/movements/2026-01?kind=new".to_owned(),
            StatusCode::OK,
        ),
        ("/admin/operations".to_owned(), StatusCode::OK),
        ("/admin/fediverse".to_owned(), StatusCode::OK),
        ("/admin/audit".to_owned(), StatusCode::OK),
        ("/admin/settings".to_owned(), StatusCode::OK),
        ("/admin/tiers/99999".to_owned(), StatusCode::NOT_FOUND),
        ("/admin/tiers/abc".to_owned(), StatusCode::NOT_FOUND),
        ("/admin/ledger.csv".to_owned(), StatusCode::OK),
        ("/admin/supporters.csv".to_owned(), StatusCode::OK),
        ("/admin/costs/report.csv".to_owned(), StatusCode::OK),
        ("/admin/costs/expenses.csv".to_owned(), StatusCode::OK),
    ];
    for (path, status) in &pages {
        let res = client.get(app.url(path)).send().await.unwrap();
        assert_headers(&res, path, *status);
        if path.ends_with(".csv") {
            continue;
        }
        b.goto(&app.url(path)).await;
        assert_styled(&b, path, LIGHT_BG).await;
    }
    // A refused POST is a page with the same headers.
    let res = client
        .post(app.url("/admin/tiers"))
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_headers(&res, "a POST without a token", StatusCode::FORBIDDEN);
    assert_eq!(
        b.csp_violations(),
        Vec::<String>::new(),
        "{:?}",
        b.messages()
    );

    // Control: an inline script is refused, and the refusal is seen.
    let ran = b
        .eval("(() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; document.body.append(s); return window.ran === 1 })()")
        .await;
    assert_eq!(ran, false, "the CSP refuses inline scripts");
    for _ in 0..100 {
        if !b.csp_violations().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !b.csp_violations().is_empty(),
        "a CSP refusal shows among the messages: {:?}",
        b.messages()
    );
}

fn assert_headers(res: &reqwest::Response, what: &str, status: StatusCode) {
    assert_eq!(res.status(), status, "{what}");
    let h = res.headers();
    assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{what}");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    if !what.ends_with(".css") {
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{what}");
    }
}

async fn assert_styled(b: &Browser, what: &str, background: &str) {
    assert_eq!(
        b.eval("getComputedStyle(document.body).backgroundColor")
            .await,
        background,
        "console.css applies to {what}"
    );
}

/// The pages a person visits, with data in them, in both colour schemes
/// at a desktop's and a phone's width. Every page follows the scheme, and
/// none is wider than a phone's screen (the tables scroll inside their
/// panel instead).
async fn every_console_page_renders_light_and_dark_on_a_desktop_and_a_phone(app: TestApp) {
    let b = Browser::launch().await;
    let token = app.setup_token.clone().unwrap();
    shoot_all(
        &b,
        "setup",
        &app.url(&format!("/admin/setup?token={token}")),
    )
    .await;
    let owner = app.owner_token().await;
    let ids = realistic_data(&app, &owner).await;
    shoot_all(&b, "login", &app.url("/admin/login")).await;
    sign_in(&b, &app).await;
    for (name, path) in [
        ("overview", "/admin".to_owned()),
        ("tiers", "/admin/tiers".to_owned()),
        ("tier", format!("/admin/tiers/{}", ids["Supporter"])),
        (
            "tier-archived",
            format!("/admin/tiers/{}", ids["Early bird"]),
        ),
        ("ledger", "/admin/ledger".to_owned()),
        ("supporters", "/admin/supporters".to_owned()),
        ("supporter", "/admin/supporters/1".to_owned()),
        ("sponsors", "/admin/sponsors".to_owned()),
        ("reports", "/admin/reports".to_owned()),
        ("costs", "/admin/costs".to_owned()),
        ("analytics", "/admin/analytics".to_owned()),
        ("operations", "/admin/operations".to_owned()),
        ("fediverse", "/admin/fediverse".to_owned()),
        ("audit", "/admin/audit".to_owned()),
        ("settings", "/admin/settings".to_owned()),
        ("account", "/admin/account".to_owned()),
        ("error", "/admin/tiers/99999".to_owned()),
    ] {
        shoot_all(&b, name, &app.url(&path)).await;
    }
    // Webhooks: one receiver that answers, one that is gone; both pinged.
    let receiver = crate::outbound_webhooks::Receiver::start().await;
    let (live, _) =
        crate::outbound_webhooks::add_endpoint(&app, &owner, &receiver.url(), false).await;
    let (gone, _) =
        crate::outbound_webhooks::add_endpoint(&app, &owner, "http://127.0.0.1:9/hooks", false)
            .await;
    for (id, answered) in [(live, true), (gone, false)] {
        let ping = app
            .post_ok(
                &format!("/api/v1/admin/webhooks/endpoints/{id}/ping"),
                &owner,
                json!({}),
                StatusCode::OK,
            )
            .await;
        assert_eq!(ping["ok"], answered, "{ping}");
    }
    for (name, path) in [
        ("webhooks", "/admin/webhooks".to_owned()),
        ("webhook", format!("/admin/webhooks?endpoint={gone}")),
        ("import", "/admin/import".to_owned()),
    ] {
        shoot_all(&b, name, &app.url(&path)).await;
    }
    // The states a form leaves: a flash after a mistake, a void opened.
    b.set_dark(false).await;
    b.set_viewport(1280, 800, false).await;
    b.goto(&app.url("/admin/tiers")).await;
    b.type_into("#name", "Patron").await;
    b.type_into("#amount", "5,000.00").await;
    b.click("form[action='/admin/tiers'] button[type=submit]")
        .await;
    assert!(b.texts(".flash.error").await.len() == 1);
    shoot(&b, "tiers-error", false, false).await;
    b.goto(&app.url("/admin/ledger")).await;
    b.eval("document.querySelector('details.void summary').click()")
        .await;
    shoot(&b, "ledger-void", false, false).await;
    b.set_viewport(390, 844, true).await;
    shoot(&b, "ledger-void", false, true).await;
    assert_eq!(b.dialogs(), Vec::<String>::new());
    assert_eq!(b.csp_violations(), Vec::<String>::new());
}

/// Screenshots of `url` in the four looks; each page follows the scheme
/// and fits a phone's width.
pub(crate) async fn shoot_all(b: &Browser, name: &str, url: &str) {
    for dark in [false, true] {
        for phone in [false, true] {
            b.set_dark(dark).await;
            if phone {
                b.set_viewport(390, 844, true).await;
            } else {
                b.set_viewport(1280, 800, false).await;
            }
            b.goto(url).await;
            assert_styled(b, name, if dark { DARK_BG } else { LIGHT_BG }).await;
            shoot(b, name, dark, phone).await;
            if phone {
                let fit = b.eval(PHONE_FIT).await;
                assert!(
                    fit["wide"].as_i64().unwrap() <= 390 && fit["out"] == json!([]),
                    "{name} is wider than a 390px phone: {fit}"
                );
            }
        }
    }
}

/// How wide the page is, and what sticks out past a phone's screen
/// (outside the boxes that scroll sideways on purpose: tables and charts).
const PHONE_FIT: &str = "(() => {
  const wide = document.documentElement.scrollWidth;
  const out = [...document.querySelectorAll('body *')]
    .filter(e => !e.closest('.scroll, .chart-box') && e.getBoundingClientRect().right > 391)
    .map(e => `${e.tagName}.${e.className}`);
  return {wide, out};
})()";

pub(crate) async fn shoot(b: &Browser, name: &str, dark: bool, phone: bool) {
    let file = format!(
        "console-{name}-{}-{}.png",
        if dark { "dark" } else { "light" },
        if phone { "phone" } else { "desktop" }
    );
    b.screenshot(&crate::browser::screenshots().join(file))
        .await;
}

/// A campaign a few months in: tiers of both kinds (one archived, one
/// that is pay-what-you-want), patrons who joined over the months, bank
/// transfers (one voided), and a sponsor waiting for approval. Returns the
/// tiers' ids by name.
async fn realistic_data(app: &TestApp, owner: &str) -> HashMap<String, i64> {
    let res = app
        .patch(
            "/api/v1/admin/campaign",
            owner,
            json!({"name": "Example Social", "monthly_goal_minor": 150_000}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let mut ids = HashMap::new();
    for (kind, name, amount, interval, extra) in [
        ("patron", "Friend", 300, "month", json!({"rank": 1})),
        (
            "patron",
            "Supporter",
            1_000,
            "month",
            json!({"rank": 2, "pwyw_min_minor": 800,
                   "description": "Pay what you want from €8: helps with storage and the relay."}),
        ),
        (
            "patron",
            "Champion",
            5_000,
            "month",
            json!({"rank": 3, "slots": 10}),
        ),
        (
            "sponsor",
            "Gold sponsor",
            120_000,
            "year",
            json!({"rank": 10}),
        ),
        ("patron", "Early bird", 200, "month", json!({"rank": 0})),
    ] {
        let mut body =
            json!({"kind": kind, "name": name, "amount_minor": amount, "interval": interval});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let id = app.create_tier(owner, body).await["id"].as_i64().unwrap();
        ids.insert(name.to_owned(), id);
    }
    let today = chrono::Utc::now().date_naive();
    let months_ago = |n: u32| {
        today
            .checked_sub_months(chrono::Months::new(n))
            .unwrap()
            .to_string()
    };
    let joined = [
        ("Friend", 9),
        ("Friend", 6),
        ("Supporter", 5),
        ("Champion", 4),
        ("Friend", 2),
        ("Supporter", 1),
        ("Early bird", 10),
    ];
    for (i, (tier, months)) in joined.into_iter().enumerate() {
        let p = app
            .create_patron(
                owner,
                &format!("patron{i}@example.org"),
                &format!("Patron {i}"),
            )
            .await;
        app.create_pledge(owner, p, ids[tier], Some(&months_ago(months)))
            .await;
    }
    let archived = ids["Early bird"];
    app.post_ok(
        &format!("/api/v1/admin/tiers/{archived}/archive"),
        owner,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let mut entries = Vec::new();
    for (amount, months, note, reference) in [
        (
            125_000,
            7,
            "Annual sponsorship, invoice 2026-014",
            "SEPA-2026-04-DE89370400440532013000",
        ),
        (2_500, 3, "Transfer from Ana", "BANK-2026-0042"),
        (4_000, 2, "Cash at the meetup", "CASH-0007"),
        (4_000, 2, "Cash at the meetup (entered twice)", "CASH-0007b"),
        (1_550, 0, "", "BANK-2026-0107"),
    ] {
        let e = app
            .post_ok(
                "/api/v1/admin/contributions",
                owner,
                json!({"amount_minor": amount, "date": months_ago(months), "note": note,
                       "external_reference": reference}),
                StatusCode::CREATED,
            )
            .await;
        entries.push(e["id"].as_i64().unwrap());
    }
    app.post_ok(
        &format!("/api/v1/admin/contributions/{}/void", entries[3]),
        owner,
        json!({"reason": "Entered twice"}),
        StatusCode::CREATED,
    )
    .await;
    crate::public_pages::create_sponsor(
        app,
        owner,
        ids["Gold sponsor"],
        "Acme Hosting",
        "https://acme.example/",
        today + chrono::Duration::days(365),
    )
    .await;
    // Costs: hosting every month, paid this month; a domain paid in dollars.
    let month_start = today.format("%Y-%m-01").to_string();
    let hosting = app
        .post_ok(
            "/api/v1/admin/recurring-costs",
            owner,
            json!({"vendor": "Hetzner Online GmbH", "category": "Hosting", "amount_minor": 18_900,
                   "interval": "month", "starts_on": month_start}),
            StatusCode::CREATED,
        )
        .await;
    for body in [
        json!({"date": today.to_string(), "vendor": "Hetzner Online GmbH", "category": "Hosting",
               "amount_minor": 18_900, "recurring_cost_id": hosting["id"], "external_reference": "R0012345"}),
        json!({"date": today.to_string(), "vendor": "Namecheap", "category": "Domains",
               "amount_minor": 1_350, "original_amount_minor": 1_499, "original_currency": "USD",
               "note": "example.social, one year"}),
    ] {
        app.post_ok("/api/v1/admin/expenses", owner, body, StatusCode::CREATED)
            .await;
    }
    ids
}

/// Signs in as the owner through the sign-in page.
pub(crate) async fn sign_in(b: &Browser, app: &TestApp) {
    b.goto(&app.url("/admin")).await;
    assert_eq!(b.path().await, "/admin/login?next=%2Fadmin");
    b.type_into("#email", OWNER_EMAIL).await;
    b.type_into("#password", PASSWORD).await;
    b.click("main form button[type=submit]").await;
    assert_eq!(b.path().await, "/admin", "signed in");
}

/// The browser's session cookie (HttpOnly: only DevTools can read it).
pub(crate) async fn session_cookie(b: &Browser, app: &TestApp) -> String {
    let cookies = b.cookies(&app.base).await;
    cookies
        .iter()
        .find(|c| c["name"] == "patronage")
        .and_then(|c| c["value"].as_str())
        .unwrap_or_else(|| panic!("no session cookie among {cookies:?}"))
        .to_owned()
}

/// A client that sends the session cookie `value`, and shows redirects
/// rather than following them.
pub(crate) fn cookie_client(value: &str) -> reqwest::Client {
    let mut headers = header::HeaderMap::new();
    if !value.is_empty() {
        headers.insert(
            header::COOKIE,
            format!("patronage={value}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Signs `email` in through the sign-in form without a browser, as a
/// second device would: its client and the session's CSRF token.
pub(crate) async fn form_client(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let res = client
        .post(app.url("/admin/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/admin"),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{email} signs in");
    let page = client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_in(&page.text().await.unwrap());
    (client, csrf)
}

fn csrf_in(html: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#)
        .unwrap()
        .captures(html)
        .unwrap_or_else(|| panic!("no CSRF token in {html}"))[1]
        .to_owned()
}

/// The text of the first row of `table` that contains `needle` (cells
/// separated by tabs, as `innerText` gives them).
/// The text of the row holding `needle`, non-breaking spaces read as
/// spaces (prices are kept on one line).
pub(crate) async fn row_with(b: &Browser, table: &str, needle: &str) -> String {
    let rows = b.texts(&format!("{table} tbody tr")).await;
    rows.iter()
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in {rows:?}"))
        .replace('\u{a0}', " ")
}

/// The ledger's totals by label: {"Income": "€25", "Net": "€25", ...}.
pub(crate) async fn totals(b: &Browser) -> HashMap<String, String> {
    let v = b
        .eval("Object.fromEntries([...document.querySelectorAll('dl.totals > div')].map(d => [d.querySelector('dt').innerText, d.querySelector('dd').innerText]))")
        .await;
    serde_json::from_value(v).unwrap()
}

/// The ledger page's "Download CSV" link, fetched with the session cookie:
/// its rows as header → value maps.
async fn download_csv(b: &Browser, cookie: &str) -> Vec<HashMap<String, String>> {
    let href = b
        .eval("[...document.querySelectorAll('a[download]')].find(a => a.innerText == 'Download CSV').href")
        .await;
    let res = cookie_client(cookie)
        .get(href.as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn sum_minor(rows: &[HashMap<String, String>]) -> i64 {
    rows.iter().map(|r| minor_of(&r["amount"])).sum()
}

/// Cents of an amount as shown or exported: "€1,250.50", "-€25", "25.00".
pub(crate) fn minor_of(shown: &str) -> i64 {
    let plain: String = shown
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, plain.as_str()),
    };
    let (whole, cents) = digits.split_once('.').unwrap_or((digits, "0"));
    let cents = format!("{cents:0<2}");
    sign * (whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap())
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}
