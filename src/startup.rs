//! `Application::build(settings)`: binds the listener, opens the store and
//! wires routes and workers; `run_until_stopped` drives them and shuts down
//! gracefully on SIGINT/SIGTERM or when asked.

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use tracing_actix_web::TracingLogger;

use crate::config::{NluSettings, Settings};
use crate::crypto::TokenCipher;
use crate::facebook::batch_queue::BatchQueue;
use crate::facebook::page_cooldown::PageCooldowns;
use crate::facebook::rate_limit::RateLimiter;
use crate::facebook::GraphClient;
use crate::linking::oauth::FacebookOAuth;
use crate::linking::tokens::LinkTokens;
use crate::metrics::Metrics;
use crate::nlu::embedded::LocalNlu;
use crate::nlu::fulfillment::Fulfillment;
use crate::nlu::lex_client::LexNlu;
use crate::nlu::Nlu;
use crate::pages::Pages;
use crate::routes;
use crate::routes::session::SessionCookies;
use crate::state::AppState;
use crate::store::inbox::InboxRow;
use crate::store::instances::Heartbeat;
use crate::store::outbox::OutboxRow;
use crate::store::writer::{feed, FeedReceiver, Feeds, Writer};
use crate::store::{now_ms, Store};
use crate::telemetry::RedactedRootSpan;
use crate::workers;
use crate::workers::pacing;

/// What `build` may be given besides settings.
#[derive(Default)]
pub struct Options {
    /// The NLU to answer with instead of the one the settings name.
    pub nlu: Option<Arc<dyn Nlu>>,
    /// Run the inbox and outbox workers (tests may hold them back).
    pub without_workers: bool,
    /// A listener bound already (so a caller knows the port before it makes
    /// the settings); `None` binds `LEXBRIDGE_BIND`.
    pub listener: Option<TcpListener>,
    /// More routes served beside the service's own (`lexbridge demo`'s
    /// stand-ins).
    pub routes: Option<ExtraRoutes>,
}

/// A worker's main loop, boxed to be spawned beside the others.
type BoxedWorker = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Routes (and their app data) added to every worker's `App`.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// How long the fulfillment backend may take before the intent fails.
const FULFILLMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long shutdown waits for the database pool to close.
const STORE_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Rows each worker may hold at once.
const OUTBOX_IN_FLIGHT: i64 = 512;

/// `mark_seen`s waiting at most (past it, skipped: a late mark is
/// worthless), and batches of them in flight at once.
const MOST_MARKS_WAITING: usize = 10_000;
const MARK_FLUSHERS: usize = 4;
/// Send API calls waiting at most (the outbox holds fewer rows), and
/// batches of them in flight at once: each of eight flushers starts with
/// its own call, so up to eight messages go at once as ordinary calls (with
/// Graph's usual 100–300 ms a call) before any wait to go together.
const MOST_SENDS_WAITING: usize = 10_000;
const SEND_FLUSHERS: usize = 8;

/// Rows the inbox worker may hold at once. Each batch of the main committer
/// finishes what the worker submitted and claims as many again, so on
/// Postgres, where a batch's round trips cost more than its rows, more rows
/// in hand carry more events per batch: `docs/bench_postgres.sh 30000`
/// processed 3,200-3,800 events/s with 128, 3,800-4,300 with 512 (alternate
/// runs, 2026-12-03). On SQLite 512 did not help (8,500-8,800 against
/// 7,900-8,400 with `bench webhook`) and cost 6-8 MB, so it keeps 128.
fn inbox_in_flight(store: &Store) -> i64 {
    match store {
        Store::Postgres(_) => 512,
        Store::Sqlite { .. } => 128,
    }
}

/// The fewest rows the committer claims on a worker's behalf (see
/// `feed::piggyback`). On Postgres a claim under a backlog costs its walk
/// past the conversations already in hand (3-7 ms), so a busy worker is
/// topped up an eighth of its room at a time: `docs/bench_postgres.sh
/// 30000`, 7 alternate runs each (2026-12-04), Postgres CPU an event 149 ->
/// 142 µs with one instance and 184 -> 160 µs with two, outbox claims 657
/// -> 54. On SQLite the claim runs in-process and one row at a time kept
/// the worker busier: `bench webhook --events 30000` gave 10,250-11,440
/// events/s that way against 9,676-10,240 with an eighth.
fn min_claim(store: &Store, capacity: i64) -> i64 {
    match store {
        Store::Postgres(_) => capacity / 8,
        Store::Sqlite { .. } => 1,
    }
}

pub struct Application {
    port: u16,
    inbox_rows: FeedReceiver<InboxRow>,
    outbox_rows: FeedReceiver<OutboxRow>,
    server: actix_web::dev::Server,
    shared: Arc<AppState>,
    stop: watch::Sender<bool>,
    without_workers: bool,
}

