//! The package layout: the one place that names every object pressing writes, locally and in a
//! store (the two layouts are the same). Keys are relative to the output folder or the store
//! prefix, with `/` separators.
//!
//! ```text
//! <track>/<tier>-<family>.m3u8            entry: HLS multivariant playlist (overwritten)
//! <track>/<tier>.m3u8                     entry: the tier's Apple-form multivariant playlist
//! <track>/<tier>.mpd                      entry: DASH MPD (overwritten)
//! <track>/catalog.json                    entry: the catalog record (overwritten)
//! <track>/<rendition>/<version>/init.mp4  immutable: init segment
//! <track>/<rendition>/<version>/seg-NNNNN.m4s
//! <track>/<rendition>/<version>/media.mp4 immutable: the single-file form's CMAF track file
//!                                         (init, sidx, every fragment), instead of the two above
//! <track>/<rendition>/<version>/index.m3u8
//! <track>/notification.json               the catalog delivery record (store only)
//! index.json                              the package index (local output folder only)
//! ```
//!
//! `<version>` is a digest of the rendition's bytes (init and media segments): a rendition
//! whose bytes change gets new keys, so an object a CDN caches as immutable is never
//! overwritten; only the entry manifests, at stable URLs, are.
//!
//! It also owns [`Artifact`]: the neutral description of one object of a package (key, local
//! file, kind, content type) that the pipeline hands the publish stage.

use std::path::PathBuf;

use serde::Serialize;

/// A release file's key in the fleet's incoming store.
pub fn master_key(job: &str, name: &str) -> String {
    format!("masters/{job}/{name}")
}

/// A release's index in a store: the ids of its published tracks, by its ICPN (UPC or EAN), so
/// a DDEX PurgeReleaseMessage, which names only the release, finds its tracks.
pub fn release_index(icpn: &str) -> String {
    format!("releases/{}.json", upc_of(icpn))
}

/// An ICPN as one key: a 13-digit EAN with a leading zero is the 12-digit UPC it encodes.
pub fn upc_of(icpn: &str) -> &str {
    match icpn.strip_prefix('0') {
        Some(upc) if icpn.len() == 13 => upc,
        _ => icpn,
    }
}

/// The package index, at the top of a local output folder (`report::PackageIndex`).
pub const INDEX: &str = "index.json";

/// The QC page of a package, beside its index (`qc`; never published).
pub const QC_PAGE: &str = "qc.html";

/// Hex digits of the rendition digest kept in its version folder name (64 bits).
pub const VERSION_DIGITS: usize = 16;

/// Lowercase hex of a digest, as version folders, ETags and webhook ids spell it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A rendition's version folder name, from the SHA-256 of its bytes.
pub fn version_name(digest: &[u8]) -> String {
    let hex = hex(digest);
    hex[..VERSION_DIGITS.min(hex.len())].to_string()
}

/// A rendition's folder, relative to its track folder.
pub fn rendition_dir(rendition: &str, version: &str) -> String {
    format!("{rendition}/{version}")
}

/// The front cover's folder in a track folder (a name no rung may take).
pub const COVER_DIR: &str = "cover";

/// A derived cover size, relative to the track folder: `cover/<version>/<size>.jpg`, the
/// version a digest of every size's bytes (immutable, like a rendition's).
pub fn cover_file(version: &str, size: u32) -> String {
    format!("{COVER_DIR}/{version}/{size}.jpg")
}

/// Init segment file name inside a rendition's version folder.
pub const INIT_FILE: &str = "init.mp4";

/// The CMAF track file inside a rendition's version folder, in the single-file form (`init`,
/// `sidx`, then the fragments, addressed by byte ranges).
pub const TRACK_FILE: &str = "media.mp4";

/// Media playlist file name inside a rendition's version folder.
pub const MEDIA_PLAYLIST_FILE: &str = "index.m3u8";

/// Media segment `number` (from 1) inside a rendition's version folder.
pub fn segment_file(number: u32) -> String {
    format!("seg-{number:05}.m4s")
}

/// The DASH SegmentTemplate `media` pattern matching [`segment_file`].
pub const SEGMENT_TEMPLATE: &str = "seg-$Number%05d$.m4s";

/// A (tier, family) multivariant playlist, relative to the track folder.
pub fn multivariant_playlist(tier: &str, family: &str) -> String {
    format!("{tier}-{family}.m3u8")
}

/// A tier's Apple-form multivariant playlist (every family Apple's players decode, in
/// `EXT-X-MEDIA` audio groups), relative to the track folder.
pub fn tier_playlist(tier: &str) -> String {
    format!("{tier}.m3u8")
}

/// A tier's MPD, relative to the track folder.
pub fn mpd(tier: &str) -> String {
    format!("{tier}.mpd")
}

/// The catalog record, relative to the track folder.
pub const CATALOG_RECORD: &str = "catalog.json";

/// The record of the catalog notification for the package now published (store only).
pub const DELIVERY_RECORD: &str = "notification.json";

/// A key under a track folder.
pub fn track_key(track: &str, rel: &str) -> String {
    format!("{track}/{rel}")
}

