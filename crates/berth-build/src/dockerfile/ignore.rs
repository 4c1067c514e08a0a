//! `.dockerignore` matching with Docker's semantics (moby/patternmatcher and its
//! `ignorefile` reader, written anew), and Go's `filepath.Match` for COPY sources.
//!
//! Reading ([`Ignore::parse`]): a line starting with `#` (in column 0) is a comment;
//! each other line is trimmed, blank lines dropped; a leading `!` makes an exception;
//! the pattern is cleaned like Go's `filepath.Clean` (`./a//b/../c` → `a/c`) and a
//! leading `/` dropped. A malformed pattern (e.g. an unclosed `[`) or a lone `!` is
//! skipped here, where Docker would fail the whole build.
//!
//! Matching ([`Ignore::matches`]): patterns are tried in order and the last one that
//! matches decides (an exception re-includes). A pattern matches a path when it
//! matches the path itself or any of its parent directories (`build` excludes
//! `build/x/y`). Pattern syntax: `*` any run of chars except `/`, `?` one char except
//! `/`, `[a-z]` `[^a]` classes, `\x` a literal `x`, and `**`: `**/` any number of
//! leading directories (including none), a trailing `/**` everything below, `**`
//! elsewhere any run of chars.
//!
//! Walking ([`Ignore::excluded`]): the context walker prunes a directory only when
//! no exception pattern could re-include something below it (`docs` +
//! `!docs/README.md` keeps walking `docs`, and drops everything in it but the README).
//!
//! API:
//! - `Ignore::parse(text: &str) -> Ignore`
//! - `Ignore::matches(&self, rel: &str) -> bool`: Docker's verdict for exactly this path.
//! - `Ignore::excluded(&self, rel: &str) -> bool`: matched and nothing below can come
//!   back, so the path and everything under it can be skipped.
//!   Without the entry's type this must assume it may be a directory, so prefer:
//! - `Ignore::excluded_entry(&self, rel: &str, is_dir: bool) -> bool`: a file is
//!   skipped when it matches, a directory when [`Ignore::excluded`] says so.
//! - `Ignore::may_reinclude_below(&self, dir: &str) -> bool`
//! - `glob_match(pattern: &str, name: &str) -> bool`: Go's `filepath.Match` (a `*`
//!   never crosses `/`; a malformed pattern matches nothing).

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exception: bool,
    /// The cleaned pattern text (without `!`).
    text: String,
    kind: MatchKind,
}

/// patternmatcher's fast paths; they differ from the general matcher in corner
/// cases (`**foo` is a plain suffix test), and Docker's results come from them.
#[derive(Debug, Clone)]
enum MatchKind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `dir/**`: the path starts with `dir/`.
    Prefix(String),
    /// `**` first, then no other wildcard: the path ends with the rest (or, when
    /// the rest is `/x`, equals `x`).
    Suffix(String),
    General(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one char but `/`.
    Quest,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
    /// `**/`: `(.*/)?`.
    AnyDirs,
    /// `**` elsewhere: `.*`.
    AnyRun,
}

