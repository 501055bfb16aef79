//! `mark_seen` in Graph batch requests (`facebook::batch_queue`): people waiting
//! together for one Page cost one HTTP round trip, a person alone an
//! ordinary call.

use crate::helpers::*;
use serde_json::{json, Value};

#[tokio::test]
async fn marks_waiting_together_go_in_one_batch_request_and_a_lone_one_alone() {
    let app = quiet_app(&Backend::Sqlite, &[]).await;
    mount_send(&app.graph).await;
    for psid in ["U1", "U2", "U1", "U3"] {
        app.shared.mark_seen(PAGE_ID, psid);
    }
    let requests = || async { app.graph.received_requests().await.unwrap_or_default() };
    wait_until("the batch is sent", || async {
        !requests().await.is_empty()
    })
    .await;
    let sent = requests().await;
    assert_eq!(sent.len(), 1, "one HTTP request");
    assert_eq!(sent[0].url.path(), "/v25.0/");
    let calls = batch_calls(&sent[0]).expect("a batch request");
    let marked: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| {
            (
                c["recipient"]["id"].as_str().unwrap_or_default(),
                c["sender_action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        marked,
        [
            ("U1", "mark_seen"),
            ("U2", "mark_seen"),
            ("U3", "mark_seen")
        ],
        "each person once, in order"
    );
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&sent[0].body)
            .into_owned()
            .collect();
    let batch: Vec<Value> = serde_json::from_str(&form["batch"]).expect("JSON calls");
    assert_eq!(batch[0]["method"], "POST");
    assert_eq!(batch[0]["relative_url"], format!("{PAGE_ID}/messages"));
    assert!(
        !String::from_utf8_lossy(&sent[0].body).contains(PAGE_TOKEN),
        "the token goes in the query string with its proof, not in each call"
    );

    // A person alone: an ordinary Send API call.
    app.shared.mark_seen(PAGE_ID, "U4");
    wait_until("the lone mark is sent", || async {
        requests().await.len() == 2
    })
    .await;
    let sent = requests().await;
    assert_eq!(sent[1].url.path(), format!("/v25.0/{PAGE_ID}/messages"));
    let body: Value = serde_json::from_slice(&sent[1].body).expect("JSON");
    assert_eq!(
        body,
        json!({"recipient": {"id": "U4"}, "sender_action": "mark_seen"})
    );
    app.stop().await;
}

/// Each mark of a batch takes its own share of the Page's send budget (Meta
/// counts a batch's calls one by one): past the budget, marks are skipped,
/// not sent in a batch that would exceed it.
#[tokio::test]
async fn marks_beyond_the_pages_budget_are_skipped_not_batched() {
    // Two calls a second and a burst of one: only the first mark is within.
    let app = quiet_app(&Backend::Sqlite, &[("SEND_RATE_PER_PAGE", "2")]).await;
    mount_send(&app.graph).await;
    for psid in ["U1", "U2", "U3"] {
        app.shared.mark_seen(PAGE_ID, psid);
    }
    let requests = || async { app.graph.received_requests().await.unwrap_or_default() };
    wait_until("a mark is sent", || async { !requests().await.is_empty() }).await;
    let sent = requests().await;
    assert_eq!(sent[0].url.path(), format!("/v25.0/{PAGE_ID}/messages"));
    assert_eq!(
        sent_bodies(&app.graph).await,
        [json!({"recipient": {"id": "U1"}, "sender_action": "mark_seen"})],
        "one call, within the budget"
    );
    app.stop().await;
}
