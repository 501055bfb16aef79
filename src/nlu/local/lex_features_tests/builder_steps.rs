//! Steps of the visual conversation builder the engine does not run
//! (conditional branches, elicitation code hooks, fulfillment updates,
//! composite slots): named once each as load warnings.

use super::{bot, slot, utterances};
use serde_json::json;

#[test]
fn conversation_builder_steps_the_engine_does_not_run_are_named_at_load() {
    let intent = json!({
        "name": "Book",
        "sampleUtterances": utterances(&["book {day}", "book a table"]),
        "initialResponseSetting": {"conditional": {"active": true, "conditionalBranches": []}},
        "fulfillmentCodeHook": {"enabled": false,
            "fulfillmentUpdatesSpecification": {"active": true},
            "postFulfillmentStatusSpecification": {"successConditional": {"active": false}}},
    });
    let day = slot(
        "day",
        "AMAZON.Date",
        false,
        json!({"subSlotSetting": {"expression": "a AND b"},
               "valueElicitationSetting": {"slotCaptureSetting": {
                   "captureConditional": {"active": true},
                   "elicitationCodeHook": {"enableCodeHookInvocation": true}}}}),
    );
    let loaded = bot(&[("Book", intent, vec![day])], &[]).expect("bot");
    let warnings = loaded.warnings();
    for expected in [
        "Book: conditional branching (conditional) is not supported",
        "Book: fulfillment updates are not sent",
        "Book.day: conditional branching (captureConditional) is not supported",
        "Book.day: elicitation code hooks (Lambda) are not called",
        "Book.day: composite slots (subSlotSetting) are not supported",
    ] {
        assert!(
            warnings.iter().any(|w| w == expected),
            "{expected}: {warnings:?}"
        );
    }
    // An inactive branch is no warning.
    assert!(
        !warnings.iter().any(|w| w.contains("successConditional")),
        "{warnings:?}"
    );
}
