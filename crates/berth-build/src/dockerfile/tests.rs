//! Unit tests for the parser and substitution (mod.rs, shell.rs). Expected values
//! follow Docker's own parser testfiles and the shell lexer's test tables.

use std::collections::{BTreeSet, HashMap};

use super::*;

fn p(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(df) => df,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

/// The instructions of the only stage of `FROM x\n` + body.
fn body(text: &str) -> Vec<Instruction> {
    let df = p(&format!("FROM x\n{text}"));
    df.stages.into_iter().next().expect("a stage").instructions
}

fn one(text: &str) -> Instruction {
    let v = body(text);
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().expect("one")
}

fn kind(text: &str) -> Kind {
    one(text).kind
}

fn perr(text: &str) -> ParseError {
    match parse(text) {
        Ok(df) => panic!("expected an error, got {df:?}"),
        Err(e) => e,
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ex(word: &str, vars: &HashMap<String, String>) -> Result<String, ParseError> {
    let mut used = BTreeSet::new();
    expand_word(word, &|n| vars.get(n).cloned(), &mut used)
}

fn expand(instr: &Instruction, vars: &HashMap<String, String>) -> (Kind, BTreeSet<String>) {
    let mut used = BTreeSet::new();
    let k = instr
        .expand(&|n| vars.get(n).cloned(), &mut used)
        .expect("expands")
        .kind;
    (k, used)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// --- structure -------------------------------------------------------------

#[test]
fn minimal_file() {
    let df = p("FROM alpine:3.19\n");
    assert_eq!(df.escape, '\\');
    assert_eq!(df.syntax, None);
    assert_eq!(df.stages.len(), 1);
    assert_eq!(df.stages[0].from.image, "alpine:3.19");
    assert_eq!(df.stages[0].from.line, 1);
    assert!(df.stages[0].instructions.is_empty());
}

#[test]
fn keywords_are_case_insensitive() {
    let df = p("from alpine As Builder\nrun echo hi\nCmd [\"a\"]\n");
    assert_eq!(df.stages[0].from.name.as_deref(), Some("builder"));
    let i = &df.stages[0].instructions;
    assert_eq!(
        i[0].kind,
        Kind::Run {
            command: ShellOrExec::Shell("echo hi".into()),
            flags: vec![]
        }
    );
    assert_eq!(i[1].kind, Kind::Cmd(ShellOrExec::Exec(s(&["a"]))));
}

#[test]
fn comments_and_blank_lines_and_line_numbers() {
    let df = p("# a comment\n\nFROM a\n   # indented comment\n\nRUN x\n\n\nENV A=1\n");
    let i = &df.stages[0].instructions;
    assert_eq!(df.stages[0].from.line, 3);
    assert_eq!(i[0].line, 6);
    assert_eq!(i[1].line, 9);
}

#[test]
fn crlf_and_bom() {
    let df = p("\u{feff}FROM a\r\nRUN echo hi \\\r\n  there\r\n");
    assert_eq!(
        df.stages[0].instructions[0].kind,
        Kind::Run {
            command: ShellOrExec::Shell("echo hi   there".into()),
            flags: vec![]
        }
    );
}

#[test]
fn multi_stage_and_global_args() {
    let df = p("ARG BASE=alpine\nARG V\nFROM $BASE AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n");
    assert_eq!(
        df.global_args,
        vec![
            ArgDecl {
                name: "BASE".into(),
                default: Some("alpine".into())
            },
            ArgDecl {
                name: "V".into(),
                default: None
            }
        ]
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].from.image, "$BASE");
    assert_eq!(df.stages[1].from.image, "scratch");
    assert_eq!(df.stages[1].from.name, None);
    match &df.stages[1].instructions[0].kind {
        Kind::Copy(c) => assert_eq!(c.from.as_deref(), Some("build")),
        k => panic!("{k:?}"),
    }
}

// --- directives --------------------------------------------------------------

#[test]
fn syntax_and_escape_directives() {
    let df = p("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n");
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.escape, '`');
    let df = p("#Escape = \\ \nFROM a\n");
    assert_eq!(df.escape, '\\');
}

#[test]
fn directives_only_at_the_top() {
    // after a comment, an instruction or a blank line `# escape=` is a comment
    assert_eq!(p("# hello\n# escape=`\nFROM a\n").escape, '\\');
    assert_eq!(p("\n# escape=`\nFROM a\n").escape, '\\');
    assert_eq!(p("FROM a\n# escape=`\nRUN x \\\n y\n").escape, '\\');
    // an unknown directive name ends the directive block too
    assert_eq!(p("# foo=bar\n# escape=`\nFROM a\n").escape, '\\');
}

#[test]
fn directive_errors() {
    let e = perr("# escape=x\nFROM a\n");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("invalid escape token"), "{e}");
    let e = perr("# escape=`\n# escape=\\\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("only one escape parser directive"),
        "{e}"
    );
}

#[test]
fn backtick_escape_windows_style() {
    let df = p("# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n    && echo done\nENV P=c:\\path\\to\n");
    let i = &df.stages[0].instructions;
    match &i[0].kind {
        Kind::Copy(c) => assert_eq!(c.dest, "c:\\"),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        i[1].kind,
        Kind::Run {
            command: ShellOrExec::Shell("dir c:\\     && echo done".into()),
            flags: vec![]
        }
    );
    assert_eq!(i[1].line, 5);
    // with ` as escape, \ is an ordinary char in substitution too
    let (k, _) = expand(&i[2], &env(&[]));
    assert_eq!(k, Kind::Env(kv(&[("P", "c:\\path\\to")])));
}

// --- continuations -------------------------------------------------------------

#[test]
fn continuation_joins_as_docker_does() {
    let i = one("RUN apt-get update && \\\n    apt-get install -y curl\n");
    assert_eq!(
        i.original,
        "RUN apt-get update &&     apt-get install -y curl"
    );
    assert_eq!(
        i.kind,
        Kind::Run {
            command: ShellOrExec::Shell("apt-get update &&     apt-get install -y curl".into()),
            flags: vec![]
        }
    );
    assert_eq!(i.line, 2);
}

#[test]
fn continuation_skips_comments_and_empty_lines() {
    let v = body("RUN foo \\\n\nbar \\\n  # a comment inside\n\nbaz\nCMD x\n");
    assert_eq!(
        v[0].kind,
        Kind::Run {
            command: ShellOrExec::Shell("foo bar baz".into()),
            flags: vec![]
        }
    );
    assert_eq!(v[1].line, 8);
}

#[test]
fn continuation_edge_cases_from_docker_testfiles() {
    // trailing-backslash testfile
    let v = body("ENV C trailing\\\\backslash\\\\\nENV D next\nENV E hello\\\n\\\nworld\nENV G hello \\\n\\\nworld\n");
    assert_eq!(
        v[0].kind,
        Kind::Env(kv(&[("C", "trailing\\\\backslash\\\\")]))
    );
    assert_eq!(v[1].kind, Kind::Env(kv(&[("D", "next")])));
    assert_eq!(v[2].kind, Kind::Env(kv(&[("E", "helloworld")])));
    assert_eq!(v[3].kind, Kind::Env(kv(&[("G", "hello world")])));
}

#[test]
fn continuation_open_at_eof() {
    // Docker accepts an instruction whose last line continues into EOF
    let v = body("RUN something \\");
    assert_eq!(
        v[0].kind,
        Kind::Run {
            command: ShellOrExec::Shell("something".into()),
            flags: vec![]
        }
    );
    // but a continuation that never got any text is an error
    let e = perr("FROM a\nRUN x\n\\\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("end of file"), "{e}");
}

#[test]
fn escaped_escape_is_not_a_continuation() {
    let v = body("RUN echo a\\\\\nRUN echo b\n");
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0].kind,
        Kind::Run {
            command: ShellOrExec::Shell("echo a\\\\".into()),
            flags: vec![]
        }
    );
}

