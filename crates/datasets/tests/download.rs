//! Verified downloads against a tiny HTTP server on 127.0.0.1 serving the bundled files.
#![cfg(feature = "download")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TempDir, mnist_dir};
use kiln_datasets::{Error, FetchOptions, Loader, Origin, RemoteFile, Source, Split, bundled_dir, cached, fetch};

/// sha256 of `data/mnist-10k/train-labels-idx1-ubyte.gz`, from `data/README.md`.
const LABELS_SHA256: &str = "c643a53673a7e5e645c0847c12d1084cd823e643adea3dee74e7b58b02eede4b";
const LABELS: &str = "train-labels-idx1-ubyte.gz";

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with these bytes.
    Body(Vec<u8>),
    /// 200 announcing `claimed` bytes but sending only these, then closing.
    Short(Vec<u8>, usize),
}

/// A one-thread HTTP/1.1 server: `routes` by path, 404 otherwise; counts requests per path.
struct Server {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn start(routes: HashMap<String, Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            // Bounded: a test makes a handful of requests; the thread ends with the process.
            for stream in listener.incoming().take(64) {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &routes, &h);
            }
        });
        Server { base, hits }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    hits: &Mutex<HashMap<String, usize>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
    }
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    match routes.get(&path) {
        Some(Reply::Body(b)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                b.len()
            )?;
            stream.write_all(b)?;
        }
        Some(Reply::Short(b, claimed)) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {claimed}\r\nConnection: close\r\n\r\n")?;
            stream.write_all(b)?;
        }
        None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?,
    }
    stream.flush()
}

fn labels_bytes() -> Vec<u8> {
    std::fs::read(mnist_dir().join(LABELS)).unwrap()
}

fn remote(urls: Vec<String>) -> RemoteFile {
    RemoteFile { file_name: LABELS.into(), urls, sha256: LABELS_SHA256.into(), size: Some(5116) }
}

fn opts() -> FetchOptions {
    FetchOptions { connect_timeout: Duration::from_secs(2), read_timeout: Duration::from_secs(5), verbose: false }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    base
}

#[test]
fn a_good_file_is_verified_cached_and_not_fetched_twice() {
    let good = format!("/mnist/{LABELS}");
    let server = Server::start(HashMap::from([(good.clone(), Reply::Body(labels_bytes()))]));
    let cache = TempDir::new("dl-good");
    let file = remote(vec![format!("{}{good}", server.base)]);
    let path = fetch(&file, &cache.0, &opts()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), labels_bytes());
    assert_eq!(listing(&cache.0), vec![LABELS.to_string()]);
    assert_eq!(cached(&file, &cache.0).unwrap(), Some(path.clone()));
    assert_eq!(fetch(&file, &cache.0, &opts()).unwrap(), path);
    assert_eq!(server.hits(&good), 1, "the second fetch must come from the cache");
}

#[test]
fn a_corrupted_copy_is_refused_and_not_left_in_the_cache() {
    let mut bad = labels_bytes();
    bad[100] ^= 0x01;
    let server = Server::start(HashMap::from([
        ("/bad".to_string(), Reply::Body(bad)),
        ("/good".to_string(), Reply::Body(labels_bytes())),
    ]));
    let cache = TempDir::new("dl-bad");
    let e = fetch(&remote(vec![format!("{}/bad", server.base)]), &cache.0, &opts()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("does not match the published") && msg.contains(LABELS_SHA256), "{msg}");
    assert!(listing(&cache.0).is_empty(), "left behind: {:?}", listing(&cache.0));
    // The next mirror is tried when one serves bad bytes.
    let p = fetch(&remote(vec![format!("{}/bad", server.base), format!("{}/good", server.base)]), &cache.0, &opts())
        .unwrap();
    assert_eq!(std::fs::read(p).unwrap(), labels_bytes());
    assert_eq!(listing(&cache.0), vec![LABELS.to_string()]);
}

