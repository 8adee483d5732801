//! The console's supporter directory: what each row says (lifetime value,
//! last payment, pledge state, tier) follows the ledger and the pledges as
//! they change, the filters pick by it, and keyset pages visit every
//! supporter exactly once, in order, for every sort and direction.

use std::collections::HashMap;

use patronage::store::directory::{self, DirectoryFilter, SortKey};
use reqwest::StatusCode;
use serde_json::json;

use crate::console::form_client;
use crate::helpers::{OWNER_EMAIL, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_supporter_list_shows_what_the_ledger_and_pledges_say,
    keyset_pages_visit_every_supporter_once_in_order_for_every_sort,
);

async fn the_supporter_list_shows_what_the_ledger_and_pledges_say(app: TestApp) {
    let owner = app.owner_token().await;
    let tier = app
        .create_tier(
            &owner,
            json!({"kind": "patron", "name": "Friend", "amount_minor": 500, "interval": "month"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let ana = app.create_patron(&owner, "ana@example.org", "Ana").await;
    let ben = app.create_patron(&owner, "ben@example.org", "Ben").await;
    app.create_patron(&owner, "cy@example.org", "Cy").await;
    app.create_pledge(&owner, ana, tier, None).await;
    let bens = app.create_pledge(&owner, ben, tier, None).await["id"]
        .as_i64()
        .unwrap();
    let give = |amount: i64, date: &str| {
        app.post_ok(
            "/api/v1/admin/contributions",
            &owner,
            json!({"supporter_id": ana, "amount_minor": amount, "date": date}),
            StatusCode::CREATED,
        )
    };
    give(2_500, "2026-10-03").await;
    let mistake = give(1_000, "2026-11-02").await["id"].as_i64().unwrap();

    let (client, csrf) = form_client(&app, OWNER_EMAIL).await;
    let export = |query: &str| {
        let client = client.clone();
        let url = app.url(&format!("/admin/supporters.csv?{query}"));
        async move {
            let res = client.get(&url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{url}");
            let text = res.text().await.unwrap();
            let rows: Vec<HashMap<String, String>> = csv::Reader::from_reader(text.as_bytes())
                .deserialize()
                .collect::<Result<_, _>>()
                .unwrap();
            rows.into_iter()
                .map(|r| (r["name"].clone(), r))
                .collect::<HashMap<_, _>>()
        }
    };

    let all = export("").await;
    assert_eq!(all["Ana"]["lifetime_value"], "35.00");
    assert_eq!(all["Ana"]["last_payment"], "2026-11-02");
    assert_eq!(all["Ana"]["tier"], "Friend");

    // A void takes the gift out of the lifetime value and the last payment.
    app.post_ok(
        &format!("/api/v1/admin/contributions/{mistake}/void"),
        &owner,
        json!({"reason": "Entered twice"}),
        StatusCode::CREATED,
    )
    .await;
    app.post_ok(
        &format!("/api/v1/admin/pledges/{bens}/cancel"),
        &owner,
        json!({"reason": "Moved away", "at_period_end": false}),
        StatusCode::OK,
    )
    .await;
    let all = export("").await;
    assert_eq!(all["Ana"]["lifetime_value"], "25.00");
    assert_eq!(all["Ana"]["last_payment"], "2026-10-03");
    assert_eq!(all["Ana"]["status"], "active");
    assert_eq!(all["Ben"]["status"], "canceled");
    assert_eq!(all["Ben"]["lifetime_value"], "0.00");
    assert_eq!(all["Ben"]["last_payment"], "");
    assert_eq!(all["Cy"]["status"], "none");

    let names = |rows: HashMap<String, HashMap<String, String>>| {
        let mut names: Vec<String> = rows.into_keys().collect();
        names.sort();
        names
    };
    assert_eq!(names(export("status=active").await), ["Ana"]);
    assert_eq!(names(export("status=canceled").await), ["Ben"]);
    assert_eq!(names(export("status=none").await), ["Cy"]);
    assert_eq!(
        names(export(&format!("tier={tier}")).await),
        ["Ana"],
        "only running pledges count for a tier"
    );
    assert_eq!(names(export("q=BEN%40EXAMPLE").await), ["Ben"]);
    assert_eq!(names(export("q=an").await), ["Ana"], "under three letters");

    // A renamed supporter is found by the new name, not the old one.
    let rename = |name: &'static str| {
        client
            .post(app.url(&format!("/admin/supporters/{ben}")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", name),
                ("visibility", "public"),
            ])
            .send()
    };
    assert_eq!(
        rename("Benedikt Quux").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(names(export("q=dikt%20qu").await), ["Benedikt Quux"]);
    assert_eq!(
        rename("Benedikt Zed").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert!(names(export("q=quux").await).is_empty());
    assert_eq!(names(export("q=t%20zed").await), ["Benedikt Zed"]);
}

async fn keyset_pages_visit_every_supporter_once_in_order_for_every_sort(app: TestApp) {
    let owner = app.owner_token().await;
    // Names that tie once lower-cased, and lifetime values that tie. ASCII
    // only: PostgreSQL's collation may order accents unlike bytes.
    let people = [
        ("Zoe", 0),
        ("ana", 1_000),
        ("Ana", 1_000),
        ("emile", 300),
        ("ben", 0),
        ("Ben", 2_000),
        ("Ana", 300),
    ];
    let mut known = Vec::new();
    for (i, (name, gift)) in people.into_iter().enumerate() {
        let id = app
            .create_patron(&owner, &format!("p{i}@example.org"), name)
            .await;
        if gift > 0 {
            app.post_ok(
                "/api/v1/admin/contributions",
                &owner,
                json!({"supporter_id": id, "amount_minor": gift, "date": "2026-11-01"}),
                StatusCode::CREATED,
            )
            .await;
        }
        known.push((id, name.to_lowercase(), gift));
    }

    for sort in [SortKey::Joined, SortKey::Name, SortKey::Lifetime] {
        for descending in [false, true] {
            let mut expected = known.clone();
            expected.sort_by(|a, b| match sort {
                SortKey::Joined => a.0.cmp(&b.0),
                SortKey::Name => (&a.1, a.0).cmp(&(&b.1, b.0)),
                SortKey::Lifetime => (a.2, a.0).cmp(&(b.2, b.0)),
            });
            if descending {
                expected.reverse();
            }
            let expected: Vec<i64> = expected.iter().map(|p| p.0).collect();

            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = directory::page(
                    &app.db,
                    &DirectoryFilter::default(),
                    sort,
                    descending,
                    cursor.as_ref(),
                    2,
                )
                .await
                .unwrap();
                seen.extend(page.iter().map(|r| r.id));
                match page.last() {
                    Some(last) if page.len() == 2 => cursor = Some(last.cursor(sort)),
                    _ => break,
                }
            }
            assert_eq!(seen, expected, "{sort:?}, descending: {descending}");
        }
    }
}
