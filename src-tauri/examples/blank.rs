//! A blank Tauri v2 window built from the same dependencies as the app: the memory and
//! start-up floor that `cargo xtask bench desktop` measures Werkfunk against. Its page comes
//! from a scheme of its own (the app's asset server would answer any path with the app's UI).

fn main() {
    tauri::Builder::default()
        .register_uri_scheme_protocol("blank", |_ctx, _request| {
            tauri::http::Response::builder()
                .header("content-type", "text/html")
                .body(b"<!doctype html><title>blank</title>".to_vec())
                .expect("a static response")
        })
        .setup(|app| {
            let page = "blank://localhost/".parse().expect("a URL");
            tauri::WebviewWindowBuilder::new(app, "main", tauri::WebviewUrl::CustomProtocol(page))
                .title("blank")
                .inner_size(1280.0, 800.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the blank window could not be created");
}
