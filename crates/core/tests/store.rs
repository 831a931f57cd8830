//! The local database on its own: migrations from an older schema, refusal of a newer one,
//! newer-wins upserts, and full-text search as German users expect it.

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;
use werkfunk_core::store::{Store, StoreError, CACHE_FILE, CACHE_VERSION, LOCAL_VERSION};
use werkfunk_protocol::rows;

fn message(id: Uuid, conversation: Uuid, content: &str, updated_secs: i64) -> rows::Message {
    let created = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    rows::Message {
        id,
        conversation_id: conversation,
        sender_id: Uuid::from_u128(7),
        content: content.into(),
        kind: "text".into(),
        attachments: json!([]),
        meta: json!({}),
        created_at: created,
        updated_at: created + chrono::Duration::seconds(updated_secs),
        deleted_at: None,
    }
}

#[tokio::test]
async fn a_cache_of_schema_1_is_migrated_and_its_messages_become_searchable() {
    let dir = tempfile::tempdir().unwrap();
    {
        // What an older build left: schema 1 (no search index) with a cached message.
        let old = rusqlite::Connection::open(dir.path().join(CACHE_FILE)).unwrap();
        old.execute_batch(include_str!("../src/store/migrations/cache/0001_initial.sql")).unwrap();
        old.execute_batch("pragma user_version = 1").unwrap();
        old.execute(
            "insert into messages (id, conversation_id, sender_id, content, kind, created_at, updated_at)
             values (?1, ?2, ?3, 'Der Fließenleger kommt um acht', 'text', '2026-01-01T08:00:00.000000Z', '2026-01-01T08:00:00.000000Z')",
            [Uuid::from_u128(1).to_string(), Uuid::from_u128(2).to_string(), Uuid::from_u128(3).to_string()],
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.versions().await.unwrap(), (CACHE_VERSION, LOCAL_VERSION));
    // Every index migration on the way (3: deleted messages blanked, 4: rank over all) kept it.
    for q in ["fliessenleger", "Fließen", "FLIESSENLEGER acht", "kommt"] {
        let hits = store.search(q, 10).await.unwrap();
        assert_eq!(hits.len(), 1, "{q}");
        assert_eq!(hits[0].content, "Der Fließenleger kommt um acht");
    }
    assert!(store.search("Maler", 10).await.unwrap().is_empty());
    drop(store);
    // Opening again is a no-op.
    assert_eq!(Store::open(dir.path()).await.unwrap().versions().await.unwrap(), (CACHE_VERSION, LOCAL_VERSION));
}

#[tokio::test]
async fn a_cache_from_a_newer_build_is_refused_not_downgraded() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).await.unwrap());
    {
        let c = rusqlite::Connection::open(dir.path().join(CACHE_FILE)).unwrap();
        c.execute_batch("pragma user_version = 99").unwrap();
    }
    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert_eq!(err.code(), "store_too_new");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CACHE_FILE), vec![0x42; 8192]).unwrap();
    let err = Store::open(dir.path()).await.unwrap_err();
    assert_eq!(err.code(), "store_corrupt");
    assert!(err.to_string().contains(CACHE_FILE), "{err}");
    // Set aside, the next open starts a fresh cache.
    let aside = Store::set_aside_cache(dir.path(), Utc::now()).unwrap().unwrap();
    assert!(aside.exists());
    assert!(Store::open(dir.path()).await.is_ok());
}

#[tokio::test]
async fn never_an_older_version_over_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (id, conv) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(store.upsert_messages(&[message(id, conv, "v2", 10)]).await.unwrap(), vec![id]);
    assert!(store.upsert_messages(&[message(id, conv, "v1", 5)]).await.unwrap().is_empty(), "older is ignored");
    assert!(store.upsert_messages(&[message(id, conv, "v2", 10)]).await.unwrap().is_empty(), "same is a no-op");
    assert_eq!(store.message(id).await.unwrap().unwrap().content, "v2");
    assert_eq!(store.upsert_messages(&[message(id, conv, "v3", 20)]).await.unwrap(), vec![id]);
    assert_eq!(store.message(id).await.unwrap().unwrap().content, "v3");
    // The index follows edits.
    assert!(store.search("v2", 10).await.unwrap().is_empty());
    assert_eq!(store.search("v3", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn history_pages_by_time_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let conv = Uuid::now_v7();
    // Same created_at for all (one server transaction): the id keeps the order.
    let msgs: Vec<rows::Message> = (0..10).map(|i| message(Uuid::now_v7(), conv, &format!("m{i}"), 0)).collect();
    store.upsert_messages(&msgs).await.unwrap();
    let last = store.messages_before(conv, None, 4).await.unwrap();
    assert_eq!(last.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["m6", "m7", "m8", "m9"]);
    let before = store.messages_before(conv, Some((last[0].created_at, last[0].id)), 4).await.unwrap();
    assert_eq!(before.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["m2", "m3", "m4", "m5"]);
}

#[tokio::test]
async fn search_finds_the_best_match_anywhere_in_the_cache_not_only_among_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let conv = Uuid::now_v7();
    // The best match was cached first (the oldest rowid); 1,500 weaker matches came after it,
    // far more than the 500 newest matches an earlier build ranked.
    let best = Uuid::now_v7();
    store.upsert_messages(&[message(best, conv, "Dachrinne Dachrinne Dachrinne", 0)]).await.unwrap();
    let weaker: Vec<rows::Message> = (0..1_500)
        .map(|i| message(Uuid::now_v7(), conv, &format!("Nachricht {i} über viele andere Dinge und einmal Dachrinne"), 0))
        .collect();
    store.upsert_messages(&weaker).await.unwrap();
    let hits = store.search("dachrinne", 5).await.unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].id, best, "ranked first although it is the oldest");
    // Among equal ranks, the newest first.
    assert_eq!(hits[1].id, weaker[1_499].id);
    // Edits and deletes keep the index exact (the index deletes by the text it indexed).
    store.upsert_messages(&[message(best, conv, "Regenrinne", 10)]).await.unwrap();
    assert_ne!(store.search("dachrinne", 5).await.unwrap()[0].id, best);
    assert_eq!(store.search("regenrinne", 5).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), vec![best]);
}

