//! The server's limits through the real server (issue "Server hardening"): every refusal is
//! asserted on its status and its code in the client's shape (PostgREST, GoTrue or Phoenix),
//! and every test then shows that the server still serves others (health, a normal query, a
//! member's delivery).

use reqwest::{Method, StatusCode};
use serde_json::Value;
use werkfunk_testkit::{TestServer, TestUser};

/// `GET /health` answers 200.
async fn healthy(server: &TestServer) {
    let resp = server.http.get(format!("{}/health", server.url)).send().await.expect("health request");
    assert_eq!(resp.status(), StatusCode::OK, "the server still answers /health");
}

/// A member reads their own conversation's messages: 200 with an array.
async fn serves_a_normal_query(server: &TestServer, user: &TestUser) {
    let resp = server
        .request(Method::GET, "/rest/v1/conversations?select=id,type&order=updated_at.desc&limit=5", Some(user))
        .send()
        .await
        .expect("normal query");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body.is_array(), "{body}");
}

async fn expect_rest_error(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let body: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "{body}");
    for key in ["message", "details", "hint"] {
        assert!(body.get(key).is_some(), "PostgREST's error carries {key}: {body}");
    }
    body
}

// ---------------------------------------------------------------------------------------------
// 1. Parser nesting and size limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deeply_nested_queries_are_refused_and_the_server_lives_on() {
    let server = TestServer::start().await;
    let (alice, _bob, _conv) = server.alice_and_bob().await;

    // The review's crash: 1,500 nested `or` groups with the anon key (a 6 KB URL).
    let deep_or = format!("({}id.eq.1{})", "or(".repeat(1500), ")".repeat(1500));
    let resp =
        server.request(Method::GET, "/rest/v1/profiles", None).query(&[("or", deep_or.as_str())]).send().await.expect("the server answers");
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // And 8,000 nested embeds in `select`.
    let deep_select = format!("{}id{}", "a(".repeat(8000), ")".repeat(8000));
    let resp = server
        .request(Method::GET, "/rest/v1/profiles", Some(&alice))
        .query(&[("select", deep_select.as_str())])
        .send()
        .await
        .expect("the server answers");
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // Nested `and` inside a negated `or`, and a too-wide flat tree, the same.
    let deep_and = format!("({}id.eq.1{})", "not.and(".repeat(40), ")".repeat(40));
    let resp = server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", deep_and.as_str())]).send().await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;
    let wide = format!("({})", vec!["id.eq.1"; 1001].join(","));
    let resp = server.request(Method::GET, "/rest/v1/profiles", Some(&alice)).query(&[("or", wide.as_str())]).send().await.unwrap();
    expect_rest_error(resp, StatusCode::BAD_REQUEST, "PGRST100").await;

    // A nesting supabase-js users write is still fine.
    let resp = server
        .request(
            Method::GET,
            "/rest/v1/profiles?select=id&or=(full_name.eq.Alice,and(role.eq.customer,or(full_name.eq.Bob,full_name.eq.Eve)))",
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap().as_array().map(Vec::len), Some(2));

    healthy(&server).await;
    serves_a_normal_query(&server, &alice).await;
    server.stop().await;
}
