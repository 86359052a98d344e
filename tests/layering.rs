//! The engine's layers, checked from the sources (docs/architecture.md describes them).
//!
//! This test reads every file under src/, extracts which module uses which (`use` trees,
//! `crate::`/`super::`/`self::` paths and paths through a child module, comments and string
//! literals ignored) and fails when:
//! - any modules of src/ form an import cycle (a file using another that, directly or not,
//!   uses it back);
//! - src/vmdk/ uses `crate::chain` or `crate::ffi`, or src/chain/ uses `crate::ffi`;
//! - anything outside src/ffi/ uses `ffi` (the C ABI is a front end, not a library): the engine
//!   in src/, the CLI (cli/src/) and the fuzz targets (fuzz/, tests/support/fuzz_harness.rs);
//! - the CLI (cli/src/) names anything of the crate but the facade its root re-exports (an
//!   engine module declared in src/lib.rs);
//! - a module of src/vmdk/ uses one of a higher layer in `VMDK_LAYERS`, or is missing from it;
//! - `unsafe` appears outside src/ffi/ (the C ABI) and src/remote/sys/ (libnbd and the system
//!   calls of the NBD client): the rest of the engine is safe Rust.
//!
//! A node is a file, except that a directory below a top-level module (src/vmdk/sparse/,
//! src/vmdk/check/) is one node: its files are one component behind one `mod.rs` and may use
//! each other freely. Inline modules (`mod tests { .. }`) belong to their file. Doc links are
//! not dependencies. Run with `LAYERING_PRINT=1 -- --nocapture` to see the graph and all cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of src/vmdk/, lowest first. A module may use modules of its own layer or lower
/// ones; a new file must be added here (the test names it when it is missing).
const VMDK_LAYERS: &[(&str, &[&str])] = &[
    (
        "on-disk primitives: files, header, descriptor, markers, grain tables, change tracking",
        &[
            "iolog",
            "fileio",
            "fd_cache",
            "atomic",
            "geometry",
            "header",
            "descriptor",
            "writeback",
            "stream_read",
            "markers",
            "grain_map",
            "track_layout",
            "track_id",
            "track",
        ],
    ),
    (
        "extents: one data file each (sparse, stream append, COWD, seSparse, flat)",
        &["stream_append", "sparse", "cowd", "sesparse", "extent"],
    ),
    (
        "link: one descriptor and its extents",
        &["link_files", "link", "peek"],
    ),
    (
        "creation and maintenance on top of links",
        &["create", "stream_writer", "grow", "rewrite", "check"],
    ),
];
#[test]
fn engine_layers_have_no_cycles_and_point_down() {
    let graph = Graph::from_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let cycles = graph.cycles();
    if std::env::var_os("LAYERING_PRINT").is_some() {
        for (from, tos) in &graph.edges {
            println!(
                "{from} -> {}",
                tos.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        for cycle in &cycles {
            println!("cycle: {}", cycle.join(" <-> "));
        }
    }
    let problems = problems(&graph, &cycles);
    assert!(
        problems.is_empty(),
        "layering problems:\n  {}",
        problems.join("\n  ")
    );
}

/// Where `unsafe` may appear (paths under src/): the C ABI, and the one module that holds
/// the NBD client's foreign calls.
const UNSAFE_ALLOWED: &[&str] = &["ffi/", "remote/sys/"];

#[test]
fn unsafe_code_is_confined_to_ffi_and_the_libnbd_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    let mut found = Vec::new();
    let mut seen_in_sys = false;
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).expect("readable source");
        let uses_unsafe = lex(&text).contains(&Tok::Ident("unsafe".into()));
        if !uses_unsafe {
            continue;
        }
        if rel.starts_with("remote/sys/") {
            seen_in_sys = true;
        }
        if !UNSAFE_ALLOWED.iter().any(|dir| rel.starts_with(dir)) {
            found.push(format!(
                "src/{rel} uses `unsafe`: only src/ffi/ and src/remote/sys/ may"
            ));
        }
    }
    // Guards the guard: the scan must see the unsafe code that does exist.
    assert!(seen_in_sys, "no `unsafe` seen in src/remote/sys/");
    assert!(
        found.is_empty(),
        "unsafe outside its modules:\n  {}",
        found.join("\n  ")
    );
}

