//! House rules that are cheap to check: every source file says what it is for.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let root = crate::common::root();
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).expect("read").starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` line: {missing:?}");
}

#[test]
fn only_backend_files_name_an_inference_crate() {
    let root = crate::common::root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        let is_backend = f.parent().is_some_and(|p| p.ends_with("vision/backend"));
        if !is_backend {
            // `ort::` as a path, not the tail of `report::` or `sort::`.
            let names_ort = text
                .match_indices("ort::")
                .any(|(i, _)| text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_')));
            let names_openvino = text.contains("openvino::") || text.contains("openvino_sys");
            assert!(
                !names_ort && !names_openvino && !text.contains("tract_onnx"),
                "{} names an inference crate",
                f.display()
            );
        }
    }
}

/// The layers of `src/lib.rs`, lowest first. A module may use modules of its
/// own layer or below, never above; `api` and `stream` never use each other.
const LAYERS: &[&[&str]] = &[
    &["util", "plot"],
    &["decode", "vision", "gallery", "video", "metrics", "store"],
    &["biometrics", "engine"],
    &["auth", "serving", "notify", "service", "people"],
    &["config"],
    &["app", "routes"],
    &["api", "stream"],
    &["serve"],
    &["cli", "kiosk", "loadgen"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules a file names through `crate::`, including `use crate::{a, b::c}`.
fn crate_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
            }
            items.push(item);
            for it in items {
                let name: String = it.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn layers_only_point_down() {
    let root = crate::common::root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut offences = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root.join("src")).expect("under src");
        let top = rel
            .components()
            .next()
            .expect("component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let Some(mine) = layer_of(&top) else {
            offences.push(format!("{}: module {top} is in no layer of tests/it/tidy.rs", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read");
        for used in crate_modules(&text) {
            if used == top || used == "self" || used == "super" {
                continue;
            }
            match layer_of(&used) {
                Some(l) if l > mine => {
                    offences.push(format!("{}: {top} (layer {mine}) uses {used} (layer {l})", rel.display()))
                }
                Some(l)
                    if l == mine
                        && ["api", "stream"].contains(&top.as_str())
                        && ["api", "stream"].contains(&used.as_str()) =>
                {
                    offences.push(format!("{}: {top} uses {used}: api and stream stay apart", rel.display()))
                }
                _ => {}
            }
        }
    }
    assert!(offences.is_empty(), "layering broken:\n{}", offences.join("\n"));
}

#[test]
fn the_layer_check_sees_grouped_and_plain_paths() {
    let uses = crate_modules("use crate::{api::X, store::{a, b}};\nfn f() { crate::app::y(); my_crate::no(); }");
    assert_eq!(uses, ["api", "store", "app"]);
}
