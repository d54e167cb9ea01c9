//! DASH-IF CPIX (Content Protection Information Exchange, version 2.3) documents: read the keys,
//! the DRM systems' signalling and the usage rules of a document, and write the request a key
//! server answers (the SPEKE v2 shape: the same document, keys left out).
//!
//! How keys map to a track's tiers (pressing's contract, in the README): each
//! `ContentKeyUsageRule` names its tier in `intendedTrackType` (`premium`, `hifi`, any case)
//! and, to hold for one track only, a `LabelFilter` whose `label` is the track's id (its ISRC).
//! A rule with a label wins over one without, so one document can give every track of a
//! release its own keys, or one key per tier for all of them.

use base64::Engine as _;
use serde::Deserialize;

use super::{ContentKey, DrmSystem, KeyId};
use crate::ladder::Tier;

pub const NAMESPACE: &str = "urn:dashif:org:cpix";

/// A CPIX document as read (elements pressing does not use are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Cpix {
    #[serde(rename = "@contentId", default)]
    pub content_id: Option<String>,
    #[serde(rename = "ContentKeyList", default)]
    content_keys: Option<ContentKeyList>,
    #[serde(rename = "DRMSystemList", default)]
    drm_systems: Option<DrmSystemList>,
    #[serde(rename = "ContentKeyUsageRuleList", default)]
    rules: Option<RuleList>,
}

#[derive(Debug, Default, Deserialize)]
struct ContentKeyList {
    #[serde(rename = "ContentKey", default)]
    keys: Vec<ContentKeyElem>,
}

#[derive(Debug, Deserialize)]
struct ContentKeyElem {
    #[serde(rename = "@kid")]
    kid: String,
    #[serde(rename = "Data", default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "Secret", default)]
    secret: Option<Secret>,
}

