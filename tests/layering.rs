//! Imports only go down: no two source files of a crate (`core/src`,
//! `preload/src`, `src`) import each other, directly or round a longer
//! circle. A circle between files is where a change to one cannot be
//! understood without the other; the tree was cleared of them once, and
//! this keeps it so.
//!
//! The graph is read from the source as text: every `use crate::…`,
//! `use super::…` and `use self::…` (with `{…}` groups expanded) and every
//! such path written inline in code, each resolved to the deepest file
//! module it names. A module's own `mod child;` and `pub use child::…`
//! re-exports are not edges: a parent that declares and re-exports its
//! children while they use what it defines is the ordinary shape of a Rust
//! module, not a circle between peers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `source`, by the module path it defines.
fn modules(source: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut pending = vec![source.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("source directory reads") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "rs") {
                continue;
            }
            let relative = path.strip_prefix(source).unwrap().with_extension("");
            let mut module: Module = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if module == ["lib"] || module == ["main"] || module.last().unwrap() == "mod" {
                module.pop();
            }
            found.insert(module, path);
        }
    }
    found
}

/// The text with comments and string and character literals blanked, so
/// that paths in them are not read as imports.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut code = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        let rest = &text[at..];
        if rest.starts_with("//") {
            at += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            at += rest.find("*/").map_or(rest.len(), |end| end + 2);
        } else if rest.starts_with("'\"'") || rest.starts_with("'\\\"'") {
            // A character literal of a quote: not the start of a string.
            at += rest[1..].find('\'').unwrap() + 2;
        } else if let Some(hashes) = rest.strip_prefix('r').and_then(raw_string_hashes) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 1 + hashes + 1;
            at += rest[body..]
                .find(&close)
                .map_or(rest.len(), |end| body + end + close.len());
            code.push_str("\"\"");
        } else if rest.starts_with('"') {
            let mut end = 1;
            while end < rest.len() && rest.as_bytes()[end] != b'"' {
                end += if rest.as_bytes()[end] == b'\\' { 2 } else { 1 };
            }
            at += (end + 1).min(rest.len());
            code.push_str("\"\"");
        } else {
            let character = rest.chars().next().unwrap();
            code.push(character);
            at += character.len_utf8();
        }
    }
    code
}

/// How many `#` open a raw string that `after_r` (the text after an `r`)
/// begins, if it begins one.
fn raw_string_hashes(after_r: &str) -> Option<usize> {
    let hashes = after_r.bytes().take_while(|&byte| byte == b'#').count();
    after_r[hashes..].starts_with('"').then_some(hashes)
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (renames dropped).
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 1..tree.rfind('}').unwrap()]);
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for character in inner.chars() {
        match character {
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => {
                depth += (character == '{') as i32 - (character == '}') as i32;
                current.push(character);
            }
        }
    }
    parts.push(current);
    parts
        .iter()
        .filter(|part| !part.trim().is_empty())
        .flat_map(|part| {
            expand(part)
                .into_iter()
                .map(move |path| format!("{prefix}{path}"))
        })
        .collect()
}

/// Paths that start at `crate`, `super` or `self`: in `use` items and
/// written inline.
fn local_paths(code: &str) -> Vec<String> {
    let is_ident = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0 || !is_ident(bytes[at - 1]);
        let rest = &code[at..];
        if starts_word && rest.starts_with("use ") {
            let end = rest.find(';').unwrap_or(rest.len());
            let tree = rest[4..end].trim();
            if ["crate::", "super::", "self::"]
                .iter()
                .any(|root| tree.starts_with(root))
            {
                paths.extend(expand(tree));
            }
            at += end;
            continue;
        }
        if starts_word
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|root| rest.starts_with(root))
        {
            let end = rest
                .bytes()
                .position(|byte| !(is_ident(byte) || byte == b':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].trim_end_matches(':').to_string());
            at += end;
            continue;
        }
        at += 1;
    }
    paths
}

/// The file module a path from `module` names, if it is one of `files`.
fn target(files: &BTreeMap<Module, PathBuf>, module: &Module, path: &str) -> Option<Module> {
    let mut segments = path
        .split("::")
        .filter(|segment| !segment.is_empty())
        .peekable();
    let mut base = module.clone();
    if segments.peek() == Some(&"crate") {
        base.clear();
        segments.next();
    }
    while let Some(&segment) = segments.peek() {
        match segment {
            "super" => drop(base.pop()),
            "self" => {}
            _ => break,
        }
        segments.next();
    }
    base.extend(segments.map(str::to_string));
    (0..=base.len())
        .rev()
        .map(|length| base[..length].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// One circle of imports among `graph`'s files, if there is one.
fn find_circle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        node: &Module,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(start) = path.iter().position(|on_path| on_path == node) {
            return Some(path[start..].to_vec());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        path.push(node.clone());
        for next in &graph[node] {
            if let Some(circle) = visit(graph, next, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

fn assert_no_circle(crate_source: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(crate_source);
    let files = modules(&source);
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &files {
        let code = code_only(&fs::read_to_string(path).expect("source reads"));
        let imports = graph.entry(module.clone()).or_default();
        for local in local_paths(&code) {
            if let Some(imported) = target(&files, module, &local) {
                if &imported != module {
                    imports.insert(imported);
                }
            }
        }
    }
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(
        files.len() > 10 && edges > files.len(),
        "{crate_source}: read {edges} imports"
    );
    if let Some(circle) = find_circle(&graph) {
        let names: Vec<_> = circle
            .iter()
            .map(|module| {
                files[module]
                    .strip_prefix(&source)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        panic!(
            "{crate_source}: files import each other in a circle: {}",
            names.join(" → ")
        );
    }
}

#[test]
fn core_files_import_only_downwards() {
    assert_no_circle("core/src");
}

#[test]
fn preload_files_import_only_downwards() {
    assert_no_circle("preload/src");
}

#[test]
fn cli_files_import_only_downwards() {
    assert_no_circle("src");
}

#[test]
fn the_reader_sees_a_circle() {
    let code = code_only(
        "use super::b::{One, two::Three};\nfn f() { crate::a::g(); } // crate::c\n\"crate::d\"",
    );
    assert_eq!(
        local_paths(&code),
        ["super::b::One", "super::b::two::Three", "crate::a::g"]
    );
    let graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::from([
        (vec!["a".into()], BTreeSet::from([vec!["b".into()]])),
        (vec!["b".into()], BTreeSet::from([vec!["a".into()]])),
    ]);
    assert!(find_circle(&graph).is_some());
}
