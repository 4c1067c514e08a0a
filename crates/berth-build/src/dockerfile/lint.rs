//! lint: warnings about image size, cache use and safety over a parsed
//! Dockerfile (the advice of the docker primer, §3 "how images layer").
//!
//! `lint(df: &Dockerfile) -> Vec<Lint>`, sorted by line; each warning has the
//! 1-based line of the offending instruction, a short code and a one-line message:
//! - `no-user`: the final stage never sets USER (the FROM line is reported), or its
//!   last USER is root / 0 → the container runs as root;
//! - `split-cleanup`: a RUN that only cleans package caches (`rm -rf
//!   /var/lib/apt/lists/*`, `apt-get clean`, `yum clean`, `apk cache clean`, `rm -rf
//!   /var/cache/...`) after a package install in an earlier RUN of the same stage:
//!   the files stay in the install's layer, so the image does not shrink;
//! - `copy-all-early`: `COPY . <dest>` / `ADD . <dest>` (source `.` or `./`, not
//!   `--from`) before a dependency-install RUN (npm/yarn/pnpm install, pip install,
//!   go mod, cargo build|fetch, bundle, composer install, apt-get install, mvn) in the
//!   same stage: every source edit re-runs the install;
//! - `many-runs`: three or more RUN instructions in a row → one layer each.
//!
//! Commands are read with a rough shell tokenizer (split on `&& || ; | &` and
//! blanks, quotes dropped): enough to recognise package managers, not a shell.

use super::{Dockerfile, Instruction, Kind, ShellOrExec};

#[derive(Debug, Clone, PartialEq)]
pub struct Lint {
    pub line: usize,
    pub code: &'static str,
    pub message: String,
}

pub fn lint(df: &Dockerfile) -> Vec<Lint> {
    let mut out = Vec::new();
    if let Some(last) = df.stages.last() {
        check_no_user(last.from.line, &last.instructions, &mut out);
    }
    for stage in &df.stages {
        check_split_cleanup(&stage.instructions, &mut out);
        check_copy_all_early(&stage.instructions, &mut out);
        check_many_runs(&stage.instructions, &mut out);
    }
    out.sort_by_key(|l| l.line);
    out
}

fn check_no_user(from_line: usize, instrs: &[Instruction], out: &mut Vec<Lint>) {
    let last_user = instrs.iter().rev().find_map(|i| match &i.kind {
        Kind::User(u) => Some((i.line, u)),
        _ => None,
    });
    match last_user {
        None => out.push(Lint {
            line: from_line,
            code: "no-user",
            message: "the final stage never sets USER, so the container runs as root; add a USER with an unprivileged user".into(),
        }),
        Some((line, u)) => {
            let name = u.split(':').next().unwrap_or_default().trim();
            if name == "root" || name == "0" {
                out.push(Lint {
                    line,
                    code: "no-user",
                    message: format!("USER {u} makes the container run as root; switch to an unprivileged user"),
                });
            }
        }
    }
}

fn check_split_cleanup(instrs: &[Instruction], out: &mut Vec<Lint>) {
    let mut install_line: Option<usize> = None;
    for i in instrs {
        let Kind::Run { command, .. } = &i.kind else {
            continue;
        };
        let cmds = simple_commands(command);
        let installs = cmds.iter().any(|c| is_package_install(c));
        let cleans = cmds.iter().any(|c| is_package_cleanup(c));
        if cleans && !installs {
            if let Some(at) = install_line {
                out.push(Lint {
                    line: i.line,
                    code: "split-cleanup",
                    message: format!(
                        "this clean-up runs in its own RUN, after the package install at line {at}: the files stay in that earlier layer and the image does not shrink; clean up in the same RUN as the install"
                    ),
                });
            }
        }
        if installs {
            install_line = Some(i.line);
        }
    }
}

fn check_copy_all_early(instrs: &[Instruction], out: &mut Vec<Lint>) {
    for (n, i) in instrs.iter().enumerate() {
        let spec = match &i.kind {
            Kind::Copy(c) | Kind::Add(c) if c.from.is_none() => c,
            _ => continue,
        };
        if !spec.sources.iter().any(|s| s == "." || s == "./") {
            continue;
        }
        let later_install = instrs[n + 1..].iter().find_map(|j| match &j.kind {
            Kind::Run { command, .. } => simple_commands(command)
                .into_iter()
                .find(|c| is_dependency_install(c))
                .map(|c| (j.line, c.join(" "))),
            _ => None,
        });
        if let Some((line, cmd)) = later_install {
            let what = if matches!(i.kind, Kind::Add(_)) {
                "ADD"
            } else {
                "COPY"
            };
            out.push(Lint {
                line: i.line,
                code: "copy-all-early",
                message: format!(
                    "{what} . copies the whole context before the dependency install at line {line} ({cmd}), so every source edit invalidates its cache; copy only the dependency manifests first, install, then copy the rest"
                ),
            });
        }
    }
}

