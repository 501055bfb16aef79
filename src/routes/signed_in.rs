//! Extractors for the login site's pages: who is signed in, and forms that
//! carry the session's CSRF token. A handler that takes one of these never
//! runs for a visitor it is not for.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tracing::warn;

use super::session::{Session, SessionCookies};
use super::site_error::SiteError;
use crate::linking::LoginError;

/// The session of a request (signed in or not).
async fn session_of(req: &HttpRequest) -> Result<Session, SiteError> {
    let cookies = req
        .app_data::<web::Data<SessionCookies>>()
        .ok_or_else(|| anyhow::anyhow!("the session cookies are not configured"))?;
    Ok(cookies.read(req).await)
}

/// A signed-in visitor; anyone else is sent to the home page.
pub struct SignedIn {
    pub account_id: String,
    pub session: Session,
}

impl FromRequest for SignedIn {
    type Error = SiteError;
    type Future = Pin<Box<dyn Future<Output = Result<SignedIn, SiteError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let session = session_of(&req).await?;
            match session.account_id.clone() {
                Some(account_id) => Ok(SignedIn {
                    account_id,
                    session,
                }),
                None => Err(SiteError::SignedOut),
            }
        })
    }
}

/// A form field that must equal the session's CSRF token.
pub trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// A form with no other field than its CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl HasCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form of a signed-in visitor that carries the session's CSRF token:
/// anyone signed out is sent home, a form without the token gets the "form
/// expired" page.
pub struct SignedInForm<T> {
    pub account_id: String,
    pub form: T,
    pub session: Session,
}

impl<T: HasCsrf + DeserializeOwned + 'static> FromRequest for SignedInForm<T> {
    type Error = SiteError;
    type Future = Pin<Box<dyn Future<Output = Result<SignedInForm<T>, SiteError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = web::Form::<T>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let form = form.await.map_err(SiteError::Form)?.into_inner();
            let SignedIn {
                account_id,
                session,
            } = SignedIn::from_request(&req, &mut Payload::None).await?;
            if !session.csrf_ok(form.csrf()) {
                warn!(
                    path = req.path(),
                    "a form refused: bad or missing CSRF token"
                );
                return Err(LoginError::FormExpired.into());
            }
            Ok(SignedInForm {
                account_id,
                form,
                session,
            })
        })
    }
}
