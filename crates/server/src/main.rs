//! The `werkfunk-server` binary: `werkfunk-server` serves, `werkfunk-server keys` prints the
//! API keys for the configured secret.

use anyhow::Context;
use werkfunk_server::jwt::{self, DbRole, Keys};
use werkfunk_server::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("keys") => {
            let secret = std::env::var("WERKFUNK_JWT_SECRET").context("WERKFUNK_JWT_SECRET is not set")?;
            anyhow::ensure!(secret.len() >= 32, "WERKFUNK_JWT_SECRET must be at least 32 bytes long");
            let keys = Keys::new(&secret);
            println!("anon_key={}", keys.api_key(DbRole::Anon, jwt::now()));
            println!("service_role_key={}", keys.api_key(DbRole::ServiceRole, jwt::now()));
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!(
                "werkfunk-server [serve|keys]\n\nEnvironment: DATABASE_URL, WERKFUNK_JWT_SECRET (>= 32 bytes),\n\
                 WERKFUNK_LISTEN (default {}), WERKFUNK_JWT_EXP (seconds, default 3600)",
                werkfunk_server::config::DEFAULT_LISTEN
            );
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; try --help"),
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    tracing::info!(?config, "starting");
    let running = werkfunk_server::start(config).await?;
    running.stop_on(shutdown_signal()).await.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down, draining connections");
}
