//! The `patronage` binary as an admin runs it.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_patronage");

fn patronage(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    // Start from the defaults alone, whatever the test runner's environment says.
    for (key, _) in std::env::vars() {
        if key.starts_with("PATRONAGE") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn config_check_prints_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-very-secret-signing-key-that-must-not-leak";
    let out = patronage(dir.path())
        .args(["config", "check"])
        .env("PATRONAGE__AUTH__JWT_SECRET", secret)
        .env(
            "PATRONAGE__DATABASE__URL",
            "postgres://app:hunter2@db.internal/patronage",
        )
        .env("PATRONAGE__SERVER__BIND", "0.0.0.0:9000")
        .env("PATRONAGE__STRIPE__SECRET_KEY", "sk_live_never_printed")
        .env(
            "PATRONAGE__STRIPE__WEBHOOK_SECRET",
            "whsec_never_printed,whsec_old_never_printed",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("bind = \"0.0.0.0:9000\""), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(
        !text.contains(secret) && !text.contains("hunter2"),
        "{text}"
    );
    assert!(!text.contains("never_printed"), "{text}");

    let bad = patronage(dir.path())
        .args(["config", "check"])
        .env("PATRONAGE__SERVER__BIND", "not an address")
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn admin_create_takes_the_password_from_stdin_never_argv() {
    let dir = tempfile::tempdir().unwrap();
    let run = |password: &str, email: &str| {
        let mut child = patronage(dir.path())
            .args(["admin", "create", "--email", email, "--role", "viewer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run("short", "books@example.org");
    assert!(!short.status.success(), "short passwords are refused");
    let ok = run("a long enough password", "books@example.org");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("created viewer books@example.org"));
    assert!(
        dir.path().join("data/patronage.db").exists(),
        "SQLite under ./data by default"
    );
    let twice = run("a long enough password", "books@example.org");
    assert!(
        !twice.status.success(),
        "the same email cannot be created twice"
    );

    let with_flag = patronage(dir.path())
        .args([
            "admin",
            "create",
            "--email",
            "x@example.org",
            "--role",
            "owner",
            "--password",
            "secret secret",
        ])
        .output()
        .unwrap();
    assert!(!with_flag.status.success(), "there is no --password flag");
}

#[test]
fn serve_starts_from_nothing_prints_a_setup_token_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = patronage(dir.path())
        .arg("serve")
        .env("PATRONAGE__SERVER__BIND", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut addr, mut token) = (None, None);
    let started = Instant::now();
    while (addr.is_none() || token.is_none()) && started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("listening") {
            addr = line
                .split("addr=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .map(str::to_owned);
        }
        if let Some(rest) = line.split("/admin/setup?token=").nth(1) {
            token = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    let addr = addr.expect("serve logs its address");
    let token = token.expect("serve prints a setup token while no owner exists");
    assert!(
        dir.path().join("data/jwt.key").exists(),
        "the signing key is generated into ./data"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        // The printed link opens the setup page...
        let page = client
            .get(format!("http://{addr}/admin/setup?token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Create the first owner"));
        // ...and the same token works for scripts.
        let res = client
            .post(format!("http://{addr}/api/v1/admin/setup"))
            .json(&json!({"setup_token": token, "email": "me@example.org", "password": "a long enough password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let login = client
            .post(format!("http://{addr}/api/v1/admin/login"))
            .json(&json!({"email": "me@example.org", "password": "a long enough password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
    });
    let wal = std::fs::read(dir.path().join("data/patronage.db")).unwrap();
    // SQLite header bytes 18 and 19 are 2 in WAL mode.
    assert_eq!((wal[18], wal[19]), (2, 2), "the database runs in WAL mode");

    sigterm(child.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `config check`, `migrate` and the `serve` start-up line show the
/// database URL; sqlx takes a password in the user part or as a query
/// parameter, and neither may ever be printed.
#[test]
fn database_passwords_are_never_printed_wherever_they_sit_in_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = patronage(dir.path())
        .args(["config", "check"])
        .env(
            "PATRONAGE__DATABASE__URL",
            "postgres://app:hunter1@db.internal/patronage?sslmode=prefer&password=hunter2&sslpassword=hunter3",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("db.internal/patronage?sslmode=prefer"),
        "{text}"
    );
    assert!(!text.contains("hunter"), "{text}");

    // `migrate` and `serve` against a real PostgreSQL (trust auth ignores
    // the password, so the URL works as written).
    let Some(admin) = crate::helpers::postgres_url() else {
        eprintln!("skipped the PostgreSQL half: set PATRONAGE_TEST_DATABASE_URL");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, name) = rt.block_on(crate::helpers::create_pg_database(&admin));
    let mut with_password = url::Url::parse(&url).unwrap();
    with_password.set_username("postgres").unwrap();
    with_password.set_password(Some("hunter1")).unwrap();
    with_password
        .query_pairs_mut()
        .append_pair("password", "hunter2");
    let url = with_password.to_string();

    let migrate = patronage(dir.path())
        .arg("migrate")
        .env("PATRONAGE__DATABASE__URL", &url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&migrate.stderr).into_owned()
        + &String::from_utf8_lossy(&migrate.stdout);
    assert!(migrate.status.success(), "{said}");
    assert!(said.contains("migrations applied to postgres://"), "{said}");
    assert!(!said.contains("hunter"), "{said}");

    let mut child = patronage(dir.path())
        .arg("serve")
        .env("PATRONAGE__DATABASE__URL", &url)
        .env("PATRONAGE__SERVER__BIND", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut listening = None;
    let started = Instant::now();
    while listening.is_none() && started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("listening") {
            listening = Some(line);
        }
    }
    sigterm(child.id());
    let _ = child.wait();
    crate::helpers::drop_pg_database(admin, name);
    let line = listening.expect("serve logs where it listens");
    assert!(line.contains("postgres://"), "{line}");
    assert!(!line.contains("hunter"), "{line}");
}
