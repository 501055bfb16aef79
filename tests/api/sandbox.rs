//! `lexbridge demo` in-process: the stand-ins check what Meta checks, and
//! the issue's scenario works over HTTP (sign in, link, chat with the bot
//! that knows the person, pings inside and outside the window, unlink, sign
//! in again, link from Messenger through an m.me link).

use crate::demo_support::RunningDemo;
use crate::helpers::wait_until;
use crate::login_support::{csrf_of, location, query_of, Visitor};
use lexbridge::demo::{APP_ID, PAGE_ID};
use lexbridge::facebook::signature::sign;
use lexbridge::sandbox::people::PEOPLE;
use serde_json::{json, Value};

/// Signs in through the dialog stand-in as `uid`; returns the account page.
async fn sign_in(demo: &RunningDemo, visitor: &mut Visitor, uid: &str) -> String {
    let start = visitor.get("/auth/facebook/login").await;
    assert_eq!(start.status(), 302);
    let dialog_url = location(&start).to_string();
    assert!(
        dialog_url.starts_with(&format!(
            "{}/sandbox/facebook/v25.0/dialog/oauth",
            demo.base
        )),
        "{dialog_url}"
    );
    let dialog = visitor.get(dialog_url.trim_start_matches(&demo.base)).await;
    assert_eq!(dialog.status(), 200);
    assert!(dialog.text().await.unwrap().contains("Alex Rivera"));
    let query = query_of(&dialog_url);
    let chosen = visitor
        .post_form(
            "/sandbox/facebook/dialog/choose",
            &[
                ("client_id", &query["client_id"]),
                ("redirect_uri", &query["redirect_uri"]),
                ("state", &query["state"]),
                ("uid", uid),
            ],
        )
        .await;
    assert_eq!(chosen.status(), 302);
    let back = location(&chosen).to_string();
    let done = visitor.get(back.trim_start_matches(&demo.base)).await;
    assert_eq!(done.status(), 302, "{:?}", done.text().await);
    assert_eq!(location(&done), "/account");
    visitor.account_page().await
}

