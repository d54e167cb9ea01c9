//! Publish: upload finished packages to a store in an order that keeps every reader safe, then
//! tell the catalog, exactly once.
//!
//! This module owns the [`Store`] and [`CatalogNotifier`] seams and their implementations
//! (`local`, `s3`, `webhook`), upload order, idempotency (skip what is already there and
//! identical; no second notification), pruning and takedowns. It imports no stage: the
//! pipeline hands it each track's [`TrackPackage`] (artifacts from `layout`, the notification
//! body). It is synchronous to its callers; tokio lives inside the S3 and HTTP code.
//!
//! Order per track: init and media segments, then media playlists, then multivariant
//! playlists and MPDs, then the catalog record, then the notification: a reader never sees a
//! manifest naming a missing object. Segments and media playlists live under content-keyed
//! version folders and are never overwritten; only entry manifests are.

pub mod local;
#[cfg(feature = "services")]
pub mod s3;
#[cfg(feature = "services")]
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::{self, hex, Artifact, ArtifactKind};

pub use local::LocalStore;
#[cfg(feature = "services")]
pub use s3::{S3Options, S3Store};
#[cfg(feature = "services")]
pub use webhook::{HttpNotifier, NoNotifier, WebhookSecret};

/// What went wrong with a store, which decides retrying and the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Network failure, timeout, throttling or a 5xx after the retries: may pass.
    Unavailable,
    /// The bucket does not exist.
    NoSuchBucket,
    /// Access denied, unknown access key, bad signature, no credentials.
    Denied,
    /// The store refused the checksum pressing sent.
    Integrity,
    /// A local file could not be read or written.
    Local,
    /// Anything else the store refused.
    Refused,
}

#[derive(Debug, thiserror::Error)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    /// `s3://bucket/prefix` or the local folder.
    pub destination: String,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination)?;
        if let Some(key) = &self.key {
            write!(f, ", key {key:?}")?;
        }
        write!(f, ": {} ({})", self.message, self.fix())
    }
}

impl StoreError {
    pub fn new(
        kind: StoreErrorKind,
        destination: &str,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError {
            kind,
            destination: destination.to_string(),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    fn fix(&self) -> &'static str {
        match self.kind {
            StoreErrorKind::Unavailable => {
                "check the endpoint (--endpoint-url, AWS_ENDPOINT_URL) and the network, then run \
                 again: what is already uploaded is skipped"
            }
            StoreErrorKind::NoSuchBucket => {
                "create the bucket, or correct the bucket name and --endpoint-url/--region"
            }
            StoreErrorKind::Denied => {
                "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile) and \
                 that they may list, read, write and delete under the prefix"
            }
            StoreErrorKind::Integrity => {
                "the bytes changed in transit or on disk: run again; if it persists, check the \
                 local disk"
            }
            StoreErrorKind::Local => "check the local package folder and its permissions",
            StoreErrorKind::Refused => "see the store's message",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Unavailable | StoreErrorKind::Integrity
        )
    }
}

/// An object as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's ETag without quotes: the MD5 of the bytes for a single-part upload on
    /// S3-compatible stores; `None` where the store has none.
    pub etag: Option<String>,
}

/// One object to upload.
#[derive(Clone, Debug)]
pub struct Upload<'a> {
    pub artifact: &'a Artifact,
    pub cache_control: &'a str,
}

/// Counts of one batch of uploads.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchStats {
    pub objects: u64,
    pub bytes: u64,
    pub requests: u64,
}

