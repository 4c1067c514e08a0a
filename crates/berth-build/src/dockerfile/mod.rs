//! dockerfile: Dockerfile/Containerfile text → [`Dockerfile`], and Docker's
//! variable substitution over the parsed instructions.
//!
//! Parsing is a pure function of the text and follows buildkit's
//! `frontend/dockerfile/parser` + `instructions/parse.go` rules:
//! - parser directives (`# syntax=`, `# escape=` with `\` or `` ` ``) count only
//!   before any instruction, comment or blank line, each at most once;
//! - a line ending in the escape char (optionally followed by blanks) continues on the
//!   next one; the pieces are joined as written (no space is inserted, none removed,
//!   like Docker), comment lines and blank lines inside a continuation are skipped;
//!   a continuation still open at end of file just ends the instruction;
//! - keywords are case-insensitive; leading `--name[=value]` words are flags, checked
//!   per instruction (`unknown flag: --foo`);
//! - RUN/CMD/ENTRYPOINT/HEALTHCHECK CMD: a valid JSON array of strings is the exec
//!   form, anything else the shell form (a JSON array holding non-strings is an
//!   error); SHELL must be JSON; COPY/ADD/VOLUME take a JSON array or
//!   whitespace-separated words (berth refuses text that starts like a JSON array
//!   with quotes but does not parse, where Docker would copy a file named `["a",`);
//! - ARGs before the first FROM are the global args; any other instruction there is
//!   an error, as is a file without FROM.
//!
//! Substitution is NOT done by [`parse`]: values depend on the build state (ENV and
//! ARG so far), so the builder calls [`Instruction::expand`] with a lookup right
//! before it runs each step, as Docker's dispatcher does. The lexer lives in
//! `shell.rs` (buildkit's `shell/lex.go` rules).
//!
//! Public API:
//! - `parse(text: &str) -> Result<Dockerfile, ParseError>`
//! - `parse_instruction(text: &str, line: usize, escape: char) -> Result<Instruction, ParseError>`:
//!   one stage instruction (e.g. an ONBUILD trigger from a base image's config).
//! - `Instruction::expand(&self, lookup: &dyn Fn(&str) -> Option<String>, used: &mut BTreeSet<String>) -> Result<Instruction, ParseError>`
//!   returns a copy with Docker's substitution applied to ADD COPY (sources, dest,
//!   `--from`, `--chown`, `--chmod`), ENV and LABEL (keys and values, quotes removed),
//!   ARG defaults (quotes removed), EXPOSE (each word, split again after expansion
//!   like Docker's ProcessWords), VOLUME (each path), STOPSIGNAL, USER, WORKDIR.
//!   RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/ONBUILD/MAINTAINER are untouched (the shell
//!   expands at run time). `used` collects every variable name looked up.
//! - `expand_word(word, lookup, used) -> Result<String, ParseError>`: one word with
//!   the `\` escape; `expand_word_with(word, escape, lookup, used)` for `` ` ``.
//! - `From::expand` likewise for the FROM image and `--platform` (the builder passes
//!   a lookup over the global ARGs only); an image that expands to nothing is an error.
//! - `ArgDecl::expand(&self, escape, lookup, used)` for the global ARG defaults.
//! - `parse_go_duration(s) -> Result<i64, String>` (nanoseconds, Go syntax).

use std::collections::BTreeSet;

pub mod ignore;
pub mod lint;
mod shell;