#[derive(Debug, Deserialize)]
struct Secret {
    #[serde(rename = "PlainValue", default)]
    plain: Option<String>,
    #[serde(rename = "EncryptedValue", default)]
    encrypted: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct DrmSystemList {
    #[serde(rename = "DRMSystem", default)]
    systems: Vec<DrmSystemElem>,
}

#[derive(Debug, Deserialize)]
struct DrmSystemElem {
    #[serde(rename = "@kid")]
    kid: String,
    #[serde(rename = "@systemId")]
    system_id: String,
    #[serde(rename = "PSSH", default)]
    pssh: Option<String>,
    #[serde(rename = "URIExtXKey", default)]
    uri_ext_x_key: Option<String>,
    #[serde(rename = "HLSSignalingData", default)]
    hls: Vec<HlsSignalling>,
}

#[derive(Debug, Deserialize)]
struct HlsSignalling {
    #[serde(rename = "@playlist", default)]
    playlist: Option<String>,
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
struct RuleList {
    #[serde(rename = "ContentKeyUsageRule", default)]
    rules: Vec<RuleElem>,
}

#[derive(Debug, Deserialize)]
struct RuleElem {
    #[serde(rename = "@kid")]
    kid: String,
    #[serde(rename = "@intendedTrackType", default)]
    intended_track_type: Option<String>,
    #[serde(rename = "LabelFilter", default)]
    labels: Vec<LabelFilter>,
}

#[derive(Debug, Deserialize)]
struct LabelFilter {
    #[serde(rename = "@label")]
    label: String,
}

/// A document's keys, systems and rules, checked.
#[derive(Debug, Default)]
pub struct CpixKeys {
    pub content_id: Option<String>,
    keys: Vec<ContentKey>,
    /// (kid, system): the systems as the document names them, per key.
    systems: Vec<(KeyId, DrmSystem)>,
    /// (tier, track label or None for every track, kid)
    rules: Vec<(Tier, Option<String>, KeyId)>,
}

/// Parse and check a CPIX document. Errors name the element and attribute at fault; a key's
/// value never appears in one.
pub fn parse(xml: &str) -> Result<CpixKeys, String> {
    let doc: Cpix =
        quick_xml::de::from_str(xml).map_err(|e| format!("not a CPIX document: {e}"))?;
    let mut out = CpixKeys {
        content_id: doc.content_id.clone(),
        ..CpixKeys::default()
    };
    let kid_of = |s: &str, at: &str| {
        KeyId::parse(s.trim())
            .ok_or_else(|| format!("{at} kid={s:?} is not a key id (32 hex digits, UUID form)"))
    };
    for k in doc.content_keys.map(|l| l.keys).unwrap_or_default() {
        let kid = kid_of(&k.kid, "ContentKey")?;
        let secret = k.data.and_then(|d| d.secret);
        if secret
            .as_ref()
            .is_some_and(|s| s.encrypted.is_some() && s.plain.is_none())
        {
            return Err(format!(
                "ContentKey {kid}: the key is encrypted (EncryptedValue); pressing reads PlainValue keys, over TLS from a key server or from a file kept private"
            ));
        }
        let Some(plain) = secret.and_then(|s| s.plain) else {
            // A request names key ids without keys.
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(plain.trim())
            .map_err(|_| format!("ContentKey {kid}: Data/Secret/PlainValue is not base64"))?;
        let key: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "ContentKey {kid}: Data/Secret/PlainValue holds {} bytes (an AES-128 content key is 16)",
                bytes.len()
            )
        })?;
        if out.keys.iter().any(|c| c.kid == kid) {
            return Err(format!("ContentKey {kid} is listed twice"));
        }
        out.keys.push(ContentKey::new(kid, key));
    }
    for s in doc.drm_systems.map(|l| l.systems).unwrap_or_default() {
        let kid = kid_of(&s.kid, "DRMSystem")?;
        let system_id = KeyId::parse(s.system_id.trim())
            .ok_or_else(|| format!("DRMSystem systemId={:?} is not a UUID", s.system_id))?
            .0;
        let b64 = |v: &str, what: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| {
                    format!(
                        "DRMSystem {} of {kid}: {what} is not base64",
                        KeyId(system_id)
                    )
                })
        };
        let pssh = match s.pssh.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => {
                let b = b64(p, "PSSH")?;
                if b.len() < 32 || &b[4..8] != b"pssh" {
                    return Err(format!(
                        "DRMSystem {} of {kid}: PSSH is not a pssh box",
                        KeyId(system_id)
                    ));
                }
                Some(b)
            }
            None => None,
        };
        let mut hls_uri = match s.uri_ext_x_key.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(u) => Some(String::from_utf8_lossy(&b64(u, "URIExtXKey")?).into_owned()),
            None => None,
        };
        for h in &s.hls {
            if h.playlist.as_deref().unwrap_or("media") == "media" && hls_uri.is_none() {
                let line =
                    String::from_utf8_lossy(&b64(&h.value, "HLSSignalingData")?).into_owned();
                hls_uri = uri_attribute(&line);
            }
        }
        out.systems.push((
            kid,
            DrmSystem {
                system_id,
                pssh,
                hls_uri,
            },
        ));
    }
    for r in doc.rules.map(|l| l.rules).unwrap_or_default() {
        let kid = kid_of(&r.kid, "ContentKeyUsageRule")?;
        let tier_name = r.intended_track_type.unwrap_or_default();
        let tier = Tier::parse(&tier_name.to_ascii_lowercase()).ok_or_else(|| {
            format!(
                "ContentKeyUsageRule {kid}: intendedTrackType={tier_name:?} is not a tier (free, premium or hifi)"
            )
        })?;
        if r.labels.is_empty() {
            out.rules.push((tier, None, kid));
        }
        for l in r.labels {
            out.rules.push((tier, Some(l.label), kid));
        }
    }
    Ok(out)
}

