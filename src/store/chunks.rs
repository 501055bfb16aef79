//! Multi-row statements in a few fixed shapes, shared by every table that
//! writes in batches.

/// Most rows in one multi-row statement (well under SQLite's 32766 variables).
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Splits `rows` into chunks whose sizes are powers of two, so a handful of
/// statement shapes serve every batch size and stay in the prepared
/// statement cache instead of being parsed anew for each batch.
pub(crate) fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = rows.len().min(MAX_ROWS_PER_STATEMENT);
        let size = 1 << n.ilog2();
        let (head, tail) = rows.split_at(size);
        rows = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_into_power_of_two_chunks() {
        let rows: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 32, 8, 4]);
        let rebuilt: Vec<u32> = chunks(&rows).flatten().copied().collect();
        assert_eq!(rebuilt, rows);
        assert_eq!(chunks::<u32>(&[]).count(), 0);
    }
}
