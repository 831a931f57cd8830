//! The seed's main path end to end through the real server: sign up two people, start a
//! conversation, send, list with the embedded sender, mark read, count unread.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use werkfunk_testkit::TestServer;

#[tokio::test]
async fn seed_flow() {
    let server = TestServer::start().await;
    let meister = server.signup("Meister Müller", "tradesperson").await;
    let kundin = server.signup("Kundin Schmidt", "customer").await;
    let conv = server.conversation("project", Some("Bad"), &meister, &[&kundin]).await;

    let resp = server
        .request(Method::POST, "/rest/v1/messages?select=*", Some(&kundin))
        .header("prefer", "return=representation")
        .header("accept", "application/vnd.pgrst.object+json")
        .json(&json!({"conversation_id": conv, "sender_id": kundin.id, "content": "Wann kommen Sie?", "type": "text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["content"], "Wann kommen Sie?");

    let resp = server
        .request(
            Method::GET,
            &format!("/rest/v1/messages?select=*,sender:sender_id(full_name,avatar_url)&conversation_id=eq.{conv}&deleted_at=is.null&order=created_at.asc"),
            Some(&meister),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["sender"], json!({"full_name": "Kundin Schmidt", "avatar_url": null}));

    let resp =
        server.request(Method::POST, "/rest/v1/rpc/get_unread_counts", Some(&meister)).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let counts: Value = resp.json().await.unwrap();
    assert_eq!(counts, json!([{"conversation_id": conv, "unread_count": 1}]));
    server.stop().await;
}
