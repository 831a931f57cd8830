//! A blank Tauri v2 window built from the same dependencies as the app: the memory and
//! start-up floor that `cargo xtask bench desktop` measures Werkfunk against.

fn main() {
    tauri::Builder::default()
        .setup(|app| {
            let page = "data:text/html,<!doctype html><title>blank</title>".parse().expect("a data URL");
            tauri::WebviewWindowBuilder::new(app, "main", tauri::WebviewUrl::External(page))
                .title("blank")
                .inner_size(1280.0, 800.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the blank window could not be created");
}
