//! Imports run one way. Each room (a module of the crate root) may use only the rooms listed for
//! it here; a `crate::` path (or `use crate::{..}` group) to any other room fails this test,
//! naming the file and the line. In particular the broker, the stage and the warehouse never reach
//! back into the loader, the client or the command line that use them, and the leaf helpers
//! import nothing above them.

use std::path::Path;

/// Each room and the rooms it may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: the helpers every room shares.
    ("schema", &[]),
    ("sequence", &[]),
    ("json_scan", &[]),
    ("text", &[]),
    ("threads", &[]),
    ("hooks", &[]),
    ("retry", &[]),
    ("identity", &[]),
    ("error", &["encode", "schema", "sequence"]),
    // What the derive's output calls.
    ("encode", &["schema", "text"]),
    ("event", &["encode", "schema"]),
    ("config", &["error", "retry", "schema", "text"]),
    ("aws", &["config", "error", "retry", "text"]),
    // The backends: below the loader and the client, beside each other only where a trait
    // says so (the warehouse copies from a stage).
    (
        "broker",
        &[
            "aws",
            "config",
            "error",
            "json_scan",
            "retry",
            "schema",
            "sequence",
            "text",
            "threads",
        ],
    ),
    (
        "stage",
        &["aws", "config", "error", "retry", "schema", "text"],
    ),
    (
        "warehouse",
        &[
            "aws",
            "config",
            "error",
            "hooks",
            "json_scan",
            "retry",
            "schema",
            "stage",
            "text",
        ],
    ),
    // The users of the backends.
    (
        "client",
        &[
            "aws", "broker", "config", "encode", "error", "event", "identity", "retry", "schema",
            "text",
        ],
    ),
    (
        "loader",
        &[
            "aws",
            "broker",
            "config",
            "encode",
            "error",
            "event",
            "hooks",
            "identity",
            "json_scan",
            "migrate",
            "retry",
            "schema",
            "sequence",
            "stage",
            "text",
            "threads",
            "warehouse",
        ],
    ),
    ("migrate", &["error", "schema", "warehouse"]),
    (
        "cli",
        &[
            "aws",
            "broker",
            "client",
            "config",
            "error",
            "event",
            "loader",
            "migrate",
            "schema",
            "stage",
            "text",
            "warehouse",
        ],
    ),
];

/// The rooms a file names through `crate::`, with the line of each.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::b, c}`: the first segment of each item (groups may span lines, so
                // only what is on this line is seen; rustfmt keeps short groups on one).
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, name));
            }
        }
    }
    out
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let rooms: Vec<&str> = ALLOWED.iter().map(|(room, _)| *room).collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let room = first.trim_end_matches(".rs");
        if matches!(room, "lib" | "__private" | "__test" | "layering_tests") {
            continue; // the crate root and the re-export modules name every room
        }
        let Some((_, allowed)) = ALLOWED.iter().find(|(r, _)| *r == room) else {
            wrong.push(format!(
                "{}: the room `{room}` is not in ALLOWED; add it with the rooms it may use",
                rel.display()
            ));
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
        for (line, used) in crate_paths(&text) {
            if used == room || !rooms.contains(&used.as_str()) {
                continue; // itself, or a re-exported item of the root (`crate::Result`)
            }
            if !allowed.contains(&used.as_str()) {
                wrong.push(format!(
                    "{}:{line}: `{room}` uses `crate::{used}`",
                    rel.display()
                ));
            }
        }
        if text.contains("super::super::") {
            wrong.push(format!(
                "{}: `super::super::` reaches out of its room; name the room with `crate::`",
                rel.display()
            ));
        }
    }
    assert!(checked > 20, "only {checked} files were checked");
    assert!(
        wrong.is_empty(),
        "imports against the grain:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_and_groups() {
    let found = crate_paths(
        "use crate::loader::x;\n// crate::client is only mentioned\nuse crate::{broker, stage::S};\nlet a = crate::warehouse::f();",
    );
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["loader", "broker", "stage", "warehouse"]);
}
