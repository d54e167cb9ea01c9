//! Protection: Common Encryption (ISO/IEC 23001-7) of a rendition's samples, and the keys it
//! uses.
//!
//! A protected tier's renditions are encrypted with that tier's content key for the track, in
//! one of the two schemes every DRM system accepts for audio:
//!
//! - `cbcs` (the default): AES-128-CBC over every whole 16-byte block of each sample (the
//!   trailing partial block stays clear, as 23001-7 10.4 has it), no pattern (audio tracks
//!   are encrypted whole: `crypt_byte_block` = `skip_byte_block` = 0), a constant IV per
//!   rendition in `tenc`. There is then no per-sample auxiliary information to carry.
//! - `cenc`: AES-128-CTR over each whole sample, a 16-byte IV per sample in `senc` (with
//!   `saiz` and `saio`).
//!
//! IVs never repeat under one key: a rendition's IVs start from a seed that hashes the key id,
//! the track and the rendition (`iv_seed`), and a `cenc` sample's IV adds the sample's number
//! in the seed's third word, so the counter blocks of two samples of a rendition never meet (a
//! sample is far shorter than 2^32 blocks). Renditions sharing a key differ by their seeds
//! (64 bits of SHA-256). The same inputs and keys give the same bytes.
//!
//! Keys come from a [`keys::KeySource`]: raw keys (`--key TIER=KID:KEY`), a CPIX document
//! (`--cpix FILE`), or a key server asked with CPIX over HTTPS (the worker's `--key-server`).
//! A content key never appears in a log, an error, the report, the catalog record or the
//! queue: [`ContentKey`]'s `Debug` prints its key id alone.

pub mod cpix;
pub mod keys;

use std::fmt;

use aes::cipher::{BlockEncryptMut, KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ladder::Tier;

pub use keys::{KeyError, KeySource};

/// The Common Encryption scheme of a protected rendition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// AES-CBC, constant IV (ISO/IEC 23001-7 10.4): what Apple, Widevine and PlayReady
    /// players all accept.
    Cbcs,
    /// AES-CTR, an IV per sample (ISO/IEC 23001-7 10.1).
    Cenc,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Cbcs => "cbcs",
            Scheme::Cenc => "cenc",
        }
    }

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Scheme::Cbcs => *b"cbcs",
            Scheme::Cenc => *b"cenc",
        }
    }

    /// The HLS `EXT-X-KEY` METHOD (RFC 8216bis 4.4.4.4).
    pub fn hls_method(self) -> &'static str {
        match self {
            Scheme::Cbcs => "SAMPLE-AES",
            Scheme::Cenc => "SAMPLE-AES-CTR",
        }
    }

    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "cbcs" => Some(Scheme::Cbcs),
            "cenc" => Some(Scheme::Cenc),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 128-bit key id (`default_KID`), printed in the UUID form DASH and CPIX use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// 32 hex digits, with or without the UUID form's hyphens.
    pub fn parse(s: &str) -> Option<KeyId> {
        parse_hex16(&s.replace('-', "")).map(KeyId)
    }

    /// Lowercase hex without hyphens (HLS `KEYID=0x...`, ClearKey licences in hex).
    pub fn hex(&self) -> String {
        crate::layout::hex(&self.0)
    }

    /// The W3C ClearKey form: unpadded base64url.
    pub fn base64url(&self) -> String {
        base64url(&self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.hex();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyId, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::parse(&s).ok_or_else(|| serde::de::Error::custom("a key id is 32 hex digits"))
    }
}

pub(crate) fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A content key and its id. `Debug` shows the id alone: the key never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey {
    pub kid: KeyId,
    key: [u8; 16],
}

impl ContentKey {
    pub fn new(kid: KeyId, key: [u8; 16]) -> ContentKey {
        ContentKey { kid, key }
    }

    /// The key's bytes: for the cipher, and for a ClearKey licence a test serves.
    pub fn secret(&self) -> &[u8; 16] {
        &self.key
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentKey {{ kid: {}, key: <redacted> }}", self.kid)
    }
}