#[test]
fn interrupted_wrong_sized_and_missing_downloads_leave_nothing() {
    let bytes = labels_bytes();
    let server = Server::start(HashMap::from([
        ("/short".to_string(), Reply::Short(bytes[..2000].to_vec(), bytes.len())),
        ("/good".to_string(), Reply::Body(bytes.clone())),
    ]));
    let cache = TempDir::new("dl-short");
    let e = fetch(&remote(vec![format!("{}/short", server.base)]), &cache.0, &opts()).unwrap_err();
    assert!(e.to_string().contains("/short"), "{e}");
    let mut wrong_size = remote(vec![format!("{}/good", server.base)]);
    wrong_size.size = Some(5000);
    let e = fetch(&wrong_size, &cache.0, &opts()).unwrap_err();
    assert!(e.to_string().contains("more than the expected 5000 bytes"), "{e}");
    let e = fetch(&remote(vec![format!("{}/nothing-here", server.base)]), &cache.0, &opts()).unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    assert!(listing(&cache.0).is_empty(), "left behind: {:?}", listing(&cache.0));
}

#[test]
fn a_tampered_cache_file_is_not_used_but_replaced() {
    let server = Server::start(HashMap::from([("/good".to_string(), Reply::Body(labels_bytes()))]));
    let cache = TempDir::new("dl-tampered");
    std::fs::write(cache.join(LABELS), b"garbage").unwrap();
    let file = remote(vec![format!("{}/good", server.base)]);
    assert!(matches!(cached(&file, &cache.0), Err(Error::Verification { .. })));
    let p = fetch(&file, &cache.0, &opts()).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), labels_bytes());
}

fn loader(cache: &Path, mirror: String) -> Loader {
    Loader {
        cache_dir: cache.into(),
        bundled_dir: bundled_dir(),
        mirror: Some(mirror),
        download: true,
        system_dirs: false,
        fetch: opts(),
        verbose: false,
    }
}

#[test]
fn auto_falls_back_to_bundled_quickly_when_the_network_is_unreachable() {
    let cache = TempDir::new("dl-closed");
    let l = loader(&cache.0, closed_port());
    let t = Instant::now();
    let m = l.mnist(&Source::Auto, Split::Train).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "fallback took {:?}", t.elapsed());
    assert_eq!(m.provenance.origin, Origin::Bundled);
    assert_eq!(m.data.len(), 10_000);
    let msg = &m.provenance.message;
    assert!(msg.contains("bundled subset") && msg.contains("could not download"), "{msg}");
    let r = l.imdb(&Source::Auto, Split::Train, 0).unwrap();
    assert_eq!((r.provenance.origin, r.data.len()), (Origin::Bundled, 5000));
    let e = l.mnist(&Source::Full, Split::Train).unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }));
    assert!(e.to_string().contains("mnist train (full) is not available"), "{e}");
    assert!(listing(&cache.0.join("mnist")).is_empty());
}

#[test]
fn auto_refuses_a_mirror_whose_files_do_not_match_the_published_checksums() {
    // The mirror serves the 10k subset under the full data set's names: sizes and sha256 differ
    // from the catalogue, so nothing is cached and the bundled subset is used, saying why.
    let routes = ["train-images-idx3-ubyte.gz", LABELS]
        .map(|n| (format!("/mnist/{n}"), Reply::Body(std::fs::read(mnist_dir().join(n)).unwrap())));
    let server = Server::start(HashMap::from(routes));
    let cache = TempDir::new("dl-mismatch");
    let m = loader(&cache.0, server.base.clone()).mnist(&Source::Auto, Split::Train).unwrap();
    assert_eq!(m.provenance.origin, Origin::Bundled);
    assert!(m.provenance.message.contains("expected 9912422"), "{}", m.provenance.message);
    assert_eq!(server.hits("/mnist/train-images-idx3-ubyte.gz"), 1);
    assert!(listing(&cache.0.join("mnist")).is_empty(), "{:?}", listing(&cache.0.join("mnist")));
}
