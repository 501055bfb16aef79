//! One batch of writes as set-based statements: a statement per kind of
//! change rather than per row, each built by its table's module, then the
//! claims the batch's writes and the workers asked for.

use std::collections::{BTreeMap, HashSet};

use super::feed::{WorkerClaims, INBOX, OUTBOX, PIGGYBACK};
use super::windows::{Opened, WindowPlan};
use super::{Claim, Write, WriteOutput};
use crate::store::chunks::chunks;
use crate::store::conversations::{self, MergedConversationUpdate};
use crate::store::inbox::{self, InboxRow};
use crate::store::inbox_walk;
use crate::store::outbound_api::touch_key_statement;
use crate::store::outbox::{self, NewOutboxMessage, OutboxOutcome, OutboxRow, OutboxState};
use crate::store::psid_lookups;
use crate::store::statement::{Arg, Columns, Exec, Stmt};

/// `claim` taking no more than `room` rows, when known.
fn within(claim: Claim, room: Option<i64>) -> Claim {
    match room {
        Some(room) => Claim {
            limit: claim.limit.min(room),
            ..claim
        },
        None => claim,
    }
}

/// What one batch produced.
pub(super) struct BatchResult {
    pub(super) written: Vec<WriteOutput>,
    pub(super) inbox: Vec<InboxRow>,
    pub(super) outbox: Vec<OutboxRow>,
    /// Per table (inbox, outbox): a claim looked at lapsed leases and took
    /// fewer rows than it could, so it left none (see `LapsedLeases`).
    pub(super) lapsed_drained: [bool; 2],
    /// The windows stored events opened (to remember once committed).
    pub(super) opened: Vec<Opened>,
    /// The intake's batch: the windows for the main committer to write.
    pub(super) handed_over: Vec<Opened>,
}

