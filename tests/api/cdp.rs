//! A small Chrome DevTools Protocol driver: headless Chromium on one page,
//! driven the way a person uses it (go to a URL, type into a field, press a
//! button), plus what a test needs to look behind the page: cookies, the
//! console, screenshots, the viewport and the colour scheme.
//!
//! One WebSocket to the page target. A reader task hands each reply to the
//! call that waits for it and keeps every event, so a wait can look for an
//! event that came after a given point ("the load after this click").

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Every wait gives up after this, naming what it waited for.
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Shared {
    replies: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    events: Mutex<Vec<Value>>,
}

pub struct Browser {
    child: Child,
    out: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and attaches to its
    /// blank page, with the page, runtime, log and network events on.
    pub async fn launch() -> Browser {
        crate::browser::ensure_chromium();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts (apt-get install -y chromium)");
        let browser_ws = devtools_url(&mut child);
        // ws://127.0.0.1:PORT/devtools/browser/ID: the page's own socket is
        // listed by the same server.
        let http = browser_ws
            .replace("ws://", "http://")
            .split("/devtools/")
            .next()
            .unwrap()
            .to_owned();
        let page_ws = page_target(&http).await;
        let (socket, _) = tokio_tungstenite::connect_async(page_ws.as_str())
            .await
            .expect("connect to the page's DevTools socket");
        let (mut sink, mut stream) = socket.split();
        let (out, mut outbox) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = outbox.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let shared = Arc::new(Shared::default());
        let (s, dismiss) = (shared.clone(), out.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = s.replies.lock().unwrap().remove(&id) {
                        let _ = tx.send(v);
                    }
                    continue;
                }
                // A dialog blocks the page until answered: dismiss it at
                // once (it stays recorded among the events).
                if v["method"] == "Page.javascriptDialogOpening" {
                    let m = json!({"id": 0, "method": "Page.handleJavaScriptDialog",
                                   "params": {"accept": false}});
                    let _ = dismiss.send(Message::text(m.to_string()));
                }
                s.events.lock().unwrap().push(v);
            }
        });
        let browser = Browser {
            child,
            out,
            shared,
            next_id: AtomicU64::new(1),
            _profile: profile,
        };
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.call(&format!("{domain}.enable"), json!({})).await;
        }
        browser
    }

    /// Sends a command and returns its `result`; a protocol error panics.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.replies.lock().unwrap().insert(id, tx);
        let msg = json!({"id": id, "method": method, "params": params});
        self.out
            .send(Message::text(msg.to_string()))
            .expect("the DevTools socket is open");
        let reply = tokio::time::timeout(TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("no reply to {method} within {TIMEOUT:?}"))
            .expect("the DevTools socket closed");
        assert!(reply["error"].is_null(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    /// How many events have arrived so far: a mark to wait from.
    fn mark(&self) -> usize {
        self.shared.events.lock().unwrap().len()
    }

    /// Waits for an event `method` that arrived after `mark`.
    async fn event_after(&self, mark: usize, method: &str, what: &str) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(e) = self.shared.events.lock().unwrap()[mark..]
                .iter()
                .find(|e| e["method"] == method)
            {
                return e["params"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: no {method} within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens `url` and waits until it has loaded (redirects followed).
    pub async fn goto(&self, url: &str) {
        let mark = self.mark();
        let r = self.call("Page.navigate", json!({"url": url})).await;
        assert!(r["errorText"].is_null(), "navigating to {url}: {r}");
        self.event_after(mark, "Page.loadEventFired", &format!("loading {url}"))
            .await;
    }

    /// The value of a JavaScript expression (awaited if a promise); an
    /// exception panics with its message.
    pub async fn eval(&self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            r["exceptionDetails"].is_null(),
            "`{js}` threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Runs `js` on the element `selector` names, as `el`; panics if there
    /// is none, so a renamed field fails clearly.
    async fn on(&self, selector: &str, js: &str) -> Value {
        let sel = serde_json::to_string(selector).unwrap();
        let found = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({sel}); if (!el) return {{missing: true}}; return {{value: (() => {{ {js} }})()}}; }})()"
            ))
            .await;
        assert!(
            found["missing"].is_null(),
            "no element matches `{selector}` on {}",
            self.url().await
        );
        found["value"].clone()
    }

    /// Focuses the field and types `text` over whatever it held, as a
    /// keyboard would (input events included).
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.on(
            selector,
            "el.focus(); if (el.select) el.select(); return null",
        )
        .await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Picks the option with `value` in a `<select>`.
    pub async fn choose(&self, selector: &str, value: &str) {
        let v = serde_json::to_string(value).unwrap();
        let chosen = self
            .on(
                selector,
                &format!(
                    "el.value = {v}; el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value"
                ),
            )
            .await;
        assert_eq!(chosen, value, "`{selector}` has no option {value}");
    }

    /// Clicks the element and waits for the page it leads to (a submitted
    /// form or a followed link) to load.
    pub async fn click(&self, selector: &str) {
        let mark = self.mark();
        self.on(selector, "el.click(); return null").await;
        self.event_after(
            mark,
            "Page.loadEventFired",
            &format!("the page after clicking `{selector}`"),
        )
        .await;
    }

    /// Chooses `path` in the file input `selector`, as the file picker
    /// would (DevTools sets it; no dialog opens).
    pub async fn set_file(&self, selector: &str, path: &Path) {
        let doc = self.call("DOM.getDocument", json!({"depth": 0})).await;
        let node = self
            .call(
                "DOM.querySelector",
                json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
            )
            .await["nodeId"]
            .clone();
        assert_ne!(node, json!(0), "no element matches `{selector}`");
        self.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": node, "files": [path.display().to_string()]}),
        )
        .await;
    }

    /// The text of the element, as shown (`innerText`).
    pub async fn text(&self, selector: &str) -> String {
        self.on(selector, "return el.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The texts of every element `selector` matches.
    pub async fn texts(&self, selector: &str) -> Vec<String> {
        let sel = serde_json::to_string(selector).unwrap();
        let v = self
            .eval(&format!(
                "[...document.querySelectorAll({sel})].map(e => e.innerText)"
            ))
            .await;
        serde_json::from_value(v).unwrap()
    }

    pub async fn url(&self) -> String {
        self.eval("location.href")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Path and query of the current page: "/admin/login?next=%2Fadmin".
    pub async fn path(&self) -> String {
        self.eval("location.pathname + location.search")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The browser's cookies for `url`, HttpOnly ones included.
    pub async fn cookies(&self, url: &str) -> Vec<Value> {
        let r = self
            .call("Network.getCookies", json!({"urls": [url]}))
            .await;
        r["cookies"].as_array().cloned().unwrap_or_default()
    }

    /// A full-page PNG: the whole document, not just the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let m = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &m["cssContentSize"];
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
            )
            .await;
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .unwrap();
        // Written whole, then renamed: the other backend's twin may write
        // the same file at the same time.
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, png).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    /// The window as a desktop (`mobile` false) or a phone sees it.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// The operating system's light or dark preference.
    pub async fn set_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Everything the page logged: console calls and browser messages
    /// (CSP refusals among them), as text, since launch.
    pub fn messages(&self) -> Vec<String> {
        self.shared
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Log.entryAdded" => Some(format!(
                    "{} {}: {}",
                    e["params"]["entry"]["level"].as_str().unwrap_or(""),
                    e["params"]["entry"]["url"].as_str().unwrap_or(""),
                    e["params"]["entry"]["text"].as_str().unwrap_or("")
                )),
                "Runtime.consoleAPICalled" => Some(format!(
                    "console.{}: {}",
                    e["params"]["type"].as_str().unwrap_or(""),
                    e["params"]["args"]
                )),
                "Runtime.exceptionThrown" => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                _ => None,
            })
            .collect()
    }

    /// The messages that say the Content-Security-Policy refused something.
    pub fn csp_violations(&self) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| m.contains("Content Security Policy"))
            .collect()
    }

    /// The messages of the dialogs (alert, confirm, prompt) pages opened.
    pub fn dialogs(&self) -> Vec<String> {
        self.shared
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "Page.javascriptDialogOpening")
            .map(|e| e["params"]["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads Chromium's stderr until it says where DevTools listens, then
/// keeps draining it on a thread so a chatty browser never blocks.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(Ok(url.trim().to_owned()));
            } else if seen.len() < 40 {
                seen.push(line);
            }
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(url)) => url,
        Ok(Err(log)) => panic!("chromium exited before DevTools listened:\n{log}"),
        Err(_) => panic!("chromium did not start DevTools within {TIMEOUT:?}"),
    }
}

/// The WebSocket of the browser's first page, once it is listed.
async fn page_target(http: &str) -> String {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let listed = match reqwest::get(format!("{http}/json/list")).await {
            Ok(res) => res.json::<Vec<Value>>().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let page = listed
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str());
        if let Some(ws) = page {
            return ws.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromium listed no page within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
