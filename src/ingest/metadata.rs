//! `release.json`: parse and check every field, and check the tracks against the masters.
//!
//! The document is walked as JSON values rather than deserialized in one go, so that every
//! problem is reported at once (not only the first), each with its field path, the value found
//! and what is expected. The schema is documented in the README.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::findings::Finding;

/// ISO 3166-1 alpha-2 codes (officially assigned, 249).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Keys allowed at the top level and in a track.
const RELEASE_KEYS: [&str; 12] = [
    "title",
    "artists",
    "label",
    "upc",
    "release_date",
    "territories",
    "excluded_territories",
    "c_line",
    "p_line",
    "gapless",
    "tracks",
    "deals",
];
const TRACK_KEYS: [&str; 8] = [
    "file",
    "isrc",
    "title",
    "artists",
    "track_number",
    "disc_number",
    "explicit",
    "version",
];

/// A track as the metadata describes it: the fields that passed their checks. Serialized into
/// the catalog record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackMetadata {
    #[serde(skip)]
    pub file: PathBuf,
    pub isrc: Option<String>,
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub artists: Vec<String>,
    pub track_number: Option<u64>,
    pub disc_number: u64,
    pub explicit: bool,
    /// The duration the metadata declares (a DDEX `Duration`), in seconds, and where (the
    /// message, the element): checked against the master once it is decoded.
    #[serde(skip)]
    pub declared_duration: Option<(f64, PathBuf, String)>,
}

/// Where a release may be streamed: `worldwide` or `countries`, minus `excluded`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Territories {
    pub worldwide: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

/// What the pipeline uses of a valid (or partly valid) release.json: the fields that passed
/// their checks. Serialized (without its tracks) into each track's catalog record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseMetadata {
    pub title: Option<String>,
    pub artists: Vec<String>,
    pub label: Option<String>,
    pub upc: Option<String>,
    pub release_date: Option<String>,
    pub territories: Territories,
    pub c_line: Option<String>,
    pub p_line: Option<String>,
    pub gapless: bool,
    #[serde(skip)]
    pub tracks: Vec<TrackMetadata>,
    /// The deals of a DDEX message (`None`: release.json, which says nothing of deals, so every
    /// tier is available where the release is; `Some` of none: DDEX with no deal, nothing is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deals: Option<Vec<super::ddex::Deal>>,
    /// A DDEX message's header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<super::ddex::MessageHeader>,
    /// The front cover's file (a DDEX FrontCoverImage).
    #[serde(skip)]
    pub cover: Option<PathBuf>,
}

