//! Sessions between two real stores over a socket pair: every message of
//! the sync, and the peers that lie, flood or break off.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;

use super::conn::{hello, Conn, Hello, Offer, Offered, Pull, Want};
use super::frame::{write_frame, Kind};
use super::server::{serve, ServeSettings};
use super::sync::send_slices;
use super::Error;
use crate::digest::Digest;
use crate::store::{FromArchive, IngestOptions, Limits, PrefixCheck, Source, Store};

fn options(at: &str) -> IngestOptions {
    IngestOptions {
        mount_point: at.into(),
        env: vec!["PATH=/x:${PATH}".into()],
        limits: Limits::default(),
        prefix_check: PrefixCheck::Off,
        progress: None,
        stat_cache: false,
        from_archive: FromArchive::default(),
    }
}

/// A store at `dir/name` holding slice `slice` made of `files`.
fn store_with(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> (Store, Digest) {
    let source = dir.join(format!("{name}-src"));
    for (path, content) in files {
        let path = source.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    fs::create_dir_all(&source).unwrap();
    let store = Store::open(&dir.join(name)).unwrap();
    let added = store
        .add_slice("s", &Source::Directory(source), &options("/opt/s"))
        .unwrap();
    (store, added.info.digest)
}

/// A `Conn` over one end of a socket pair.
fn conn_over(stream: UnixStream) -> Conn {
    Conn::new(Box::new(stream.try_clone().unwrap()), Box::new(stream))
}

/// A server on one end of a socket pair, the client's `Conn` on the
/// other, not yet greeted. The server's result comes back through the
/// handle.
fn serve_on(server_store: &Path) -> (Conn, thread::JoinHandle<Result<(), Error>>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let settings = ServeSettings {
        default_store: Some(server_store.to_path_buf()),
        limits: Limits::default(),
        runs_stages: true,
    };
    let server = thread::spawn(move || serve(&mut conn_over(theirs), &settings));
    (conn_over(ours), server)
}

/// [`serve_on`], greeted.
fn session(server_store: &Path) -> (Conn, thread::JoinHandle<Result<(), Error>>) {
    let (mut conn, server) = serve_on(server_store);
    conn.send_json(Kind::Hello, &hello(None)).unwrap();
    let _: Hello = conn.expect_json(Kind::Hello).unwrap();
    (conn, server)
}

fn offered(digest: Digest, name: &str) -> Vec<Offered> {
    vec![Offered {
        digest,
        name: Some(name.into()),
    }]
}

fn objects_in(store: &Path) -> usize {
    let Ok(fanouts) = fs::read_dir(store.join("objects")) else {
        return 0;
    };
    fanouts
        .map(|f| fs::read_dir(f.unwrap().path()).unwrap().count())
        .sum()
}

#[test]
fn a_push_sends_only_what_the_receiver_lacks_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8])] = &[("a", b"alpha"), ("bin/b", b"beta"), ("empty", b"")];
    let (local, slice) = store_with(dir.path(), "local", files);
    let remote = dir.path().join("remote");
    let (mut conn, server) = session(&remote);
    let moved = send_slices(&mut conn, &local, &offered(slice, "pushed")).unwrap();
    assert_eq!((moved.slices, moved.written), (1, 9));
    // Offered again: one round trip, nothing sent.
    let again = send_slices(&mut conn, &local, &offered(slice, "pushed")).unwrap();
    assert_eq!((again.slices, again.written), (0, 0));
    drop(conn);
    server.join().unwrap().unwrap();
    let remote = Store::open(&remote).unwrap();
    assert_eq!(remote.resolve("pushed").unwrap(), slice);
    let mut damage = 0;
    remote
        .verify_slice(&slice, None, &mut |_| damage += 1)
        .unwrap();
    assert_eq!(damage, 0, "the received slice verifies");
}

#[test]
fn a_slice_that_shares_files_with_a_stored_one_sends_only_the_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_store, _) = store_with(dir.path(), "remote", &[("a", b"alpha" as &[u8])]);
    let files: &[(&str, &[u8])] = &[("a", b"alpha"), ("c", b"gamma!")];
    let (local, slice) = store_with(dir.path(), "local", files);
    let (mut conn, server) = session(remote_store.root());
    let moved = send_slices(&mut conn, &local, &offered(slice, "second")).unwrap();
    assert_eq!(moved.written, 6, "only 'gamma!' travels");
    drop(conn);
    server.join().unwrap().unwrap();
}

#[test]
fn an_object_damaged_in_flight_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (local, slice) = store_with(dir.path(), "local", &[("a", b"alpha" as &[u8])]);
    // The sender's copy goes bad after it was listed: what it sends is
    // not what its listing names.
    let object = local.object_path(&Digest::of(b"alpha"), false);
    fs::write(&object, b"alphA").unwrap();
    let remote = dir.path().join("remote");
    let (mut conn, server) = session(&remote);
    let error = send_slices(&mut conn, &local, &offered(slice, "bad")).unwrap_err();
    assert!(error.to_string().contains("damaged in flight"), "{error}");
    drop(conn);
    let served = server.join().unwrap().unwrap_err();
    assert!(served.to_string().contains("damaged in flight"), "{served}");
    let remote = Store::open(&remote).unwrap();
    assert!(remote.resolve("bad").is_err());
    assert!(!remote.has_slice(&slice));
    assert_eq!(objects_in(remote.root()), 0, "no object was published");
}

