//! TF-IDF over four blocks, each L2-normalised on its own: words (uni- and
//! bigrams, crude stems), character 2–5-grams within words, unordered pairs
//! of the utterance's words (`balance`…`checking` wherever they stand), and
//! marks the caller adds (see `MARK`),
//! hashed to 64-bit keys and indexed by a vocabulary learned from the training
//! utterances; then, dense, what the words mean (`sense`).

use super::sense;
use super::text::is_punct;
use std::collections::HashMap;

/// Feature index -> weight, L2-normalised per block.
pub type Sparse = Vec<(u32, f32)>;

/// A message's features: the hashed blocks, then what its words mean
/// (`sense`), a unit vector times the block's weight (kept apart, without
/// an index per value: a large bot's training set holds one per utterance).
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub sparse: Sparse,
    /// Feature `dense_from + j` is `dense[j] * dense_scale`.
    pub dense: Vec<f32>,
    pub dense_scale: f32,
    pub dense_from: u32,
}

impl Features {
    /// Every (feature index, weight), hashed ones first.
    pub fn each(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .map(|(j, &q)| (self.dense_from as usize + j, q * self.dense_scale));
        self.sparse
            .iter()
            .map(|&(f, v)| (f as usize, v))
            .chain(dense)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Block {
    Word,
    Char,
    Pair,
    /// The caller's marks (`MARK`): normalised apart, so a mark weighs as
    /// much as all of the words, however many there are.
    Mark,
}

impl Block {
    const ALL: [Block; 4] = [Block::Word, Block::Char, Block::Pair, Block::Mark];

    fn index(self) -> usize {
        self as usize
    }

    /// In how many training utterances a feature must occur to be kept: a
    /// character gram or word pair seen only once or twice is mostly noise,
    /// and memory (each kept feature holds a weight per intent).
    fn min_count(self) -> u32 {
        match self {
            Block::Word | Block::Mark => 1,
            Block::Char => 2,
            Block::Pair => 3,
        }
    }
}

const WORD: u64 = 0x9e37_79b9_7f4a_7c15;
const BIGRAM: u64 = 0xc2b2_ae3d_27d4_eb4f;
const STEM: u64 = 0x1656_67b1_9e37_79f9;
const CHARS: u64 = 0x27d4_eb2f_1656_67c5;
const PAIR: u64 = 0x85eb_ca77_c2b2_ae63;

pub fn hash(seed: u64, bytes: &[u8]) -> u64 {
    hash_parts(seed, &[bytes])
}

/// `hash` of the parts joined, without joining them (a pair's key is built
/// for every pair of words of every utterance).
fn hash_parts(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// Strips common English inflections so `booking`/`books`/`booked` meet.
pub fn stem(word: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s", "ly"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.len() >= 3 && !word.ends_with("ss") {
                return base;
            }
        }
    }
    word
}

/// Starts a token that is not a word of the text but a mark the caller
/// added (`LocalBot`'s slot-type marks): one feature of the mark block, with
/// no character grams, stem, bigram or pair.
pub const MARK: char = '\u{1}';

/// Raw hashed features of folded tokens.
pub fn raw(tokens: &[&str], out: &mut Vec<(u64, Block)>) {
    out.clear();
    for mark in tokens.iter().filter(|t| t.starts_with(MARK)) {
        out.push((hash(WORD, mark.as_bytes()), Block::Mark));
    }
    let words: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| !is_punct(t) && !t.starts_with(MARK))
        .collect();
    let mut prev = "<s>";
    for w in words.iter().copied().chain(std::iter::once("</s>")) {
        if w != "</s>" {
            out.push((hash(WORD, w.as_bytes()), Block::Word));
            out.push((hash(STEM, stem(w).as_bytes()), Block::Word));
            char_grams(w, out);
        }
        let bigram = hash_parts(BIGRAM, &[prev.as_bytes(), b" ", w.as_bytes()]);
        out.push((bigram, Block::Word));
        prev = w;
    }
    word_pairs(&words, out);
}

