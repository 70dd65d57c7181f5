//! Keeps the layers of `src/` (see `docs/architecture.md`): imports point
//! down only, no module is part of an import circle, and the root of
//! `src/` stays small.
//!
//! Why a test: the layout is what lets a newcomer read the code bottom-up,
//! and one convenient import is all it takes to lose it again. Read from
//! the source text with std only: a module is a file; an import is a
//! `crate::` or `super::` path (in a `use` tree or inline) outside comments,
//! string literals and `#[cfg(test)]` items. The layer of a module is the
//! layer of its top-level folder (or root file) in [`LAYERS`]. An import
//! from one folder into another must go to a strictly lower layer; at most
//! [`MAX_UPWARD`] may go up, each marked with a comment containing
//! `upward:` (and why) on its line or on the comment lines right above it.
//!
//! `LAYOUT_SRC=path/to/src cargo test --test it layout::` checks another tree
//! (an older commit's `src/`, say).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level folder and root file of `src/`, bottom to top. A
/// module may import from a layer below its own, and from its own folder.
const LAYERS: &[(&str, u32)] = &[
    // The vocabulary: messages, ids, data, files, signals, registry, logging.
    ("core", 0),
    // Every setting and the shape of its value.
    ("config", 1),
    // The model, its artifact and baseline, its actor.
    ("model", 2),
    // The features: pure logic and actor, one folder each.
    ("source", 3),
    ("metric", 3),
    ("plot", 4),
    ("monitor", 5),
    // The I/O edges.
    ("amqp", 6),
    ("http", 7),
    ("history", 7),
    // The wiring, the benchmarks, the command line.
    ("pipeline", 8),
    ("bench", 9),
    ("cli", 10),
    ("lib", 11),
    ("main", 11),
];

/// Imports allowed to go up (each marked `upward:` where it is made).
const MAX_UPWARD: usize = 3;

/// Most `.rs` files directly in `src/`.
const MAX_ROOT_FILES: usize = 8;

