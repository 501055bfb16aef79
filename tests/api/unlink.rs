//! An unlinked Messenger identity stays unlinked: the person's next message
//! must not link it to the account again through `ids_for_apps`.

use crate::helpers::*;
use crate::login_support::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn after_unlink_the_next_message_does_not_relink_through_ids_for_apps() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        mount_send(&app.graph).await;
        mount_identity(&app.graph).await;
        mount_ids_for_pages(&app.graph, &["PSID-U"]).await;
        // Meta keeps answering with the person's app-scoped id.
        Mock::given(method("GET"))
            .and(path("/v25.0/PSID-U/ids_for_apps"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [{"id": UID, "app": {"id": "test-app-id"}}]})),
            )
            .mount(&app.graph)
            .await;
        let mut visitor = Visitor::new(&app);
        assert_eq!(visitor.login().await.status(), 302);
        assert_eq!(links(&app).await.len(), 1);
        let csrf = csrf_of(&visitor.account_page().await);
        let unlinked = visitor
            .post_form("/account/unlink", &[("csrf", &csrf)])
            .await;
        assert_eq!(unlinked.status(), 303);
        assert!(links(&app).await.is_empty());

        app.post_signed_webhook(&text_message("PSID-U", "m.after", "hello"))
            .await;
        app.inbox_settled().await;
        assert!(links(&app).await.is_empty(), "re-linked after unlink");
        let context = app
            .store
            .conversation_context(PAGE_ID, "PSID-U")
            .await
            .unwrap();
        assert!(context.account.is_none());
    })
    .await;
}