/// The front ends' sources (outside src/) that link the engine as a Rust library.
const FRONT_ENDS: &[&str] = &[
    "cli/src",
    "fuzz/fuzz_targets",
    "tests/support/fuzz_harness.rs",
];

/// The names a source takes from the crate's root: `X` of every `vixDiskLib::X` path or
/// `use`, and the top-level items of every `use vixDiskLib::{..}` group.
fn crate_items(toks: &[Tok]) -> Vec<String> {
    let krate = Tok::Ident("vixDiskLib".into());
    let mut out = Vec::new();
    for (i, w) in toks.windows(3).enumerate() {
        if w[0] != krate || w[1] != Tok::Sep {
            continue;
        }
        if let Tok::Ident(name) = &w[2] {
            out.push(name.clone());
        } else if w[2] == Tok::Punct('{') {
            // Top-level items of the group: after its `{` or a `,` at depth 1.
            let mut depth = 0;
            for (j, t) in toks[i + 2..].iter().enumerate() {
                match t {
                    Tok::Punct('{') => depth += 1,
                    Tok::Punct('}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Ident(name) if depth == 1 => {
                        let before = &toks[i + 2 + j - 1];
                        if matches!(before, Tok::Punct('{') | Tok::Punct(',')) {
                            out.push(name.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// How often a source names the crate's `ffi` module.
fn ffi_uses(toks: &[Tok]) -> usize {
    crate_items(toks).iter().filter(|n| *n == "ffi").count()
}

/// The engine's modules: every `mod` declared in src/lib.rs except the facade's (`api`, whose
/// items the crate root re-exports).
fn engine_modules(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("src/lib.rs")).expect("readable lib.rs");
    let toks = lex(&text);
    toks.windows(2)
        .filter_map(|w| match (&w[0], &w[1]) {
            (Tok::Ident(m), Tok::Ident(name)) if m == "mod" && name != "api" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Front ends held to the facade: they may name only what the crate root re-exports. The
/// fuzz targets are not among them: they feed bytes to the on-disk parsers themselves
/// (header, descriptor, grain tables), which the facade rightly does not expose.
const FACADE_ONLY: &[&str] = &["cli/src"];

#[test]
fn the_cli_uses_only_the_facade() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = engine_modules(root);
    for m in ["vmdk", "chain", "ffi", "remote", "backend", "error", "log"] {
        assert!(modules.iter().any(|x| x == m), "lib.rs declares no `{m}`");
    }
    let mut found = Vec::new();
    for front_end in FACADE_ONLY {
        let mut files = Vec::new();
        collect_rs(&root.join(front_end), &mut files);
        assert!(!files.is_empty(), "no sources under {front_end}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for name in crate_items(&lex(&text)) {
                if modules.contains(&name) {
                    found.push(format!(
                        "{} uses vixDiskLib::{name}: front ends use only the facade at the crate root",
                        file.strip_prefix(root).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    // Guards the guard: the scan must see what it looks for.
    let seen = |text: &str| {
        crate_items(&lex(text))
            .into_iter()
            .filter(|n| modules.contains(n))
            .count()
    };
    assert_eq!(seen("use vixDiskLib::vmdk::create::DiskKind;"), 1);
    assert_eq!(seen("use vixDiskLib::{Disk, chain::files};"), 1);
    assert_eq!(seen("let k = vixDiskLib::error::Error::OutOfMemory;"), 1);
    assert_eq!(
        seen("use vixDiskLib::{Disk, DiskKind};\n// vixDiskLib::vmdk"),
        0
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn front_ends_do_not_use_the_c_abi() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for front_end in FRONT_ENDS {
        let path = root.join(front_end);
        let mut files = Vec::new();
        if path.is_dir() {
            collect_rs(&path, &mut files);
        } else if path.exists() {
            files.push(path);
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            if ffi_uses(&lex(&text)) > 0 {
                found.push(format!(
                    "{} uses vixDiskLib::ffi: front ends use the engine, not the C ABI",
                    file.strip_prefix(root).unwrap_or(&file).display()
                ));
            }
        }
    }
    // Guards the guard: the scan must see what it looks for.
    for text in [
        "use vixDiskLib::ffi::errors::to_vix;",
        "use vixDiskLib::{error::Error, ffi::x};",
        "let c = vixDiskLib::ffi::codes::VIX_OK;",
    ] {
        assert_eq!(ffi_uses(&lex(text)), 1, "{text}");
    }
    assert_eq!(
        ffi_uses(&lex("// vixDiskLib::ffi\nuse vixDiskLib::error;")),
        0
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Everything that breaks the rules in the module doc.
fn problems(graph: &Graph, cycles: &[Vec<String>]) -> Vec<String> {
    let mut found = Vec::new();
    for cycle in cycles {
        found.push(format!("cycle: {}", cycle.join(" <-> ")));
    }
    for (from, tos) in &graph.edges {
        for to in tos {
            let top = |n: &str| n.split("::").next().unwrap_or("").to_string();
            if top(from) != "ffi" && top(to) == "ffi" {
                found.push(format!(
                    "{from} uses {to}: only the C ABI itself may use ffi"
                ));
            }
            let forbidden: &[&str] = match top(from).as_str() {
                "vmdk" => &["chain", "ffi"],
                "chain" => &["ffi"],
                _ => &[],
            };
            if forbidden.contains(&top(to).as_str()) {
                found.push(format!(
                    "{from} uses {to}: a lower layer must not use a higher one"
                ));
            }
            if let (Some(a), Some(b)) = (vmdk_layer(from, &mut found), vmdk_layer(to, &mut found))
                && b > a
            {
                found.push(format!(
                    "{from} (layer {a}) uses {to} (layer {b}): move the shared part down"
                ));
            }
        }
    }
    for node in graph.edges.keys() {
        vmdk_layer(node, &mut found);
    }
    for (_, names) in VMDK_LAYERS {
        for name in *names {
            if !graph.nodes.contains(&format!("vmdk::{name}")) {
                found.push(format!(
                    "VMDK_LAYERS names vmdk::{name}, which does not exist"
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The layer index of a `vmdk::x` node; a node missing from the table is a problem.
fn vmdk_layer(node: &str, found: &mut Vec<String>) -> Option<usize> {
    let name = node.strip_prefix("vmdk::")?;
    let layer = VMDK_LAYERS
        .iter()
        .position(|(_, names)| names.contains(&name));
    if layer.is_none() {
        found.push(format!(
            "vmdk::{name} is in no layer: add it to VMDK_LAYERS"
        ));
    }
    layer
}

/// Module-level dependency graph of the crate.
struct Graph {
    nodes: BTreeSet<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn from_sources(src: &Path) -> Graph {
        let mut files = Vec::new();
        collect_rs(src, &mut files);
        // Module path of each file: src/vmdk/sparse/mod.rs -> [vmdk, sparse].
        let mut file_modules = BTreeMap::new();
        for file in &files {
            let rel = file.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let last = parts.pop().expect("file name");
            if last != "mod.rs" && last != "lib.rs" {
                parts.push(last.trim_end_matches(".rs").to_string());
            }
            file_modules.insert(parts, file.clone());
        }
        let mut modules: BTreeSet<Vec<String>> = file_modules.keys().cloned().collect();
        let mut uses = Vec::new();
        for (module, file) in &file_modules {
            let text = std::fs::read_to_string(file).expect("readable source");
            scan(&lex(&text), module, &mut modules, &mut uses);
        }
        let node_of = |path: &[String]| -> String {
            // The file that holds the longest known module prefix, cut to two levels.
            let known = (0..=path.len())
                .rev()
                .find(|&n| modules.contains(&path[..n]))
                .unwrap_or(0);
            let file = (0..=known)
                .rev()
                .find(|&n| file_modules.contains_key(&path[..n]));
            let depth = file.unwrap_or(0).min(2);
            if depth == 0 {
                "crate".to_string()
            } else {
                path[..depth].join("::")
            }
        };
        let mut graph = Graph {
            nodes: BTreeSet::new(),
            edges: BTreeMap::new(),
        };
        for module in file_modules.keys() {
            graph.nodes.insert(node_of(module));
        }
        for (from, to) in uses {
            let (from, to) = (node_of(&from), node_of(&to));
            if from != to && to != "crate" {
                graph.edges.entry(from).or_default().insert(to);
            }
        }
        graph
    }

    /// Strongly connected components with more than one node (Tarjan), each sorted.
    fn cycles(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            graph: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flatten() {
                if !s.index.contains_key(w.as_str()) {
                    visit(s, w);
                    let lw = s.low[w.as_str()];
                    s.low.insert(v, s.low[v].min(lw));
                } else if s.on_stack.contains(w.as_str()) {
                    let iw = s.index[w.as_str()];
                    s.low.insert(v, s.low[v].min(iw));
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    s.out.push(component);
                }
            }
        }
        let mut s = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in &self.nodes {
            if !s.index.contains_key(v.as_str()) {
                visit(&mut s, v);
            }
        }
        s.out
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// Identifiers and punctuation; comments, string/char literals, lifetimes and numbers dropped.
fn lex(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut toks = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                } else if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label: drop the quote and its name.
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let prefix = matches!(word.as_str(), "b" | "c" | "r" | "br" | "cr");
            if prefix && at(i) == '"' {
                i = if word.contains('r') {
                    skip_raw(&c, i, 0)
                } else {
                    skip_string(&c, i + 1)
                };
            } else if prefix && word.contains('r') && at(i) == '#' {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i = skip_raw(&c, i, hashes);
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                toks.push(Tok::Ident(word));
            }
        } else if ch == ':' && at(i + 1) == ':' {
            toks.push(Tok::Sep);
            i += 2;
        } else {
            toks.push(Tok::Punct(ch));
            i += 1;
        }
    }
    toks
}

/// Index after a `"..."` string whose body starts at `i`.
fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// Index after a raw string whose opening quote is at `i`, closed by a quote and `hashes` #.
fn skip_raw(c: &[char], mut i: usize, hashes: usize) -> usize {
    i += 1;
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Records `(using module, used path)` for every module reference in one file.
fn scan(
    toks: &[Tok],
    file_module: &[String],
    modules: &mut BTreeSet<Vec<String>>,
    uses: &mut Vec<(Vec<String>, Vec<String>)>,
) {
    // Inline modules: (path, brace depth inside them).
    let mut stack: Vec<(Vec<String>, usize)> = vec![(file_module.to_vec(), 0)];
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let current = stack.last().expect("file module").0.clone();
        match &toks[i] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if stack.len() > 1 && stack.last().is_some_and(|(_, d)| *d == depth) {
                    stack.pop();
                }
                depth -= 1;
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut path = current.clone();
                    path.push(name.clone());
                    modules.insert(path.clone());
                    depth += 1;
                    stack.push((path, depth));
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(w) if w == "use" => {
                i += 1;
                if toks.get(i) == Some(&Tok::Sep) {
                    i += 1;
                }
                let mut paths = Vec::new();
                use_tree(toks, &mut i, Vec::new(), &mut paths);
                for path in paths {
                    if let Some(abs) = absolute(&path, &current, modules) {
                        uses.push((current.clone(), abs));
                    }
                }
                continue;
            }
            Tok::Ident(first)
                if toks.get(i + 1) == Some(&Tok::Sep)
                    && toks.get(i.wrapping_sub(1)) != Some(&Tok::Sep) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Sep) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(seg)) => path.push(seg.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if let Some(abs) = absolute(&path, &current, modules) {
                    uses.push((current.clone(), abs));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Expands one `use` tree starting at `*i` into full paths (a glob or `{self}` ends at its module).
fn use_tree(toks: &[Tok], i: &mut usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(seg)) => {
                path.push(seg.clone());
                *i += 1;
                if toks.get(*i) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
                if toks.get(*i) == Some(&Tok::Ident("as".into())) {
                    *i += 2;
                }
                out.push(path);
                return;
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                while !matches!(toks.get(*i), Some(Tok::Punct('}')) | None) {
                    use_tree(toks, i, path.clone(), out);
                    if toks.get(*i) == Some(&Tok::Punct(',')) {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push(path);
                return;
            }
            _ => return,
        }
    }
}

/// The crate-absolute form of a path used in module `current`, or None when it starts outside
/// the crate (std, a dependency, or a name brought in by a `use` already counted).
fn absolute(
    path: &[String],
    current: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut base: Vec<String>;
    let mut rest = path;
    match path.first()?.as_str() {
        "crate" => {
            base = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            base = current.to_vec();
            rest = &path[1..];
        }
        "super" => {
            base = current.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        child => {
            base = current.to_vec();
            base.push(child.to_string());
            if !modules.contains(&base) {
                return None;
            }
            rest = &path[1..];
        }
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// Guards the guard: if the scanner stopped seeing references, the rules would pass vacuously.
#[test]
fn scanner_sees_known_references_and_ignores_comments_and_strings() {
    let graph = Graph::from_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for (from, to) in [
        ("vmdk::link", "vmdk::extent"),
        ("chain", "vmdk::link"),
        ("ffi::boundary", "ffi::errors"),
    ] {
        assert!(
            graph.edges.get(from).is_some_and(|t| t.contains(to)),
            "{from} -> {to} not seen"
        );
    }
    let text = "// use crate::ffi;\n/* crate::ffi::x */ let s = \"crate::ffi::y\"; \
                let c = '{'; fn f<'a>() { super::sibling::g(); }\nmod inner { use super::*; }";
    let mut modules: BTreeSet<Vec<String>> =
        [vec!["a".to_string()], vec!["sibling".to_string()]].into();
    let mut uses = Vec::new();
    scan(&lex(text), &["a".to_string()], &mut modules, &mut uses);
    let used: Vec<String> = uses.iter().map(|(_, to)| to.join("::")).collect();
    assert_eq!(used, ["sibling::g", "a"]);
}

/// The C ABI is a front end like the CLI: src/ffi/ may name, through `crate::`, only the facade
/// the crate root re-exports (and its own modules, `crate::ffi`), never an engine module.
#[test]
fn the_c_abi_uses_only_the_facade() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = engine_modules(root);
    // `crate::X` read as `vixDiskLib::X`, so the CLI's reading of paths applies unchanged.
    let items = |text: &str| {
        let toks: Vec<Tok> = lex(text)
            .into_iter()
            .map(|t| match t {
                Tok::Ident(name) if name == "crate" => Tok::Ident("vixDiskLib".into()),
                other => other,
            })
            .collect();
        crate_items(&toks)
            .into_iter()
            .filter(|n| n != "ffi" && modules.contains(n))
            .collect::<Vec<_>>()
    };
    let mut files = Vec::new();
    collect_rs(&root.join("src/ffi"), &mut files);
    assert!(files.len() > 10, "the C ABI's sources were not found");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for name in items(&text) {
            found.push(format!(
                "{} uses crate::{name}: the C ABI uses only the facade at the crate root",
                file.strip_prefix(root).unwrap_or(file).display()
            ));
        }
    }
    // Guards the guard.
    assert_eq!(items("use crate::chain::Disk;"), ["chain"]);
    assert_eq!(
        items("use crate::{Disk, error::Error};\nlet x = crate::log::warn;"),
        ["error", "log"]
    );
    assert!(items("use crate::{Disk, Error};\nuse crate::ffi::types::Bool;").is_empty());
    assert!(found.is_empty(), "{}", found.join("\n"));
}
