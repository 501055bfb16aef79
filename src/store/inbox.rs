//! The inbox: every webhook event as a row, claimed and processed in order
//! per conversation.

use anyhow::{anyhow, Context};

use super::chunks::chunks;
use super::conversations::{context_from, ConversationContext, INBOX_CONTEXT_SQL};
use super::outbox::NewOutboxMessage;
use super::receipts::Receipt;
use super::statement::{Arg, Columns, Exec, Stmt, Value};
use super::{claim_statement, with_reader, Store};

pub use super::conversations::ConversationUpdate;
pub use super::psid_lookups::PsidLookup;

/// Which app owns the conversation's thread as the event came: Meta puts
/// the events of a thread another app owns (conversation routing) in
/// `standby[]`. Kept as the `standby` column (0 or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadOwner {
    /// The event came in `messaging[]`: this app may answer.
    ThisApp,
    /// The event came in `standby[]`: this app may not send.
    AnotherApp,
}

impl ThreadOwner {
    pub fn from_standby(standby: bool) -> ThreadOwner {
        match standby {
            true => ThreadOwner::AnotherApp,
            false => ThreadOwner::ThisApp,
        }
    }

    /// The `standby` column's value.
    fn column(self) -> i64 {
        i64::from(self == ThreadOwner::AnotherApp)
    }
}

/// An event about to be stored (see `insert_statement`).
#[derive(Debug, Clone)]
pub struct NewInboxEvent {
    /// The webhook's `object`: `page` for Messenger.
    pub object: std::borrow::Cow<'static, str>,
    pub page_id: String,
    pub psid: String,
    pub kind: &'static str,
    pub thread: ThreadOwner,
    pub dedupe_key: String,
    pub event: String,
    pub received_at: i64,
    /// A person's message or postback: when they wrote. The conversation's
    /// 24-hour window opens as the event is stored (on Postgres in the main
    /// committer's next batch), not when it is processed (which may wait
    /// its turn, see `workers::pacing`).
    pub inbound_at: Option<i64>,
}

/// A claimed row.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: i64,
    /// The webhook's `object`: only `page` events are acted on.
    pub object: String,
    pub page_id: String,
    pub psid: String,
    pub kind: String,
    pub thread: ThreadOwner,
    pub event: String,
    pub attempts: i64,
    /// When the row's retry budget started: its first claim, or an
    /// operator's `inbox retry`.
    pub since: i64,
    /// Names the event for good (the same on every claim of the row).
    pub dedupe_key: String,
    /// The conversation as it stood when the row was claimed (read in the
    /// claiming transaction, so no read per row is needed; a claim fails
    /// rather than hand over a row without it).
    pub context: ConversationContext,
}

impl InboxRow {
    /// A row of the claim statement's `RETURNING` list.
    pub(crate) fn from_columns(row: Vec<Value>) -> anyhow::Result<InboxRow> {
        let mut c = Columns::new(row);
        Ok(InboxRow {
            id: c.take()?.int()?,
            object: c.take()?.text()?,
            page_id: c.take()?.text()?,
            psid: c.take()?.text()?,
            kind: c.take()?.text()?,
            thread: ThreadOwner::from_standby(c.take()?.int()? != 0),
            event: c.take()?.text()?,
            attempts: c.take()?.int()?,
            dedupe_key: c.take()?.text()?,
            since: c.take()?.int()?,
            context: ConversationContext::default(),
        })
    }
}

/// The columns of an `InboxRecord`, for every statement that reads one.
pub(crate) const RECORD_COLUMNS: &str =
    "id, object, page_id, psid, kind, dedupe_key, state, outcome, attempts, last_error";

/// A stored row as tests and operators see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxRecord {
    pub id: i64,
    pub object: String,
    pub page_id: String,
    pub psid: String,
    pub kind: String,
    pub dedupe_key: String,
    pub state: String,
    pub outcome: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Where a processed row ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Processed; `outcome` says how.
    Done,
    /// To be tried again at `next_attempt_at`.
    Pending,
    /// Failed too often; kept with its error.
    Dead,
}

impl InboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Done => "done",
            InboxState::Pending => "pending",
            InboxState::Dead => "dead",
        }
    }
}

/// The result of processing one claimed row, written in one transaction
/// with the replies it produced, so a reply is queued exactly when its
/// event is marked done.
#[derive(Debug, Clone)]
pub struct InboxUpdate {
    pub id: i64,
    pub state: InboxState,
    pub outcome: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub replies: Vec<NewOutboxMessage>,
    pub conversation: Option<ConversationUpdate>,
    pub receipt: Option<Receipt>,
    /// What `ids_for_apps` said of the person, remembered with the result.
    pub lookup: Option<PsidLookup>,
}