fn check_many_runs(instrs: &[Instruction], out: &mut Vec<Lint>) {
    let mut n = 0;
    while n < instrs.len() {
        let len = instrs[n..]
            .iter()
            .take_while(|i| matches!(i.kind, Kind::Run { .. }))
            .count();
        if len >= 3 {
            let first = instrs[n].line;
            let last = instrs[n + len - 1].line;
            out.push(Lint {
                line: first,
                code: "many-runs",
                message: format!(
                    "{len} consecutive RUN instructions (lines {first}-{last}) make {len} layers; they could be one RUN joined with &&"
                ),
            });
        }
        n += len.max(1);
    }
}

/// The simple commands of a RUN, each as words with quotes dropped. An exec-form
/// `["sh", "-c", script]` is read as its script.
fn simple_commands(cmd: &ShellOrExec) -> Vec<Vec<String>> {
    match cmd {
        ShellOrExec::Shell(s) => split_script(s),
        ShellOrExec::Exec(v) => {
            let shells = ["sh", "bash", "/bin/sh", "/bin/bash", "ash", "/bin/ash"];
            if v.len() >= 3 && shells.contains(&v[0].as_str()) && v[1] == "-c" {
                split_script(&v[2])
            } else if v.is_empty() {
                Vec::new()
            } else {
                vec![v.clone()]
            }
        }
    }
}

fn split_script(s: &str) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let end_word = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    for c in s.chars() {
        match c {
            '&' | '|' | ';' | '\n' | '(' | ')' => {
                end_word(&mut word, &mut words);
                if !words.is_empty() {
                    cmds.push(std::mem::take(&mut words));
                }
            }
            '\'' | '"' => {}
            c if c.is_whitespace() => end_word(&mut word, &mut words),
            c => word.push(c),
        }
    }
    end_word(&mut word, &mut words);
    if !words.is_empty() {
        cmds.push(words);
    }
    cmds
}

/// The program (basename) and its arguments, skipping `VAR=x` prefixes and sudo.
fn program(cmd: &[String]) -> Option<(&str, &[String])> {
    let start = cmd
        .iter()
        .position(|w| !(w.contains('=') && !w.starts_with('-')) && w != "sudo")?;
    let prog = cmd[start].rsplit('/').next().unwrap_or_default();
    Some((prog, &cmd[start + 1..]))
}

/// The first argument that is not an option.
fn subcommand(args: &[String]) -> Option<&str> {
    args.iter()
        .map(String::as_str)
        .find(|a| !a.starts_with('-'))
}

fn has(args: &[String], w: &str) -> bool {
    args.iter().any(|a| a == w)
}

fn is_package_install(cmd: &[String]) -> bool {
    match program(cmd) {
        Some(("apt-get" | "apt" | "yum" | "dnf" | "microdnf" | "zypper", args)) => {
            has(args, "install")
        }
        Some(("apk", args)) => has(args, "add") || has(args, "install"),
        _ => false,
    }
}

fn is_package_cleanup(cmd: &[String]) -> bool {
    match program(cmd) {
        Some(("rm", args)) => args
            .iter()
            .any(|a| a.starts_with("/var/lib/apt/lists") || a.starts_with("/var/cache/")),
        Some(("apt-get" | "apt" | "yum" | "dnf" | "microdnf" | "zypper", args)) => {
            has(args, "clean")
        }
        Some(("apk", args)) => has(args, "cache") && has(args, "clean"),
        _ => false,
    }
}

