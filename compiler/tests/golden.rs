//! Golden tests: what `pylon compile` makes of the bundled example
//! (`examples/shop`), compared byte for byte with `tests/golden/`, so any
//! change to what Pylon emits shows up in review as a change to those files.
//!
//! After an intended change, rewrite them and review the diff:
//! `UPDATE_GOLDEN=1 cargo test -p pylon --test golden` (or `make golden`).
//!
//! Two things are normalised: the output directory (absolute, so it depends
//! on the machine) reads `/OUT`, and every sealed secret's random part
//! (nonce and ciphertext, fresh on every compile) reads `<sealed>`; the key
//! id in front of it is kept.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Scratch, STAND_IN_WASM};
use pylon::commands::{compile, OutputTarget};

const SEALED: &str = "pylon-sealed:v1:";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `text` with the output directory and the random part of sealed values
/// replaced.
fn normalise(text: &str, out: &Path) -> String {
    let text = text.replace(&out.display().to_string(), "/OUT");
    let mut rest = text.as_str();
    let mut done = String::with_capacity(text.len());
    while let Some(at) = rest.find(SEALED) {
        let after = &rest[at + SEALED.len()..];
        let id_len = after.find(':').map_or(0, |i| i + 1);
        done.push_str(&rest[..at + SEALED.len() + id_len]);
        let random = after[id_len..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
            .unwrap_or(after.len() - id_len);
        done.push_str("<sealed>");
        rest = &after[id_len + random..];
    }
    done + rest
}

/// Compares `actual` with the golden file `name`, or rewrites it when
/// `UPDATE_GOLDEN` is set.
fn check(name: &str, actual: &str) {
    let golden = manifest().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&golden, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&golden).unwrap_or_default();
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             If the change is intended: UPDATE_GOLDEN=1 cargo test -p pylon --test golden",
            golden.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("<end>"),
            actual.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[test]
fn golden_the_bundled_example_compiles_to_the_checked_in_envoy_yaml_and_plan() {
    let s = Scratch::new("golden");
    let wasm = s.write("in/pylon_filter.wasm", STAND_IN_WASM);
    let out = s.path("out");
    let example = manifest().join("../examples/shop");
    compile(
        &[example],
        &out,
        Some(wasm),
        None,
        None,
        None,
        (OutputTarget::Static, None),
    )
    .expect("the example compiles");
    let out = fs::canonicalize(&out).unwrap();
    for name in ["envoy.yaml", "pylon.json"] {
        let text = fs::read_to_string(out.join(name)).unwrap();
        check(name, &normalise(&text, &out));
    }
}

#[test]
fn golden_normalising_masks_sealed_values_and_the_output_directory() {
    let out = Path::new("/tmp/x/out");
    let text = r#"{"secret":"pylon-sealed:v1:k1:AbC+/9=","wasm":"/tmp/x/out/f.wasm"}"#;
    assert_eq!(
        normalise(text, out),
        r#"{"secret":"pylon-sealed:v1:k1:<sealed>","wasm":"/OUT/f.wasm"}"#
    );
}
