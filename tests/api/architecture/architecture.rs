//! The layout shows the architecture (docs/architecture.md): read from the
//! code's own `crate::` paths, the top-level modules of `src/` form layers
//! with no cycle, the web kernel names no capability, and no source file is
//! over 500 lines outside its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first. A module may use its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["clock", "db", "metrics", "secrets", "text"]),
    ("kernel", &["web"]),
    ("services", &["audit", "aws", "guard", "keys", "sources"]),
    (
        "capabilities",
        &[
            "account", "admin", "auth", "contacts", "decrypt", "health", "logs", "review", "sso",
        ],
    ),
    (
        "composition",
        &["cli", "config", "demo", "preflight", "startup"],
    ),
];
const MAX_LINES: usize = 500;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its tests (by convention, a `#[cfg(test)]`
/// module at the end) and without comment lines.
fn code_outside_tests(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect()
}

/// The top-level modules named by `crate::x` and `crate::{x, y::z}` paths.
fn referenced_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            // Top-level items of the group: those at brace depth 0.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[j..]);
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn module_graph(src: &Path) -> (Graph, Vec<(PathBuf, usize)>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    let mut lengths = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = code_outside_tests(&text);
        lengths.push((
            file.clone(),
            text.lines()
                .take_while(|l| l.trim() != "#[cfg(test)]")
                .count(),
        ));
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let deps = graph.entry(top.clone()).or_default();
        for m in referenced_modules(&code.join("\n")) {
            if m != top {
                deps.insert(m);
            }
        }
    }
    (graph, lengths)
}

/// Every cycle's members (strongly connected components of more than one
/// module, or a module that uses itself through another path).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Reachability by DFS from each node: fine for a few dozen modules.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(n) = stack.pop() {
            for d in graph.get(&n).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    };
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for a in graph.keys() {
        let from_a = reach(a);
        if !from_a.contains(a) {
            continue;
        }
        let mut scc: Vec<String> = from_a
            .iter()
            .filter(|b| reach(b).contains(a))
            .cloned()
            .collect();
        scc.sort();
        found.insert(scc);
    }
    found.into_iter().collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// Edges that go up a layer, and modules in no layer.
fn layer_violations(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (m, deps) in graph {
        let Some(lm) = layer_of(m) else {
            out.push(format!(
                "src/{m} is in no layer: add it to LAYERS and docs/architecture.md"
            ));
            continue;
        };
        for d in deps {
            match layer_of(d) {
                Some(ld) if ld > lm => out.push(format!(
                    "{m} ({}) uses {d} ({}), a higher layer",
                    LAYERS[lm].0, LAYERS[ld].0
                )),
                _ => {}
            }
        }
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_top_level_modules_of_src_have_no_cycle() {
    let (graph, _) = module_graph(&repo().join("src"));
    assert!(graph.len() > 10, "the module graph was not read: {graph:?}");
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "cycles between top-level modules: {found:?}"
    );
}

#[test]
fn every_module_uses_only_its_own_layer_and_those_below() {
    let (graph, _) = module_graph(&repo().join("src"));
    let found = layer_violations(&graph);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_web_kernel_names_no_capability() {
    let (graph, _) = module_graph(&repo().join("src"));
    let foundation = LAYERS[0].1;
    let named: Vec<_> = graph["web"]
        .iter()
        .filter(|m| !foundation.contains(&m.as_str()))
        .collect();
    assert!(named.is_empty(), "src/web uses {named:?}");
}

/// The first segment of every route a capability serves, read from the
/// router's own table (`/static` is the kernel's own).
fn capability_prefixes() -> BTreeSet<String> {
    callvault::startup::route_table()
        .iter()
        .filter_map(|r| r.path.split('/').nth(1).map(|s| format!("/{s}")))
        .filter(|p| p != "/static" && p != "/")
        .collect()
}

/// Quoted paths in `text` ("/contacts", "/login?...") that start with a
/// capability's prefix.
fn capability_urls(text: &str, prefixes: &BTreeSet<String>) -> Vec<String> {
    text.split(['"', '\''])
        .filter(|s| s.starts_with('/'))
        .filter(|s| {
            prefixes.iter().any(|p| {
                s.strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
            })
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_kernel_and_the_base_layout_name_no_capabilitys_url() {
    let prefixes = capability_prefixes();
    assert!(
        prefixes.contains("/contacts") && prefixes.contains("/login"),
        "{prefixes:?}"
    );
    let mut files = Vec::new();
    rust_files(&repo().join("src/web"), &mut files);
    let mut named = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_outside_tests(&text).join("\n");
        for url in capability_urls(&code, &prefixes) {
            named.push(format!("{}: {url}", f.display()));
        }
    }
    for t in ["templates/base.html", "templates/error.html"] {
        let text = std::fs::read_to_string(repo().join(t)).unwrap();
        for url in capability_urls(&text, &prefixes) {
            named.push(format!("{t}: {url}"));
        }
    }
    assert!(
        named.is_empty(),
        "the kernel names capabilities' pages:\n{}",
        named.join("\n")
    );
    // The check itself finds one.
    assert_eq!(
        capability_urls(
            "let to = \"/login?next=x\"; let s = \"/static/app.css\";",
            &prefixes
        ),
        ["/login?next=x"]
    );
}

#[test]
fn no_source_file_is_over_500_lines_outside_its_tests() {
    let mut long = Vec::new();
    for dir in ["src", "lambda-encrypt/src"] {
        let (_, lengths) = module_graph(&repo().join(dir));
        long.extend(
            lengths
                .into_iter()
                .filter(|(_, n)| *n > MAX_LINES)
                .map(|(f, n)| format!("{} has {n} lines", f.display())),
        );
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn the_checks_find_a_cycle_a_layer_breach_and_a_kernel_naming_a_capability() {
    // The checker itself, on a made-up crate: it must be able to fail.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("web")).unwrap();
    std::fs::write(src.join("web/mod.rs"), "use crate::audit::AuditLog;\n").unwrap();
    std::fs::write(
        src.join("audit.rs"),
        "use crate::{web::AppError, auth::Role};\n#[cfg(test)]\nuse crate::startup;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("auth.rs"),
        "// crate::startup in a comment\nfn f() { crate::audit::x(); }\n",
    )
    .unwrap();
    std::fs::write(src.join("long.rs"), "fn f() {}\n".repeat(501)).unwrap();
    let (graph, lengths) = module_graph(src);
    assert_eq!(
        graph["audit"],
        BTreeSet::from(["web".to_owned(), "auth".to_owned()]),
        "test code and comments are not dependencies"
    );
    assert_eq!(graph["auth"], BTreeSet::from(["audit".to_owned()]));
    let found = cycles(&graph);
    assert!(found.contains(&vec!["audit".to_owned(), "web".to_owned()]) || !found.is_empty());
    assert!(found
        .iter()
        .any(|c| c.contains(&"auth".to_owned()) && c.contains(&"audit".to_owned())));
    let breaches = layer_violations(&graph);
    assert!(
        breaches
            .iter()
            .any(|b| b.starts_with("web (kernel) uses audit")),
        "{breaches:?}"
    );
    assert!(
        breaches
            .iter()
            .any(|b| b.contains("src/long is in no layer")),
        "{breaches:?}"
    );
    assert!(lengths
        .iter()
        .any(|(f, n)| f.ends_with("long.rs") && *n == 501));
}
