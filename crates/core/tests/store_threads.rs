//! The store's threads: one named writer and named readers that end when the store is
//! dropped. Its own test binary, so no other test's store shares the process.

use std::collections::BTreeMap;

use werkfunk_core::store::{Store, READERS};

/// The names of this process's threads that belong to a store, with their counts (Linux:
/// `/proc/self/task/*/comm`).
fn store_threads() -> BTreeMap<String, usize> {
    let mut names = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        let name = comm.trim();
        if name.starts_with("store-") {
            *names.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    names
}

/// Waits (up to 10 s) until the store threads are `expected`: a new thread names itself once
/// it runs, and one that ends leaves the list once it is reaped.
async fn until_threads_are(expected: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = store_threads();
        if &now == expected || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_store_runs_one_writer_and_its_readers_on_named_threads_that_end_with_it() {
    assert!(store_threads().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let mut expected: BTreeMap<String, usize> = (0..READERS).map(|i| (format!("store-reader-{i}"), 1)).collect();
    expected.insert("store-writer".into(), 1);
    assert_eq!(until_threads_are(&expected).await, expected);
    // They answer, readers in parallel with the writer.
    let (versions, written) = tokio::join!(store.versions(), store.set_setting("k", "v"));
    versions.unwrap();
    written.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("v"));
    drop(store);
    // Dropping the store waited for its threads: none is left.
    assert_eq!(until_threads_are(&BTreeMap::new()).await, BTreeMap::new());
}