/// The track folder prefix of every key of a track (with its trailing `/`).
pub fn track_prefix(track: &str) -> String {
    format!("{track}/")
}

/// Whether `key` names an object inside the folder `prefix` (no empty, `.` or `..` part): a
/// key read from a file never leaves its track's folder.
pub fn is_under(prefix: &str, key: &str) -> bool {
    key.starts_with(prefix)
        && key.len() > prefix.len()
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// What an object is; also its upload order (segments first, the catalog record last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A release's masters and release.json in the fleet's incoming store (content-keyed:
    /// `masters/<job id>/<file name>`).
    Master,
    /// The front cover's derived sizes (content-keyed, like segments).
    Artwork,
    /// Init and media segments, or a single-file rendition's track file.
    Segment,
    MediaPlaylist,
    /// Multivariant playlists and MPDs.
    EntryManifest,
    CatalogRecord,
}

impl ArtifactKind {
    /// Upload phases, in order: a reader never sees a manifest naming a missing object.
    pub const ORDER: [ArtifactKind; 5] = [
        ArtifactKind::Artwork,
        ArtifactKind::Segment,
        ArtifactKind::MediaPlaylist,
        ArtifactKind::EntryManifest,
        ArtifactKind::CatalogRecord,
    ];

    /// Whether the catalog record and the notification give the object's URL: what players
    /// and catalogs fetch (entry manifests, the record, the cover's sizes), not the media
    /// that manifests name.
    pub fn has_url(self) -> bool {
        !self.is_immutable() || self == ArtifactKind::Artwork
    }

    /// Whether the object lives under a content-keyed version folder (never overwritten).
    pub fn is_immutable(self) -> bool {
        matches!(
            self,
            ArtifactKind::Master
                | ArtifactKind::Artwork
                | ArtifactKind::Segment
                | ArtifactKind::MediaPlaylist
        )
    }
}

/// The IANA media type of a key, by its extension.
pub fn content_type(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("mp4" | "m4s") => "audio/mp4",
        Some("json") => "application/json",
        Some("jpg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// One object of a package: where it goes, where its bytes are, what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub key: String,
    pub path: PathBuf,
    pub kind: ArtifactKind,
    pub content_type: &'static str,
}

impl Artifact {
    pub fn new(key: String, path: PathBuf, kind: ArtifactKind) -> Artifact {
        let content_type = content_type(&key);
        Artifact {
            key,
            path,
            kind,
            content_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_index_is_named_by_the_upc_an_ean_encodes() {
        assert_eq!(release_index("012345678905"), "releases/012345678905.json");
        assert_eq!(release_index("0012345678905"), "releases/012345678905.json");
        assert_eq!(
            release_index("5012345678900"),
            "releases/5012345678900.json"
        );
    }

    #[test]
    fn keys_of_a_track() {
        let v = version_name(&[0xab; 32]);
        assert_eq!(v, "abababababababab");
        let dir = rendition_dir("aac-256", &v);
        assert_eq!(dir, "aac-256/abababababababab");
        assert_eq!(
            track_key("qz", &format!("{dir}/{}", segment_file(7))),
            "qz/aac-256/abababababababab/seg-00007.m4s"
        );
        assert_eq!(
            multivariant_playlist("hifi", "lossless"),
            "hifi-lossless.m3u8"
        );
        assert_eq!(mpd("free"), "free.mpd");
        assert_eq!(track_prefix("qz"), "qz/");
    }

    #[test]
    fn keys_read_from_a_file_stay_in_their_track_folder() {
        assert!(is_under("qz/", "qz/free.mpd"));
        assert!(is_under("qz/", "qz/aac-128/0123456789abcdef/init.mp4"));
        for bad in [
            "qz/",
            "qy/free.mpd",
            "qz/../qy/free.mpd",
            "qz/./free.mpd",
            "qz//free.mpd",
            "/qz/free.mpd",
            "qzz/free.mpd",
        ] {
            assert!(!is_under("qz/", bad), "{bad:?} is outside qz/");
        }
    }

    #[test]
    fn the_segment_template_names_the_segment_files() {
        let pattern = SEGMENT_TEMPLATE.replace("$Number%05d$", "00042");
        assert_eq!(pattern, segment_file(42));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("a/b/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type("a/hifi.mpd"), "application/dash+xml");
        assert_eq!(content_type("a/b/v/init.mp4"), "audio/mp4");
        assert_eq!(content_type("a/b/v/seg-00001.m4s"), "audio/mp4");
        assert_eq!(content_type("a/catalog.json"), "application/json");
    }

    #[test]
    fn upload_order_puts_manifests_after_what_they_name() {
        let mut kinds = ArtifactKind::ORDER.to_vec();
        kinds.sort();
        assert_eq!(kinds, ArtifactKind::ORDER);
        assert!(ArtifactKind::Segment.is_immutable() && ArtifactKind::MediaPlaylist.is_immutable());
        assert!(!ArtifactKind::EntryManifest.is_immutable());
    }
}
