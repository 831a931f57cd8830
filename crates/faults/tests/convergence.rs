//! The short convergence run (one minute of faults, about two and a half in all): clients through the fault proxy while the
//! server is killed and restarted, Postgres restarts, connections are cut mid-body and
//! mid-frame, a client is killed mid-outbox and another stopped past its heartbeat; then
//! nothing lost, nothing duplicated, order kept, edits applied, caches equal to the server.
//!
//! `WERKFUNK_FAULTS_SEED=<seed>` replays a run; `WERKFUNK_FAULTS_SECS` sets its length.

use werkfunk_faults::convergence::{self, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_converge_under_faults() {
    let settings = Settings::from_env(60);
    let seed = settings.seed;
    let report = convergence::run(settings).await.expect("the run could be set up");
    let summary = report.to_json();
    println!("{summary:#}");
    if let Ok(path) = std::env::var("WERKFUNK_FAULTS_REPORT") {
        std::fs::write(&path, format!("{summary:#}\n")).expect("write the report");
    }
    assert!(report.sent_confirmed > 0, "nothing was sent (seed {seed})");
    assert!(report.faults.total() > 0, "no fault was injected (seed {seed})");
    assert!(report.is_clean(), "broken promises (replay with WERKFUNK_FAULTS_SEED={seed}):\n{}", report.failures.join("\n"));
}
