//! Building and running the service. Tests start the real application the
//! same way `patronage serve` does, on port 0.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rand::RngCore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{
        password,
        ratelimit::{Limits, LoginLimiter},
        token::TokenKeys,
    },
    background,
    config::Settings,
    context::{Context, Effects},
    error::{Error, Result},
    heavy::HeavyPools,
    http::{self, AppState, WebState},
    mail::Mailer,
    payments::{Gateway, gateway::STRIPE_API_VERSION},
    snapshot::PublicCache,
    store::{self, Db},
    telemetry,
};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    /// Printed at start while no owner exists; accepted once by
    /// `POST /api/v1/admin/setup`.
    pub setup_token: Option<String>,
}

/// Opens the database named by the settings and applies migrations.
pub async fn open_database(settings: &Settings) -> Result<Db> {
    std::fs::create_dir_all(&settings.server.data_dir).map_err(|e| {
        Error::Config(format!(
            "cannot create data dir {}: {e}",
            settings.server.data_dir.display()
        ))
    })?;
    let db = Db::connect(
        &settings.database_url(),
        settings.database.max_connections,
        Duration::from_secs(settings.database.acquire_timeout_secs),
    )
    .await?;
    db.migrate().await?;
    Ok(db)
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self> {
        let db = open_database(&settings).await?;
        let tokens = TokenKeys::load(&settings.auth, &settings.server.data_dir)?;
        let setup_token = if store::admins::owner_exists(&db).await? {
            None
        } else {
            let mut raw = [0u8; 20];
            rand::rng().fill_bytes(&mut raw);
            let token = hex::encode(raw);
            let ttl = chrono::Duration::hours(settings.auth.setup_token_ttl_hours);
            store::admins::replace_setup_token(&db, &crate::auth::hash_token(&token), ttl).await?;
            Some(token)
        };
        let gateway = Gateway::from_settings(&settings.stripe)?;
        let public =
            Arc::new(PublicCache::new(db.clone(), settings.clone(), gateway.is_some()).await?);
        let listener = TcpListener::bind(settings.server.bind).await.map_err(|e| {
            Error::Config(format!("cannot listen on {}: {e}", settings.server.bind))
        })?;
        match gateway {
            Some(_) => tracing::info!(api_version = STRIPE_API_VERSION, "payments are on"),
            None => tracing::info!("no stripe.secret_key: payments are off, everything else works"),
        }
        let mailer = Mailer::new(&settings.mail, &settings.server.data_dir)?;
        let core = Arc::new(Context {
            heavy: HeavyPools::new(&settings),
            tasks: Default::default(),
            announcer: Default::default(),
            stripe_intake: Default::default(),
            gateway,
            mailer,
            templates: crate::mail::templates::Templates::new(),
            tokens,
            instance_id: instance_id(),
            started_at: store::now(),
            reports: Default::default(),
            measures: crate::fediverse::measures::Measures::new(settings.mastodon_measures()),
            settings: settings.clone(),
            db,
            public,
        });
        let state = Arc::new(WebState {
            login_limiter: LoginLimiter::new(Limits {
                per_client: settings.auth.login_attempts_per_ip_per_minute,
                per_account_per_client: settings.auth.login_attempts_per_account_per_minute,
                per_account: settings
                    .auth
                    .login_attempts_per_account_all_clients_per_minute,
            }),
            // Management links are mailed: one address gets at most the
            // per-account rate, whoever asks.
            manage_limiter: LoginLimiter::new(Limits {
                per_client: settings.auth.login_attempts_per_ip_per_minute,
                per_account_per_client: settings.auth.login_attempts_per_account_per_minute,
                per_account: settings.auth.login_attempts_per_account_per_minute,
            }),
            // Applications are mailed to owners: per address, per contact
            // email, and per email across addresses.
            sponsor_limiter: LoginLimiter::per_hour(Limits {
                per_client: settings.sponsors.applications_per_ip_per_hour,
                per_account_per_client: settings.sponsors.applications_per_email_per_hour,
                per_account: settings.sponsors.applications_per_email_per_hour,
            }),
            metrics: telemetry::metrics_handle(),
            core,
        });
        tokio::task::spawn_blocking(password::warm_up);
        Ok(Application {
            listener,
            state,
            shutdown: CancellationToken::new(),
            setup_token,
        })
    }

    /// The shared context, for tests that inspect what the service did.
    pub fn context(&self) -> AppState {
        self.state.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Cancelling this token shuts the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, then lets requests
    /// in flight finish (up to `server.shutdown_grace_secs`).
    pub async fn run_until_stopped(self) -> Result<()> {
        let Application {
            listener,
            state,
            shutdown,
            ..
        } = self;
        state.public.clone().spawn_poller(
            Duration::from_secs(state.settings.public.snapshot_poll_secs),
            shutdown.clone(),
        );
        spawn_housekeeping(state.clone(), shutdown.clone());
        let core = state.core.clone();
        let heard = core.clone();
        store::notify::spawn_listener(
            &state.db,
            core.instance_id.clone(),
            move |effects| {
                // Another replica's change: look now rather than debounce.
                if effects.public {
                    heard.public.refresh_now();
                }
                heard.wake(Effects {
                    public: false,
                    ..effects
                });
            },
            shutdown.clone(),
        );
        store::notify::spawn_announcer(
            &state.db,
            core.announcer.clone(),
            core.instance_id.clone(),
            shutdown.clone(),
        );
        crate::mail::outbox::spawn_worker(core.clone(), shutdown.clone());
        crate::jobs::start(core.clone(), shutdown.clone()).await?;
        spawn_publication_sweep(core.clone(), shutdown.clone());
        if state.settings.queue.enabled {
            crate::queue::spawn_worker(core, shutdown.clone());
        } else {
            tracing::info!("queue.enabled = false: this replica runs no tasks");
        }
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_secs);
        let db = state.db.clone();

        let signals = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = termination() => {
                    tracing::info!("shutting down: finishing requests in flight");
                    signals.cancel();
                }
                _ = signals.cancelled() => {}
            }
        });

        let app = http::service(state);
        let stopped = shutdown.clone();
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.cancelled().await });
        let outcome = tokio::select! {
            result = server => result.map_err(Error::internal_from),
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("requests still running after the grace period; closing them");
                Ok(())
            }
        };
        db.close().await;
        outcome
    }
}

/// A name for this replica in leases: host, process and a random suffix, so
/// a restarted process never mistakes another's lease for its own.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let mut raw = [0u8; 3];
    rand::rng().fill_bytes(&mut raw);
    format!("{host}-{}-{}", std::process::id(), hex::encode(raw))
}

fn spawn_housekeeping(state: AppState, shutdown: CancellationToken) {
    background::every(Duration::from_secs(10), shutdown, move || {
        state.login_limiter.prune();
        state.manage_limiter.prune();
        state.sponsor_limiter.prune();
        state.metrics.run_upkeep();
        std::future::ready(())
    });
}

/// Records sponsors that appeared or disappeared as time passed (the audit
/// log's `sponsor.publish` / `sponsor.unpublish`). The public views do not
/// wait for it: they filter by date themselves.
fn spawn_publication_sweep(state: Arc<Context>, shutdown: CancellationToken) {
    let period = Duration::from_secs(state.settings.sponsors.sweep_secs);
    background::every(period, shutdown, move || {
        let state = state.clone();
        async move { crate::service::sponsors::sweep_publication(&state).await }
    });
}

async fn termination() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
