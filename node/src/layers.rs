//! Architecture invariant, checked: dependencies between the node's top-level modules point one way.
//!
//! ```text
//! domain ← faults ← config ← store ← chain ← engine ← http ← (chat, partner) ← console ← app ← cli
//! ```
//!
//! A module may use the modules to its left, never one to its right (chat and partner, on the same level, do not
//! use each other). The check reads every `crate::…` path in `node/src` (comments skipped, `use crate::{a, b}`
//! groups expanded); a path into a module that is not left of the file's own module fails the test with the file
//! and the path.
//!
//! Second invariant, checked the same way: SQL lives only in `store/` ([`sql_outside_store`]).

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first; modules in one layer may not use each other.
pub const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["faults"],
    &["config"],
    &["store"],
    &["chain"],
    &["engine"],
    &["http"],
    &["chat", "partner"],
    &["console"],
    &["app"],
    &["cli"],
    // The fuzz-target bodies (node/fuzz, node/tests/fuzz_corpus.rs): parsers of every layer, used by nothing.
    &["fuzzing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file (path relative to `src/`) belongs to; `None` for the crate roots.
fn module_of(relative: &str) -> Option<String> {
    let first = relative.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "layers")).then(|| name.to_owned())
}

/// The top-level modules named by the `crate::` paths of one file's text.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> Option<String> {
        let s = s.trim_start();
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (end > 0).then(|| s[..end].to_owned())
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::x, b}`: the first identifier of each top-level item of the group.
            let (mut depth, mut item_start) = (1usize, 0usize);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        found.extend(ident(&group[item_start..j]));
                        item_start = j + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            found.extend(ident(rest));
        }
    }
    found
}

/// Every use of a module that is not below the user: `(file, used module)`.
pub fn violations(files: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (relative, text) in files {
        let Some(module) = module_of(relative) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            out.push((
                relative.clone(),
                format!("{module} (a top-level module missing from LAYERS)"),
            ));
            continue;
        };
        for used in crate_paths(text) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(l) if l < own => {}
                _ => out.push((relative.clone(), used)),
            }
        }
    }
    out
}

/// What runs SQL: the query builders of sqlx.
const SQL_CALLS: &[&str] = &[
    "sqlx::query",
    "sqlx::raw_sql",
    "query_as(",
    "query_scalar(",
    "query_as_with(",
    "QueryBuilder",
];

/// Files outside `store/` that run SQL: `(file, the call found)`. Comments are skipped.
pub fn sql_outside_store(files: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (relative, text) in files {
        if relative.starts_with("store/") || relative == "layers.rs" {
            continue;
        }
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            if let Some(call) = SQL_CALLS.iter().find(|c| line.contains(*c)) {
                out.push((relative.clone(), (*call).to_owned()));
                break;
            }
        }
    }
    out
}

fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            read_tree(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> (String, String) {
        (path.to_owned(), text.to_owned())
    }

    #[test]
    fn node_modules_depend_one_way() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        read_tree(&root, &root, &mut files).expect("read node/src");
        assert!(files.len() > 50, "read {} files", files.len());
        let wrong = violations(&files);
        assert!(
            wrong.is_empty(),
            "imports against the layer order (file → module it must not use): {wrong:#?}"
        );
    }

    #[test]
    fn sql_lives_only_in_the_store() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        read_tree(&root, &root, &mut files).expect("read node/src");
        let wrong = sql_outside_store(&files);
        assert!(
            wrong.is_empty(),
            "SQL outside node/src/store (file → call): {wrong:#?}"
        );
    }

    #[test]
    fn sql_outside_the_store_is_caught() {
        let files = [
            file("store/users.rs", "sqlx::query(\"SELECT 1\")\n"),
            file("engine/x.rs", "let n: i64 = sqlx::query_scalar(\"SELECT 1\");\n"),
            file(
                "chat/y.rs",
                "// sqlx::query in a comment\nlet r = query_as(&sql);\n",
            ),
            file("http/z.rs", "let p = &state.db.pool;\n"),
        ];
        assert_eq!(
            sql_outside_store(&files),
            vec![
                ("engine/x.rs".to_owned(), "sqlx::query".to_owned()),
                ("chat/y.rs".to_owned(), "query_as(".to_owned()),
            ]
        );
    }

    #[test]
    fn a_wrong_import_is_caught() {
        // store using the chain module, the engine using the chat, and a grouped import of the app from http.
        let files = [
            file("store/mod.rs", "use crate::chain::ChainDb;\n"),
            file(
                "engine/ops.rs",
                "use crate::domain::X;\nfn f() { crate::chat::phone::p(); }\n",
            ),
            file(
                "http/api.rs",
                "use crate::{\n    engine::E,\n    app::{AppState, router},\n};\n",
            ),
            file("chat/mod.rs", "use crate::partner::x;\n"),
            file(
                "domain/mod.rs",
                "// crate::cli in a comment is not an import\nuse crate::domain::ids;\n",
            ),
            file("newmod/mod.rs", "use crate::domain::X;\n"),
        ];
        let wrong = violations(&files);
        let expect = |f: &str, m: &str| (f.to_owned(), m.to_owned());
        assert_eq!(
            wrong,
            vec![
                expect("store/mod.rs", "chain"),
                expect("engine/ops.rs", "chat"),
                expect("http/api.rs", "app"),
                expect("chat/mod.rs", "partner"),
                expect("newmod/mod.rs", "newmod (a top-level module missing from LAYERS)"),
            ]
        );
    }

    #[test]
    fn groups_and_nesting_are_read() {
        let paths = crate_paths("use crate::{a::{b, c}, d, e::f as g};\nlet x = crate::h::i;\n");
        assert_eq!(
            paths.into_iter().collect::<Vec<_>>(),
            ["a", "d", "e", "h"].map(String::from)
        );
    }
}