/// `/metrics` counts on each scrape, so it must not read the whole table:
/// done rows pile up forever. These counts walk partial indexes that hold
/// only open rows (`inbox_waiting`, `inbox_leases`) and dead ones (`inbox_dead`), so a
/// scrape costs what the backlog holds, not what the table does. Counting
/// in memory instead would be wrong with several instances on Postgres and
/// lost on every restart; the SQL repeats each index's condition exactly,
/// so SQLite matches it to the partial index.
pub const INBOX_DEPTH_SQL: &str = "SELECT 'pending', COUNT(*) FROM inbox WHERE state = 'pending'
     UNION ALL SELECT 'processing', COUNT(*) FROM inbox WHERE state = 'processing'";
pub const INBOX_DEAD_SQL: &str = "SELECT COUNT(*) FROM inbox WHERE state = 'dead'";

/// What a claim returns of each row it takes (`InboxRow::from_columns`).
macro_rules! claimed_columns {
    () => {
        "id, object, page_id, psid, kind, standby, event, attempts, dedupe_key, retry_since"
    };
}
pub(crate) use claimed_columns;

/// The claim statement on Postgres (see `claim_statement!`; SQLite walks,
/// see `inbox_walk`); `lapsed`: also rows whose lease ran out.
pub fn claim_sql(lapsed: bool) -> &'static str {
    claim_statement!(
        true,
        lapsed,
        "inbox",
        "pending",
        "processing",
        claimed_columns!(),
        "",
        // The retry budget starts at the first attempt: a row may wait its
        // turn well past its arrival (`workers::pacing`).
        ", retry_since = COALESCE(retry_since, $2)"
    )
}

/// The statements inserting `events`, skipping those already stored (same
/// dedupe key); each returns the dedupe keys it inserted. On Postgres one
/// statement takes the whole batch, its columns bound as arrays (a batch
/// cut into power-of-two chunks cost some four statements, each bound and
/// planned, and the intake commits hundreds of batches a second); SQLite
/// has no arrays and takes the chunks.
pub(crate) fn insert_statements<T>(
    events: &[T],
    event: impl Fn(&T) -> &NewInboxEvent,
    postgres: bool,
) -> Vec<Stmt> {
    match (postgres, events.is_empty()) {
        (_, true) => Vec::new(),
        (true, false) => vec![insert_unnest(events, event)],
        (false, false) => chunks(events)
            .map(|chunk| insert_statement(chunk, &event))
            .collect(),
    }
}

/// One statement for any number of events, each column an array.
fn insert_unnest<T>(events: &[T], event: impl Fn(&T) -> &NewInboxEvent) -> Stmt {
    let texts = |column: &dyn Fn(&NewInboxEvent) -> &str| {
        Arg::Texts(
            events
                .iter()
                .map(|e| column(event(e)).to_string())
                .collect(),
        )
    };
    let ints = |column: &dyn Fn(&NewInboxEvent) -> i64| {
        Arg::Ints(events.iter().map(|e| column(event(e))).collect())
    };
    Stmt::with_args(
        "INSERT INTO inbox (object, page_id, psid, kind, standby, dedupe_key, event, next_attempt_at, received_at)
         SELECT * FROM UNNEST(CAST($1 AS TEXT[]), CAST($2 AS TEXT[]), CAST($3 AS TEXT[]),
                              CAST($4 AS TEXT[]), CAST($5 AS BIGINT[]), CAST($6 AS TEXT[]),
                              CAST($7 AS TEXT[]), CAST($8 AS BIGINT[]), CAST($8 AS BIGINT[]))
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
        vec![
            texts(&|e| &e.object),
            texts(&|e| &e.page_id),
            texts(&|e| &e.psid),
            texts(&|e| e.kind),
            ints(&|e| e.thread.column()),
            texts(&|e| &e.dedupe_key),
            texts(&|e| &e.event),
            ints(&|e| e.received_at),
        ],
    )
}

/// Inserts a chunk of events, skipping those already stored (same dedupe
/// key); returns the dedupe keys it inserted.
fn insert_statement<T>(chunk: &[T], event: impl Fn(&T) -> &NewInboxEvent) -> Stmt {
    let mut insert = Stmt::new(
        "INSERT INTO inbox (object, page_id, psid, kind, standby, dedupe_key, event, next_attempt_at, received_at) ",
    );
    insert.values(chunk, |row, item| {
        let e = event(item);
        row.bind(&*e.object)
            .bind(e.page_id.as_str())
            .bind(e.psid.as_str())
            .bind(e.kind)
            .bind(e.thread.column())
            .bind(e.dedupe_key.as_str())
            .bind(e.event.as_str())
            .bind(e.received_at)
            .bind(e.received_at);
    });
    insert.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key");
    insert
}

