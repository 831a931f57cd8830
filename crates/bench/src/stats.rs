//! Percentiles, rates, and what /proc says about CPU time and memory.

use std::time::Duration;

/// Latency samples in microseconds.
#[derive(Default, Clone)]
pub struct Samples {
    pub micros: Vec<u64>,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.micros.push(d.as_micros() as u64);
    }

    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The `p`-th percentile (0–100), in milliseconds.
    pub fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let mut v = self.micros.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
        v[i] as f64 / 1000.0
    }
}

/// `1.23 ms`, `456 µs`.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v < 1.0 {
        format!("{:.0} µs", v * 1000.0)
    } else if v < 100.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// `12,345`
pub fn int(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `ours / baseline` as `1.23×`.
pub fn ratio(ours: f64, baseline: f64) -> String {
    if baseline == 0.0 || ours.is_nan() || baseline.is_nan() {
        "–".into()
    } else {
        format!("{:.2}×", ours / baseline)
    }
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `(ppid, utime + stime in ticks)` from `/proc/<pid>/stat`.
fn stat(pid: &str) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    Some((f.get(1)?.parse().ok()?, f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
}

/// CPU seconds (user + system) of the server, this process and Postgres (postmaster and
/// its children), read together.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub server: f64,
    pub bench: f64,
    pub postgres: f64,
}

pub struct CpuProbe {
    server_pid: u32,
    postmaster: Option<u32>,
    ticks: f64,
}

impl CpuProbe {
    pub fn new(server_pid: u32, pg_dir: Option<&str>) -> CpuProbe {
        let postmaster = pg_dir
            .and_then(|d| std::fs::read_to_string(format!("{d}/data/postmaster.pid")).ok())
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
        CpuProbe { server_pid, postmaster, ticks: clock_ticks() }
    }

    pub fn read(&self) -> Cpu {
        let ticks = |pid: &str| stat(pid).map(|(_, t)| t).unwrap_or(0) as f64 / self.ticks;
        let mut postgres = 0.0;
        if let Some(pm) = self.postmaster {
            postgres += ticks(&pm.to_string());
            if let Ok(dir) = std::fs::read_dir("/proc") {
                for e in dir.flatten() {
                    let name = e.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if !name.bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    if let Some((ppid, t)) = stat(name) {
                        if ppid == pm {
                            postgres += t as f64 / self.ticks;
                        }
                    }
                }
            }
        }
        Cpu { server: ticks(&self.server_pid.to_string()), bench: ticks("self"), postgres }
    }

    pub fn has_postgres(&self) -> bool {
        self.postmaster.is_some()
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu { server: self.server - o.server, bench: self.bench - o.bench, postgres: self.postgres - o.postgres }
    }
}

impl Cpu {
    /// `server 1.2 s · load generator 0.8 s · Postgres 2.0 s`
    pub fn describe(&self, wall: Duration, with_postgres: bool) -> String {
        let w = wall.as_secs_f64();
        let pct = |v: f64| format!("{v:.1} s ({:.0} %)", 100.0 * v / w);
        let mut s = format!("server {} · load generator {}", pct(self.server), pct(self.bench));
        if with_postgres {
            s.push_str(&format!(" · Postgres {}", pct(self.postgres)));
        }
        s
    }
}

/// CPU seconds (user + system) of one process.
pub fn cpu_secs(pid: u32) -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    stat(&pid.to_string()).map(|(_, t)| t).unwrap_or(0) as f64 / *TICKS.get_or_init(clock_ticks)
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
