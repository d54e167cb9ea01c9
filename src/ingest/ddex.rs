//! DDEX ERN 4.3 (`NewReleaseMessage`): the release as labels and distributors deliver it.
//!
//! The message is read into a small element tree (refusing a DOCTYPE, so no entity is ever
//! expanded or fetched, and bounded in size and depth by `limits`), then what pressing uses is
//! turned into the release.json shape and checked by the same code as a release.json, so every
//! rule holds alike (ISRC, UPC/EAN check digit, numbering, files one to one with the masters).
//! Each finding's location is then given back as the ERN element path it came from
//! (`ResourceList/SoundRecording[2]/ResourceId/ISRC`). What only DDEX has is checked here:
//! every reference resolves, each file's `HashSum` matches, territories are DDEX's (ISO 3166-1
//! alpha-2, `Worldwide`, `XK`), and the deals are read into [`Deal`]s.
//!
//! Elements pressing does not use are ignored, never an error. The README lists the element
//! paths it reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::findings::Finding;
use super::metadata::{self, ReleaseMetadata};
use crate::limits;

pub const ERN_43: &str = "http://ddex.net/xml/ern/43";

/// One element: its local name, attributes (local names), text and children, and where it
/// starts (line, column).
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
    pub line: usize,
    /// The namespace prefix of its name (`ern` of `ern:NewReleaseMessage`).
    pub prefix: String,
}

