//! Meta's data-deletion callback and `lexbridge accounts delete`: a
//! verified request erases the person (and no one else) and answers with a
//! confirmation code and its status page; the same request again erases
//! nothing more; a forged one changes nothing; a status page shows its own
//! request only.

use crate::helpers::*;
use crate::outbound::person;
use crate::retention::{conversation, inbox_row, outbox_row, psid_lookup};
use lexbridge::facebook::signed_request::sign;
use lexbridge::store::now_ms;
use serde_json::{json, Value};

const TABLES: [&str; 11] = [
    "accounts",
    "links",
    "inbox",
    "outbox",
    "conversations",
    "psid_lookups",
    "link_tombstones",
    "pending_links",
    "link_tokens",
    "sessions",
    "data_deletions",
];

/// The number of rows of every table a deletion touches.
async fn fingerprint(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((
            table,
            app.count(&format!("SELECT COUNT(*) FROM {table}")).await,
        ));
    }
    counts
}

/// Account `account` (fb_uid `uid-{account}`) with everything a person
/// leaves: a linked PSID `{account}-psid` with a conversation, messages
/// both ways (finished and still to do), an `ids_for_apps` answer, a PSID
/// linked once and unlinked (`{account}-old`) with a message, a session, a
/// link token, and a pending link of a PSID Meta never vouched for
/// (`{account}-claimed`, which has a message of its own).
async fn someone(app: &TestApp, account: &str) {
    let now = now_ms();
    let psid = format!("{account}-psid");
    person(app, account, &psid, None).await;
    conversation(app, &psid, now - 1_000, now).await;
    inbox_row(app, &psid, "done", now - 5_000).await;
    inbox_row(app, &psid, "pending", now - 1_000).await;
    outbox_row(app, &psid, "delivered", now - 4_000).await;
    outbox_row(app, &psid, "queued", now - 900).await;
    outbox_row(app, &psid, "held", now - 800).await;
    psid_lookup(app, &psid, Some(account), now - 6_000).await;
    let old = format!("{account}-old");
    app.exec(&format!(
        "INSERT INTO link_tombstones (page_id, psid, account_id, how, unlinked_at)
         VALUES ('{PAGE_ID}', '{old}', '{account}', 'messenger', {now})"
    ))
    .await;
    inbox_row(app, &old, "done", now - 7_000).await;
    app.exec(&format!(
        "INSERT INTO sessions (id_hash, account_id, created_at, last_seen_at, expires_at)
         VALUES ('session-of-{account}', '{account}', {now}, {now}, {})",
        now + 3_600_000
    ))
    .await;
    app.exec(&format!(
        "INSERT INTO link_tokens (nonce, purpose, account_id, expires_at)
         VALUES ('nonce-of-{account}', 'ref', '{account}', {})",
        now + 3_600_000
    ))
    .await;
    let claimed = format!("{account}-claimed");
    app.exec(&format!(
        "INSERT INTO pending_links (id, page_id, psid, account_id, source, created_at, expires_at)
         VALUES ('pending-of-{account}', '{PAGE_ID}', '{claimed}', '{account}', 'ref', {now}, {})",
        now + 3_600_000
    ))
    .await;
    inbox_row(app, &claimed, "done", now - 3_000).await;
}

/// Rows that mention `account` or one of its PSIDs anywhere.
async fn traces_of(app: &TestApp, account: &str) -> i64 {
    let mut n = 0;
    for (table, columns) in [
        ("accounts", "id || fb_uid"),
        ("links", "psid || account_id"),
        ("inbox", "psid"),
        ("outbox", "psid"),
        ("conversations", "psid"),
        ("psid_lookups", "psid || COALESCE(account_id, '')"),
        ("link_tombstones", "psid || COALESCE(account_id, '')"),
        ("pending_links", "psid || account_id"),
        ("link_tokens", "account_id"),
        ("sessions", "account_id"),
        ("data_deletions", "code_hash || source || erased"),
    ] {
        n += app
            .count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {columns} LIKE '%{account}%'"
            ))
            .await;
    }
    n
}

async fn public_app(backend: &Backend) -> TestApp {
    quiet_app(backend, &[("PUBLIC_URL", "https://bridge.example.com/")]).await
}

