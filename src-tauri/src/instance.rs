//! One app per profile: the first launch listens on a socket in the profile folder; a second
//! launch with the same profile hands its request (focus, or open a conversation) to the first
//! and exits. Another profile has another socket, so it starts its own app.
//!
//! The engine's profile lock (`ProfileInUse`) is the guarantee; this socket is the courtesy
//! that turns a second launch into "bring the window to the front".

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// What a second launch asks of the first.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Focus,
    Open(Uuid),
}

impl Request {
    fn line(&self) -> String {
        match self {
            Request::Focus => "focus\n".into(),
            Request::Open(id) => format!("open {id}\n"),
        }
    }

    fn parse(line: &str) -> Option<Request> {
        match line.trim().split_once(' ') {
            None if line.trim() == "focus" => Some(Request::Focus),
            Some(("open", id)) => id.parse().ok().map(Request::Open),
            _ => None,
        }
    }
}

pub fn socket_path(profile: &Path) -> PathBuf {
    profile.join("app.sock")
}

/// Hands `request` to a running app of this profile. `true`: it took it; this process exits.
#[cfg(unix)]
pub fn hand_over(profile: &Path, request: &Request) -> bool {
    use std::os::unix::net::UnixStream;
    let Ok(mut stream) = UnixStream::connect(socket_path(profile)) else {
        return false;
    };
    let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
    stream.write_all(request.line().as_bytes()).is_ok()
}

/// Listens for later launches of this profile; `on_request` runs on the listener's thread.
#[cfg(unix)]
pub fn listen(profile: &Path, on_request: impl Fn(Request) + Send + 'static) -> std::io::Result<()> {
    use std::os::unix::net::UnixListener;
    let path = socket_path(profile);
    std::fs::create_dir_all(profile)?;
    // Nobody answered on it (hand_over failed): what is there is a leftover of a crash.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new().name("instance:listen".into()).spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() {
                if let Some(r) = Request::parse(&line) {
                    on_request(r);
                }
            }
        }
    })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn hand_over(_profile: &Path, _request: &Request) -> bool {
    false
}

#[cfg(not(unix))]
pub fn listen(_profile: &Path, _on_request: impl Fn(Request) + Send + 'static) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_launch_reaches_the_first_and_another_profile_does_not() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        let (tx, rx) = std::sync::mpsc::channel();
        listen(&a, move |r| tx.send(r).unwrap()).unwrap();
        let id = Uuid::now_v7();
        assert!(hand_over(&a, &Request::Open(id)));
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(), Request::Open(id));
        assert!(!hand_over(&b, &Request::Focus), "profile b has no app running");
    }

    #[test]
    fn requests_round_trip_and_garbage_is_ignored() {
        let id = Uuid::now_v7();
        assert_eq!(Request::parse(&Request::Open(id).line()), Some(Request::Open(id)));
        assert_eq!(Request::parse(&Request::Focus.line()), Some(Request::Focus));
        assert_eq!(Request::parse("open nope"), None);
        assert_eq!(Request::parse("rm -rf"), None);
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("werkfunk-instance-{}-{name}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
