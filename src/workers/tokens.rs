//! The token check: the Page tokens and stored user tokens are checked
//! with `debug_token` at start (in the background: start-up does not wait
//! for Meta) and then every `TOKEN_CHECK_INTERVAL` (see `token_health`).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::info;

use crate::state::AppState;
use crate::token_health;

/// Once a day.
pub const TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

pub async fn run(shared: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let checks = async {
            token_health::check_pages(&shared).await;
            token_health::check_user_tokens(&shared).await;
        };
        tokio::select! {
            _ = checks => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(TOKEN_CHECK_INTERVAL) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    info!("token checker stopped");
}
