//! The sans-IO check: nothing in `crates/` may touch a clock, a socket, a thread,
//! the environment, the file system or a source of randomness (DESIGN.md, "The
//! sans-IO contract"). Time and randomness are inputs, handed in by a driver.
//!
//! Every `.rs` file under `crates/` is read, tests included (their clock origin
//! comes from `netkit-test-clock`, as time comes from a driver). Comments (doc
//! comments too) and the contents of string literals are blanked first, then:
//!
//! - each `use` declaration, grouped, nested and multi-line ones included, is
//!   expanded into the full paths it imports (`use std::{env, net::{self,
//!   TcpStream}};` is `std::env`, `std::net`, `std::net::TcpStream`), and each
//!   path is checked against [`FORBIDDEN_PATHS`] (a glob import is forbidden
//!   when it could bring a forbidden item in: `std::net::*`);
//! - the rest of the text is searched for [`FORBIDDEN_PATHS`] written out in
//!   full (`std::env::var(..)`) and, through a `use` of their parent, by a
//!   shorter name (`use std::net; net::TcpStream::connect(..)`);
//! - all the text is searched for the names in [`FORBIDDEN_WORDS`] (clock reads,
//!   rustls's `DefaultTimeProvider`, random number sources), whole words only.
//!
//! `std::net::SocketAddr`, `IpAddr` and friends are plain values and allowed,
//! as are `std::time::{Duration, Instant}` as types.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::source::{UseDecl, blank, use_decls};
use crate::{Result, root};

/// Paths a crate in `crates/` may not import or name (or anything under them).
const FORBIDDEN_PATHS: &[&str] = &[
    "std::env",
    "std::fs",
    "std::thread",
    "std::process",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::time::SystemTime",
    "std::hash::RandomState",
    "std::collections::hash_map::RandomState",
    "rustls::time_provider::DefaultTimeProvider",
    "rand",
    "rand_core",
    "getrandom",
    "fastrand",
    "ring::rand",
];

/// Names (whole words) a crate in `crates/` may not write anywhere: reading a
/// clock, the wall clock time provider of rustls, random number sources.
const FORBIDDEN_WORDS: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "DefaultTimeProvider",
    "rand::",
    "getrandom",
    "RandomState",
    "thread_rng",
    "OsRng",
    "fastrand",
    "SystemRandom",
];

/// Fails, listing each place, if anything in `crates/` breaks the sans-IO
/// contract (see the module docs for the rules).
pub(crate) fn check() -> Result {
    eprintln!("xtask: sans-IO check of crates/");
    let mut bad = Vec::new();
    let mut files = Vec::new();
    collect_rs(&root().join("crates"), &mut files);
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let shown = f.strip_prefix(root()).unwrap_or(&f);
        // One entry per line, naming everything found on it.
        let mut lines: Vec<(usize, Vec<String>)> = Vec::new();
        for (line, what) in scan(&text) {
            match lines.last_mut() {
                Some((l, w)) if *l == line => w.push(what),
                _ => lines.push((line, vec![what])),
            }
        }
        for (line, what) in lines {
            bad.push(format!("{}:{line}: {}", shown.display(), what.join(", ")));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("sans-IO contract broken:\n  {}", bad.join("\n  ")))
    }
}

/// Whether `path` is `forbidden` or under it (whole segments: `std::envy` is not
/// under `std::env`).
fn under(path: &str, forbidden: &str) -> bool {
    path.strip_prefix(forbidden)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// The forbidden path that importing `path` brings in, if any.
fn forbidden_import(path: &str) -> Option<&'static str> {
    if let Some(base) = path.strip_suffix("::*") {
        // A glob: forbidden if its module is, or if one of the names it brings
        // in is (`std::*` brings `env`, `std::net::*` brings `TcpStream`).
        let child = |f: &str| {
            f.strip_prefix(base)
                .and_then(|r| r.strip_prefix("::"))
                .is_some_and(|r| !r.contains("::"))
        };
        return FORBIDDEN_PATHS
            .iter()
            .find(|f| under(base, f) || child(f))
            .copied();
    }
    FORBIDDEN_PATHS.iter().find(|f| under(path, f)).copied()
}

/// Byte offsets of `pat` in `text` as a whole word: not preceded by an
/// identifier character, nor followed by one when `pat` ends in one. With
/// `whole_path`, not preceded by `name::` either (`ring::rand` is not the `rand`
/// crate; a leading `::` is fine).
fn find_words<'a>(
    text: &'a str,
    pat: &'a str,
    whole_path: bool,
) -> impl Iterator<Item = usize> + 'a {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let ends_ident = pat.chars().next_back().is_some_and(ident);
    text.match_indices(pat).filter_map(move |(i, _)| {
        let head = &text[..i];
        let before = head.chars().next_back();
        let after = text[i + pat.len()..].chars().next();
        let inner = whole_path
            && head
                .strip_suffix("::")
                .is_some_and(|h| h.chars().next_back().is_some_and(ident));
        let joined = before.is_some_and(ident) || (ends_ident && after.is_some_and(ident));
        (!joined && !inner).then_some(i)
    })
}

