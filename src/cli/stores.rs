//! Flags shared by every command that touches a store or the catalog, and what they open.

use std::path::PathBuf;

use pressing::exit;

use super::progress;
use pressing::fleet::{self, Queue};
use pressing::publish::{
    self, webhook, CatalogNotifier, HttpNotifier, LocalStore, NoNotifier, PublishOptions,
    S3Options, S3Store, Store, WebhookSecret,
};

/// How to reach an S3-compatible store; unset flags leave the choice to the AWS chain
/// (environment, shared config and credentials files, roles; AWS_ENDPOINT_URL).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// S3 endpoint URL, for stores other than AWS [default: AWS_ENDPOINT_URL or AWS].
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Region [default: AWS_REGION, the profile's, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Profile of the shared AWS config and credentials files [default: AWS_PROFILE].
    #[arg(long)]
    pub profile: Option<String>,
    /// Path-style requests (endpoint/bucket/key), which most non-AWS stores need.
    #[arg(long)]
    pub path_style: bool,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = publish::s3::DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub upload_concurrency: usize,
    /// Objects of this size or more are uploaded in parts (bytes, or with KiB/MiB/GiB).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub multipart_threshold: u64,
}

/// What a publication does beyond uploading.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PublishArgs {
    /// POST a signed track.published notification here after each track is published
    /// (the secret is read from PRESSING_WEBHOOK_SECRET, as whsec_<base64>).
    #[arg(long)]
    pub catalog_url: Option<String>,
    /// Base URL a CDN serves the destination prefix under; the catalog gets these URLs.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Cache-Control of segments and media playlists (under content-keyed version folders).
    #[arg(long, default_value = publish::DEFAULT_CACHE_IMMUTABLE)]
    pub cache_control_immutable: String,
    /// Cache-Control of multivariant playlists, MPDs and the catalog record.
    #[arg(long, default_value = publish::DEFAULT_CACHE_ENTRY)]
    pub cache_control_entry: String,
    /// After publishing, delete the track's objects the new package does not name (older
    /// versions); see the README before using it behind a CDN.
    #[arg(long)]
    pub prune: bool,
    /// Publish a release that a DDEX TestMessage delivered (otherwise pressed, not published).
    #[arg(long)]
    pub publish_test_message: bool,
}

impl PublishArgs {
    pub fn options(&self) -> PublishOptions {
        let or = |v: &str, d: &str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        PublishOptions {
            cache_control_immutable: or(
                &self.cache_control_immutable,
                publish::DEFAULT_CACHE_IMMUTABLE,
            ),
            cache_control_entry: or(&self.cache_control_entry, publish::DEFAULT_CACHE_ENTRY),
            public_url: self.public_url.clone(),
            prune: self.prune,
            test_messages: self.publish_test_message,
        }
    }

    /// The catalog notifier the flags ask for; prints the problem and returns the exit code.
    pub fn notifier(&self) -> Result<Box<dyn CatalogNotifier>, u8> {
        let Some(url) = &self.catalog_url else {
            return Ok(Box::new(NoNotifier));
        };
        let secret = std::env::var(webhook::SECRET_ENV).map_err(|_| {
            progress::error(format!(
                "--catalog-url needs the signing secret in {} (whsec_ and the base64 key)",
                webhook::SECRET_ENV
            ));
            exit::USAGE
        })?;
        let secret = WebhookSecret::parse(&secret).map_err(|e| {
            progress::error(&e);
            exit::USAGE
        })?;
        let n = HttpNotifier::new(url, secret).map_err(|e| {
            progress::error(&e);
            exit::USAGE
        })?;
        Ok(Box::new(n))
    }
}

/// Where the jobs are.
#[derive(clap::Args, Clone, Debug)]
pub struct QueueArgs {
    /// nats://host:4222[,nats://host2:4222…][?replicas=3] (NATS JetStream) or sqlite:PATH
    /// (a queue file on this machine) [default: sqlite:$XDG_STATE_HOME/pressing/queue.db].
    #[arg(long)]
    pub queue: Option<String>,
}

impl QueueArgs {
    /// The queue the flag names (`fleet::open`); prints the problem and returns the exit code.
    pub fn open(&self) -> Result<Box<dyn Queue>, u8> {
        fleet::open(self.queue.as_deref()).map_err(|e| {
            progress::error(e.to_string());
            exit::UNAVAILABLE
        })
    }
}

pub fn is_remote(destination: &str) -> bool {
    destination.starts_with("s3://")
}

/// The store a destination names; prints the problem and returns the exit code.
pub fn open(destination: &str, args: &StoreArgs) -> Result<Box<dyn Store>, u8> {
    if !is_remote(destination) {
        if destination.contains("://") {
            progress::error(format!(
                "destination {destination:?}: expected s3://bucket/prefix or a local folder"
            ));
            return Err(exit::USAGE);
        }
        return Ok(Box::new(LocalStore::new(PathBuf::from(destination))));
    }
    progress::detail(format!(
        "store {destination}: endpoint {}, region {}, profile {}, {} addressing, {} uploads in flight, multipart from {} bytes",
        args.endpoint_url.as_deref().unwrap_or("from the AWS chain"),
        args.region.as_deref().unwrap_or("from the AWS chain"),
        args.profile.as_deref().unwrap_or("default"),
        if args.path_style { "path-style" } else { "virtual-host" },
        args.upload_concurrency,
        args.multipart_threshold
    ));
    let opts = S3Options {
        endpoint_url: args.endpoint_url.clone(),
        region: args.region.clone(),
        profile: args.profile.clone(),
        path_style: args.path_style,
        concurrency: args.upload_concurrency,
        multipart_threshold: args.multipart_threshold,
        ..S3Options::default()
    };
    S3Store::new(destination, opts)
        .map(|s| Box::new(s) as Box<dyn Store>)
        .map_err(|e| {
            progress::error(e.to_string());
            exit::USAGE
        })
}

/// The staging folder of an s3:// run: under the user's cache folder, one per destination.
pub fn default_staging(destination: &str) -> PathBuf {
    let base = pressing::dirs::pressing_dir(pressing::dirs::UserDir::Cache);
    let name: String = destination
        .trim_start_matches("s3://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("staging").join(name)
}

/// `16MiB`, `512KiB`, `1GiB`, `5000000`.
pub fn parse_size_any(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(s, m)| t.strip_suffix(s).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected bytes, or a number with KiB, MiB or GiB"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A multipart threshold: a size of at least the S3 minimum part.
fn parse_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size_any(text)?;
    if bytes < 5 << 20 {
        return Err(format!(
            "{text:?}: at least 5MiB (the S3 minimum part size)"
        ));
    }
    Ok(bytes)
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: expected 1..=256 uploads in flight")),
    }
}
