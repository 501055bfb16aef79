//! The store's typed error for writes: callers act on what went wrong (a
//! write the database refused is final; one that met a busy, full or
//! unreachable database may succeed later) without looking into the
//! database drivers' errors themselves.

/// Why a write through the group committer failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused the write for its content (a constraint it
    /// breaks, such as a taken unique key): writing it again cannot
    /// succeed.
    #[error("{0:#}")]
    Conflict(anyhow::Error),
    /// The database was busy, full or unreachable, or the committer has
    /// stopped: the same write may succeed later.
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

impl StoreError {
    /// Sorts a failed write by its cause: the one place that looks into
    /// the drivers' errors.
    pub(crate) fn classify(error: anyhow::Error) -> StoreError {
        let refused = error.chain().any(|cause| {
            if let Some(rusqlite::Error::SqliteFailure(failure, _)) = cause.downcast_ref() {
                return failure.code == rusqlite::ErrorCode::ConstraintViolation;
            }
            match cause.downcast_ref() {
                Some(sqlx::Error::Database(db)) => db.kind() != sqlx::error::ErrorKind::Other,
                _ => false,
            }
        });
        match refused {
            true => StoreError::Conflict(error),
            false => StoreError::Unavailable(error),
        }
    }

    /// Whether the database refused the write (see `Conflict`).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_the_database_refused_is_final() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT NOT NULL)")
            .unwrap();
        let broken = conn
            .execute("INSERT INTO t (v) VALUES (NULL)", [])
            .unwrap_err();
        let refused = StoreError::classify(anyhow::Error::from(broken).context("group commit"));
        assert!(refused.is_conflict());
        assert!(
            refused.to_string().starts_with("group commit: "),
            "{refused}"
        );
        let stopped = anyhow::anyhow!("the database writer has stopped");
        assert!(!StoreError::classify(stopped).is_conflict());
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(!StoreError::classify(anyhow::Error::from(busy)).is_conflict());
    }
}
