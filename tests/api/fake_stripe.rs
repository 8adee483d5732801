//! A fake Stripe that speaks Stripe's HTTP API on loopback, with state,
//! built from Stripe's official example objects (tests/fixtures), so the
//! real async-stripe client parses what it answers. Test code drives the
//! lifecycle (complete a checkout, renew, fail, recover, refund, dispute)
//! and delivers correctly signed webhooks, with duplicates, shuffling and
//! concurrency on request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use rand::seq::SliceRandom;
use serde_json::{Value, json};

pub const WEBHOOK_SECRET: &str = "whsec_test_patronage";
pub const FEE_PERCENT_BP: i64 = 290; // 2.9 %
pub const FEE_FIXED: i64 = 30;
const DAY: i64 = 86_400;

fn fixtures() -> &'static Value {
    static F: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let text = include_str!("../fixtures/stripe_objects.json");
        serde_json::from_str::<Value>(text).unwrap()["resources"].clone()
    })
}

/// A fresh copy of Stripe's example object of `kind`.
pub fn example(kind: &str) -> Value {
    fixtures()[kind].clone()
}

#[derive(Default)]
struct Store {
    seq: u64,
    objects: HashMap<String, Value>,
    /// Checkout line items and subscription metadata, by session id.
    session_extras: HashMap<String, (Value, Value)>,
    idempotent: HashMap<String, (u16, Value)>,
    requests: Vec<String>,
    /// Ids of children by parent, e.g. "invoice_payment:in_…" → [inpay_…],
    /// so lookups stay fast when the benchmark makes thousands of objects.
    children: HashMap<String, Vec<String>>,
    /// Every event made, in order: what `GET /v1/events` lists.
    events: Vec<Value>,
}

impl Store {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_fake{:06}", self.seq)
    }

    fn put(&mut self, object: Value) -> Value {
        let id = object["id"].as_str().unwrap().to_owned();
        let parent = match object["object"].as_str() {
            Some("invoice_payment") => object["invoice"].as_str(),
            Some("refund") => object["charge"].as_str(),
            _ => None,
        };
        if let Some(parent) = parent
            && !self.objects.contains_key(&id)
        {
            let key = format!("{}:{parent}", object["object"].as_str().unwrap());
            self.children.entry(key).or_default().push(id.clone());
        }
        self.objects.insert(id, object.clone());
        object
    }

    fn children(&self, kind: &str, parent: &str) -> Vec<Value> {
        self.children
            .get(&format!("{kind}:{parent}"))
            .map(|ids| ids.iter().map(|id| self.objects[id].clone()).collect())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base: String,
    store: Arc<Mutex<Store>>,
    client: reqwest::Client,
    /// Where webhooks go; each delivery picks one at random (replicas).
    webhook_urls: Arc<Mutex<Vec<String>>>,
    idempotency_gate: Arc<Mutex<()>>,
    /// Path prefixes that answer 500, to play an outage.
    down: Arc<Mutex<Vec<String>>>,
    /// Path prefixes that answer only after a delay, to play a slow API.
    slow: Arc<Mutex<Vec<(String, std::time::Duration)>>>,
    /// The app whose task queue a delivery runs to the end before it
    /// returns, so tests read settled state instead of sleeping.
    settles: Arc<Mutex<Option<Arc<patronage::context::Context>>>>,
}

/// How to deliver a batch of events.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub copies: usize,
    pub shuffle: bool,
    pub concurrent: bool,
}

impl Delivery {
    pub const ONCE: Delivery = Delivery {
        copies: 1,
        shuffle: false,
        concurrent: false,
    };
    pub const HOSTILE: Delivery = Delivery {
        copies: 3,
        shuffle: true,
        concurrent: true,
    };
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Stripe's error body (boxed: responses are large and errors rare).
fn stripe_error(status: StatusCode, code: &str, message: &str) -> Box<Response> {
    let body =
        json!({"error": {"type": "invalid_request_error", "code": code, "message": message}});
    Box::new((status, axum::Json(body)).into_response())
}

fn list(data: Vec<Value>, url: &str) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "url": url})
}

