//! The demo's secrets: made once, kept in `secrets.json` in the data folder
//! (owner-only), so a restart can read its encrypted tokens and keeps its key.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::outbound::keys;

#[derive(Clone, Serialize, Deserialize)]
pub struct DemoSecrets {
    pub app_secret: String,
    pub page_token: String,
    pub verify_token: String,
    pub token_encryption_key: String,
    pub session_key: String,
    pub fulfillment_secret: String,
    pub api_key: String,
}

fn random_hex(bytes: usize) -> String {
    hex::encode((0..bytes).map(|_| rand::random::<u8>()).collect::<Vec<_>>())
}

fn random_base64(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

impl DemoSecrets {
    pub fn generate() -> DemoSecrets {
        DemoSecrets {
            app_secret: random_hex(16),
            page_token: format!("DEMOPAGE{}", random_hex(24)),
            verify_token: random_hex(16),
            token_encryption_key: random_base64(32),
            session_key: random_base64(64),
            fulfillment_secret: random_hex(24),
            api_key: keys::reveal(&keys::generate()).to_string(),
        }
    }

    /// The kept secrets, or new ones written to `file` (`true`: new).
    pub fn load_or_create(file: &Path) -> anyhow::Result<(DemoSecrets, bool)> {
        if file.exists() {
            let text = std::fs::read_to_string(file)?;
            let secrets = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not the demo's secrets file ({e}); start over with --reset",
                    file.display()
                )
            })?;
            return Ok((secrets, false));
        }
        let secrets = DemoSecrets::generate();
        write_private(file, &serde_json::to_string_pretty(&secrets)?)?;
        Ok((secrets, true))
    }
}

#[cfg(unix)]
fn write_private(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(file: &Path, text: &str) -> anyhow::Result<()> {
    Ok(std::fs::write(file, text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.json");
        let (first, new) = DemoSecrets::load_or_create(&file).unwrap();
        assert!(new);
        let (again, new) = DemoSecrets::load_or_create(&file).unwrap();
        assert!(!new);
        assert_eq!(first.api_key, again.api_key);
        assert_eq!(first.session_key, again.session_key);
        assert_ne!(first.app_secret, DemoSecrets::generate().app_secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read it");
        }
        std::fs::write(&file, "nonsense").unwrap();
        let refused = DemoSecrets::load_or_create(&file).err().expect("refused");
        assert!(refused.to_string().contains("--reset"));
    }
}
