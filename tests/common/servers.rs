//! Real servers for the integration tests, on loopback: a SeaweedFS S3 store (installed by
//! scripts/tools.sh) and a catalog receiver that verifies Standard Webhooks signatures.
//! Each is started once per test binary (or per test that must stop one); a watchdog ends
//! the store when the test process exits.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};

use super::root;

pub const ACCESS_KEY: &str = "pressingtest";
pub const SECRET_KEY: &str = "pressingtestsecret0123456789";
pub const BUCKET: &str = "media";

/// The webhook signing secret of the tests, in the whsec_ form.
pub fn webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"pressing-test-signing-key-32byte")
    )
}

/// Start `binary` under a watchdog shell that records its pid in `pid_file` (its output in
/// `<pid_file>.log`) and kills it when this test process is gone (statics are never dropped,
/// so nothing else would).
fn spawn_watched(binary: &Path, args: &[String], pid_file: &Path) {
    let script = r#"w="$1"; shift; pidfile="$1"; shift; parent="$1"; shift
"$w" "$@" >"$pidfile.log" 2>&1 & child=$!
echo "$child" > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done
kill -9 "$child" 2>/dev/null; exit 0"#;
    let _ = std::fs::remove_file(pid_file);
    // The watchdog lives as long as the test process (or the server): never waited for.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(binary)
        .arg(pid_file)
        .arg(std::process::id().to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a test server");
}

/// A server process of the tests (SeaweedFS, a NATS node): started under the watchdog, killed
/// with -9 and started again with the same arguments (its data stays in its folder).
struct Daemon {
    binary: PathBuf,
    args: Vec<String>,
    pid_file: PathBuf,
    /// The port that answers while it runs.
    port: u16,
}

impl Daemon {
    fn spawn(&self) {
        spawn_watched(&self.binary, &self.args, &self.pid_file);
    }

    /// Whether it is alive (`None`: no pid yet).
    fn alive(&self) -> Option<bool> {
        // The watchdog writes the pid file whole (a rename), but an empty or partial read
        // is "not yet" rather than "exited".
        let pid = std::fs::read_to_string(&self.pid_file).ok()?;
        pid.trim().parse::<u32>().ok()?;
        Some(
            Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        )
    }

    /// What it printed.
    fn log(&self) -> String {
        std::fs::read_to_string(self.pid_file.with_extension("pid.log")).unwrap_or_default()
    }

    /// Wait until `ready` says it serves; its log if it exits first or never serves.
    fn wait(&self, what: &str, within: Duration, ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while !ready() {
            // Ours must be the one answering: fail at once if it exited (a port clash).
            if self.alive() == Some(false) {
                return Err(format!("{what} exited: {}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what} did not serve in {within:?}: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// kill -9, and wait until its port is closed.
    fn kill(&self) {
        let pid = std::fs::read_to_string(&self.pid_file).unwrap();
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "{:?} did not stop", self.binary);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn tool(name: &str) -> PathBuf {
    let o = Command::new(root().join("scripts/tools.sh"))
        .arg(name)
        .output()
        .expect("run scripts/tools.sh");
    assert!(
        o.status.success(),
        "scripts/tools.sh {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

/// The pinned build of a server, or the one the environment variable names (`PRESSING_WEED`,
/// `PRESSING_NATS_SERVER`: to run the tests against another build, Debian's nats-server 2.9.10
/// say).
fn tool_or(env: &str, name: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) => p.into(),
        None => tool(name),
    }
}

/// Start a server on `ports` consecutive free ports. A port can still be taken between our
/// check and the server's bind (by a server of another test binary): then the server gets
/// another range, at most three times. `start` returns the server and its log if it failed.
fn on_free_ports<S>(ports: u16, mut start: impl FnMut(u16) -> (S, Result<(), String>)) -> S {
    let mut tries = 0;
    loop {
        match start(free_ports(ports)) {
            (server, Ok(())) => return server,
            (_, Err(log)) if tries < 2 && log.contains("address already in use") => tries += 1,
            (_, Err(log)) => panic!("{log}"),
        }
    }
}

/// The first port the kernel hands out as a local (ephemeral) port: a listener port in that
/// range can be taken by any outgoing connection between our check and the server's bind.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// `n` consecutive ports, all free now, below the ephemeral range and handed to no other
/// server of this process (two servers starting at once in two test threads must not pick
/// the same range before either has bound it).
pub fn free_ports(n: u16) -> u16 {
    static NEXT: Mutex<Option<u16>> = Mutex::new(None);
    let (low, high) = (10000u16, ephemeral_low().max(10000 + 4 * n) - n);
    let span = (high - low) / n;
    let mut next = NEXT.lock().unwrap();
    let start = next.unwrap_or(low + (std::process::id() as u16 % span) * n);
    let mut base = start;
    loop {
        let following = if base + 2 * n > high { low } else { base + n };
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            *next = Some(following);
            return base;
        }
        base = following;
        assert_ne!(base, start, "no {n} free consecutive ports below {high}");
    }
}

pub struct Weed {
    pub endpoint: String,
    daemon: Daemon,
}

impl Weed {
    /// A store of its own in a fresh folder, serving bucket `media`.
    pub fn start(name: &str) -> Weed {
        let dir = super::scratch()
            .join("weed")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = serde_json::json!({ "identities": [
            { "name": "pressing",
              "credentials": [{ "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY }],
              "actions": ["Admin", "Read", "Write", "List", "Tagging"] },
            // What a CDN origin or a browser needs: GET and HEAD of objects, no listing.
            { "name": "anonymous", "actions": ["Read"] }
        ]});
        std::fs::write(dir.join("s3.json"), config.to_string()).unwrap();
        on_free_ports(12, |b| {
            let args = vec![
                "mini".to_string(),
                format!("-dir={}", dir.join("data").display()),
                "-ip=127.0.0.1".into(),
                "-ip.bind=127.0.0.1".into(),
                "-master.telemetry=false".into(),
                "-admin.ui=false".into(),
                format!("-s3.config={}", dir.join("s3.json").display()),
                format!("-bucket={BUCKET}"),
                format!("-master.port={b}"),
                format!("-master.port.grpc={}", b + 1),
                format!("-volume.port={}", b + 2),
                format!("-volume.port.grpc={}", b + 3),
                format!("-filer.port={}", b + 4),
                format!("-filer.port.grpc={}", b + 5),
                format!("-s3.port={}", b + 6),
                format!("-s3.port.grpc={}", b + 7),
                format!("-admin.port={}", b + 8),
                format!("-admin.port.grpc={}", b + 9),
                format!("-webdav.port={}", b + 10),
                "-s3.port.iceberg=0".into(),
                "-s3.port.lance=0".into(),
            ];
            let weed = Weed {
                endpoint: format!("http://127.0.0.1:{}", b + 6),
                daemon: Daemon {
                    binary: tool_or("PRESSING_WEED", "weed"),
                    args,
                    pid_file: dir.join("weed.pid"),
                    port: b + 6,
                },
            };
            let started = weed.spawn();
            (weed, started)
        })
    }

    /// Start it and wait until it serves the bucket.
    fn spawn(&self) -> Result<(), String> {
        self.daemon.spawn();
        let (rt, client) = self.client();
        let serves = || {
            rt.block_on(client.head_bucket().bucket(BUCKET).send())
                .is_ok()
        };
        self.daemon
            .wait("SeaweedFS", Duration::from_secs(60), serves)
    }

    /// kill -9 the store (its data stays in its folder).
    pub fn kill(&self) {
        self.daemon.kill();
    }

    pub fn restart(&self) {
        if let Err(log) = self.spawn() {
            panic!("SeaweedFS on restart: {log}");
        }
    }

    /// An S3 client with the test credentials, path-style, and its runtime.
    pub fn client(&self) -> (tokio::runtime::Runtime, aws_sdk_s3::Client) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .build();
        (rt, aws_sdk_s3::Client::from_conf(conf))
    }

    /// The flags that point pressing at this store.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--endpoint-url".into(),
            self.endpoint.clone(),
            "--path-style".into(),
        ]
    }

    /// Every key under `prefix/`, relative to it.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (rt, client) = self.client();
        rt.block_on(async {
            let mut out = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix(format!("{prefix}/"))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for o in page.unwrap().contents() {
                    out.push(o.key().unwrap()[prefix.len() + 1..].to_string());
                }
            }
            out.sort();
            out
        })
    }

    /// The bytes of `prefix/key`.
    pub fn get(&self, prefix: &str, key: &str) -> Vec<u8> {
        let (rt, client) = self.client();
        let o = rt
            .block_on(
                client
                    .get_object()
                    .bucket(BUCKET)
                    .key(format!("{prefix}/{key}"))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("{prefix}/{key}: {e}"));
        rt.block_on(o.body.collect()).unwrap().into_bytes().to_vec()
    }

    /// Incomplete multipart uploads in the bucket.
    pub fn incomplete_uploads(&self) -> usize {
        let (rt, client) = self.client();
        rt.block_on(client.list_multipart_uploads().bucket(BUCKET).send())
            .map(|o| o.uploads().len())
            .unwrap_or(0)
    }
}

/// The store shared by the tests of one binary.
pub fn weed() -> &'static Weed {
    static WEED: OnceLock<Weed> = OnceLock::new();
    WEED.get_or_init(|| Weed::start("shared"))
}

/// Run pressing with the store's credentials and the webhook secret in its environment.
pub fn pressing_with_store(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pressing"))
        .args(args)
        .current_dir(root())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PRESSING_WEBHOOK_SECRET", webhook_secret())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run pressing")
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub signature_ok: bool,
    pub body: serde_json::Value,
    pub status: u16,
}

/// A catalog receiver on a loopback port: verifies each request's signature and answers with
/// the scripted statuses in turn (then 200).
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/catalog", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let rec = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
                if let Some(r) = handle(stream, status) {
                    rec.lock().unwrap().push(r);
                }
            }
        });
        Receiver { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, status: u16) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let ts = headers
        .get("webhook-timestamp")
        .cloned()
        .unwrap_or_default();
    let key = base64::engine::general_purpose::STANDARD
        .decode(webhook_secret().strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let signature_ok = headers
        .get("webhook-signature")
        .is_some_and(|s| s.split(' ').any(|one| one == expected));
    let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes());
    Some(Received {
        id,
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        status,
    })
}