/// Form fields as Stripe's client sends them (`a[b][0]=c`).
fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn prefixed(fields: &HashMap<String, String>, prefix: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in fields {
        if let Some(rest) = k
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
        {
            out.insert(rest.to_owned(), json!(v));
        }
    }
    Value::Object(out)
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeStripe {
            base: format!("http://{}/", listener.local_addr().unwrap()),
            store: Arc::default(),
            client: reqwest::Client::new(),
            webhook_urls: Arc::default(),
            idempotency_gate: Arc::default(),
            down: Arc::default(),
            slow: Arc::default(),
            settles: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/{*path}", get(handle).post(handle).delete(handle))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Makes requests to `/v1/<prefix>…` fail with 500 until `restore`.
    pub fn break_endpoint(&self, prefix: &str) {
        self.down.lock().unwrap().push(prefix.to_owned());
    }

    /// Requests under `prefix` take `delay` before they are answered.
    pub fn slow_endpoint(&self, prefix: &str, delay: std::time::Duration) {
        self.slow.lock().unwrap().push((prefix.to_owned(), delay));
    }

    /// Changes an object at Stripe without any event: drift that only a
    /// comparison finds. `path` is a JSON pointer, e.g. "/status".
    pub fn drift(&self, id: &str, path: &str, value: Value) {
        let mut s = self.store.lock().unwrap();
        *s.objects
            .get_mut(id)
            .unwrap()
            .pointer_mut(path)
            .expect("an existing field") = value;
    }

    pub fn restore(&self) {
        self.down.lock().unwrap().clear();
    }

    pub fn send_webhooks_to(&self, url: String) {
        self.webhook_urls.lock().unwrap().push(url);
    }

    /// After each delivery, runs `ctx`'s task queue until it is idle.
    pub fn settle_through(&self, ctx: Arc<patronage::context::Context>) {
        *self.settles.lock().unwrap() = Some(ctx);
    }

    /// Runs the app's due tasks (fees, subscription reads, queued events)
    /// until none is due or running.
    pub async fn settle(&self) {
        let ctx = self.settles.lock().unwrap().clone();
        if let Some(ctx) = ctx {
            patronage::queue::run_until_idle(&ctx, std::time::Duration::from_secs(20))
                .await
                .expect("the task queue runs");
        }
    }

    pub fn object(&self, id: &str) -> Value {
        self.store
            .lock()
            .unwrap()
            .objects
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("no object {id}"))
    }

    /// Requests received, as "METHOD /path key=…".
    pub fn requests(&self) -> Vec<String> {
        self.store.lock().unwrap().requests.clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.store
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    }

    fn respond(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &str,
    ) -> Result<Value, Box<Response>> {
        let f = form(body);
        let q = form(query);
        let mut s = self.store.lock().unwrap();
        let parts: Vec<&str> = path.split('/').collect();
        let missing = |id: &str| {
            stripe_error(
                StatusCode::NOT_FOUND,
                "resource_missing",
                &format!("No such object: '{id}'"),
            )
        };
        match (method.as_str(), parts.as_slice()) {
            ("POST", ["products"]) => {
                let id = f.get("id").cloned().unwrap_or_else(|| s.id("prod"));
                if s.objects.contains_key(&id) {
                    return Err(stripe_error(
                        StatusCode::BAD_REQUEST,
                        "resource_already_exists",
                        "Product already exists.",
                    ));
                }
                let mut p = example("product");
                p["id"] = json!(id);
                p["name"] = json!(f.get("name").cloned().unwrap_or_default());
                p["metadata"] = prefixed(&f, "metadata");
                p["default_price"] = Value::Null;
                Ok(s.put(p))
            }
            ("GET", ["products", id]) => s.objects.get(*id).cloned().ok_or_else(|| missing(id)),
            ("POST", ["prices"]) => {
                let id = s.id("price");
                let mut p = example("price");
                p["id"] = json!(id);
                p["product"] = json!(f["product"]);
                p["unit_amount"] = json!(f["unit_amount"].parse::<i64>().unwrap());
                p["unit_amount_decimal"] = json!(f["unit_amount"]);
                p["currency"] = json!(f["currency"]);
                p["lookup_key"] = json!(f.get("lookup_key"));
                p["active"] = json!(true);
                p["type"] = json!("recurring");
                p["recurring"]["interval"] = json!(f["recurring[interval]"]);
                p["recurring"]["interval_count"] = json!(1);
                Ok(s.put(p))
            }
            ("POST", ["prices", id]) => {
                let p = s.objects.get_mut(*id).ok_or_else(|| missing(id))?;
                if let Some(active) = f.get("active") {
                    p["active"] = json!(active == "true");
                }
                Ok(p.clone())
            }
            ("GET", ["prices"]) => {
                let keys: Vec<&String> = q
                    .iter()
                    .filter(|(k, _)| k.starts_with("lookup_keys"))
                    .map(|(_, v)| v)
                    .collect();
                let found = s
                    .objects
                    .values()
                    .filter(|o| {
                        o["object"] == "price" && keys.iter().any(|k| o["lookup_key"] == json!(k))
                    })
                    .cloned()
                    .collect();
                Ok(list(found, "/v1/prices"))
            }
            ("POST", ["customers"]) => {
                let id = s.id("cus");
                let mut c = example("customer");
                c["id"] = json!(id);
                c["email"] = json!(f.get("email"));
                c["name"] = json!(f.get("name"));
                c["metadata"] = prefixed(&f, "metadata");
                Ok(s.put(c))
            }
            ("POST", ["checkout", "sessions"]) => {
                let id = s.id("cs_test");
                let mut c = example("checkout.session");
                let mode = f["mode"].clone();
                let (amount, currency) = match f.get("line_items[0][price]") {
                    Some(price) => {
                        let p = s.objects.get(price).ok_or_else(|| missing(price))?;
                        (
                            p["unit_amount"].as_i64().unwrap(),
                            p["currency"].as_str().unwrap().to_owned(),
                        )
                    }
                    None => (
                        f["line_items[0][price_data][unit_amount]"]
                            .parse::<i64>()
                            .unwrap(),
                        f["line_items[0][price_data][currency]"].clone(),
                    ),
                };
                c["id"] = json!(id);
                c["url"] = json!(format!("https://checkout.stripe.test/c/pay/{id}"));
                c["mode"] = json!(mode);
                c["customer"] = json!(f.get("customer"));
                c["client_reference_id"] = json!(f.get("client_reference_id"));
                c["metadata"] = prefixed(&f, "metadata");
                c["status"] = json!("open");
                c["payment_status"] = json!("unpaid");
                c["amount_total"] = json!(amount);
                c["amount_subtotal"] = json!(amount);
                c["currency"] = json!(currency);
                c["success_url"] = json!(f.get("success_url"));
                c["cancel_url"] = json!(f.get("cancel_url"));
                c["subscription"] = Value::Null;
                c["payment_intent"] = Value::Null;
                c["invoice"] = Value::Null;
                c["created"] = json!(now());
                let line: HashMap<String, String> = f
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix("line_items[0]")
                            .map(|r| (r.to_owned(), v.clone()))
                    })
                    .collect();
                let sub_meta: serde_json::Map<String, Value> = f
                    .iter()
                    .filter_map(|(k, v)| {
                        let key = k
                            .strip_prefix("subscription_data[metadata][")?
                            .strip_suffix(']')?;
                        Some((key.to_owned(), json!(v)))
                    })
                    .collect();
                let sub_meta = Value::Object(sub_meta);
                s.session_extras.insert(id.clone(), (json!(line), sub_meta));
                Ok(s.put(c))
            }
            ("GET", ["checkout", "sessions", id]) => {
                s.objects.get(*id).cloned().ok_or_else(|| missing(id))
            }
            ("POST", ["billing_portal", "sessions"]) => {
                let id = s.id("bps");
                let mut b = example("billing_portal.session");
                b["id"] = json!(id);
                b["customer"] = json!(f["customer"]);
                b["return_url"] = json!(f.get("return_url"));
                b["url"] = json!(format!("https://billing.stripe.test/p/session/{id}"));
                b["flow"] = Value::Null;
                Ok(s.put(b))
            }
            ("POST", ["subscriptions"]) => {
                let price_id = f["items[0][price]"].clone();
                let price = s
                    .objects
                    .get(&price_id)
                    .cloned()
                    .ok_or_else(|| missing(&price_id))?;
                let sub = new_subscription(
                    &mut s,
                    &f["customer"],
                    price,
                    prefixed(&f, "metadata"),
                    &f["collection_method"],
                );
                let sub_id = sub["id"].as_str().unwrap().to_owned();
                let invoice = open_invoice(&mut s, &sub_id);
                let mut sub = s.objects[&sub_id].clone();
                if q.values().chain(f.values()).any(|v| v == "latest_invoice") {
                    sub["latest_invoice"] = invoice;
                }
                Ok(sub)
            }
            ("GET", ["events"]) => {
                // Newest first, like Stripe; one page.
                let from: i64 = q
                    .get("created[gte]")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let data: Vec<Value> = s
                    .events
                    .iter()
                    .rev()
                    .filter(|e| e["created"].as_i64().unwrap_or(0) >= from)
                    .cloned()
                    .collect();
                Ok(list(data, "/v1/events"))
            }
            ("GET", ["subscriptions"]) => {
                let mut data: Vec<Value> = s
                    .objects
                    .values()
                    .filter(|o| o["object"] == "subscription")
                    .cloned()
                    .collect();
                data.sort_by(|a, b| b["id"].as_str().cmp(&a["id"].as_str()));
                Ok(list(data, "/v1/subscriptions"))
            }
            ("GET", ["subscriptions", id]) => {
                s.objects.get(*id).cloned().ok_or_else(|| missing(id))
            }
            ("POST", ["subscriptions", id]) => {
                let sub = s.objects.get_mut(*id).ok_or_else(|| missing(id))?;
                if let Some(v) = f.get("cancel_at_period_end") {
                    sub["cancel_at_period_end"] = json!(v == "true");
                    sub["cancel_at"] = if v == "true" {
                        sub["items"]["data"][0]["current_period_end"].clone()
                    } else {
                        Value::Null
                    };
                }
                Ok(sub.clone())
            }
            ("DELETE", ["subscriptions", id]) => {
                let sub = s.objects.get_mut(*id).ok_or_else(|| missing(id))?;
                sub["status"] = json!("canceled");
                sub["canceled_at"] = json!(now());
                sub["ended_at"] = json!(now());
                Ok(sub.clone())
            }
            ("GET", ["invoice_payments"]) => {
                let invoice = q.get("invoice").cloned().unwrap_or_default();
                let found = s
                    .children("invoice_payment", &invoice)
                    .into_iter()
                    .filter(|o| q.get("status").is_none_or(|st| o["status"] == json!(st)))
                    .collect();
                Ok(list(found, "/v1/invoice_payments"))
            }
            ("GET", ["payment_intents", id]) => {
                let mut pi = s.objects.get(*id).cloned().ok_or_else(|| missing(id))?;
                let expand = q.values().any(|v| v == "latest_charge.balance_transaction");
                if expand && let Some(charge_id) = pi["latest_charge"].as_str() {
                    let mut charge = s.objects[charge_id].clone();
                    // Null until Stripe has made it (see `delay_balance_transaction`).
                    if let Some(bt) = charge["balance_transaction"].as_str() {
                        charge["balance_transaction"] = s.objects[bt].clone();
                    }
                    pi["latest_charge"] = charge;
                }
                Ok(pi)
            }
            ("GET", ["charges", id]) => s.objects.get(*id).cloned().ok_or_else(|| missing(id)),
            ("GET", ["refunds"]) => {
                let charge = q.get("charge").cloned().unwrap_or_default();
                let found = s.children("refund", &charge);
                Ok(list(found, "/v1/refunds"))
            }
            ("POST", ["refunds"]) => {
                let pi = f["payment_intent"].clone();
                let charge_id = s.objects.get(&pi).ok_or_else(|| missing(&pi))?["latest_charge"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let charge = s.objects[&charge_id].clone();
                let left = charge["amount"].as_i64().unwrap()
                    - charge["amount_refunded"].as_i64().unwrap();
                let amount = f
                    .get("amount")
                    .map(|a| a.parse::<i64>().unwrap())
                    .unwrap_or(left);
                if amount > left {
                    return Err(stripe_error(
                        StatusCode::BAD_REQUEST,
                        "charge_already_refunded",
                        "Refund exceeds the charge.",
                    ));
                }
                drop(charge);
                Ok(refund_locked(&mut s, &charge_id, amount))
            }
            _ => Err(stripe_error(
                StatusCode::NOT_FOUND,
                "unknown_endpoint",
                &format!("{method} /v1/{path} is not faked"),
            )),
        }
    }

    // ---- lifecycle -----------------------------------------------------

    /// The customer pays at Checkout. Returns the events Stripe would send.
    pub fn complete_checkout(&self, session_id: &str) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        let mut session = s.objects[session_id].clone();
        let (line, sub_meta) = s.session_extras[session_id].clone();
        let customer = session["customer"].as_str().unwrap().to_owned();
        let amount = session["amount_total"].as_i64().unwrap();
        let currency = session["currency"].as_str().unwrap().to_owned();
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        let mut events = Vec::new();
        if session["mode"] == "subscription" {
            let price = match line["[price]"].as_str() {
                Some(id) => s.objects[id].clone(),
                None => {
                    let id = s.id("price");
                    let mut p = example("price");
                    p["id"] = json!(id);
                    p["unit_amount"] = json!(amount);
                    p["unit_amount_decimal"] = json!(amount.to_string());
                    p["currency"] = json!(currency);
                    p["product"] = json!(line["[price_data][product]"]);
                    p["lookup_key"] = Value::Null;
                    p["recurring"]["interval"] = json!(line["[price_data][recurring][interval]"]);
                    p["recurring"]["interval_count"] = json!(1);
                    s.put(p)
                }
            };
            let sub = new_subscription(&mut s, &customer, price, sub_meta, "charge_automatically");
            let sub_id = sub["id"].as_str().unwrap().to_owned();
            session["subscription"] = json!(sub_id);
            s.put(session.clone());
            events.push(event(&mut s, "checkout.session.completed", &session));
            events.push(event(&mut s, "customer.subscription.created", &sub));
            let invoice = paid_invoice(&mut s, &sub_id, "subscription_create");
            events.push(event(&mut s, "invoice.paid", &invoice));
        } else {
            let (pi, _) = payment(
                &mut s,
                &customer,
                amount,
                &currency,
                session["metadata"].clone(),
            );
            session["payment_intent"] = json!(pi);
            s.put(session.clone());
            events.push(event(&mut s, "checkout.session.completed", &session));
        }
        events
    }

    /// The subscription of a completed session.
    pub fn subscription_of(&self, session_id: &str) -> String {
        self.object(session_id)["subscription"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn payment_intent_of(&self, session_id: &str) -> String {
        self.object(session_id)["payment_intent"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The next period is charged and paid.
    pub fn renew(&self, sub_id: &str) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        advance(&mut s, sub_id);
        let invoice = paid_invoice(&mut s, sub_id, "subscription_cycle");
        let sub = s.objects[sub_id].clone();
        vec![
            event(&mut s, "invoice.paid", &invoice),
            event(&mut s, "customer.subscription.updated", &sub),
        ]
    }

    /// The renewal charge fails: the subscription goes past due.
    pub fn fail_renewal(&self, sub_id: &str) -> (String, Vec<Value>) {
        let mut s = self.store.lock().unwrap();
        advance(&mut s, sub_id);
        let invoice = open_invoice(&mut s, sub_id);
        s.objects.get_mut(sub_id).unwrap()["status"] = json!("past_due");
        let sub = s.objects[sub_id].clone();
        let id = invoice["id"].as_str().unwrap().to_owned();
        (
            id,
            vec![
                event(&mut s, "invoice.payment_failed", &invoice),
                event(&mut s, "customer.subscription.updated", &sub),
            ],
        )
    }

    /// The renewal waits for the payer to confirm it with their bank.
    pub fn require_action(&self, sub_id: &str) -> (String, Vec<Value>) {
        let mut s = self.store.lock().unwrap();
        advance(&mut s, sub_id);
        let invoice = open_invoice(&mut s, sub_id);
        let id = invoice["id"].as_str().unwrap().to_owned();
        (
            id,
            vec![event(&mut s, "invoice.payment_action_required", &invoice)],
        )
    }

    /// A retry of the failed invoice succeeds.
    pub fn recover(&self, sub_id: &str, invoice_id: &str) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        let invoice = pay_invoice(&mut s, invoice_id);
        s.objects.get_mut(sub_id).unwrap()["status"] = json!("active");
        let sub = s.objects[sub_id].clone();
        vec![
            event(&mut s, "invoice.paid", &invoice),
            event(&mut s, "customer.subscription.updated", &sub),
        ]
    }

    /// The sponsor pays the emailed invoice.
    pub fn pay_latest_invoice(&self, sub_id: &str) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        let invoice_id = s.objects[sub_id]["latest_invoice"]
            .as_str()
            .unwrap()
            .to_owned();
        let invoice = pay_invoice(&mut s, &invoice_id);
        vec![event(&mut s, "invoice.paid", &invoice)]
    }

    /// Stripe gives up retrying and cancels.
    pub fn give_up(&self, sub_id: &str) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        let sub = s.objects.get_mut(sub_id).unwrap();
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now());
        sub["ended_at"] = json!(now());
        sub["cancellation_details"] =
            json!({"comment": null, "feedback": null, "reason": "payment_failed"});
        let sub = sub.clone();
        vec![event(&mut s, "customer.subscription.deleted", &sub)]
    }

    /// The latest charge of a subscription or gift (via its payment intent).
    pub fn charge_of_intent(&self, pi: &str) -> String {
        self.object(pi)["latest_charge"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn latest_charge(&self, sub_id: &str) -> String {
        let s = self.store.lock().unwrap();
        let invoice = s.objects[sub_id]["latest_invoice"]
            .as_str()
            .unwrap()
            .to_owned();
        let payment = s.children("invoice_payment", &invoice).pop().unwrap();
        let pi = payment["payment"]["payment_intent"].as_str().unwrap();
        s.objects[pi]["latest_charge"].as_str().unwrap().to_owned()
    }

    /// Refunds part or all of a charge from Stripe's dashboard.
    pub fn refund(&self, charge_id: &str, amount: i64) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        refund_locked(&mut s, charge_id, amount);
        let charge = s.objects[charge_id].clone();
        vec![event(&mut s, "charge.refunded", &charge)]
    }

    /// A charge for something else sold on the same Stripe account.
    pub fn foreign_charge(&self, amount: i64) -> String {
        let mut s = self.store.lock().unwrap();
        let customer = s.id("cus");
        let (_, charge) = payment(&mut s, &customer, amount, "eur", json!({}));
        charge
    }

    /// The card holder disputes a charge; Stripe takes the amount and a fee.
    pub fn dispute(&self, charge_id: &str) -> (String, Vec<Value>) {
        let mut s = self.store.lock().unwrap();
        let charge = s.objects[charge_id].clone();
        let amount = charge["amount"].as_i64().unwrap();
        let id = s.id("du");
        let mut bt = example("balance_transaction");
        bt["id"] = json!(s.id("txn"));
        bt["amount"] = json!(-amount);
        bt["fee"] = json!(1500);
        bt["net"] = json!(-amount - 1500);
        bt["currency"] = charge["currency"].clone();
        bt["type"] = json!("adjustment");
        bt["source"] = json!(id);
        let mut d = example("dispute");
        d["id"] = json!(id);
        d["amount"] = json!(amount);
        d["charge"] = json!(charge_id);
        d["currency"] = charge["currency"].clone();
        d["payment_intent"] = charge["payment_intent"].clone();
        d["status"] = json!("needs_response");
        d["reason"] = json!("fraudulent");
        d["balance_transactions"] = json!([bt]);
        d["created"] = json!(now());
        let d = s.put(d);
        s.objects.get_mut(charge_id).unwrap()["disputed"] = json!(true);
        (id, vec![event(&mut s, "charge.dispute.created", &d)])
    }

    pub fn close_dispute(&self, dispute_id: &str, won: bool) -> Vec<Value> {
        let mut s = self.store.lock().unwrap();
        let d = s.objects.get_mut(dispute_id).unwrap();
        d["status"] = json!(if won { "won" } else { "lost" });
        let d = d.clone();
        vec![event(&mut s, "charge.dispute.closed", &d)]
    }

    /// The charge has no balance transaction yet (Stripe makes it a little
    /// after the charge for some payment methods); returns a function that
    /// makes it appear.
    pub fn delay_balance_transaction(&self, charge_id: &str) -> impl FnOnce() + use<> {
        let bt = self.object(charge_id)["balance_transaction"].clone();
        self.drift(charge_id, "/balance_transaction", Value::Null);
        let (fake, charge) = (self.clone(), charge_id.to_owned());
        move || fake.drift(&charge, "/balance_transaction", bt)
    }

    /// An event in Stripe's event list that this version cannot read (a
    /// field of an unexpected type), created `age` seconds ago; never sent
    /// as a webhook.
    pub fn unreadable_listed_event(&self, age: i64) -> String {
        let mut s = self.store.lock().unwrap();
        let mut invoice = example("invoice");
        invoice["amount_paid"] = json!("a lot");
        let mut e = event(&mut s, "invoice.paid", &invoice);
        e["created"] = json!(now() - age);
        let id = e["id"].as_str().unwrap().to_owned();
        *s.events.last_mut().unwrap() = e;
        id
    }

    /// An event patronage does not act on (Stripe sends many).
    pub fn unhandled_event(&self) -> Value {
        let mut s = self.store.lock().unwrap();
        let customer = example("customer");
        event(&mut s, "customer.created", &customer)
    }

    /// An event of a type newer than this version of async-stripe knows.
    pub fn future_event(&self) -> Value {
        let mut s = self.store.lock().unwrap();
        event(
            &mut s,
            "treasury.future_thing.created",
            &json!({"object": "future_thing", "id": "ft_1"}),
        )
    }

    // ---- delivery ------------------------------------------------------

    pub fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
        patronage::payments::webhook::sign(payload, secret, timestamp)
    }

    /// POSTs one event, signed; returns the status.
    pub async fn post_event(&self, event: &Value) -> StatusCode {
        let payload = event.to_string();
        let signature = Self::sign(&payload, WEBHOOK_SECRET, now());
        self.post_raw(&payload, &signature).await
    }

    pub async fn post_raw(&self, payload: &str, signature: &str) -> StatusCode {
        let url = {
            let urls = self.webhook_urls.lock().unwrap();
            assert!(!urls.is_empty(), "send_webhooks_to was called");
            urls[rand::random_range(0..urls.len())].clone()
        };
        self.client
            .post(url)
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload.to_owned())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Delivers events the way Stripe may: repeated, out of order, at once.
    /// Every delivery must be acknowledged with 200.
    pub async fn deliver(&self, events: &[Value], how: Delivery) {
        let mut batch: Vec<&Value> = events
            .iter()
            .flat_map(|e| std::iter::repeat_n(e, how.copies))
            .collect();
        if how.shuffle {
            batch.shuffle(&mut rand::rng());
        }
        if how.concurrent {
            let statuses =
                futures::future::join_all(batch.iter().map(|e| self.post_event(e))).await;
            assert!(
                statuses.iter().all(|s| *s == StatusCode::OK),
                "{statuses:?}"
            );
        } else {
            for e in batch {
                assert_eq!(self.post_event(e).await, StatusCode::OK);
            }
        }
        self.settle().await;
    }
}

