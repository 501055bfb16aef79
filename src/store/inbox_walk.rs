//! The inbox claim on SQLite: a walk of the waiting rows in id order that
//! takes at most one row of each conversation, the conversation's oldest
//! waiting one, and only while none of its rows is in hand.
//!
//! Postgres claims with one statement that looks up each candidate's
//! conversation (`claim_statement!`): several instances claim at once
//! there. A SQLite file has one committer, so the claim can remember which
//! conversations the walk has passed and needs an index of the rows in
//! hand only (`inbox_in_hand`, a few hundred rows), not of every open row.
//! An index of every open row by conversation put each stored event on a
//! page of its own (conversations are random in it), and under a burst's
//! backlog that was most of what a commit wrote (migration 0021).

use std::collections::HashSet;

use super::chunks::chunks;
use super::inbox::claimed_columns;
use super::statement::{Arg, Exec, Stmt, Value};
use super::writer::Claim;

/// Waiting rows read per step of the walk.
const STEP: i64 = 256;

/// Rows whose lease ran out, oldest first, each unless an older row of its
/// conversation is also in hand.
pub const LAPSED: &str = "SELECT r.id FROM inbox r INDEXED BY inbox_leases
     WHERE r.state = 'processing' AND r.locked_until < $1
       AND NOT EXISTS (SELECT 1 FROM inbox p INDEXED BY inbox_in_hand
                        WHERE p.page_id = r.page_id AND p.psid = r.psid
                          AND p.state = 'processing' AND p.id < r.id)
     ORDER BY r.id LIMIT $2";

/// The conversations with a row in hand (read from the index alone).
pub const IN_HAND: &str = "SELECT DISTINCT page_id, psid FROM inbox INDEXED BY inbox_in_hand
     WHERE state = 'processing'";

/// The next waiting rows after `$2`: their conversation and whether they
/// are due.
pub const WAITING: &str = "SELECT r.id, r.page_id, r.psid, r.next_attempt_at <= $1
     FROM inbox r INDEXED BY inbox_waiting
     WHERE r.state = 'pending' AND r.id > $2
     ORDER BY r.id LIMIT $3";

/// Claims up to `limit` rows (also lapsed leases when `lapsed`) and returns
/// them as `claimed_columns!()`, in no particular order.
pub(crate) async fn claim<E: Exec>(
    exec: &mut E,
    claim: &Claim,
    limit: i64,
    lapsed: bool,
) -> anyhow::Result<Vec<Vec<Value>>> {
    let mut taken = Vec::new();
    if lapsed && limit > 0 {
        let stmt = Stmt::with_args(LAPSED, vec![Arg::Int(claim.now), Arg::Int(limit)]);
        for row in exec.rows(&stmt).await? {
            taken.push(first_int(&row)?);
        }
    }
    taken.extend(waiting(exec, claim.now, limit - taken.len() as i64).await?);
    // In lists of a few fixed lengths, so the statements stay prepared.
    let mut rows = Vec::with_capacity(taken.len());
    for chunk in chunks(&taken) {
        let mut update = Stmt::new("UPDATE inbox SET state = 'processing', locked_until = ");
        update
            .bind(claim.lease_until)
            .push(", retry_since = COALESCE(retry_since, ")
            .bind(claim.now)
            .push(") WHERE id IN ")
            .list(chunk.iter().map(|id| Arg::Int(*id)))
            .push(concat!(" RETURNING ", claimed_columns!()));
        rows.extend(exec.rows(&update).await?);
    }
    Ok(rows)
}

/// The ids of up to `limit` waiting rows to take: due, the first waiting
/// row of their conversation the walk meets, and of a conversation with no
/// row in hand. A row passed over (not due, or behind a row in hand) holds
/// its conversation's later rows back too. The conversations in hand are
/// read once, when the walk first finds a row it could take.
async fn waiting<E: Exec>(exec: &mut E, now: i64, limit: i64) -> anyhow::Result<Vec<i64>> {
    let mut taken = Vec::new();
    let mut met: HashSet<(String, String)> = HashSet::new();
    let mut in_hand: Option<HashSet<(String, String)>> = None;
    let mut after = 0i64;
    while (taken.len() as i64) < limit {
        let step = Stmt::with_args(
            WAITING,
            vec![Arg::Int(now), Arg::Int(after), Arg::Int(STEP)],
        );
        let rows = exec.rows(&step).await?;
        let read = rows.len() as i64;
        for row in rows {
            let mut columns = row.into_iter();
            let mut next = || columns.next().unwrap_or(Value::Null);
            let id = next().int()?;
            let conversation = (next().text()?, next().text()?);
            let due = next().int()? != 0;
            after = id;
            if !due || met.contains(&conversation) {
                met.insert(conversation);
                continue;
            }
            let in_hand = match &mut in_hand {
                Some(set) => set,
                none => none.insert(conversations_in_hand(exec).await?),
            };
            if !in_hand.contains(&conversation) {
                taken.push(id);
            }
            met.insert(conversation);
            if taken.len() as i64 == limit {
                break;
            }
        }
        if read < STEP {
            break;
        }
    }
    Ok(taken)
}