// --- RUN / CMD / ENTRYPOINT / SHELL ---------------------------------------------

#[test]
fn exec_and_shell_forms() {
    assert_eq!(
        kind("CMD [\"a\", \"b c\"]"),
        Kind::Cmd(ShellOrExec::Exec(s(&["a", "b c"])))
    );
    assert_eq!(
        kind("CMD\t[\t\"a\",\t\"b\"\t]\t"),
        Kind::Cmd(ShellOrExec::Exec(s(&["a", "b"])))
    );
    assert_eq!(kind("CMD []"), Kind::Cmd(ShellOrExec::Exec(vec![])));
    assert_eq!(kind("CMD [\"\"]"), Kind::Cmd(ShellOrExec::Exec(s(&[""]))));
    assert_eq!(
        kind("ENTRYPOINT echo 'test' | wc -"),
        Kind::Entrypoint(ShellOrExec::Shell("echo 'test' | wc -".into()))
    );
    assert_eq!(
        kind("ENTRYPOINT"),
        Kind::Entrypoint(ShellOrExec::Exec(vec![]))
    );
    assert_eq!(
        kind("RUN [\"echo\", \"\\u2603 \\\" \\\\ \\n\"]"),
        Kind::Run {
            command: ShellOrExec::Exec(s(&["echo", "☃ \" \\ \n"])),
            flags: vec![]
        }
    );
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    for text in [
        "[\"echo\", \"Please, close the brackets when you're done\"",
        "[\"echo\", \"look ma, no quote!]",
        "['echo','single quotes are invalid JSON']",
        "[\"a\",]",
    ] {
        assert_eq!(
            kind(&format!("CMD {text}")),
            Kind::Cmd(ShellOrExec::Shell(text.into())),
            "{text}"
        );
    }
}

