//! Messenger's messaging windows: what a message the person did not ask
//! for may be sent as, given when they last wrote.
//!
//! Within 24 hours of the person's last message anything goes as
//! `messaging_type: UPDATE`. After that, only a human agent's reply tagged
//! `HUMAN_AGENT` within 7 days. The other message tags were withdrawn by
//! Meta in April 2026, so outside both windows a message is refused or held
//! until the person writes again.

pub const HOUR_MS: i64 = 3_600_000;
pub const STANDARD_WINDOW_MS: i64 = 24 * HOUR_MS;
pub const HUMAN_AGENT_WINDOW_MS: i64 = 7 * 24 * HOUR_MS;
/// How long a held message waits for the person when the caller names no end.
pub const DEFAULT_HOLD_MS: i64 = 7 * 24 * HOUR_MS;

/// What the caller asked for when the standard window is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutsideWindow {
    Reject,
    /// Hold until the person writes again, but not past `until`.
    Hold {
        until: i64,
    },
}

impl OutsideWindow {
    /// The name the outbox keeps (`outbox.outside_window`).
    pub fn name(self) -> &'static str {
        match self {
            OutsideWindow::Reject => "reject",
            OutsideWindow::Hold { .. } => "hold",
        }
    }
}

/// An API message's window rule, applied when it is accepted and again
/// before each send attempt: the window may close while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    pub outside: OutsideWindow,
    /// May go tagged `HUMAN_AGENT` within 7 days.
    pub human_agent: bool,
}

impl WindowRule {
    pub fn hold_until(self) -> Option<i64> {
        match self.outside {
            OutsideWindow::Hold { until } => Some(until),
            OutsideWindow::Reject => None,
        }
    }

    pub fn decide(self, now: i64, last_inbound_at: Option<i64>) -> Decision {
        decide(now, last_inbound_at, self.human_agent, self.outside)
    }
}

/// How a message may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// `messaging_type: UPDATE`, inside the 24-hour window.
    Update,
    /// `messaging_type: MESSAGE_TAG`, `tag: HUMAN_AGENT`.
    HumanAgent,
}

impl Delivery {
    pub fn messaging_type(self) -> &'static str {
        match self {
            Delivery::Update => "UPDATE",
            Delivery::HumanAgent => "MESSAGE_TAG",
        }
    }

    pub fn tag(self) -> Option<&'static str> {
        match self {
            Delivery::Update => None,
            Delivery::HumanAgent => Some("HUMAN_AGENT"),
        }
    }
}

/// The policy's answer for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(Delivery),
    /// Keep it until the person writes again, or until `until`.
    Hold {
        until: i64,
    },
    /// The window closed at `closed_at` (`None`: the person never wrote).
    Reject {
        closed_at: Option<i64>,
    },
}

/// Decides how a message may go at `now` to a person who last wrote at
/// `last_inbound_at`, with the `HUMAN_AGENT` tag or not.
pub fn decide(
    now: i64,
    last_inbound_at: Option<i64>,
    human_agent: bool,
    outside: OutsideWindow,
) -> Decision {
    if let Some(last) = last_inbound_at {
        let age = now - last;
        if age < STANDARD_WINDOW_MS {
            return Decision::Send(Delivery::Update);
        }
        if human_agent && age < HUMAN_AGENT_WINDOW_MS {
            return Decision::Send(Delivery::HumanAgent);
        }
    }
    match outside {
        OutsideWindow::Hold { until } => Decision::Hold { until },
        OutsideWindow::Reject => Decision::Reject {
            closed_at: last_inbound_at.map(|last| closing_time(last, human_agent)),
        },
    }
}

/// When the window a message could have used closed.
fn closing_time(last_inbound_at: i64, human_agent: bool) -> i64 {
    last_inbound_at
        + if human_agent {
            HUMAN_AGENT_WINDOW_MS
        } else {
            STANDARD_WINDOW_MS
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const HOLD: OutsideWindow = OutsideWindow::Hold { until: NOW + 1000 };

    fn ago(ms: i64) -> Option<i64> {
        Some(NOW - ms)
    }

    #[test]
    fn inside_24_hours_is_an_update_with_or_without_a_tag() {
        for tagged in [false, true] {
            for outside in [OutsideWindow::Reject, HOLD] {
                assert_eq!(
                    decide(NOW, ago(0), tagged, outside),
                    Decision::Send(Delivery::Update)
                );
                assert_eq!(
                    decide(NOW, ago(STANDARD_WINDOW_MS - 1), tagged, outside),
                    Decision::Send(Delivery::Update)
                );
            }
        }
    }

    #[test]
    fn human_agent_reaches_a_person_for_7_days() {
        assert_eq!(
            decide(NOW, ago(STANDARD_WINDOW_MS), true, OutsideWindow::Reject),
            Decision::Send(Delivery::HumanAgent)
        );
        assert_eq!(
            decide(NOW, ago(HUMAN_AGENT_WINDOW_MS - 1), true, HOLD),
            Decision::Send(Delivery::HumanAgent)
        );
        let last = NOW - HUMAN_AGENT_WINDOW_MS;
        assert_eq!(
            decide(NOW, Some(last), true, OutsideWindow::Reject),
            Decision::Reject {
                closed_at: Some(last + HUMAN_AGENT_WINDOW_MS)
            }
        );
    }

    #[test]
    fn outside_the_window_untagged_is_rejected_with_its_closing_time() {
        let last = NOW - STANDARD_WINDOW_MS;
        assert_eq!(
            decide(NOW, Some(last), false, OutsideWindow::Reject),
            Decision::Reject {
                closed_at: Some(last + STANDARD_WINDOW_MS)
            }
        );
    }

    #[test]
    fn outside_the_window_a_hold_is_held_until_its_end() {
        assert_eq!(
            decide(NOW, ago(STANDARD_WINDOW_MS + 5), false, HOLD),
            Decision::Hold { until: NOW + 1000 }
        );
        assert_eq!(
            decide(NOW, ago(HUMAN_AGENT_WINDOW_MS), true, HOLD),
            Decision::Hold { until: NOW + 1000 }
        );
    }

    #[test]
    fn a_person_who_never_wrote_has_no_window() {
        assert_eq!(
            decide(NOW, None, true, OutsideWindow::Reject),
            Decision::Reject { closed_at: None }
        );
        assert_eq!(
            decide(NOW, None, false, HOLD),
            Decision::Hold { until: NOW + 1000 }
        );
    }
}
