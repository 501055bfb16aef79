//! "Start over": the person asks the bot to forget the conversation so far.
//!
//! The words are `start over` and `restart` (any case, surrounding white
//! space and a final `.` or `!` ignored) and the postback or quick-reply
//! payload `START_OVER`. The bridge then clears the dialog state it keeps
//! (the embedded engine's dialog, the session attributes and active contexts
//! Lex returned), asks the engine to forget the session (Lex `DeleteSession`)
//! and answers with `START_OVER_REPLY` instead of asking the NLU.

/// Whether `said` (text, or a postback / quick-reply payload) asks to start over.
pub fn is_start_over(said: &str) -> bool {
    let words = said
        .trim()
        .trim_end_matches(['.', '!'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    matches!(words.as_str(), "start over" | "restart" | "start_over")
}

#[cfg(test)]
mod tests {
    use super::is_start_over;

    #[test]
    fn the_start_over_words_and_payload_are_recognised_and_nothing_else() {
        for yes in [
            "start over",
            "Start Over!",
            "  restart. ",
            "START_OVER",
            "start   over",
        ] {
            assert!(is_start_over(yes), "{yes:?}");
        }
        for no in [
            "please start over",
            "restart my car",
            "start",
            "over",
            "",
            "startover",
        ] {
            assert!(!is_start_over(no), "{no:?}");
        }
    }
}