/// A parse or substitution error: `line` is 1-based (0 when not tied to a line).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("dockerfile line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// `# escape=` (default `\\`).
    pub escape: char,
    /// `# syntax=` if given (recorded, not acted on).
    pub syntax: Option<String>,
    /// ARGs before the first FROM (the only variables FROM lines can use).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub from: From,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct From {
    pub line: usize,
    /// Unexpanded image reference, `scratch`, or an earlier stage's name.
    pub image: String,
    /// `AS name` (lowercased as Docker does).
    pub name: Option<String>,
    /// `--platform=` (unexpanded).
    pub platform: Option<String>,
    /// The file's escape char, used by [`From::expand`].
    pub escape: char,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// The instruction as written, continuation lines joined the way Docker joins
    /// them (escape char and line break removed, nothing else; comment lines inside
    /// the continuation dropped), trimmed: e.g. `RUN apt-get update &&     apt-get install -y x`.
    /// Used for history `created_by` and in cache keys.
    pub original: String,
    pub kind: Kind,
    /// The file's escape char, used by [`Instruction::expand`].
    pub escape: char,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShellOrExec {
    /// `CMD echo hi` → run as SHELL + [text].
    Shell(String),
    /// `CMD ["echo","hi"]` (valid JSON array of strings). A bare `CMD` or
    /// `ENTRYPOINT` with no arguments is `Exec([])`.
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopySpec {
    /// Sources (≥1) and the destination, unexpanded until `expand`.
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=` stage name/index or image (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=` octal.
    pub chmod: Option<String>,
    /// `--link` (accepted, recorded).
    pub link: bool,
    /// Other flags Docker accepts (COPY `--exclude --parents`, ADD `--exclude
    /// --checksum --keep-git-dir --unpack`), as (name, value) with booleans as
    /// `"true"`/`"false"`; the builder refuses what it does not support.
    pub extra_flags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArgDecl {
    pub name: String,
    /// Default value (after `expand`: substituted, quotes removed).
    pub default: Option<String>,
}

impl ArgDecl {
    /// The declaration with its default substituted and unquoted (for the global
    /// ARGs, which are not instructions of any stage).
    pub fn expand(
        &self,
        escape: char,
        lookup: &dyn Fn(&str) -> Option<String>,
        used: &mut BTreeSet<String>,
    ) -> Result<ArgDecl, ParseError> {
        Ok(ArgDecl {
            name: self.name.clone(),
            default: match &self.default {
                Some(d) => Some(expand_word_with(d, escape, lookup, used)?),
                None => None,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Healthcheck {
    /// `HEALTHCHECK NONE` → `test = ["NONE"]`; `CMD x` → `["CMD-SHELL", "x"]`;
    /// exec form → `["CMD", a, b]`.
    pub test: Vec<String>,
    /// Durations in nanoseconds as Docker stores them; 0 = unset.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Run {
        command: ShellOrExec,
        /// `--mount=`, `--network=`, `--security=` flags as written, name without
        /// the dashes (`("mount", "type=cache,target=/root/.cache")`); the builder
        /// refuses the ones it does not support with a clear error.
        flags: Vec<(String, String)>,
    },
    Copy(CopySpec),
    Add(CopySpec),
    /// `ENV a=b c=d` or legacy `ENV a b c` (→ one pair `a`=`b c`).
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Cmd(ShellOrExec),
    Entrypoint(ShellOrExec),
    /// Port words as written (`80`, `80/tcp`, `53/udp`, `8000-8010`).
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    /// Paths (JSON array or space-separated).
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction text, stored in the config verbatim (`RUN make`).
    Onbuild(String),
    /// Exec form only.
    Shell(Vec<String>),
    /// Deprecated, stored as the image author.
    Maintainer(String),
}

// ---------------------------------------------------------------------------
// Physical lines → logical lines
// ---------------------------------------------------------------------------

/// One instruction's text with continuations joined, and its first line.
struct Logical {
    line: usize,
    text: String,
}

/// Parser-directive state: directives are only recognised until the first line
/// that is not one (buildkit's DirectiveParser).
struct Directives {
    done: bool,
    escape: char,
    syntax: Option<String>,
    seen: Vec<String>,
}

impl Directives {
    /// Looks at a left-trimmed line; returns true when it was a directive.
    fn check(&mut self, line: &str, line_no: usize) -> Result<bool, ParseError> {
        if self.done {
            return Ok(false);
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let body = body.trim_start();
        let Some((key, value)) = split_directive(body) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(err(
                line_no,
                format!("only one {key} parser directive can be used"),
            ));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            line_no,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => self.syntax = Some(value.to_string()),
            _ => {} // `check=` configures buildkit's linter; nothing to do here
        }
        Ok(true)
    }
}

/// `name = value` with name `[A-Za-z][A-Za-z0-9]*` and a non-empty value.
fn split_directive(body: &str) -> Option<(&str, &str)> {
    let name_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, rest) = body.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then_some((name, value))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing line-continuation (escape char then blanks) if there is one.
/// An escape char preceded by another escape char is an escaped escape, not a
/// continuation (Docker's regex has the same blind spot for three in a row).
fn strip_continuation(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    let before = t.strip_suffix(escape)?;
    if before.ends_with(escape) {
        return None;
    }
    Some(before)
}

fn logical_lines(text: &str) -> Result<(Directives, Vec<Logical>), ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut dir = Directives {
        done: false,
        escape: '\\',
        syntax: None,
        seen: Vec::new(),
    };
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // `split` yields one empty piece after a final newline: not a line.
    let count = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < count {
        let line_no = i + 1;
        let first = lines[i].trim_start();
        i += 1;
        dir.check(first, line_no)?;
        if is_comment(first) {
            continue;
        }
        let (mut buf, mut open) = match strip_continuation(first, dir.escape) {
            Some(s) => (s.to_string(), true),
            None => (first.to_string(), false),
        };
        if !open && buf.is_empty() {
            continue;
        }
        while open && i < count {
            let next = lines[i];
            i += 1;
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            match strip_continuation(next, dir.escape) {
                Some(s) => buf.push_str(s),
                None => {
                    buf.push_str(next);
                    open = false;
                }
            }
        }
        if open && buf.trim().is_empty() {
            return Err(err(
                line_no,
                "unexpected end of file: line continuation with no instruction",
            ));
        }
        out.push(Logical {
            line: line_no,
            text: buf,
        });
    }
    Ok((dir, out))
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Logical line → instruction
// ---------------------------------------------------------------------------

/// Splits off leading `--flag` words (quotes and escapes processed within them);
/// `--` alone ends the flags. Returns (flags, rest).
fn extract_flags(line: &str, escape: char) -> (Vec<String>, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos + 1 >= chars.len() || chars[pos] != '-' || chars[pos + 1] != '-' {
            return (flags, chars[pos.min(chars.len())..].iter().collect());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while pos < chars.len() {
            let c = chars[pos];
            match quote {
                None if c.is_whitespace() => break,
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    blank_ok = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == escape => {
                    if pos + 1 < chars.len() {
                        pos += 1;
                        word.push(chars[pos]);
                    }
                }
                _ => word.push(c),
            }
            pos += 1;
        }
        if word == "--" {
            return (flags, chars[pos..].iter().collect());
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    Str,
    /// May repeat.
    Strs,
}

/// Checks flags against what an instruction accepts; returns (name, value) in
/// order, booleans as "true"/"false". Docker's BFlags messages.
fn check_flags(
    raw: &[String],
    allowed: &[(&str, FlagType)],
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in raw {
        let Some(body) = a.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {a}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(_, ty)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag: --{name}"));
        };
        if ty != FlagType::Strs && out.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate flag specified: --{name}"));
        }
        let value = match ty {
            FlagType::Bool => match value.map(str::to_ascii_lowercase).as_deref() {
                None => "true".to_string(),
                Some("") => return Err(format!("missing a value on flag: --{name}")),
                Some("true") => "true".to_string(),
                Some("false") => "false".to_string(),
                Some(_) => {
                    return Err(format!(
                        "expecting boolean value for flag --{name}, not: {}",
                        value.unwrap_or_default()
                    ))
                }
            },
            FlagType::Str | FlagType::Strs => match value {
                Some(v) => v.to_string(),
                None => return Err(format!("missing a value on flag: --{name}")),
            },
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

fn flag_value(flags: &[(String, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Words split on whitespace, quotes and escapes kept as written so substitution
/// can process them later (buildkit's parseWords, for ENV/LABEL/ARG).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if c.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if i == chars.len() {
                        continue; // a trailing escape is dropped
                    }
                    word.push(c);
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if i == chars.len() {
                        quote = None;
                        continue;
                    }
                    word.push(c);
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(c);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

fn split_whitespace_words(rest: &str) -> Vec<String> {
    rest.split_whitespace().map(str::to_string).collect()
}

enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not JSON (or not an array): use the other form.
    No,
}

/// Docker's parseJSON: text starting with `[` that is a valid JSON array. A valid
/// array holding something other than strings is an error.
fn parse_json_array(rest: &str) -> Result<Json, String> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(Json::No);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(
                    "when using JSON array syntax, arrays must be comprised of strings only"
                        .to_string(),
                ),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        Err(_) => Ok(Json::No),
    }
}

fn shell_or_exec(rest: &str) -> Result<ShellOrExec, String> {
    if rest.is_empty() {
        return Ok(ShellOrExec::Exec(Vec::new()));
    }
    Ok(match parse_json_array(rest)? {
        Json::Array(v) => ShellOrExec::Exec(v),
        Json::No => ShellOrExec::Shell(rest.to_string()),
    })
}

/// COPY/ADD/VOLUME: a JSON array or whitespace-separated words.
fn json_or_words(rest: &str, what: &str) -> Result<Vec<String>, String> {
    match parse_json_array(rest)? {
        Json::Array(v) => Ok(v),
        Json::No => {
            let t = rest.trim_start();
            // Docker would take `["a", "b"` as the words `["a",` and `"b"`; that is
            // always a typo, so say so instead of copying a file named `["a",`.
            if t.starts_with('[') && t.contains('"') {
                return Err(format!("{what}: invalid or unterminated JSON array: {t}"));
            }
            Ok(split_whitespace_words(rest))
        }
    }
}

/// `name=value` pairs for ENV/LABEL, or the legacy `name value...` form.
fn parse_name_val(rest: &str, what: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{what} requires at least one argument"));
    };
    if !first.contains('=') {
        let mut parts = rest.trim().splitn(2, |c: char| c.is_whitespace());
        let name = parts.next().unwrap_or_default();
        let value = parts.next().map(str::trim_start).unwrap_or_default();
        if value.is_empty() {
            return Err(format!("{what} must have two arguments"));
        }
        return Ok(vec![(name.to_string(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        if k.is_empty() {
            return Err(format!("{what} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lowercasing.
fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// A heredoc word (`<<EOF`, `<<-EOF`, `2<<"EOF"`) as buildkit recognises them.
fn has_heredoc(text: &str) -> bool {
    text.split_whitespace().any(|w| {
        let w = w.trim_start_matches(|c: char| c.is_ascii_digit());
        match w.strip_prefix("<<") {
            Some(rest) => {
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                !rest.is_empty() && !rest.contains('<')
            }
            None => false,
        }
    })
}

enum Parsed {
    From(From),
    Instr(Instruction),
}

/// Keyword and the text after it (split on the first run of blanks).
fn split_command(text: &str) -> (&str, &str) {
    let t = text.trim();
    match t.find(|c: char| c.is_whitespace()) {
        Some(i) => (&t[..i], t[i..].trim_start()),
        None => (t, ""),
    }
}

fn parse_logical(text: &str, line: usize, escape: char) -> Result<Parsed, ParseError> {
    parse_logical_inner(text, line, escape).map_err(|m| err(line, m))
}

fn parse_logical_inner(text: &str, line: usize, escape: char) -> Result<Parsed, String> {
    let (keyword, args) = split_command(text);
    let (raw_flags, rest) = extract_flags(args, escape);
    let rest = rest.trim().to_string();
    let kw = keyword.to_ascii_lowercase();
    let original = text.trim().to_string();
    let no_flags = |name: &str| -> Result<(), String> {
        check_flags(&raw_flags, &[])
            .map(|_| ())
            .map_err(|e| format!("{name}: {e}"))
    };
    let exactly_one = |name: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{name} requires exactly one argument"))
        } else {
            Ok(rest.clone())
        }
    };
    let kind = match kw.as_str() {
        "from" => {
            let flags = check_flags(&raw_flags, &[("platform", FlagType::Str)])?;
            let words = split_whitespace_words(&rest);
            let name = match words.len() {
                1 => None,
                3 if words[1].eq_ignore_ascii_case("as") => {
                    let n = words[2].to_ascii_lowercase();
                    if !is_valid_stage_name(&n) {
                        return Err(format!(
                            "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                            words[2]
                        ));
                    }
                    Some(n)
                }
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            return Ok(Parsed::From(From {
                line,
                image: words[0].clone(),
                name,
                platform: flag_value(&flags, "platform"),
                escape,
            }));
        }
        "run" => {
            let flags = check_flags(
                &raw_flags,
                &[
                    ("mount", FlagType::Strs),
                    ("network", FlagType::Str),
                    ("security", FlagType::Str),
                ],
            )?;
            if rest.is_empty() {
                return Err("RUN requires at least one argument".into());
            }
            let command = shell_or_exec(&rest)?;
            if let ShellOrExec::Shell(s) = &command {
                if has_heredoc(s) {
                    return Err("RUN: heredocs (<<EOF) are not supported".into());
                }
            }
            Kind::Run { command, flags }
        }
        "cmd" => {
            no_flags("CMD")?;
            Kind::Cmd(shell_or_exec(&rest)?)
        }
        "entrypoint" => {
            no_flags("ENTRYPOINT")?;
            Kind::Entrypoint(shell_or_exec(&rest)?)
        }
        "shell" => {
            no_flags("SHELL")?;
            match parse_json_array(&rest)? {
                Json::Array(v) if !v.is_empty() => Kind::Shell(v),
                Json::Array(_) => return Err("SHELL requires at least one argument".into()),
                Json::No if rest.is_empty() => {
                    return Err("SHELL requires at least one argument".into())
                }
                Json::No => {
                    return Err(format!(
                        "SHELL requires the arguments to be in JSON form (a JSON array of strings, e.g. [\"/bin/sh\", \"-c\"]): {original}"
                    ))
                }
            }
        }
        "copy" | "add" => {
            let is_copy = kw == "copy";
            let name = if is_copy { "COPY" } else { "ADD" };
            let allowed: &[(&str, FlagType)] = if is_copy {
                &[
                    ("from", FlagType::Str),
                    ("chown", FlagType::Str),
                    ("chmod", FlagType::Str),
                    ("link", FlagType::Bool),
                    ("exclude", FlagType::Strs),
                    ("parents", FlagType::Bool),
                ]
            } else {
                &[
                    ("chown", FlagType::Str),
                    ("chmod", FlagType::Str),
                    ("link", FlagType::Bool),
                    ("exclude", FlagType::Strs),
                    ("checksum", FlagType::Str),
                    ("keep-git-dir", FlagType::Bool),
                    ("unpack", FlagType::Bool),
                ]
            };
            let flags = check_flags(&raw_flags, allowed).map_err(|e| format!("{name}: {e}"))?;
            let mut words = json_or_words(&rest, name)?;
            if words.len() < 2 {
                return Err(format!(
                    "{name} requires at least two arguments (one or more sources and a destination), but {} given",
                    if words.is_empty() { "none was".to_string() } else { "only one was".to_string() }
                ));
            }
            if words.iter().any(|w| has_heredoc(w)) {
                return Err(format!("{name}: heredocs (<<EOF) are not supported"));
            }
            let dest = words.pop().unwrap_or_default();
            let spec = CopySpec {
                sources: words,
                dest,
                from: flag_value(&flags, "from"),
                chown: flag_value(&flags, "chown"),
                chmod: flag_value(&flags, "chmod"),
                link: flag_value(&flags, "link").as_deref() == Some("true"),
                extra_flags: flags
                    .iter()
                    .filter(|(n, _)| !matches!(n.as_str(), "from" | "chown" | "chmod" | "link"))
                    .cloned()
                    .collect(),
            };
            if is_copy {
                Kind::Copy(spec)
            } else {
                Kind::Add(spec)
            }
        }
        "env" => {
            no_flags("ENV")?;
            Kind::Env(parse_name_val(&rest, "ENV", escape)?)
        }
        "label" => {
            no_flags("LABEL")?;
            Kind::Label(parse_name_val(&rest, "LABEL", escape)?)
        }
        "arg" => {
            no_flags("ARG")?;
            let words = parse_words(&rest, escape);
            if words.is_empty() {
                return Err("ARG requires at least one argument".into());
            }
            let mut decls = Vec::new();
            for w in words {
                let decl = match w.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: w,
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Kind::Arg(decls)
        }
        "workdir" => {
            no_flags("WORKDIR")?;
            Kind::Workdir(exactly_one("WORKDIR")?)
        }
        "user" => {
            no_flags("USER")?;
            Kind::User(exactly_one("USER")?)
        }
        "stopsignal" => {
            no_flags("STOPSIGNAL")?;
            Kind::StopSignal(exactly_one("STOPSIGNAL")?)
        }
        "maintainer" => {
            no_flags("MAINTAINER")?;
            Kind::Maintainer(exactly_one("MAINTAINER")?)
        }
        "expose" => {
            no_flags("EXPOSE")?;
            let words = split_whitespace_words(&rest);
            if words.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            Kind::Expose(words)
        }
        "volume" => {
            no_flags("VOLUME")?;
            let words = json_or_words(&rest, "VOLUME")?;
            if words.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            let mut vols = Vec::new();
            for v in words {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Kind::Volume(vols)
        }
        "healthcheck" => Kind::Healthcheck(parse_healthcheck(&raw_flags, &rest)?),
        "onbuild" => {
            no_flags("ONBUILD")?;
            if rest.is_empty() {
                return Err("ONBUILD requires at least one argument".into());
            }
            let (trigger_kw, _) = split_command(&rest);
            match trigger_kw.to_ascii_uppercase().as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                t @ ("MAINTAINER" | "FROM") => {
                    return Err(format!("{t} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            // Docker checks the trigger only when a child image runs it; checking
            // now reports the mistake where it was made.
            parse_logical_inner(&rest, line, escape)
                .map_err(|e| format!("ONBUILD trigger: {e}"))?;
            let expr = strip_keyword(&original);
            Kind::Onbuild(expr)
        }
        _ => {
            return Err(format!(
                "unknown instruction: {}",
                keyword.to_ascii_uppercase()
            ))
        }
    };
    Ok(Parsed::Instr(Instruction {
        line,
        original,
        kind,
        escape,
    }))
}

/// `ONBUILD   RUN x` → `RUN x`.
fn strip_keyword(original: &str) -> String {
    let (_, rest) = split_command(original);
    rest.to_string()
}

fn parse_healthcheck(raw_flags: &[String], rest: &str) -> Result<Healthcheck, String> {
    let (typ, args) = split_command(rest);
    if typ.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".into());
    }
    let typ = typ.to_ascii_uppercase();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        });
    }
    let flags = check_flags(
        raw_flags,
        &[
            ("interval", FlagType::Str),
            ("timeout", FlagType::Str),
            ("start-period", FlagType::Str),
            ("start-interval", FlagType::Str),
            ("retries", FlagType::Str),
        ],
    )
    .map_err(|e| format!("HEALTHCHECK: {e}"))?;
    if typ != "CMD" {
        return Err(format!("Unknown type \"{typ}\" in HEALTHCHECK (try CMD)"));
    }
    let test = match shell_or_exec(args)? {
        ShellOrExec::Exec(v) if !v.is_empty() => {
            std::iter::once("CMD".to_string()).chain(v).collect()
        }
        ShellOrExec::Shell(s) => vec!["CMD-SHELL".to_string(), s],
        ShellOrExec::Exec(_) => return Err("Missing command after HEALTHCHECK CMD".into()),
    };
    let duration = |name: &str| -> Result<i64, String> {
        let Some(v) = flag_value(&flags, name) else {
            return Ok(0);
        };
        if v.is_empty() {
            return Ok(0);
        }
        let d = parse_go_duration(&v).map_err(|e| format!("HEALTHCHECK --{name}: {e}"))?;
        if d != 0 && d < 1_000_000 {
            return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
        }
        Ok(d)
    };
    let retries = match flag_value(&flags, "retries").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => {
            let n: i32 = v
                .parse()
                .map_err(|_| format!("HEALTHCHECK --retries: invalid number {v:?}"))?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            i64::from(n)
        }
    };
    Ok(Healthcheck {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or `0`, units ns us
/// (µs μs) ms s m h; result in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let bad = || format!("invalid duration {orig:?}");
    let (neg, mut s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int_part, r) = s.split_at(int_len);
        let (frac_part, r) = match r.strip_prefix('.') {
            Some(r2) => {
                let l = r2.find(|c: char| !c.is_ascii_digit()).unwrap_or(r2.len());
                r2.split_at(l)
            }
            None => ("", r),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = r
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(r.len());
        let (unit, r) = r.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {orig:?}")),
            u => return Err(format!("unknown unit {u:?} in duration {orig:?}")),
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut v = int.checked_mul(scale).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            // Only the digits that can matter at nanosecond precision.
            let digits = &frac_part[..frac_part.len().min(18)];
            let f: i128 = digits.parse().map_err(|_| bad())?;
            v += f * scale / 10i128.pow(digits.len() as u32);
        }
        total = total.checked_add(v).ok_or_else(bad)?;
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
        s = r;
    }
    let total = i64::try_from(total).map_err(|_| bad())?;
    Ok(if neg { -total } else { total })
}

/// Parses one stage instruction (not FROM), e.g. an ONBUILD trigger taken from a
/// base image's config when a child build runs it.
pub fn parse_instruction(text: &str, line: usize, escape: char) -> Result<Instruction, ParseError> {
    match parse_logical(text, line, escape)? {
        Parsed::Instr(i) => Ok(i),
        Parsed::From(_) => Err(err(line, "FROM is not allowed here")),
    }
}

pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (dir, lines) = logical_lines(text)?;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for l in &lines {
        match parse_logical(&l.text, l.line, dir.escape)? {
            Parsed::From(from) => {
                if let Some(name) = &from.name {
                    if stages.iter().any(|s| s.from.name.as_ref() == Some(name)) {
                        return Err(err(l.line, format!("duplicate stage name {name:?}")));
                    }
                }
                stages.push(Stage {
                    from,
                    instructions: Vec::new(),
                });
            }
            Parsed::Instr(instr) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(instr),
                None => match instr.kind {
                    Kind::Arg(decls) => global_args.extend(decls),
                    _ => {
                        return Err(err(
                            l.line,
                            format!(
                                "{} before the first FROM: only ARG may come before FROM",
                                split_command(&instr.original).0.to_ascii_uppercase()
                            ),
                        ))
                    }
                },
            },
        }
    }
    if stages.is_empty() {
        let line = lines.last().map_or(0, |l| l.line);
        return Err(err(
            line,
            if lines.is_empty() {
                "file with no instructions: a Dockerfile needs at least a FROM"
            } else {
                "no FROM instruction: a Dockerfile must start a stage with FROM"
            },
        ));
    }
    Ok(Dockerfile {
        escape: dir.escape,
        syntax: dir.syntax,
        global_args,
        stages,
    })
}

// ---------------------------------------------------------------------------
// Substitution
// ---------------------------------------------------------------------------

pub fn expand_word(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut BTreeSet<String>,
) -> Result<String, ParseError> {
    expand_word_with(word, '\\', lookup, used)
}

/// [`expand_word`] with the file's escape char.
pub fn expand_word_with(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut BTreeSet<String>,
) -> Result<String, ParseError> {
    let mut env = shell::Env { lookup, used };
    shell::Lexer::new(word, escape, &mut env)
        .word()
        .map_err(|m| err(0, format!("failed to process {word:?}: {m}")))
}

/// Like [`expand_word_with`] but split into words after expansion (EXPOSE).
pub fn expand_words_with(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    used: &mut BTreeSet<String>,
) -> Result<Vec<String>, ParseError> {
    let mut env = shell::Env { lookup, used };
    shell::Lexer::new(word, escape, &mut env)
        .words()
        .map_err(|m| err(0, format!("failed to process {word:?}: {m}")))
}

/// The expansion state for one instruction: errors carry its line.
struct Expander<'a, 'u> {
    escape: char,
    line: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    used: &'u mut BTreeSet<String>,
}

impl Expander<'_, '_> {
    fn word(&mut self, s: &str) -> Result<String, ParseError> {
        expand_word_with(s, self.escape, self.lookup, self.used)
            .map_err(|e| err(self.line, e.message))
    }

    fn words(&mut self, s: &str) -> Result<Vec<String>, ParseError> {
        expand_words_with(s, self.escape, self.lookup, self.used)
            .map_err(|e| err(self.line, e.message))
    }

    fn opt(&mut self, s: &Option<String>) -> Result<Option<String>, ParseError> {
        s.as_deref().map(|s| self.word(s)).transpose()
    }

    fn all(&mut self, v: &[String]) -> Result<Vec<String>, ParseError> {
        v.iter().map(|s| self.word(s)).collect()
    }

    fn pairs(&mut self, v: &[(String, String)]) -> Result<Vec<(String, String)>, ParseError> {
        v.iter()
            .map(|(k, val)| Ok((self.word(k)?, self.word(val)?)))
            .collect()
    }
}

impl Instruction {
    pub fn expand(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        used: &mut BTreeSet<String>,
    ) -> Result<Instruction, ParseError> {
        let mut x = Expander {
            escape: self.escape,
            line: self.line,
            lookup,
            used,
        };
        let mut copy_spec = |c: &CopySpec| -> Result<CopySpec, ParseError> {
            Ok(CopySpec {
                sources: x.all(&c.sources)?,
                dest: x.word(&c.dest)?,
                from: x.opt(&c.from)?,
                chown: x.opt(&c.chown)?,
                chmod: x.opt(&c.chmod)?,
                link: c.link,
                extra_flags: c.extra_flags.clone(),
            })
        };
        let kind = match &self.kind {
            Kind::Copy(c) => Kind::Copy(copy_spec(c)?),
            Kind::Add(c) => Kind::Add(copy_spec(c)?),
            Kind::Env(pairs) => Kind::Env(x.pairs(pairs)?),
            Kind::Label(pairs) => Kind::Label(x.pairs(pairs)?),
            // Docker expands ARG defaults, never ARG names.
            Kind::Arg(decls) => Kind::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: d.name.clone(),
                            default: x.opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ParseError>>()?,
            ),
            Kind::Workdir(s) => Kind::Workdir(x.word(s)?),
            Kind::User(s) => Kind::User(x.word(s)?),
            Kind::StopSignal(s) => Kind::StopSignal(x.word(s)?),
            // One path per entry even if a value holds spaces (buildkit's
            // single-word expansion); EXPOSE alone splits again (ProcessWords).
            Kind::Volume(v) => Kind::Volume(x.all(v)?),
            Kind::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(x.words(p)?);
                }
                Kind::Expose(out)
            }
            other => other.clone(),
        };
        Ok(Instruction {
            line: self.line,
            original: self.original.clone(),
            kind,
            escape: self.escape,
        })
    }
}

impl From {
    pub fn expand(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        used: &mut BTreeSet<String>,
    ) -> Result<From, ParseError> {
        let line = self.line;
        let image = expand_word_with(&self.image, self.escape, lookup, used)
            .map_err(|e| err(line, e.message))?;
        if image.is_empty() {
            return Err(err(
                line,
                format!("base name ({}) should not be blank", self.image),
            ));
        }
        let platform = match &self.platform {
            Some(p) => {
                let v = expand_word_with(p, self.escape, lookup, used)
                    .map_err(|e| err(line, e.message))?;
                if v.is_empty() {
                    return Err(err(
                        line,
                        format!("empty platform value from expression {p}"),
                    ));
                }
                Some(v)
            }
            None => None,
        };
        Ok(From {
            line,
            image,
            name: self.name.clone(),
            platform,
            escape: self.escape,
        })
    }
}

#[cfg(test)]
mod tests;