#[tokio::test]
async fn a_deleted_message_keeps_no_text_in_the_cache_nor_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (id, conv) = (Uuid::now_v7(), Uuid::now_v7());
    store.upsert_messages(&[message(id, conv, "Der Code für die Tür ist 4711", 0)]).await.unwrap();
    assert_eq!(store.search("4711", 10).await.unwrap().len(), 1);
    let mut deleted = message(id, conv, "Der Code für die Tür ist 4711", 10);
    deleted.deleted_at = Some(deleted.updated_at);
    assert_eq!(store.upsert_messages(&[deleted.clone()]).await.unwrap(), vec![id]);
    let cached = store.message(id).await.unwrap().unwrap();
    assert!(cached.deleted_at.is_some());
    assert_eq!(cached.content, "", "the text is gone from the cache");
    assert!(store.search("4711", 10).await.unwrap().is_empty(), "and from the index");
    // A server that already blanks it (content "") is the same.
    deleted.content = String::new();
    assert!(store.upsert_messages(&[deleted]).await.unwrap().is_empty());
}

#[tokio::test]
async fn reads_answer_while_a_writer_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let conv = Uuid::now_v7();
    store.upsert_messages(&[message(Uuid::now_v7(), conv, "schon da", 0)]).await.unwrap();
    // Another connection holds a write transaction open (as a long catch-up page would):
    // reads still answer, from the last commit, without waiting for it.
    let writer = rusqlite::Connection::open(dir.path().join(CACHE_FILE)).unwrap();
    writer.execute_batch("begin immediate; insert into sync_cursors (conversation_id, complete) values ('x', 0);").unwrap();
    assert_eq!(store.messages_before(conv, None, 10).await.unwrap().len(), 1);
    assert_eq!(store.search("schon", 10).await.unwrap().len(), 1);
    writer.execute_batch("rollback").unwrap();
}

#[tokio::test]
async fn an_attempt_is_recorded_before_it_begins_and_a_confirmation_rides_with_the_next() {
    use werkfunk_core::store::outbox::{Confirmation, Head, Op};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let conv = Uuid::now_v7();
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    for id in [first, second] {
        store.enqueue(id, conv, Op::Send, Some(id), &json!({"content": "Hallo"}), true).await.unwrap();
    }
    let (changed, head) = store.begin_attempt(conv, None).await.unwrap();
    assert!(changed.is_empty());
    let Head::Begun(entry) = head else { panic!("{head:?}") };
    assert_eq!((entry.id, entry.attempts), (first, 1));
    // Recorded in the file, not only in the answer: a crash now leaves it "tried".
    assert_eq!(store.outbox_entry(first).await.unwrap().unwrap().attempts, 1);
    assert!(!store.cancel_untried(first, first).await.unwrap(), "a begun send is not cancelled in place");
    assert!(!store.rewrite_untried(first, &json!({"content": "anders"})).await.unwrap());

    // The first is confirmed with the server's row in the transaction that begins the second.
    let row = message(first, conv, "Hallo", 0);
    let confirmation = Confirmation { entry: first, message: Some(row), member: None };
    let (changed, head) = store.begin_attempt(conv, Some(confirmation)).await.unwrap();
    assert_eq!(changed, vec![first]);
    let Head::Begun(entry) = head else { panic!("{head:?}") };
    assert_eq!((entry.id, entry.attempts), (second, 1));
    assert_eq!(store.outbox_entries().await.unwrap().iter().map(|e| e.id).collect::<Vec<_>>(), vec![second]);
    assert_eq!(store.message(first).await.unwrap().unwrap().content, "Hallo");

    let changed = store.confirm(Confirmation { entry: second, message: None, member: None }).await.unwrap();
    assert!(changed.is_empty());
    assert_eq!(store.begin_attempt(conv, None).await.unwrap().1, Head::Empty);
    assert_eq!(store.unsent_count().await.unwrap(), 0);
}
