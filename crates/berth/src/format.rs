//! format: Docker's `--format` templates, the subset people use —
//! `table`, `{{.Field}}`, `{{json .Field}}`, `{{json .}}`, `\t` — and aligned tables.

use std::collections::BTreeMap;

pub type Row = BTreeMap<String, String>;

/// Render rows with a Go-template-like format, or as an aligned table with `headers`.
pub fn render(format: Option<&str>, headers: &[(&str, &str)], rows: &[Row]) -> String {
    let mut out = String::new();
    match format {
        Some(f) if f.trim() == "json" || f.trim() == "{{json .}}" => {
            for r in rows {
                out.push_str(&serde_json::to_string(r).expect("rows serialize"));
                out.push('\n');
            }
        }
        Some(f) if f.starts_with("table") => {
            let body = f.trim_start_matches("table").trim_start();
            let fields = fields_of(body);
            let head: Row = fields
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        headers
                            .iter()
                            .find(|(k, _)| k == f)
                            .map(|(_, h)| h.to_string())
                            .unwrap_or_else(|| f.to_uppercase()),
                    )
                })
                .collect();
            let mut lines = vec![apply(body, &head)];
            lines.extend(rows.iter().map(|r| apply(body, r)));
            out.push_str(&align(&lines));
        }
        Some(f) => {
            for r in rows {
                out.push_str(&apply(f, r));
                out.push('\n');
            }
        }
        None => {
            let mut lines = vec![headers
                .iter()
                .map(|(_, h)| h.to_string())
                .collect::<Vec<_>>()
                .join("\t")];
            for r in rows {
                lines.push(
                    headers
                        .iter()
                        .map(|(k, _)| r.get(*k).cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\t"),
                );
            }
            out.push_str(&align(&lines));
        }
    }
    out
}

fn fields_of(f: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = f;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        let inner = rest[i + 2..i + j].trim();
        let name = inner
            .trim_start_matches("json")
            .trim()
            .trim_start_matches('.');
        v.push(name.to_string());
        rest = &rest[i + j + 2..];
    }
    v
}

pub fn apply(f: &str, row: &Row) -> String {
    let f = f.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = f.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = rest[i + 2..i + j].trim();
        if let Some(field) = inner.strip_prefix("json") {
            let field = field.trim().trim_start_matches('.');
            if field.is_empty() {
                out.push_str(&serde_json::to_string(row).expect("rows serialize"));
            } else {
                out.push_str(
                    &serde_json::to_string(row.get(field).map(String::as_str).unwrap_or(""))
                        .expect("str"),
                );
            }
        } else {
            let field = inner.trim_start_matches('.');
            out.push_str(row.get(field).map(String::as_str).unwrap_or(""));
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// Align tab-separated columns with at least three spaces between them (docker's tabwriter).
pub fn align(lines: &[String]) -> String {
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = cells.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(width[i] - c.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn templates() {
        let r: Row = [
            ("ID".to_string(), "abc".to_string()),
            ("Names".to_string(), "web".to_string()),
        ]
        .into();
        assert_eq!(apply("{{.ID}} {{.Names}}", &r), "abc web");
        assert_eq!(apply("{{json .Names}}", &r), "\"web\"");
        assert_eq!(apply("{{.Missing}}x", &r), "x");
        let t = render(
            Some("table {{.ID}}\\t{{.Names}}"),
            &[("ID", "CONTAINER ID"), ("Names", "NAMES")],
            &[r.clone()],
        );
        assert_eq!(t, "CONTAINER ID   NAMES\nabc            web\n");
        let plain = render(None, &[("ID", "CONTAINER ID")], &[r]);
        assert_eq!(plain, "CONTAINER ID\nabc\n");
    }
}
