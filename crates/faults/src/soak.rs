//! The connection soak's measurements: a server process's resident memory and open file
//! descriptors read from `/proc/<pid>` (Linux), the samples as CSV and as an SVG line chart,
//! and the verdict "no growth beyond 10 % after warm-up".
//!
//! The load itself is the `werkfunk-soak` binary (`src/bin/werkfunk-soak.rs`), started by
//! `cargo xtask soak connections`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// One sample of the server process, with the load generator's counters at that moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub elapsed: Duration,
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: u64,
    /// Websockets open on the load generator's side.
    pub connections: u64,
    pub messages_sent: u64,
    /// `postgres_changes` frames received, over all connections.
    pub deliveries: u64,
    pub broadcasts_sent: u64,
    pub presence_tracks: u64,
    pub sign_ins: u64,
    pub refreshes: u64,
    /// Failed requests, refused joins, sockets lost.
    pub errors: u64,
}

/// `VmRSS` (KiB) and the number of open descriptors of process `pid`.
pub fn read_process(pid: u32) -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS line"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok((rss, fds))
}

pub const CSV_HEADER: &str =
    "elapsed_s,rss_kib,fds,connections,messages_sent,deliveries,broadcasts_sent,presence_tracks,sign_ins,refreshes,errors";

pub fn csv_line(s: &Sample) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        s.elapsed.as_secs(),
        s.rss_kib,
        s.fds,
        s.connections,
        s.messages_sent,
        s.deliveries,
        s.broadcasts_sent,
        s.presence_tracks,
        s.sign_ins,
        s.refreshes,
        s.errors
    )
}

/// How one series moved after warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Median of the samples in the minute after warm-up.
    pub after_warm_up: f64,
    /// Median of the last minute's samples.
    pub at_end: f64,
    /// Largest sample after warm-up.
    pub max: f64,
}

impl Growth {
    /// Relative growth from the end of warm-up to the end, in percent.
    pub fn percent(&self) -> f64 {
        if self.after_warm_up == 0.0 {
            return 0.0;
        }
        (self.at_end / self.after_warm_up - 1.0) * 100.0
    }
}

/// The soak's verdict over its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub rss: Growth,
    pub fds: Growth,
    /// The largest growth allowed, in percent.
    pub limit: f64,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.rss.percent() <= self.limit && self.fds.percent() <= self.limit
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn growth(samples: &[Sample], warm_up: Duration, value: impl Fn(&Sample) -> f64) -> Growth {
    let minute = Duration::from_secs(60);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.elapsed >= warm_up).collect();
    let end = after.last().map(|s| s.elapsed).unwrap_or_default();
    Growth {
        after_warm_up: median(after.iter().filter(|s| s.elapsed < warm_up + minute).map(|s| value(s)).collect()),
        at_end: median(after.iter().filter(|s| s.elapsed + minute > end).map(|s| value(s)).collect()),
        max: after.iter().map(|s| value(s)).fold(0.0, f64::max),
    }
}

/// Compares the minute after `warm_up` with the last minute, for RSS and descriptors.
pub fn verdict(samples: &[Sample], warm_up: Duration, limit_percent: f64) -> Verdict {
    Verdict {
        rss: growth(samples, warm_up, |s| s.rss_kib as f64),
        fds: growth(samples, warm_up, |s| s.fds as f64),
        limit: limit_percent,
    }
}