/// In a long message only the first words pair up (the pairs grow with the
/// square of the words).
const MAX_PAIRED_WORDS: usize = 40;

/// Each unordered pair of distinct words once.
fn word_pairs(words: &[&str], out: &mut Vec<(u64, Block)>) {
    let mut distinct = words[..words.len().min(MAX_PAIRED_WORDS)].to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    for (i, a) in distinct.iter().enumerate() {
        for b in &distinct[i + 1..] {
            let pair = hash_parts(PAIR, &[a.as_bytes(), b" ", b.as_bytes()]);
            out.push((pair, Block::Pair));
        }
    }
}

fn char_grams(word: &str, out: &mut Vec<(u64, Block)>) {
    let padded: Vec<u8> = [b" ", word.as_bytes(), b" "].concat();
    let n = padded.len();
    for len in 2..=5 {
        if len > n {
            break;
        }
        for start in 0..=(n - len) {
            out.push((
                hash(CHARS ^ len as u64, &padded[start..start + len]),
                Block::Char,
            ));
        }
    }
}

#[derive(Debug, Default)]
pub struct Vectorizer {
    vocab: HashMap<u64, u32>,
    idf: Vec<f32>,
    block: Vec<Block>,
    max_idf: f32,
    /// What the `sense` block weighs against the others (each weighs 1).
    sense_weight: f32,
}

impl Vectorizer {
    /// Learns the vocabulary and IDF from documents (folded tokens); the
    /// `sense` block weighs `sense_weight`.
    pub fn fit(docs: &[Vec<&str>], sense_weight: f32) -> Self {
        let mut df: HashMap<u64, (u32, Block)> = HashMap::new();
        let mut buf = Vec::new();
        for doc in docs {
            raw(doc, &mut buf);
            buf.sort_unstable();
            buf.dedup();
            for &(k, c) in &buf {
                df.entry(k).or_insert((0, c)).0 += 1;
            }
        }
        let n = docs.len() as f32;
        let mut keys: Vec<(u64, (u32, Block))> = df.into_iter().collect();
        keys.sort_unstable_by_key(|&(k, _)| k);
        let mut v = Vectorizer {
            max_idf: (1.0 + n).ln() + 1.0,
            sense_weight,
            ..Vectorizer::default()
        };
        for (k, (count, block)) in keys {
            if count < block.min_count() {
                continue;
            }
            v.vocab.insert(k, v.idf.len() as u32);
            v.idf.push(((1.0 + n) / (1.0 + count as f32)).ln() + 1.0);
            v.block.push(block);
        }
        v
    }

    /// Hashed features, then the `sense` block's dense ones.
    pub fn dim(&self) -> usize {
        self.idf.len() + sense::table().dims()
    }

    /// The IDF of a word the training utterances had.
    fn word_idf(&self, word: &str) -> Option<f32> {
        let &i = self.vocab.get(&hash(WORD, word.as_bytes()))?;
        Some(self.idf.get(i as usize).copied().unwrap_or(self.max_idf))
    }

    /// Whether the training utterances had the word.
    pub fn knows(&self, word: &str) -> bool {
        self.word_idf(word).is_some()
    }

    /// IDF-weighted share of the words that occur in the training
    /// utterances (an unseen word weighs like the rarest one): input made of
    /// unseen content words is unlikely to belong to any intent.
    ///
    /// Words for which `is_value` holds (found as slot
    /// values) count as known whether the training utterances had them or
    /// not: a name the bot never saw is the slot, not noise. So do the first
    /// `unseen_values` words the training utterances never had (the words an
    /// intent's open slots could take).
    pub fn coverage_with(
        &self,
        tokens: &[&str],
        is_value: impl Fn(&str) -> bool,
        unseen_values: usize,
    ) -> f32 {
        let mut unseen_left = unseen_values;
        let (mut known, mut total) = (0.0f32, 0.0f32);
        // Numbers are values, not vocabulary.
        let words = tokens
            .iter()
            .filter(|t| !is_punct(t) && !t.chars().any(|c| c.is_ascii_digit()));
        for w in words {
            if is_value(w) {
                let idf = self.word_idf(w).unwrap_or(self.max_idf);
                known += idf;
                total += idf;
                continue;
            }
            match self.word_idf(w) {
                Some(idf) => {
                    known += idf;
                    total += idf;
                }
                None if unseen_left > 0 => {
                    unseen_left -= 1;
                    known += self.max_idf;
                    total += self.max_idf;
                }
                None => total += self.max_idf,
            }
        }
        if total > 0.0 {
            known / total
        } else {
            0.0
        }
    }

