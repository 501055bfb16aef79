//! Tokens with their place in the original text, and the folding that makes
//! matching tolerant of case, accents and spacing.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Byte range in the original text.
    pub start: usize,
    pub end: usize,
    /// Lowercased, accent-free form.
    pub norm: String,
}

/// Lowercase and strip accents (`Mediodía` -> `mediodia`), `’` -> `'`.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| {
            if c == '\u{2019}' || c == '\u{2018}' {
                '\''
            } else {
                c
            }
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn joins(prev: char, c: char, next: Option<char>) -> bool {
    let next_word = next.is_some_and(is_word);
    match c {
        '\'' | '\u{2019}' | '-' | '&' => is_word(prev) && next_word,
        '.' | ',' | ':' => prev.is_ascii_digit() && next.is_some_and(|n| n.is_ascii_digit()),
        _ => false,
    }
}

/// Words (with inner `'`, `-`, `&`, and `3.5` / `10:30` kept whole) and
/// single punctuation marks.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if is_word(c) {
            while j < chars.len() {
                let (_, cj) = chars[j];
                let next = chars.get(j + 1).map(|&(_, n)| n);
                if is_word(cj) || joins(chars[j - 1].1, cj, next) {
                    j += 1;
                } else {
                    break;
                }
            }
        }
        let end = chars.get(j).map(|&(b, _)| b).unwrap_or(text.len());
        tokens.push(Token {
            start,
            end,
            norm: fold(&text[start..end]),
        });
        i = j;
    }
    tokens
}

/// Folded tokens joined by single spaces: the key for value lookups.
pub fn key(text: &str) -> String {
    tokenize(text)
        .into_iter()
        .map(|t| t.norm)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn is_punct(token: &str) -> bool {
    token.chars().all(|c| !is_word(c))
}

/// Trims trailing punctuation and surrounding whitespace of a value.
pub fn clean_value(s: &str) -> &str {
    s.trim()
        .trim_end_matches(|c: char| c.is_ascii_punctuation() && c != ')' && c != '\'')
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_inner_marks_and_offsets() {
        let toks = tokenize("Add joy's  hip-hop, 3.5 km at 10:30?");
        let words: Vec<&str> = toks.iter().map(|t| t.norm.as_str()).collect();
        assert_eq!(
            words,
            ["add", "joy's", "hip-hop", ",", "3.5", "km", "at", "10:30", "?"]
        );
        assert_eq!(&"Add joy's  hip-hop"[toks[2].start..toks[2].end], "hip-hop");
    }

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(fold("Mediodía Acústico"), "mediodia acustico");
        assert_eq!(key("  Café   DU  Monde "), "cafe du monde");
    }
}