/// The committed schema of catalog notifications, compiled.
pub fn notification_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas/catalog-notification.schema.json"))
        .expect("schemas/catalog-notification.schema.json");
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("a valid schema")
}

/// A NATS server with JetStream on loopback: one node, or one node of a cluster.
pub struct Nats {
    pub port: u16,
    daemon: Daemon,
}

impl Nats {
    /// A single node with its own store folder.
    pub fn start(name: &str) -> Nats {
        Nats::cluster(name, 1).pop().unwrap()
    }

    /// `n` nodes routed to each other (a JetStream cluster when n >= 3).
    pub fn cluster(name: &str, n: u16) -> Vec<Nats> {
        on_free_ports(2 * n, |base| {
            let nodes = Nats::nodes(name, n, base);
            let started = nodes.iter().try_for_each(Nats::try_spawn);
            if started.is_err() {
                for node in nodes.iter().filter(|n| n.daemon.alive() == Some(true)) {
                    node.kill();
                }
            }
            (nodes, started)
        })
    }

    fn nodes(name: &str, n: u16, base: u16) -> Vec<Nats> {
        let dir = super::scratch()
            .join("nats")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let routes: Vec<String> = (0..n)
            .map(|i| format!("nats://127.0.0.1:{}", base + n + i))
            .collect();
        (0..n)
            .map(|i| {
                let node = dir.join(format!("n{i}"));
                std::fs::create_dir_all(&node).unwrap();
                let mut args = vec![
                    "-js".to_string(),
                    format!("-sd={}", node.join("js").display()),
                    "-a=127.0.0.1".into(),
                    format!("-p={}", base + i),
                    format!("-n=n{i}"),
                ];
                if n > 1 {
                    args.push(format!("--cluster_name={name}"));
                    args.push(format!("--cluster=nats://127.0.0.1:{}", base + n + i));
                    args.push(format!("--routes={}", routes.join(",")));
                }
                Nats {
                    port: base + i,
                    daemon: Daemon {
                        binary: tool_or("PRESSING_NATS_SERVER", "nats-server"),
                        args,
                        pid_file: node.join("nats.pid"),
                        port: base + i,
                    },
                }
            })
            .collect()
    }

    /// Start the node and wait until it listens; the log if it exits or never listens.
    fn try_spawn(&self) -> Result<(), String> {
        self.daemon.spawn();
        let listens = || TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        self.daemon
            .wait("nats-server", Duration::from_secs(30), listens)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// kill -9 the node (its store stays in its folder).
    pub fn kill(&self) {
        self.daemon.kill();
    }

    pub fn restart(&self) {
        if let Err(log) = self.try_spawn() {
            panic!("{log}");
        }
    }
}
