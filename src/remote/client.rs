//! The client's end: the transport command that reaches a host's
//! `slicebox serve --stdio`, and the session's steps (push, pull, run).
//!
//! The transport is any command whose stdin and stdout reach the server:
//! `ssh HOST` by default, or `SLICEBOX_RSH`, split into words (no shell),
//! with `%h` replaced by HOST, or HOST appended when no word is `%h`
//! (`ip netns exec`, `srun -u -N1 -n1 -w`, `kubectl exec -i %h --`). What
//! the transport itself prints on stderr (ssh's warnings, srun's own
//! lines) is kept apart from the stage's stderr, and shown only when the
//! session fails.

use std::io::{BufReader, BufWriter, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use super::conn::Offered;
use super::conn::{Conn, Pull, Run, Shipped};
use super::frame::Kind;
use super::sync::{read_offer, receive_slices, send_slices, Moved};
use super::Error;
use crate::store::{Limits, Store};

/// How much of the transport's own stderr is kept for a failure's message.
const MOST_KEPT: usize = 16 << 10;

/// Where to reach a host, from the caller's environment.
#[derive(Debug, Clone)]
pub struct Reach {
    pub host: String,
    /// `SLICEBOX_RSH`, if set and not empty.
    pub rsh: Option<String>,
    /// `SLICEBOX_REMOTE_COMMAND`: the remote slicebox (default `slicebox`).
    pub remote_program: Option<String>,
    /// `--remote-store PATH`.
    pub remote_store: Option<String>,
    /// Where ssh keeps its shared connections (`ControlPath`): none
    /// disables sharing.
    pub control_dir: Option<PathBuf>,
}

impl Reach {
    /// The transport's argv.
    pub fn command(&self) -> Result<Vec<String>, Error> {
        check_host(&self.host)?;
        let mut words: Vec<String> = match &self.rsh {
            Some(rsh) => rsh.split_whitespace().map(str::to_string).collect(),
            None => vec!["ssh".to_string()],
        };
        if words.is_empty() {
            return Err(Error::Peer("SLICEBOX_RSH names no command".into()));
        }
        if is_plain_ssh(&words) {
            words.splice(1..1, shared_connection(self.control_dir.as_ref()));
        }
        match words.iter().position(|w| w == "%h") {
            Some(at) => words[at] = self.host.clone(),
            None => words.push(self.host.clone()),
        }
        let program = self.remote_program.as_deref().unwrap_or("slicebox");
        words.extend(program.split_whitespace().map(str::to_string));
        words.extend(["serve".to_string(), "--stdio".to_string()]);
        Ok(words)
    }
}

/// A host name is one word that no command would read as an option.
fn check_host(host: &str) -> Result<(), Error> {
    if host.is_empty()
        || host.starts_with('-')
        || host.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::Peer(format!(
            "'{}' is not a host name (a host is one word that does not start with '-')",
            crate::text::printable(host.as_bytes())
        )));
    }
    Ok(())
}

/// Whether the transport is ssh and its words leave connection sharing
/// to us.
fn is_plain_ssh(words: &[String]) -> bool {
    let program = std::path::Path::new(&words[0]).file_name();
    program.is_some_and(|p| p == "ssh")
        && !words
            .iter()
            .any(|w| w.contains("ControlMaster") || w.contains("ControlPath"))
}

/// ssh's options to share one connection per host between the stages of
/// a script (ControlMaster), kept open 60 s after the last one.
fn shared_connection(control_dir: Option<&PathBuf>) -> Vec<String> {
    let Some(dir) = control_dir else {
        return Vec::new();
    };
    vec![
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        format!("ControlPath={}/%C", dir.display()),
        "-o".into(),
        "ControlPersist=60".into(),
    ]
}

/// A private directory for ssh's control sockets: under
/// `XDG_RUNTIME_DIR`, else `/tmp/slicebox-ssh-UID`, made 0700 and used
/// only if it is a real directory of this user's that nobody else can
/// enter. None (no sharing) otherwise.
pub fn control_dir(runtime_dir: Option<&str>) -> Option<PathBuf> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = match runtime_dir.filter(|d| d.starts_with('/')) {
        Some(base) => PathBuf::from(base).join("slicebox-ssh"),
        None => PathBuf::from(format!("/tmp/slicebox-ssh-{uid}")),
    };
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0;
    // ssh refuses a socket path longer than a sockaddr_un holds.
    let fits = dir.as_os_str().len() + 1 + 40 < 104;
    (private && fits).then_some(dir)
}

/// A session with a host's server.
pub struct Session {
    pub conn: Conn,
    child: Child,
    said: Arc<Mutex<Vec<u8>>>,
    listener: Option<std::thread::JoinHandle<()>>,
    /// The transport's argv, for messages.
    pub shown: String,
}

impl Session {
    /// Starts the transport and greets the server: the server's Hello is
    /// read with the answer to the first request (docs/protocol.md).
    pub fn connect(reach: &Reach) -> Result<Session, (Error, String)> {
        let mut session = Session::start(reach).map_err(|e| (e, String::new()))?;
        match session.conn.greet(reach.remote_store.clone()) {
            Ok(()) => Ok(session),
            Err(e) => Err((e, session.transport_said())),
        }
    }

