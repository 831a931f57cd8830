//! `cargo xtask bench [rest]`: benchmarks, each beside its baseline in the same run.

use anyhow::{bail, Result};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None | Some("rest") => {
            bail!("the rest benchmark is not written yet")
        }
        Some(other) => bail!("unknown benchmark {other:?}; known: rest"),
    }
}