/// Go's `path.Clean` for slash paths (`""` → `.`).
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            if p.is_empty() {
                continue; // a lone `!`: Docker refuses the file
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            if let Some(kind) = compile(&cleaned) {
                patterns.push(Pattern {
                    exception,
                    text: cleaned,
                    kind,
                });
            }
        }
        Ignore { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Docker's verdict for `rel` (slash-separated, relative to the context root).
    pub fn matches(&self, rel: &str) -> bool {
        let rel = normalize(rel);
        if rel == "." || rel.is_empty() {
            return false;
        }
        let parents: Vec<&str> = {
            let comps: Vec<&str> = rel.split('/').collect();
            (1..comps.len())
                .map(|n| {
                    let len: usize = comps[..n].iter().map(|c| c.len()).sum::<usize>() + n - 1;
                    &rel[..len]
                })
                .collect()
        };
        let mut matched = false;
        for p in &self.patterns {
            // Only a pattern that could flip the current verdict matters.
            if p.exception != matched {
                continue;
            }
            if p.matches(&rel) || parents.iter().any(|d| p.matches(d)) {
                matched = !p.exception;
            }
        }
        matched
    }

    /// True when `rel` is ignored and no exception pattern could re-include anything
    /// below it: the walker may skip it and its whole subtree.
    pub fn excluded(&self, rel: &str) -> bool {
        self.matches(rel) && !self.may_reinclude_below(rel)
    }

    /// The walker's question for an entry it knows the type of: a file is skipped
    /// when it matches; a directory only when nothing below it can come back.
    pub fn excluded_entry(&self, rel: &str, is_dir: bool) -> bool {
        if is_dir {
            self.excluded(rel)
        } else {
            self.matches(rel)
        }
    }

    /// Whether some exception pattern could match a path strictly below `dir`
    /// (conservative: compares the pattern's leading components with the dir's).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir = normalize(dir);
        let dcomps: Vec<&str> = if dir == "." {
            Vec::new()
        } else {
            dir.split('/').collect()
        };
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let pcomps: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dcomps.iter().enumerate() {
                let Some(pc) = pcomps.get(i) else {
                    return false;
                };
                if pc.contains("**") {
                    return true;
                }
                if !glob_match_lenient(pc, d) {
                    return false;
                }
            }
            pcomps.len() > dcomps.len()
        })
    }
}

fn normalize(rel: &str) -> String {
    let c = clean_path(rel);
    match c.strip_prefix('/') {
        Some("") => ".".into(),
        Some(r) => r.to_string(),
        None => c,
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix(p) => path.starts_with(p.as_str()),
            MatchKind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchKind::General(toks) => {
                let chars: Vec<char> = path.chars().collect();
                match_toks(toks, &chars)
            }
        }
    }
}

/// Compiles a cleaned pattern like patternmatcher: tokens plus the fast-path kind.
/// `None` for a malformed pattern.
fn compile(p: &str) -> Option<MatchKind> {
    // Docker validates with filepath.Match first.
    parse_go_glob(p)?;
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    #[derive(PartialEq)]
    enum Ty {
        Exact,
        Prefix,
        Suffix,
        General,
    }
    let mut ty = Ty::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if ty == Ty::Exact {
                        ty = Ty::Prefix;
                    } else {
                        toks.push(Tok::AnyRun);
                        ty = Ty::General;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    ty = Ty::General;
                }
                if first {
                    ty = Ty::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                ty = Ty::General;
            }
            '?' => {
                toks.push(Tok::Quest);
                ty = Ty::General;
            }
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    toks.push(Tok::Lit(n));
                    ty = Ty::General;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                let (tok, next) = parse_class(&chars, i)?;
                toks.push(tok);
                i = next;
                ty = Ty::General;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Some(match ty {
        Ty::Exact => MatchKind::Exact,
        Ty::Prefix => MatchKind::Prefix(p[..p.len() - 2].to_string()),
        Ty::Suffix => MatchKind::Suffix(p[2..].to_string()),
        Ty::General => MatchKind::General(toks),
    })
}

/// Parses a class body starting after `[`; returns the token and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !ranges.is_empty() {
            return Some((Tok::Class(negated, ranges), i + 1));
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1)?;
            hi = h;
            i = next;
        }
        // Go accepts `[z-a]` (it just matches nothing).
        ranges.push((lo, hi));
    }
}