/// A line chart of RSS (MiB, left axis) and open descriptors (right axis) over minutes, with
/// the end of warm-up marked: plain SVG, no script, no external resource.
pub fn svg(samples: &[Sample], warm_up: Duration, title: &str) -> String {
    let (w, h) = (900.0, 420.0);
    let (left, right, top, bottom) = (70.0, 70.0, 50.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let t_max = samples.iter().map(|s| s.elapsed.as_secs_f64()).fold(60.0, f64::max);
    let rss_max = nice(samples.iter().map(|s| s.rss_kib as f64 / 1024.0).fold(1.0, f64::max) * 1.15);
    let fd_max = nice(samples.iter().map(|s| s.fds as f64).fold(1.0, f64::max) * 1.15);
    let x = |t: f64| left + t / t_max * pw;
    let y = |v: f64, max: f64| top + ph - v / max * ph;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#, w / 2.0, escape(title));
    // Grid and axes.
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let gy = top + ph - f * ph;
        let _ = writeln!(out, r##"<line x1="{left}" y1="{gy:.1}" x2="{}" y2="{gy:.1}" stroke="#ddd"/>"##, left + pw);
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#1f5fa8">{:.0}</text>"##,
            left - 6.0,
            gy + 4.0,
            f * rss_max
        );
        let _ = writeln!(out, r##"<text x="{}" y="{:.1}" fill="#b8541b">{:.0}</text>"##, left + pw + 6.0, gy + 4.0, f * fd_max);
    }
    let minutes = (t_max / 60.0).ceil() as u64;
    let step = (minutes / 10).max(1);
    for m in (0..=minutes).step_by(step as usize) {
        let gx = x(m as f64 * 60.0);
        if gx > left + pw + 0.5 {
            break;
        }
        let _ = writeln!(out, r##"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{}" stroke="#999"/>"##, top + ph, top + ph + 4.0);
        let _ = writeln!(out, r#"<text x="{gx:.1}" y="{}" text-anchor="middle">{m}</text>"#, top + ph + 18.0);
    }
    let _ = writeln!(out, r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##);
    let _ = writeln!(out, r#"<text x="{}" y="{}" text-anchor="middle">minutes</text>"#, left + pw / 2.0, h - 10.0);
    let _ = writeln!(
        out,
        r##"<text x="18" y="{}" text-anchor="middle" fill="#1f5fa8" transform="rotate(-90 18 {})">RSS (MiB)</text>"##,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#b8541b" transform="rotate(90 {} {})">open file descriptors</text>"##,
        w - 18.0,
        top + ph / 2.0,
        w - 18.0,
        top + ph / 2.0
    );
    // Warm-up mark.
    let wx = x(warm_up.as_secs_f64().min(t_max));
    let _ =
        writeln!(out, r##"<line x1="{wx:.1}" y1="{top}" x2="{wx:.1}" y2="{}" stroke="#888" stroke-dasharray="4 4"/>"##, top + ph);
    let _ = writeln!(out, r##"<text x="{:.1}" y="{}" fill="#666">end of warm-up</text>"##, wx + 4.0, top + 14.0);
    // The two series.
    let line = |value: &dyn Fn(&Sample) -> f64, max: f64| {
        samples.iter().map(|s| format!("{:.1},{:.1}", x(s.elapsed.as_secs_f64()), y(value(s), max))).collect::<Vec<_>>().join(" ")
    };
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="{}"/>"##,
        line(&|s| s.rss_kib as f64 / 1024.0, rss_max)
    );
    let _ = writeln!(
        out,
        r##"<polyline fill="none" stroke="#b8541b" stroke-width="2" points="{}"/>"##,
        line(&|s| s.fds as f64, fd_max)
    );
    // Legend.
    let _ = writeln!(
        out,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#1f5fa8" stroke-width="2"/>"##,
        left + 10.0,
        top + 30.0,
        left + 40.0,
        top + 30.0
    );
    let _ = writeln!(out, r#"<text x="{}" y="{}">server RSS</text>"#, left + 46.0, top + 34.0);
    let _ = writeln!(
        out,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#b8541b" stroke-width="2"/>"##,
        left + 10.0,
        top + 48.0,
        left + 40.0,
        top + 48.0
    );
    let _ = writeln!(out, r#"<text x="{}" y="{}">server open descriptors</text>"#, left + 46.0, top + 52.0);
    out.push_str("</svg>\n");
    out
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice(v: f64) -> f64 {
    let p = 10f64.powf(v.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|c| *c >= v).unwrap_or(10.0 * p)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Writes the CSV and the SVG next to each other.
pub fn write(dir: &Path, stem: &str, samples: &[Sample], warm_up: Duration, title: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = String::from(CSV_HEADER);
    csv.push('\n');
    for s in samples {
        csv.push_str(&csv_line(s));
        csv.push('\n');
    }
    std::fs::write(dir.join(format!("{stem}.csv")), csv)?;
    std::fs::write(dir.join(format!("{stem}.svg")), svg(samples, warm_up, title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(rss: impl Fn(u64) -> u64) -> Vec<Sample> {
        (0..=60)
            .map(|i| Sample { elapsed: Duration::from_secs(i * 10), rss_kib: rss(i), fds: 1000 + i % 3, ..Sample::default() })
            .collect()
    }

    #[test]
    fn steady_memory_after_warm_up_passes_and_growth_fails() {
        let warm_up = Duration::from_secs(120);
        // Grows during warm-up, then flat with noise.
        let flat = series(|i| if i < 12 { 100_000 + i * 10_000 } else { 220_000 + (i % 4) * 1_000 });
        let v = verdict(&flat, warm_up, 10.0);
        assert!(v.passed(), "{v:?}");
        assert!(v.rss.percent().abs() < 2.0);
        // A leak: 1 % per sample after warm-up.
        let leak = series(|i| 200_000 + i.saturating_sub(12) * 2_000);
        let v = verdict(&leak, warm_up, 10.0);
        assert!(!v.passed(), "{v:?}");
        assert!(v.rss.percent() > 40.0);
        assert_eq!(v.rss.max, 296_000.0);
    }

    #[test]
    fn the_chart_is_one_svg_with_both_series_and_every_sample() {
        let samples = series(|i| 100_000 + i);
        let svg = svg(&samples, Duration::from_secs(300), "soak <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("soak &lt;test&gt;"));
        let points = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(points.split(' ').count(), samples.len());
    }

    #[test]
    fn nice_axis_bounds() {
        assert_eq!(nice(1.3), 2.0);
        assert_eq!(nice(240.0), 500.0);
        assert_eq!(nice(1000.0), 1000.0);
        assert_eq!(nice(1001.0), 2000.0);
    }

    #[test]
    fn this_process_can_be_read() {
        let (rss, fds) = read_process(std::process::id()).unwrap();
        assert!(rss > 0 && fds >= 3);
    }
}
