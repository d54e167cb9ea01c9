//! An S3-compatible bucket as a store (AWS S3, Garage, MinIO, Cloudflare R2, Ceph, SeaweedFS),
//! through `aws-sdk-s3`.
//!
//! - Credentials, region and endpoint come from the standard AWS chain (environment, shared
//!   config and credentials files and profiles, web identity, container and instance roles;
//!   `AWS_ENDPOINT_URL`), with explicit overrides. No secret is ever formatted into a message.
//! - Every upload carries a CRC32C that pressing computed, sent as a header over an in-memory
//!   body: stores that refuse the SDK's streamed-trailer (aws-chunked) signing accept it, and
//!   the store verifies it. Objects over the multipart threshold go in parts, each with its own
//!   CRC32C; a failed multipart upload is aborted.
//! - Transient failures (throttling, 5xx, timeouts, connection errors) are retried by the SDK's
//!   standard strategy: exponential backoff with jitter.
//! - No ACL headers: buckets with Block Public Access and most non-AWS stores refuse them.
//!
//! Tokio stays inside: the store owns a small runtime and is synchronous to its callers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use base64::Engine as _;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{BatchStats, ObjectInfo, Store, StoreError, StoreErrorKind, Upload, UploadProgress};

/// Attempts per request (the first and the retries) before a transient error is reported.
pub const MAX_ATTEMPTS: u32 = 6;

/// Keys per DeleteObjects request (the S3 limit).
const DELETE_BATCH: usize = 1000;

/// How to reach the bucket; `None` leaves the choice to the AWS chain.
#[derive(Clone, Debug)]
pub struct S3Options {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most non-AWS stores need.
    pub path_style: bool,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Objects of this many bytes or more go multipart.
    pub multipart_threshold: u64,
    /// Bytes per part (at least 5 MiB, the S3 minimum).
    pub part_size: u64,
}

pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 << 20;
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint_url: None,
            region: None,
            profile: None,
            path_style: false,
            concurrency: DEFAULT_CONCURRENCY,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

/// `s3://bucket/prefix` split into its bucket and prefix (without slashes at the ends).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

pub struct S3Store {
    runtime: Runtime,
    client: Client,
    bucket: String,
    prefix: String,
    opts: S3Options,
}

