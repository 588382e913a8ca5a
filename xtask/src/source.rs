//! Just enough Rust lexing for the source checks: blank out comments and string
//! contents, find the `use` declarations and expand each into the full paths it
//! imports.
//!
//! This is not a parser: it is exact for what rustfmt'd code contains (line,
//! block and doc comments, strings, raw strings, char literals and lifetimes,
//! grouped and nested `use` trees over several lines) and errs towards seeing
//! too much in anything stranger.

/// One path a `use` declaration imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UseItem {
    /// The full path, segments joined by `::`, without a leading `::`; a glob
    /// import ends in `::*`.
    pub(crate) path: String,
    /// The name it is bound to in scope (the last segment, or the `as` alias;
    /// `*` for a glob).
    pub(crate) name: String,
}

/// A `use` declaration found in (blanked) source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UseDecl {
    /// 1-based line of the `use` keyword.
    pub(crate) line: usize,
    /// Byte range of the declaration from `use` to its `;` inclusive.
    pub(crate) span: std::ops::Range<usize>,
    /// What it imports.
    pub(crate) items: Vec<UseItem>,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with every comment (line, block, doc) and the contents of every string
/// and char literal replaced by spaces. Newlines stay where they were, and each
/// replaced character becomes spaces of the same UTF-8 length, so byte offsets
/// and line numbers of the result are those of `text`.
pub(crate) fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let keep = |out: &mut String, c: char| out.push(c);
    let hide = |out: &mut String, c: char| {
        if c == '\n' {
            out.push('\n');
        } else {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                hide(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    hide(&mut out, '/');
                    hide(&mut out, '*');
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    hide(&mut out, '*');
                    hide(&mut out, '/');
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    hide(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == '"' {
            keep(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    hide(&mut out, chars[i]);
                    i += 1;
                }
                hide(&mut out, chars[i]);
                i += 1;
            }
            if i < chars.len() {
                keep(&mut out, '"');
                i += 1;
            }
        } else if !prev_ident && matches!(c, 'r' | 'b' | 'c') && raw_string_at(&chars, i).is_some()
        {
            let (open, hashes) = raw_string_at(&chars, i).expect("checked");
            for &ch in &chars[i..open] {
                keep(&mut out, ch);
            }
            i = open;
            // Find `"` followed by `hashes` #s.
            while i < chars.len() {
                if chars[i] == '"'
                    && chars[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    keep(&mut out, '"');
                    for _ in 0..hashes {
                        keep(&mut out, '#');
                    }
                    i += 1 + hashes;
                    break;
                }
                hide(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime / label ('a).
            let lit_end = if next == Some('\\') {
                chars
                    .get(i + 3..)
                    .and_then(|rest| rest.iter().position(|&ch| ch == '\''))
                    .map(|p| i + 3 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            keep(&mut out, c);
            i += 1;
            if let Some(end) = lit_end {
                while i < end {
                    hide(&mut out, chars[i]);
                    i += 1;
                }
                keep(&mut out, '\'');
                i += 1;
            }
        } else {
            keep(&mut out, c);
            i += 1;
        }
    }
    out
}

/// At `chars[i]`, a raw string start (`r"`, `r#"`, `br##"`, `cr"`...): the index
/// of its opening `"` plus one, and its number of `#`s.
fn raw_string_at(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(chars.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((j + 1, hashes))
}

/// Every `use` declaration in `blanked` (the output of [`blank`]).
pub(crate) fn use_decls(blanked: &str) -> Vec<UseDecl> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = blanked[from..].find("use") {
        let start = from + p;
        from = start + 3;
        let before_ok = !blanked[..start].chars().next_back().is_some_and(is_ident);
        let after = blanked[start + 3..].chars().next();
        if !before_ok || after.is_some_and(is_ident) || after.is_none() {
            continue;
        }
        // `impl Trait + use<'a>` (precise capturing) is not an import.
        if blanked[start + 3..].trim_start().starts_with('<') {
            continue;
        }
        let Some(semi) = blanked[start..].find(';') else {
            break;
        };
        let end = start + semi + 1;
        out.push(UseDecl {
            line: blanked[..start].matches('\n').count() + 1,
            span: start..end,
            items: expand_use(&blanked[start..end]),
        });
        from = end;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Glob,
}

fn tokens(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            // A raw identifier, `r#name`.
            if word == "r" && chars.get(i) == Some(&'#') {
                let s2 = i + 1;
                i = s2;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                word = chars[s2..i].iter().collect();
            }
            out.push(Tok::Ident(word));
            continue;
        }
        match c {
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push(Tok::Path);
                i += 1;
            }
            '{' => out.push(Tok::Open),
            '}' => out.push(Tok::Close),
            ',' => out.push(Tok::Comma),
            '*' => out.push(Tok::Glob),
            _ => {}
        }
        i += 1;
    }
    out
}

/// The paths one `use` declaration imports: `use std::{env, net::{self,
/// TcpStream as T}};` gives `std::env`, `std::net` and `std::net::TcpStream`
/// (bound to `env`, `net` and `T`). Accepts the declaration with or without
/// visibility, `use` and the final `;`, over any number of lines.
pub(crate) fn expand_use(decl: &str) -> Vec<UseItem> {
    let toks = tokens(decl);
    // Skip everything up to and including the `use` keyword, if present.
    let mut pos = toks
        .iter()
        .position(|t| *t == Tok::Ident("use".into()))
        .map_or(0, |p| p + 1);
    let mut out = Vec::new();
    tree(&toks, &mut pos, &[], &mut out);
    out
}

/// Parses one use tree at `toks[*pos]` under `prefix`.
fn tree(toks: &[Tok], pos: &mut usize, prefix: &[String], out: &mut Vec<UseItem>) {
    let mut path: Vec<String> = prefix.to_vec();
    let mut first = true;
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match t {
            Tok::Path => continue,
            Tok::Glob => {
                out.push(UseItem {
                    path: join(&path, Some("*")),
                    name: "*".into(),
                });
                return;
            }
            Tok::Open => {
                loop {
                    match toks.get(*pos) {
                        None => return,
                        Some(Tok::Close) => {
                            *pos += 1;
                            break;
                        }
                        Some(Tok::Comma) => *pos += 1,
                        Some(_) => tree(toks, pos, &path, out),
                    }
                }
                return;
            }
            Tok::Ident(id) => {
                // `self` inside braces names the parent itself.
                if !(id == "self" && first && !prefix.is_empty()) {
                    path.push(id.clone());
                }
                first = false;
                if toks.get(*pos) == Some(&Tok::Path) {
                    continue;
                }
                let mut name = path.last().cloned().unwrap_or_default();
                if toks.get(*pos) == Some(&Tok::Ident("as".into())) {
                    if let Some(Tok::Ident(alias)) = toks.get(*pos + 1) {
                        name = alias.clone();
                        *pos += 2;
                    }
                }
                out.push(UseItem {
                    path: join(&path, None),
                    name,
                });
                return;
            }
            Tok::Close | Tok::Comma => {
                *pos -= 1;
                return;
            }
        }
    }
}

fn join(path: &[String], last: Option<&str>) -> String {
    let mut s = path.join("::");
    if let Some(l) = last {
        if !s.is_empty() {
            s.push_str("::");
        }
        s.push_str(l);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths `decl` imports, as `path` or `path as name` when renamed.
    fn paths(decl: &str) -> Vec<String> {
        expand_use(decl)
            .into_iter()
            .map(|u| {
                let last = u.path.rsplit("::").next().unwrap_or_default();
                if u.name == last {
                    u.path
                } else {
                    format!("{} as {}", u.path, u.name)
                }
            })
            .collect()
    }

    #[test]
    fn expands_simple_and_grouped_imports() {
        assert_eq!(paths("use std::env;"), ["std::env"]);
        assert_eq!(paths("use std::{env, fs};"), ["std::env", "std::fs"]);
        assert_eq!(paths("pub(crate) use std::fs::File;"), ["std::fs::File"]);
        assert_eq!(paths("use ::std::env::var;"), ["std::env::var"]);
        assert_eq!(paths("use std::{env,};"), ["std::env"]);
    }

    #[test]
    fn expands_self_and_renames() {
        assert_eq!(
            paths("use std::net::{self, TcpStream as T};"),
            ["std::net", "std::net::TcpStream as T"]
        );
        assert_eq!(paths("use std::net::{self as n};"), ["std::net as n"]);
        assert_eq!(paths("use std::env as e;"), ["std::env as e"]);
        assert_eq!(paths("use self::inner::Thing;"), ["self::inner::Thing"]);
        assert_eq!(paths("use r#mod::x;"), ["mod::x"]);
    }

    #[test]
    fn expands_nested_braces_and_globs() {
        assert_eq!(
            paths("use std::{net::{TcpStream, UdpSocket}, thread};"),
            ["std::net::TcpStream", "std::net::UdpSocket", "std::thread"]
        );
        assert_eq!(
            paths("use std::{io::{self, Read}, time::{Duration, Instant}, *};"),
            [
                "std::io",
                "std::io::Read",
                "std::time::Duration",
                "std::time::Instant",
                "std::*"
            ]
        );
        assert_eq!(paths("use super::*;"), ["super::*"]);
        assert_eq!(
            paths("use {std::env, core::fmt};"),
            ["std::env", "core::fmt"]
        );
    }

    #[test]
    fn expands_multi_line_declarations() {
        let decl = "use std::{\n    env,\n    net::{\n        SocketAddr,\n        TcpListener as L,\n    },\n};";
        assert_eq!(
            paths(decl),
            [
                "std::env",
                "std::net::SocketAddr",
                "std::net::TcpListener as L"
            ]
        );
    }

    #[test]
    fn blanks_comments_and_strings_but_keeps_offsets() {
        let src = "let a = \"std::env\"; // std::fs\n/* std::thread /* nested */ */ let b = 'x'; let q = '\\'';\n/// doc: std::process\nlet c = r#\"std::net \"# ; let l: &'static str = \"é\";";
        let b = blank(src);
        assert_eq!(b.len(), src.len());
        assert_eq!(b.lines().count(), src.lines().count());
        for pat in [
            "std::env",
            "std::fs",
            "std::thread",
            "std::process",
            "std::net",
            "é",
        ] {
            assert!(!b.contains(pat), "{pat} left in {b:?}");
        }
        assert!(b.contains("let a = \""));
        assert!(b.contains("let b = ' ';"));
        assert!(b.contains("let q = '  ';"));
        assert!(b.contains("&'static str"));
        assert!(b.contains("r#\""));
    }

    #[test]
    fn finds_use_declarations_with_their_lines() {
        let src = "//! use std::env;\nuse std::{\n    fs,\n    thread,\n};\nfn f() -> impl Sized + use<> {}\nfn g() { use std::process; }\n";
        let decls = use_decls(&blank(src));
        let got: Vec<(usize, Vec<String>)> = decls
            .iter()
            .map(|d| (d.line, d.items.iter().map(|u| u.path.clone()).collect()))
            .collect();
        assert_eq!(
            got,
            [
                (2, vec!["std::fs".to_string(), "std::thread".into()]),
                (7, vec!["std::process".into()]),
            ]
        );
        assert_eq!(&src[decls[1].span.clone()], "use std::process;");
    }
}