    fn start(reach: &Reach) -> Result<Session, Error> {
        let argv = reach.command()?;
        let shown = argv.join(" ");
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Local {
                op: "start the transport",
                path: PathBuf::from(&argv[0]),
                source: e,
            })?;
        let said = Arc::new(Mutex::new(Vec::new()));
        let listener = child.stderr.take().map(|mut stderr| {
            let said = said.clone();
            crate::os::with_signals_blocked(|| {
                std::thread::spawn(move || {
                    let mut chunk = [0u8; 4096];
                    while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                        let mut kept = said.lock().unwrap_or_else(|p| p.into_inner());
                        let room = MOST_KEPT.saturating_sub(kept.len()).min(n);
                        kept.extend_from_slice(&chunk[..room]);
                    }
                })
            })
        });
        let input = BufReader::with_capacity(256 << 10, child.stdout.take().expect("piped"));
        let output = BufWriter::with_capacity(256 << 10, child.stdin.take().expect("piped"));
        Ok(Session {
            conn: Conn::new(Box::new(input), Box::new(output)),
            child,
            said,
            listener,
            shown,
        })
    }

    /// What the transport said on stderr, for a failure's message: the
    /// session is over, so the transport is given a moment to end and
    /// say all it has to say.
    pub fn transport_said(&mut self) -> String {
        self.conn.sender().close();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(listener) = self.listener.take() {
                let _ = listener.join();
            }
        }
        let said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&said).trim().to_string();
        match text.is_empty() {
            true => String::new(),
            false => format!("; '{}' said: {text}", self.shown),
        }
    }

    /// Sends `slices` that the server lacks.
    pub fn push(&mut self, store: &Store, slices: &[Offered]) -> Result<Moved, Error> {
        send_slices(&mut self.conn, store, slices)
    }

    /// Fetches the slices `refs` name into `store`, under the same names.
    /// The slices stay pinned while the returned pin lives.
    pub fn pull(
        &mut self,
        store: &Store,
        refs: &[String],
        limits: Limits,
    ) -> Result<(Vec<crate::digest::Digest>, Moved, crate::store::Pin), Error> {
        self.conn.send_json(
            Kind::Pull,
            &Pull {
                refs: refs.to_vec(),
            },
        )?;
        let offer = read_offer(&self.conn.expect(Kind::Offer)?)?;
        let digests: Vec<_> = offer.slices.iter().map(|s| s.digest).collect();
        let pin = store.pin(&digests)?;
        let moved = receive_slices(&mut self.conn, store, &offer, limits)?;
        Ok((digests, moved, pin))
    }

    /// Runs a stage there, relaying `stdio`, and returns how it ended.
    pub fn run(
        &mut self,
        args: Vec<String>,
        shipped: Vec<Shipped>,
        stdio: [std::os::fd::RawFd; 3],
    ) -> Result<super::conn::Exit, Error> {
        self.conn.send_json(Kind::Run, &Run { args, shipped })?;
        super::relay::relay_stage(&mut self.conn, stdio)
    }

    /// Ends the session: the server sees the end of its input and exits.
    pub fn close(mut self) {
        self.conn.sender().close();
        drop(self.conn);
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(rsh: Option<&str>, host: &str) -> Reach {
        Reach {
            host: host.into(),
            rsh: rsh.map(str::to_string),
            remote_program: None,
            remote_store: None,
            control_dir: Some(PathBuf::from("/run/user/1/slicebox-ssh")),
        }
    }

    #[test]
    fn the_host_takes_the_place_of_percent_h_or_follows_the_words() {
        let words = reach(Some("kubectl exec -i %h --"), "pod-1")
            .command()
            .unwrap();
        assert_eq!(
            words.join(" "),
            "kubectl exec -i pod-1 -- slicebox serve --stdio"
        );
        let words = reach(Some("ip netns exec"), "hostb").command().unwrap();
        assert_eq!(
            words.join(" "),
            "ip netns exec hostb slicebox serve --stdio"
        );
    }

    #[test]
    fn plain_ssh_shares_one_connection_and_a_users_own_control_options_win() {
        let words = reach(None, "build1").command().unwrap().join(" ");
        assert_eq!(
            words,
            "ssh -o ControlMaster=auto -o ControlPath=/run/user/1/slicebox-ssh/%C \
             -o ControlPersist=60 build1 slicebox serve --stdio"
        );
        let own = reach(Some("/usr/bin/ssh -o ControlPath=none"), "b").command();
        assert_eq!(
            own.unwrap().join(" "),
            "/usr/bin/ssh -o ControlPath=none b slicebox serve --stdio"
        );
    }

    #[test]
    fn a_host_that_a_command_would_read_as_an_option_is_refused() {
        for bad in ["-oProxyCommand=sh", "", "a b", "x\ny"] {
            assert!(reach(None, bad).command().is_err(), "{bad:?}");
        }
    }
}