async fn handle(
    State(fake): State<FakeStripe>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let delay = fake
        .slow
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, d)| *d);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Like Stripe, requests with the same key run one at a time, so a
    // concurrent retry sees the first one's result.
    let _gate = key.as_ref().map(|_| fake.idempotency_gate.lock().unwrap());
    {
        let mut s = fake.store.lock().unwrap();
        s.requests.push(format!(
            "{method} /v1/{path} key={}",
            key.as_deref().unwrap_or("-")
        ));
        if let Some(k) = &key
            && let Some((status, body)) = s.idempotent.get(k)
        {
            return (
                StatusCode::from_u16(*status).unwrap(),
                axum::Json(body.clone()),
            )
                .into_response();
        }
    }
    if fake
        .down
        .lock()
        .unwrap()
        .iter()
        .any(|p| path.starts_with(p.as_str()))
    {
        return *stripe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Stripe is having a bad day.",
        );
    }
    assert_eq!(
        headers.get("stripe-version").and_then(|v| v.to_str().ok()),
        Some("2026-09-30.endive"),
        "every request names the API version"
    );
    let result = fake.respond(&method, &path, query.as_deref().unwrap_or(""), &body);
    match result {
        Ok(value) => {
            if let Some(k) = key {
                fake.store
                    .lock()
                    .unwrap()
                    .idempotent
                    .insert(k, (200, value.clone()));
            }
            axum::Json(value).into_response()
        }
        Err(response) => *response,
    }
}