/// The `URI="..."` of an `EXT-X-KEY` line.
fn uri_attribute(line: &str) -> Option<String> {
    let at = line.find("URI=\"")? + 5;
    let end = line[at..].find('"')?;
    Some(line[at..at + end].to_string())
}

impl CpixKeys {
    /// Every rule's key must be in the document, and every key used by a rule.
    pub fn check_complete(&self) -> Result<(), String> {
        for (tier, _, kid) in &self.rules {
            if !self.keys.iter().any(|k| k.kid == *kid) {
                return Err(format!(
                    "ContentKeyUsageRule for {tier}: kid {kid} is not in ContentKeyList (or has no PlainValue)"
                ));
            }
        }
        for k in &self.keys {
            if !self.rules.iter().any(|(_, _, kid)| *kid == k.kid) {
                return Err(format!(
                    "ContentKey {}: no ContentKeyUsageRule names it, so it is a key for no tier",
                    k.kid
                ));
            }
        }
        Ok(())
    }

    /// The key of a track's tier: a rule labelled with the track's id first, then one for
    /// every track.
    pub fn key_for(&self, track: &str, tier: Tier) -> Option<&ContentKey> {
        let kid = self
            .rules
            .iter()
            .find(|(t, l, _)| *t == tier && l.as_deref() == Some(track))
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|(t, l, _)| *t == tier && l.is_none())
            })
            .map(|(_, _, kid)| *kid)?;
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The DRM systems the document gives for a key.
    pub fn systems_for(&self, kid: &KeyId) -> Vec<DrmSystem> {
        self.systems
            .iter()
            .filter(|(k, _)| k == kid)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A key request in the SPEKE v2 shape: the content id, one `ContentKey` per (tier, kid)
/// without its value, one `DRMSystem` per system asked for each key, one usage rule per tier.
pub fn request(
    content_id: &str,
    scheme: &str,
    keys: &[(Tier, KeyId)],
    systems: &[[u8; 16]],
) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<cpix:CPIX xmlns:cpix=\"{NAMESPACE}\" xmlns:pskc=\"urn:ietf:params:xml:ns:keyprov:pskc\" contentId=\"{}\" version=\"2.3\">\n",
        escape(content_id)
    ));
    x.push_str("  <cpix:ContentKeyList>\n");
    for (_, kid) in keys {
        x.push_str(&format!(
            "    <cpix:ContentKey kid=\"{kid}\" commonEncryptionScheme=\"{scheme}\"/>\n"
        ));
    }
    x.push_str("  </cpix:ContentKeyList>\n  <cpix:DRMSystemList>\n");
    for (_, kid) in keys {
        for s in systems {
            x.push_str(&format!(
                "    <cpix:DRMSystem kid=\"{kid}\" systemId=\"{}\"/>\n",
                KeyId(*s)
            ));
        }
    }
    x.push_str("  </cpix:DRMSystemList>\n  <cpix:ContentKeyUsageRuleList>\n");
    for (tier, kid) in keys {
        x.push_str(&format!(
            "    <cpix:ContentKeyUsageRule kid=\"{kid}\" intendedTrackType=\"{tier}\"/>\n"
        ));
    }
    x.push_str("  </cpix:ContentKeyUsageRuleList>\n</cpix:CPIX>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="release-1">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="11111111-1111-1111-1111-111111111111" commonEncryptionScheme="cbcs">
      <cpix:Data><pskc:Secret><pskc:PlainValue>AAECAwQFBgcICQoLDA0ODw==</pskc:PlainValue></pskc:Secret></cpix:Data>
    </cpix:ContentKey>
    <cpix:ContentKey kid="22222222222222222222222222222222">
      <cpix:Data><pskc:Secret><pskc:PlainValue>Dw4NDAsKCQgHBgUEAwIBAA==</pskc:PlainValue></pskc:Secret></cpix:Data>
    </cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
    <cpix:DRMSystem kid="11111111-1111-1111-1111-111111111111" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2">
      <cpix:HLSSignalingData playlist="media">I0VYVC1YLUtFWTpNRVRIT0Q9U0FNUExFLUFFUyxVUkk9InNrZDovL2tleS0xIixLRVlGT1JNQVQ9ImNvbS5hcHBsZS5zdHJlYW1pbmdrZXlkZWxpdmVyeSI=</cpix:HLSSignalingData>
    </cpix:DRMSystem>
  </cpix:DRMSystemList>
  <cpix:ContentKeyUsageRuleList>
    <cpix:ContentKeyUsageRule kid="11111111-1111-1111-1111-111111111111" intendedTrackType="PREMIUM"/>
    <cpix:ContentKeyUsageRule kid="22222222-2222-2222-2222-222222222222" intendedTrackType="premium">
      <cpix:LabelFilter label="GBAYE0000001"/>
    </cpix:ContentKeyUsageRule>
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#;

    #[test]
    fn a_dash_if_document_maps_keys_to_tracks_and_tiers() {
        let c = parse(DOC).unwrap();
        c.check_complete().unwrap();
        assert_eq!(c.content_id.as_deref(), Some("release-1"));
        let general = c.key_for("OTHER", Tier::Premium).unwrap();
        assert_eq!(general.kid, KeyId([0x11; 16]));
        assert_eq!(general.secret(), &core::array::from_fn(|i| i as u8));
        let labelled = c.key_for("GBAYE0000001", Tier::Premium).unwrap();
        assert_eq!(labelled.kid, KeyId([0x22; 16]));
        assert!(c.key_for("OTHER", Tier::Hifi).is_none());
        let fp = c.systems_for(&KeyId([0x11; 16]));
        assert_eq!(fp.len(), 1);
        assert_eq!(fp[0].system_id, super::super::FAIRPLAY);
        assert_eq!(fp[0].hls_uri.as_deref(), Some("skd://key-1"));
    }

    #[test]
    fn bad_documents_name_the_field() {
        let short = DOC.replace("AAECAwQFBgcICQoLDA0ODw==", "AAECAw==");
        let e = parse(&short).unwrap_err();
        assert!(e.contains("PlainValue holds 4 bytes"), "{e}");
        assert!(
            !e.contains("AAECAw"),
            "the key's value is not in the error: {e}"
        );
        let bad_tier = DOC.replace(
            "intendedTrackType=\"PREMIUM\"",
            "intendedTrackType=\"gold\"",
        );
        assert!(parse(&bad_tier)
            .unwrap_err()
            .contains("intendedTrackType=\"gold\""));
        let unknown = DOC.replace(
            "kid=\"22222222-2222-2222-2222-222222222222\" intendedTrackType",
            "kid=\"33333333-3333-3333-3333-333333333333\" intendedTrackType",
        );
        let e = parse(&unknown).unwrap().check_complete().unwrap_err();
        assert!(
            e.contains("33333333-3333-3333-3333-333333333333 is not in ContentKeyList"),
            "{e}"
        );
        let unused = DOC.replace(
            "<cpix:ContentKeyUsageRule kid=\"11111111-1111-1111-1111-111111111111\" intendedTrackType=\"PREMIUM\"/>",
            "",
        );
        let e = parse(&unused).unwrap().check_complete().unwrap_err();
        assert!(e.contains("a key for no tier"), "{e}");
    }

    #[test]
    fn a_request_reads_back_as_the_keys_it_asks_for() {
        let x = request(
            "GB&1",
            "cbcs",
            &[(Tier::Hifi, KeyId([3; 16]))],
            &[super::super::WIDEVINE],
        );
        let c = parse(&x).unwrap();
        assert_eq!(c.content_id.as_deref(), Some("GB&1"));
        assert!(c.keys.is_empty());
        assert_eq!(c.rules, vec![(Tier::Hifi, None, KeyId([3; 16]))]);
    }
}