/// A DRM system the key source names: its system id, its `pssh` box and its HLS signalling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrmSystem {
    pub system_id: [u8; 16],
    /// The whole `pssh` box, for the init segment and the MPD's `cenc:pssh`.
    pub pssh: Option<Vec<u8>>,
    /// The HLS `EXT-X-KEY` URI (FairPlay's `skd://...`; for the others a `data:` URI of the
    /// `pssh` box when none is given).
    pub hls_uri: Option<String>,
}

/// W3C Common PSSH / ClearKey (`urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`).
pub const CLEARKEY: [u8; 16] = uuid(0x1077efec_c0b2_4d02_ace3_3c1e52e2fb4b);
pub const WIDEVINE: [u8; 16] = uuid(0xedef8ba9_79d6_4ace_a3c8_27dcd51d21ed);
pub const PLAYREADY: [u8; 16] = uuid(0x9a04f079_9840_4286_ab92_e65be0885f95);
pub const FAIRPLAY: [u8; 16] = uuid(0x94ce86fb_07ff_4f43_adb8_93d2fa968ca2);

const fn uuid(v: u128) -> [u8; 16] {
    v.to_be_bytes()
}

/// `urn:uuid:...` of a system id.
pub fn system_urn(id: &[u8; 16]) -> String {
    format!("urn:uuid:{}", KeyId(*id))
}

/// The HLS KEYFORMAT of a system (Apple's HLS authoring specification; hls.js and Shaka
/// Player read these).
pub fn hls_keyformat(id: &[u8; 16]) -> String {
    match *id {
        CLEARKEY => "org.w3.clearkey".into(),
        FAIRPLAY => "com.apple.streamingkeydelivery".into(),
        PLAYREADY => "com.microsoft.playready".into(),
        _ => system_urn(id),
    }
}

/// What one protected rendition is encrypted with.
#[derive(Clone, Debug)]
pub struct RenditionProtection {
    pub scheme: Scheme,
    pub key: ContentKey,
    /// The DRM systems to signal, the ClearKey / common system first.
    pub systems: Vec<DrmSystem>,
    /// The rendition's IV seed (`iv_seed`).
    pub seed: [u8; 16],
}

impl RenditionProtection {
    /// `track` and `rendition` name the rendition (its track id and rung id).
    pub fn new(
        scheme: Scheme,
        key: ContentKey,
        systems: Vec<DrmSystem>,
        track: &str,
        rendition: &str,
    ) -> RenditionProtection {
        let seed = iv_seed(&key.kid, track, rendition);
        RenditionProtection {
            scheme,
            key,
            systems,
            seed,
        }
    }

    /// The IV size each sample carries in `senc` (0: the constant IV of `tenc`).
    pub fn per_sample_iv_size(&self) -> u8 {
        match self.scheme {
            Scheme::Cbcs => 0,
            Scheme::Cenc => 16,
        }
    }

    /// `cbcs`'s constant IV.
    pub fn constant_iv(&self) -> Option<[u8; 16]> {
        (self.scheme == Scheme::Cbcs).then_some(self.seed)
    }

    /// The IV of the rendition's sample `n` (counted from 0 over the whole rendition).
    pub fn sample_iv(&self, n: u32) -> [u8; 16] {
        match self.scheme {
            Scheme::Cbcs => self.seed,
            Scheme::Cenc => {
                let mut iv = self.seed;
                iv[8..12].copy_from_slice(&n.to_be_bytes());
                iv[12..].fill(0);
                iv
            }
        }
    }

    /// Encrypt one sample in place, sample number `n` of the rendition.
    pub fn encrypt_sample(&self, n: u32, sample: &mut [u8]) {
        let iv = self.sample_iv(n);
        let key = self.key.secret();
        match self.scheme {
            Scheme::Cenc => {
                ctr::Ctr128BE::<aes::Aes128>::new(key.into(), (&iv).into()).apply_keystream(sample);
            }
            Scheme::Cbcs => {
                let whole = sample.len() / 16 * 16;
                let mut cbc = cbc::Encryptor::<aes::Aes128>::new(key.into(), (&iv).into());
                for block in sample[..whole].chunks_exact_mut(16) {
                    cbc.encrypt_block_mut(block.into());
                }
            }
        }
    }
}

