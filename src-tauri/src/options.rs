//! The command line: `werkfunk [--profile DIR] [--url URL] [--anon-key KEY] [--open ID] [--hidden]`.
//!
//! The server comes from `--url`/`--anon-key`, else `WERKFUNK_URL`/`WERKFUNK_ANON_KEY`, else
//! the local demo server. Unknown arguments are reported and ignored, so a desktop launcher's
//! extra arguments never keep the app from starting.

use std::path::PathBuf;

use uuid::Uuid;
use werkfunk_core::ServerConfig;

#[derive(Debug, Clone)]
pub struct Options {
    /// The profile folder: one account's cache, outbox and session.
    pub profile: PathBuf,
    pub server: ServerConfig,
    /// A conversation to open (a second launch passes it on to the first).
    pub open: Option<Uuid>,
    /// Start in the tray without showing the window (autostart at login).
    pub hidden: bool,
}

impl Options {
    pub fn from_env() -> Options {
        Self::parse(std::env::args().skip(1), |k| std::env::var(k).ok())
    }

    pub fn parse(args: impl IntoIterator<Item = String>, env: impl Fn(&str) -> Option<String>) -> Options {
        let mut profile = None;
        let mut url = env("WERKFUNK_URL");
        let mut anon_key = env("WERKFUNK_ANON_KEY");
        let mut open = None;
        let mut hidden = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| args.next());
            match name.as_str() {
                "--profile" => profile = value().map(PathBuf::from),
                "--url" => url = value(),
                "--anon-key" => anon_key = value(),
                "--open" => open = value().and_then(|v| v.parse().ok()),
                "--hidden" => hidden = true,
                other => tracing::warn!(argument = other, "unknown argument ignored"),
            }
        }
        Options {
            profile: profile.unwrap_or_else(werkfunk_core::default_profile),
            server: ServerConfig {
                url: url.filter(|u| !u.is_empty()).unwrap_or_else(|| werkfunk_core::api::DEFAULT_URL.to_owned()),
                anon_key: anon_key.unwrap_or_default(),
            },
            open,
            hidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::parse(args.iter().map(|s| s.to_string()), |k| (k == "WERKFUNK_URL").then(|| "http://env:1".to_owned()))
    }

    #[test]
    fn flags_beat_the_environment() {
        let o = parse(&["--profile", "/tmp/a", "--url=http://flag:2", "--hidden"]);
        assert_eq!(o.profile, PathBuf::from("/tmp/a"));
        assert_eq!(o.server.url, "http://flag:2");
        assert!(o.hidden);
        assert_eq!(parse(&[]).server.url, "http://env:1");
    }

    #[test]
    fn open_takes_a_conversation_id_and_ignores_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(parse(&["--open", &id.to_string()]).open, Some(id));
        assert_eq!(parse(&["--open", "not-an-id", "--bogus"]).open, None);
    }
}