fn period(price: &Value) -> i64 {
    if price["recurring"]["interval"] == "year" {
        365 * DAY
    } else {
        30 * DAY
    }
}

fn event(s: &mut Store, type_: &str, object: &Value) -> Value {
    let mut e = example("event");
    e["id"] = json!(s.id("evt"));
    e["type"] = json!(type_);
    e["created"] = json!(now());
    e["api_version"] = json!("2026-09-30.endive");
    e["data"] = json!({"object": object});
    e["livemode"] = json!(false);
    e["pending_webhooks"] = json!(1);
    e["request"] = json!({"id": null, "idempotency_key": null});
    s.events.push(e.clone());
    e
}

fn new_subscription(
    s: &mut Store,
    customer: &str,
    price: Value,
    metadata: Value,
    collection: &str,
) -> Value {
    let sub_id = s.id("sub");
    let start = now();
    let mut sub = example("subscription");
    sub["id"] = json!(sub_id);
    sub["customer"] = json!(customer);
    sub["status"] = json!("active");
    sub["metadata"] = metadata;
    sub["start_date"] = json!(start);
    sub["created"] = json!(start);
    sub["currency"] = price["currency"].clone();
    sub["cancel_at_period_end"] = json!(false);
    sub["cancel_at"] = Value::Null;
    sub["canceled_at"] = Value::Null;
    sub["ended_at"] = Value::Null;
    sub["collection_method"] = json!(collection);
    sub["days_until_due"] = if collection == "send_invoice" {
        json!(30)
    } else {
        Value::Null
    };
    sub["latest_invoice"] = Value::Null;
    let mut item = sub["items"]["data"][0].clone();
    item["id"] = json!(s.id("si"));
    item["subscription"] = json!(sub_id);
    item["quantity"] = json!(1);
    item["current_period_start"] = json!(start);
    item["current_period_end"] = json!(start + period(&price));
    item["price"] = price;
    sub["items"]["data"] = json!([item]);
    sub["items"]["url"] = json!(format!("/v1/subscription_items?subscription={sub_id}"));
    s.put(sub)
}

