//! What `ids_for_apps` said of each PSID, so it is asked once per person
//! (read with the conversation's context, see `conversations`).

use super::chunks::chunks;
use super::statement::Stmt;

/// An `ids_for_apps` answer about a PSID: the account it named, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct PsidLookup {
    pub page_id: String,
    pub psid: String,
    pub account_id: Option<String>,
    pub at: i64,
}

/// Remembers a batch's answers, each replacing an older one; of two about
/// one person, the later counts (one statement cannot change a row twice).
pub(crate) fn remember_statements(lookups: &[&PsidLookup]) -> Vec<Stmt> {
    let mut latest: std::collections::BTreeMap<(&str, &str), &PsidLookup> = Default::default();
    for l in lookups {
        let key = (l.page_id.as_str(), l.psid.as_str());
        if latest.get(&key).is_none_or(|seen| seen.at <= l.at) {
            latest.insert(key, l);
        }
    }
    let latest: Vec<&PsidLookup> = latest.into_values().collect();
    chunks(&latest)
        .map(|chunk| {
            let mut remember =
                Stmt::new("INSERT INTO psid_lookups (page_id, psid, looked_up_at, account_id) ");
            remember.values(chunk, |row, l| {
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
        })
        .collect()
}
