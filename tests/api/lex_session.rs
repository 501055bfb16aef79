//! What Lex remembers survives the next turn: the session attributes and
//! active contexts a code hook sets come back on the next request, under the
//! bridge's own keys; "start over" and a cleared conversation forget them.

use crate::helpers::*;
use crate::lex::{answered, spawn_lex_app};
use serde_json::{json, Value};

const SESSION: &str = "1111:U1";

fn bridge_only() -> Value {
    json!({"psid": "U1", "page_id": "1111", "linked": "false"})
}

/// A code hook that remembers the car when the person names it.
fn remembers_the_car() -> Value {
    json!({
        "sessionAttributes": {"vin": "V123"},
        "activeContexts": [{"name": "car_known",
            "timeToLive": {"timeToLiveInSeconds": 600, "turnsToLive": 5},
            "contextAttributes": {"vin": "V123"}}]
    })
}

async fn says(app: &TestApp, mid: &str, text: &str) {
    app.post_signed_webhook(&text_message("U1", mid, text))
        .await;
    answered(app).await;
}

#[tokio::test]
async fn what_a_code_hook_sets_comes_back_on_the_next_turn() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        lex.code_hook("my car is V123", remembers_the_car());
        says(&app, "m.1", "my car is V123").await;
        says(&app, "m.2", "is it locked?").await;
        says(&app, "m.3", "and the windows?").await;
        let requests = lex.requests();
        assert_eq!(requests[0].session_attributes, bridge_only());
        for later in &requests[1..] {
            let mut expected = bridge_only();
            expected["vin"] = json!("V123");
            assert_eq!(later.session_attributes, expected, "{}", later.text);
            let context = &later.active_contexts[0];
            assert_eq!(context["name"], "car_known");
            assert_eq!(context["contextAttributes"], json!({"vin": "V123"}));
            assert_eq!(context["timeToLive"]["turnsToLive"], 5);
            assert!(
                context["timeToLive"]["timeToLiveInSeconds"]
                    .as_i64()
                    .unwrap()
                    <= 600
            );
        }
        assert_eq!(lex.stored_attributes(SESSION)["vin"], "V123");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_bridges_own_attributes_win_over_what_lex_returns() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        lex.code_hook(
            "hello",
            json!({"sessionAttributes": {"psid": "U999", "account_id": "cust-evil",
                "linked": "true", "name": "Mallory", "tier": "gold"}}),
        );
        says(&app, "m.1", "hello").await;
        says(&app, "m.2", "what tier am I?").await;
        let mut expected = bridge_only();
        expected["tier"] = json!("gold");
        assert_eq!(lex.requests()[1].session_attributes, expected);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unlinked_person_is_no_longer_sent_as_the_account() {
    on_every_backend(|backend| async move {
        let (app, lex) = spawn_lex_app(&backend, &[]).await;
        app.exec(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
                  VALUES ('cust-42', '990001', 'Ada Lovelace', 1, 1)",
        )
        .await;
        app.exec(
            "INSERT INTO links (page_id, psid, account_id, source, linked_at)
                  VALUES ('1111', 'U1', 'cust-42', 'ids_for_pages', 1)",
        )
        .await;
        lex.code_hook("my car is V123", remembers_the_car());
        says(&app, "m.1", "my car is V123").await;
        assert_eq!(
            lex.requests()[0].session_attributes["account_id"],
            "cust-42"
        );
        // Lex echoed the account back; the link goes, the stored state stays.
        app.exec("DELETE FROM links WHERE psid = 'U1'").await;
        says(&app, "m.2", "is it locked?").await;
        let mut expected = bridge_only();
        expected["vin"] = json!("V123");
        assert_eq!(lex.requests()[1].session_attributes, expected);
        // Unlink clears the conversation's NLU state: nothing comes back.
        app.exec("UPDATE conversations SET nlu_state = NULL WHERE psid = 'U1'")
            .await;
        says(&app, "m.3", "is it locked now?").await;
        let third = &lex.requests()[2];
        assert_eq!(third.session_attributes, bridge_only());
        assert_eq!(third.active_contexts, json!([]), "an empty list clears");
        assert_eq!(
            lex.stored_attributes(SESSION),
            bridge_only(),
            "Lex forgot too"
        );
        assert!(
            lex.stored_contexts(SESSION).is_empty(),
            "the old identity's contexts are gone at Lex"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn start_over_forgets_what_lex_remembers() {
    on_every_backend(|backend| async move {
        let (app, lex) =
            spawn_lex_app(&backend, &[("START_OVER_REPLY", "Let's begin again.")]).await;
        lex.code_hook("my car is V123", remembers_the_car());
        says(&app, "m.1", "my car is V123").await;
        app.post_signed_webhook(&text_message("U1", "m.2", "restart"))
            .await;
        let sent = answered(&app).await;
        assert_eq!(sent.last().unwrap(), &json!({"text": "Let's begin again."}));
        assert_eq!(lex.requests().len(), 1, "start over is not sent to Lex");
        assert_eq!(lex.deleted(), [SESSION], "DeleteSession");
        let rows = app.inbox().await;
        assert_eq!(rows[1].outcome.as_deref(), Some("started over"));
        says(&app, "m.3", "is it locked?").await;
        let next = &lex.requests()[1];
        assert_eq!(next.session_attributes, bridge_only());
        assert_eq!(next.active_contexts, json!([]));
        // Starting over with no session at Lex is no error.
        app.post_signed_webhook(&text_message("U2", "m.4", "start over"))
            .await;
        answered(&app).await;
        let rows = app.inbox().await;
        assert_eq!(rows[3].outcome.as_deref(), Some("started over"));
        app.stop().await;
    })
    .await;
}