/// Records how a chunk of claimed rows ended; returns the ids it changed.
/// A result counts only for the attempt in hand (a claim leaves `attempts`
/// alone and a result counts its attempt): one written twice (a retry after
/// a commit whose outcome was lost) cannot land on a later attempt of the
/// same row.
pub(crate) fn finish_statement<T>(
    chunk: &[T],
    update: impl Fn(&T) -> &InboxUpdate,
    now: i64,
) -> Stmt {
    let mut finish = Stmt::new(
        "UPDATE inbox SET state = v.column2, outcome = v.column3, attempts = v.column4,
                next_attempt_at = v.column5, last_error = v.column6, processed_at = v.column7,
                locked_until = NULL, claimed_by = NULL
         FROM (",
    );
    finish.values(chunk, |row, item| {
        let u = update(item);
        row.bind_bigint(u.id)
            .bind(u.state.as_str())
            .bind(u.outcome.as_deref())
            .bind_bigint(u.attempts)
            .bind_bigint(u.next_attempt_at)
            .bind(u.last_error.as_deref())
            .bind_bigint(now);
    });
    finish.push(
        ") AS v WHERE inbox.id = v.column1 AND inbox.state = 'processing'
            AND inbox.attempts = v.column4 - 1 RETURNING inbox.id",
    );
    finish
}

/// Each claimed row's conversation, read with the claim.
pub(crate) async fn attach_contexts<E: Exec>(
    exec: &mut E,
    postgres: bool,
    rows: &mut [InboxRow],
) -> anyhow::Result<()> {
    if rows.is_empty() {
        // An empty claim reads nothing (on Postgres it would still cost a
        // statement).
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    // Postgres reads them all in one statement, the ids as one array (each
    // statement is a round trip and a plan); SQLite, with no arrays, in
    // lists of a few fixed lengths.
    let reads: Vec<Stmt> = match postgres {
        true => {
            let array = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let mut read = Stmt::new(INBOX_CONTEXT_SQL);
            read.push(" WHERE k.id = ANY(CAST(")
                .bind(Arg::Text(format!("{{{array}}}")))
                .push(" AS BIGINT[]))");
            vec![read]
        }
        false => chunks(&ids)
            .map(|chunk| {
                let mut read = Stmt::new(INBOX_CONTEXT_SQL);
                read.push(" WHERE k.id IN ")
                    .list(chunk.iter().map(|id| Arg::Int(*id)));
                read
            })
            .collect(),
    };
    let mut contexts = std::collections::HashMap::new();
    for read in &reads {
        for row in exec.rows(read).await? {
            let mut c = Columns::new(row);
            let id = c.take()?.int()?;
            let page_paused = c.take()?.int()? != 0;
            let columns = (
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_text()?,
                c.take()?.opt_int()?,
                c.take()?.opt_text()?,
                c.take()?.int()?,
            );
            let context = ConversationContext {
                page_paused,
                ..context_from(columns)
            };
            contexts.insert(id, context);
        }
    }
    for row in rows {
        row.context = contexts
            .remove(&row.id)
            .ok_or_else(|| anyhow!("no conversation was read for inbox row {}", row.id))?;
    }
    Ok(())
}

impl Store {
    pub async fn inbox_records(&self) -> anyhow::Result<Vec<InboxRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM inbox ORDER BY id");
        let rows = with_reader!(self, pool => sqlx::query_as(&sql)
            .fetch_all(pool)
            .await)
        .context("listing inbox rows")?;
        Ok(rows)
    }

    /// Rows by state, for `/metrics`: open and dead rows, each counted
    /// through a partial index that holds only them (see `INBOX_DEPTH_SQL`).
    pub async fn inbox_depths(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let open: Vec<(String, i64)> =
            with_reader!(self, pool => sqlx::query_as(INBOX_DEPTH_SQL).fetch_all(pool).await)
                .context("counting inbox rows")?;
        let (dead,): (i64,) =
            with_reader!(self, pool => sqlx::query_as(INBOX_DEAD_SQL).fetch_one(pool).await)
                .context("counting dead inbox rows")?;
        Ok(super::depths(
            &["pending", "processing"],
            open,
            ("dead", dead),
        ))
    }
}
