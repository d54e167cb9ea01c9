//! Where content keys come from: the [`KeySource`] seam and its implementations: raw keys
//! (`--key TIER=KID:KEY`), a CPIX document (`--cpix FILE`) and, with the `services` feature, a
//! key server asked with CPIX over HTTPS in the shape of SPEKE v2 (`--key-server URL`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cpix::{self, CpixKeys};
use super::{ContentKey, DrmSystem, KeyId, Scheme, TrackKeys};
use crate::ladder::Tier;

/// Why a track's keys could not be had. No variant holds a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file, a raw key or a key server's answer is malformed.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// The source has no key for a protected tier of a track.
    #[error("{origin}: no key for tier {tier} of track {track:?} (give one: a ContentKeyUsageRule with intendedTrackType=\"{tier}\", or --key {tier}=KID:KEY)")]
    Missing {
        origin: String,
        tier: Tier,
        track: String,
    },
    /// The key server cannot be reached or failed (5xx): running again may succeed.
    #[error("key server {url}: {message} (retried later)")]
    Unavailable { url: String, message: String },
    /// The key server refused the content (4xx): running again will not help.
    #[error("key server {url} refused the keys of {content:?}: HTTP {status}{detail}")]
    Refused {
        url: String,
        content: String,
        status: u16,
        detail: String,
    },
}

impl KeyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, KeyError::Unavailable { .. })
    }
}

/// What a run asks of a key source for one track.
#[derive(Clone, Copy, Debug)]
pub struct KeyRequest<'a> {
    /// The track's id (its ISRC when known).
    pub content_id: &'a str,
    /// The tiers of the track to protect.
    pub tiers: &'a [Tier],
    pub scheme: Scheme,
    /// The DRM systems to signal beside ClearKey (a key server returns their `pssh`).
    pub systems: &'a [[u8; 16]],
}

/// Where keys come from: asked once per protected track, before anything is encoded.
pub trait KeySource: Send + Sync {
    fn track_keys(&self, request: &KeyRequest<'_>) -> Result<TrackKeys, KeyError>;

    /// The tiers this source protects whatever the ladder says (raw keys do).
    fn forced_tiers(&self) -> Vec<Tier> {
        Vec::new()
    }
}

/// `--key TIER=KID:KEY`: that tier of every track, with that key.
#[derive(Debug, Default)]
pub struct RawKeys {
    keys: Vec<(Tier, ContentKey)>,
}

impl RawKeys {
    /// Parse `--key` values. The error repeats the tier and key id, never the key.
    pub fn parse(values: &[String]) -> Result<RawKeys, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            origin: "--key".into(),
            message,
        };
        let mut keys: Vec<(Tier, ContentKey)> = Vec::new();
        for v in values {
            let (tier, rest) = v.split_once('=').ok_or_else(|| {
                invalid(
                    "expected TIER=KID:KEY (32 hex digits each), e.g. premium=0123...:4567..."
                        .into(),
                )
            })?;
            let tier = Tier::parse(tier).ok_or_else(|| {
                invalid(format!("{tier:?} is not a tier (free, premium or hifi)"))
            })?;
            let (kid, key) = rest
                .split_once(':')
                .ok_or_else(|| invalid(format!("{tier}=...: expected KID:KEY after the tier")))?;
            let kid = KeyId::parse(kid)
                .ok_or_else(|| invalid(format!("{tier}=...: the key id is not 32 hex digits")))?;
            let key = super::parse_hex16(key).ok_or_else(|| {
                invalid(format!("{tier}={kid}:...: the key is not 32 hex digits"))
            })?;
            if keys.iter().any(|(t, _)| *t == tier) {
                return Err(invalid(format!("{tier} is given twice")));
            }
            keys.push((tier, ContentKey::new(kid, key)));
        }
        Ok(RawKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl KeySource for RawKeys {
    fn track_keys(&self, request: &KeyRequest<'_>) -> Result<TrackKeys, KeyError> {
        let content_id = request.content_id;
        let mut out = TrackKeys::default();
        for &tier in request.tiers {
            let (_, key) =
                self.keys
                    .iter()
                    .find(|(t, _)| *t == tier)
                    .ok_or_else(|| KeyError::Missing {
                        origin: "--key".into(),
                        tier,
                        track: content_id.into(),
                    })?;
            out.tiers.push((tier, key.clone()));
        }
        Ok(out)
    }

    fn forced_tiers(&self) -> Vec<Tier> {
        self.keys.iter().map(|(t, _)| *t).collect()
    }
}

/// `--cpix FILE`: a DASH-IF CPIX document, read and checked once.
#[derive(Debug)]
pub struct CpixFile {
    path: PathBuf,
    keys: CpixKeys,
}

impl CpixFile {
    pub fn open(path: &Path) -> Result<CpixFile, KeyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Invalid {
            origin: origin.clone(),
            message: format!("cannot read the CPIX document: {e}"),
        })?;
        let keys = cpix::parse(&text)
            .and_then(|k| k.check_complete().map(|()| k))
            .map_err(|message| KeyError::Invalid { origin, message })?;
        Ok(CpixFile {
            path: path.to_owned(),
            keys,
        })
    }
}

