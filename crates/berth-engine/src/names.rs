//! names: container ids (64 hex, shown as 12) and docker-style generated
//! names (`adjective_scientist`).

use std::io::Read;

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_id() -> String {
    loop {
        let id = random_hex(32);
        // docker avoids ids that look like numbers (they would be parsed as such)
        if !id[..12].chars().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "exciting",
    "fervent",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "infallible",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NAMES: &[&str] = &[
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "bardeen",
    "bell",
    "bohr",
    "brattain",
    "carson",
    "cerf",
    "curie",
    "darwin",
    "diffie",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "jackson",
    "johnson",
    "kepler",
    "knuth",
    "lamarr",
    "lamport",
    "liskov",
    "lovelace",
    "mccarthy",
    "meitner",
    "mirzakhani",
    "morse",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pike",
    "poincare",
    "ritchie",
    "shannon",
    "sinoussi",
    "stallman",
    "swartz",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wiles",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

pub fn generate_name(mut taken: impl FnMut(&str) -> bool) -> String {
    let mut n = 0usize;
    loop {
        let r = random_hex(4);
        let v = usize::from_str_radix(&r, 16).unwrap_or(0);
        let mut name = format!(
            "{}_{}",
            ADJECTIVES[v % ADJECTIVES.len()],
            NAMES[(v / ADJECTIVES.len()) % NAMES.len()]
        );
        if n > 8 {
            name.push_str(&(v % 10).to_string());
        }
        if !taken(&name) {
            return name;
        }
        n += 1;
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_valid_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphanumeric())
        && name.len() >= 2
        && c.all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids_and_names() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(is_valid_name("web-1.a_b"));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name("a"));
        assert!(!is_valid_name("a/b"));
        let n = generate_name(|_| false);
        assert!(is_valid_name(&n), "{n}");
        let mut calls = 0;
        let n2 = generate_name(|_| {
            calls += 1;
            calls < 3
        });
        assert!(is_valid_name(&n2));
    }
}