/// A charge of `amount` with its balance transaction and payment intent.
fn payment(
    s: &mut Store,
    customer: &str,
    amount: i64,
    currency: &str,
    metadata: Value,
) -> (String, String) {
    let pi_id = s.id("pi");
    let ch_id = s.id("ch");
    let fee = amount * FEE_PERCENT_BP / 10_000 + FEE_FIXED;
    let mut bt = example("balance_transaction");
    let bt_id = s.id("txn");
    bt["id"] = json!(bt_id);
    bt["amount"] = json!(amount);
    bt["fee"] = json!(fee);
    bt["net"] = json!(amount - fee);
    bt["currency"] = json!(currency);
    bt["source"] = json!(ch_id);
    bt["type"] = json!("charge");
    s.put(bt);
    let mut ch = example("charge");
    ch["id"] = json!(ch_id);
    ch["amount"] = json!(amount);
    ch["amount_captured"] = json!(amount);
    ch["amount_refunded"] = json!(0);
    ch["refunded"] = json!(false);
    ch["currency"] = json!(currency);
    ch["customer"] = json!(customer);
    ch["payment_intent"] = json!(pi_id);
    ch["balance_transaction"] = json!(bt_id);
    ch["paid"] = json!(true);
    ch["status"] = json!("succeeded");
    ch["created"] = json!(now());
    s.put(ch);
    let mut pi = example("payment_intent");
    pi["id"] = json!(pi_id);
    pi["amount"] = json!(amount);
    pi["amount_received"] = json!(amount);
    pi["currency"] = json!(currency);
    pi["customer"] = json!(customer);
    pi["status"] = json!("succeeded");
    pi["latest_charge"] = json!(ch_id);
    pi["metadata"] = metadata;
    s.put(pi);
    (pi_id, ch_id)
}