/// The sans-IO findings in one file's text: (1-based line, what was found).
fn scan(text: &str) -> Vec<(usize, String)> {
    let blanked = blank(text);
    let decls = use_decls(&blanked);
    let line_of = |offset: usize| blanked[..offset].matches('\n').count() + 1;
    // Sorted and deduplicated by (line, finding).
    let mut found = BTreeSet::new();
    for d in &decls {
        for item in &d.items {
            if let Some(f) = forbidden_import(&item.path) {
                found.insert((d.line, format!("use {} ({f})", item.path)));
            }
        }
    }
    // The code outside `use` declarations, with the same offsets.
    let mut code = blanked.clone();
    for UseDecl { span, .. } in &decls {
        let hidden: String = blanked[span.clone()]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(span.clone(), &hidden);
    }
    // Forbidden paths written in full, or through an imported parent module
    // (`use std::net;` then `net::TcpStream`).
    let mut spelled: Vec<(String, &str)> = FORBIDDEN_PATHS
        .iter()
        .map(|f| (f.to_string(), *f))
        .collect();
    for item in decls.iter().flat_map(|d| &d.items) {
        if item.name == "*" || item.name == "_" {
            continue;
        }
        for f in FORBIDDEN_PATHS {
            if let Some(rest) = f
                .strip_prefix(item.path.as_str())
                .and_then(|r| r.strip_prefix("::"))
            {
                spelled.push((format!("{}::{rest}", item.name), f));
            }
        }
    }
    for (pat, f) in &spelled {
        for at in find_words(&code, pat, true) {
            found.insert((line_of(at), f.to_string()));
        }
    }
    for w in FORBIDDEN_WORDS {
        for at in find_words(&blanked, w, false) {
            found.insert((line_of(at), w.to_string()));
        }
    }
    found.into_iter().collect()
}

/// Every `.rs` file under `dir`, skipping `target/` directories.
fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                collect_rs(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, want: &[(usize, &str)]) {
        let got = scan(src);
        let got: Vec<(usize, &str)> = got.iter().map(|(l, w)| (*l, w.as_str())).collect();
        assert_eq!(got, want, "in:\n{src}");
    }

    #[test]
    fn allows_plain_values_and_comments() {
        check(
            "use std::net::{IpAddr, SocketAddr};\nuse std::time::{Duration, Instant};\n\
             // std::env::var and Instant::now() in a comment\n\
             /// Doc: `std::thread::spawn`, `rand::random()`.\n\
             fn f(now: Instant) -> &'static str { \"std::fs is only text\" }\n\
             use std::envy::Thing;\nlet operand = brand::x(); let r = my_rand::y();\n\
             let thread_local_ok = std::thread_local_thing;\n",
            &[],
        );
    }

    #[test]
    fn flags_grouped_nested_and_multi_line_imports() {
        check(
            "use std::{env, fs};\nuse std::{net::{TcpStream, UdpSocket}, thread};\n\
             use std::net::{self, TcpListener as L};\nuse std::{\n    process,\n    time::SystemTime,\n};\n",
            &[
                (1, "use std::env (std::env)"),
                (1, "use std::fs (std::fs)"),
                (2, "use std::net::TcpStream (std::net::TcpStream)"),
                (2, "use std::net::UdpSocket (std::net::UdpSocket)"),
                (2, "use std::thread (std::thread)"),
                (3, "use std::net::TcpListener (std::net::TcpListener)"),
                (4, "use std::process (std::process)"),
                (4, "use std::time::SystemTime (std::time::SystemTime)"),
            ],
        );
    }

    #[test]
    fn flags_paths_in_code_and_through_a_parent_import() {
        check(
            "use std::net;\nfn f() {\n    let _ = std::env::var(\"X\");\n    \
             net::TcpStream::connect(a);\n    let s = ::std::net::UdpSocket::bind(a);\n}\n\
             use std::net::*;\nuse rustls::*;\nuse std::*;\nuse std::fs::*;\n",
            &[
                (3, "std::env"),
                (4, "std::net::TcpStream"),
                (5, "std::net::UdpSocket"),
                (7, "use std::net::* (std::net::TcpStream)"),
                (9, "use std::* (std::env)"),
                (10, "use std::fs::* (std::fs)"),
            ],
        );
    }

    #[test]
    fn flags_clocks_and_randomness() {
        check(
            "let t = Instant::now();\nlet w = std::time::SystemTime::now();\n\
             Arc::new(rustls::time_provider::DefaultTimeProvider)\n\
             use rand::Rng;\nlet x = rand::random::<u8>();\nlet mut r = thread_rng();\n\
             getrandom::fill(&mut b);\nlet h = RandomState::new();\nlet o = OsRng;\n\
             let n = fastrand::u8(..);\nlet s = ring::rand::SystemRandom::new();\n",
            &[
                (1, "Instant::now"),
                (2, "SystemTime::now"),
                (2, "std::time::SystemTime"),
                (3, "DefaultTimeProvider"),
                (3, "rustls::time_provider::DefaultTimeProvider"),
                (4, "rand::"),
                (4, "use rand::Rng (rand)"),
                (5, "rand"),
                (5, "rand::"),
                (6, "thread_rng"),
                (7, "getrandom"),
                (8, "RandomState"),
                (9, "OsRng"),
                (10, "fastrand"),
                (11, "SystemRandom"),
                (11, "rand::"),
                (11, "ring::rand"),
            ],
        );
    }
}
