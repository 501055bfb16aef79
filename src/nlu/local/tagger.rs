//! A BIO sequence tagger: structured averaged perceptron with first-order
//! transitions and Viterbi decoding, over lexical, shape, context and
//! gazetteer features. Label 0 is `O`; slot `k` has `B = 1 + 2k`, `I = 2 + 2k`.

use super::features::{hash, stem};
use super::rng::Rng;
use super::text::Token;
use std::collections::HashMap;

pub type Features = Vec<Vec<u64>>;

#[derive(Debug, Clone)]
pub struct Sentence {
    pub features: Features,
    pub gold: Vec<u16>,
}

#[derive(Debug, Default)]
pub struct Tagger {
    labels: usize,
    vocab: HashMap<u64, u32>,
    emit: Vec<f32>,
    /// `(labels + 1) x labels`; the last row is the start state.
    trans: Vec<f32>,
}

fn allowed(prev: Option<usize>, label: usize) -> bool {
    if label == 0 || label % 2 == 1 {
        return true;
    }
    matches!(prev, Some(p) if p != 0 && p.div_ceil(2) == label / 2)
}

/// Per-token features; `marks[i]` carries extra keys (gazetteer hits).
pub fn token_features(text: &str, tokens: &[Token], marks: &[Vec<u64>]) -> Features {
    let word = |i: isize| -> &str {
        if i < 0 {
            "<s>"
        } else {
            tokens
                .get(i as usize)
                .map(|t| t.norm.as_str())
                .unwrap_or("</s>")
        }
    };
    let mut out = Vec::with_capacity(tokens.len());
    for (i, tok) in tokens.iter().enumerate() {
        let i = i as isize;
        let w = word(i);
        let f = |tag: &str, v: &str| hash(hash(7, tag.as_bytes()), v.as_bytes());
        let chars: Vec<char> = w.chars().collect();
        let suffix = |n: usize| {
            chars[chars.len().saturating_sub(n)..]
                .iter()
                .collect::<String>()
        };
        let prefix: String = chars.iter().take(3).collect();
        let mut fs = vec![
            f("bias", ""),
            f("w", w),
            f("w-1", word(i - 1)),
            f("w+1", word(i + 1)),
            f("w-2", word(i - 2)),
            f("w+2", word(i + 2)),
            f("w-1w", &format!("{} {w}", word(i - 1))),
            f("ww+1", &format!("{w} {}", word(i + 1))),
            f("w-2w-1", &format!("{} {}", word(i - 2), word(i - 1))),
            f("w+1w+2", &format!("{} {}", word(i + 1), word(i + 2))),
            f("stem", stem(w)),
            f("suf3", &suffix(3)),
            f("suf2", &suffix(2)),
            f("pre3", &prefix),
            f("shape", &shape(text.get(tok.start..tok.end).unwrap_or(""))),
            f("len", &chars.len().min(8).to_string()),
        ];
        if let Some(prev) = tokens.get((i - 1) as usize).filter(|_| i > 0) {
            fs.push(f(
                "shape-1",
                &shape(text.get(prev.start..prev.end).unwrap_or("")),
            ));
        }
        if let Some(m) = marks.get(i as usize) {
            fs.extend(m.iter().copied());
        }
        out.push(fs);
    }
    out
}

fn shape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let k = if c.is_uppercase() {
            'X'
        } else if c.is_lowercase() {
            'x'
        } else if c.is_numeric() {
            'd'
        } else {
            c
        };
        if !out.ends_with(k) {
            out.push(k);
        }
    }
    out
}

