//! The daemon's modules depend one way, as lib.rs describes: config and
//! model at the bottom, then sources and enrichment, then state, then the
//! history store, then sinks, then the daemon that wires them. Every `crate::` path in a file must name
//! a layer below the file's own (or its own). Needs no root.

use std::{collections::BTreeSet, fs, path::Path};

/// Top-level modules and their layer; a module may use only lower layers
/// and its own.
const LAYERS: &[(&str, u8)] = &[
    ("lock", 0),
    ("config", 0),
    ("model", 0),
    ("sources", 1),
    ("enrich", 1),
    ("state", 2),
    ("alerts", 3),
    ("history", 3),
    ("sinks", 4),
    ("daemon", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::x`, also inside `use crate::{x::.., y::..}`.
fn crate_references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A top-level item of the group starts the text or follows a comma at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        found.insert(ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let module = top.trim_end_matches(".rs");
        let Some(own) = layer(module) else { continue }; // lib.rs and main.rs see everything
        let text = fs::read_to_string(&file).expect("readable source file");
        for used in crate_references(&text) {
            match layer(&used) {
                Some(l) if l < own || used == module => {}
                // Re-exports at the crate root (the kernel objects) count as sources.
                None if used == "ebpf_object" || used == "baseline_object" => {}
                _ => wrong.push(format!("{}: uses crate::{used}", relative.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "dependencies against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn references_are_found_in_groups_and_paths() {
    let text = "use crate::{model::{Event, Origin}, sources::kernel};\nlet x = crate::lock::lock(&m);";
    let found: Vec<_> = crate_references(text).into_iter().collect();
    assert_eq!(found, ["lock", "model", "sources"]);
}
