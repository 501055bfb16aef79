//! A pending link lives 24 hours: after that the owner no longer sees it and
//! can no longer confirm it.

use crate::helpers::*;
use crate::login_support::links;
use lexbridge::linking::notice::link_announcement;
use lexbridge::store::now_ms;
use lexbridge::store::pending_links::{NewPendingLink, PENDING_LINK_TTL_MS};

#[tokio::test]
async fn a_pending_link_expires_after_24_hours() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        app.exec(
            "INSERT INTO accounts (id, fb_uid, name, created_at, updated_at)
                  VALUES ('acc-1', '990001', 'Ada', 1, 1)",
        )
        .await;
        assert_eq!(PENDING_LINK_TTL_MS, 24 * 3_600_000);
        // From now: a sweep of expired rows must not take it before the test does.
        let t0 = now_ms();
        let id = app
            .store
            .create_pending_link(&NewPendingLink {
                page_id: PAGE_ID,
                psid: "PSID-X",
                account_id: "acc-1",
                source: "ref",
                name: Some("X"),
                profile_pic: None,
                redirect_uri: None,
                now: t0,
            })
            .await
            .unwrap();
        let listed = |at: i64| {
            let store = app.store.clone();
            async move { store.pending_links("acc-1", at).await.unwrap().len() }
        };
        let end = t0 + PENDING_LINK_TTL_MS;
        let tokens = test_link_tokens();
        let announce = |page: &str, psid: &str, name: Option<&str>| {
            link_announcement(&tokens, page, psid, name)
        };
        assert_eq!(listed(end - 1).await, 1, "shown until the last moment");
        assert_eq!(listed(end).await, 0, "gone after 24 hours");
        let late = app
            .store
            .decide_pending_link(&id, "acc-1", true, end, &announce)
            .await
            .unwrap();
        assert!(
            late.is_none(),
            "an expired pending link cannot be confirmed"
        );
        assert!(links(&app).await.is_empty(), "nothing linked");
        let in_time = app
            .store
            .decide_pending_link(&id, "acc-1", true, end - 1, &announce)
            .await
            .unwrap();
        assert!(in_time.is_some(), "in time, it is confirmed");
        assert_eq!(links(&app).await.len(), 1);
        app.stop().await;
    })
    .await;
}