/// The first 16 bytes of SHA-256 over the key id, the track and the rendition: distinct for
/// every rendition under one key, the same for the same inputs.
pub fn iv_seed(kid: &KeyId, track: &str, rendition: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"pressing iv\0");
    h.update(kid.0);
    h.update(track.as_bytes());
    h.update([0]);
    h.update(rendition.as_bytes());
    let d = h.finalize();
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&d[..16]);
    seed
}

/// What a protected track is encrypted with: per tier, its key and the systems to signal.
#[derive(Clone, Debug, Default)]
pub struct TrackKeys {
    pub tiers: Vec<(Tier, ContentKey)>,
    pub systems: Vec<DrmSystem>,
}

impl TrackKeys {
    pub fn key(&self, tier: Tier) -> Option<&ContentKey> {
        self.tiers.iter().find(|(t, _)| *t == tier).map(|(_, k)| k)
    }
}

/// The ClearKey system's `pssh` (W3C "cenc" Initialization Data Format: a version 1 box
/// listing the key ids, no data).
pub fn clearkey_pssh(kids: &[KeyId]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&CLEARKEY);
    body.extend_from_slice(&(kids.len() as u32).to_be_bytes());
    for k in kids {
        body.extend_from_slice(&k.0);
    }
    body.extend_from_slice(&0u32.to_be_bytes()); // DataSize
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&((body.len() + 12) as u32).to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // version 1, flags 0
    out.extend_from_slice(&body);
    out
}

/// The systems to signal for a key: ClearKey's (with this key's id) first, then the key
/// source's, then those of `wanted` the source did not give that the key id alone describes:
/// Widevine (a `pssh` whose WidevinePsshData lists the key id and the scheme, what Shaka
/// Packager writes for raw keys; a Widevine licence server needs nothing more) and FairPlay
/// (`skd://` and the key id, HLS only, cbcs only). PlayReady's header names its licence server, so only a
/// key source can give it.
pub fn systems_for(
    kid: &KeyId,
    scheme: Scheme,
    named: &[DrmSystem],
    wanted: &[[u8; 16]],
) -> Vec<DrmSystem> {
    let mut out = vec![DrmSystem {
        system_id: CLEARKEY,
        pssh: Some(clearkey_pssh(&[*kid])),
        hls_uri: None,
    }];
    out.extend(named.iter().filter(|s| s.system_id != CLEARKEY).cloned());
    for id in wanted {
        if out.iter().any(|s| s.system_id == *id) {
            continue;
        }
        match *id {
            WIDEVINE => out.push(DrmSystem {
                system_id: WIDEVINE,
                pssh: Some(widevine_pssh(kid, scheme)),
                hls_uri: None,
            }),
            // FairPlay decrypts cbcs alone.
            FAIRPLAY if scheme == Scheme::Cbcs => out.push(DrmSystem {
                system_id: FAIRPLAY,
                pssh: None,
                hls_uri: Some(format!("skd://{}", kid.hex())),
            }),
            _ => {}
        }
    }
    out
}