/// Applies `writes` in the open transaction of `exec` with set-based
/// statements (a statement per kind of change rather than per row); for
/// each write, the rows it inserted (`InsertInbox`) or 1. `holder` names
/// this instance on the rows it claims (Postgres; a SQLite file has one
/// instance).
pub(super) async fn apply<E: Exec>(
    exec: &mut E,
    postgres: bool,
    holder: &str,
    writes: &[&Write],
    extra: WorkerClaims,
    plan: WindowPlan<'_>,
) -> anyhow::Result<BatchResult> {
    let mut counts = vec![0u64; writes.len()];
    let mut claimed: BTreeMap<usize, WriteOutput> = BTreeMap::new();
    let mut claims = Vec::new();
    let mut statements = Vec::new();
    let mut events = Vec::new();
    let mut replies = Vec::new();
    let mut inbox_updates = Vec::new();
    let mut outcomes = Vec::new();
    let mut receipts = Vec::new();
    let mut lookups = Vec::new();
    let mut acceptances = Vec::new();
    let mut touches: BTreeMap<(&str, &str), MergedConversationUpdate> = BTreeMap::new();
    for (job, write) in writes.iter().enumerate() {
        match write {
            Write::InsertInbox(rows) => events.extend(rows.iter().map(|e| (job, e))),
            Write::FinishInbox(u) => inbox_updates.push((job, u.as_ref())),
            Write::FinishOutbox(turn) => {
                counts[job] = 1;
                outcomes.push(turn);
            }
            Write::ApiKeyUsed { id, at } => statements.push((job, touch_key_statement(*id, *at))),
            Write::Sweep { sweep, now } => statements.push((job, sweep.statement(*now))),
            Write::Pause(change) => statements.push((job, change.statement())),
            Write::Thread(change) => {
                statements.extend(change.statements().into_iter().map(|s| (job, s)))
            }
            // Paced: the worker's own claim finds nothing either.
            Write::ClaimInbox(_) if extra.inbox_paced => {
                claimed.insert(job, WriteOutput::Inbox(Vec::new()));
            }
            // No more than the worker's room as the batch starts: claims on
            // its behalf since it asked may have taken some.
            Write::ClaimInbox(_) if extra.room[INBOX].is_some_and(|r| r <= 0) => {
                claimed.insert(job, WriteOutput::Inbox(Vec::new()));
            }
            Write::ClaimOutbox(_) if extra.room[OUTBOX].is_some_and(|r| r <= 0) => {
                claimed.insert(job, WriteOutput::Outbox(Vec::new()));
            }
            Write::ClaimInbox(c) => claims.push((job, true, within(*c, extra.room[INBOX]))),
            Write::ClaimOutbox(c) => claims.push((job, false, within(*c, extra.room[OUTBOX]))),
            Write::Accept(a) => acceptances.push((job, a.as_ref())),
            Write::Arrived | Write::Barrier => {}
        }
    }
    let mut piggybacked_inbox = Vec::new();
    let mut piggybacked_outbox = Vec::new();
    // Piggybacked claims go last, after the changes that freed rows.
    claims.extend(extra.inbox.map(|c| (PIGGYBACK, true, c)));
    claims.extend(extra.outbox.map(|c| (PIGGYBACK, false, c)));
    let now = crate::store::now_ms();
    let mut inserted = HashSet::new();
    // Stored events whose person's window may need opening (see below).
    let mut wrote = Vec::new();
    for insert in inbox::insert_statements(&events, |(_, e)| *e, postgres) {
        for row in exec.rows(&insert).await? {
            inserted.insert(Columns::new(row).take()?.text()?);
        }
    }
    for (job, e) in &events {
        if inserted.remove(&e.dedupe_key) {
            counts[*job] += 1;
            match e.inbound_at {
                Some(at) if plan.known.needs(&e.page_id, &e.psid, at) => wrote.push((*e, at)),
                _ => {}
            }
        }
    }
    // A result counts only for the attempt in hand (a claim leaves
    // `attempts` alone and a result counts its attempt): one written twice
    // (a retry after a commit whose outcome was lost) queues its replies
    // once, cannot put back an older dialog state, and cannot land on a
    // later attempt of the same row.
    // Two results for one row in a batch (two workers after a lease ran
    // out): the first counts.
    let mut seen = HashSet::new();
    inbox_updates.retain(|(_, u)| seen.insert(u.id));
    let mut live = HashSet::new();
    for chunk in chunks(&inbox_updates) {
        let update = inbox::finish_statement(chunk, |(_, u)| *u, now);
        for row in exec.rows(&update).await? {
            live.insert(Columns::new(row).take()?.int()?);
        }
    }
    for (job, u) in inbox_updates.iter().filter(|(_, u)| live.contains(&u.id)) {
        counts[*job] = 1;
        replies.extend(u.replies.iter().map(|m| (*job, m)));
        receipts.extend(u.receipt.iter());
        lookups.extend(u.lookup.iter());
        if let Some(c) = &u.conversation {
            touches
                .entry((c.page_id.as_str(), c.psid.as_str()))
                .or_default()
                .merge(c);
        }
    }
    // The windows the intake handed over (Postgres) join this batch's own
    // conversation rows: one run of rows in key order (two instances'
    // batches cannot lock them in opposite orders), written before held
    // messages are released (one held in this batch goes if its person
    // wrote). The upsert only moves a window later, so an event this batch
    // claims costs nothing wrong.
    let mut opened = Vec::new();
    for (page_id, psid, at) in plan.arrived {
        if plan.known.needs(page_id, psid, *at) {
            let key = (page_id.as_str(), psid.as_str());
            touches.entry(key).or_default().wrote_at(*at);
            opened.push((page_id.clone(), psid.clone(), *at));
        }
    }
    let mut releases: Vec<(&str, &str)> = touches
        .iter()
        .filter(|(_, t)| t.release_held)
        .map(|(key, _)| *key)
        .collect();
    // A key already answered (by a concurrent request) stores nothing.
    for (job, acceptance) in &acceptances {
        let fresh = match &acceptance.remember {
            None => true,
            Some(r) => !exec.rows(&r.statement(now)).await?.is_empty(),
        };
        if fresh {
            counts[*job] = 1;
            replies.extend(acceptance.messages.iter().map(|m| (*job, m)));
            // The person may have written since the message was judged
            // outside the window.
            releases.extend(
                acceptance
                    .messages
                    .iter()
                    .filter(|m| m.state == OutboxState::Held)
                    .map(|m| (m.page_id.as_str(), m.psid.as_str())),
            );
        }
    }
    // In the order of the writes, so each person's messages keep theirs.
    replies.sort_by_key(|(job, _)| *job);
    let replies: Vec<&NewOutboxMessage> = replies.into_iter().map(|(_, m)| m).collect();
    for insert in outbox::insert_statements(&replies, now) {
        exec.run(&insert).await?;
    }
    for upsert in conversations::upsert_statements(&touches, now) {
        exec.run(&upsert).await?;
    }
    // Held messages of people who wrote within 24 hours go now: those who
    // wrote in this batch (their held messages have older ids than the
    // replies, so they are sent first), and those newly held whose message
    // arrived while the hold was being decided.
    for chunk in chunks(&releases) {
        let release = outbox::release_held_statement(chunk, now);
        exec.run(&release).await?;
    }
    // Likewise a send's outcome applies only to the attempt in hand:
    // written twice, it cannot undo a delivery receipt recorded between, nor
    // land on the message's next attempt.
    for chunk in chunks(&outcomes) {
        let update = outbox::outcome_statement(chunk);
        exec.run(&update).await?;
    }
    // After the drops are recorded: one apology per person (see
    // `apology_statement`), in id order after every dropped reply.
    for turn in &outcomes {
        if let OutboxOutcome::Dropped {
            id,
            attempts,
            apology,
            ..
        } = &turn.outcome
        {
            exec.run(&outbox::apology_statement(*id, *attempts, apology, now))
                .await?;
        }
    }
    for (job, stmt) in &statements {
        counts[*job] = exec.run(stmt).await?;
    }
    for receipt in &receipts {
        for stmt in receipt.statements() {
            exec.run(&stmt).await?;
        }
    }
    for remember in psid_lookups::remember_statements(&lookups) {
        exec.run(&remember).await?;
    }
    // A piggybacked claim fills the room a worker's own claim in this batch
    // left: both were sized to the same budget.
    let mut taken = [0i64; 2];
    let mut lapsed_drained = [false; 2];
    for (job, for_inbox, c) in &claims {
        let kind = if *for_inbox { INBOX } else { OUTBOX };
        let limit = match *job == PIGGYBACK {
            true => c.limit - taken[kind],
            false => c.limit,
        };
        if *job == PIGGYBACK && limit <= 0 {
            continue;
        }
        let mut args = vec![Arg::Int(c.lease_until), Arg::Int(c.now), Arg::Int(limit)];
        if postgres {
            args.push(Arg::Text(holder.to_string()));
        }
        // A worker's own claim also takes rows whose lease ran out; one
        // made on its behalf only now and then (`WorkerClaims::lapsed`).
        let lapsed = *job != PIGGYBACK || extra.lapsed[kind];
        let mut found = match (for_inbox, postgres) {
            (true, false) => inbox_walk::claim(exec, c, limit, lapsed).await?,
            (true, true) => {
                exec.rows(&Stmt::with_args(inbox::claim_sql(lapsed), args))
                    .await?
            }
            (false, _) => {
                let sql = outbox::claim_sql(postgres, lapsed);
                exec.rows(&Stmt::with_args(sql, args)).await?
            }
        };
        if lapsed && (found.len() as i64) < limit {
            lapsed_drained[kind] = true;
        }
        // `RETURNING` has no order; rows go out oldest (lowest id) first.
        found.sort_by_key(|row| row.first().and_then(|id| id.int().ok()));
        let written = if *for_inbox {
            let mut rows = found
                .into_iter()
                .map(InboxRow::from_columns)
                .collect::<anyhow::Result<Vec<_>>>()?;
            inbox::attach_contexts(exec, postgres, &mut rows).await?;
            WriteOutput::Inbox(rows)
        } else {
            let rows = found.into_iter().map(OutboxRow::from_columns);
            WriteOutput::Outbox(rows.collect::<anyhow::Result<_>>()?)
        };
        if *job != PIGGYBACK {
            taken[kind] += match &written {
                WriteOutput::Inbox(rows) => rows.len(),
                WriteOutput::Outbox(rows) => rows.len(),
                WriteOutput::Rows(_) => 0,
            } as i64;
        }
        match (written, *job == PIGGYBACK) {
            (WriteOutput::Inbox(rows), true) => piggybacked_inbox = rows,
            (WriteOutput::Outbox(rows), true) => piggybacked_outbox = rows,
            (written, _) => {
                claimed.insert(*job, written);
            }
        }
    }
    // The window of a person whose stored event waits (not claimed in
    // this batch: the worker is busy, or paced) opens now; one claimed now
    // is processed at once, and the window with it, as before pacing.
    // Postgres's intake claims nothing and writes none: it hands its
    // windows to the main committer (see above).
    let mut handed_over = Vec::new();
    if plan.hand_over {
        let windows = wrote.drain(..);
        handed_over.extend(windows.map(|(e, at)| (e.page_id.clone(), e.psid.clone(), at)));
        opened.extend(handed_over.iter().cloned());
    }
    let handed: HashSet<&str> = match wrote.is_empty() {
        true => HashSet::new(),
        false => piggybacked_inbox
            .iter()
            .chain(claimed.values().flat_map(|w| match w {
                WriteOutput::Inbox(rows) => rows.as_slice(),
                _ => &[],
            }))
            .map(|row| row.dedupe_key.as_str())
            .collect(),
    };
    let mut waiting: BTreeMap<(&str, &str), MergedConversationUpdate> = BTreeMap::new();
    for (e, at) in wrote
        .into_iter()
        .filter(|(e, _)| !handed.contains(e.dedupe_key.as_str()))
    {
        waiting
            .entry((e.page_id.as_str(), e.psid.as_str()))
            .or_default()
            .wrote_at(at);
        opened.push((e.page_id.clone(), e.psid.clone(), at));
    }
    for upsert in conversations::upsert_statements(&waiting, now) {
        exec.run(&upsert).await?;
    }
    let (inbox, outbox) = (piggybacked_inbox, piggybacked_outbox);
    Ok(BatchResult {
        written: counts
            .into_iter()
            .enumerate()
            .map(|(job, n)| claimed.remove(&job).unwrap_or(WriteOutput::Rows(n)))
            .collect(),
        inbox,
        outbox,
        lapsed_drained,
        opened,
        handed_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::windows::Windows;
    use crate::store::writer::{Acceptance, Claim, LEASE_MS};

    /// `apply` on SQLite with no windows handed over.
    async fn apply_writing(
        conn: &mut rusqlite::Connection,
        writes: &[&Write],
        extra: WorkerClaims,
    ) -> BatchResult {
        let known = Windows::default();
        apply(conn, false, "", writes, extra, WindowPlan::writing(&known))
            .await
            .expect("applied")
    }

    /// A worker's claim of `limit` inbox rows at `now`, and the claims the
    /// committer makes on its behalf with the same budget.
    fn inbox_claim(now: i64, limit: i64) -> (Claim, WorkerClaims) {
        let claim = Claim {
            now,
            lease_until: now + LEASE_MS,
            limit,
        };
        let extra = WorkerClaims {
            inbox: Some(claim),
            ..WorkerClaims::default()
        };
        (claim, extra)
    }

    /// An in-memory database with the SQLite schema, for `apply` itself.
    fn schema() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
        for migration in crate::store::SQLITE_MIGRATIONS.iter() {
            conn.execute_batch(&migration.sql).expect("migration");
        }
        conn
    }

    /// `n` pending inbox rows, one person each.
    fn pending_rows(conn: &rusqlite::Connection, n: usize) {
        for psid in 0..n {
            conn.execute(
                "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, next_attempt_at, received_at)
                 VALUES ('P', ?1, 'message', ?1, '{}', 0, 0)",
                [psid.to_string()],
            )
            .expect("a pending row");
        }
    }

    #[tokio::test]
    async fn a_worker_never_gets_more_rows_than_its_budget_in_one_batch() {
        let mut conn = schema();
        pending_rows(&conn, 10);
        // The worker claims its room (4) while the committer, seeing the
        // same budget, piggybacks a claim for it.
        let (claim, extra) = inbox_claim(1, 4);
        let own = Write::ClaimInbox(claim);
        let applied = apply_writing(&mut conn, &[&own], extra).await;
        let Some(WriteOutput::Inbox(claimed)) = applied.written.first() else {
            panic!("the worker's claim answers with rows");
        };
        assert_eq!(claimed.len(), 4);
        assert!(
            applied.inbox.is_empty(),
            "no room left for a piggybacked claim"
        );

        // With room left over, the piggybacked claim takes only that.
        let own = Write::ClaimInbox(Claim { limit: 1, ..claim });
        let applied = apply_writing(&mut conn, &[&own], extra).await;
        assert_eq!(applied.inbox.len(), 3);
    }

    /// A worker's claim asks for the room it saw; a claim made on its
    /// behalf in a batch since may have taken some of it: the claim takes
    /// no more than the room left as its batch starts.
    #[tokio::test]
    async fn a_workers_claim_takes_no_more_than_the_room_left() {
        let mut conn = schema();
        pending_rows(&conn, 6);
        let (claim, _) = inbox_claim(1, 4);
        let own = Write::ClaimInbox(claim);
        let claimed = |applied: &BatchResult| match applied.written.first() {
            Some(WriteOutput::Inbox(rows)) => rows.len(),
            _ => panic!("the worker's claim answers with rows"),
        };
        let mut extra = WorkerClaims {
            room: [Some(1), None],
            ..WorkerClaims::default()
        };
        let applied = apply_writing(&mut conn, &[&own], extra).await;
        assert_eq!(
            claimed(&applied),
            1,
            "one row of room left, not the four asked"
        );
        extra.room = [Some(0), None];
        let applied = apply_writing(&mut conn, &[&own], extra).await;
        assert_eq!(claimed(&applied), 0, "no room left");
        extra.room = [None, None];
        let applied = apply_writing(&mut conn, &[&own], extra).await;
        assert_eq!(claimed(&applied), 4, "room unknown: as asked");
    }

    /// Postgres's intake hands the windows of the events it stores to the
    /// main committer, writing none itself; the main committer writes them
    /// with its own conversation rows, an event it claims in the same batch
    /// included.
    #[tokio::test]
    async fn the_intake_hands_its_windows_over_and_the_main_batch_writes_them() {
        use crate::store::inbox::{NewInboxEvent, ThreadOwner};
        let mut conn = schema();
        let event = |psid: &str, at: i64| NewInboxEvent {
            object: "page".into(),
            page_id: "P".into(),
            psid: psid.into(),
            kind: "message",
            thread: ThreadOwner::ThisApp,
            dedupe_key: format!("m.{psid}"),
            event: "{}".into(),
            received_at: at,
            inbound_at: Some(at),
        };
        let insert = Write::InsertInbox(vec![event("U1", 100), event("U2", 200)]);
        let known = Windows::default();
        let intake = WindowPlan {
            known: &known,
            arrived: &[],
            hand_over: true,
        };
        let stored = apply(
            &mut conn,
            false,
            "",
            &[&insert],
            WorkerClaims::default(),
            intake,
        )
        .await
        .expect("stored");
        let windows = |conn: &rusqlite::Connection| -> Vec<(String, i64)> {
            conn.prepare("SELECT psid, last_inbound_at FROM conversations ORDER BY psid")
                .and_then(|mut q| q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .expect("conversations")
        };
        assert!(windows(&conn).is_empty(), "the intake writes no window");
        assert_eq!(stored.handed_over.len(), 2);
        assert_eq!(stored.opened.len(), 2, "remembered as handed over");

        // The main committer's next batch claims one row (U1's, the
        // oldest) for the worker and writes both windows.
        let (_, extra) = inbox_claim(1_000, 1);
        let main = WindowPlan {
            known: &known,
            arrived: &stored.handed_over,
            hand_over: false,
        };
        let applied = apply(&mut conn, false, "", &[], extra, main)
            .await
            .expect("applied");
        assert_eq!(applied.inbox.len(), 1);
        assert_eq!(applied.inbox[0].psid, "U1");
        assert_eq!(
            windows(&conn),
            [("U1".to_string(), 100), ("U2".to_string(), 200)]
        );
        assert_eq!(applied.opened.len(), 2, "remembered as written");
        assert!(applied.handed_over.is_empty());
    }

    #[tokio::test]
    async fn a_batch_queues_each_persons_messages_in_the_order_of_its_writes() {
        use crate::store::inbox::{InboxState, InboxUpdate};
        let mut conn = schema();
        conn.execute_batch(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             VALUES ('P', 'U1', 'message', 'm.1', '{}', 'processing', 0, 0)",
        )
        .expect("a row in hand");
        let message = |body: &str| NewOutboxMessage {
            public_id: Some(format!("msg_{body}")),
            origin: "api",
            inbox_id: None,
            ..NewOutboxMessage::reply("P", "U1", 1, body.into())
        };
        // The API message is written first, the reply second; the batch
        // gathers replies and accepted messages separately.
        let accepted = Write::Accept(Box::new(Acceptance {
            messages: vec![message("api")],
            remember: None,
        }));
        let finished = Write::FinishInbox(Box::new(InboxUpdate {
            id: 1,
            state: InboxState::Done,
            outcome: None,
            attempts: 1,
            next_attempt_at: 0,
            last_error: None,
            replies: vec![NewOutboxMessage::reply("P", "U1", 1, "reply".into())],
            conversation: None,
            receipt: None,
            lookup: None,
        }));
        apply_writing(&mut conn, &[&accepted, &finished], WorkerClaims::default()).await;
        let order: Vec<String> = conn
            .prepare("SELECT body FROM outbox ORDER BY id")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .expect("outbox rows");
        assert_eq!(order, ["api", "reply"]);
    }

    #[tokio::test]
    async fn a_batch_remembers_every_lookup_in_one_statement_the_later_of_two_counting() {
        use crate::store::inbox::{InboxState, InboxUpdate, PsidLookup};
        let mut conn = schema();
        conn.execute_batch(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at)
             VALUES ('P', 'U1', 'message', 'm.1', '{}', 'processing', 0, 0),
                    ('P', 'U2', 'message', 'm.2', '{}', 'processing', 0, 0),
                    ('P', 'U1', 'message', 'm.3', '{}', 'processing', 0, 0)",
        )
        .expect("rows in hand");
        let finished = |id: i64, psid: &str, at: i64, account: Option<&str>| {
            Write::FinishInbox(Box::new(InboxUpdate {
                id,
                state: InboxState::Done,
                outcome: None,
                attempts: 1,
                next_attempt_at: 0,
                last_error: None,
                replies: Vec::new(),
                conversation: None,
                receipt: None,
                lookup: Some(PsidLookup {
                    page_id: "P".into(),
                    psid: psid.into(),
                    account_id: account.map(str::to_string),
                    at,
                }),
            }))
        };
        // The later answer about U1 comes first in the batch.
        let writes = [
            finished(1, "U1", 20, Some("acct-new")),
            finished(2, "U2", 10, None),
            finished(3, "U1", 10, Some("acct-old")),
        ];
        let writes: Vec<&Write> = writes.iter().collect();
        apply_writing(&mut conn, &writes, WorkerClaims::default()).await;
        let remembered: Vec<(String, Option<String>, i64)> = conn
            .prepare("SELECT psid, account_id, looked_up_at FROM psid_lookups ORDER BY psid")
            .and_then(|mut q| {
                q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("lookups");
        assert_eq!(
            remembered,
            [
                ("U1".to_string(), Some("acct-new".to_string()), 20),
                ("U2".to_string(), None, 10)
            ]
        );
    }
}