#[test]
fn imports_point_down_without_circles() {
    let src = match std::env::var_os("LAYOUT_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    };
    let problems = check(&src);
    assert!(
        problems.is_empty(),
        "the layout of {} breaks its rules (docs/architecture.md):\n  {}",
        src.display(),
        problems.join("\n  ")
    );
}

/// A module (file) and what it imports.
struct Module {
    /// The source with comments, strings and `#[cfg(test)]` items blanked.
    code: String,
    /// The original text, for the `upward:` comments.
    text: String,
    /// `a/b/c` for `src/a/b/c.rs` or `src/a/b/c/mod.rs`; "" for `lib.rs`.
    path: String,
}

/// Every problem found, one line each (none: the layout holds).
fn check(src: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();

    let root_files: Vec<String> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    if root_files.len() > MAX_ROOT_FILES {
        problems.push(format!(
            "{} .rs files at the root of src/ (at most {MAX_ROOT_FILES}): {}",
            root_files.len(),
            sorted(root_files.iter().cloned()).join(" ")
        ));
    }

    let mut files = Vec::new();
    walk(src, &mut files);
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut test_only: BTreeSet<String> = BTreeSet::new();
    for file in files {
        let rel = file
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "main.rs" {
            continue; // the binary: it imports the library by name only.
        }
        let path = module_path(&rel);
        let text = std::fs::read_to_string(&file).unwrap();
        let (code, tests) = strip(&text);
        for child in tests {
            test_only.insert(join(&path, &child));
        }
        modules.insert(path.clone(), Module { code, text, path });
    }
    modules.retain(|p, _| !test_only.contains(p));

    for m in modules.values() {
        let top = top_of(&m.path);
        if !layers.contains_key(top.as_str()) {
            problems.push(format!(
                "{}: no layer for `{top}` in LAYERS (tests/it/layout.rs)",
                shown(&m.path)
            ));
        }
    }

    // edges, with the lines they are made on
    let mut edges: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for m in modules.values() {
        for (parts, line) in imports(&m.code) {
            if let Some(target) = resolve(&m.path, &parts, &modules) {
                if target != m.path && !target.is_empty() {
                    edges
                        .entry((m.path.clone(), target))
                        .or_default()
                        .push(line);
                }
            }
        }
    }

    let mut allowed = Vec::new();
    for ((from, to), lines) in &edges {
        let (a, b) = (top_of(from), top_of(to));
        let (Some(la), Some(lb)) = (layers.get(a.as_str()), layers.get(b.as_str())) else {
            continue;
        };
        if a == b || lb < la {
            continue;
        }
        let text = &modules[from].text;
        let unmarked: BTreeSet<usize> = lines
            .iter()
            .copied()
            .filter(|&l| !marked_upward(text, l))
            .collect();
        let edge = format!("{} -> {} (layer {la} -> {lb})", shown(from), shown(to));
        if unmarked.is_empty() {
            allowed.push(edge);
        } else {
            let at: Vec<String> = unmarked.iter().map(|l| (l + 1).to_string()).collect();
            problems.push(format!(
                "upward import {edge} at line {} without an `upward:` comment saying why",
                at.join(", ")
            ));
        }
    }
    if allowed.len() > MAX_UPWARD {
        problems.push(format!(
            "{} upward imports (at most {MAX_UPWARD}): {}",
            allowed.len(),
            allowed.join("; ")
        ));
    }

    for circle in circles(modules.keys().cloned().collect(), &edges) {
        problems.push(format!(
            "import circle: {}",
            circle
                .iter()
                .map(|m| shown(m))
                .collect::<Vec<_>>()
                .join(" <-> ")
        ));
    }
    problems
}

fn sorted(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v
}

fn shown(module: &str) -> String {
    match module {
        "" => "lib".to_owned(),
        m => m.to_owned(),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_path(rel: &str) -> String {
    let p = rel.strip_suffix(".rs").unwrap();
    let p = p.strip_suffix("/mod").unwrap_or(p);
    match p {
        "lib" | "mod" => String::new(),
        p => p.to_owned(),
    }
}

fn join(parent: &str, child: &str) -> String {
    match parent {
        "" => child.to_owned(),
        p => format!("{p}/{child}"),
    }
}

/// The top-level folder or root file a module is in (`lib` for lib.rs).
fn top_of(module: &str) -> String {
    match module.split('/').next() {
        Some("") | None => "lib".to_owned(),
        Some(t) => t.to_owned(),
    }
}

/// Comments and string and char literals blanked (newlines kept, so
/// offsets and lines stay), then `#[cfg(test)]` items blanked; and the
/// names of `#[cfg(test)] mod x;` declared here.
fn strip(text: &str) -> (String, Vec<String>) {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if !ident_before(b, i)
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && raw_start(b, i + 1).is_some() =>
            {
                let (hashes, body) = raw_start(b, i + 1).unwrap();
                let close = format!("\"{}", "#".repeat(hashes));
                let end = text[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '"'); otherwise a lifetime.
                let end = if b.get(i + 1) == Some(&b'\\') {
                    text[i + 2..].find('\'').map(|n| i + 2 + n + 1)
                } else {
                    let c = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + c) == Some(&b'\'')).then_some(i + 2 + c)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    let mut code = String::from_utf8(out).unwrap();
    let mut tests = Vec::new();
    while let Some(at) = code.find("#[cfg(test)]") {
        let rest = &code[at..];
        let brace = rest.find('{');
        let semi = rest.find(';');
        let end = match (brace, semi) {
            (Some(o), s) if s.is_none_or(|s| o < s) => {
                let (mut depth, mut j) = (0usize, at + o);
                let cb = code.as_bytes();
                loop {
                    match cb[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break j + 1;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            (_, Some(s)) => {
                let item = &rest[..s];
                if let Some(name) = item.split_whitespace().skip_while(|w| *w != "mod").nth(1) {
                    tests.push(name.to_owned());
                }
                at + s + 1
            }
            _ => code.len(),
        };
        let blanked: String = code[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(at..end, &blanked);
    }
    (code, tests)
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// After `r`: the number of `#` and where the raw string's body starts.
fn raw_start(b: &[u8], mut i: usize) -> Option<(usize, usize)> {
    let mut hashes = 0;
    while b.get(i) == Some(&b'#') {
        hashes += 1;
        i += 1;
    }
    (b.get(i) == Some(&b'"')).then_some((hashes, i + 1))
}

/// Every path this code names that starts with `crate`, `super` or
/// `self`, split on `::`, with the (0-based) line it is on.
fn imports(code: &str) -> Vec<(Vec<String>, usize)> {
    let line_of = |at: usize| code[..at].matches('\n').count();
    let mut out = Vec::new();
    // `use` trees, braces expanded
    let mut from = 0;
    while let Some(n) = code[from..].find("use ") {
        let at = from + n;
        from = at + 4;
        if ident_before(code.as_bytes(), at) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree = without_aliases(&code[at + 4..at + end]);
        for p in expand(&[], &tree) {
            out.push((p, line_of(at)));
        }
    }
    // paths anywhere
    let b = code.as_bytes();
    for key in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(n) = code[from..].find(key) {
            let at = from + n;
            from = at + key.len();
            if ident_before(b, at) {
                continue;
            }
            let mut end = at;
            while end < b.len()
                && (b[end].is_ascii_alphanumeric() || b[end] == b'_' || b[end] == b':')
            {
                end += 1;
            }
            let parts: Vec<String> = code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            out.push((parts, line_of(at)));
        }
    }
    out
}

/// A `use` tree without its whitespace and its `as` renames.
fn without_aliases(tree: &str) -> String {
    let mut out = String::new();
    let mut alias = false;
    for token in tree.split_whitespace() {
        if token == "as" {
            alias = true;
            continue;
        }
        if alias {
            // the new name; what follows it (`,`, `}`) stays
            out.extend(
                token
                    .chars()
                    .skip_while(|c| c.is_alphanumeric() || *c == '_'),
            );
            alias = false;
        } else {
            out.push_str(token);
        }
    }
    out
}

/// `a::{b, c::{d, e}}` as `[a, b]`, `[a, c, d]`, `[a, c, e]`.
fn expand(prefix: &[String], tree: &str) -> Vec<Vec<String>> {
    let Some(open) = tree.find('{') else {
        let mut p = prefix.to_vec();
        p.extend(
            tree.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        return vec![p];
    };
    let mut head = prefix.to_vec();
    head.extend(
        tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        if p == "self" {
            out.push(head.clone());
        } else {
            out.extend(expand(&head, p));
        }
    }
    out
}

/// The module a path names: the longest prefix that is a module file.
fn resolve(me: &str, parts: &[String], modules: &BTreeMap<String, Module>) -> Option<String> {
    let mine: Vec<&str> = me.split('/').filter(|s| !s.is_empty()).collect();
    let (mut base, rest): (Vec<&str>, &[String]) = match parts.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &parts[1..]),
        Some("super") => {
            let mut base = mine.clone();
            base.pop();
            let mut rest = &parts[1..];
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        Some("self") => (mine.clone(), &parts[1..]),
        _ => return None,
    };
    base.extend(rest.iter().map(String::as_str));
    (0..=base.len())
        .rev()
        .map(|i| base[..i].join("/"))
        .find(|m| modules.contains_key(m))
}

/// Whether line `l` (0-based) of `text`, or the comment lines right above
/// it (attributes between them allowed), say `upward:`.
fn marked_upward(text: &str, l: usize) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    if lines.get(l).is_some_and(|s| s.contains("upward:")) {
        return true;
    }
    let mut i = l;
    while i > 0 {
        i -= 1;
        let s = lines[i].trim_start();
        if s.starts_with("#[") {
            continue; // an attribute of the same item
        }
        if !s.starts_with("//") {
            return false;
        }
        if s.contains("upward:") {
            return true;
        }
    }
    false
}

/// The import circles: strongly connected groups of more than one module
/// (Tarjan's algorithm).
fn circles(nodes: Vec<String>, edges: &BTreeMap<(String, String), Vec<usize>>) -> Vec<Vec<String>> {
    let index_of: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut adj = vec![Vec::new(); nodes.len()];
    for (a, b) in edges.keys() {
        if let (Some(&i), Some(&j)) = (index_of.get(a.as_str()), index_of.get(b.as_str())) {
            adj[i].push(j);
        }
    }
    struct Tarjan<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on[v] = true;
            for &w in &self.adj[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on[w] => self.low[v] = self.low[v].min(iw),
                    _ => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut group = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on[w] = false;
                    group.push(w);
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.out.push(group);
                }
            }
        }
    }
    let n = nodes.len();
    let mut t = Tarjan {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
        .into_iter()
        .map(|g| sorted(g.into_iter().map(|i| nodes[i].clone())))
        .collect()
}