/// Moves a subscription to its next period.
fn advance(s: &mut Store, sub_id: &str) {
    let sub = s.objects.get_mut(sub_id).unwrap();
    let item = &mut sub["items"]["data"][0];
    let end = item["current_period_end"].as_i64().unwrap();
    let length = end - item["current_period_start"].as_i64().unwrap();
    item["current_period_start"] = json!(end);
    item["current_period_end"] = json!(end + length);
}

fn open_invoice(s: &mut Store, sub_id: &str) -> Value {
    let sub = s.objects[sub_id].clone();
    let item = &sub["items"]["data"][0];
    let amount = item["price"]["unit_amount"].as_i64().unwrap();
    let currency = sub["currency"].clone();
    let id = s.id("in");
    let mut inv = example("invoice");
    inv["id"] = json!(id);
    inv["customer"] = sub["customer"].clone();
    inv["currency"] = currency.clone();
    inv["amount_due"] = json!(amount);
    inv["amount_paid"] = json!(0);
    inv["amount_remaining"] = json!(amount);
    inv["hosted_invoice_url"] = json!(format!("https://invoice.stripe.test/i/{id}"));
    inv["total"] = json!(amount);
    inv["subtotal"] = json!(amount);
    inv["status"] = json!("open");
    inv["attempted"] = json!(true);
    inv["attempt_count"] = json!(1);
    inv["number"] = json!(format!("PAT-{:04}", s.seq));
    inv["billing_reason"] = json!("subscription_cycle");
    inv["collection_method"] = json!("charge_automatically");
    inv["hosted_invoice_url"] = json!(format!("https://invoice.stripe.test/i/{id}"));
    inv["period_start"] = item["current_period_start"].clone();
    inv["period_end"] = item["current_period_end"].clone();
    inv["parent"] = json!({"type": "subscription_details", "quote_details": null,
        "subscription_details": {"subscription": sub_id, "metadata": sub["metadata"].clone()}});
    let mut line = inv["lines"]["data"][0].clone();
    line["id"] = json!(s.id("il"));
    line["invoice"] = json!(id);
    line["amount"] = json!(amount);
    line["currency"] = currency;
    line["period"] =
        json!({"start": item["current_period_start"], "end": item["current_period_end"]});
    line["parent"] = json!({"type": "subscription_item_details", "invoice_item_details": null,
        "subscription_item_details": {"invoice_item": null, "proration": false, "proration_details": {"credited_items": null},
            "subscription": sub_id, "subscription_item": item["id"]}});
    inv["lines"]["data"] = json!([line]);
    inv["lines"]["url"] = json!(format!("/v1/invoices/{id}/lines"));
    inv["status_transitions"]["paid_at"] = Value::Null;
    inv["created"] = json!(now());
    s.objects.get_mut(sub_id).unwrap()["latest_invoice"] = json!(id);
    s.put(inv)
}

