//! The crate's layers import one way, bottom to top (STYLE.md, Layers): a module uses only
//! its own layer or those below. This reads every `crate::` path in the code of `src/`
//! (comments and doc links aside), resolves names the crate root re-exports to the module
//! that defines them, and fails on an upward one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Each top-level module's layer: 1 pure data, 2 stores, 3 the request's state and its
/// commit plan, 4 guards, 5 the fairing.
const LAYERS: &[(&str, u8)] = &[
    ("config", 1),
    ("cookie", 1),
    ("error", 1),
    ("id", 1),
    ("record", 1),
    ("redirect", 1),
    ("secret", 1),
    ("time", 1),
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

/// The top-level modules that `code` reaches through `crate::` paths, in use statements
/// (groups included) and in expressions alike. `Name` re-exported at the root counts as
/// the module that defines it.
fn reached(code: &str, roots: &HashMap<String, String>) -> Vec<String> {
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut modules = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` in a macro's body is resolved where the macro is used.
        if code[..at].ends_with('$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let names: Vec<String> = match rest.strip_prefix('{') {
            // `crate::{a, b::c, D}`: each item's first segment.
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|item| ident(item.trim()))
                .collect(),
            // `crate::some_macro!`: exported macros live at the root, in no layer.
            None if rest[ident(rest).len()..].starts_with('!') => Vec::new(),
            None => vec![ident(rest)],
        };
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            let module = roots.get(&name).cloned().unwrap_or(name);
            modules.push(module);
        }
    }
    modules
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
            panic!("{module} has no layer: add it to tests/layers.rs and STYLE.md's list")
        });
        let code = std::fs::read_to_string(&file).unwrap();
        for target in reached(&code, &roots) {
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
        ("use crate::{Changes, Sessions};", "fairing"),
        ("let x = crate::auth::is_local_path(p);", "auth"),
        (
            "use crate::{\n    record::reserved,\n    Live,\n};",
            "state",
        ),
    ];
    for (code, module) in cases {
        assert!(
            reached(code, &roots).contains(&module.to_string()),
            "{code:?} reaches {module}"
        );
    }
    assert!(reached("// see crate::fairing\n/// [`x`](crate::fairing)", &roots).is_empty());
}