struct Checker<'a> {
    file: &'a Path,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn err(&mut self, code: &'static str, field: &str, message: String, fix: &str) {
        self.findings
            .push(Finding::error(code, self.file, message, fix).at(field));
    }

    fn string<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Option<&'v str> {
        match obj.get(key) {
            None | Some(Value::Null) if required => {
                self.err(
                    "metadata.missing-field",
                    path,
                    format!("{path} is missing"),
                    "add it",
                );
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.err(
                    "metadata.empty-field",
                    path,
                    format!("{path} is empty"),
                    "fill it in",
                );
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.err(
                    "metadata.type",
                    path,
                    format!("{path} is {} (expected a string)", kind(other)),
                    "write it as a JSON string",
                );
                None
            }
        }
    }

    fn strings(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Vec<String> {
        match obj.get(key) {
            None | Some(Value::Null) if required => {
                self.err(
                    "metadata.missing-field",
                    path,
                    format!("{path} is missing"),
                    "add a list of names",
                );
                Vec::new()
            }
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.is_empty() && required {
                    self.err(
                        "metadata.empty-field",
                        path,
                        format!("{path} is empty"),
                        "list at least one",
                    );
                }
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v.as_str() {
                        Some(s) if !s.trim().is_empty() => out.push(s.to_string()),
                        _ => self.err(
                            "metadata.type",
                            &format!("{path}[{i}]"),
                            format!("{path}[{i}] is {} (expected a non-empty string)", kind(v)),
                            "write each entry as a JSON string",
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    "metadata.type",
                    path,
                    format!("{path} is {} (expected a list of strings)", kind(other)),
                    "write it as a JSON array",
                );
                Vec::new()
            }
        }
    }

    /// A list of ISO 3166-1 alpha-2 codes under `key`; returns the valid ones.
    fn countries(&mut self, obj: &Map<String, Value>, key: &str, required: bool) -> Vec<String> {
        let mut valid = Vec::new();
        for (i, code) in self
            .strings(obj, key, key, required)
            .into_iter()
            .enumerate()
        {
            if is_country(&code) {
                valid.push(code);
            } else {
                self.err(
                    "metadata.territory",
                    &format!("{key}[{i}]"),
                    format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
                    "use two capital letters such as \"GB\"",
                );
            }
        }
        valid
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, allowed: &[&str], prefix: &str) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                self.err(
                    "metadata.unknown-field",
                    &path,
                    format!(
                        "unknown field {path:?} (expected one of {})",
                        allowed.join(", ")
                    ),
                    "remove it or fix its spelling",
                );
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// ISRC (ISO 3901): CC-XXX-YY-NNNNN, hyphens optional. Returns the compact form.
pub fn check_isrc(s: &str) -> Result<String, String> {
    let compact: String = s.chars().filter(|c| *c != '-').collect();
    let b = compact.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[5..].iter().all(u8::is_ascii_digit);
    // Bytes, not str slices: the value is untrusted and may hold multi-byte characters.
    let raw = s.as_bytes();
    let hyphens_ok =
        !s.contains('-') || (raw.len() == 15 && raw[2] == b'-' && raw[6] == b'-' && raw[9] == b'-');
    if ok && hyphens_ok {
        Ok(compact)
    } else {
        Err(format!("{s:?} is not an ISRC (expected CC-XXX-YY-NNNNN: country, registrant, year, designation)"))
    }
}

/// UPC-A (12 digits) or EAN-13 with a valid GS1 check digit.
pub fn check_upc(s: &str) -> Result<(), String> {
    if !(s.len() == 12 || s.len() == 13) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a UPC/EAN (expected 12 or 13 digits)"));
    }
    let digits: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let (body, check) = digits.split_at(digits.len() - 1);
    // GS1: weights 3, 1, 3, ... from the rightmost digit of the body.
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    let expected = (10 - sum % 10) % 10;
    if check[0] == expected {
        Ok(())
    } else {
        Err(format!(
            "{s:?} has check digit {} (expected {expected})",
            check[0]
        ))
    }
}

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