#[tokio::test]
async fn the_demo_scenario_works_over_http() {
    let demo = RunningDemo::start().await;
    let [alex, _, jordan, riley] = PEOPLE;
    // The people's history reached the service: Alex was answered, and the
    // answer to Jordan's two-day-old message was refused as Meta would.
    demo.page_says(alex.psid, 0, "geofence").await;
    wait_until("the reply to Jordan to fail outside the window", || async {
        demo.store.outbox_records().await.unwrap().iter().any(|r| {
            r.psid == jordan.psid && r.state == "failed" && r.error_subcode == Some(2018278)
        })
    })
    .await;

    let mut visitor = demo.visitor();
    let account_page = sign_in(&demo, &mut visitor, alex.uid).await;
    assert!(
        account_page.contains(alex.psid),
        "the linked PSID on the account page"
    );

    // The emulator's event stream: the car takes a moment, so the service
    // shows typing_on, which the emulator hears.
    let mut events = demo
        .http
        .get(format!(
            "{}/sandbox/messenger/events?psid={}",
            demo.base, alex.psid
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let before = demo.say(alex.psid, "is my car locked?").await;
    let mut heard = String::new();
    let typing = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        while !heard
            .lines()
            .any(|l| l.contains(r#""type":"typing""#) && l.contains(r#""on":true"#))
        {
            let chunk = events
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            heard.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(typing.is_ok(), "no typing_on in: {heard}");
    let answer = demo.page_says(alex.psid, before, "battery").await;
    let text = answer["message"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.starts_with("Alex, your car is "), "{text}");

    // The emulator showed it: Messenger's delivery and read receipts.
    let read = demo
        .http
        .post(format!("{}/sandbox/messenger/read", demo.base))
        .json(&json!({"psid": alex.psid}))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    wait_until("the answer to be recorded as read", || async {
        demo.store
            .outbox_records()
            .await
            .unwrap()
            .iter()
            .any(|r| r.psid == alex.psid && r.state == "read" && r.body.contains("battery"))
    })
    .await;

    let (status, body) = demo
        .ping(json!({"to": {"psid": alex.psid}, "message": {"text": "Charging finished"}}))
        .await;
    assert_eq!(status, 202, "{body}");
    demo.page_says(alex.psid, before, "Charging finished").await;

    let for_jordan = |extra: Value| {
        let mut body =
            json!({"to": {"psid": jordan.psid}, "message": {"text": "Your service is due"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, body) = demo.ping(for_jordan(json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("outside_messaging_window")),
        "{body}"
    );
    let (status, body) = demo
        .ping(for_jordan(json!({"if_outside_window": "hold"})))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("held")),
        "{body}"
    );
    let (status, body) = demo.ping(for_jordan(json!({"tag": "HUMAN_AGENT"}))).await;
    assert_eq!(
        (status, body["tag"].as_str()),
        (202, Some("HUMAN_AGENT")),
        "{body}"
    );
    let tagged = demo.page_says(jordan.psid, 0, "Your service is due").await;
    assert_eq!(tagged["tag"], "HUMAN_AGENT");
    // Jordan writes: the held message goes out.
    let before_jordan = demo.say(jordan.psid, "hello again").await;
    wait_until("the held message to go once Jordan wrote", || async {
        demo.history(jordan.psid).await[before_jordan..]
            .iter()
            .any(|e| {
                e["from"] == "page"
                    && e["tag"].is_null()
                    && e["message"]["text"] == "Your service is due"
            })
    })
    .await;

    // Unlinking on the account page signs Alex out everywhere, and the bot
    // no longer knows Alex.
    let csrf = csrf_of(&visitor.account_page().await);
    assert_eq!(
        visitor
            .post_form(
                "/account/links/unlink",
                &[("csrf", &csrf), ("page_id", PAGE_ID), ("psid", alex.psid)]
            )
            .await
            .status(),
        303
    );
    let signed_out = visitor.get("/account").await;
    assert_eq!(
        (signed_out.status().as_u16(), location(&signed_out)),
        (303, "/")
    );
    let home = visitor.get("/").await.text().await.unwrap();
    assert!(home.contains("continue-with-facebook"), "{home}");
    let after_unlink = demo.say(alex.psid, "is my car locked?").await;
    demo.page_says(alex.psid, after_unlink, "Sign in on our website")
        .await;

    // Signing in again links Alex again (Meta vouches: ids_for_pages), and
    // the thread hears of it, with an Unlink button.
    let before = demo.history(alex.psid).await.len();
    let account_page = sign_in(&demo, &mut visitor, alex.uid).await;
    assert!(account_page.contains(alex.psid), "linked again");
    let announced = demo.page_says(alex.psid, before, "now linked").await;
    assert!(
        announced["message"].to_string().contains("Unlink"),
        "{announced}"
    );
    let asked = demo.say(alex.psid, "is my car locked?").await;
    let answer = demo.page_says(alex.psid, asked, "battery").await;
    assert!(answer["message"]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("Alex, your car is")));

    // Riley never wrote to the Page: Meta knows no PSID of Riley's yet, so
    // signing in links nothing and offers the m.me link.
    let (page_token, ids_path) = (
        demo.secret("page_token"),
        format!("{}/ids_for_pages?page={PAGE_ID}", riley.uid),
    );
    let proof = demo.proof(&page_token);
    let riley_ids = || demo.graph(&ids_path, &page_token, Some(&proof));
    assert_eq!(riley_ids().await.1["data"], json!([]));
    assert!(demo.history(riley.psid).await.is_empty(), "no thread yet");
    let mut riley_visitor = demo.visitor();
    let page = sign_in(&demo, &mut riley_visitor, riley.uid).await;
    assert!(page.contains("id=\"not-linked\""), "{page}");
    assert!(page.contains("Open Messenger to finish linking"), "{page}");
    // The m.me stand-in opens Riley's thread (the PSID exists from now on,
    // as with Meta) and sends the referral webhook; the service asks the
    // account's ids_for_pages, which now names it, and links Riley.
    let link_base = format!("{}/sandbox/m.me/{PAGE_ID}?ref=", demo.base);
    let start = page.find(&link_base).expect("the Open Messenger link");
    let link = page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let opened = riley_visitor.get(link.trim_start_matches(&demo.base)).await;
    assert_eq!(opened.status(), 200);
    assert!(opened
        .text()
        .await
        .unwrap()
        .contains(&format!("open-as-{}", riley.psid)));
    let reference = query_of(&link)["ref"].clone();
    let as_riley = riley_visitor
        .post_form(
            &format!("/sandbox/m.me/{PAGE_ID}"),
            &[("ref", reference.as_str()), ("psid", riley.psid)],
        )
        .await;
    assert_eq!(as_riley.status(), 303);
    assert_eq!(
        location(&as_riley),
        format!("/sandbox/messenger?psid={}", riley.psid)
    );
    demo.page_says(riley.psid, 0, "You're linked").await;
    assert_eq!(riley_ids().await.1["data"][0]["id"], riley.psid);
    let page = riley_visitor.account_page().await;
    assert!(page.contains(riley.psid), "{page}");
    assert!(page.contains("via ref"), "linked by the m.me link: {page}");
    let asked = demo.say(riley.psid, "is my car locked?").await;
    let answer = demo.page_says(riley.psid, asked, "battery").await;
    assert!(answer["message"]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("Riley, your car is")));
    demo.stop().await;
}

#[tokio::test]
async fn the_graph_stand_in_checks_what_meta_checks() {
    let demo = RunningDemo::start().await;
    let page = demo.secret("page_token");
    let proof = demo.proof(&page);
    let code = |v: &Value| {
        (
            v["error"]["code"].as_i64(),
            v["error"]["error_subcode"].as_i64(),
        )
    };

    let (status, body) = demo.graph("me", &page, None).await;
    assert_eq!((status, code(&body)), (400, (Some(100), None)), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("appsecret_proof"));
    assert!(body["error"]["fbtrace_id"].is_string());
    let (status, body) = demo.graph("me", &page, Some(&"0".repeat(64))).await;
    assert_eq!((status, code(&body)), (400, (Some(100), None)), "{body}");
    let (_, body) = demo
        .graph(
            "me",
            "DEMOL.10000000000000011.forged",
            Some(&demo.proof("DEMOL.10000000000000011.forged")),
        )
        .await;
    assert_eq!(code(&body), (Some(190), None), "{body}");
    let (status, body) = demo.graph("me", &page, Some(&proof)).await;
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some(PAGE_ID)),
        "{body}"
    );

    let alex = PEOPLE[0];
    let (_, profile) = demo
        .graph(
            &format!("{}?fields=name,first_name,last_name,profile_pic", alex.psid),
            &page,
            Some(&proof),
        )
        .await;
    assert_eq!(
        (
            profile["first_name"].as_str(),
            profile["last_name"].as_str()
        ),
        (Some("Alex"), Some("Rivera")),
        "{profile}"
    );
    assert!(profile["profile_pic"].as_str().unwrap().ends_with(".svg"));
    let (_, ids) = demo
        .graph(
            &format!("{}/ids_for_pages?page={PAGE_ID}", alex.uid),
            &page,
            Some(&proof),
        )
        .await;
    assert_eq!(ids["data"][0]["id"], alex.psid, "{ids}");
    let (_, apps) = demo
        .graph(&format!("{}/ids_for_apps", alex.psid), &page, Some(&proof))
        .await;
    assert_eq!(apps["data"][0]["id"], alex.uid, "{apps}");

    // The Send API: the window, and the Page token only.
    let send = |token: String, body: Value| {
        let proof = demo.proof(&token);
        let request = demo
            .http
            .post(format!("{}/v25.0/{PAGE_ID}/messages", demo.base))
            .query(&[("access_token", token), ("appsecret_proof", proof)])
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let jordan = PEOPLE[2];
    let (status, body) = send(page.clone(), json!({"recipient": {"id": jordan.psid}, "messaging_type": "UPDATE", "message": {"text": "hi"}})).await;
    assert_eq!(
        (status, code(&body)),
        (400, (Some(10), Some(2018278))),
        "{body}"
    );
    let (_, body) = send(
        page.clone(),
        json!({"recipient": {"id": "404"}, "messaging_type": "UPDATE", "message": {"text": "hi"}}),
    )
    .await;
    assert_eq!(code(&body), (Some(100), Some(2018001)), "{body}");
    let (status, body) = send(page.clone(), json!({"recipient": {"id": alex.psid}, "messaging_type": "UPDATE", "message": {"text": "hi"}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message_id"].as_str().unwrap().starts_with("m_"));

    // Login codes: the app's secret, single use, the redirect_uri they were made for.
    let redirect = format!("{}/auth/facebook/callback", demo.base);
    let mut visitor = demo.visitor();
    let choose = |redirect: String, client: &'static str| {
        [
            ("client_id", client.to_string()),
            ("redirect_uri", redirect),
            ("state", "s".to_string()),
            ("uid", alex.uid.to_string()),
        ]
    };
    let refused = visitor
        .post_form(
            "/sandbox/facebook/dialog/choose",
            &choose("https://evil.example/cb".into(), APP_ID)
                .each_ref()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let refused = visitor
        .post_form(
            "/sandbox/facebook/dialog/choose",
            &choose(redirect.clone(), "42")
                .each_ref()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let chosen = visitor
        .post_form(
            "/sandbox/facebook/dialog/choose",
            &choose(redirect.clone(), APP_ID)
                .each_ref()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .await;
    let the_code = query_of(location(&chosen))["code"].clone();
    // Cancel: Meta's "denied" back to the app, with the state.
    let cancelled = visitor
        .post_form(
            "/sandbox/facebook/dialog/choose",
            &[
                ("client_id", APP_ID),
                ("redirect_uri", &redirect),
                ("state", "s"),
                ("uid", ""),
            ],
        )
        .await;
    let denied = query_of(location(&cancelled));
    assert_eq!(
        (denied["error"].as_str(), denied["state"].as_str()),
        ("access_denied", "s")
    );
    assert!(!denied.contains_key("code"));
    let implicit = visitor
        .get(&format!(
            "/sandbox/facebook/v25.0/dialog/oauth?client_id={APP_ID}&response_type=token&state=s&redirect_uri={}",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(implicit.status(), 400, "only the code flow");
    let exchange = |secret: String, code: String| {
        let form = [
            ("client_id", APP_ID.to_string()),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", redirect.clone()),
            ("grant_type", "authorization_code".to_string()),
        ];
        let request = demo
            .http
            .post(format!("{}/v25.0/oauth/access_token", demo.base))
            .form(&form);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(
        code(&exchange("wrong".into(), the_code.clone()).await),
        (Some(1), None)
    );
    let token = exchange(demo.secret("app_secret"), the_code.clone()).await;
    assert!(token["access_token"].as_str().is_some(), "{token}");
    assert_eq!(
        code(&exchange(demo.secret("app_secret"), the_code).await),
        (Some(100), Some(36009))
    );
    assert_eq!(
        code(&exchange(demo.secret("app_secret"), "democode-unknown".into()).await),
        (Some(100), Some(36007))
    );
    demo.stop().await;
}

#[tokio::test]
async fn the_demo_backend_takes_only_signed_requests_and_ignores_new_fields() {
    let demo = RunningDemo::start().await;
    let body = serde_json::to_vec(&json!({"intent": "CheckStatus", "slots": {}, "account": null, "psid": "P", "page_id": PAGE_ID,
        "request_id": "r-1", "sent_at": "2026-12-02T08:00:00Z", "something_new": {"x": 1}})).unwrap();
    let post = |signature: String| {
        demo.http
            .post(format!("{}/sandbox/fulfillment", demo.base))
            .header("X-Lexbridge-Signature-256", signature)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
    };
    let forged = post(sign(b"not-the-secret", &body)).await.unwrap();
    assert_eq!(forged.status(), 401);
    let signed = post(sign(demo.secret("fulfillment_secret").as_bytes(), &body))
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let answer: Value = signed.json().await.unwrap();
    assert_eq!(answer["messages"][0]["contentType"], "CustomPayload");
    assert!(answer["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Sign in"));
    demo.stop().await;
}

/// Why a demo on `data` and `port` (with `--reset` or not) does not start.
async fn demo_refused(data: &std::path::Path, port: u16, reset: bool) -> String {
    let args = lexbridge::demo::DemoArgs {
        port,
        data: data.to_path_buf(),
        public: false,
        reset,
    };
    match lexbridge::demo::Demo::build(&args).await {
        Ok(_) => panic!("the demo started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_data_folder_with_a_database_but_no_secrets_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lexbridge.db"), b"").unwrap();
    let refused = demo_refused(dir.path(), 0, false).await;
    assert!(refused.contains("--reset"), "{refused}");
    assert!(!dir.path().join("secrets.json").exists(), "nothing made");
}

#[tokio::test]
async fn a_reset_that_cannot_start_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["lexbridge.db", "secrets.json", "sandbox.json"] {
        std::fs::write(dir.path().join(file), b"kept").unwrap();
    }
    // Another demo holds the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = demo_refused(dir.path(), taken.local_addr().unwrap().port(), true).await;
    assert!(refused.contains("listening on"), "{refused}");
    for file in ["lexbridge.db", "secrets.json", "sandbox.json"] {
        let kept = std::fs::read(dir.path().join(file)).expect("still there");
        assert_eq!(kept, b"kept", "{file}");
    }
}

/// The demo's handover round trip: the person asks for a person (the
/// persistent menu's postback HANDOVER), the service says so and passes
/// the thread to the Page Inbox stand-in; the person's next words go as
/// standby and the bot stays quiet; a ping is held; the team hands back and
/// the ping arrives.
#[tokio::test]
async fn the_demo_hands_a_conversation_to_the_pages_team_and_back() {
    let demo = RunningDemo::start().await;
    let alex = PEOPLE[0];
    let thread = |demo: &RunningDemo| {
        let url = format!("{}/sandbox/messenger/history?psid={}", demo.base, alex.psid);
        let http = demo.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = demo.history(alex.psid).await.len();
    let asked = demo
        .http
        .post(format!("{}/sandbox/messenger/send", demo.base))
        .json(&json!({"psid": alex.psid, "postback": {"title": "Talk to a person", "payload": "HANDOVER"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    demo.page_says(alex.psid, before, "someone from our team")
        .await;
    wait_until("the thread to pass to the Page Inbox", || async {
        thread(&demo).await["owner"] == "263902037430900"
    })
    .await;
    let quiet = demo.say(alex.psid, "hello? is my car locked?").await;
    let (status, held) = demo
        .ping(
            json!({"to": {"psid": alex.psid}, "message": {"text": "Charging finished."},
                     "if_outside_window": "hold"}),
        )
        .await;
    assert_eq!(
        (status, held["status"].as_str()),
        (202, Some("held")),
        "{held}"
    );
    let back = demo
        .http
        .post(format!("{}/sandbox/messenger/hand-back", demo.base))
        .json(&json!({"psid": alex.psid}))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    let ping = demo.page_says(alex.psid, quiet, "Charging finished.").await;
    let after_quiet: Vec<Value> = demo.history(alex.psid).await[quiet..]
        .iter()
        .filter(|e| e["from"] == "page")
        .cloned()
        .collect();
    assert_eq!(
        after_quiet,
        [ping],
        "the bot said nothing while the team had the thread"
    );
    assert_eq!(thread(&demo).await["owner"], Value::Null);
    demo.stop().await;
}

/// The demo's Instagram conversation: a demo person writes on Instagram
/// (an `instagram` webhook for the Page's connected account), the service
/// finds the account through the Graph stand-in and answers through the
/// Page's Send API; the emulator's Instagram thread shows the answer, and
/// a ping addressed `{"instagram": …}` arrives there too.
#[tokio::test]
async fn the_demo_has_an_instagram_conversation() {
    let demo = RunningDemo::start().await;
    let alex = PEOPLE[0];
    let igsid = alex.igsid();
    let page = demo
        .http
        .get(format!(
            "{}/sandbox/messenger?psid={}&channel=instagram",
            demo.base, alex.psid
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("data-psid=\"{igsid}\"")) && page.contains("on Instagram"),
        "{page}"
    );
    let before = demo.say(&igsid, "what can you do?").await;
    demo.page_says(&igsid, before, "").await;
    let (status, ping) = demo
        .ping(json!({"to": {"instagram": {"igsid": igsid}}, "message": {"text": "Hello on Instagram."}}))
        .await;
    assert_eq!(status, 202, "{ping}");
    demo.page_says(&igsid, before, "Hello on Instagram.").await;
    assert!(
        demo.history(alex.psid)
            .await
            .iter()
            .all(|e| !e["message"].to_string().contains("Hello on Instagram")),
        "the Messenger thread is another conversation"
    );
    demo.stop().await;
}

/// A Graph batch request (the service sends `mark_seen` that way) is
/// answered call by call, each through the same checks as alone.
#[tokio::test]
async fn the_graph_stand_in_answers_a_batch_request_call_by_call() {
    let demo = RunningDemo::start().await;
    let page = demo.secret("page_token");
    let (alex, jordan) = (PEOPLE[0], PEOPLE[2]);
    let call = |psid: &str, fields: &[(&str, &str)]| {
        let recipient = json!({ "id": psid }).to_string();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("recipient", &recipient)
            .extend_pairs(fields)
            .finish();
        json!({"method": "POST", "relative_url": format!("{PAGE_ID}/messages"), "body": body})
    };
    let batch = json!([
        call(alex.psid, &[("sender_action", "mark_seen")]),
        call(
            jordan.psid,
            &[("messaging_type", "UPDATE"), ("message", r#"{"text":"hi"}"#)]
        ),
        {"method": "GET", "relative_url": "me"},
    ]);
    let post = |proof: String| {
        demo.http
            .post(format!("{}/v25.0/", demo.base))
            .query(&[("access_token", page.clone()), ("appsecret_proof", proof)])
            .form(&[
                ("batch", batch.to_string()),
                ("include_headers", "false".into()),
            ])
            .send()
    };
    let refused = post("0".repeat(64)).await.unwrap();
    assert_eq!(refused.status(), 400, "the batch's own token is checked");
    // A malformed call refuses the whole batch before any call runs.
    let malformed = json!([
        call(alex.psid, &[("sender_action", "typing_on")]),
        {"method": "POST", "relative_url": format!("{PAGE_ID}/messages"), "body": {"recipient": {"id": alex.psid}}},
    ]);
    let refused = demo
        .http
        .post(format!("{}/v25.0/", demo.base))
        .query(&[
            ("access_token", page.clone()),
            ("appsecret_proof", demo.proof(&page)),
        ])
        .form(&[("batch", malformed.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let why: Value = refused.json().await.unwrap();
    assert!(
        why["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Batch request 1"),
        "{why}"
    );
    let answered = post(demo.proof(&page)).await.unwrap();
    assert_eq!(answered.status(), 200);
    let answers: Vec<Value> = answered.json().await.unwrap();
    let codes: Vec<u64> = answers.iter().filter_map(|a| a["code"].as_u64()).collect();
    assert_eq!(codes, [200, 400, 400], "{answers:?}");
    let outside: Value = serde_json::from_str(answers[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        outside["error"]["error_subcode"], 2018278,
        "a message outside the window is refused inside a batch too: {outside}"
    );
}