#[test]
fn json_with_non_strings_is_an_error() {
    let e = perr("FROM a\nCMD [ \"echo\", [ \"nested json\" ] ]\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("strings only"), "{e}");
    assert!(perr("FROM a\nRUN [1, 2]\n")
        .message
        .contains("strings only"));
}

#[test]
fn run_flags_are_collected() {
    assert_eq!(
        kind("RUN --mount=type=cache,target=/root/.cache --network=none --security=insecure make"),
        Kind::Run {
            command: ShellOrExec::Shell("make".into()),
            flags: kv(&[
                ("mount", "type=cache,target=/root/.cache"),
                ("network", "none"),
                ("security", "insecure")
            ])
        }
    );
    // --mount may repeat; quotes inside a flag word are removed
    assert_eq!(
        kind("RUN --mount=type=secret,id=a --mount=\"type=bind,source=x\" [\"ls\"]"),
        Kind::Run {
            command: ShellOrExec::Exec(s(&["ls"])),
            flags: kv(&[
                ("mount", "type=secret,id=a"),
                ("mount", "type=bind,source=x")
            ])
        }
    );
}

#[test]
fn run_flag_errors() {
    let e = perr("FROM a\nRUN --foo=bar make\n");
    assert_eq!((e.line, e.message.as_str()), (2, "unknown flag: --foo"));
    assert!(perr("FROM a\nRUN --network=a --network=b x\n")
        .message
        .contains("duplicate flag"));
    assert!(perr("FROM a\nRUN --network x\n")
        .message
        .contains("missing a value"));
    assert!(perr("FROM a\nRUN\n")
        .message
        .contains("RUN requires at least one argument"));
    assert!(perr("FROM a\nCMD --help\n")
        .message
        .contains("unknown flag: --help"));
}

#[test]
fn double_dash_ends_flags() {
    match kind("COPY -- --weird-name /dst/") {
        Kind::Copy(c) => assert_eq!(
            (c.sources, c.dest),
            (s(&["--weird-name"]), "/dst/".to_string())
        ),
        k => panic!("{k:?}"),
    }
}

#[test]
fn heredocs_are_refused_clearly() {
    assert!(perr("FROM a\nRUN <<EOF\necho hi\nEOF\n")
        .message
        .contains("heredoc"));
    // `<<` inside an arithmetic expression is not a heredoc
    assert!(matches!(kind("RUN echo $((1<<2))"), Kind::Run { .. }));
}

#[test]
fn shell_instruction_exec_only() {
    assert_eq!(
        kind("SHELL [\"powershell\", \"-command\"]"),
        Kind::Shell(s(&["powershell", "-command"]))
    );
    let e = perr("FROM a\nSHELL /bin/bash -c\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("JSON form"), "{e}");
    assert!(perr("FROM a\nSHELL [\"/bin/bash\", \"-c\"\n")
        .message
        .contains("JSON form"));
    assert!(perr("FROM a\nSHELL []\n").message.contains("at least one"));
}

// --- COPY / ADD ---------------------------------------------------------------------

#[test]
fn copy_forms_and_flags() {
    match kind("COPY --from=build --chown=app:app --chmod=0755 --link a b /dst/") {
        Kind::Copy(c) => {
            assert_eq!(c.sources, s(&["a", "b"]));
            assert_eq!(c.dest, "/dst/");
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.chown.as_deref(), Some("app:app"));
            assert_eq!(c.chmod.as_deref(), Some("0755"));
            assert!(c.link);
            assert!(c.extra_flags.is_empty());
        }
        k => panic!("{k:?}"),
    }
    match kind("COPY [\"test file\", \"/tmp/test file\"]") {
        Kind::Copy(c) => assert_eq!(
            (c.sources, c.dest),
            (s(&["test file"]), "/tmp/test file".into())
        ),
        k => panic!("{k:?}"),
    }
    match kind("ADD\t\t.\t/") {
        Kind::Add(c) => assert_eq!((c.sources, c.dest, c.from), (s(&["."]), "/".into(), None)),
        k => panic!("{k:?}"),
    }
    match kind("COPY --link=false --exclude=*.md --exclude=x . /app") {
        Kind::Copy(c) => {
            assert!(!c.link);
            assert_eq!(c.extra_flags, kv(&[("exclude", "*.md"), ("exclude", "x")]));
        }
        k => panic!("{k:?}"),
    }
    match kind("ADD --checksum=sha256:abc https://x/y.tgz /") {
        Kind::Add(c) => assert_eq!(c.extra_flags, kv(&[("checksum", "sha256:abc")])),
        k => panic!("{k:?}"),
    }
}

#[test]
fn copy_errors_with_lines() {
    let e = perr("FROM a\n\nCOPY onlyone\n");
    assert_eq!(e.line, 3);
    assert!(
        e.message.contains("COPY requires at least two arguments"),
        "{e}"
    );
    let e = perr("FROM a\nADD [\"x\"]\n");
    assert!(
        e.message.contains("ADD requires at least two arguments"),
        "{e}"
    );
    let e = perr("FROM a\nCOPY --foo a b\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "COPY: unknown flag: --foo")
    );
    assert!(perr("FROM a\nADD --from=x a b\n")
        .message
        .contains("unknown flag: --from"));
    assert!(perr("FROM a\nCOPY --link=maybe a b\n")
        .message
        .contains("boolean"));
    let e = perr("FROM a\nRUN x\nCOPY [\"a\", \"b\"\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("unterminated JSON"), "{e}");
    // a glob class is not JSON
    assert!(matches!(kind("COPY [ab]* /x/"), Kind::Copy(_)));
}

// --- ENV / LABEL / ARG ----------------------------------------------------------------

#[test]
fn env_forms_as_parsed() {
    assert_eq!(kind("ENV name value"), Kind::Env(kv(&[("name", "value")])));
    assert_eq!(
        kind("ENV SCUBA 1 DUBA 3"),
        Kind::Env(kv(&[("SCUBA", "1 DUBA 3")]))
    );
    assert_eq!(
        kind("ENV name=value name2=value2"),
        Kind::Env(kv(&[("name", "value"), ("name2", "value2")]))
    );
    // quotes and escapes are kept until expand
    assert_eq!(
        kind("ENV name=\"value value1\""),
        Kind::Env(kv(&[("name", "\"value value1\"")]))
    );
    assert_eq!(
        kind("ENV name=value\\ value2"),
        Kind::Env(kv(&[("name", "value\\ value2")]))
    );
    assert_eq!(
        kind("ENV name='a\\'b'"),
        Kind::Env(kv(&[("name", "'a\\'b'")]))
    );
}

#[test]
fn env_values_after_expand() {
    let vars = env(&[]);
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("ENV name=\"value value1\"", &[("name", "value value1")]),
        ("ENV name=value\\ value2", &[("name", "value value2")]),
        (
            "ENV name=\"value'quote space'value2\"",
            &[("name", "value'quote space'value2")],
        ),
        (
            "ENV name='value\"double quote\"value2'",
            &[("name", "value\"double quote\"value2")],
        ),
        ("ENV name=\"a\\\"b\"", &[("name", "a\"b")]),
        ("ENV name=\"a\\'b\"", &[("name", "a\\'b")]),
        ("ENV name='a\\\"b'", &[("name", "a\\\"b")]),
        ("ENV name=\"''\"", &[("name", "''")]),
        ("ENV SCUBA \"1 DUBA 3\"", &[("SCUBA", "1 DUBA 3")]),
        (
            "ENV a=1 \\\n    b=\"x \\\n      y\"",
            &[("a", "1"), ("b", "x       y")],
        ),
    ];
    for (text, want) in cases {
        let (k, _) = expand(&one(text), &vars);
        assert_eq!(k, Kind::Env(kv(want)), "{text}");
    }
}

#[test]
fn env_errors() {
    let e = perr("FROM a\nENV onlyname\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("ENV must have two arguments"), "{e}");
    assert!(perr("FROM a\nENV a=1 b\n").message.contains("can't find ="));
    assert!(perr("FROM a\nENV =x\n")
        .message
        .contains("names can not be blank"));
    assert!(perr("FROM a\nENV\n").message.contains("at least one"));
}

#[test]
fn label_pairs() {
    let i = one("LABEL org.opencontainers.image.title=\"My App\" version=1.0 \"quoted key\"=v");
    assert_eq!(
        i.kind,
        Kind::Label(kv(&[
            ("org.opencontainers.image.title", "\"My App\""),
            ("version", "1.0"),
            ("\"quoted key\"", "v")
        ]))
    );
    let (k, _) = expand(&i, &env(&[]));
    assert_eq!(
        k,
        Kind::Label(kv(&[
            ("org.opencontainers.image.title", "My App"),
            ("version", "1.0"),
            ("quoted key", "v")
        ]))
    );
    assert_eq!(
        kind("LABEL maintainer Erik <e@x.org>"),
        Kind::Label(kv(&[("maintainer", "Erik <e@x.org>")]))
    );
}

#[test]
fn arg_forms() {
    assert_eq!(
        kind("ARG a b=2 c=\"x y\" d="),
        Kind::Arg(vec![
            ArgDecl {
                name: "a".into(),
                default: None
            },
            ArgDecl {
                name: "b".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "c".into(),
                default: Some("\"x y\"".into())
            },
            ArgDecl {
                name: "d".into(),
                default: Some(String::new())
            },
        ])
    );
    let (k, used) = expand(&one("ARG c=\"${BASE:-/opt} y\" $N"), &env(&[]));
    assert_eq!(
        k,
        Kind::Arg(vec![
            ArgDecl {
                name: "c".into(),
                default: Some("/opt y".into())
            },
            ArgDecl {
                name: "$N".into(),
                default: None
            },
        ]),
        "defaults expand, names do not"
    );
    assert_eq!(used, BTreeSet::from(["BASE".to_string()]));
    assert!(perr("FROM a\nARG =x\n")
        .message
        .contains("ARG names can not be blank"));
    assert!(perr("FROM a\nARG\n")
        .message
        .contains("ARG requires at least one argument"));
}

// --- FROM ------------------------------------------------------------------------------

#[test]
fn global_arg_defaults_expand() {
    let df = p("ARG A=\"x y\"\nARG B=${A}-z\nFROM a\n");
    let vars = env(&[("A", "x y")]);
    let mut used = BTreeSet::new();
    let b = df.global_args[1]
        .expand(df.escape, &|n| vars.get(n).cloned(), &mut used)
        .unwrap();
    assert_eq!(b.default.as_deref(), Some("x y-z"));
    let a = df.global_args[0]
        .expand(df.escape, &|_| None, &mut used)
        .unwrap();
    assert_eq!(a.default.as_deref(), Some("x y"));
    assert_eq!(used, BTreeSet::from(["A".to_string()]));
}

#[test]
fn from_forms() {
    let df = p("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env_1.x\n");
    let f = &df.stages[0].from;
    assert_eq!(f.image, "golang:1.22");
    assert_eq!(f.name.as_deref(), Some("build-env_1.x"));
    assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
    let f2 = p("FROM img as x\n").stages[0].from.clone();
    assert_eq!(f2.name.as_deref(), Some("x"));
}

#[test]
fn from_errors() {
    let e = perr("FROM\n");
    assert_eq!(e.line, 1);
    assert!(
        e.message
            .contains("FROM requires either one or three arguments"),
        "{e}"
    );
    assert!(perr("FROM a b\n").message.contains("one or three"));
    assert!(perr("FROM a TO b\n").message.contains("one or three"));
    let e = perr("FROM a AS 1abc\n");
    assert!(e.message.contains("invalid name for build stage"), "{e}");
    assert!(perr("FROM a AS x$y\n").message.contains("invalid name"));
    let e = perr("FROM a AS x\nFROM b AS X\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("duplicate stage name"), "{e}");
    assert!(perr("FROM --foo=1 a\n")
        .message
        .contains("unknown flag: --foo"));
}

#[test]
fn from_expand_uses_lookup_and_refuses_blank() {
    let df = p("ARG TAG=3.19\nFROM --platform=${PLAT:-linux/amd64} alpine:${TAG}\nFROM ${NOPE}\n");
    let vars = env(&[("TAG", "3.20")]);
    let mut used = BTreeSet::new();
    let f = df.stages[0]
        .from
        .expand(&|n| vars.get(n).cloned(), &mut used)
        .expect("expands");
    assert_eq!(f.image, "alpine:3.20");
    assert_eq!(f.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        used,
        BTreeSet::from(["PLAT".to_string(), "TAG".to_string()])
    );
    let e = df.stages[1]
        .from
        .expand(&|n| vars.get(n).cloned(), &mut used)
        .unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("should not be blank"), "{e}");
}

#[test]
fn nothing_but_arg_before_from() {
    let e = perr("ARG A\nRUN echo\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("RUN before the first FROM"), "{e}");
    let e = perr("# only comments\n\n");
    assert!(e.message.contains("no instructions"), "{e}");
    let e = perr("ARG A=1\nARG B\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("no FROM"), "{e}");
    assert!(perr("").message.contains("no instructions"));
}

#[test]
fn unknown_instruction() {
    let e = perr("FROM a\nRUN x\nFOO bar\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "unknown instruction: FOO")
    );
    assert_eq!(e.to_string(), "dockerfile line 3: unknown instruction: FOO");
}

// --- single-value instructions ---------------------------------------------------------------

#[test]
fn simple_instructions() {
    assert_eq!(kind("WORKDIR /app/src"), Kind::Workdir("/app/src".into()));
    assert_eq!(kind("USER docker:root"), Kind::User("docker:root".into()));
    assert_eq!(
        kind("STOPSIGNAL SIGTERM"),
        Kind::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        kind("MAINTAINER Jane <j@x.org>"),
        Kind::Maintainer("Jane <j@x.org>".into())
    );
    assert_eq!(
        kind("EXPOSE 80 443/tcp 53/udp 8000-8010"),
        Kind::Expose(s(&["80", "443/tcp", "53/udp", "8000-8010"]))
    );
    for (text, what) in [
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("USER", "USER requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
    ] {
        let e = perr(&format!("FROM a\n{text}\n"));
        assert_eq!((e.line, e.message.as_str()), (2, what));
    }
}

#[test]
fn volume_forms() {
    assert_eq!(
        kind("VOLUME /data /logs"),
        Kind::Volume(s(&["/data", "/logs"]))
    );
    assert_eq!(
        kind("VOLUME [\"/test\", \"/test 2\"]"),
        Kind::Volume(s(&["/test", "/test 2"]))
    );
    assert!(perr("FROM a\nVOLUME [\"\"]\n")
        .message
        .contains("can not be an empty string"));
    assert!(perr("FROM a\nVOLUME []\n").message.contains("at least one"));
}

// --- HEALTHCHECK --------------------------------------------------------------------------------

#[test]
fn healthcheck_forms() {
    assert_eq!(
        kind("HEALTHCHECK NONE"),
        Kind::Healthcheck(Healthcheck {
            test: s(&["NONE"]),
            ..Default::default()
        })
    );
    assert_eq!(
        kind("HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet"),
        Kind::Healthcheck(Healthcheck {
            test: s(&["CMD-SHELL", "/app/check.sh --quiet"]),
            interval: 5_000_000_000,
            timeout: 3_000_000_000,
            retries: 3,
            ..Default::default()
        })
    );
    assert_eq!(
        kind("HEALTHCHECK --start-period=1m30s --start-interval=500ms cmd [\"curl\", \"-f\", \"http://localhost/\"]"),
        Kind::Healthcheck(Healthcheck {
            test: s(&["CMD", "curl", "-f", "http://localhost/"]),
            start_period: 90_000_000_000,
            start_interval: 500_000_000,
            ..Default::default()
        })
    );
    assert_eq!(
        kind("HEALTHCHECK --interval=0s --retries=0 CMD [\"foo\"]"),
        Kind::Healthcheck(Healthcheck {
            test: s(&["CMD", "foo"]),
            ..Default::default()
        })
    );
}

#[test]
fn healthcheck_errors() {
    for (text, what) in [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK CONNECT TCP 7000",
            "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
        ),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        (
            "HEALTHCHECK --interval=10 CMD x",
            "HEALTHCHECK --interval: missing unit in duration \"10\"",
        ),
        (
            "HEALTHCHECK --timeout=10us CMD x",
            "Interval \"timeout\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --bogus=1 CMD x",
            "HEALTHCHECK: unknown flag: --bogus",
        ),
    ] {
        let e = perr(&format!("FROM a\n{text}\n"));
        assert_eq!((e.line, e.message.as_str()), (2, what), "{text}");
    }
}

#[test]
fn go_durations() {
    assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
    assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
    assert_eq!(parse_go_duration("500ms"), Ok(500_000_000));
    assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
    assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
    assert_eq!(parse_go_duration("2h45m"), Ok(9_900_000_000_000));
    assert_eq!(parse_go_duration("10us"), Ok(10_000));
    assert_eq!(parse_go_duration("10µs"), Ok(10_000));
    assert_eq!(parse_go_duration("7ns"), Ok(7));
    assert_eq!(parse_go_duration("0"), Ok(0));
    assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
    assert!(parse_go_duration("").is_err());
    assert!(parse_go_duration("1").is_err());
    assert!(parse_go_duration("1d").is_err());
    assert!(parse_go_duration("s").is_err());
    assert!(
        parse_go_duration("3000000h").is_err(),
        "overflows i64 nanoseconds"
    );
}

// --- ONBUILD -------------------------------------------------------------------------------------

#[test]
fn onbuild_triggers() {
    assert_eq!(
        kind("ONBUILD RUN [\"echo\", \"test\"]"),
        Kind::Onbuild("RUN [\"echo\", \"test\"]".into())
    );
    assert_eq!(
        kind("onbuild   COPY . /app"),
        Kind::Onbuild("COPY . /app".into())
    );
    assert_eq!(
        kind("ONBUILD RUN make \\\n  install"),
        Kind::Onbuild("RUN make   install".into())
    );
    // the trigger reparses as an instruction
    let i = parse_instruction("RUN make   install", 7, '\\').expect("trigger parses");
    assert_eq!(i.line, 7);
    assert!(matches!(i.kind, Kind::Run { .. }));
}

#[test]
fn onbuild_refusals() {
    let e = perr("FROM a\nONBUILD ONBUILD RUN x\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("ONBUILD ONBUILD"), "{e}");
    assert!(perr("FROM a\nONBUILD FROM b\n")
        .message
        .contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(perr("FROM a\nONBUILD maintainer me\n")
        .message
        .contains("MAINTAINER isn't allowed"));
    assert!(perr("FROM a\nONBUILD\n").message.contains("at least one"));
    assert!(perr("FROM a\nONBUILD BOGUS x\n")
        .message
        .contains("unknown instruction: BOGUS"));
    assert!(parse_instruction("FROM x", 1, '\\').is_err());
}

// --- original text ---------------------------------------------------------------------------------

#[test]
fn original_text() {
    let v = body("  RUN   echo hi  \nCOPY --chown=a:b x \\\n  /y\n");
    assert_eq!(v[0].original, "RUN   echo hi");
    assert_eq!(v[1].original, "COPY --chown=a:b x   /y");
}

// --- substitution: the lexer -------------------------------------------------------------------------

#[test]
fn shell_lexer_table_from_buildkit() {
    // shell/envVarTest (the platform-independent rows), PWD=/home SHELL=bash NULL=""
    let vars = env(&[("PWD", "/home"), ("SHELL", "bash"), ("NULL", "")]);
    let table: &[(&str, Option<&str>)] = &[
        ("hello", Some("hello")),
        ("he'll'o", Some("hello")),
        ("he'llo", None),
        ("he\\'llo", Some("he'llo")),
        ("he\\\\'llo", None),
        ("abc\\tdef", Some("abctdef")),
        ("\"abc\\tdef\"", Some("abc\\tdef")),
        ("\"abc\\\\tdef\"", Some("abc\\tdef")),
        ("'abc\\tdef'", Some("abc\\tdef")),
        ("hello\\", Some("hello")),
        ("hello\\\\", Some("hello\\")),
        ("\"hello", None),
        ("\"hello\\\"", None),
        ("\"hel'lo\"", Some("hel'lo")),
        ("'hello", None),
        ("'hello\\'", Some("hello\\")),
        ("'hello\\there'", Some("hello\\there")),
        ("\"''\"", Some("''")),
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        ("he\\$PWD", Some("he$PWD")),
        ("he\\\\$PWD", Some("he\\/home")),
        ("\"he\\$PWD\"", Some("he$PWD")),
        ("\"he\\\\$PWD\"", Some("he\\/home")),
        ("\\${}", Some("${}")),
        ("he\\${}xx", Some("he${}xx")),
        ("${}", None),
        ("he${}xx", None),
        ("he${hi}xx", Some("hexx")),
        ("he${PWD}", Some("he/home")),
        ("he${.}", None),
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${PWD:?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${XXX}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${XXX:+000}xx", Some("hexx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("'he${XX}'", Some("he${XX}")),
        ("\"he${PWD}\"", Some("he/home")),
        ("\"he'$PWD'\"", Some("he'/home'")),
        ("\"$PWD\"", Some("/home")),
        ("'$PWD'", Some("$PWD")),
        ("'\\$PWD'", Some("\\$PWD")),
        ("'\"hello\"'", Some("\"hello\"")),
        ("he${PWD", None),
        ("he${PWD:=000}xx", None),
        ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
        ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
        ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
        ("안'녕'하세요", Some("안녕하세요")),
        ("안녕${PWD}", Some("안녕/home")),
    ];
    for (input, want) in table {
        let got = ex(input, &vars).ok();
        assert_eq!(got.as_deref(), *want, "input {input:?}");
    }
}

#[test]
fn default_and_alternative_operators() {
    let vars = env(&[("SET", "v"), ("EMPTY", "")]);
    assert_eq!(ex("${UNSET:-d}", &vars).unwrap(), "d");
    assert_eq!(ex("${EMPTY:-d}", &vars).unwrap(), "d");
    assert_eq!(
        ex("${EMPTY-d}", &vars).unwrap(),
        "",
        "`-` only replaces unset"
    );
    assert_eq!(ex("${UNSET-d}", &vars).unwrap(), "d");
    assert_eq!(ex("${SET:-d}", &vars).unwrap(), "v");
    assert_eq!(ex("${SET:+a}", &vars).unwrap(), "a");
    assert_eq!(ex("${EMPTY:+a}", &vars).unwrap(), "");
    assert_eq!(
        ex("${EMPTY+a}", &vars).unwrap(),
        "a",
        "`+` counts empty as set"
    );
    assert_eq!(ex("${UNSET+a}", &vars).unwrap(), "");
    assert_eq!(ex("$SET$UNSET.${SET}x", &vars).unwrap(), "v.vx");
    assert_eq!(
        ex("${UNSET:-\"quoted default\"}", &vars).unwrap(),
        "quoted default"
    );
}

#[test]
fn required_operator_errors() {
    let vars = env(&[("EMPTY", "")]);
    let e = ex("${NEEDED:?set NEEDED first}", &vars).unwrap_err();
    assert!(e.message.contains("NEEDED: set NEEDED first"), "{e}");
    assert!(ex("${NEEDED?}", &vars)
        .unwrap_err()
        .message
        .contains("NEEDED: is not allowed to be unset"));
    assert!(ex("${EMPTY:?}", &vars)
        .unwrap_err()
        .message
        .contains("EMPTY: is not allowed to be empty"));
    assert_eq!(ex("${EMPTY?}", &vars).unwrap(), "");
}

#[test]
fn pattern_operators() {
    let vars = env(&[("F", "archive.tar.gz"), ("P", "/usr/local/bin")]);
    assert_eq!(ex("${F%.*}", &vars).unwrap(), "archive.tar");
    assert_eq!(ex("${F%%.*}", &vars).unwrap(), "archive");
    assert_eq!(ex("${F#*.}", &vars).unwrap(), "tar.gz");
    assert_eq!(ex("${F##*.}", &vars).unwrap(), "gz");
    assert_eq!(ex("${P/local/opt}", &vars).unwrap(), "/usr/opt/bin");
    assert_eq!(ex("${P//\\//:}", &vars).unwrap(), ":usr:local:bin");
    assert_eq!(ex("${F%nomatch}", &vars).unwrap(), "archive.tar.gz");
    assert!(ex("${F:%x}", &vars).is_err());
}

#[test]
fn used_records_every_lookup_set_or_not() {
    let vars = env(&[("A", "1")]);
    let mut used = BTreeSet::new();
    let out = expand_word(
        "$A-${B:-$C}-'$D'-\"$E\"",
        &|n| vars.get(n).cloned(),
        &mut used,
    )
    .unwrap();
    assert_eq!(out, "1--$D-");
    assert_eq!(used, BTreeSet::from(["A", "B", "C", "E"].map(String::from)));
}

#[test]
fn backtick_escape_in_expansion() {
    let vars = env(&[("X", "v")]);
    let mut used = BTreeSet::new();
    let out =
        expand_word_with("c:\\dir\\`$X-$X", '`', &|n| vars.get(n).cloned(), &mut used).unwrap();
    assert_eq!(out, "c:\\dir\\$X-v");
}

// --- substitution: which instructions and how ---------------------------------------------------------

#[test]
fn expand_applies_to_the_docker_set() {
    let vars = env(&[
        ("D", "/app"),
        ("U", "app"),
        ("S", "src"),
        ("SIG", "SIGINT"),
        ("P", "8080"),
        ("V", "/data"),
    ]);
    let (k, used) = expand(
        &one("COPY --chown=$U:$U --chmod=${MODE:-644} --from=${STAGE:-b} $S/ ${D}/"),
        &vars,
    );
    match k {
        Kind::Copy(c) => {
            assert_eq!(c.sources, s(&["src/"]));
            assert_eq!(c.dest, "/app/");
            assert_eq!(c.chown.as_deref(), Some("app:app"));
            assert_eq!(c.chmod.as_deref(), Some("644"));
            assert_eq!(c.from.as_deref(), Some("b"));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        used,
        BTreeSet::from(["D", "MODE", "S", "STAGE", "U"].map(String::from))
    );
    assert_eq!(
        expand(&one("WORKDIR $D/src"), &vars).0,
        Kind::Workdir("/app/src".into())
    );
    assert_eq!(
        expand(&one("USER ${U}:${U}"), &vars).0,
        Kind::User("app:app".into())
    );
    assert_eq!(
        expand(&one("STOPSIGNAL $SIG"), &vars).0,
        Kind::StopSignal("SIGINT".into())
    );
    assert_eq!(
        expand(&one("VOLUME $V [\"x\"]"), &vars).0,
        Kind::Volume(s(&["/data", "[x]"]))
    );
    assert_eq!(
        expand(&one("VOLUME [\"$V\", \"/b\"]"), &vars).0,
        Kind::Volume(s(&["/data", "/b"]))
    );
    assert_eq!(
        expand(&one("EXPOSE $P ${P}/udp"), &vars).0,
        Kind::Expose(s(&["8080", "8080/udp"]))
    );
    assert_eq!(
        expand(&one("ENV $U=$D"), &vars).0,
        Kind::Env(kv(&[("app", "/app")]))
    );
}

#[test]
fn expand_leaves_commands_alone() {
    let vars = env(&[("X", "1")]);
    for text in [
        "RUN echo $X",
        "CMD echo $X",
        "ENTRYPOINT [\"echo\", \"$X\"]",
        "SHELL [\"/bin/$X\"]",
        "HEALTHCHECK CMD echo $X",
        "ONBUILD RUN echo $X",
        "MAINTAINER $X",
    ] {
        let i = one(text);
        let (k, used) = expand(&i, &vars);
        assert_eq!(k, i.kind, "{text}");
        assert!(used.is_empty(), "{text}");
    }
}

#[test]
fn expose_splits_like_process_words() {
    let vars = env(&[("PORTS", "80 443/tcp"), ("ONE", "1")]);
    assert_eq!(
        expand(&one("EXPOSE $PORTS 22"), &vars).0,
        Kind::Expose(s(&["80", "443/tcp", "22"]))
    );
    assert_eq!(
        expand(&one("EXPOSE 90$ONE"), &vars).0,
        Kind::Expose(s(&["901"]))
    );
    // VOLUME does not split (buildkit expands it as a single word)
    assert_eq!(
        expand(&one("VOLUME $PORTS"), &vars).0,
        Kind::Volume(s(&["80 443/tcp"]))
    );
}

#[test]
fn expand_errors_carry_the_line() {
    let v = body("RUN x\nWORKDIR ${DIR:?need DIR}\nCOPY \"a b\" c\n");
    let mut used = BTreeSet::new();
    let e = v[1].expand(&|_| None, &mut used).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("DIR: need DIR"), "{e}");
    // shell-form COPY splits on blanks only, so a quoted name with a space is
    // unterminated: use the JSON form
    let e = v[2].expand(&|_| None, &mut used).unwrap_err();
    assert_eq!(e.line, 4);
    assert!(e.message.contains("double-quote"), "{e}");
}

#[test]
fn words_table_from_buildkit() {
    // shell/wordsTest
    let table: &[(&[(&str, &str)], &str, &[&str])] = &[
        (&[], "hello", &["hello"]),
        (&[], "hello${hi}bye", &["hellobye"]),
        (&[("hi", "hi")], "hello${hi}bye", &["hellohibye"]),
        (
            &[("space", "abc  def")],
            "hello${space}bye",
            &["helloabc", "defbye"],
        ),
        (
            &[("space", "abc  def")],
            "hello\"${space}\"bye",
            &["helloabc  defbye"],
        ),
        (
            &[("space", "abc  def")],
            "hello \"${space}\"bye",
            &["hello", "abc  defbye"],
        ),
        (
            &[("leading", "  ab c")],
            "hello${leading}def",
            &["hello", "ab", "cdef"],
        ),
        (
            &[("leading", "  ab c")],
            "hello\"${leading}\" def",
            &["hello  ab c", "def"],
        ),
        (
            &[("trailing", "ab c   ")],
            "hello${trailing}d",
            &["helloab", "c", "d"],
        ),
        (&[], "hello\" there  \"", &["hello there  "]),
        (&[], "hello there     ", &["hello", "there"]),
        (&[], "hello\\ there", &["hello there"]),
        (&[], "hello\\\" there", &["hello\"", "there"]),
        (&[], "hello'\\there'", &["hello\\there"]),
        (&[], "hello'$there'", &["hello$there"]),
    ];
    for (vars, input, want) in table {
        let vars = env(vars);
        let mut used = BTreeSet::new();
        let got = expand_words_with(input, '\\', &|n| vars.get(n).cloned(), &mut used).unwrap();
        assert_eq!(got, s(want), "input {input:?}");
    }
}

#[test]
fn realistic_dockerfile() {
    let text = r#"# syntax=docker/dockerfile:1.7
ARG GO_VERSION=1.22

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://example.com/app" \
      maintainer="ops team"
COPY --from=build /out/app /app
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=30s --timeout=3s CMD ["/app", "-health"]
ENTRYPOINT ["/app"]
"#;
    let df = p(text);
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].instructions.len(), 5);
    assert_eq!(df.stages[1].instructions.len(), 6);
    assert_eq!(df.stages[0].instructions[2].line, 7);
    assert_eq!(df.stages[0].instructions[3].line, 9);
    match &df.stages[1].instructions[0].kind {
        Kind::Label(l) => assert_eq!(l.len(), 2),
        k => panic!("{k:?}"),
    }
    assert!(super::lint::lint(&df).iter().all(|l| l.code != "no-user"));
}