async fn conversations_in_hand<E: Exec>(exec: &mut E) -> anyhow::Result<HashSet<(String, String)>> {
    let mut set = HashSet::new();
    for row in exec.rows(&Stmt::new(IN_HAND)).await? {
        let mut columns = row.into_iter();
        let mut next = || columns.next().unwrap_or(Value::Null);
        set.insert((next().text()?, next().text()?));
    }
    Ok(set)
}

fn first_int(row: &[Value]) -> anyhow::Result<i64> {
    row.first()
        .map(Value::int)
        .unwrap_or_else(|| Err(anyhow::anyhow!("a claim's row has no id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
        for migration in crate::store::SQLITE_MIGRATIONS.iter() {
            conn.execute_batch(&migration.sql).expect("migration");
        }
        conn
    }

    /// A row of `psid` in `state`, due at `due`, its lease (if in hand)
    /// ending at `lease`.
    fn row(
        conn: &rusqlite::Connection,
        psid: &str,
        state: &str,
        due: i64,
        lease: Option<i64>,
    ) -> i64 {
        conn.execute(
            "INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, attempts,
                                next_attempt_at, locked_until, received_at)
             VALUES ('P', ?1, 'message', 'k' || (SELECT COUNT(*) FROM inbox), '{}', ?2,
                     CASE WHEN ?3 > 0 THEN 1 ELSE 0 END, ?3, ?4, 0)",
            rusqlite::params![psid, state, due, lease],
        )
        .expect("a row");
        conn.last_insert_rowid()
    }

    async fn claimed(conn: &mut rusqlite::Connection, limit: i64, lapsed: bool) -> Vec<i64> {
        let claim = Claim {
            now: 100,
            lease_until: 1_000,
            limit,
        };
        let mut ids: Vec<i64> = super::claim(conn, &claim, limit, lapsed)
            .await
            .expect("claimed")
            .iter()
            .map(|row| first_int(row).expect("an id"))
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn a_claim_takes_each_conversations_oldest_row_and_none_behind_a_row_in_hand_or_waiting()
    {
        let mut conn = schema();
        let a1 = row(&conn, "A", "pending", 0, None);
        let _b_in_hand = row(&conn, "B", "processing", 0, Some(500));
        let _a2 = row(&conn, "A", "pending", 0, None);
        let _b2 = row(&conn, "B", "pending", 0, None);
        // C's first row waits for a retry; its second must wait behind it.
        let _c1 = row(&conn, "C", "pending", 200, None);
        let _c2 = row(&conn, "C", "pending", 0, None);
        let d1 = row(&conn, "D", "pending", 0, None);
        // E's row in hand lost its lease (its worker died).
        let e_lapsed = row(&conn, "E", "processing", 0, Some(50));
        let _e2 = row(&conn, "E", "pending", 0, None);

        assert_eq!(claimed(&mut conn, 10, false).await, [a1, d1]);
        // Now A and D are in hand too: nothing else can go.
        assert_eq!(claimed(&mut conn, 10, false).await, Vec::<i64>::new());
        assert_eq!(claimed(&mut conn, 10, true).await, [e_lapsed]);
        let lease: i64 = conn
            .query_row(
                "SELECT locked_until FROM inbox WHERE id = ?1",
                [e_lapsed],
                |r| r.get(0),
            )
            .expect("the row");
        assert_eq!(lease, 1_000, "taken again with a new lease");
    }

    #[tokio::test]
    async fn a_claim_takes_the_oldest_rows_first_and_no_more_than_its_limit() {
        let mut conn = schema();
        let ids: Vec<i64> = (0..5)
            .map(|i| row(&conn, &format!("U{i}"), "pending", 0, None))
            .collect();
        assert_eq!(claimed(&mut conn, 2, false).await, ids[..2]);
        assert_eq!(claimed(&mut conn, 0, true).await, Vec::<i64>::new());
        assert_eq!(claimed(&mut conn, 9, false).await, ids[2..]);
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_again_only_behind_no_older_row_in_hand() {
        let mut conn = schema();
        // Both of A's rows are in hand and both leases ran out (an
        // operator's retry can revive an older row behind a newer one).
        let a_older = row(&conn, "A", "processing", 0, Some(50));
        let _a_newer = row(&conn, "A", "processing", 0, Some(50));
        assert_eq!(claimed(&mut conn, 10, true).await, [a_older]);
    }

    #[tokio::test]
    async fn lapsed_leases_and_waiting_rows_share_one_limit() {
        let mut conn = schema();
        let lapsed: Vec<i64> = (0..2)
            .map(|i| row(&conn, &format!("L{i}"), "processing", 0, Some(50)))
            .collect();
        let waiting: Vec<i64> = (0..3)
            .map(|i| row(&conn, &format!("W{i}"), "pending", 0, None))
            .collect();
        assert_eq!(
            claimed(&mut conn, 3, true).await,
            [lapsed[0], lapsed[1], waiting[0]]
        );
    }

    #[tokio::test]
    async fn a_claim_walks_past_a_long_conversation_to_the_others() {
        let mut conn = schema();
        let first = row(&conn, "chatty", "pending", 0, None);
        for _ in 0..(2 * STEP + 10) {
            row(&conn, "chatty", "pending", 0, None);
        }
        let other = row(&conn, "quiet", "pending", 0, None);
        assert_eq!(claimed(&mut conn, 10, false).await, [first, other]);
    }
}
