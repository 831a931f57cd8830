//! Every committed fuzz input — the corpus under `fuzz/corpus/<target>/` and each crash kept
//! under `fuzz/regressions/<target>/` — through the fuzz targets' properties, on the stable
//! toolchain: a crash found once stays a failing test until it is fixed.

use std::path::Path;

use werkfunk_faults::fuzzing;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).expect("read a corpus file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", f.display());
            n += 1;
        }
    }
    n
}

#[test]
fn rest_query_corpus() {
    assert!(replay("rest_query", fuzzing::rest_query) > 0, "the rest_query corpus is committed");
}

#[test]
fn phoenix_frames_corpus() {
    assert!(replay("phoenix_frames", fuzzing::phoenix_frames) > 0);
}

#[test]
fn jwt_verify_corpus() {
    assert!(replay("jwt_verify", fuzzing::jwt_verify) > 0);
}

#[test]
fn engine_realtime_corpus() {
    assert!(replay("engine_realtime", fuzzing::engine_realtime) > 0);
}