    /// The features of folded tokens (marks included); `meaning`: the words
    /// whose meaning counts (`sense`), e.g. all but a slot value's.
    pub fn transform(&self, tokens: &[&str], meaning: &[&str]) -> Features {
        let mut buf = Vec::new();
        raw(tokens, &mut buf);
        let mut idx: Vec<u32> = buf
            .iter()
            .filter_map(|(k, _)| self.vocab.get(k).copied())
            .collect();
        idx.sort_unstable();
        let mut out: Sparse = Vec::with_capacity(idx.len());
        for i in idx {
            match out.last_mut() {
                Some((j, tf)) if *j == i => *tf += 1.0,
                _ => out.push((i, 1.0)),
            }
        }
        let mut norms = [0.0f32; Block::ALL.len()];
        for (i, v) in out.iter_mut() {
            let ix = *i as usize;
            *v = (1.0 + v.ln()) * self.idf[ix];
            norms[self.block[ix].index()] += *v * *v;
        }
        let scales = norms.map(|n| 1.0 / n.sqrt().max(1e-6));
        for (i, v) in out.iter_mut() {
            *v *= scales[self.block[*i as usize].index()];
        }
        let table = sense::table();
        let mut dense = vec![0.0f32; table.dims()];
        table.sentence(meaning, &mut dense);
        if dense.iter().all(|&v| v == 0.0) {
            dense = Vec::new();
        }
        Features {
            sparse: out,
            dense,
            dense_scale: self.sense_weight,
            dense_from: self.idf.len() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_words_still_share_character_grams() {
        let docs = vec![vec!["book", "a", "table"], vec!["play", "music"]];
        let v = Vectorizer::fit(&docs, 1.0);
        let x = v.transform(&["booking", "tables"], &[]).sparse;
        assert!(!x.is_empty());
        let norm: f32 = x.iter().map(|(_, w)| w * w).sum();
        assert!(norm > 0.0);
        assert_eq!(stem("booking"), "book");
        assert_eq!(stem("class"), "class");
        assert_eq!(hash_parts(7, &[b"ab", b" ", b"c"]), hash(7, b"ab c"));
    }

    #[test]
    fn word_pairs_meet_whatever_the_order_and_a_rare_pair_is_dropped() {
        let pairs = |tokens: &[&str]| {
            let mut buf = Vec::new();
            raw(tokens, &mut buf);
            let mut keys: Vec<u64> = buf
                .into_iter()
                .filter(|&(_, b)| b == Block::Pair)
                .map(|(k, _)| k)
                .collect();
            keys.sort_unstable();
            keys
        };
        let two = pairs(&["checking", "balance"]);
        assert_eq!(two.len(), 1);
        assert!(pairs(&["balance", "of", "my", "checking"]).contains(&two[0]));
        assert_eq!(pairs(&["a", "b", "c", "b"]).len(), 3);
        let long: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(pairs(&long).len(), 40 * 39 / 2);
        let docs = vec![vec!["check", "balance"]; 3]
            .into_iter()
            .chain([vec!["transfer", "money"]])
            .collect::<Vec<_>>();
        let v = Vectorizer::fit(&docs, 1.0);
        let seen_thrice = v.vocab.contains_key(&pairs(&["check", "balance"])[0]);
        let seen_once = v.vocab.contains_key(&pairs(&["transfer", "money"])[0]);
        assert!(seen_thrice && !seen_once);
    }
}