fn is_dependency_install(cmd: &[String]) -> bool {
    let Some((prog, args)) = program(cmd) else {
        return false;
    };
    let sub = subcommand(args);
    match prog {
        "npm" | "pnpm" => matches!(sub, Some("install" | "i" | "ci")),
        "yarn" => matches!(sub, None | Some("install")),
        "pip" | "pip3" => sub == Some("install"),
        "python" | "python3" => args
            .windows(3)
            .any(|w| w[0] == "-m" && w[1] == "pip" && w[2] == "install"),
        "go" => sub == Some("mod"),
        "cargo" => matches!(sub, Some("build" | "fetch")),
        "bundle" => matches!(sub, None | Some("install")),
        "composer" => sub == Some("install"),
        "apt-get" => has(args, "install"),
        "mvn" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn lints(text: &str) -> Vec<Lint> {
        lint(&parse(text).expect("parses"))
    }

    fn codes(text: &str) -> Vec<(&'static str, usize)> {
        lints(text).into_iter().map(|l| (l.code, l.line)).collect()
    }

    #[test]
    fn no_user_when_final_stage_never_sets_one() {
        let l = lints("FROM alpine\nRUN true\n");
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].code, l[0].line), ("no-user", 1));
        assert!(l[0].message.contains("root"));
    }

    #[test]
    fn no_user_for_explicit_root() {
        assert_eq!(
            codes("FROM alpine\nUSER app\nUSER root\n"),
            [("no-user", 3)]
        );
        assert_eq!(codes("FROM alpine\nUSER 0:0\n"), [("no-user", 2)]);
    }

    #[test]
    fn user_in_final_stage_is_fine_even_if_builder_runs_as_root() {
        assert!(codes("FROM alpine AS b\nRUN true\nFROM alpine\nUSER 1000\n").is_empty());
        assert!(codes("FROM alpine\nUSER root\nRUN apk add x\nUSER nobody\n").is_empty());
    }

    #[test]
    fn split_cleanup_flags_the_later_run() {
        let text = "FROM debian\nUSER x\nRUN apt-get update && apt-get install -y curl\nENV A=1\nRUN rm -rf /var/lib/apt/lists/*\n";
        let l = lints(text);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!((l[0].code, l[0].line), ("split-cleanup", 5));
        assert!(l[0].message.contains("line 3"));
    }

    #[test]
    fn split_cleanup_other_managers() {
        assert_eq!(
            codes("FROM x\nUSER u\nRUN yum install -y git\nCMD x\nRUN yum clean all\n"),
            [("split-cleanup", 5)]
        );
        assert_eq!(
            codes("FROM x\nUSER u\nRUN apk add --no-cache git\nCMD x\nRUN apk cache clean\n"),
            [("split-cleanup", 5)]
        );
        assert_eq!(
            codes("FROM x\nUSER u\nRUN dnf install -y git\nCMD x\nRUN rm -rf /var/cache/dnf\n"),
            [("split-cleanup", 5)]
        );
    }

    #[test]
    fn cleanup_in_the_same_run_is_fine() {
        let text = "FROM debian\nUSER x\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n";
        assert!(codes(text).is_empty());
        // a cleanup with no install before it is not this lint's business
        assert!(codes("FROM debian\nUSER x\nRUN apt-get clean\n").is_empty());
        // another stage's install does not count
        assert!(codes(
            "FROM debian AS a\nRUN apt-get install -y x\nFROM debian\nUSER x\nRUN apt-get clean\n"
        )
        .is_empty());
    }

    #[test]
    fn copy_all_before_install() {
        let text = "FROM node\nUSER node\nWORKDIR /app\nCOPY . .\nRUN npm ci\n";
        let l = lints(text);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!((l[0].code, l[0].line), ("copy-all-early", 4));
        assert!(l[0].message.contains("line 5"));
        assert_eq!(
            codes("FROM python\nUSER u\nADD ./ /src\nRUN pip install -r requirements.txt\n"),
            [("copy-all-early", 3)]
        );
        assert_eq!(
            codes("FROM golang\nUSER u\nCOPY . /src\nRUN cd /src && go mod download\n"),
            [("copy-all-early", 3)]
        );
        assert_eq!(
            codes("FROM rust\nUSER u\nCOPY . .\nRUN [\"cargo\", \"build\", \"--release\"]\n"),
            [("copy-all-early", 3)]
        );
    }

    #[test]
    fn manifest_first_is_fine() {
        let text = "FROM node\nUSER node\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n";
        assert!(codes(text).is_empty());
        // copying from another stage is not the context
        assert!(codes("FROM node\nUSER node\nCOPY --from=b . .\nRUN npm ci\n").is_empty());
    }

    #[test]
    fn many_consecutive_runs() {
        let text = "FROM x\nUSER u\nRUN a\nRUN b\n# comment\n\nRUN c\nENV X=1\nRUN d\nRUN e\n";
        assert_eq!(codes(text), [("many-runs", 3)]);
        let l = lints(text);
        assert!(l[0].message.contains("3 consecutive"), "{}", l[0].message);
        assert!(l[0].message.contains("lines 3-7"));
    }

    #[test]
    fn two_runs_are_fine() {
        assert!(codes("FROM x\nUSER u\nRUN a\nRUN b\nENV A=b\nRUN c\nRUN d\n").is_empty());
    }

    #[test]
    fn lints_sorted_by_line() {
        let text = "FROM debian\nCOPY . .\nRUN apt-get install -y x\nRUN make\nRUN rm -rf /var/lib/apt/lists/*\n";
        assert_eq!(
            codes(text),
            [
                ("no-user", 1),
                ("copy-all-early", 2),
                ("many-runs", 3),
                ("split-cleanup", 5)
            ]
        );
    }

    #[test]
    fn tokenizer_sees_through_env_prefixes_sudo_and_sh_c() {
        assert!(is_package_install(
            &split_script("DEBIAN_FRONTEND=noninteractive sudo /usr/bin/apt-get -y install x")[0]
        ));
        let cmds = simple_commands(&ShellOrExec::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "true; npm install".into(),
        ]));
        assert!(cmds.iter().any(|c| is_dependency_install(c)));
        assert!(!is_dependency_install(&split_script("npm run build")[0]));
    }
}