/// Asks a running application to stop.
#[derive(Clone)]
pub struct Stopper(watch::Sender<bool>);

impl Stopper {
    /// Takes effect even before `run_until_stopped` has started: the value
    /// is kept without receivers (a plain `send` would drop it, and the
    /// application would then run on).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Application {
    pub async fn build(mut settings: Settings, options: Options) -> anyhow::Result<Application> {
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        if !store.is_postgres() {
            // One instance owns a SQLite file: whatever was in hand when it
            // stopped is due again now.
            store.release_leases().await?;
        }
        let added = store.added_pages().await?;
        if settings.facebook.page_id.is_empty() {
            // The first Page added is the default one.
            let Some(first) = added.first() else {
                anyhow::bail!(
                    "no Page to answer for: set FACEBOOK_PAGE_ID and FACEBOOK_PAGE_ACCESS_TOKEN, or add one with `lexbridge page add`"
                );
            };
            settings.facebook.page_id = first.page_id.clone();
        } else {
            store
                .ensure_page(&settings.facebook.page_id, now_ms())
                .await?;
        }
        for pause in store.page_pauses().await? {
            warn!(page_id = %pause.page_id, reason = %pause.reason, paused_at = pause.paused_at,
                "this Page is paused: its messages stay queued until the reason is cleared");
        }
        let graph = GraphClient::from_settings(&settings)?;
        let nlu = match options.nlu {
            Some(nlu) => nlu,
            None => nlu_from_settings(&settings).await?,
        };
        let rate = settings.workers.send_rate_per_page;
        let limiter = Arc::new(RateLimiter::new(rate, (rate / 20).max(1)));
        let pages = Pages::load(
            &settings,
            &added,
            fulfillment_from_settings(&settings)?.as_ref(),
            &limiter,
        )
        .await?;
        let inbox_room = inbox_in_flight(&store);
        let (inbox_feed, inbox_rows) = feed(inbox_room, min_claim(&store, inbox_room));
        let (outbox_feed, outbox_rows) =
            feed(OUTBOX_IN_FLIGHT, min_claim(&store, OUTBOX_IN_FLIGHT));
        // Without workers nothing may be claimed on their behalf.
        let feeds = match options.without_workers {
            true => Feeds::default(),
            false => Feeds {
                inbox: Some(inbox_feed),
                outbox: Some(outbox_feed),
                inbox_paced: Some(pacing::paced(Arc::clone(&limiter), pages.ids().to_vec())),
            },
        };
        // Known to the other instances before it claims anything: a row
        // held by an instance they do not know is theirs to take.
        let instance_id = format!("{:016x}", rand::random::<u64>());
        let instances = if options.without_workers {
            1
        } else {
            // Judging the others comes later (see `workers::instances`).
            store.instance_alive(&instance_id, false).await?
        };
        let heartbeat = Heartbeat::new(store.is_postgres(), now_ms());
        let shared = Arc::new(AppState {
            writer: Writer::start(store.clone(), feeds, instance_id.clone()),
            instance_id,
            heartbeat,
            store,
            graph,
            nlu,
            metrics: Metrics::default(),
            limiter,
            pages,
            cooldowns: PageCooldowns::new(
                settings.workers.page_cooldown,
                settings.workers.retry_max,
            ),
            cipher: TokenCipher::from_base64(&settings.token_encryption_key)?,
            page_tokens: Default::default(),
            link_tokens: LinkTokens::from_session_key(&settings.session_key),
            api_keys: Default::default(),
            workers: Default::default(),
            seen: Arc::new(BatchQueue::new(MOST_MARKS_WAITING, MARK_FLUSHERS, false)),
            sends: Arc::new(BatchQueue::new(MOST_SENDS_WAITING, SEND_FLUSHERS, true)),
            settings,
        });
        shared.limiter.share_among(instances);
        let listener = match options.listener {
            Some(listener) => listener,
            None => TcpListener::bind(shared.settings.bind)
                .with_context(|| format!("binding {}", shared.settings.bind))?,
        };
        let extra = options.routes;
        let port = listener.local_addr()?.port();
        let data = web::Data::from(Arc::clone(&shared));
        let oauth = web::Data::new(FacebookOAuth::new(&shared.settings)?);
        let cookies = web::Data::new(SessionCookies::new(&shared.settings, shared.store.clone())?);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<RedactedRootSpan>::new())
                .app_data(data.clone())
                .app_data(oauth.clone())
                .app_data(cookies.clone())
                .app_data(web::PayloadConfig::new(routes::webhook::MAX_BODY))
                .configure(routes::configure)
                .configure(|cfg| {
                    if let Some(extra) = &extra {
                        extra(cfg)
                    }
                })
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        let (stop, _) = watch::channel(false);
        Ok(Application {
            port,
            inbox_rows,
            outbox_rows,
            server,
            shared,
            stop,
            without_workers: options.without_workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn shared(&self) -> Arc<AppState> {
        Arc::clone(&self.shared)
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Serves until SIGINT/SIGTERM or `Stopper::stop`, then stops taking
    /// requests and lets the workers finish the rows in hand.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let mut workers: Vec<(&str, JoinHandle<()>)> = Vec::new();
        // The heartbeat outlives the other workers: rows still in hand while
        // they finish must not look abandoned to the other instances.
        let (heartbeat_stop, heartbeat_stopped) = watch::channel(false);
        let heartbeat = (!self.without_workers && self.shared.store.is_postgres()).then(|| {
            let running = self.shared.workers.running("instance heartbeat");
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                let _running = running;
                workers::instances::run(shared, heartbeat_stopped).await
            })
        });
        if !self.without_workers {
            let shared = &self.shared;
            // Each worker holds its liveness guard while it runs (`/readyz`).
            let mut spawn = |name: &'static str, work: BoxedWorker| {
                let running = shared.workers.running(name);
                let task = tokio::spawn(async move {
                    let _running = running;
                    work.await
                });
                workers.push((name, task));
            };
            let inbox =
                workers::inbox::run(Arc::clone(shared), self.inbox_rows, self.stop.subscribe());
            spawn("inbox worker", Box::pin(inbox));
            let outbox =
                workers::outbox::run(Arc::clone(shared), self.outbox_rows, self.stop.subscribe());
            spawn("outbox worker", Box::pin(outbox));
            let sweeper = workers::sweep::run(Arc::clone(shared), self.stop.subscribe());
            spawn("sweeper", Box::pin(sweeper));
            let retention = workers::retention::run(Arc::clone(shared), self.stop.subscribe());
            spawn("retention worker", Box::pin(retention));
            let tokens = workers::tokens::run(Arc::clone(shared), self.stop.subscribe());
            spawn("token checker", Box::pin(tokens));
            if shared.settings.handover.idle_take_back.is_some() {
                let take_back =
                    workers::handover::take_back_idle(Arc::clone(shared), self.stop.subscribe());
                spawn("idle thread take-back", Box::pin(take_back));
            }
            if shared.store.is_postgres() {
                let stats = workers::planner_stats::run(Arc::clone(shared), self.stop.subscribe());
                spawn("planner statistics", Box::pin(stats));
            }
        }
        info!(port = self.port, "lexbridge is listening");
        let mut stop = self.stop.subscribe();
        tokio::select! {
            _ = shutdown_signal() => info!("shutdown signal received"),
            _ = stop.wait_for(|s| *s) => info!("stop requested"),
        }
        let _ = self.stop.send(true);
        handle.stop(true).await;
        if let Err(e) = server.await {
            warn!(error = %e, "the HTTP server ended abnormally");
        }
        for (name, worker) in workers {
            if let Err(e) = worker.await {
                warn!(error = %e, "{name} panicked");
            }
        }
        let _ = heartbeat_stop.send(true);
        if let Some(heartbeat) = heartbeat {
            if let Err(e) = heartbeat.await {
                warn!(error = %e, "the instance heartbeat panicked");
            }
        }
        // Closing the pool waits for every connection to come back; a
        // connection that never does (seen once in many test runs on
        // Postgres under load, cause not found) must not keep a stopping
        // process alive: the process ends, and the database drops it.
        if tokio::time::timeout(STORE_CLOSE_GRACE, self.shared.store.close())
            .await
            .is_err()
        {
            warn!(
                "the database pool did not close within {:?}; stopping anyway",
                STORE_CLOSE_GRACE
            );
        }
        info!("lexbridge stopped");
        Ok(())
    }
}

/// The NLU the settings ask for.
async fn nlu_from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn Nlu>> {
    match &settings.nlu {
        NluSettings::Lex(lex) => {
            let nlu = LexNlu::from_env(lex.clone(), settings.workers.retry_base).await?;
            info!(bot_id = %lex.bot_id, alias = %lex.bot_alias_id, locale = %lex.locale_id, "answering with Amazon Lex V2");
            Ok(Arc::new(nlu))
        }
        NluSettings::Local { bot, .. } => Ok(Arc::new(LocalNlu::load(
            bot.as_deref(),
            fulfillment_from_settings(settings)?,
        )?)),
    }
}

/// The embedded engine's fulfillment backend, when one is configured.
fn fulfillment_from_settings(settings: &Settings) -> anyhow::Result<Option<Fulfillment>> {
    match &settings.nlu {
        NluSettings::Local {
            fulfillment: Some(f),
            ..
        } => Ok(Some(Fulfillment::new(
            f.url.clone(),
            f.secret.clone(),
            FULFILLMENT_TIMEOUT,
        )?)),
        _ => Ok(None),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