fn pay_invoice(s: &mut Store, invoice_id: &str) -> Value {
    let inv = s.objects[invoice_id].clone();
    let amount = inv["amount_due"].as_i64().unwrap();
    let currency = inv["currency"].as_str().unwrap().to_owned();
    let (pi, _) = payment(
        s,
        inv["customer"].as_str().unwrap(),
        amount,
        &currency,
        json!({}),
    );
    let mut ip = example("invoice_payment");
    ip["id"] = json!(s.id("inpay"));
    ip["invoice"] = json!(invoice_id);
    ip["amount_paid"] = json!(amount);
    ip["amount_requested"] = json!(amount);
    ip["currency"] = json!(currency);
    ip["status"] = json!("paid");
    ip["payment"] = json!({"type": "payment_intent", "payment_intent": pi});
    ip["status_transitions"]["paid_at"] = json!(now());
    s.put(ip);
    let inv = s.objects.get_mut(invoice_id).unwrap();
    inv["status"] = json!("paid");
    inv["amount_paid"] = json!(amount);
    inv["amount_remaining"] = json!(0);
    inv["status_transitions"]["paid_at"] = json!(now());
    inv.clone()
}

fn paid_invoice(s: &mut Store, sub_id: &str, reason: &str) -> Value {
    let inv = open_invoice(s, sub_id);
    let id = inv["id"].as_str().unwrap().to_owned();
    s.objects.get_mut(&id).unwrap()["billing_reason"] = json!(reason);
    pay_invoice(s, &id)
}

fn refund_locked(s: &mut Store, charge_id: &str, amount: i64) -> Value {
    let id = s.id("re");
    let charge = s.objects.get_mut(charge_id).unwrap();
    let refunded = charge["amount_refunded"].as_i64().unwrap() + amount;
    charge["amount_refunded"] = json!(refunded);
    charge["refunded"] = json!(refunded == charge["amount"].as_i64().unwrap());
    let charge = charge.clone();
    let mut r = example("refund");
    r["id"] = json!(id);
    r["amount"] = json!(amount);
    r["charge"] = json!(charge_id);
    r["payment_intent"] = charge["payment_intent"].clone();
    r["currency"] = charge["currency"].clone();
    r["status"] = json!("succeeded");
    r["reason"] = Value::Null;
    r["created"] = json!(now());
    s.put(r)
}
