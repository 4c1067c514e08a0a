//! `--change` instructions (`docker import --change`, `docker commit --change`) applied
//! to an image's runtime config. Pure: parse a line, mutate a [`Config`].
//!
//! Supported: CMD, ENTRYPOINT (JSON array or shell form → `/bin/sh -c`), ENV (`K=V ...`
//! or `K V`), WORKDIR, USER, EXPOSE (`80`, `80/udp`), LABEL (`k=v ...`), STOPSIGNAL,
//! VOLUME. Anything else is an error naming the instruction.

use oci_spec::image::Config;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("change {0:?}: unknown or unsupported instruction")]
    Unknown(String),
    #[error("change {0:?}: missing argument")]
    Empty(String),
    #[error("change {line:?}: {why}")]
    Invalid { line: String, why: &'static str },
}

/// Apply one `--change` line to `config`.
pub fn apply(config: &mut Config, line: &str) -> Result<(), ChangeError> {
    let line_t = line.trim();
    let (instr, rest) = match line_t.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (line_t, ""),
    };
    if rest.is_empty() {
        return Err(ChangeError::Empty(line.to_string()));
    }
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(exec_form(rest)));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(exec_form(rest)));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in key_values(rest, line)? {
                set_env(&mut env, &k, &v);
            }
            config.set_env(Some(env));
        }
        "WORKDIR" => {
            config.set_working_dir(Some(rest.to_string()));
        }
        "USER" => {
            config.set_user(Some(rest.to_string()));
        }
        "STOPSIGNAL" => {
            config.set_stop_signal(Some(rest.to_string()));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(ChangeError::Invalid {
                        line: line.to_string(),
                        why: "port must be NUMBER[/tcp|udp|sctp]",
                    });
                }
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "LABEL" => {
            let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
            for (k, v) in key_values(rest, line)? {
                labels.insert(k, v);
            }
            config.set_labels(Some(labels));
        }
        "VOLUME" => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            for v in exec_form_list(rest) {
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
            config.set_volumes(Some(vols));
        }
        _ => return Err(ChangeError::Unknown(line.to_string())),
    }
    Ok(())
}

/// `["a","b"]` → [a, b]; anything else → `/bin/sh -c <text>` (Dockerfile shell form).
pub fn exec_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()]
}

fn exec_form_list(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    rest.split_whitespace().map(str::to_string).collect()
}

/// `K=V K2="v 2"` or the legacy single pair `K V`.
fn key_values(rest: &str, line: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for word in shell_words(rest) {
        let Some((k, v)) = word.split_once('=') else {
            return Err(ChangeError::Invalid {
                line: line.to_string(),
                why: "expected KEY=VALUE",
            });
        };
        if k.is_empty() {
            return Err(ChangeError::Invalid {
                line: line.to_string(),
                why: "empty key",
            });
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Split on whitespace, honouring double and single quotes and backslash escapes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k))
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_forms() {
        let mut c = Config::default();
        apply(&mut c, r#"CMD ["echo", "hi"]"#).expect("json");
        assert_eq!(
            c.cmd().as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        apply(&mut c, "CMD echo hi").expect("shell");
        assert_eq!(
            c.cmd().clone().expect("cmd"),
            vec!["/bin/sh", "-c", "echo hi"]
        );
        apply(&mut c, r#"ENTRYPOINT ["/bin/sh"]"#).expect("ep");
        assert_eq!(c.entrypoint().clone().expect("ep"), vec!["/bin/sh"]);
    }

    #[test]
    fn env_label_expose_and_the_rest() {
        let mut c = Config::default();
        apply(&mut c, "ENV A=1 B=\"two words\"").expect("env");
        apply(&mut c, "ENV A 3").expect("legacy env");
        assert_eq!(c.env().clone().expect("env"), vec!["A=3", "B=two words"]);
        apply(&mut c, "WORKDIR /srv").expect("wd");
        apply(&mut c, "USER nobody").expect("user");
        apply(&mut c, "EXPOSE 80 53/udp").expect("expose");
        apply(&mut c, "LABEL a=b c=d").expect("label");
        assert_eq!(c.working_dir().as_deref(), Some("/srv"));
        assert_eq!(c.user().as_deref(), Some("nobody"));
        assert_eq!(
            c.exposed_ports().clone().expect("p"),
            vec!["80/tcp", "53/udp"]
        );
        assert_eq!(
            c.labels()
                .as_ref()
                .and_then(|l| l.get("c"))
                .map(String::as_str),
            Some("d")
        );
    }

    #[test]
    fn bad_changes() {
        let mut c = Config::default();
        assert!(matches!(
            apply(&mut c, "RUN ls"),
            Err(ChangeError::Unknown(_))
        ));
        assert!(matches!(apply(&mut c, "CMD"), Err(ChangeError::Empty(_))));
        assert!(apply(&mut c, "EXPOSE http").is_err());
        assert!(apply(&mut c, "LABEL a=b =c").is_err());
    }
}