/// One char inside a class (Go's getEsc): `\x` is `x`; `-` and `]` must be escaped.
fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match *chars.get(i)? {
        '-' | ']' => None,
        '\\' => Some((*chars.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some((t, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match t {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::Quest => s.first().is_some_and(|&c| c != '/') && match_toks(rest, &s[1..]),
        Tok::Class(neg, ranges) => {
            s.first()
                .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg)
                && match_toks(rest, &s[1..])
        }
        Tok::Star => {
            for i in 0..=s.len() {
                if match_toks(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Tok::AnyRun => (0..=s.len()).any(|i| match_toks(rest, &s[i..])),
        Tok::AnyDirs => {
            // Empty, or any prefix ending in `/`.
            match_toks(rest, s)
                || (0..s.len()).any(|i| s[i] == '/' && match_toks(rest, &s[i + 1..]))
        }
    }
}

/// Go's filepath.Match tokens: `*`, `?`, classes, escapes. `None` if malformed.
fn parse_go_glob(p: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Quest),
            '\\' => {
                toks.push(Tok::Lit(*chars.get(i)?));
                i += 1;
            }
            '[' => {
                let (t, next) = parse_class(&chars, i)?;
                toks.push(t);
                i = next;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Some(toks)
}

/// Go's `filepath.Match(pattern, name)`: the whole name must match; `*` and `?`
/// never match `/`; a malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match parse_go_glob(pattern) {
        Some(toks) => {
            let chars: Vec<char> = name.chars().collect();
            match_toks(&toks, &chars)
        }
        None => false,
    }
}

/// For the pruning check: treat a malformed component as "could match".
fn glob_match_lenient(pattern: &str, name: &str) -> bool {
    parse_go_glob(pattern).is_none() || glob_match(pattern, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text)
    }

    #[test]
    fn comments_blank_lines_and_cleaning() {
        let i = ig("# a comment\n\n  \n ./build/ \n/dist\nlogs//old/../*.log\n");
        assert_eq!(
            i.patterns
                .iter()
                .map(|p| p.text.as_str())
                .collect::<Vec<_>>(),
            ["build", "dist", "logs/*.log"]
        );
        assert!(i.matches("build"));
        assert!(i.matches("dist"));
        assert!(i.matches("logs/a.log"));
        assert!(!i.matches("logs/a.txt"));
        // `#` only in column 0 starts a comment
        assert!(ig(" #x").matches("#x"));
        assert!(!ig("#x").matches("#x"));
    }

    #[test]
    fn parent_directory_exclusion() {
        let i = ig("node_modules\n");
        assert!(i.matches("node_modules"));
        assert!(i.matches("node_modules/a/b.js"));
        assert!(!i.matches("src/node_modules"));
        assert!(i.excluded("node_modules"));
        assert!(!i.matches("node_modules2"));
    }

    #[test]
    fn star_stays_within_one_component() {
        let i = ig("*.md\n");
        assert!(i.matches("README.md"));
        assert!(!i.matches("docs/README.md"));
        let i = ig("*/*.md\n");
        assert!(i.matches("docs/README.md"));
        assert!(!i.matches("a/b/README.md"));
    }

    #[test]
    fn double_star_any_depth() {
        let i = ig("**/*.go\n");
        assert!(i.matches("main.go"));
        assert!(i.matches("a/b/c/x.go"));
        assert!(!i.matches("a/b/c/x.rs"));
        let i = ig("src/**/test\n");
        assert!(i.matches("src/test"));
        assert!(i.matches("src/a/b/test"));
        assert!(i.matches("src/a/test/data.txt"), "parent dir matched");
        assert!(!i.matches("src/atest"));
        let i = ig("target/**\n");
        assert!(i.matches("target/debug/x"));
        assert!(
            !i.matches("target"),
            "`dir/**` matches what is below, not dir itself"
        );
        let i = ig("**\n");
        assert!(i.matches("anything/at/all"));
    }

    #[test]
    fn suffix_fast_path_quirk() {
        // patternmatcher treats `**foo` as "ends with foo", as Docker does.
        let i = ig("**foo\n");
        assert!(i.matches("barfoo"));
        assert!(i.matches("a/b/foo"));
        let i = ig("**/foo\n");
        assert!(i.matches("foo"));
        assert!(i.matches("x/foo"));
        assert!(!i.matches("xfoo"));
    }

    #[test]
    fn exceptions_reinclude_and_last_match_wins() {
        let i = ig("*.md\n!README.md\n");
        assert!(i.matches("CHANGES.md"));
        assert!(!i.matches("README.md"));
        let i = ig("!README.md\n*.md\n");
        assert!(
            i.matches("README.md"),
            "a later pattern overrides the exception"
        );
        let i = ig("docs\n!docs/keep.md\n");
        assert!(i.matches("docs/other.md"));
        assert!(!i.matches("docs/keep.md"));
        // the walker must still enter docs
        assert!(i.matches("docs"));
        assert!(!i.excluded("docs"));
        assert!(i.excluded("docs/other.md"));
        assert!(!i.excluded("docs/keep.md"));
    }

    #[test]
    fn pruning_only_when_no_exception_can_reach_below() {
        let i = ig("vendor\n!src/keep\n");
        assert!(i.excluded("vendor"), "the exception is elsewhere");
        assert!(!i.may_reinclude_below("vendor"));
        assert!(i.may_reinclude_below("src"));
        let i = ig("build\n!**/*.keep\n");
        assert!(!i.excluded("build"), "** could reach anywhere");
        assert!(!i.excluded_entry("build", true));
        assert!(i.excluded_entry("build/x.o", false));
        assert!(!i.excluded_entry("build/x.keep", false));
        // without the type, a path that might be a directory is kept
        assert!(!i.excluded("build/x.o"));
        let i = ig("*\n!*/pkg.json\n");
        assert!(!i.excluded("app"));
        assert!(i.excluded("app/index.js"));
        assert!(!i.excluded("app/pkg.json"));
    }

    #[test]
    fn context_root_and_path_forms() {
        let i = ig("*\n");
        assert!(!i.matches("."));
        assert!(!i.matches(""));
        assert!(i.matches("./a"));
        assert!(i.matches("/a"));
        assert!(i.matches("a/"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        let i = ig("file[0-9].txt\nlog?\n\\*literal\n");
        assert!(i.matches("file3.txt"));
        assert!(!i.matches("filex.txt"));
        assert!(i.matches("log1"));
        assert!(!i.matches("log12"));
        assert!(i.matches("*literal"));
        assert!(!i.matches("xliteral"));
        let i = ig("[^a]*\n");
        assert!(i.matches("b.txt"));
        assert!(!i.matches("a.txt"));
    }

    #[test]
    fn malformed_patterns_are_skipped() {
        let i = ig("[unclosed\n!\nok\n");
        assert_eq!(i.patterns.len(), 1);
        assert!(i.matches("ok"));
        assert!(!i.matches("[unclosed"));
    }

    #[test]
    fn empty_ignore_excludes_nothing() {
        let i = ig("");
        assert!(i.is_empty());
        assert!(!i.excluded("a/b"));
    }

    #[test]
    fn clean_path_like_go() {
        assert_eq!(clean_path("a/b/../c"), "a/c");
        assert_eq!(clean_path("./a//b/"), "a/b");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("a/.."), ".");
    }

    #[test]
    fn glob_match_is_go_filepath_match() {
        assert!(glob_match("*.c", "a.c"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*", "a/b"));
        assert!(!glob_match("a*", "a/b"));
        assert!(glob_match("a*/b", "abc/b"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a/c"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[a-c]x", "dx"));
        assert!(glob_match("[^a-c]x", "dx"));
        assert!(glob_match("[\\]]", "]"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
    }

    #[test]
    fn glob_match_malformed_patterns_match_nothing() {
        assert!(!glob_match("[", "["));
        assert!(!glob_match("[a-", "a"));
        assert!(!glob_match("[]", "]"));
        assert!(!glob_match("[z-a]", "m"), "valid in Go, matches nothing");
        assert!(!glob_match("a\\", "a\\"));
    }
}
