//! Helpers shared by the compiler's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes standing in for the filter module (`--wasm`).
pub const STAND_IN_WASM: &[u8] = b"\0asm\x01\0\0\0 stand-in module";

/// The seal key every test compile gets in `PYLON_SEAL_KEY` (bytes 0..32).
pub const TEST_SEAL_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `text` with the one occurrence of `from` replaced by `to`; fails the
/// test if `from` is not there exactly once.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` not once in:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct Scratch {
    pub root: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("pylon-it-{}-{n}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Scratch { root }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// Writes `files` into `defs/` plus a stand-in filter module, runs
/// `pylon compile defs --out out`; returns the output and the out path.
pub fn compile_files(s: &Scratch, files: &[(&str, &str)]) -> (Output, PathBuf) {
    for (name, text) in files {
        s.write(&format!("defs/{name}"), text);
    }
    let wasm = s.write("filter.wasm", STAND_IN_WASM);
    let out = s.path("out");
    let o = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .args([
            Path::new("compile"),
            &s.path("defs"),
            Path::new("--out"),
            &out,
            Path::new("--wasm"),
            &wasm,
        ])
        .env_remove("PYLON_WASM")
        .env("PYLON_SEAL_KEY", TEST_SEAL_KEY)
        .output()
        .expect("run pylon");
    (o, out)
}

/// `error: FILE:LINE:COLUMN: rest` as (`FILE`, `rest`) when the line and
/// column are real (1-based numbers); errors are located for editors.
pub fn split_located(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix("error: ")?;
    let (head, rest) = body.split_once(": ")?;
    let mut parts = head.rsplitn(3, ':');
    let (column, line_no, file) = (parts.next()?, parts.next()?, parts.next()?);
    let number = |s: &str| s.parse::<usize>().is_ok_and(|n| n > 0);
    (number(column) && number(line_no)).then_some((file, rest))
}

/// Whether some line of `err` is the error `FILE:LINE:COLUMN: WHAT…` with
/// `WHAT` at the start of the located part and containing `says`.
pub fn has_located(err: &str, file: &Path, what: &str, says: &str) -> bool {
    let file = file.display().to_string();
    err.lines().any(|l| {
        split_located(l).is_some_and(|(f, rest)| f == file && rest.starts_with(what))
            && l.contains(says)
    })
}

/// The plan (`pylon.json`) a compile wrote into `out`, as JSON.
pub fn written_plan(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("pylon.json")).unwrap()).unwrap()
}

/// Compiles `files` (as `compile_files`) in a new scratch directory,
/// asserts it succeeded and returns the plan it wrote.
pub fn compiled_plan(tag: &str, files: &[(&str, &str)]) -> serde_json::Value {
    let s = Scratch::new(tag);
    let (o, out) = compile_files(&s, files);
    assert_ok(&o, "compile");
    written_plan(&out)
}

/// Compiles `files` (as `compile_files`) in a new scratch directory and
/// asserts it failed and wrote nothing; returns the directory and stderr.
pub fn compile_refused(tag: &str, files: &[(&str, &str)], input: &str) -> (Scratch, String) {
    let s = Scratch::new(tag);
    let (o, out) = compile_files(&s, files);
    let err = stderr(&o);
    assert!(!o.status.success(), "accepted:\n{input}\nstderr: {err}");
    assert!(!out.exists(), "nothing is written");
    (s, err)
}

/// The run failed and printed nothing on stdout.
pub fn assert_failed_quietly(o: &Output) {
    assert!(
        !o.status.success(),
        "expected failure, stdout: {}",
        stdout(o)
    );
    assert!(stdout(o).is_empty(), "stdout: {}", stdout(o));
}

/// `err` ends in the summary of exactly `n` errors: none repeated, none
/// extra.
pub fn assert_error_count(err: &str, n: usize) {
    let count = format!("\n{n} error(s); nothing written\n");
    assert!(
        format!("\n{err}").contains(&count),
        "expected `{}` in:\n{err}",
        count.trim()
    );
}