impl KeySource for CpixFile {
    fn track_keys(&self, request: &KeyRequest<'_>) -> Result<TrackKeys, KeyError> {
        let content_id = request.content_id;
        let mut out = TrackKeys::default();
        for &tier in request.tiers {
            let key = self
                .keys
                .key_for(content_id, tier)
                .ok_or_else(|| KeyError::Missing {
                    origin: self.path.display().to_string(),
                    tier,
                    track: content_id.into(),
                })?;
            for s in self.keys.systems_for(&key.kid) {
                if !out
                    .systems
                    .iter()
                    .any(|o: &DrmSystem| o.system_id == s.system_id)
                {
                    out.systems.push(s);
                }
            }
            out.tiers.push((tier, key.clone()));
        }
        Ok(out)
    }
}

/// The key id pressing asks a key server for: derived from the content id and the tier, so a
/// job run again asks for the same key (and gets the same bytes).
pub fn derived_kid(content_id: &str, tier: Tier) -> KeyId {
    let d = Sha256::new()
        .chain_update(b"pressing kid\0")
        .chain_update(content_id.as_bytes())
        .chain_update([0])
        .chain_update(tier.as_str().as_bytes())
        .finalize();
    let mut kid = [0u8; 16];
    kid.copy_from_slice(&d[..16]);
    // An RFC 9562 version 8 (custom) UUID.
    kid[6] = (kid[6] & 0x0f) | 0x80;
    kid[8] = (kid[8] & 0x3f) | 0x80;
    KeyId(kid)
}

#[cfg(feature = "services")]
pub use server::KeyServer;

#[cfg(feature = "services")]
mod server {
    use std::time::Duration;

    use super::*;

    /// Attempts per track before the failure is the job's (the worker retries the job later).
    const ATTEMPTS: u32 = 3;

    /// A key server that answers CPIX requests (the SPEKE v2 shape): POST the document naming
    /// the content and the key ids, receive it back with the keys and each system's signalling.
    pub struct KeyServer {
        url: String,
        client: reqwest::Client,
        runtime: tokio::runtime::Runtime,
    }

