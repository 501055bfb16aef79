//! The demo people, as Meta knows them: an app-scoped user id, a
//! Page-scoped id, a name, and when they last wrote to the Page (if ever).

use crate::domain::window::HOUR_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// App-scoped user id (what `/me` answers after the login).
    pub uid: &'static str,
    /// Page-scoped id (what Messenger webhooks carry).
    pub psid: &'static str,
    pub first_name: &'static str,
    pub last_name: &'static str,
    /// Their last message before the demo started, if they ever wrote to
    /// the Page.
    pub wrote: Option<Wrote>,
}

/// A person's last message before the demo started, and how long before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrote {
    pub words: &'static str,
    pub ago_ms: i64,
}

/// The Instagram professional account connected to the demo Page.
pub const INSTAGRAM_ACCOUNT: &str = "17841400000000042";

impl Person {
    /// Their Instagram-scoped id (what Instagram webhooks carry).
    pub fn igsid(&self) -> String {
        format!("9{}", &self.psid[1..])
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// Initials for the avatar.
    pub fn initials(&self) -> String {
        [self.first_name, self.last_name]
            .iter()
            .filter_map(|n| n.chars().next())
            .collect()
    }
}

pub const PEOPLE: [Person; 4] = [
    Person {
        uid: "10000000000000011",
        psid: "27000000000000011",
        first_name: "Alex",
        last_name: "Rivera",
        wrote: Some(Wrote {
            words: "hi",
            ago_ms: HOUR_MS / 2,
        }),
    },
    Person {
        uid: "10000000000000022",
        psid: "27000000000000022",
        first_name: "Sam",
        last_name: "Okafor",
        wrote: Some(Wrote {
            words: "what can you do?",
            ago_ms: 3 * HOUR_MS,
        }),
    },
    // Outside the 24-hour window: a ping to Jordan is held, or needs
    // HUMAN_AGENT.
    Person {
        uid: "10000000000000033",
        psid: "27000000000000033",
        first_name: "Jordan",
        last_name: "Lee",
        wrote: Some(Wrote {
            words: "hello",
            ago_ms: 48 * HOUR_MS,
        }),
    },
    // Has never written to the Page: Meta knows no PSID of Riley's for it
    // (`ids_for_pages` is empty) until Riley opens the conversation, from
    // the account page's m.me link.
    Person {
        uid: "10000000000000044",
        psid: "27000000000000044",
        first_name: "Riley",
        last_name: "Chen",
        wrote: None,
    },
];

pub fn by_uid(uid: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| p.uid == uid)
}

pub fn by_psid(psid: &str) -> Option<&'static Person> {
    PEOPLE.iter().find(|p| p.psid == psid)
}

/// A person by their Messenger or Instagram id, and whether it was the
/// Instagram one.
pub fn by_id(id: &str) -> Option<(&'static Person, bool)> {
    by_psid(id)
        .map(|p| (p, false))
        .or_else(|| PEOPLE.iter().find(|p| p.igsid() == id).map(|p| (p, true)))
}