#[test]
fn a_listing_that_does_not_hash_to_the_offered_slice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (local, slice) = store_with(dir.path(), "local", &[("a", b"alpha" as &[u8])]);
    let listing = local.slice_dir(&slice).join("listing");
    let mut text = fs::read(&listing).unwrap();
    let at = text.len() - 2;
    text[at] = b'z'; // the entry's name 'a' becomes 'z'
    fs::write(&listing, text).unwrap();
    let remote = dir.path().join("remote");
    let (mut conn, server) = session(&remote);
    let error = send_slices(&mut conn, &local, &offered(slice, "bad")).unwrap_err();
    assert!(
        error.to_string().contains("does not hash to the tree"),
        "{error}"
    );
    drop(conn);
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_listing_with_dot_dot_is_refused_before_its_hash_is_checked() {
    use crate::store::Incoming;
    let manifest = br#"{"format":1,"tree":"sha256:0000000000000000000000000000000000000000000000000000000000000000","mount_point":"/opt/x","env":[],"files":0,"bytes":0}"#;
    let parsed = crate::store::Manifest::parse(manifest).unwrap();
    let digest = parsed.slice_digest();
    for (bad, why) in [
        (&b"d - 0 2:..\n"[..], "normalised"),
        (b"l 11:/etc/shadow 0 7:a//link\n", "normalised"),
        (b"f 00 1 1:a\n", "malformed"),
    ] {
        let error = Incoming::check(&digest, manifest, bad, Limits::default()).unwrap_err();
        assert!(error.to_string().contains(why), "{error}");
    }
}

/// Pushes a one-file slice to a hand-written peer that answers the
/// offer with a Want of `want` and then does `then`; the push's error.
fn push_to_lying_peer(want: usize, then: impl FnOnce(&mut Conn) + Send + 'static) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let (local, slice) = store_with(dir.path(), "local", &[("a", b"alpha" as &[u8])]);
    let (ours, theirs) = UnixStream::pair().unwrap();
    let peer = thread::spawn(move || {
        let mut peer = conn_over(theirs);
        let _offer: Offer = peer.expect_json(Kind::Offer).unwrap();
        let want = Want { slices: vec![want] };
        peer.send_json(Kind::Want, &want).unwrap();
        then(&mut peer);
    });
    let error = send_slices(&mut conn_over(ours), &local, &offered(slice, "x")).unwrap_err();
    peer.join().unwrap();
    error
}

#[test]
fn a_want_of_a_slice_never_offered_is_a_protocol_error() {
    let error = push_to_lying_peer(7, |_| {});
    assert!(error.to_string().contains("never offered"), "{error}");
}

#[test]
fn a_frame_the_step_does_not_expect_ends_the_session_with_its_name() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    write_frame(&mut theirs, Kind::Stdout, b"x").unwrap();
    let mut conn = conn_over(ours);
    let error = conn.expect(Kind::Want).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("a Stdout frame where a Want frame belongs"),
        "{error}"
    );
}

#[test]
fn a_pull_fetches_by_name_and_a_missing_name_is_the_peers_message() {
    let dir = tempfile::tempdir().unwrap();
    let (remote_store, slice) = store_with(dir.path(), "remote", &[("a", b"alpha" as &[u8])]);
    let local = Store::open(&dir.path().join("local")).unwrap();
    let (mut conn, server) = session(remote_store.root());
    conn.send_json(
        Kind::Pull,
        &Pull {
            refs: vec!["s".into()],
        },
    )
    .unwrap();
    let offer = super::sync::read_offer(&conn.expect(Kind::Offer).unwrap()).unwrap();
    let moved = super::sync::receive_slices(&mut conn, &local, &offer, Limits::default()).unwrap();
    assert_eq!((moved.slices, moved.written), (1, 5));
    assert_eq!(local.resolve("s").unwrap(), slice);
    conn.send_json(
        Kind::Pull,
        &Pull {
            refs: vec!["nope".into()],
        },
    )
    .unwrap();
    let error = conn.expect(Kind::Offer).unwrap_err();
    assert!(error.to_string().contains("no slice 'nope'"), "{error}");
    drop(conn);
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_peer_of_another_protocol_version_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, server) = serve_on(&dir.path().join("s"));
    let mut old = hello(None);
    old.protocol = 99;
    conn.send_json(Kind::Hello, &old).unwrap();
    let error = conn.expect(Kind::Hello).unwrap_err();
    assert!(error.to_string().contains("speaks protocol 99"), "{error}");
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_slice_offered_twice_under_two_names_is_sent_once_and_gets_both() {
    let dir = tempfile::tempdir().unwrap();
    let (local, slice) = store_with(dir.path(), "local", &[("a", b"alpha" as &[u8])]);
    let remote = dir.path().join("remote");
    let (mut conn, server) = session(&remote);
    let mut twice = offered(slice, "one");
    twice.extend(offered(slice, "two"));
    let moved = send_slices(&mut conn, &local, &twice).unwrap();
    assert_eq!((moved.slices, moved.written), (1, 5));
    drop(conn);
    server.join().unwrap().unwrap();
    let remote = Store::open(&remote).unwrap();
    assert_eq!(remote.resolve("one").unwrap(), slice);
    assert_eq!(remote.resolve("two").unwrap(), slice);
}

#[test]
fn a_need_longer_than_one_bit_per_file_is_cut_off() {
    let error = push_to_lying_peer(0, |peer| {
        while peer.recv().unwrap().kind != Kind::End {}
        // One file: one byte of bitmap belongs, not a megabyte.
        let flood = vec![0xffu8; super::frame::MAX_PAYLOAD];
        peer.send(Kind::Need, &flood).unwrap();
        let _ = peer.send(Kind::End, b"");
    });
    assert!(
        error
            .to_string()
            .contains("a Need stream of 2 or more bytes where 1 belong"),
        "{error}"
    );
}