/// Parse and check `json` (the text of `file`), and its tracks against the masters in `dir`.
pub fn check_release(
    file: &Path,
    text: &str,
    dir: &Path,
    masters: &[PathBuf],
) -> (ReleaseMetadata, Vec<Finding>) {
    let mut c = Checker {
        file,
        findings: Vec::new(),
    };
    let mut meta = ReleaseMetadata::default();
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            c.err(
                "metadata.syntax",
                &format!("line {}, column {}", e.line(), e.column()),
                format!("malformed JSON: {e}"),
                "fix the JSON syntax (a validator or `python3 -m json.tool` shows where)",
            );
            return (meta, c.findings);
        }
    };
    let Some(obj) = root.as_object() else {
        c.err(
            "metadata.type",
            "(root)",
            format!("the document is {} (expected an object)", kind(&root)),
            "wrap the release in { ... }",
        );
        return (meta, c.findings);
    };
    c.unknown_keys(obj, &RELEASE_KEYS, "");
    meta.title = c.string(obj, "title", "title", true).map(str::to_string);
    meta.artists = c.strings(obj, "artists", "artists", true);
    meta.label = c.string(obj, "label", "label", true).map(str::to_string);
    if let Some(upc) = c.string(obj, "upc", "upc", true) {
        match check_upc(upc) {
            Ok(()) => meta.upc = Some(upc.to_string()),
            Err(m) => c.err(
                "metadata.upc",
                "upc",
                m,
                "copy the UPC/EAN from the label's catalogue",
            ),
        }
    }
    if let Some(date) = c.string(obj, "release_date", "release_date", true) {
        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() {
            meta.release_date = Some(date.to_string());
        } else {
            c.err(
                "metadata.release-date",
                "release_date",
                format!("{date:?} is not a date (expected YYYY-MM-DD)"),
                "write the date as YYYY-MM-DD",
            );
        }
    }
    meta.c_line = c.string(obj, "c_line", "c_line", true).map(str::to_string);
    meta.p_line = c.string(obj, "p_line", "p_line", true).map(str::to_string);
    match obj.get("territories") {
        Some(Value::String(s)) if s == "worldwide" => meta.territories.worldwide = true,
        Some(Value::Array(_)) => {
            meta.territories.countries = c.countries(obj, "territories", true);
        }
        None => c.err(
            "metadata.missing-field",
            "territories",
            "territories is missing".into(),
            "add \"worldwide\" or a list of ISO 3166-1 alpha-2 codes",
        ),
        Some(other) => c.err(
            "metadata.type",
            "territories",
            format!(
                "territories is {} (expected \"worldwide\" or a list of country codes)",
                kind(other)
            ),
            "write \"worldwide\" or [\"GB\", \"US\", ...]",
        ),
    }
    meta.territories.excluded = c.countries(obj, "excluded_territories", false);
    match obj.get("gapless") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => meta.gapless = *b,
        Some(other) => c.err(
            "metadata.type",
            "gapless",
            format!("gapless is {} (expected true or false)", kind(other)),
            "write true or false",
        ),
    }

    // Optional deals, as DDEX gives them (`ddex::Deal`): with them, the deals decide the tiers.
    match obj.get("deals") {
        None | Some(Value::Null) => {}
        Some(v) => match serde_json::from_value::<Vec<super::ddex::Deal>>(v.clone()) {
            Ok(deals) => {
                for (i, d) in deals.iter().enumerate() {
                    for t in d.territories.iter().chain(&d.excluded_territories) {
                        if t != "Worldwide" && !is_country(t) {
                            c.err(
                                "metadata.territory",
                                &format!("deals[{i}]"),
                                format!("{t:?} is not Worldwide or an ISO 3166-1 alpha-2 code"),
                                "use Worldwide or a country code",
                            );
                        }
                    }
                    for date in d.start.iter().chain(&d.end) {
                        if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
                            c.err(
                                "metadata.release-date",
                                &format!("deals[{i}]"),
                                format!("{date:?} is not a date (expected YYYY-MM-DD)"),
                                "write the date as YYYY-MM-DD",
                            );
                        }
                    }
                }
                meta.deals = Some(deals);
            }
            Err(e) => c.err(
                "metadata.type",
                "deals",
                format!("deals: {e}"),
                "write deals as [{\"commercial_models\": [\"SubscriptionModel\"], \"use_types\": [\"OnDemandStream\"], \"territories\": [\"Worldwide\"], \"start\": \"2026-01-01\"}]",
            ),
        },
    }

    let tracks = match obj.get("tracks") {
        Some(Value::Array(t)) if !t.is_empty() => t.as_slice(),
        Some(Value::Array(_)) => {
            c.err(
                "metadata.empty-field",
                "tracks",
                "tracks is empty".into(),
                "list every master as {\"file\": ...}",
            );
            &[]
        }
        None => {
            c.err(
                "metadata.missing-field",
                "tracks",
                "tracks is missing".into(),
                "list every master as {\"file\": ...}",
            );
            &[]
        }
        Some(other) => {
            c.err(
                "metadata.type",
                "tracks",
                format!("tracks is {} (expected a list)", kind(other)),
                "write tracks as a JSON array",
            );
            &[]
        }
    };
    let mut isrcs: HashMap<String, usize> = HashMap::new();
    let mut files: HashMap<PathBuf, usize> = HashMap::new();
    let mut numbers: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, t) in tracks.iter().enumerate() {
        let p = format!("tracks[{i}]");
        let Some(obj) = t.as_object() else {
            c.err(
                "metadata.type",
                &p,
                format!("{p} is {} (expected an object)", kind(t)),
                "describe each track as { \"file\": ..., ... }",
            );
            continue;
        };
        c.unknown_keys(obj, &TRACK_KEYS, &p);
        let file = c
            .string(obj, "file", &format!("{p}.file"), true)
            .map(|f| dir.join(f));
        if let Some(f) = &file {
            if !f.is_file() {
                c.err(
                    "metadata.missing-file",
                    &format!("{p}.file"),
                    format!(
                        "{:?} does not exist in {dir:?}",
                        f.file_name().unwrap_or_default()
                    ),
                    "fix the name or deliver the master",
                );
            } else if let Some(j) = files.insert(f.clone(), i) {
                c.err(
                    "metadata.duplicate-file",
                    &format!("{p}.file"),
                    format!("{p} uses the same file as tracks[{j}]"),
                    "give each track its own master",
                );
            }
        }
        let isrc =
            c.string(obj, "isrc", &format!("{p}.isrc"), true)
                .and_then(|s| match check_isrc(s) {
                    Ok(compact) => Some(compact),
                    Err(m) => {
                        c.err(
                            "metadata.isrc",
                            &format!("{p}.isrc"),
                            m,
                            "copy the ISRC from the label's registration",
                        );
                        None
                    }
                });
        if let Some(code) = &isrc {
            if let Some(j) = isrcs.insert(code.clone(), i) {
                c.err(
                    "metadata.isrc-duplicate",
                    &format!("{p}.isrc"),
                    format!("ISRC {code} is also tracks[{j}].isrc"),
                    "every recording has its own ISRC",
                );
            }
        }
        let title = c
            .string(obj, "title", &format!("{p}.title"), true)
            .map(str::to_string);
        let version = c
            .string(obj, "version", &format!("{p}.version"), false)
            .map(str::to_string);
        let artists = c.strings(obj, "artists", &format!("{p}.artists"), true);
        let number = |c: &mut Checker, key: &str, required: bool| -> Option<u64> {
            match obj.get(key) {
                Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v >= 1) => n.as_u64(),
                None if !required => None,
                None => {
                    c.err(
                        "metadata.missing-field",
                        &format!("{p}.{key}"),
                        format!("{p}.{key} is missing"),
                        "number tracks from 1",
                    );
                    None
                }
                Some(other) => {
                    c.err(
                        "metadata.type",
                        &format!("{p}.{key}"),
                        format!("{p}.{key} is {other} (expected a whole number from 1)"),
                        "number from 1",
                    );
                    None
                }
            }
        };
        let track_number = number(&mut c, "track_number", true);
        let disc_number = number(&mut c, "disc_number", false).unwrap_or(1);
        let explicit = match obj.get("explicit") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                c.err(
                    "metadata.type",
                    &format!("{p}.explicit"),
                    format!("{p}.explicit is {} (expected true or false)", kind(other)),
                    "write true or false",
                );
                false
            }
        };
        if let Some(n) = track_number {
            numbers.entry(disc_number).or_default().push((n, i));
        }
        if let Some(file) = file {
            meta.tracks.push(TrackMetadata {
                file,
                isrc,
                title,
                version,
                artists,
                track_number,
                disc_number,
                explicit,
                declared_duration: None,
            });
        }
    }
    // Numbering: 1..n on every disc, no gaps or duplicates.
    for (disc, mut list) in numbers {
        list.sort();
        for (k, (n, i)) in list.iter().enumerate() {
            let expected = k as u64 + 1;
            if k > 0 && list[k - 1].0 == *n {
                c.err(
                    "metadata.track-number",
                    &format!("tracks[{i}].track_number"),
                    format!("track {n} of disc {disc} appears twice"),
                    "number each track of a disc once",
                );
            } else if *n != expected && (k == 0 || list[k - 1].0 + 1 != *n) {
                c.err(
                    "metadata.track-number",
                    &format!("tracks[{i}].track_number"),
                    format!(
                        "disc {disc} jumps to track {n} (expected {expected}): numbering has a gap"
                    ),
                    "number the tracks of each disc 1, 2, 3, ...",
                );
            }
        }
    }
    // Every master in the folder is a track.
    for m in masters {
        if !files.contains_key(m) {
            c.err(
                "metadata.unlisted-file",
                "tracks",
                format!(
                    "master {:?} is in the folder but not in tracks",
                    m.file_name().unwrap_or_default()
                ),
                "add a track for it or remove the file",
            );
        }
    }
    (meta, c.findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_list_is_complete() {
        assert_eq!(COUNTRIES.split(' ').count(), 249);
        assert!(is_country("GB") && is_country("SS") && !is_country("UK") && !is_country("XX"));
    }

    #[test]
    fn isrc_format() {
        assert_eq!(check_isrc("US-RC1-76-07839").unwrap(), "USRC17607839");
        assert_eq!(check_isrc("USRC17607839").unwrap(), "USRC17607839");
        assert!(check_isrc("US-RC1-76-0783").is_err());
        assert!(check_isrc("us-rc1-76-07839").is_err());
        assert!(check_isrc("USR-C1-76-07839").is_err());
    }

    #[test]
    fn isrc_with_multibyte_characters_is_an_error_not_a_panic() {
        // Found by the release_metadata fuzz target.
        assert!(check_isrc("QZ\u{6fe}\u{26c}-26-00002").is_err());
        assert!(check_isrc("é-ABC-26-00002").is_err());
    }

    #[test]
    fn upc_check_digit() {
        assert!(check_upc("036000291452").is_ok()); // UPC-A
        assert!(check_upc("4006381333931").is_ok()); // EAN-13
        assert!(check_upc("036000291453")
            .unwrap_err()
            .contains("expected 2"));
        assert!(check_upc("03600029145").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let dir = std::env::temp_dir();
        let json = r#"{
          "title": "", "artists": ["A"], "label": "L", "upc": "036000291453",
          "release_date": "2026-02-30", "territories": ["GB", "UK"], "c_line": "c", "p_line": "p",
          "tracks": [
            {"file": "missing.wav", "isrc": "bad", "title": "One", "artists": ["A"], "track_number": 1},
            {"file": "missing2.wav", "isrc": "bad2", "title": "Two", "artists": ["A"], "track_number": 3, "colour": 1}
          ]
        }"#;
        let (_, f) = check_release(Path::new("release.json"), json, &dir, &[]);
        let codes: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (&*f.code, f.location.as_deref().unwrap_or("")))
            .collect();
        for want in [
            ("metadata.empty-field", "title"),
            ("metadata.upc", "upc"),
            ("metadata.release-date", "release_date"),
            ("metadata.territory", "territories[1]"),
            ("metadata.missing-file", "tracks[0].file"),
            ("metadata.isrc", "tracks[1].isrc"),
            ("metadata.unknown-field", "tracks[1].colour"),
            ("metadata.track-number", "tracks[1].track_number"),
        ] {
            assert!(codes.contains(&want), "{want:?} not in {codes:?}");
        }
    }

    #[test]
    fn malformed_json_names_the_line() {
        let (_, f) = check_release(
            Path::new("r.json"),
            "{\n \"title\": \"x\",\n}",
            Path::new("."),
            &[],
        );
        assert_eq!(f[0].code, "metadata.syntax");
        assert!(
            f[0].location.as_deref().unwrap().starts_with("line 3"),
            "{:?}",
            f[0]
        );
    }
}