impl Tagger {
    pub fn train(sentences: &[Sentence], labels: usize, epochs: usize, seed: u64) -> Self {
        let mut t = Tagger {
            labels,
            ..Tagger::default()
        };
        for s in sentences {
            for fs in &s.features {
                for f in fs {
                    let next = t.vocab.len() as u32;
                    t.vocab.entry(*f).or_insert(next);
                }
            }
        }
        t.emit = vec![0.0; t.vocab.len() * labels];
        t.trans = vec![0.0; (labels + 1) * labels];
        let mut acc_emit = vec![0.0f32; t.emit.len()];
        let mut acc_trans = vec![0.0f32; t.trans.len()];
        let mut c = 1.0f32;
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        let mut rng = Rng::new(seed);
        let mut ids: Vec<Vec<u32>> = Vec::new();
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for &si in &order {
                let s = &sentences[si];
                ids.clear();
                ids.extend(s.features.iter().map(|fs| t.ids(fs)));
                let guess = t.viterbi(&ids);
                if guess != s.gold {
                    for (pos, (&g, &p)) in s.gold.iter().zip(&guess).enumerate() {
                        let (g, p) = (g as usize, p as usize);
                        let prev_g = if pos == 0 {
                            labels
                        } else {
                            s.gold[pos - 1] as usize
                        };
                        let prev_p = if pos == 0 {
                            labels
                        } else {
                            guess[pos - 1] as usize
                        };
                        if g != p {
                            for &f in &ids[pos] {
                                let base = f as usize * labels;
                                t.emit[base + g] += 1.0;
                                t.emit[base + p] -= 1.0;
                                acc_emit[base + g] += c;
                                acc_emit[base + p] -= c;
                            }
                        }
                        if g != p || prev_g != prev_p {
                            t.trans[prev_g * labels + g] += 1.0;
                            t.trans[prev_p * labels + p] -= 1.0;
                            acc_trans[prev_g * labels + g] += c;
                            acc_trans[prev_p * labels + p] -= c;
                        }
                    }
                }
                c += 1.0;
            }
        }
        t.emit
            .iter_mut()
            .zip(&acc_emit)
            .for_each(|(w, a)| *w -= a / c);
        t.trans
            .iter_mut()
            .zip(&acc_trans)
            .for_each(|(w, a)| *w -= a / c);
        t
    }

    fn ids(&self, fs: &[u64]) -> Vec<u32> {
        fs.iter()
            .filter_map(|f| self.vocab.get(f).copied())
            .collect()
    }

    pub fn tag(&self, features: &Features) -> Vec<u16> {
        let ids: Vec<Vec<u32>> = features.iter().map(|fs| self.ids(fs)).collect();
        self.viterbi(&ids)
    }

    fn viterbi(&self, ids: &[Vec<u32>]) -> Vec<u16> {
        let l = self.labels;
        let n = ids.len();
        if n == 0 || l == 0 {
            return Vec::new();
        }
        let mut score = vec![f32::NEG_INFINITY; n * l];
        let mut back = vec![0u16; n * l];
        let mut emit = vec![0.0f32; l];
        for pos in 0..n {
            emit.iter_mut().for_each(|e| *e = 0.0);
            for &f in &ids[pos] {
                let row = &self.emit[f as usize * l..][..l];
                emit.iter_mut().zip(row).for_each(|(e, w)| *e += w);
            }
            for y in 0..l {
                if pos == 0 {
                    if allowed(None, y) {
                        score[y] = self.trans[l * l + y] + emit[y];
                    }
                    continue;
                }
                let mut best = (f32::NEG_INFINITY, 0usize);
                for p in 0..l {
                    let prev = score[(pos - 1) * l + p];
                    if prev == f32::NEG_INFINITY || !allowed(Some(p), y) {
                        continue;
                    }
                    let s = prev + self.trans[p * l + y];
                    if s > best.0 {
                        best = (s, p);
                    }
                }
                score[pos * l + y] = best.0 + emit[y];
                back[pos * l + y] = best.1 as u16;
            }
        }
        let last = &score[(n - 1) * l..];
        let mut y = (0..l)
            .max_by(|&a, &b| last[a].total_cmp(&last[b]))
            .unwrap_or(0);
        let mut path = vec![0u16; n];
        for pos in (0..n).rev() {
            path[pos] = y as u16;
            y = back[pos * l + y] as usize;
        }
        path
    }
}

/// Token ranges and slot indices of the spans in a label sequence.
pub fn spans(labels: &[u16]) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &y) in labels.iter().enumerate() {
        let y = y as usize;
        if y == 0 {
            continue;
        }
        let slot = (y - 1) / 2;
        match out.last_mut() {
            Some(last) if y & 1 == 0 && last.1 == i && last.2 == slot => last.1 = i + 1,
            _ => out.push((i, i + 1, slot)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::local::text::tokenize;

    #[test]
    fn learns_a_span_from_context() {
        let mut sentences = Vec::new();
        for city in ["paris", "new york", "rome", "los angeles", "tokyo"] {
            let text = format!("weather in {city} please");
            let toks = tokenize(&text);
            let n = toks.len();
            let mut gold = vec![0u16; n];
            gold[2] = 1;
            for g in gold.iter_mut().take(n - 1).skip(3) {
                *g = 2;
            }
            let features = token_features(&text, &toks, &[]);
            sentences.push(Sentence { features, gold });
        }
        let t = Tagger::train(&sentences, 3, 5, 1);
        let text = "weather in san francisco please";
        let toks = tokenize(text);
        let labels = t.tag(&token_features(text, &toks, &[]));
        assert_eq!(spans(&labels), [(2, 4, 0)]);
    }
}
