//! What `ids_for_apps` said of each PSID, so it is asked once per person
//! (read with the conversation's context, see `conversations`).

use super::statement::Stmt;

/// An `ids_for_apps` answer about a PSID: the account it named, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct PsidLookup {
    pub page_id: String,
    pub psid: String,
    pub account_id: Option<String>,
    pub at: i64,
}

impl PsidLookup {
    /// Remembers the answer, replacing an older one.
    pub(crate) fn statement(&self) -> Stmt {
        let mut remember =
            Stmt::new("INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id) ");
        remember.values(&[self], |row, l| {
            row.bind(l.page_id.as_str())
                .bind(l.psid.as_str())
                .bind(l.at)
                .bind(l.account_id.as_deref());
        });
        remember.push(
            " ON CONFLICT (page_id, psid) DO UPDATE SET looked_up_at = excluded.looked_up_at,
                 account_id = excluded.account_id",
        );
        remember
    }
}
