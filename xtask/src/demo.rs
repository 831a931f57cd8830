//! `cargo xtask demo`: a private Postgres under `.data/`, the server on the default address,
//! two app windows (the tradesperson's and the customer's, each its own profile),
//! a tradesperson and a customer with a project conversation, and their logins printed.

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use werkfunk_testkit::cluster::Cluster;

use crate::process::Guarded;
use crate::test::{create_database, server_binary, start_server_via};
use crate::{root, setup, ui};

/// The default address of `werkfunk-server` and of the app.
const PORT: u16 = 54321;
const PASSWORD: &str = "werkfunk-demo";

struct Account {
    email: &'static str,
    name: &'static str,
    role: &'static str,
}

const TRADESPERSON: Account = Account { email: "meister@werkfunk.test", name: "Meister Müller", role: "tradesperson" };
const CUSTOMER: Account = Account { email: "kundin@werkfunk.test", name: "Kundin Schmidt", role: "customer" };

/// The demo's JWT secret: made once, kept beside the cluster.
fn secret(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &secret)?;
    Ok(secret)
}

pub fn run(_args: &[String]) -> Result<()> {
    setup::debian()?;
    let data = root().join(".data");
    std::fs::create_dir_all(&data)?;
    let cluster = Cluster::start_persistent(&data.join("pg")).context("starting the demo cluster")?;
    let secret = secret(&data)?;
    let binary = server_binary(false)?;
    create_database(&cluster, "werkfunk")?;
    let server = start_server_via(Command::new(&binary), &binary, &cluster, "werkfunk", &secret, PORT, &[])?;
    let (url, anon) = (server.url.clone(), server.anon_key.clone());
    let mut server = server.guard;

    let meister = sign_in_or_up(&url, &anon, &TRADESPERSON)?;
    let kundin = sign_in_or_up(&url, &anon, &CUSTOMER)?;
    let conversation = project_conversation(&url, &anon, &meister, &kundin)?;

    println!("\nWerkfunk demo is running.");
    println!("  WERKFUNK_URL={url}");
    println!("  WERKFUNK_ANON_KEY={anon}");
    println!("  tradesperson: {} / {PASSWORD}  ({})", TRADESPERSON.email, TRADESPERSON.name);
    println!("  customer:     {} / {PASSWORD}  ({})", CUSTOMER.email, CUSTOMER.name);
    println!("  project conversation: {conversation}");
    println!("  Postgres: {} (data in {})", cluster.url("werkfunk"), cluster.dir().display());
    let _apps = open_apps(&url, &anon)?;
    println!("Press Ctrl-C to stop.");
    // Ctrl-C or SIGTERM ends the loop, so that the server and the cluster stop on drop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)).context("installing the signal handler")?;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if !server_alive(&mut server) {
            anyhow::bail!("the server exited");
        }
    }
    println!("stopping");
    server.stop();
    drop(cluster);
    Ok(())
}

/// Opens the app twice, signed in as the tradesperson and as the customer, each with its own
/// profile under `.data/profiles/` (signed in once through `werkfunk-cli`, which uses the same
/// engine and profile layout). Without a display there is nothing to open.
fn open_apps(url: &str, anon: &str) -> Result<Vec<Guarded>> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        println!("  (no display: the app windows are not opened; run `cargo run -p werkfunk-desktop` on a desktop)");
        return Ok(Vec::new());
    }
    ui::build()?;
    let app = ui::app_binary(false)?;
    crate::process::run(
        "cargo build werkfunk-cli",
        Command::new(env!("CARGO")).args(["build", "-p", "werkfunk-cli"]).current_dir(root()),
    )?;
    let cli = crate::test::target_dir().join("debug").join("werkfunk-cli");
    let mut apps = Vec::new();
    for (account, folder) in [(&TRADESPERSON, "meister"), (&CUSTOMER, "kundin")] {
        let profile = root().join(".data/profiles").join(folder);
        let signed_in = Command::new(&cli)
            .arg("--profile")
            .arg(&profile)
            .args(["--url", url, "--anon-key", anon, "login", "--email", account.email, "--password", PASSWORD])
            .stdout(std::process::Stdio::null())
            .status()?
            .success();
        if !signed_in {
            println!("  could not sign {} in; the window shows the sign-in", account.name);
        }
        let mut cmd = Command::new(&app);
        cmd.arg("--profile").arg(&profile).args(["--url", url, "--anon-key", anon]);
        apps.push(Guarded::spawn("werkfunk (app)", &mut cmd)?);
        println!("  app window: {} (profile {})", account.name, profile.display());
    }
    Ok(apps)
}

fn server_alive(server: &mut Guarded) -> bool {
    std::path::Path::new(&format!("/proc/{}", server.id())).exists()
}

const PROJECT: &str = "Badsanierung Schmidt";

/// The demo's project conversation: the one from an earlier run, else a new one.
fn project_conversation(url: &str, anon: &str, owner: &Value, member: &Value) -> Result<Value> {
    let bearer = format!("Bearer {}", owner["access_token"].as_str().unwrap_or_default());
    let existing: Value = ureq::get(&format!("{url}/rest/v1/conversations"))
        .query("select", "id")
        .query("type", "eq.project")
        .query("title", &format!("eq.{PROJECT}"))
        .set("apikey", anon)
        .set("authorization", &bearer)
        .call()
        .context("looking for the demo conversation")?
        .into_json()?;
    if let Some(id) = existing.get(0).and_then(|c| c.get("id")) {
        return Ok(id.clone());
    }
    let created = ureq::post(&format!("{url}/rest/v1/rpc/create_conversation"))
        .set("apikey", anon)
        .set("authorization", &bearer)
        .send_json(json!({"p_type": "project", "p_title": PROJECT, "p_member_ids": [member["user"]["id"]]}))
        .context("creating the demo conversation")?;
    Ok(created.into_json()?)
}

fn sign_in_or_up(url: &str, anon: &str, account: &Account) -> Result<Value> {
    let login = ureq::post(&format!("{url}/auth/v1/token?grant_type=password"))
        .set("apikey", anon)
        .send_json(json!({"email": account.email, "password": PASSWORD}));
    if let Ok(r) = login {
        return Ok(r.into_json()?);
    }
    let signup = ureq::post(&format!("{url}/auth/v1/signup"))
        .set("apikey", anon)
        .send_json(json!({"email": account.email, "password": PASSWORD,
                          "data": {"full_name": account.name, "role": account.role}}))
        .with_context(|| format!("signing up {}", account.email))?;
    Ok(signup.into_json()?)
}
