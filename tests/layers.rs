//! Which way the library's dependencies run, checked on its source (comments
//! and string literals left out): the vendor client and the NLU know nothing
//! of the store; the NLU knows nothing of the channel; only the start-up
//! reaches the workers; routes hold neither the Graph client nor the NLU; the
//! embedded NLU engine takes nothing from the rest of the crate but the reply
//! types; the load generators are not in the library.

use std::path::{Path, PathBuf};

#[test]
fn facebook_and_nlu_import_nothing_from_the_store() {
    for dir in ["facebook", "nlu"] {
        assert_eq!(uses_of(dir, &["store"]), Vec::<String>::new(), "src/{dir}");
    }
}

#[test]
fn nlu_imports_nothing_from_facebook() {
    assert_eq!(uses_of("nlu", &["facebook"]), Vec::<String>::new());
}

#[test]
fn only_the_start_up_reaches_the_workers() {
    let reaching: Vec<String> = uses_of("", &["workers"])
        .into_iter()
        .filter(|at| !at.starts_with("workers/") && !at.starts_with("startup.rs:"))
        .collect();
    assert_eq!(reaching, Vec::<String>::new());
}

#[test]
fn the_embedded_engine_takes_only_the_reply_types_from_the_crate() {
    let mut stray = Vec::new();
    for file in rust_files(&src().join("nlu/local")) {
        let name = relative(&file);
        // How many modules above its own a path of this file may climb
        // with `super::` and stay inside the engine: `nlu/local/mod.rs` is
        // the engine, `nlu/local/x.rs` one below it.
        let below_engine = Path::new(&name)
            .strip_prefix("nlu/local")
            .unwrap()
            .components()
            .count()
            - usize::from(name.ends_with("/mod.rs"));
        let code = code_of(&file);
        for (path, inline_mods) in paths(&code) {
            let supers = path.split("::").take_while(|s| *s == "super").count();
            let outside = match path.strip_prefix("crate::") {
                Some(rest) => !["nlu::local::", "nlu::reply::"]
                    .iter()
                    .any(|inside| rest.starts_with(inside)),
                None => supers > below_engine + inline_mods,
            };
            if outside {
                stray.push(format!("{name}: {path}"));
            }
        }
    }
    assert_eq!(stray, Vec::<String>::new());
}

/// Routes answer from what is stored and queue the rest for the workers:
/// none holds the Graph client or the NLU, or names their modules. The login
/// callback, whose answer is what Graph says about the person, is the one
/// route that waits on Meta, and it does so through `linking::login`.
#[test]
fn routes_call_neither_meta_nor_the_nlu() {
    let mut inline = Vec::new();
    for file in rust_files(&src().join("routes")) {
        let name = relative(&file);
        let held = clients_held(&code_of(&file));
        inline.extend(held.into_iter().map(|what| format!("{name}: {what}")));
    }
    assert_eq!(inline, Vec::<String>::new());
    // The check sees what it looks for, and not what merely looks like it.
    let sample = strip(
        "let r = state.graph.send(x); use crate::nlu::Nlu; // state.nlu\n\
         let s = crate::facebook::graph::appsecret_proof(k, t); let g = self.graphs;",
    );
    assert_eq!(
        clients_held(&sample),
        [
            "crate::nlu::Nlu",
            "crate::facebook::graph::appsecret_proof",
            "state.graph"
        ]
    );
}

/// What in `code` names the Graph client or the NLU: their modules'
/// paths, and the application state's `.graph` and `.nlu` fields.
fn clients_held(code: &str) -> Vec<String> {
    let mut held: Vec<String> = paths(code)
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| {
            ["facebook::graph", "facebook::GraphClient", "nlu"]
                .iter()
                .any(|m| {
                    path.strip_prefix("crate::")
                        .is_some_and(|p| p.starts_with(m))
                })
        })
        .collect();
    for field in [".graph", ".nlu"] {
        let uses = code.match_indices(field).any(|(at, _)| {
            !code[at + field.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        });
        if uses {
            held.push(format!("state{field}"));
        }
    }
    held
}

#[test]
fn the_load_generators_are_not_in_the_library() {
    let lib = code_of(&src().join("lib.rs"));
    assert!(!lib.contains("mod bench"), "src/lib.rs declares the bench");
    assert!(
        code_of(&src().join("main.rs")).contains("mod bench;"),
        "the lexbridge command keeps `lexbridge bench`"
    );
}

