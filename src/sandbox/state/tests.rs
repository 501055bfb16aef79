//! The stand-in's memory: login codes, threads, and the file that keeps them.

use super::*;

fn config(file: PathBuf, webhook: &str) -> SandboxConfig {
    SandboxConfig {
        app_id: "1".into(),
        app_secret: SecretString::from("s"),
        page_id: "2".into(),
        page_name: "P".into(),
        page_token: SecretString::from("t"),
        public_url: Url::parse("http://127.0.0.1:1").unwrap(),
        webhook_url: Url::parse(webhook).unwrap(),
        fulfillment_secret: SecretString::from("f"),
        api_key: SecretString::from("k"),
        state_file: Some(file),
    }
}

#[tokio::test]
async fn history_that_did_not_reach_the_webhook_is_delivered_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandbox.json");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let webhook = format!("http://{}/webhook", closed.local_addr().unwrap());
    drop(closed);
    let first = Sandbox::open(config(file.clone(), &webhook), 1_000).unwrap();
    assert!(!first.history_delivered());
    assert!(first.replay_history().await.is_err());
    drop(first);
    let again = Sandbox::open(config(file.clone(), &webhook), 2_000).unwrap();
    assert!(!again.history_delivered(), "still to be delivered");
    // The kept threads, not new ones.
    assert_eq!(
        again.thread(PEOPLE[0].psid).unwrap().entries[0].at,
        1_000 - PEOPLE[0].wrote.unwrap().ago_ms
    );
}

#[test]
fn a_person_who_never_wrote_has_a_thread_once_they_open_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    let webhook = "http://127.0.0.1:1/webhook";
    let sandbox = Sandbox::open(config(file.clone(), webhook), 1_000).unwrap();
    let riley = PEOPLE.iter().find(|p| p.wrote.is_none()).unwrap();
    assert!(sandbox.thread(riley.psid).is_none(), "no thread yet");
    sandbox.touch(riley.psid, 5_000);
    assert_eq!(sandbox.thread(riley.psid).unwrap().last_wrote, Some(5_000));
    drop(sandbox);
    let again = Sandbox::open(config(file, webhook), 9_000).unwrap();
    assert_eq!(
        again.thread(riley.psid).unwrap().last_wrote,
        Some(5_000),
        "kept"
    );
}

#[test]
fn tokens_are_recognised_only_as_issued() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::open(
        config(dir.path().join("s.json"), "http://127.0.0.1:1/webhook"),
        0,
    )
    .unwrap();
    let uid = PEOPLE[1].uid;
    let long = sandbox.user_token(uid, true);
    assert_eq!(
        sandbox.who(&long),
        Some(Who::User {
            uid: uid.into(),
            long_lived: true
        })
    );
    assert_eq!(sandbox.who("t"), Some(Who::Page));
    assert_eq!(
        sandbox.who(&long.replace(uid, PEOPLE[0].uid)),
        None,
        "another person's id"
    );
    assert_eq!(sandbox.who(&format!("{long}0")), None);
    assert_eq!(sandbox.who(""), None);
}