/// Where uploads show progress (a terminal bar); called from store threads.
pub trait UploadProgress: Sync {
    fn start(&self, _objects: u64, _bytes: u64) {}
    fn uploaded(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// A progress sink that shows nothing.
pub struct NoUploadProgress;
impl UploadProgress for NoUploadProgress {}

/// An object store: a local folder or an S3-compatible bucket under a prefix. Keys are
/// relative to the prefix. Implementations bound their own concurrency.
pub trait Store: Send + Sync {
    /// `s3://bucket/prefix` or the folder, for reports, errors and the idempotency key.
    fn destination(&self) -> String;
    /// Where an object can be read when no public URL is given (`s3://…` or a path).
    fn locator(&self, key: &str) -> String;
    /// Every object under `prefix` (relative keys); one paginated listing.
    fn list(&self, prefix: &str) -> Result<BTreeMap<String, ObjectInfo>, StoreError>;
    /// Upload a batch concurrently, each with a checksum the store verifies; an object over
    /// the multipart threshold goes in parts (aborted on failure).
    fn put(
        &self,
        uploads: &[Upload<'_>],
        progress: &dyn UploadProgress,
    ) -> Result<BatchStats, StoreError>;
    /// Write a small object from memory.
    fn put_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError>;
    /// Read a small object; `None` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stream an object into a local file, never holding it whole in memory, hashing it as it
    /// passes; `None` when it does not exist.
    fn download(&self, key: &str, to: &std::path::Path) -> Result<Option<Downloaded>, StoreError>;
    /// Delete objects (absent ones are not an error); returns the requests made.
    fn delete(&self, keys: &[String]) -> Result<u64, StoreError>;
    /// Abort incomplete multipart uploads under `prefix` (left by a run that lost the store
    /// halfway); returns (aborted, requests).
    fn abort_incomplete(&self, _prefix: &str) -> Result<(u64, u64), StoreError> {
        Ok((0, 0))
    }
}

/// A catalog notification: the signed body and its idempotency key.
#[derive(Clone, Debug)]
pub struct Notification {
    /// The `webhook-id` header: the same for a retry or a re-run of the same publication.
    pub webhook_id: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    Delivered,
    /// The receiver answered with a 4xx other than 429: permanent.
    Rejected,
    NotConfigured,
}

impl DeliveryStatus {
    /// As the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Rejected => "rejected",
            DeliveryStatus::NotConfigured => "not-configured",
        }
    }
}

/// What the receiver made of a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The last HTTP status, when a request got an answer.
    pub http_status: Option<u16>,
}

/// The catalog seam: HTTP webhooks, or none.
pub trait CatalogNotifier: Send + Sync {
    fn is_configured(&self) -> bool;
    /// Deliver, retrying 5xx, 429 and network errors; `Err` when those retries ran out.
    fn notify(&self, n: &Notification) -> Result<Delivery, NotifyError>;
}

#[derive(Debug, thiserror::Error)]
#[error("catalog notification {webhook_id} to {url} failed after {attempts} attempt(s): {message} (the package is published; run the same command again to retry the notification)")]
pub struct NotifyError {
    /// The receiver URL without credentials or query.
    pub url: String,
    pub webhook_id: String,
    pub attempts: u32,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("track {track:?}: nothing to unpublish under {destination}")]
    NotPublished { track: String, destination: String },
}

impl PublishError {
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishError::Store(e) => e.is_retryable(),
            PublishError::Notify(_) => true,
            PublishError::NotPublished { .. } => false,
        }
    }
}

/// How publishing behaves; the defaults are documented in the README.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Cache-Control of objects under a version folder.
    pub cache_control_immutable: String,
    /// Cache-Control of entry manifests and the catalog record.
    pub cache_control_entry: String,
    /// Base URL a CDN serves the prefix under.
    pub public_url: Option<String>,
    /// Delete the track's objects the package does not name (older versions).
    pub prune: bool,
    /// Publish a release a DDEX `TestMessage` delivered (refused otherwise: a test message is
    /// validated and pressed, never published unless asked).
    pub test_messages: bool,
}

pub const DEFAULT_CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const DEFAULT_CACHE_ENTRY: &str = "public, max-age=60";

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            cache_control_immutable: DEFAULT_CACHE_IMMUTABLE.into(),
            cache_control_entry: DEFAULT_CACHE_ENTRY.into(),
            public_url: None,
            prune: false,
            test_messages: false,
        }
    }
}