impl Element {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn first(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the element at a `/`-separated path of first children.
    fn text_at(&self, path: &str) -> Option<&str> {
        let mut e = self;
        for part in path.split('/') {
            e = e.first(part)?;
        }
        let t = e.text.trim();
        (!t.is_empty()).then_some(t)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse XML into an element tree: no DOCTYPE (entity declarations are refused, nothing is
/// expanded or fetched), at most `limits::MAX_XML_DEPTH` deep and `limits::MAX_XML_ELEMENTS`
/// elements. Returns the root and its namespace URI.
pub fn parse_tree(file: &Path, text: &str) -> Result<(Element, String), Box<Finding>> {
    let bad = |code: &'static str, at: usize, message: String, fix: &str| {
        // Byte offsets: a position may fall inside a multi-byte character.
        let before = &text.as_bytes()[..at.min(text.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        Box::new(
            Finding::error(code, file, message, fix).at(format!("line {line}, column {column}")),
        )
    };
    if text.len() as u64 > limits::MAX_XML_BYTES {
        return Err(Box::new(Finding::error(
            "ddex.limit",
            file,
            format!(
                "the message is {} bytes (the limit is {})",
                text.len(),
                limits::MAX_XML_BYTES
            ),
            "split the delivery into one message per release",
        )));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let line_of = |at: usize| {
        1 + text.as_bytes()[..at.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            bad(
                "ddex.syntax",
                reader.error_position() as usize,
                format!("malformed XML: {e}"),
                "fix the XML (xmllint --noout shows where)",
            )
        })?;
        let open = |e: &quick_xml::events::BytesStart| -> Result<Element, Box<Finding>> {
            let mut el = Element {
                name: AsRef::<str>::as_ref(&e.local_name()).to_string(),
                line: line_of(at),
                ..Element::default()
            };
            for a in e.attributes() {
                let a = a.map_err(|err| {
                    bad(
                        "ddex.syntax",
                        at,
                        format!("malformed attribute: {err}"),
                        "fix the XML",
                    )
                })?;
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| bad("ddex.syntax", at, format!("{err}"), "fix the XML"))?
                    .into_owned();
                // Namespace declarations keep their qualified name (`xmlns`, `xmlns:ern`).
                let key = a.key;
                let qualified: &str = key.as_ref();
                let is_ns = qualified == "xmlns" || qualified.starts_with("xmlns:");
                let name = if is_ns {
                    qualified.to_string()
                } else {
                    AsRef::<str>::as_ref(&key.local_name()).to_string()
                };
                el.attrs.push((name, value));
            }
            el.prefix = e
                .name()
                .prefix()
                .map(|p| AsRef::<str>::as_ref(&p).to_string())
                .unwrap_or_default();
            Ok(el)
        };
        match event {
            Event::DocType(_) => {
                return Err(bad(
                    "ddex.doctype",
                    at,
                    "the message has a DOCTYPE (entity declarations are refused: nothing is expanded or fetched)".into(),
                    "deliver the message without a DOCTYPE, as DDEX's schemas define it",
                ))
            }
            Event::Start(e) => {
                count += 1;
                if stack.len() >= limits::MAX_XML_DEPTH || count > limits::MAX_XML_ELEMENTS {
                    return Err(bad(
                        "ddex.limit",
                        at,
                        format!(
                            "the message is nested deeper than {} or has more than {} elements",
                            limits::MAX_XML_DEPTH,
                            limits::MAX_XML_ELEMENTS
                        ),
                        "deliver one release per message",
                    ));
                }
                let el = open(&e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                count += 1;
                let el = open(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            // `&amp;` and the like come as references of their own: the five XML predefines
            // and character references; any other entity is undefined (no DOCTYPE declares one).
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => quick_xml::escape::resolve_xml_entity(&r).map(String::from),
                };
                let Some(text) = resolved else {
                    return Err(bad(
                        "ddex.syntax",
                        at,
                        format!("undefined entity &{};", &*r),
                        "write the character itself, or &amp; &lt; &gt; &quot; &apos;",
                    ));
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::End(_) => {
                let done = stack.pop().expect("quick-xml matches end tags");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let root = root.ok_or_else(|| {
        bad(
            "ddex.syntax",
            0,
            "the document is empty".into(),
            "deliver the message",
        )
    })?;
    let declaration = if root.prefix.is_empty() {
        "xmlns".to_string()
    } else {
        format!("xmlns:{}", root.prefix)
    };
    let namespace = root.attr(&declaration).unwrap_or_default().to_string();
    Ok((root, namespace))
}

/// The release a DDEX message takes down, by ICPN: a `PurgeReleaseMessage`'s, or a
/// `NewReleaseMessage`'s whose deals allow no tier today (`models`: the ladder's `[deals]`;
/// its deals ended, or none). `Ok(None)`: the update still allows a tier, so it is pressed and
/// published, and its publish withdraws the tiers it no longer allows.
pub fn takedown_of(
    file: &Path,
    text: &str,
    models: &[(crate::ladder::Tier, Vec<String>)],
) -> Result<Option<String>, Box<Finding>> {
    if !text.contains("NewReleaseMessage") {
        return read_purge(file, text).map(Some);
    }
    // The release's identity and deals; its files do not matter to a takedown.
    let dir = file.parent().unwrap_or(Path::new("."));
    let (ern, findings) = check_ern(file, text, dir, &[]);
    let Some(icpn) = ern.metadata.upc else {
        let at = "ReleaseList/Release[1]/ReleaseId/ICPN";
        return Err(Box::new(
            findings
                .into_iter()
                .find(|f| f.location.as_deref() == Some(at))
                .unwrap_or_else(|| {
                    Finding::error(
                        "ddex.missing",
                        file,
                        "the message names no release by ICPN".into(),
                        "give the release's ICPN (UPC or EAN)",
                    )
                    .at(at.to_string())
                }),
        ));
    };
    Ok(availability(&ern.deals, models, &today())
        .is_empty()
        .then_some(icpn))
}

/// The release a DDEX ERN 4.3 `PurgeReleaseMessage` takes down: its ICPN
/// (`PurgedRelease/ReleaseId/ICPN`).
pub fn read_purge(file: &Path, text: &str) -> Result<String, Box<Finding>> {
    let (root, ns) = parse_tree(file, text)?;
    let bad = |code: &'static str, at: &str, message: String, fix: &str| {
        Box::new(Finding::error(code, file, message, fix).at(at.to_string()))
    };
    if ns != ERN_43 || root.name != "PurgeReleaseMessage" {
        return Err(bad(
            "ddex.version",
            &root.name,
            format!("the root is {} in namespace {ns:?}; a takedown is an ERN 4.3 PurgeReleaseMessage ({ERN_43})", root.name),
            "give the PurgeReleaseMessage the label sent",
        ));
    }
    let purged = root.first("PurgedRelease");
    match purged.and_then(|p| p.text_at("ReleaseId/ICPN")) {
        Some(icpn) => {
            metadata::check_upc(icpn).map_err(|m| {
                bad("metadata.upc", "PurgedRelease/ReleaseId/ICPN", m, "copy the ICPN of the release to take down")
            })?;
            Ok(icpn.to_string())
        }
        None => Err(bad(
            "ddex.missing",
            "PurgedRelease/ReleaseId/ICPN",
            match purged.and_then(|p| p.text_at("ReleaseId/GRid")) {
                Some(g) => format!("the purge names the release by GRid {g} only; pressing finds releases by their ICPN (UPC/EAN)"),
                None => "the purge names no release (PurgedRelease/ReleaseId/ICPN)".into(),
            },
            "name the release by its ICPN in PurgedRelease/ReleaseId",
        )),
    }
}

/// Whether a file looks like an ERN message (its root element's namespace is DDEX ERN).
pub fn is_ern(text: &str) -> bool {
    let head = &text[..text.len().min(4096)];
    head.contains("http://ddex.net/xml/ern/")
}

/// A deal: who may offer the release, how, where and when (DealList/ReleaseDeal/Deal/DealTerms;
/// a release.json's `deals[]` in the same shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deal {
    pub commercial_models: Vec<String>,
    #[serde(default)]
    pub use_types: Vec<String>,
    /// `Worldwide` or country codes; empty when the deal lists excluded territories only.
    #[serde(default)]
    pub territories: Vec<String>,
    #[serde(default)]
    pub excluded_territories: Vec<String>,
    /// YYYY-MM-DD (a StartDateTime keeps its date).
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

/// What the message header says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageHeader {
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub created: Option<String>,
    /// `TestMessage`: validated and pressed, never published unless asked.
    pub test: bool,
}

/// A NewReleaseMessage read and checked: the release metadata (as release.json gives it), the
/// header, the deals and the front cover's file.
#[derive(Clone, Debug, Default)]
pub struct Ern {
    pub metadata: ReleaseMetadata,
    pub header: MessageHeader,
    pub deals: Vec<Deal>,
    pub cover: Option<PathBuf>,
}

/// DDEX's territory codes: ISO 3166-1 alpha-2, `Worldwide`, and the codes DDEX adds.
fn is_ddex_territory(code: &str) -> bool {
    code == "Worldwide" || code == "XK" || metadata::is_country(code)
}

/// Read and check a NewReleaseMessage (`file`, the text `text`) against the masters in `dir`.
pub fn check_ern(file: &Path, text: &str, dir: &Path, masters: &[PathBuf]) -> (Ern, Vec<Finding>) {
    let mut ern = Ern::default();
    let (root, ns) = match parse_tree(file, text) {
        Ok(t) => t,
        Err(f) => return (ern, vec![*f]),
    };
    let mut findings = Vec::new();
    let mut err = |code: &'static str, at: String, message: String, fix: &str| {
        findings.push(Finding::error(code, file, message, fix).at(at));
    };
    if ns != ERN_43 || root.name != "NewReleaseMessage" {
        let version = ns.strip_prefix("http://ddex.net/xml/ern/").unwrap_or(&ns);
        err(
            "ddex.version",
            format!("{} (line {})", root.name, root.line),
            format!(
                "the root is {} in namespace {ns:?} (ERN version {version}); pressing reads ERN 4.3 NewReleaseMessage ({ERN_43})",
                root.name
            ),
            "deliver an ERN 4.3 NewReleaseMessage (ERN 3.x and 4.1/4.2 are not read)",
        );
        return (ern, findings);
    }
    // The header.
    if let Some(h) = root.first("MessageHeader") {
        ern.header = MessageHeader {
            message_id: h.text_at("MessageId").map(String::from),
            sender: h
                .text_at("MessageSender/PartyName/FullName")
                .map(String::from),
            created: h.text_at("MessageCreatedDateTime").map(String::from),
            test: h.text_at("MessageControlType") == Some("TestMessage"),
        };
    }
    // Parties by reference.
    let mut parties: HashMap<&str, &str> = HashMap::new();
    for p in root.first("PartyList").iter().flat_map(|l| l.all("Party")) {
        if let (Some(r), Some(n)) = (p.text_at("PartyReference"), p.text_at("PartyName/FullName")) {
            parties.insert(r, n);
        }
    }
    let artists_of =
        |e: &Element, at: &str, err: &mut dyn FnMut(&'static str, String, String, &str)| {
            let mut named: Vec<(u64, String)> = Vec::new();
            for (i, a) in e.all("DisplayArtist").enumerate() {
                let seq = a
                    .attr("SequenceNumber")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(i as u64 + 1);
                if let Some(r) = a.text_at("ArtistPartyReference") {
                    match parties.get(r) {
                        Some(n) => named.push((seq, n.to_string())),
                        None => err(
                            "ddex.reference",
                            format!("{at}/DisplayArtist[{}]/ArtistPartyReference", i + 1),
                            format!("artist party {r:?} is not in PartyList"),
                            "add the Party or fix the reference",
                        ),
                    }
                }
            }
            named.sort();
            let mut names: Vec<String> = named.into_iter().map(|(_, n)| n).collect();
            if names.is_empty() {
                if let Some(n) = e.text_at("DisplayArtistName") {
                    names.push(n.to_string());
                }
            }
            names
        };
    // Resources: sound recordings (and their files) and images, by reference.
    let resources = root.first("ResourceList");
    let mut sounds: HashMap<&str, (usize, &Element)> = HashMap::new();
    let mut images: HashMap<&str, &Element> = HashMap::new();
    for (i, s) in resources
        .iter()
        .flat_map(|r| r.all("SoundRecording"))
        .enumerate()
    {
        if let Some(r) = s.text_at("ResourceReference") {
            sounds.insert(r, (i + 1, s));
        }
    }
    for img in resources.iter().flat_map(|r| r.all("Image")) {
        if let Some(r) = img.text_at("ResourceReference") {
            images.insert(r, img);
        }
    }
    // The main release: ReleaseList/Release (ERN 4.3's TrackReleases are not the album).
    let Some(release) = root.first("ReleaseList").and_then(|l| l.first("Release")) else {
        err(
            "ddex.missing",
            "ReleaseList/Release".into(),
            "the message has no ReleaseList/Release".into(),
            "describe the release in ReleaseList/Release",
        );
        return (ern, findings);
    };
    let rp = "ReleaseList/Release[1]";
    // Where each release.json field came from, for the findings.
    let mut paths: Vec<(String, String)> = Vec::new();
    let mut field = |json: &str, ddex: String| paths.push((json.to_string(), ddex));
    let title = release
        .text_at("DisplayTitleText")
        .or_else(|| release.text_at("DisplayTitle/TitleText"));
    field("title", format!("{rp}/DisplayTitleText"));
    let upc = release.text_at("ReleaseId/ICPN");
    field("upc", format!("{rp}/ReleaseId/ICPN"));
    let artists = artists_of(release, rp, &mut err);
    field("artists", format!("{rp}/DisplayArtist"));
    let label = release
        .text_at("ReleaseLabelReference")
        .and_then(|r| parties.get(r).copied());
    if let Some(r) = release.text_at("ReleaseLabelReference") {
        if !parties.contains_key(r) {
            err(
                "ddex.reference",
                format!("{rp}/ReleaseLabelReference"),
                format!("label party {r:?} is not in PartyList"),
                "add the Party or fix the reference",
            );
        }
    }
    field("label", format!("{rp}/ReleaseLabelReference"));
    field("p_line", format!("{rp}/PLine/PLineText"));
    field("c_line", format!("{rp}/CLine/CLineText"));
    // Deals.
    for (d, deal) in root
        .first("DealList")
        .iter()
        .flat_map(|l| l.all("ReleaseDeal"))
        .flat_map(|rd| rd.all("Deal"))
        .enumerate()
    {
        let Some(terms) = deal.first("DealTerms") else {
            continue;
        };
        let at = format!("DealList/ReleaseDeal/Deal[{}]/DealTerms", d + 1);
        let texts = |name: &str| -> Vec<String> {
            terms
                .all(name)
                .map(|e| e.text.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let mut uses = texts("UseType");
        // ERN 4.3 may wrap use types in a Usage element.
        for u in terms.all("Usage") {
            uses.extend(u.all("UseType").map(|e| e.text.trim().to_string()));
        }
        let d = Deal {
            commercial_models: texts("CommercialModelType"),
            use_types: uses,
            territories: texts("TerritoryCode"),
            excluded_territories: texts("ExcludedTerritoryCode"),
            start: terms
                .text_at("ValidityPeriod/StartDate")
                .or_else(|| terms.text_at("ValidityPeriod/StartDateTime"))
                .map(|s| s.chars().take(10).collect()),
            end: terms
                .text_at("ValidityPeriod/EndDate")
                .or_else(|| terms.text_at("ValidityPeriod/EndDateTime"))
                .map(|s| s.chars().take(10).collect()),
        };
        for t in d.territories.iter().chain(&d.excluded_territories) {
            if !is_ddex_territory(t) {
                err(
                    "ddex.territory",
                    format!("{at}/TerritoryCode"),
                    format!(
                        "{t:?} is not a DDEX territory code (ISO 3166-1 alpha-2, Worldwide or XK)"
                    ),
                    "use DDEX's territory codes",
                );
            }
        }
        if !d.territories.is_empty() && !d.excluded_territories.is_empty() {
            err(
                "ddex.territory",
                at.clone(),
                "the deal has both TerritoryCode and ExcludedTerritoryCode (ERN 4.3 allows one or the other)".into(),
                "list the territories, or Worldwide and the excluded ones in a deal of its own",
            );
        }
        for date in d.start.iter().chain(&d.end) {
            if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
                err(
                    "ddex.date",
                    format!("{at}/ValidityPeriod"),
                    format!("{date:?} is not a date"),
                    "write dates as YYYY-MM-DD",
                );
            }
        }
        ern.deals.push(d);
    }
    // The release date: ReleaseDate, else the earliest deal start.
    let release_date = release
        .text_at("ReleaseDate")
        .or_else(|| release.text_at("OriginalReleaseDate"))
        .map(|s| s.chars().take(10).collect::<String>())
        .or_else(|| ern.deals.iter().filter_map(|d| d.start.clone()).min());
    field("release_date", format!("{rp}/ReleaseDate"));
    // Territories: where any deal allows it.
    let mut countries: Vec<String> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let mut worldwide = false;
    for d in &ern.deals {
        for t in &d.territories {
            if t == "Worldwide" {
                worldwide = true;
            } else if !countries.contains(t) && metadata::is_country(t) {
                countries.push(t.clone());
            }
        }
        if d.territories.is_empty() && !d.excluded_territories.is_empty() {
            worldwide = true;
            for t in &d.excluded_territories {
                if !excluded.contains(t) && metadata::is_country(t) {
                    excluded.push(t.clone());
                }
            }
        }
    }
    field(
        "territories",
        "DealList/ReleaseDeal/Deal/DealTerms/TerritoryCode".into(),
    );
    // Tracks: the ResourceGroup's content items, disc by disc.
    let mut tracks: Vec<Value> = Vec::new();
    let mut declared: Vec<(PathBuf, f64, String)> = Vec::new();
    let mut cover_ref = None;
    if let Some(group) = release.first("ResourceGroup") {
        if let Some(r) = group.text_at("LinkedReleaseResourceReference") {
            cover_ref = Some(r.to_string());
        }
        let discs: Vec<&Element> = if group.first("ResourceGroup").is_some() {
            group.all("ResourceGroup").collect()
        } else {
            vec![group]
        };
        for (d, disc) in discs.iter().enumerate() {
            let disc_number = disc
                .text_at("SequenceNumber")
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(d as u64 + 1);
            for (k, item) in disc.all("ResourceGroupContentItem").enumerate() {
                let item_at = format!(
                    "{rp}/ResourceGroup/ResourceGroup[{}]/ResourceGroupContentItem[{}]",
                    d + 1,
                    k + 1
                );
                let Some(reference) = item.text_at("ReleaseResourceReference") else {
                    continue;
                };
                if images.contains_key(reference) {
                    // A cover listed as a numbered item, as some distributors send it.
                    cover_ref.get_or_insert_with(|| reference.to_string());
                    continue;
                }
                let Some(&(s_index, sound)) = sounds.get(reference) else {
                    err(
                        "ddex.reference",
                        format!("{item_at}/ReleaseResourceReference"),
                        format!("resource {reference:?} is not a SoundRecording or Image of ResourceList"),
                        "add the resource or fix the reference",
                    );
                    continue;
                };
                let sp = format!("ResourceList/SoundRecording[{s_index}]");
                let i = tracks.len();
                let number = item
                    .text_at("SequenceNumber")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(k as u64 + 1);
                // ERN 4.3 puts the ISRC and the technical details in SoundRecordingEdition;
                // some senders put them on the SoundRecording itself.
                let (holder, hp) = match sound.first("SoundRecordingEdition") {
                    Some(e)
                        if e.first("ResourceId").is_some()
                            || e.first("TechnicalDetails").is_some() =>
                    {
                        (e, format!("{sp}/SoundRecordingEdition"))
                    }
                    _ => (sound, sp.clone()),
                };
                let isrc = holder.text_at("ResourceId/ISRC");
                let details = holder.first("TechnicalDetails");
                let file_el = details
                    .and_then(|t| t.first("DeliveryFile"))
                    .and_then(|f| f.first("File"))
                    .or_else(|| details.and_then(|t| t.first("File")));
                // A file is named relative to the message, inside its folder: an absolute path,
                // a URL or a `..` would read what the delivery does not hold.
                let uri = file_el.and_then(|f| f.text_at("URI")).filter(|u| {
                    let p = Path::new(u);
                    let inside = !u.contains("://")
                        && p.is_relative()
                        && p.components().all(|c| {
                            matches!(
                                c,
                                std::path::Component::Normal(_) | std::path::Component::CurDir
                            )
                        });
                    if !inside {
                        err(
                            "ddex.uri",
                            format!("{hp}/TechnicalDetails/DeliveryFile/File/URI"),
                            format!("{u:?} is not a path inside the delivery's folder"),
                            "name each file relative to the message (resources/01.wav)",
                        );
                    }
                    inside
                });
                let title = sound
                    .text_at("DisplayTitleText")
                    .or_else(|| sound.text_at("DisplayTitle/TitleText"));
                let version = sound.text_at("DisplayTitle/SubTitle");
                let explicit = matches!(sound.text_at("ParentalWarningType"), Some("Explicit"));
                if let (Some(u), Some(d)) = (uri, sound.text_at("Duration")) {
                    match iso_duration(d) {
                        Some(seconds) => {
                            declared.push((dir.join(u), seconds, format!("{sp}/Duration")))
                        }
                        None => err(
                            "ddex.duration",
                            format!("{sp}/Duration"),
                            format!("{d:?} is not an ISO 8601 duration"),
                            "write it as PT3M25S",
                        ),
                    }
                }
                let artists = artists_of(sound, &sp, &mut err);
                let p = format!("tracks[{i}]");
                paths.push((
                    format!("{p}.file"),
                    format!("{hp}/TechnicalDetails/DeliveryFile/File/URI"),
                ));
                paths.push((format!("{p}.isrc"), format!("{hp}/ResourceId/ISRC")));
                paths.push((format!("{p}.title"), format!("{sp}/DisplayTitleText")));
                paths.push((format!("{p}.artists"), format!("{sp}/DisplayArtist")));
                paths.push((
                    format!("{p}.track_number"),
                    format!("{item_at}/SequenceNumber"),
                ));
                let mut t = json!({
                    "track_number": number,
                    "disc_number": disc_number,
                    "explicit": explicit,
                    "artists": artists,
                });
                let o = t.as_object_mut().expect("an object");
                if let Some(u) = uri {
                    o.insert("file".into(), json!(u));
                }
                if let Some(v) = isrc {
                    o.insert("isrc".into(), json!(v));
                }
                if let Some(v) = title {
                    o.insert("title".into(), json!(v));
                }
                if let Some(v) = version {
                    o.insert("version".into(), json!(v));
                }
                // The file's HashSum, when given, must match.
                if let (Some(u), Some(f)) = (uri, file_el) {
                    if let Some(h) = f.first("HashSum") {
                        let algorithm = h
                            .text_at("Algorithm")
                            .or_else(|| h.text_at("HashSumAlgorithmType"))
                            .unwrap_or("");
                        let expected = h
                            .text_at("HashSumValue")
                            .or_else(|| h.text_at("HashSum"))
                            .unwrap_or("");
                        check_hash(
                            &dir.join(u),
                            algorithm,
                            expected,
                            &format!("{hp}/TechnicalDetails/DeliveryFile/File/HashSum"),
                            &mut err,
                        );
                    }
                }
                tracks.push(t);
            }
        }
    }
    // The front cover.
    if let Some(r) = &cover_ref {
        match images.get(r.as_str()) {
            Some(img) => {
                let file = img.first("TechnicalDetails").and_then(|t| t.first("File"));
                let at = format!("ResourceList/Image[ResourceReference={r}]/TechnicalDetails/File");
                match file.and_then(|f| f.text_at("URI")) {
                    // Inside the release folder, as every delivery file.
                    Some(u)
                        if !Path::new(u).is_absolute()
                            && Path::new(u)
                                .components()
                                .all(|c| matches!(c, std::path::Component::Normal(_))) =>
                    {
                        if let Some(h) = file.and_then(|f| f.first("HashSum")) {
                            check_hash(
                                &dir.join(u),
                                h.text_at("Algorithm").unwrap_or(""),
                                h.text_at("HashSumValue").unwrap_or(""),
                                &format!("{at}/HashSum"),
                                &mut err,
                            );
                        }
                        ern.cover = Some(dir.join(u));
                    }
                    Some(u) => err(
                        "ddex.uri",
                        format!("{at}/URI"),
                        format!("{u:?} leaves the release folder"),
                        "give the cover's path relative to the message's folder (resources/cover.jpg)",
                    ),
                    None => err(
                        "ddex.missing",
                        format!("{at}/URI"),
                        "the front cover Image has no TechnicalDetails/File/URI".into(),
                        "give the cover file's relative URI",
                    ),
                }
            }
            None => err(
                "ddex.reference",
                format!("{rp}/ResourceGroup/LinkedReleaseResourceReference"),
                format!("resource {r:?} is not an Image of ResourceList"),
                "add the Image or fix the reference",
            ),
        }
    }
    // The release.json the message says, checked as a release.json is.
    let mut doc = json!({
        "artists": artists,
        "tracks": tracks,
    });
    let o = doc.as_object_mut().expect("an object");
    for (k, v) in [
        ("title", title),
        ("label", label),
        ("upc", upc),
        ("p_line", release.text_at("PLine/PLineText")),
        ("c_line", release.text_at("CLine/CLineText")),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = &release_date {
        o.insert("release_date".into(), json!(d));
    }
    // A message without deals is valid DDEX (nothing is available yet): the territories
    // check is release.json's; here there are none, which `run` reports as nothing to package.
    let no_deals = ern.deals.is_empty();
    if worldwide || no_deals {
        o.insert("territories".into(), json!("worldwide"));
    } else {
        o.insert("territories".into(), json!(countries));
    }
    if !excluded.is_empty() {
        o.insert("excluded_territories".into(), json!(excluded));
    }
    let (meta, found) = metadata::check_release(file, &doc.to_string(), dir, masters);
    for mut f in found {
        if let Some(at) = &f.location {
            if let Some((_, ddex)) = paths.iter().find(|(json, _)| json == at) {
                f.location = Some(ddex.clone());
            }
        }
        findings.push(f);
    }
    ern.metadata = meta;
    for t in &mut ern.metadata.tracks {
        if let Some((_, seconds, at)) = declared.iter().find(|(f, _, _)| *f == t.file) {
            t.declared_duration = Some((*seconds, file.to_owned(), at.clone()));
        }
    }
    if no_deals {
        ern.metadata.territories = metadata::Territories::default();
        findings.push(
            Finding::warning(
                "ddex.no-deals",
                file,
                "the message has no deal: in DDEX that means available nowhere, so `run` packages no tier".into(),
                "send the release's deals (DealList/ReleaseDeal) with it, or in an update",
            )
            .at("DealList"),
        );
    }
    (ern, findings)
}

/// An ISO 8601 duration as DDEX writes it (`PT3M25S`, `PT0H3M25.5S`, `P0DT0H3M25S`), in seconds.
pub fn iso_duration(s: &str) -> Option<f64> {
    let rest = s.trim().strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0.0;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
            } else {
                let scale = units.iter().find(|(u, _)| *u == c)?.1;
                total += number.parse::<f64>().ok()? * scale;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    take(days, &[('D', 86_400.0)])?;
    take(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    (!rest.is_empty()).then_some(total)
}

/// A DDEX HashSum (`MD5`, `SHA1`, `SHA-256`, any case) against the file.
fn check_hash(
    path: &Path,
    algorithm: &str,
    expected: &str,
    at: &str,
    err: &mut dyn FnMut(&'static str, String, String, &str),
) {
    use sha2::Digest;
    if !path.is_file() {
        return; // a missing file is release.json's own finding
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let got = match algorithm.to_ascii_uppercase().replace('_', "-").as_str() {
        "MD5" => crate::layout::hex(&md5::Md5::digest(&bytes)),
        "SHA1" | "SHA-1" => crate::layout::hex(&sha1::Sha1::digest(&bytes)),
        "SHA-256" | "SHA256" => crate::layout::hex(&sha2::Sha256::digest(&bytes)),
        other => {
            err(
                "ddex.hash-algorithm",
                at.to_string(),
                format!("hash algorithm {other:?} is not one DDEX names (MD5, SHA1, SHA-256)"),
                "send an MD5, SHA1 or SHA-256 HashSum",
            );
            return;
        }
    };
    if !got.eq_ignore_ascii_case(expected.trim()) {
        err(
            "ddex.hash",
            at.to_string(),
            format!(
                "{:?}: {algorithm} is {got}, the message says {}",
                path.file_name().unwrap_or_default(),
                expected.trim()
            ),
            "deliver the file the message describes, or its right HashSum",
        );
    }
}

/// Where and when a tier may be offered, by the deals that allow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierAvailability {
    pub tier: crate::ladder::Tier,
    /// `true`: every territory (less `excluded_territories`).
    pub worldwide: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub territories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_territories: Vec<String>,
    /// The earliest start of the allowing deals (`None`: no start given).
    pub start: Option<String>,
    /// The latest end (`None`: open-ended).
    pub end: Option<String>,
    /// A deal licenses conditional download (offline listening) for the tier.
    pub offline: bool,
}

/// Use types that are streaming (DDEX AVS UseType).
const STREAMING: [&str; 4] = [
    "OnDemandStream",
    "Stream",
    "NonInteractiveStream",
    "ConditionalDownload",
];

/// What the deals allow, tier by tier: a tier is available when a deal that has not ended by
/// `today` (YYYY-MM-DD) names one of the tier's commercial models (`models`) and a streaming
/// use. Tiers no deal allows are left out.
pub fn availability(
    deals: &[Deal],
    models: &[(crate::ladder::Tier, Vec<String>)],
    today: &str,
) -> Vec<TierAvailability> {
    let mut out = Vec::new();
    for (tier, names) in models {
        let allowing: Vec<&Deal> = deals
            .iter()
            .filter(|d| d.end.as_deref().is_none_or(|end| end >= today))
            .filter(|d| d.commercial_models.iter().any(|m| names.contains(m)))
            .filter(|d| {
                d.use_types.is_empty()
                    || d.use_types.iter().any(|u| STREAMING.contains(&u.as_str()))
            })
            .collect();
        if allowing.is_empty() {
            continue;
        }
        let mut a = TierAvailability {
            tier: *tier,
            worldwide: false,
            territories: Vec::new(),
            excluded_territories: Vec::new(),
            start: None,
            end: None,
            offline: false,
        };
        for d in &allowing {
            if d.territories.is_empty() || d.territories.iter().any(|t| t == "Worldwide") {
                a.worldwide = true;
                for t in &d.excluded_territories {
                    if !a.excluded_territories.contains(t) {
                        a.excluded_territories.push(t.clone());
                    }
                }
            } else {
                for t in &d.territories {
                    if !a.territories.contains(t) {
                        a.territories.push(t.clone());
                    }
                }
            }
            a.offline |= d.use_types.iter().any(|u| u == "ConditionalDownload");
        }
        if a.worldwide {
            a.territories.clear();
        }
        a.territories.sort();
        a.excluded_territories.sort();
        a.start = allowing.iter().filter_map(|d| d.start.clone()).min();
        a.end = if allowing.iter().any(|d| d.end.is_none()) {
            None
        } else {
            allowing.iter().filter_map(|d| d.end.clone()).max()
        };
        out.push(a);
    }
    out
}

/// Today's date (UTC), YYYY-MM-DD: what a deal's end is compared with.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.date_naive().format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::Tier;

    fn models() -> Vec<(Tier, Vec<String>)> {
        vec![
            (
                Tier::Free,
                vec![
                    "AdvertisementSupportedModel".into(),
                    "FreeOfChargeModel".into(),
                ],
            ),
            (Tier::Premium, vec!["SubscriptionModel".into()]),
            (Tier::Hifi, vec!["SubscriptionModel".into()]),
        ]
    }

    fn deal(model: &str, uses: &[&str], territories: &[&str], end: Option<&str>) -> Deal {
        Deal {
            commercial_models: vec![model.into()],
            use_types: uses.iter().map(|s| s.to_string()).collect(),
            territories: territories.iter().map(|s| s.to_string()).collect(),
            excluded_territories: Vec::new(),
            start: Some("2026-01-01".into()),
            end: end.map(String::from),
        }
    }

    #[test]
    fn a_position_inside_a_multibyte_character_does_not_panic() {
        // Found by the fuzzer: an error position inside a character (a BOM, lossy bytes).
        let bytes = include_bytes!("../../fuzz/seeds/ern/crash-char-boundary.xml");
        let text = String::from_utf8_lossy(bytes);
        let _ = check_ern(Path::new("ern.xml"), &text, Path::new("/nonexistent"), &[]);
    }

    #[test]
    fn iso_durations_read_as_ddex_writes_them() {
        assert_eq!(iso_duration("PT2M28S"), Some(148.0));
        assert_eq!(iso_duration("PT0H3M25.5S"), Some(205.5));
        assert_eq!(iso_duration("P0DT0H0M10S"), Some(10.0));
        assert_eq!(iso_duration("PT1H"), Some(3600.0));
        for bad in ["", "P", "2M28S", "PT2X", "PT2M28"] {
            assert_eq!(iso_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn deals_decide_tiers_territories_windows_and_offline() {
        let deals = [
            deal(
                "SubscriptionModel",
                &["OnDemandStream", "ConditionalDownload"],
                &["Worldwide"],
                None,
            ),
            deal(
                "AdvertisementSupportedModel",
                &["OnDemandStream"],
                &["GB", "FR"],
                Some("2026-06-30"),
            ),
        ];
        let a = availability(&deals, &models(), "2026-03-01");
        assert_eq!(
            a.iter().map(|x| x.tier).collect::<Vec<_>>(),
            [Tier::Free, Tier::Premium, Tier::Hifi]
        );
        assert_eq!(a[0].territories, ["FR", "GB"]);
        assert!(!a[0].worldwide && !a[0].offline);
        assert_eq!(a[0].end.as_deref(), Some("2026-06-30"));
        assert!(a[1].worldwide && a[1].offline && a[1].end.is_none());
        // The ad-supported deal has ended: free is no longer available.
        let later = availability(&deals, &models(), "2026-07-01");
        assert_eq!(
            later.iter().map(|x| x.tier).collect::<Vec<_>>(),
            [Tier::Premium, Tier::Hifi]
        );
        // No deal: nothing. A download-only deal: no streaming tier.
        assert!(availability(&[], &models(), "2026-03-01").is_empty());
        let download = [deal(
            "SubscriptionModel",
            &["PermanentDownload"],
            &["Worldwide"],
            None,
        )];
        assert!(availability(&download, &models(), "2026-03-01").is_empty());
    }
}
