//! The crate's layers import one way, bottom to top (ARCHITECTURE.md, Layers): a module uses only
//! its own layer or those below. This reads every `crate::` path in the code of `src/`
//! (comments and doc links aside), resolves names the crate root re-exports to the module
//! that defines them, and fails on an upward one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Each top-level module's layer (ARCHITECTURE.md, Layers): 1 pure data, 2 stores, 3 the
/// request's state, its commit machine and their Rocket glue, 4 guards, 5 the fairing.
const LAYERS: &[(&str, u8)] = &[
    ("base64url", 1),
    ("config", 1),
    ("ended", 1),
    ("error", 1),
    ("id", 1),
    ("keys", 1),
    ("record", 1),
    ("redirect", 1),
    ("time", 1),
    ("metrics", 1),
    ("proptest_cases", 1),
    ("store", 2),
    ("testing", 2),
    ("state", 3),
    ("auth", 4),
    ("csrf", 4),
    ("flash", 4),
    ("login", 4),
    ("session", 4),
    ("fairing", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The module path of a file under `src/`: `store/file/disk.rs` is `store::file::disk`,
/// `store/file/mod.rs` is `store::file`.
fn module_path<'a>(src: &Path, file: &'a Path) -> Vec<&'a str> {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let mut path: Vec<&str> = relative
        .iter()
        .map(|part| part.to_str().expect("UTF-8 file names"))
        .collect();
    if let Some(last) = path.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(last);
        if stem != "mod" {
            path.push(stem);
        }
    }
    path
}

/// The top-level module of a file under `src/`: `store/file/disk.rs` is `store`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let first = relative.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names `lib.rs` re-exports, and the module each comes from: `pub use store::{A, B};`.
fn reexports(lib: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    let code: String = lib
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for statement in code.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.trim().rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    names
}

/// The top-level modules that `code`, in module `path` of the crate (`["store", "file"]`
/// for `src/store/file/mod.rs`), reaches: through `crate::` paths and `super::` paths that
/// climb to the crate root, in use statements (nested groups included) and expressions
/// alike. `Name` re-exported at the root counts as the module that defines it.
fn reached(code: &str, path: &[&str], roots: &HashMap<String, String>) -> Vec<String> {
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut modules = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let word_start = at == 0 || !is_ident(bytes[at - 1] as char) && bytes[at - 1] != b'$';
        // `$crate::` in a macro's body is resolved where the macro is used.
        if word_start && rest.starts_with("crate::") {
            let after = &rest["crate::".len()..];
            modules.extend(first_segments(after, roots));
            at += "crate::".len();
        } else if word_start && rest.starts_with("super::") {
            // `super::` k times from depth d (inline `mod` blocks included) is the root
            // when k reaches d.
            let mut climbs = 0;
            let mut after = rest;
            while let Some(next) = after.strip_prefix("super::") {
                climbs += 1;
                after = next;
            }
            if climbs >= path.len() + inline_depth(&code[..at]) {
                modules.extend(first_segments(after, roots));
            }
            at += "super::".len() * climbs;
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    modules
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident(s: &str) -> String {
    s.chars().take_while(|c| is_ident(*c)).collect()
}

/// The modules the path `after` (what follows `crate::`) names first: one name, or each
/// item of a group, nested groups included. A macro (`name!`) lives at the root, in no
/// layer; `*` names nothing in particular.
fn first_segments(after: &str, roots: &HashMap<String, String>) -> Vec<String> {
    let Some(group) = after.strip_prefix('{') else {
        let name = ident(after);
        if name.is_empty() || after[name.len()..].starts_with('!') {
            return Vec::new();
        }
        return vec![roots.get(&name).cloned().unwrap_or(name)];
    };
    // Each item at the group's top level: split on commas outside nested braces.
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(|item| ident(item.trim()))
        .filter(|name| !name.is_empty())
        .map(|name| roots.get(&name).cloned().unwrap_or(name))
        .collect()
}

/// How many inline `mod name {` blocks are open at the end of `code`.
fn inline_depth(code: &str) -> usize {
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod = false;
    for word in code.split(|c: char| c.is_whitespace()) {
        if word == "mod" {
            pending_mod = true;
            continue;
        }
        for c in word.chars() {
            match c {
                '{' => {
                    depth += 1;
                    if pending_mod {
                        open.push(depth);
                    }
                    pending_mod = false;
                }
                '}' => {
                    if open.last() == Some(&depth) {
                        open.pop();
                    }
                    depth = depth.saturating_sub(1);
                }
                ';' => pending_mod = false,
                _ => {}
            }
        }
    }
    open.len()
}

/// Every upward import in the crate, as `file: layer -> module (layer)`.
fn upward_imports(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let roots = reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        if module == "lib" {
            continue;
        }
        let own = layer(&module).unwrap_or_else(|| {
            panic!("{module} has no layer: add it to LAYERS here and to ARCHITECTURE.md's table of layers")
        });
        let code = std::fs::read_to_string(&file).unwrap();
        for target in reached(&code, &module_path(src, &file), &roots) {
            match layer(&target) {
                Some(theirs) if theirs > own => problems.push(format!(
                    "{}: layer {own} ({module}) imports {target} (layer {theirs})",
                    file.display()
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{}: `crate::{target}` is no module with a layer",
                    file.display()
                )),
            }
        }
    }
    problems
}

#[test]
fn modules_import_only_from_their_own_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = upward_imports(&src);
    assert!(
        problems.is_empty(),
        "upward imports:\n{}",
        problems.join("\n")
    );
}

/// The check itself: it sees an upward import in each form the crate had them in.
#[test]
fn the_check_finds_upward_imports_in_every_form() {
    let roots = reexports("pub use fairing::{Sessions, SessionsBuilder};\npub use state::Live;");
    let cases = [
        ("use crate::fairing::Shared;", "fairing"),
        ("use crate::{Sessions, store::Changes};", "fairing"),
        ("let x = crate::auth::is_local_path(p);", "auth"),
        (
            "use crate::{\n    record::reserved,\n    Live,\n};",
            "state",
        ),
    ];
    for (code, module) in cases {
        assert!(
            reached(code, &["record"], &roots).contains(&module.to_string()),
            "{code:?} reaches {module}"
        );
    }
    let nested = "use crate::{record::{reserved, Changes}, fairing::Sessions};";
    assert!(reached(nested, &["record"], &roots).contains(&"fairing".to_string()));
    // `super::` that climbs to the root, from a file and from an inline module in it.
    let climbing = "use super::fairing::Shared;";
    assert_eq!(reached(climbing, &["record"], &roots), ["fairing"]);
    assert!(reached(climbing, &["store", "file"], &roots).is_empty());
    let in_tests = "mod tests {\n    use super::super::fairing::Shared;\n}";
    assert_eq!(reached(in_tests, &["record"], &roots), ["fairing"]);
    assert!(reached("mod tests { use super::*; }", &["record"], &roots).is_empty());
    assert!(reached(
        "// see crate::fairing\n/// [`x`](crate::fairing)",
        &["record"],
        &roots
    )
    .is_empty());
    assert!(reached("crate::store_suite!(m, x)", &["record"], &roots).is_empty());
}
