//! The OAuth half of Facebook Login, through the `oauth2` crate: the dialog
//! URL with its `state`, and the exchange of the returned `code` for a
//! short-lived user token.

use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpClientError, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use url::Url;

use crate::config::Settings;
use crate::facebook::GraphError;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The path of the login callback; `redirect_uri` is PUBLIC_URL + this.
pub const CALLBACK_PATH: &str = "/auth/facebook/callback";

pub struct FacebookOAuth {
    client: Client,
    http: oauth2::reqwest::Client,
    scope: String,
}

impl FacebookOAuth {
    pub fn new(settings: &Settings) -> anyhow::Result<FacebookOAuth> {
        let fb = &settings.facebook;
        let version = &fb.graph_api_version;
        let auth = fb.dialog_url.join(&format!("{version}/dialog/oauth"))?;
        let token = fb
            .graph_api_url
            .join(&format!("{version}/oauth/access_token"))?;
        let client = BasicClient::new(ClientId::new(fb.app_id.clone()))
            .set_client_secret(ClientSecret::new(fb.app_secret.expose_secret().to_string()))
            .set_auth_uri(AuthUrl::from_url(auth))
            .set_token_uri(TokenUrl::from_url(token))
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri(&settings.public_url)?))
            // Meta reads client_id and client_secret from the request body.
            .set_auth_type(AuthType::RequestBody);
        // Following redirects from a token endpoint is how codes leak.
        let http = oauth2::reqwest::Client::builder()
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .connect_timeout(settings.workers.graph_connect_timeout)
            .timeout(
                settings
                    .workers
                    .graph_request_timeout
                    .max(Duration::from_secs(1)),
            )
            .build()?;
        Ok(FacebookOAuth {
            client,
            http,
            scope: settings.facebook.login_scope.clone(),
        })
    }

    /// The login dialog URL and the `state` it carries.
    pub fn authorize_url(&self) -> (Url, String) {
        let mut request = self.client.authorize_url(CsrfToken::new_random);
        // Meta separates permissions with commas; pass the setting verbatim.
        if !self.scope.trim().is_empty() {
            request = request.add_scope(Scope::new(self.scope.trim().to_string()));
        }
        let (url, state) = request.url();
        (url, state.secret().clone())
    }

    /// Whether the configured scope lets a Page admin's login read the Page token.
    pub fn asks_for_pages(&self) -> bool {
        self.scope
            .split([',', ' '])
            .any(|s| s.trim() == "pages_show_list")
    }

    /// `code` -> short-lived user token.
    pub async fn exchange_code(&self, code: &str) -> Result<SecretString, GraphError> {
        let answer = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .request_async(&self.http)
            .await
            .map_err(graph_error)?;
        Ok(SecretString::from(answer.access_token().secret().clone()))
    }
}

/// `{PUBLIC_URL}/auth/facebook/callback`, exactly as the dialog must be told.
pub fn redirect_uri(public_url: &Url) -> anyhow::Result<Url> {
    let base = public_url.as_str().trim_end_matches('/');
    Ok(Url::parse(&format!("{base}{CALLBACK_PATH}"))?)
}

/// Meta answers token errors with its Graph error object, which is not an
/// RFC 6749 error: read it from the raw body.
fn graph_error(
    e: RequestTokenError<HttpClientError<oauth2::reqwest::Error>, BasicErrorResponse>,
) -> GraphError {
    match e {
        RequestTokenError::Parse(_, body) => GraphError::from_body(None, &body),
        RequestTokenError::ServerResponse(r) => GraphError {
            http_status: Some(400),
            message: format!("token endpoint refused the code: {}", r.error()),
            ..GraphError::default()
        },
        RequestTokenError::Request(HttpClientError::Reqwest(e)) => GraphError::transport(*e),
        RequestTokenError::Request(e) => GraphError {
            message: format!("token request failed: {e}"),
            ..GraphError::default()
        },
        RequestTokenError::Other(other) => GraphError {
            http_status: Some(502),
            message: format!("unexpected token endpoint answer: {other}"),
            ..GraphError::default()
        },
    }
}
