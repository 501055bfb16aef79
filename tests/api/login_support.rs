//! A browser stand-in for the login site (cookies by hand, no redirects
//! followed) and a wiremock Graph API that answers a whole Facebook Login.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use wiremock::matchers::{body_string_contains, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CODE: &str = "test-code";
pub const SHORT_TOKEN: &str = "test-short-user-token";
pub const LONG_TOKEN: &str = "test-long-user-token";
pub const UID: &str = "9001";
pub const NAME: &str = "Ada Example";

/// A person's browser: keeps the session cookie, follows nothing.
pub struct Visitor {
    pub client: reqwest::Client,
    pub address: String,
    pub cookie: Option<String>,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            address: app.address.clone(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().expect("cookie header");
            let pair = value.split(';').next().unwrap_or_default();
            let removed = pair.split_once('=').is_none_or(|(_, v)| v.is_empty());
            self.cookie = (!removed).then(|| pair.to_string());
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.expect("GET");
        self.keep_cookie(&response);
        response
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.expect("POST");
        self.keep_cookie(&response);
        response
    }

    /// `/auth/facebook/login`: returns the dialog URL's query.
    pub async fn begin_login(&mut self) -> HashMap<String, String> {
        let response = self.get("/auth/facebook/login").await;
        assert_eq!(response.status(), 302);
        query_of(location(&response))
    }

    /// The callback as Meta's dialog would send the person back.
    pub async fn callback(&mut self, params: &[(&str, &str)]) -> reqwest::Response {
        let query = serde_urlencoded(params);
        self.get(&format!("/auth/facebook/callback?{query}")).await
    }

    /// A whole login; returns the callback's answer.
    pub async fn login(&mut self) -> reqwest::Response {
        let dialog = self.begin_login().await;
        self.callback(&[("code", CODE), ("state", &dialog["state"])])
            .await
    }

    pub async fn account_page(&mut self) -> String {
        let response = self.get("/account").await;
        assert_eq!(response.status(), 200, "the account page");
        response.text().await.expect("page")
    }
}

pub fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("absolute URL")
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn serde_urlencoded(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The value of `<input name="csrf" value="…">` on a page.
pub fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `ref` of the page's m.me link.
pub fn ref_of(page: &str) -> String {
    let start = page.find("https://m.me/").expect("an m.me link");
    let url: String = page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    query_of(&url)["ref"].clone()
}

/// Mounts the code exchange, `/me` and the long-lived exchange, each
/// expected once and checked for `appsecret_proof`.
pub async fn mount_identity(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v25.0/oauth/access_token"))
        .and(body_string_contains(format!("code={CODE}").as_str()))
        .and(body_string_contains("client_id=test-app-id"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": SHORT_TOKEN, "token_type": "bearer", "expires_in": 3600}),
        ))
        .expect(1)
        .named("code exchange")
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/me"))
        .and(query_param("fields", "id,name"))
        .and(query_param("access_token", SHORT_TOKEN))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": UID, "name": NAME})))
        .expect(1)
        .named("/me")
        .mount(graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v25.0/oauth/access_token"))
        .and(query_param("grant_type", "fb_exchange_token"))
        .and(query_param("fb_exchange_token", SHORT_TOKEN))
        .and(query_param("client_id", "test-app-id"))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": LONG_TOKEN, "token_type": "bearer", "expires_in": 5_184_000}),
        ))
        .expect(1)
        .named("long-lived exchange")
        .mount(graph)
        .await;
}

/// `ids_for_pages` answering `psids` (with the Page of each) for `UID`.
pub async fn mount_ids_for_pages(graph: &MockServer, psids: &[&str]) {
    let data: Vec<Value> = psids
        .iter()
        .map(|p| json!({"id": p, "page": {"id": PAGE_ID, "name": "Test Page"}}))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{UID}/ids_for_pages")))
        .and(query_param("page", PAGE_ID))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        .expect(1)
        .named("ids_for_pages")
        .mount(graph)
        .await;
}

/// Accounts as `(id, fb_uid, name)`.
pub async fn accounts(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    app.store
        .accounts()
        .await
        .expect("accounts")
        .into_iter()
        .map(|a| (a.id, a.fb_uid, a.name))
        .collect()
}

/// Linked PSIDs of the configured Page as `(psid, account_id, source)`, by PSID.
pub async fn links(app: &TestApp) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for (id, _, _) in accounts(app).await {
        for l in app.store.links_for_account(&id).await.expect("links") {
            all.push((l.psid, l.account_id, l.source));
        }
    }
    all.sort();
    all
}

/// The text of every reply queued for `psid`.
pub async fn replies_to(app: &TestApp, psid: &str) -> Vec<String> {
    app.outbox()
        .await
        .into_iter()
        .filter(|r| r.psid == psid)
        .filter_map(|r| {
            let body: Value = serde_json::from_str(&r.body).ok()?;
            body["message"]["text"].as_str().map(str::to_string)
        })
        .collect()
}

/// `ids_for_pages` for `UID` answering `psids` from now on (for the checks
/// the inbox worker makes when an m.me `ref` is opened).
pub async fn mount_ids_for_pages_later(graph: &MockServer, psids: &[&str]) {
    let data: Vec<Value> = psids
        .iter()
        .map(|p| json!({"id": p, "page": {"id": PAGE_ID}}))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{UID}/ids_for_pages")))
        .and(query_param("page", PAGE_ID))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        // Ahead of the login's own answer, mounted before.
        .with_priority(1)
        .named("ids_for_pages (later)")
        .mount(graph)
        .await;
}

/// The Page-scoped profile of `psid` (the User Profile API).
pub async fn mount_profile(graph: &MockServer, psid: &str, first: &str, last: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v25.0/{psid}")))
        .and(query_param("fields", "first_name,last_name,profile_pic"))
        .and(query_param("access_token", PAGE_TOKEN))
        .and(ValidProof)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "first_name": first, "last_name": last, "id": psid,
            "profile_pic": format!("https://platform-lookaside.example.test/{psid}.jpg")
        })))
        .named("user profile")
        .mount(graph)
        .await;
}

/// Outbox bodies queued for `psid` that announce a link (button template
/// with the Unlink postback).
pub async fn announcements_to(app: &TestApp, psid: &str) -> Vec<Value> {
    app.outbox()
        .await
        .into_iter()
        .filter(|r| r.psid == psid && r.origin == "link_notice")
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .collect()
}

/// The value of the hidden input `name` inside the form posting to `action`.
pub fn form_field(page: &str, action: &str, name: &str) -> Option<String> {
    let form = page.split(&format!("action=\"{action}\"")).nth(1)?;
    let form = form.split("</form>").next()?;
    let start = form.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    form[start..].split('"').next().map(str::to_string)
}