impl PublishOptions {
    fn cache_control(&self, kind: ArtifactKind) -> &str {
        if kind.is_immutable() {
            &self.cache_control_immutable
        } else {
            &self.cache_control_entry
        }
    }
}

/// Where an object is read from: the public URL (base, `/`, key) or the store's locator.
pub fn object_url(public_url: Option<&str>, store: &dyn Store, key: &str) -> String {
    match public_url {
        Some(base) => format!("{}/{key}", base.trim_end_matches('/')),
        None => store.locator(key),
    }
}

/// A track's package as the pipeline hands it over.
#[derive(Clone, Debug)]
pub struct TrackPackage {
    pub track: String,
    /// In upload order (`ArtifactKind::ORDER`).
    pub artifacts: Vec<Artifact>,
}

/// The body of a `track.published` notification, given the digest of the package it
/// announces (which publish computes as it reads the package).
pub type NotificationBody<'a> = &'a (dyn Fn(&str) -> Vec<u8> + Sync);

/// `tracks[].publish` in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishReport {
    pub destination: String,
    /// Objects uploaded by this run.
    pub uploaded: u64,
    /// Objects already there and identical.
    pub skipped: u64,
    /// Bytes uploaded by this run.
    pub bytes: u64,
    /// Requests made to the store (listing, uploads and parts, reads, deletes).
    pub requests: u64,
    pub seconds: f64,
    /// Public URL (or store locator) of every entry manifest and the catalog record, by key.
    pub urls: BTreeMap<String, String>,
    /// Objects of older versions deleted (`--prune`).
    pub pruned: u64,
    /// Objects of what the package no longer holds, deleted: the entry manifests of a tier
    /// an updated release no longer allows (DDEX deals ended or changed), and the folders of
    /// rungs (or the cover) the package no longer has.
    #[serde(default)]
    pub withdrawn: u64,
    pub notification: NotificationReport,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotificationReport {
    pub status: DeliveryStatus,
    /// Requests made by this run (0 when an earlier run delivered it).
    pub attempts: u32,
    pub webhook_id: Option<String>,
}

impl NotificationReport {
    fn not_configured() -> NotificationReport {
        NotificationReport {
            status: DeliveryStatus::NotConfigured,
            attempts: 0,
            webhook_id: None,
        }
    }

    /// The catalog answered with a permanent refusal (a 4xx other than 429).
    pub fn rejected(&self) -> bool {
        self.status == DeliveryStatus::Rejected
    }
}

/// The delivery record beside a published track (`layout::DELIVERY_RECORD`).
#[derive(Debug, Serialize, Deserialize)]
struct DeliveryRecord {
    webhook_id: String,
    #[serde(rename = "type")]
    kind: String,
    status: DeliveryStatus,
    /// For a takedown under way: the body to send again if the run is interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
}

impl DeliveryRecord {
    /// The record at `key`, when the listing `existing` holds it; one request when it does.
    fn read(
        store: &dyn Store,
        key: &str,
        existing: &BTreeMap<String, ObjectInfo>,
        requests: &mut u64,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        if !existing.contains_key(key) {
            return Ok(None);
        }
        *requests += 1;
        Ok(store
            .get(key)?
            .and_then(|b| serde_json::from_slice::<DeliveryRecord>(&b).ok()))
    }

    /// Beside the track, never cached: it changes with every delivery.
    fn write(&self, store: &dyn Store, key: &str) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a record serialises");
        store.put_bytes(key, &bytes, "application/json", "no-store")
    }
}

/// What [`Store::download`] wrote: the object's size and SHA-256 (hex), taken as it streamed,
/// so a caller checking the content does not read the file a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub size: u64,
    pub sha256: String,
}

/// A download's local file, hashed as the bytes are written.
struct HashedFile {
    file: std::io::BufWriter<std::fs::File>,
    hash: Sha256,
    size: u64,
}