/// A version 0 `pssh` for Widevine whose data is the WidevinePsshData protobuf with the key id
/// (field 2, bytes) and the protection scheme (field 9, the fourcc as a varint).
pub fn widevine_pssh(kid: &KeyId, scheme: Scheme) -> Vec<u8> {
    let mut data = vec![0x12, 16];
    data.extend_from_slice(&kid.0);
    data.push(0x48);
    let mut v = u32::from_be_bytes(scheme.fourcc());
    while v >= 0x80 {
        data.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    data.push(v as u8);
    let mut out = Vec::with_capacity(32 + data.len());
    out.extend_from_slice(&((32 + data.len()) as u32).to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&0u32.to_be_bytes()); // version 0, flags 0
    out.extend_from_slice(&WIDEVINE);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockDecryptMut;

    fn protection(scheme: Scheme) -> RenditionProtection {
        let key = ContentKey::new(KeyId([7; 16]), [9; 16]);
        RenditionProtection::new(scheme, key, Vec::new(), "TRACK", "aac-128")
    }

    #[test]
    fn cenc_samples_decrypt_with_their_iv_and_ivs_never_repeat() {
        let p = protection(Scheme::Cenc);
        let clear: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut sample = clear.clone();
        p.encrypt_sample(3, &mut sample);
        assert_ne!(sample, clear);
        // CTR is its own inverse.
        ctr::Ctr128BE::<aes::Aes128>::new((&[9u8; 16]).into(), (&p.sample_iv(3)).into())
            .apply_keystream(&mut sample);
        assert_eq!(sample, clear);
        let ivs: std::collections::HashSet<_> = (0..10_000).map(|n| p.sample_iv(n)).collect();
        assert_eq!(ivs.len(), 10_000);
        let other = RenditionProtection::new(
            Scheme::Cenc,
            ContentKey::new(KeyId([7; 16]), [9; 16]),
            Vec::new(),
            "TRACK",
            "aac-256",
        );
        assert_ne!(other.sample_iv(0)[..8], p.sample_iv(0)[..8]);
    }

    #[test]
    fn cbcs_encrypts_whole_blocks_and_leaves_the_tail_clear() {
        let p = protection(Scheme::Cbcs);
        let clear: Vec<u8> = (0..37u8).collect();
        let mut sample = clear.clone();
        p.encrypt_sample(0, &mut sample);
        assert_eq!(sample[32..], clear[32..], "the partial block stays clear");
        assert_ne!(sample[..32], clear[..32]);
        let mut dec = cbc::Decryptor::<aes::Aes128>::new((&[9u8; 16]).into(), (&p.seed).into());
        for block in sample[..32].chunks_exact_mut(16) {
            dec.decrypt_block_mut(block.into());
        }
        assert_eq!(sample, clear);
    }

    #[test]
    fn a_widevine_pssh_lists_the_key_id_and_the_scheme() {
        let p = widevine_pssh(&KeyId([0x11; 16]), Scheme::Cbcs);
        assert_eq!(&p[4..8], b"pssh");
        assert_eq!(
            u32::from_be_bytes(p[..4].try_into().unwrap()) as usize,
            p.len()
        );
        assert_eq!(&p[12..28], &WIDEVINE);
        // 0x12 len kid, then 0x48 and 'cbcs' (0x63626373) as a varint.
        assert_eq!(&p[32..34], &[0x12, 16]);
        assert_eq!(&p[34..50], &[0x11; 16]);
        assert_eq!(&p[50..], &[0x48, 0xf3, 0xc6, 0x89, 0x9b, 0x06]);
        let systems = systems_for(
            &KeyId([1; 16]),
            Scheme::Cenc,
            &[],
            &[WIDEVINE, PLAYREADY, FAIRPLAY],
        );
        let ids: Vec<_> = systems.iter().map(|s| s.system_id).collect();
        assert_eq!(ids, vec![CLEARKEY, WIDEVINE], "FairPlay takes cbcs alone");
        let cbcs = systems_for(&KeyId([1; 16]), Scheme::Cbcs, &[], &[FAIRPLAY]);
        assert_eq!(
            cbcs[1].hls_uri.as_deref(),
            Some("skd://01010101010101010101010101010101")
        );
    }

    #[test]
    fn a_content_key_never_prints() {
        let k = ContentKey::new(KeyId([0xab; 16]), [0xcd; 16]);
        let shown = format!("{k:?}");
        assert!(shown.contains("abababab-abab-abab-abab-abababababab"));
        assert!(!shown.to_lowercase().contains("cdcd"), "{shown}");
    }
}
