//! events: an append-only log of what happened (`create`, `start`, `die`,
//! `oom`, `stop`, `destroy`, ...) in Docker's event shape, one JSON object per
//! line. Appends of one line are atomic with O_APPEND, so concurrent `berth`
//! processes never interleave records.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::root::Root;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i128,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

pub fn emit(root: &Root, kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
    let nanos = crate::time::unix_nanos(SystemTime::now());
    let ev = Event {
        kind: kind.into(),
        action: action.into(),
        actor: Actor {
            id: id.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        time: (nanos / 1_000_000_000) as i64,
        time_nano: nanos,
    };
    let mut line = serde_json::to_vec(&ev).expect("events serialize");
    line.push(b'\n');
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.events())
    {
        let _ = f.write_all(&line);
    }
}

/// `--filter key=value`: type, event (action), container (id or name), image, label.
pub fn matches(ev: &Event, filters: &[(String, String)]) -> bool {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k.as_str()).or_default().push(v.as_str());
    }
    by_key.iter().all(|(k, vals)| {
        vals.iter().any(|v| match *k {
            "type" => ev.kind == *v,
            "event" | "action" => ev.action == *v,
            "container" => {
                ev.kind == "container"
                    && (ev.actor.id.starts_with(v)
                        || ev
                            .actor
                            .attributes
                            .get("name")
                            .map(|n| n == v)
                            .unwrap_or(false))
            }
            "image" => ev
                .actor
                .attributes
                .get("image")
                .map(|i| i == v)
                .unwrap_or(false),
            "volume" | "network" => {
                ev.kind == *k
                    && (ev.actor.id == *v
                        || ev
                            .actor
                            .attributes
                            .get("name")
                            .map(|n| n == v)
                            .unwrap_or(false))
            }
            "label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                ev.actor
                    .attributes
                    .get(lk)
                    .map(|x| lv.is_empty() || x == lv)
                    .unwrap_or(false)
            }
            _ => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn filters() {
        let ev = Event {
            kind: "container".into(),
            action: "start".into(),
            actor: Actor {
                id: "abcdef".into(),
                attributes: [("name".to_string(), "web".to_string())].into(),
            },
            time: 0,
            time_nano: 0,
        };
        assert!(matches(&ev, &[]));
        assert!(matches(&ev, &[("container".into(), "web".into())]));
        assert!(matches(
            &ev,
            &[
                ("container".into(), "abc".into()),
                ("event".into(), "start".into())
            ]
        ));
        assert!(!matches(&ev, &[("event".into(), "die".into())]));
        assert!(matches(
            &ev,
            &[
                ("event".into(), "die".into()),
                ("event".into(), "start".into())
            ]
        ));
    }
}