/// The tools themselves: what they see, and what they do not.
#[test]
fn the_checks_see_paths_in_code_only() {
    let code = strip(
        r##"use crate::{config::X, store::{inbox::Row, now_ms}};
        // crate::workers in a comment
        /* crate::workers::a /* nested */ crate::workers::b */
        let s = "crate::workers { in a string";
        let r = r#"crate::workers"#;
        let c = '{';
        fn f<'a>(x: &'a str) { super::super::y(crate::facebook::sign(x)) }
        mod tests { use super::*; }"##,
    );
    let found: Vec<(String, usize)> = paths(&code);
    assert_eq!(
        found,
        [
            ("crate::config::X".to_string(), 0),
            ("crate::store::inbox::Row".to_string(), 0),
            ("crate::store::now_ms".to_string(), 0),
            ("super::super::y".to_string(), 0),
            ("crate::facebook::sign".to_string(), 0),
            ("super::*".to_string(), 1),
        ]
    );
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `file:path` for every path under `src/<dir>` that starts with
/// `crate::<module>` for one of `modules`.
fn uses_of(dir: &str, modules: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(&src().join(dir)) {
        for (path, _) in paths(&code_of(&file)) {
            let first = path
                .strip_prefix("crate::")
                .and_then(|p| p.split("::").next());
            if first.is_some_and(|m| modules.contains(&m)) {
                found.push(format!("{}: {path}", relative(&file)));
            }
        }
    }
    found
}

fn relative(file: &Path) -> String {
    file.strip_prefix(src()).unwrap().display().to_string()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no sources under {}", dir.display());
    files.sort();
    files
}

fn code_of(file: &Path) -> String {
    strip(&std::fs::read_to_string(file).unwrap())
}

/// The text with comments, string literals and char literals blanked out.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let starts = |s: &str| rest.iter().take(s.len()).copied().eq(s.chars());
        if starts("//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if starts("/*") {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i..].starts_with(&['/', '*']) {
                    depth += 1;
                    i += 2;
                } else if chars[i..].starts_with(&['*', '/']) {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"…", r#"…"#, br#"…"#: ends at a quote and as many hashes.
            i += rest.iter().position(|c| *c == '"').unwrap() + 1;
            let end: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&end) {
                i += 1;
            }
            i += end.len();
            out.push_str("\"\"");
        } else if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if chars[i] == '\'' && is_char_literal(rest) {
            i += 1;
            while chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The number of `#`s of a raw string literal starting here.
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let after_b = if rest.first() == Some(&'b') { 1 } else { 0 };
    if rest.get(after_b) != Some(&'r') {
        return None;
    }
    let hashes = rest[after_b + 1..]
        .iter()
        .take_while(|c| **c == '#')
        .count();
    (rest.get(after_b + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// `'x'` or `'\n'`, not a lifetime (`'a`).
fn is_char_literal(rest: &[char]) -> bool {
    match rest.get(1) {
        Some('\\') => true,
        Some(_) => rest.get(2) == Some(&'\''),
        None => false,
    }
}

/// Every path in `code` that starts with `crate::` or `super::`, with
/// `use` groups spelled out, and how many inline `mod x { … }` blocks it is
/// in.
fn paths(code: &str) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    // For each open brace: whether it opens an inline module.
    let mut braces: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !is_path_char(bytes[i - 1]);
        let rest = &bytes[i..];
        if bytes[i] == b'{' {
            let before = code[..i].trim_end();
            let word_before = before
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next();
            let opens_mod = word_before.is_some_and(|name| {
                before[..before.len() - name.len()]
                    .trim_end()
                    .ends_with("mod")
            });
            braces.push(opens_mod);
            i += 1;
        } else if bytes[i] == b'}' {
            braces.pop();
            i += 1;
        } else if at_word_start && (rest.starts_with(b"crate::") || rest.starts_with(b"super::")) {
            let inline_mods = braces.iter().filter(|m| **m).count();
            let end = spell_out("", code, i, &mut |path| found.push((path, inline_mods)));
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads the path at `code[start..]` (a group `{a, b::c}` spelled out
/// into one path each), calls `found` with `prefix` + each; returns where
/// it ends.
fn spell_out(prefix: &str, code: &str, start: usize, found: &mut dyn FnMut(String)) -> usize {
    let bytes = code.as_bytes();
    let mut i = start;
    while i < bytes.len() && (is_path_char(bytes[i]) || bytes[i] == b':' || bytes[i] == b'*') {
        i += 1;
    }
    let head = format!("{prefix}{}", &code[start..i]);
    if !head.ends_with("::") || bytes.get(i) != Some(&b'{') {
        found(head.trim_end_matches("::").to_string());
        return i;
    }
    // A group: each member, up to the matching brace.
    i += 1;
    loop {
        while bytes[i].is_ascii_whitespace() || bytes[i] == b',' {
            i += 1;
        }
        if bytes[i] == b'}' {
            return i + 1;
        }
        i = spell_out(&head, code, i, found);
        // `x as y` names the same path.
        while bytes[i] != b',' && bytes[i] != b'}' {
            i += 1;
        }
    }
}
