//! Docker's word lexer for variable substitution (the rules of buildkit's
//! `frontend/dockerfile/shell/lex.go`, written anew).
//!
//! One pass over a word handles, left to right:
//! - `'...'`: literal, no escapes, no `$`;
//! - `"..."`: `$` expands; the escape char escapes only `"`, `$` and itself
//!   (otherwise it stays as written);
//! - the escape char (`\` or `` ` ``) outside quotes: the next char is literal; a
//!   trailing escape char is dropped;
//! - `$NAME`, `${NAME}`, `${NAME:-w}`, `${NAME-w}`, `${NAME:+w}`, `${NAME+w}`,
//!   `${NAME:?w}`, `${NAME?w}` (error), `${NAME#p}` `${NAME##p}` `${NAME%p}`
//!   `${NAME%%p}` (prefix/suffix removal with `*`/`?` wildcards) and
//!   `${NAME/p/r}` `${NAME//p/r}`; the word `w` is itself lexed (nested `$`, quotes).
//!   Unset names expand to the empty string; `$` not followed by a name stays `$`.
//!
//! Every name looked up is recorded in `used`, set or not, because the builder
//! explains cache misses by the variables a step depended on.
//!
//! Two results: [`Lexer::word`] keeps the whole input as one string (ProcessWord), and
//! [`Lexer::words`] also splits on unquoted whitespace after expansion (ProcessWords:
//! `$V` with spaces splits, `"$V"` does not).

use std::collections::BTreeSet;

/// The variable source and the record of looked-up names.
pub(crate) struct Env<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub used: &'a mut BTreeSet<String>,
}

impl Env<'_> {
    fn get(&mut self, name: &str) -> Option<String> {
        self.used.insert(name.to_string());
        (self.lookup)(name)
    }
}

/// Word-splitting accumulator: `raw` text never splits, expanded text splits on
/// whitespace.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

pub(crate) struct Lexer<'e, 'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'e mut Env<'a>,
}

impl<'e, 'a> Lexer<'e, 'a> {
    pub fn new(word: &str, escape: char, env: &'e mut Env<'a>) -> Self {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            env,
        }
    }

    /// The whole input as one expanded string (Docker's ProcessWord).
    pub fn word(mut self) -> Result<String, String> {
        self.process_stop_on(None, false).map(|(s, _)| s)
    }

    /// The expanded input split into words (Docker's ProcessWords).
    pub fn words(mut self) -> Result<Vec<String>, String> {
        self.process_stop_on(None, false).map(|(_, w)| w)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Lexes until `stop` (consumed) or the end of input. `raw_escapes` keeps the
    /// escape char in the output (used for `#`/`%`/`/` patterns, where the pattern
    /// matcher interprets escapes itself).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    words.add_string(&v);
                }
                '\'' => {
                    let v = self.process_single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' => {
                    let v = self.process_double_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escaped char is literal; a lone trailing escape vanishes.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            // An escape at the very end is dropped; the missing
                            // closing quote is reported on the next turn.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                                continue;
                            }
                            // Other escapes stay as written, like sh.
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.env.get(&name).unwrap_or_default());
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut op) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        match op {
            '}' => Ok(self.env.get(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = op == ':';
                let mut modifier = op.to_string();
                if null_is_unset {
                    op = self.next().ok_or("syntax error: missing '}'")?;
                    modifier.push(op);
                }
                let pattern_op = op == '#' || op == '%';
                if null_is_unset && pattern_op {
                    return Err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let (word, _) = self.process_stop_on(Some('}'), pattern_op).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                let value = self.env.get(&name);
                let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match op {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if value.is_none() || unset {
                            let default_msg = if value.is_none() {
                                "is not allowed to be unset"
                            } else {
                                "is not allowed to be empty"
                            };
                            let msg = if word.is_empty() { default_msg } else { &word };
                            return Err(format!("{name}: {msg}"));
                        }
                        Ok(value.unwrap_or_default())
                    }
                    '#' | '%' => {
                        let (greedy, pat) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = Pattern::parse(&pat)?;
                        let value = value.unwrap_or_default();
                        Ok(if op == '#' {
                            pat.trim_prefix(&value, greedy)
                        } else {
                            pat.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.pos += 1;
                }
                let (pat, _) = self.process_stop_on(Some('/'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let (replacement, _) = self.process_stop_on(Some('}'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                let value = self.env.get(&name).unwrap_or_default();
                let pat = Pattern::parse(&pat)?;
                Ok(pat.replace(&value, &replacement, replace_all))
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }
}

/// `$@ $* $# $? $- $$ $! $0`: one-char names, as POSIX sh has them.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// A `${V#pattern}`-style wildcard pattern: `*` any run, `?` one char, `\x` literal.
enum Tok {
    Lit(char),
    Any,
    Star,
}

struct Pattern(Vec<Tok>);

impl Pattern {
    fn parse(p: &str) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match it.next() {
                    Some(n @ ('*' | '?' | '\\' | '}' | '/')) => toks.push(Tok::Lit(n)),
                    Some(n) => {
                        return Err(format!(
                            "invalid pattern ({p}) in substitution: invalid escape '\\{n}'"
                        ))
                    }
                    None => toks.push(Tok::Lit('\\')),
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        fn go(toks: &[Tok], s: &[char]) -> bool {
            match toks.split_first() {
                None => s.is_empty(),
                Some((Tok::Star, rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
                Some((Tok::Any, rest)) => !s.is_empty() && go(rest, &s[1..]),
                Some((Tok::Lit(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.0, s)
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends: Vec<usize> = (0..=v.len()).collect();
        if greedy {
            ends.reverse();
        }
        for end in ends {
            if self.matches(&v[..end]) {
                return v[end..].iter().collect();
            }
        }
        value.to_string()
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts: Vec<usize> = (0..=v.len()).collect();
        if !greedy {
            starts.reverse();
        }
        for start in starts {
            if self.matches(&v[start..]) {
                return v[..start].iter().collect();
            }
        }
        value.to_string()
    }

    /// Replaces the leftmost-longest match (all non-overlapping ones with `all`).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            let found = if replaced && !all {
                None
            } else {
                (i..=v.len()).rev().find(|&end| self.matches(&v[i..end]))
            };
            match found {
                Some(end) => {
                    out.push_str(replacement);
                    replaced = true;
                    if end == i {
                        // Empty match: emit one char and move on so the scan ends.
                        if let Some(c) = v.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = end;
                    }
                }
                None => {
                    if let Some(c) = v.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        out
    }
}
