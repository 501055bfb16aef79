//! Delivery and read receipts: they move a person's sent messages to
//! `delivered` / `read` (the statements are the outbox's, see
//! `outbox::DELIVERED_WATERMARK_SQL`).

use super::outbox::{
    DELIVERED_MID_SQL, DELIVERED_WATERMARK_SQL, READ_UP_TO_MID_SQL, READ_WATERMARK_SQL,
};
use super::statement::{Arg, Stmt};

/// Receipts that move sent messages to `delivered` / `read`.
#[derive(Debug, Clone, PartialEq)]
pub enum Receipt {
    Delivered {
        page_id: String,
        psid: String,
        mids: Vec<String>,
        watermark: Option<i64>,
    },
    Read {
        page_id: String,
        psid: String,
        watermark: i64,
    },
    /// Instagram's read receipt names the newest message read.
    ReadUpTo {
        page_id: String,
        psid: String,
        mid: String,
    },
}

impl Receipt {
    /// The statements moving the messages it names. `sent_at` is taken
    /// when a send starts, so it never exceeds Meta's own timestamp of the
    /// message and a watermark covers exactly the messages it names.
    pub(crate) fn statements(&self) -> Vec<Stmt> {
        match self {
            Receipt::Delivered {
                page_id,
                psid,
                mids,
                watermark,
            } => {
                let mut statements: Vec<Stmt> = mids
                    .iter()
                    .map(|mid| Stmt::with_args(DELIVERED_MID_SQL, vec![Arg::from(mid.as_str())]))
                    .collect();
                statements.extend(watermark.map(|watermark| {
                    Stmt::with_args(
                        DELIVERED_WATERMARK_SQL,
                        vec![
                            Arg::from(page_id.as_str()),
                            Arg::from(psid.as_str()),
                            Arg::Int(watermark),
                        ],
                    )
                }));
                statements
            }
            Receipt::Read {
                page_id,
                psid,
                watermark,
            } => vec![Stmt::with_args(
                READ_WATERMARK_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(psid.as_str()),
                    Arg::Int(*watermark),
                ],
            )],
            Receipt::ReadUpTo { page_id, psid, mid } => vec![Stmt::with_args(
                READ_UP_TO_MID_SQL,
                vec![
                    Arg::from(page_id.as_str()),
                    Arg::from(psid.as_str()),
                    Arg::from(mid.as_str()),
                ],
            )],
        }
    }
}