/// Meta's POST: `signed_request` as a form field.
async fn ask_deletion(app: &TestApp, signed_request: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/facebook/data-deletion", app.address))
        .form(&[("signed_request", signed_request)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn deletion_payload(uid: &str) -> Value {
    json!({"algorithm": "HMAC-SHA256", "expires": 1_900_000_000, "issued_at": 1_800_000_000,
           "user_id": uid})
}

async fn status_page(app: &TestApp, id: &str) -> (u16, String) {
    let response = app
        .http
        .get(format!("{}/facebook/data-deletion/status", app.address))
        .query(&[("id", id)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The confirmation code of an accepted request, checked against the URL.
fn code_of(answer: &Value) -> String {
    let object = answer.as_object().expect("a JSON object");
    assert_eq!(object.len(), 2, "{answer}");
    let code = answer["confirmation_code"]
        .as_str()
        .expect("a code")
        .to_string();
    assert_eq!(
        answer["url"],
        format!("https://bridge.example.com/facebook/data-deletion/status?id={code}")
    );
    code
}

#[tokio::test]
async fn a_verified_request_erases_the_person_and_no_one_else() {
    on_every_backend(|backend| async move {
        let app = public_app(&backend).await;
        someone(&app, "acc-gone").await;
        someone(&app, "acc-stays").await;
        let before = fingerprint(&app).await;
        let others = traces_of(&app, "acc-stays").await;
        assert!(traces_of(&app, "acc-gone").await > 10);

        let signed = sign(APP_SECRET.as_bytes(), &deletion_payload("uid-acc-gone"));
        let (status, answer) = ask_deletion(&app, &signed).await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        let code = code_of(&answer);

        // Only the pending link's PSID keeps its message: Meta never said
        // that Messenger identity was this person's.
        assert_eq!(traces_of(&app, "acc-gone").await, 1, "{backend:?}");
        assert_eq!(
            app.count("SELECT COUNT(*) FROM inbox WHERE psid = 'acc-gone-claimed'")
                .await,
            1
        );
        assert_eq!(traces_of(&app, "acc-stays").await, others);
        let after = fingerprint(&app).await;
        let gone: Vec<(&str, i64)> = before
            .iter()
            .zip(&after)
            .map(|((table, b), (_, a))| (*table, b - a))
            .collect();
        assert_eq!(
            gone,
            [
                ("accounts", 1),
                ("links", 1),
                ("inbox", 3),
                ("outbox", 3),
                ("conversations", 1),
                ("psid_lookups", 1),
                ("link_tombstones", 1),
                ("pending_links", 1),
                ("link_tokens", 1),
                ("sessions", 1),
                ("data_deletions", -1),
            ]
        );

        let (status, html) = status_page(&app, &code).await;
        assert_eq!(status, 200);
        assert!(html.contains(&code), "{html}");
        assert!(html.contains("messages you wrote to the Page: 3"), "{html}");
        assert!(html.contains("messages sent to you: 3"), "{html}");
        assert!(html.contains("through Facebook"), "{html}");
        assert!(
            !html.contains("acc-gone") && !html.contains("Ada"),
            "{html}"
        );

        // The person comes back; then the same signed request arrives again
        // (Meta retrying, or a replay by whoever kept it): it is answered
        // with the first erasure, and erases nothing of what came since.
        someone(&app, "acc-gone").await;
        let back = fingerprint(&app).await;
        let (status, again) = ask_deletion(&app, &signed).await;
        assert_eq!(status, 200);
        assert_eq!(code_of(&again), code);
        assert_eq!(
            fingerprint(&app).await,
            back,
            "{backend:?}: nothing erased again"
        );
        let (_, html) = status_page(&app, &code).await;
        assert!(html.contains("messages you wrote to the Page: 3"), "{html}");

        // A new request of Meta's (issued later): a new code, and it erases.
        let mut later = deletion_payload("uid-acc-gone");
        later["issued_at"] = json!(1_800_000_060);
        let (status, answer) = ask_deletion(&app, &sign(APP_SECRET.as_bytes(), &later)).await;
        assert_eq!(status, 200);
        assert_ne!(code_of(&answer), code);
        assert_eq!(traces_of(&app, "acc-gone").await, 2, "{backend:?}");
        assert_eq!(app.count("SELECT COUNT(*) FROM data_deletions").await, 2);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_forged_or_malformed_request_erases_nothing() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    on_every_backend(|backend| async move {
        let app = public_app(&backend).await;
        someone(&app, "acc-target").await;
        let before = fingerprint(&app).await;

        let payload = deletion_payload("uid-acc-target");
        let genuine_other = sign(APP_SECRET.as_bytes(), &deletion_payload("uid-someone-else"));
        let (other_signature, _) = genuine_other.split_once('.').unwrap();
        let none = json!({"algorithm": "none", "user_id": "uid-acc-target"}).to_string();
        let forgeries = [
            // Signed with another secret.
            (
                sign(b"not-the-app-secret", &payload),
                "signature does not match",
            ),
            // `alg: none`, with no signature or a made-up one.
            (format!(".{}", b64(&none)), "must be <base64url signature>"),
            (
                format!("{}.{}", b64("x"), b64(&none)),
                "signature does not match",
            ),
            // A genuine signature over someone else's payload.
            (
                format!("{other_signature}.{}", b64(&payload.to_string())),
                "signature does not match",
            ),
            // Signed with the app secret, but another algorithm.
            (
                sign(
                    APP_SECRET.as_bytes(),
                    &json!({"algorithm": "HS512", "user_id": "uid-acc-target"}),
                ),
                "algorithm must be HMAC-SHA256",
            ),
            (
                sign(APP_SECRET.as_bytes(), &json!({"algorithm": "HMAC-SHA256"})),
                "no user_id",
            ),
            ("garbage".to_string(), "must be <base64url signature>"),
            (String::new(), "signed_request is missing"),
        ];
        for (signed, error) in &forgeries {
            let (status, answer) = ask_deletion(&app, signed).await;
            assert_eq!(status, 400, "{backend:?} {signed:?}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(error), "{signed:?}: {answer}");
            assert_eq!(
                fingerprint(&app).await,
                before,
                "{signed:?} changed something"
            );
        }
        // No form field at all.
        let response = app
            .http
            .post(format!("{}/facebook/data-deletion", app.address))
            .json(&json!({"user_id": "uid-acc-target"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(fingerprint(&app).await, before);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_status_page_shows_its_own_request_and_nothing_of_another() {
    on_every_backend(|backend| async move {
        let app = public_app(&backend).await;
        someone(&app, "acc-one").await;
        someone(&app, "acc-two").await;
        inbox_row(&app, "acc-two-psid", "done", now_ms() - 10_000).await;
        let mut codes = Vec::new();
        for uid in ["uid-acc-one", "uid-acc-two", "uid-never-seen"] {
            let (status, answer) =
                ask_deletion(&app, &sign(APP_SECRET.as_bytes(), &deletion_payload(uid))).await;
            assert_eq!(status, 200, "{answer}");
            codes.push(code_of(&answer));
        }
        let (_, one) = status_page(&app, &codes[0]).await;
        let (_, two) = status_page(&app, &codes[1]).await;
        let (_, never) = status_page(&app, &codes[2]).await;
        assert!(one.contains("messages you wrote to the Page: 3"), "{one}");
        assert!(two.contains("messages you wrote to the Page: 4"), "{two}");
        assert!(never.contains("We found no data about you"), "{never}");
        for (i, html) in [&one, &two, &never].into_iter().enumerate() {
            for (j, code) in codes.iter().enumerate() {
                assert_eq!(
                    html.contains(code.as_str()),
                    i == j,
                    "page {i} and code {j}"
                );
            }
            assert!(!html.contains("acc-") && !html.contains("uid-"), "{html}");
        }

        // Another code, one digit off, a prefix, or none: 404, the same page.
        let mut off = codes[0].clone().into_bytes();
        off[31] = if off[31] == b'0' { b'1' } else { b'0' };
        let off = String::from_utf8(off).unwrap();
        let mut unknown = Vec::new();
        for id in [
            off.as_str(),
            &codes[0][..16],
            "",
            "' OR '1'='1",
            "00000000000000000000000000000000",
        ] {
            let (status, html) = status_page(&app, id).await;
            assert_eq!(status, 404, "{id:?}");
            assert!(!codes.iter().any(|c| html.contains(c.as_str())));
            unknown.push(html);
        }
        assert!(unknown.windows(2).all(|w| w[0] == w[1]), "404 pages differ");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_accounts_cli_erases_an_account_and_prints_its_code() {
    use lexbridge::linking::admin::{run, AccountsCommand};
    on_every_backend(|backend| async move {
        let app = public_app(&backend).await;
        someone(&app, "acc-cli").await;
        someone(&app, "acc-kept").await;
        let before = fingerprint(&app).await;
        let kept = traces_of(&app, "acc-kept").await;

        let mut out = Vec::new();
        let unknown = run(
            &app.store,
            AccountsCommand::Delete {
                id: "acc-nobody".into(),
            },
            &mut out,
        )
        .await;
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("no account \"acc-nobody\""));
        assert_eq!(
            fingerprint(&app).await,
            before,
            "an unknown id changes nothing"
        );

        run(
            &app.store,
            AccountsCommand::Delete {
                id: "acc-cli".into(),
            },
            &mut out,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let code = text
            .lines()
            .find_map(|l| l.strip_prefix("confirmation code: "))
            .unwrap_or_else(|| panic!("no code in: {text}"))
            .to_string();
        assert!(
            text.contains(&format!("/facebook/data-deletion/status?id={code}")),
            "{text}"
        );
        assert!(text.contains("3 messages received, 3 sent"), "{text}");
        assert_eq!(
            traces_of(&app, "acc-cli").await,
            1,
            "only the claimed PSID's message"
        );
        assert_eq!(traces_of(&app, "acc-kept").await, kept);

        let (status, html) = status_page(&app, &code).await;
        assert_eq!(status, 200);
        assert!(html.contains("by our support team"), "{html}");
        app.stop().await;
    })
    .await;
}