/// The CRC32C of `bytes`, as the `x-amz-checksum-crc32c` header wants it.
pub fn crc32c_base64(bytes: &[u8]) -> String {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// The classes of an SDK failure, from its error code and HTTP status; the message is the
/// code and the store's own message (never a credential).
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> (StoreErrorKind, String) {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("");
            let message = err.message().unwrap_or("");
            let kind = match code {
                "NoSuchBucket" => StoreErrorKind::NoSuchBucket,
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidToken"
                | "ExpiredToken"
                | "AllAccessDisabled" => StoreErrorKind::Denied,
                "BadDigest"
                | "InvalidDigest"
                | "XAmzContentChecksumMismatch"
                | "XAmzContentSHA256Mismatch" => StoreErrorKind::Integrity,
                "SlowDown"
                | "ServiceUnavailable"
                | "InternalError"
                | "RequestTimeout"
                | "Throttling"
                | "ThrottlingException" => StoreErrorKind::Unavailable,
                _ => StoreErrorKind::Refused,
            };
            let text = match (code, message) {
                ("", "") => format!("the store refused the request ({err})"),
                (c, "") => format!("the store answered {c}"),
                (c, m) => format!("the store answered {c}: {m}"),
            };
            (kind, text)
        }
        SdkError::TimeoutError(_) => (
            StoreErrorKind::Unavailable,
            format!("no answer in time after {MAX_ATTEMPTS} attempts"),
        ),
        SdkError::DispatchFailure(d) => {
            let text = format!(
                "cannot reach the store after {MAX_ATTEMPTS} attempts: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            );
            if d.is_user() || d.is_other() {
                // No credentials, a malformed endpoint: retrying cannot help.
                (StoreErrorKind::Denied, text)
            } else {
                (StoreErrorKind::Unavailable, text)
            }
        }
        SdkError::ResponseError(_) => (
            StoreErrorKind::Unavailable,
            format!(
                "unreadable answer from the store: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ),
        ),
        _ => (
            StoreErrorKind::Denied,
            format!(
                "cannot make the request: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ),
        ),
    }
}

/// Everything an upload task needs, shared across tasks.
struct Shared {
    client: Client,
    bucket: String,
    destination: String,
    part_size: u64,
    threshold: u64,
}

impl Shared {
    fn fail<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        &self,
        key: &str,
        action: &str,
        e: &SdkError<E, R>,
    ) -> StoreError {
        let (kind, message) = classify(e);
        self.error(kind, Some(key), format!("cannot {action}: {message}"))
    }

    /// A failure at this store, of `key` when there is one.
    fn error(&self, kind: StoreErrorKind, key: Option<&str>, message: String) -> StoreError {
        StoreError::new(kind, &self.destination, key, message)
    }

    fn local(&self, key: &str, e: std::io::Error) -> StoreError {
        let message = format!("cannot read the local file: {e}");
        self.error(StoreErrorKind::Local, Some(key), message)
    }

    /// One object; returns (bytes, requests).
    async fn upload(
        &self,
        full_key: String,
        rel_key: String,
        path: std::path::PathBuf,
        content_type: String,
        cache_control: String,
    ) -> Result<(u64, u64), StoreError> {
        let size = std::fs::metadata(&path)
            .map_err(|e| self.local(&rel_key, e))?
            .len();
        if size < self.threshold {
            let bytes = std::fs::read(&path).map_err(|e| self.local(&rel_key, e))?;
            let crc = crc32c_base64(&bytes);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full_key)
                .content_type(content_type)
                .cache_control(cache_control)
                .checksum_crc32_c(crc)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| self.fail(&rel_key, "upload", &e))?;
            return Ok((size, 1));
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full_key)
            .content_type(content_type)
            .cache_control(cache_control)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| self.fail(&rel_key, "start a multipart upload", &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let parts = self
            .upload_parts(&full_key, &rel_key, &path, size, &upload_id)
            .await;
        match parts {
            Ok(parts) => {
                let n = parts.len() as u64;
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&full_key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.fail(&rel_key, "complete the multipart upload", &e))?;
                Ok((size, n + 2))
            }
            Err(e) => {
                // Leave no incomplete upload behind (its parts would be billed and hidden).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&full_key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        full_key: &str,
        rel_key: &str,
        path: &std::path::Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let mut file = File::open(path).map_err(|e| self.local(rel_key, e))?;
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let len = self.part_size.min(size - offset);
            let mut buf = vec![0; len as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(|e| self.local(rel_key, e))?;
            let crc = crc32c_base64(&buf);
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(full_key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_crc32_c(&crc)
                .body(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| self.fail(rel_key, &format!("upload part {number}"), &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .checksum_crc32_c(crc)
                    .build(),
            );
            offset += len;
            number += 1;
        }
        Ok(parts)
    }
}

impl S3Store {
    /// Connect to `s3://bucket/prefix` (nothing is sent until the first request).
    pub fn new(url: &str, opts: S3Options) -> Result<S3Store, StoreError> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Refused,
                url,
                None,
                "not an s3://bucket/prefix URL",
            )
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pressing-s3")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Local,
                    url,
                    None,
                    format!("cannot start: {e}"),
                )
            })?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        // S3-compatible stores often have no region of their own; the SDK needs one to sign.
        let region = RegionProviderChain::first_try(opts.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::new("us-east-1"));
        loader = loader.region(region);
        if let Some(e) = &opts.endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let sdk = runtime.block_on(loader.load());
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(opts.path_style)
            // Checksums are computed here and sent as headers (see the module docs).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            )
            .build();
        Ok(S3Store {
            runtime,
            client: Client::from_conf(config),
            bucket,
            prefix,
            opts,
        })
    }

    /// GET an object: `None` when there is no such key.
    async fn open_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.shared().fail(key, "read", &e)),
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn shared(&self) -> Shared {
        Shared {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            destination: self.destination(),
            part_size: self.opts.part_size.max(5 << 20),
            threshold: self.opts.multipart_threshold,
        }
    }

    /// The SDK client, for tests and tools that inspect the bucket.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Store for S3Store {
    fn destination(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn locator(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    fn list(&self, prefix: &str) -> Result<BTreeMap<String, ObjectInfo>, StoreError> {
        let shared = self.shared();
        let full = self.full_key(prefix);
        let strip = self.full_key("").len();
        self.runtime.block_on(async {
            let mut out = BTreeMap::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| shared.fail(prefix, "list", &e))?;
                for o in page.contents() {
                    let Some(key) = o.key() else { continue };
                    out.insert(
                        key[strip..].to_string(),
                        ObjectInfo {
                            size: o.size().unwrap_or(0).max(0) as u64,
                            etag: o.e_tag().map(|t| t.trim_matches('"').to_string()),
                        },
                    );
                }
            }
            Ok(out)
        })
    }

    fn put(
        &self,
        uploads: &[Upload<'_>],
        progress: &dyn UploadProgress,
    ) -> Result<BatchStats, StoreError> {
        let shared = Arc::new(self.shared());
        let limit = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        self.runtime.block_on(async {
            let mut tasks = JoinSet::new();
            let mut stats = BatchStats::default();
            let mut first_error = None;
            let mut queue = uploads.iter();
            loop {
                // Keep `concurrency` uploads in flight; stop starting new ones after an error
                // but let those in flight finish (or abort their multipart uploads).
                while first_error.is_none() && limit.available_permits() > 0 {
                    let Some(u) = queue.next() else { break };
                    let permit = Arc::clone(&limit)
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed");
                    let shared = Arc::clone(&shared);
                    let a = u.artifact;
                    let args = (
                        self.full_key(&a.key),
                        a.key.clone(),
                        a.path.clone(),
                        a.content_type.to_string(),
                        u.cache_control.to_string(),
                    );
                    tasks.spawn(async move {
                        let r = shared.upload(args.0, args.1, args.2, args.3, args.4).await;
                        drop(permit);
                        r
                    });
                }
                let Some(done) = tasks.join_next().await else {
                    break;
                };
                match done {
                    Ok(Ok((bytes, requests))) => {
                        progress.uploaded(bytes);
                        stats.objects += 1;
                        stats.bytes += bytes;
                        stats.requests += requests;
                    }
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => {
                        first_error.get_or_insert(shared.error(
                            StoreErrorKind::Local,
                            None,
                            format!("an upload task failed: {e}"),
                        ));
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(stats),
            }
        })
    }

    fn put_bytes(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        cache_control: &str,
    ) -> Result<(), StoreError> {
        let shared = self.shared();
        self.runtime.block_on(async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full_key(key))
                .content_type(content_type)
                .cache_control(cache_control)
                .checksum_crc32_c(crc32c_base64(bytes))
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await
                .map_err(|e| shared.fail(key, "upload", &e))?;
            Ok(())
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let shared = self.shared();
        self.runtime.block_on(async {
            let Some(out) = self.open_object(key).await? else {
                return Ok(None);
            };
            let body = out.body.collect().await.map_err(|e| {
                shared.error(
                    StoreErrorKind::Unavailable,
                    Some(key),
                    format!("cannot read: {e}"),
                )
            })?;
            Ok(Some(body.into_bytes().to_vec()))
        })
    }

    fn download(
        &self,
        key: &str,
        to: &std::path::Path,
    ) -> Result<Option<super::Downloaded>, StoreError> {
        let shared = self.shared();
        let local = |e: std::io::Error| {
            shared.error(
                StoreErrorKind::Local,
                Some(key),
                format!("cannot write {}: {e}", to.display()),
            )
        };
        self.runtime.block_on(async {
            let Some(mut out) = self.open_object(key).await? else {
                return Ok(None);
            };
            let mut file = super::HashedFile::create(to).map_err(local)?;
            while let Some(chunk) = out.body.next().await {
                let chunk = chunk.map_err(|e| {
                    shared.error(
                        StoreErrorKind::Unavailable,
                        Some(key),
                        format!("download broke off: {e}"),
                    )
                })?;
                file.write(&chunk).map_err(local)?;
            }
            file.finish().map(Some).map_err(local)
        })
    }

    fn abort_incomplete(&self, prefix: &str) -> Result<(u64, u64), StoreError> {
        let shared = self.shared();
        let full = self.full_key(prefix);
        self.runtime.block_on(async {
            let (mut aborted, mut requests) = (0, 0);
            let mut key_marker: Option<String> = None;
            let mut id_marker: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_key_marker(key_marker.take())
                    .set_upload_id_marker(id_marker.take())
                    .send()
                    .await
                    .map_err(|e| shared.fail(prefix, "list incomplete uploads", &e))?;
                requests += 1;
                for u in page.uploads() {
                    let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                        continue;
                    };
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await
                        .map_err(|e| shared.fail(prefix, "abort an incomplete upload", &e))?;
                    aborted += 1;
                    requests += 1;
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_string);
                id_marker = page.next_upload_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            }
            Ok((aborted, requests))
        })
    }

    fn delete(&self, keys: &[String]) -> Result<u64, StoreError> {
        let shared = self.shared();
        self.runtime.block_on(async {
            let mut requests = 0;
            for batch in keys.chunks(DELETE_BATCH) {
                let objects = batch
                    .iter()
                    .map(|k| ObjectIdentifier::builder().key(self.full_key(k)).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        shared.error(
                            StoreErrorKind::Refused,
                            None,
                            format!("cannot name the objects to delete: {e}"),
                        )
                    })?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| {
                        shared.error(
                            StoreErrorKind::Refused,
                            None,
                            format!("cannot build the delete request: {e}"),
                        )
                    })?;
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| shared.fail(&batch[0], "delete", &e))?;
                requests += 1;
                if let Some(err) = out.errors().first() {
                    let key = err.key().unwrap_or_default();
                    let rel = key.get(self.full_key("").len()..).unwrap_or(key);
                    return Err(shared.error(
                        StoreErrorKind::Refused,
                        Some(rel),
                        format!(
                            "cannot delete: {} {}",
                            err.code().unwrap_or_default(),
                            err.message().unwrap_or_default()
                        ),
                    ));
                }
            }
            Ok(requests)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://media/streams/v1/"),
            Some(("media".into(), "streams/v1".into()))
        );
        assert_eq!(
            parse_url("s3://media"),
            Some(("media".into(), String::new()))
        );
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/local/dir"), None);
    }

    #[test]
    fn crc32c_matches_the_rfc_3720_check_value() {
        // CRC32C("123456789") = 0xE3069283 (RFC 3720 B.4).
        let expected =
            base64::engine::general_purpose::STANDARD.encode(0xE306_9283u32.to_be_bytes());
        assert_eq!(crc32c_base64(b"123456789"), expected);
    }
}