    impl KeyServer {
        /// `ca`: a PEM file of extra roots to trust (a private key server's own CA).
        pub fn new(url: &str, ca: Option<&Path>) -> Result<KeyServer, KeyError> {
            let invalid = |message: String| KeyError::Invalid {
                origin: format!("key server {url}"),
                message,
            };
            let mut builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30));
            if let Some(ca) = ca {
                let pem = std::fs::read(ca).map_err(|e| {
                    invalid(format!("cannot read the CA file {}: {e}", ca.display()))
                })?;
                for cert in reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| invalid(format!("{}: not a PEM certificate: {e}", ca.display())))?
                {
                    builder = builder.add_root_certificate(cert);
                }
            }
            let client = builder
                .build()
                .map_err(|e| invalid(format!("HTTP client: {e}")))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| invalid(format!("runtime: {e}")))?;
            Ok(KeyServer {
                url: url.to_string(),
                client,
                runtime,
            })
        }

        fn ask(&self, body: String, content_id: &str) -> Result<String, KeyError> {
            let unavailable = |message: String| KeyError::Unavailable {
                url: self.url.clone(),
                message,
            };
            self.runtime.block_on(async {
                let mut last = None;
                for attempt in 0..ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
                    }
                    let sent = self
                        .client
                        .post(&self.url)
                        .header("content-type", "application/xml")
                        .header("x-speke-version", "2.0")
                        .body(body.clone())
                        .send()
                        .await;
                    let response = match sent {
                        Ok(r) => r,
                        Err(e) => {
                            last = Some(unavailable(format!("cannot reach it: {}", plain(&e))));
                            continue;
                        }
                    };
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(text);
                    }
                    if status.is_client_error() && status.as_u16() != 429 {
                        // Never echo a body that could hold a key: the first line, if short.
                        let first = text.lines().next().unwrap_or("").trim();
                        let detail =
                            if !first.is_empty() && first.len() <= 200 && !first.contains('<') {
                                format!(": {first}")
                            } else {
                                String::new()
                            };
                        return Err(KeyError::Refused {
                            url: self.url.clone(),
                            content: content_id.into(),
                            status: status.as_u16(),
                            detail,
                        });
                    }
                    last = Some(unavailable(format!("HTTP {}", status.as_u16())));
                }
                Err(last.unwrap_or_else(|| unavailable("no answer".into())))
            })
        }
    }

    /// An error's text without the URL's query (a signed URL's credentials).
    fn plain(e: &reqwest::Error) -> String {
        let mut s = e.to_string();
        if let Some(url) = e.url() {
            if let Some(q) = url.query() {
                s = s.replace(q, "...");
            }
        }
        s
    }

    impl KeySource for KeyServer {
        fn track_keys(&self, request: &KeyRequest<'_>) -> Result<TrackKeys, KeyError> {
            let content_id = request.content_id;
            let asked: Vec<(Tier, KeyId)> = request
                .tiers
                .iter()
                .map(|&t| (t, derived_kid(content_id, t)))
                .collect();
            let body = cpix::request(content_id, request.scheme.as_str(), &asked, request.systems);
            let answer = self.ask(body, content_id)?;
            let invalid = |message: String| KeyError::Invalid {
                origin: format!("key server {}", self.url),
                message: format!("its answer for {content_id:?}: {message}"),
            };
            let keys = cpix::parse(&answer).map_err(invalid)?;
            let mut out = TrackKeys::default();
            for (tier, kid) in asked {
                let key = keys
                    .key_for(content_id, tier)
                    .filter(|k| k.kid == kid)
                    .ok_or_else(|| invalid(format!("no key {kid} for tier {tier}")))?;
                for s in keys.systems_for(&kid) {
                    if !out.systems.iter().any(|o| o.system_id == s.system_id) {
                        out.systems.push(s);
                    }
                }
                out.tiers.push((tier, key.clone()));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_parse_and_errors_never_hold_the_key() {
        let k = RawKeys::parse(&[
            "premium=00112233445566778899aabbccddeeff:0f0e0d0c0b0a09080706050403020100".into(),
        ])
        .unwrap();
        let ask = |tiers: &'static [Tier]| KeyRequest {
            content_id: "T",
            tiers,
            scheme: Scheme::Cbcs,
            systems: &[],
        };
        let t = k.track_keys(&ask(&[Tier::Premium])).unwrap();
        assert_eq!(t.tiers[0].1.kid.hex(), "00112233445566778899aabbccddeeff");
        assert_eq!(k.forced_tiers(), vec![Tier::Premium]);
        let missing = k.track_keys(&ask(&[Tier::Hifi])).unwrap_err().to_string();
        assert!(missing.contains("no key for tier hifi"), "{missing}");
        let bad = RawKeys::parse(&[
            "premium=00112233445566778899aabbccddeeff:0f0e0d0c0b0a0908070605040302010".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(bad.contains("the key is not 32 hex digits"), "{bad}");
        assert!(!bad.contains("0f0e0d0c"), "{bad}");
        assert!(RawKeys::parse(&["gold=a:b".into()])
            .unwrap_err()
            .to_string()
            .contains("\"gold\" is not a tier"));
    }

    #[test]
    fn derived_key_ids_differ_per_track_and_tier_and_repeat() {
        let a = derived_kid("GBAYE0000001", Tier::Premium);
        assert_eq!(a, derived_kid("GBAYE0000001", Tier::Premium));
        assert_ne!(a, derived_kid("GBAYE0000001", Tier::Hifi));
        assert_ne!(a, derived_kid("GBAYE0000002", Tier::Premium));
        assert_eq!(a.0[6] >> 4, 8);
    }
}
