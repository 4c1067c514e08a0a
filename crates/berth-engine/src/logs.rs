//! logs: reading Docker json-file logs written by the monitor, with `--tail`,
//! `--since`, `--until`, `-t` and `-f` (follow until the container stops).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

#[derive(Debug, Default, Clone)]
pub struct Options {
    pub tail: Option<usize>,
    pub since: Option<i128>,
    pub until: Option<i128>,
    pub timestamps: bool,
    pub follow: bool,
}

/// The log and its rotated files, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            out.push(p);
        }
    }
    out.push(path.to_path_buf());
    out
}

fn keep(e: &Entry, o: &Options) -> bool {
    if o.since.is_none() && o.until.is_none() {
        return true;
    }
    let t = crate::time::parse_rfc3339(&e.time).unwrap_or(0);
    o.since.map(|s| t >= s).unwrap_or(true) && o.until.map(|u| t <= u).unwrap_or(true)
}

fn print(e: &Entry, o: &Options, out: &mut dyn Write, err: &mut dyn Write) {
    let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
    if o.timestamps {
        let _ = write!(w, "{} ", e.time);
    }
    let _ = w.write_all(e.log.as_bytes());
    let _ = w.flush();
}

pub fn read_all(path: &Path) -> Vec<Entry> {
    let mut v = Vec::new();
    for f in files(path) {
        if let Ok(file) = File::open(&f) {
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    v.push(e);
                }
            }
        }
    }
    v
}

/// Print the log; with `follow`, keep printing new entries until `running()`
/// is false and the file has no more data.
pub fn show(
    path: &Path,
    o: &Options,
    running: &dyn Fn() -> bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) {
    let entries: Vec<Entry> = read_all(path).into_iter().filter(|e| keep(e, o)).collect();
    let start = o.tail.map(|t| entries.len().saturating_sub(t)).unwrap_or(0);
    for e in &entries[start..] {
        print(e, o, out, err);
    }
    if !o.follow {
        return;
    }
    let mut pos = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut ino = inode(path);
    let mut partial = String::new();
    loop {
        let alive = running();
        if inode(path) != ino {
            // rotated: the new file starts from its beginning
            ino = inode(path);
            pos = 0;
        }
        if let Ok(mut f) = File::open(path) {
            if f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut r = BufReader::new(f);
                let mut line = String::new();
                while let Ok(n) = r.read_line(&mut line) {
                    if n == 0 {
                        break;
                    }
                    pos += n as u64;
                    if !line.ends_with('\n') {
                        partial.push_str(&line);
                        line.clear();
                        continue;
                    }
                    partial.push_str(&line);
                    if let Ok(e) = serde_json::from_str::<Entry>(&partial) {
                        if keep(&e, o) {
                            print(&e, o, out, err);
                        }
                    }
                    partial.clear();
                    line.clear();
                }
            }
        }
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}
