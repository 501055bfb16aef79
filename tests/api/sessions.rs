//! Server-side sessions of the login site: sign-out and unlink end them on
//! the server (a copied cookie stops working), idle and old sessions are
//! refused, and the sweeper drops expired records — on every backend.

use crate::helpers::*;
use crate::login_support::*;
use lexbridge::store::now_ms;

const HOUR: i64 = 3_600_000;

/// A second browser holding a copy of `visitor`'s cookie.
fn copy_of(app: &TestApp, visitor: &Visitor) -> Visitor {
    let mut copy = Visitor::new(app);
    copy.cookie = visitor.cookie.clone();
    copy
}

/// A new browser signed in (Graph's mocks, expected once each, mounted anew).
async fn signed_in(app: &TestApp) -> Visitor {
    app.graph.reset().await;
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
    let mut visitor = Visitor::new(app);
    assert_eq!(visitor.login().await.status(), 302);
    visitor
}

/// Whether `/account` shows the account (else it sends the visitor home).
async fn is_signed_in(visitor: &mut Visitor) -> bool {
    let response = visitor.get("/account").await;
    match response.status().as_u16() {
        200 => true,
        303 => {
            assert_eq!(location(&response), "/");
            false
        }
        other => panic!("/account answered {other}"),
    }
}

#[tokio::test]
async fn a_cookie_copied_before_sign_out_is_signed_out_after_it() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let mut visitor = signed_in(&app).await;
        let mut copy = copy_of(&app, &visitor);
        assert!(
            is_signed_in(&mut copy).await,
            "the copy works while signed in"
        );
        let csrf = csrf_of(&visitor.account_page().await);
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);

        let out = visitor.post_form("/auth/signout", &[("csrf", &csrf)]).await;
        assert_eq!(out.status(), 303);
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
        assert!(!is_signed_in(&mut copy).await, "the copy is signed out too");
        // Nor can the copy change anything.
        let unlink = copy.post_form("/account/unlink", &[("csrf", &csrf)]).await;
        assert_eq!(unlink.status(), 303);
        assert_eq!(location(&unlink), "/");
        assert_eq!(links(&app).await.len(), 1, "nothing unlinked");
        let home = copy.get("/").await.text().await.unwrap();
        assert!(home.contains("Continue with Facebook"), "{home}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unlink_ends_every_session_of_the_account() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let mut laptop = signed_in(&app).await;
        let mut phone = signed_in(&app).await;
        assert!(is_signed_in(&mut phone).await);
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 2);
        let csrf = csrf_of(&laptop.account_page().await);
        let unlinked = laptop
            .post_form("/account/unlink", &[("csrf", &csrf)])
            .await;
        assert_eq!(unlinked.status(), 303);
        assert!(links(&app).await.is_empty());
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
        assert!(!is_signed_in(&mut laptop).await);
        assert!(
            !is_signed_in(&mut phone).await,
            "the other device is signed out"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn idle_and_old_sessions_sign_nobody_in() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        let now = now_ms();

        let mut idle = signed_in(&app).await;
        app.exec(&format!(
            "UPDATE sessions SET last_seen_at = {}",
            now - 24 * HOUR - 1000
        ))
        .await;
        assert!(!is_signed_in(&mut idle).await, "idle for over 24 hours");

        let mut old = signed_in(&app).await;
        app.exec(&format!(
            "UPDATE sessions SET created_at = {}, last_seen_at = {now}",
            now - 7 * 24 * HOUR - 1000
        ))
        .await;
        assert!(
            !is_signed_in(&mut old).await,
            "signed in over 7 days ago, though busy"
        );

        // Within both limits a request refreshes the last use.
        let mut busy = signed_in(&app).await;
        app.exec(&format!(
            "UPDATE sessions SET created_at = {0}, last_seen_at = {0}",
            now - 23 * HOUR
        ))
        .await;
        assert!(is_signed_in(&mut busy).await);
        let recent = app
            .count(&format!(
                "SELECT COUNT(*) FROM sessions WHERE last_seen_at >= {now}"
            ))
            .await;
        assert_eq!(recent, 1, "the last use was recorded");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn settings_shorten_sessions() {
    let db = TestDb::new(&Backend::Sqlite).await;
    let graph = wiremock::MockServer::start().await;
    let extra = [
        ("SESSION_LIFETIME_HOURS", "1"),
        ("SESSION_IDLE_TIMEOUT_MINUTES", "5"),
    ];
    let app = start(db, graph, Default::default(), &extra).await;
    mount_identity(&app.graph).await;
    mount_ids_for_pages(&app.graph, &["PSID-1"]).await;
    let mut visitor = Visitor::new(&app);
    let response = visitor.login().await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("Max-Age=3600"), "{cookie}");
    app.exec(&format!(
        "UPDATE sessions SET last_seen_at = {}",
        now_ms() - 6 * 60_000
    ))
    .await;
    assert!(!is_signed_in(&mut visitor).await, "idle for over 5 minutes");
    app.stop().await;
}

#[tokio::test]
async fn the_sweeper_drops_expired_sessions() {
    on_every_backend(|backend| async move {
        let app = spawn_app(&backend).await;
        app.exec("INSERT INTO accounts (id, fb_uid, name, created_at, updated_at) VALUES ('acc-a', 'ASID-1', 'A', 1, 1)").await;
        let now = now_ms();
        app.exec(&format!(
            "INSERT INTO sessions (id_hash, account_id, created_at, last_seen_at, expires_at)
             VALUES ('h-expired', 'acc-a', {0}, {0}, {1}), ('h-live', 'acc-a', {0}, {0}, {2})",
            now - HOUR,
            now - 1,
            now + HOUR
        ))
        .await;
        wait_until("the expired session to be swept", || async {
            app.count("SELECT COUNT(*) FROM sessions WHERE id_hash = 'h-expired'").await == 0
        })
        .await;
        assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE id_hash = 'h-live'").await, 1);
        app.stop().await;
    })
    .await;
}