impl HashedFile {
    fn create(path: &std::path::Path) -> std::io::Result<HashedFile> {
        Ok(HashedFile {
            file: std::io::BufWriter::new(std::fs::File::create(path)?),
            hash: Sha256::new(),
            size: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write as _;
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        self.file.write_all(bytes)
    }

    fn finish(mut self) -> std::io::Result<Downloaded> {
        use std::io::Write as _;
        self.file.flush()?;
        Ok(Downloaded {
            size: self.size,
            sha256: hex(&self.hash.finalize()),
        })
    }
}

/// The idempotency key: a digest of the event, the track, what was published and where.
pub fn webhook_id(kind: &str, track: &str, content_sha256: &str, destination: &str) -> String {
    let mut h = Sha256::new();
    for part in [kind, track, content_sha256, destination] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("msg_{}", &hex(&h.finalize())[..32])
}

fn local_error(destination: &str, key: &str, e: std::io::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Local,
        destination,
        Some(key),
        format!("cannot read the local file: {e}"),
    )
}

/// Publish one track's package; see the module docs for the order.
pub fn publish_track(
    package: &TrackPackage,
    notification: NotificationBody,
    store: &dyn Store,
    notifier: &dyn CatalogNotifier,
    opts: &PublishOptions,
    progress: &dyn UploadProgress,
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let destination = store.destination();
    let prefix = layout::track_prefix(&package.track);
    let existing = store.list(&prefix)?;
    let mut requests = 1;

    // The package's identity: entry manifests and the catalog record name every version
    // folder, which are digests of the renditions' bytes.
    let mut content = Sha256::new();
    let mut todo: Vec<&Artifact> = Vec::new();
    let mut skipped = 0;
    let mut bytes_total = 0;
    for a in &package.artifacts {
        let size = std::fs::metadata(&a.path)
            .map_err(|e| local_error(&destination, &a.key, e))?
            .len();
        let same = if a.kind.is_immutable() {
            // The key holds a digest of the rendition's bytes: same key and size is the same
            // object (S3 writes are atomic, so it is whole).
            existing.get(&a.key).is_some_and(|o| o.size == size)
        } else {
            let bytes = std::fs::read(&a.path).map_err(|e| local_error(&destination, &a.key, e))?;
            content.update((a.key.len() as u64).to_be_bytes());
            content.update(a.key.as_bytes());
            content.update((bytes.len() as u64).to_be_bytes());
            content.update(&bytes);
            let md5 = hex(&md5::Md5::digest(&bytes));
            existing
                .get(&a.key)
                .is_some_and(|o| o.size == size && o.etag.as_deref() == Some(md5.as_str()))
        };
        if same {
            skipped += 1;
        } else {
            todo.push(a);
            bytes_total += size;
        }
    }
    let content_sha256 = hex(&content.finalize());

    // An interrupted run may have left incomplete multipart uploads; they can only exist
    // where something is still missing, so a complete package costs no extra request.
    if !todo.is_empty() {
        requests += store.abort_incomplete(&prefix)?.1;
    }

    progress.start(todo.len() as u64, bytes_total);
    let mut stats = BatchStats::default();
    for phase in ArtifactKind::ORDER {
        let batch: Vec<Upload> = todo
            .iter()
            .filter(|a| a.kind == phase)
            .map(|a| Upload {
                artifact: a,
                cache_control: opts.cache_control(a.kind),
            })
            .collect();
        if batch.is_empty() {
            continue;
        }
        let s = store.put(&batch, progress)?;
        stats.objects += s.objects;
        stats.bytes += s.bytes;
        stats.requests += s.requests;
    }
    progress.finish();
    requests += stats.requests;

    // What the package no longer holds, once the new package is up and before the catalog
    // hears of it: entry manifests first (players stop finding a withdrawn tier), then the
    // folders of rungs it no longer has. Old versions of kept rungs stay for --prune.
    let (manifests, folders) = withdrawn(package, &existing, &prefix);
    let withdrawn = (manifests.len() + folders.len()) as u64;
    let gone: BTreeSet<String> = manifests.iter().chain(&folders).cloned().collect();
    for keys in [manifests, folders] {
        if !keys.is_empty() {
            requests += store.delete(&keys)?;
        }
    }

    let urls: BTreeMap<String, String> = package
        .artifacts
        .iter()
        .filter(|a| a.kind.has_url())
        .map(|a| {
            let url = object_url(opts.public_url.as_deref(), store, &a.key);
            (a.key.clone(), url)
        })
        .collect();

    // The notification, unless this exact publication was delivered before.
    let kind = "track.published";
    let id = webhook_id(kind, &package.track, &content_sha256, &destination);
    let record_key = layout::track_key(&package.track, layout::DELIVERY_RECORD);
    let notification = if !notifier.is_configured() {
        NotificationReport::not_configured()
    } else {
        match DeliveryRecord::read(store, &record_key, &existing, &mut requests)? {
            Some(r) if r.webhook_id == id && r.status == DeliveryStatus::Delivered => {
                NotificationReport {
                    status: DeliveryStatus::Delivered,
                    attempts: 0,
                    webhook_id: Some(id),
                }
            }
            _ => {
                let n = Notification {
                    webhook_id: id.clone(),
                    body: notification(&content_sha256),
                };
                let delivery = notifier.notify(&n)?;
                let record = DeliveryRecord {
                    webhook_id: id.clone(),
                    kind: kind.into(),
                    status: delivery.status,
                    body: None,
                };
                record.write(store, &record_key)?;
                requests += 1;
                NotificationReport {
                    status: delivery.status,
                    attempts: delivery.attempts,
                    webhook_id: Some(id),
                }
            }
        }
    };

    let mut pruned = 0;
    if opts.prune {
        let keep: BTreeSet<&str> = package
            .artifacts
            .iter()
            .map(|a| a.key.as_str())
            .chain([record_key.as_str()])
            .collect();
        let old: Vec<String> = existing
            .keys()
            .filter(|k| !keep.contains(k.as_str()) && !gone.contains(*k))
            .cloned()
            .collect();
        pruned = old.len() as u64;
        if !old.is_empty() {
            requests += store.delete(&old)?;
        }
    }

    Ok(PublishReport {
        destination,
        uploaded: stats.objects,
        skipped,
        bytes: stats.bytes,
        requests,
        seconds: started.elapsed().as_secs_f64(),
        urls,
        pruned,
        withdrawn,
        notification,
    })
}

/// The keys of a track folder in the store that the package no longer has a place for:
/// (entry manifests at the folder's top, objects in folders no artifact of the package is
/// in). The catalog record and the delivery record are the package's own.
fn withdrawn(
    package: &TrackPackage,
    existing: &BTreeMap<String, ObjectInfo>,
    prefix: &str,
) -> (Vec<String>, Vec<String>) {
    let keys: BTreeSet<&str> = package.artifacts.iter().map(|a| a.key.as_str()).collect();
    let folders: BTreeSet<&str> = package
        .artifacts
        .iter()
        .filter_map(|a| a.key.strip_prefix(prefix)?.split_once('/').map(|(f, _)| f))
        .collect();
    let (mut manifests, mut others) = (Vec::new(), Vec::new());
    for key in existing.keys() {
        let Some(rel) = key.strip_prefix(prefix) else {
            continue;
        };
        match rel.split_once('/') {
            None if !keys.contains(key.as_str())
                && (rel.ends_with(".m3u8") || rel.ends_with(".mpd")) =>
            {
                manifests.push(key.clone())
            }
            Some((folder, _)) if !folders.contains(folder) => others.push(key.clone()),
            _ => {}
        }
    }
    (manifests, others)
}

/// What an unpublish did for one track.
#[derive(Clone, Debug, Serialize)]
pub struct UnpublishReport {
    pub track: String,
    pub destination: String,
    pub deleted: u64,
    pub requests: u64,
    pub notification: NotificationReport,
}

/// Take a track down: entry manifests first (players stop finding it), then everything else,
/// then a `track.unpublished` notification. Resumable: the notification body is kept in the
/// delivery record until it is delivered, so a run interrupted after the deletes still sends
/// it when run again. `body` builds the notification from the catalog record.
pub fn unpublish_track(
    track: &str,
    store: &dyn Store,
    notifier: &dyn CatalogNotifier,
    body: &dyn Fn(Option<&[u8]>) -> serde_json::Value,
) -> Result<UnpublishReport, PublishError> {
    let destination = store.destination();
    let prefix = layout::track_prefix(track);
    let existing = store.list(&prefix)?;
    let mut requests = 1;
    if existing.is_empty() {
        return Err(PublishError::NotPublished {
            track: track.into(),
            destination,
        });
    }
    let record_key = layout::track_key(track, layout::DELIVERY_RECORD);
    let catalog_key = layout::track_key(track, layout::CATALOG_RECORD);
    let kind = "track.unpublished";

    // The pending takedown: from an interrupted run, or made now from the catalog record.
    let earlier = DeliveryRecord::read(store, &record_key, &existing, &mut requests)?
        .filter(|r| r.kind == kind);
    let pending = match earlier {
        Some(r) => r,
        None => {
            let record = if existing.contains_key(&catalog_key) {
                requests += 1;
                store.get(&catalog_key)?
            } else {
                None
            };
            let body = body(record.as_deref());
            let digest = hex(&Sha256::digest(serde_json::to_vec(&body).expect("JSON")));
            let r = DeliveryRecord {
                webhook_id: webhook_id(kind, track, &digest, &destination),
                kind: kind.into(),
                status: DeliveryStatus::NotConfigured,
                body: Some(body),
            };
            r.write(store, &record_key)?;
            requests += 1;
            r
        }
    };

    // Entry manifests sit directly in the track folder; the catalog record goes with them.
    let (entries, rest): (Vec<String>, Vec<String>) = existing
        .keys()
        .filter(|k| **k != record_key)
        .cloned()
        .partition(|k| !k[prefix.len()..].contains('/'));
    let deleted = (entries.len() + rest.len()) as u64;
    if !entries.is_empty() {
        requests += store.delete(&entries)?;
    }
    if !rest.is_empty() {
        requests += store.delete(&rest)?;
    }

    let notification = if notifier.is_configured() {
        let body = pending.body.clone().unwrap_or_default();
        let n = Notification {
            webhook_id: pending.webhook_id.clone(),
            body: serde_json::to_vec(&body).expect("JSON"),
        };
        let d = notifier.notify(&n)?;
        NotificationReport {
            status: d.status,
            attempts: d.attempts,
            webhook_id: Some(pending.webhook_id.clone()),
        }
    } else {
        NotificationReport::not_configured()
    };
    requests += store.delete(std::slice::from_ref(&record_key))?;
    Ok(UnpublishReport {
        track: track.into(),
        destination,
        deleted: deleted + 1,
        requests,
        notification,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_differ_by_destination_and_content_only() {
        let a = webhook_id("track.published", "t", "c1", "s3://b/p");
        assert_eq!(a, webhook_id("track.published", "t", "c1", "s3://b/p"));
        assert_ne!(a, webhook_id("track.published", "t", "c1", "s3://b/q"));
        assert_ne!(a, webhook_id("track.published", "t", "c2", "s3://b/p"));
        assert_ne!(a, webhook_id("track.unpublished", "t", "c1", "s3://b/p"));
        assert!(a.starts_with("msg_") && a.len() == 36);
    }

    #[test]
    fn public_urls_join_base_and_key() {
        let store = LocalStore::new("/tmp/x".into());
        assert_eq!(
            object_url(Some("https://cdn.example/music/"), &store, "t/free.mpd"),
            "https://cdn.example/music/t/free.mpd"
        );
    }
}
