//! DDEX ERN 4.3 messages written for the fixtures' masters (tests/ddex.rs, tests/fleet.rs).

use std::path::{Path, PathBuf};

use super::root;

/// A deal as the message gives it: (commercial model, use types, territories, excluded, start,
/// end).
pub type DealSpec<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a str,
    Option<&'a str>,
);

pub const SUBSCRIPTION_WORLDWIDE: DealSpec = (
    "SubscriptionModel",
    &["OnDemandStream", "ConditionalDownload"],
    &["Worldwide"],
    &[],
    "2026-01-01",
    None,
);
pub const ADS_GB_FR: DealSpec = (
    "AdvertisementSupportedModel",
    &["OnDemandStream"],
    &["GB", "FR"],
    &[],
    "2026-01-01",
    Some("2099-12-31"),
);

/// A subscription deal that ended in 2020: it allows no tier today.
pub const ENDED_2020: DealSpec = (
    "SubscriptionModel",
    &["OnDemandStream"],
    &["Worldwide"],
    &[],
    "2020-01-01",
    Some("2020-12-31"),
);

pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(std::fs::read(path).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A release folder: two masters of the fixtures under resources/ (one per disc) and a
/// NewReleaseMessage describing them with `deals`; `edit` changes the message's text.
pub fn batch(name: &str, deals: &[DealSpec], edit: impl Fn(String) -> String) -> PathBuf {
    let dir = super::scratch().join("ddex").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("resources")).unwrap();
    let a = dir.join("resources/A1.wav");
    let b = dir.join("resources/A2.flac");
    std::fs::copy(root().join("fixtures/album/01-cd-stereo.wav"), &a).unwrap();
    std::fs::copy(root().join("fixtures/album/02-hires.flac"), &b).unwrap();
    let deal_xml: String = deals
        .iter()
        .map(|(model, uses, territories, excluded, start, end)| {
            // ERN 4.3 order: territories, the validity period, then models and uses.
            let mut terms = String::new();
            for t in *territories {
                terms.push_str(&format!("<TerritoryCode>{t}</TerritoryCode>"));
            }
            for t in *excluded {
                terms.push_str(&format!("<ExcludedTerritoryCode>{t}</ExcludedTerritoryCode>"));
            }
            terms.push_str(&format!("<ValidityPeriod><StartDate>{start}</StartDate>"));
            if let Some(e) = end {
                terms.push_str(&format!("<EndDate>{e}</EndDate>"));
            }
            terms.push_str("</ValidityPeriod>");
            terms.push_str(&format!("<CommercialModelType>{model}</CommercialModelType>"));
            for u in *uses {
                terms.push_str(&format!("<UseType>{u}</UseType>"));
            }
            format!("<ReleaseDeal><DealReleaseReference>R0</DealReleaseReference><Deal><DealTerms>{terms}</DealTerms></Deal></ReleaseDeal>")
        })
        .collect();
    // No deal: no DealList (the XSD wants at least one ReleaseDeal in one).
    let deal_list = if deal_xml.is_empty() {
        String::new()
    } else {
        format!("<DealList>{deal_xml}</DealList>")
    };
    let sound = |r: &str,
                 isrc: &str,
                 title: &str,
                 file: &str,
                 hash: &str,
                 warning: &str,
                 duration: &str| {
        format!(
            r#"<SoundRecording>
      <ResourceReference>{r}</ResourceReference>
      <Type>MusicalWorkSoundRecording</Type>
      <SoundRecordingEdition>
        <ResourceId><ISRC>{isrc}</ISRC></ResourceId>
        <PLine><Year>2026</Year><PLineText>(P) 2026 Pressing Records</PLineText></PLine>
        <TechnicalDetails>
          <TechnicalResourceDetailsReference>T{r}</TechnicalResourceDetailsReference>
          <DeliveryFile><Type>AudioFile</Type><File><URI>{file}</URI><HashSum><Algorithm>SHA-256</Algorithm><HashSumValue>{hash}</HashSumValue></HashSum></File></DeliveryFile>
        </TechnicalDetails>
      </SoundRecordingEdition>
      <DisplayTitleText>{title}</DisplayTitleText>
      <DisplayTitle><TitleText>{title}</TitleText><SubTitle>Remastered</SubTitle></DisplayTitle>
      <DisplayArtistName>The Fixtures</DisplayArtistName>
      <DisplayArtist SequenceNumber="1"><ArtistPartyReference>P1</ArtistPartyReference><DisplayArtistRole>MainArtist</DisplayArtistRole></DisplayArtist>
      <Duration>{duration}</Duration>
      <ParentalWarningType>{warning}</ParentalWarningType>
    </SoundRecording>"#
        )
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ern:NewReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" LanguageAndScriptCode="en" AvsVersionId="4.3">
  <MessageHeader>
    <MessageThreadId>T-1</MessageThreadId>
    <MessageId>MSG-{name}</MessageId>
    <MessageSender><PartyId>PADPIDA2014021302H</PartyId><PartyName><FullName>Fixture Distribution</FullName></PartyName></MessageSender>
    <MessageRecipient><PartyId>PADPIDA2024072201A</PartyId></MessageRecipient>
    <MessageCreatedDateTime>2026-12-01T10:00:00+00:00</MessageCreatedDateTime>
    <MessageControlType>LiveMessage</MessageControlType>
  </MessageHeader>
  <PartyList>
    <Party><PartyReference>P1</PartyReference><PartyName><FullName>The Fixtures</FullName></PartyName></Party>
    <Party><PartyReference>P2</PartyReference><PartyName><FullName>Pressing Records &amp; Co</FullName></PartyName></Party>
  </PartyList>
  <ResourceList>
    {}
    {}
  </ResourceList>
  <ReleaseList>
    <Release>
      <ReleaseReference>R0</ReleaseReference>
      <ReleaseType>Album</ReleaseType>
      <ReleaseId><ICPN>5012345678900</ICPN></ReleaseId>
      <DisplayTitleText>Two Discs</DisplayTitleText>
      <DisplayTitle><TitleText>Two Discs</TitleText></DisplayTitle>
      <DisplayArtistName>The Fixtures</DisplayArtistName>
      <DisplayArtist SequenceNumber="1"><ArtistPartyReference>P1</ArtistPartyReference><DisplayArtistRole>MainArtist</DisplayArtistRole></DisplayArtist>
      <ReleaseLabelReference>P2</ReleaseLabelReference>
      <PLine><Year>2026</Year><PLineText>(P) 2026 Pressing Records</PLineText></PLine>
      <CLine><Year>2026</Year><CLineText>(C) 2026 Pressing Records</CLineText></CLine>
      <Genre><GenreText>Electronic</GenreText></Genre>
      <ReleaseDate>2026-12-12</ReleaseDate>
      <ParentalWarningType>NotExplicit</ParentalWarningType>
      <ResourceGroup>
        <ResourceGroup ResourceGroupType="Component"><SequenceNumber>1</SequenceNumber>
          <ResourceGroupContentItem><SequenceNumber>1</SequenceNumber><ReleaseResourceReference>A1</ReleaseResourceReference></ResourceGroupContentItem>
        </ResourceGroup>
        <ResourceGroup ResourceGroupType="Component"><SequenceNumber>2</SequenceNumber>
          <ResourceGroupContentItem><SequenceNumber>1</SequenceNumber><ReleaseResourceReference>A2</ReleaseResourceReference></ResourceGroupContentItem>
        </ResourceGroup>
      </ResourceGroup>
    </Release>
  </ReleaseList>
  {deal_list}
</ern:NewReleaseMessage>
"#,
        sound(
            "A1",
            "QZES62600101",
            "First Side",
            "resources/A1.wav",
            &sha256(&a),
            "NotExplicit",
            "PT0M10.5S"
        ),
        sound(
            "A2",
            "QZES62600102",
            "Second Side",
            "resources/A2.flac",
            &sha256(&b),
            "Explicit",
            "PT0M6.5S"
        ),
    );
    std::fs::write(dir.join("ern.xml"), edit(xml)).unwrap();
    dir
}

/// A message with a front cover: `file` (relative to the message) as an Image resource with
/// its SHA-256, linked from the release's top-level ResourceGroup as DDEX's rules ask.
pub fn add_cover(xml: String, file: &str, sha256: &str) -> String {
    let image = format!(
        r#"<Image>
      <ResourceReference>A9</ResourceReference>
      <Type>FrontCoverImage</Type>
      <ResourceId><ProprietaryId Namespace="DPID:PADPIDA2014021302H">cover-1</ProprietaryId></ResourceId>
      <TechnicalDetails>
        <TechnicalResourceDetailsReference>TA9</TechnicalResourceDetailsReference>
        <File><URI>{file}</URI><HashSum><Algorithm>SHA-256</Algorithm><HashSumValue>{sha256}</HashSumValue></HashSum></File>
      </TechnicalDetails>
    </Image>
  </ResourceList>"#
    );
    let xml = xml.replacen("</ResourceList>", &image, 1);
    // The top-level group's last child.
    let end = xml
        .rfind("      </ResourceGroup>\n    </Release>")
        .expect("a top-level group");
    let mut xml = xml;
    xml.insert_str(
        end,
        "        <LinkedReleaseResourceReference>A9</LinkedReleaseResourceReference>\n",
    );
    xml
}

/// A PurgeReleaseMessage naming a release by `id` (`<ICPN>...</ICPN>` or `<GRid>...</GRid>`).
pub fn purge_message(id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ern:PurgeReleaseMessage xmlns:ern="http://ddex.net/xml/ern/43" LanguageAndScriptCode="en" AvsVersionId="4.3">
  <MessageHeader><MessageId>PURGE-1</MessageId><MessageSender><PartyId>PADPIDA2014021302H</PartyId></MessageSender><MessageRecipient><PartyId>PADPIDA2024072201A</PartyId></MessageRecipient><MessageCreatedDateTime>2026-12-06T10:00:00+00:00</MessageCreatedDateTime></MessageHeader>
  <PurgedRelease><ReleaseId>{id}</ReleaseId></PurgedRelease>
</ern:PurgeReleaseMessage>
"#
    )
}

/// A square cover of four coloured quadrants, `side` pixels, as PNG at `path`; its SHA-256.
pub fn write_cover(path: &Path, side: u32) -> String {
    image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([
            if x < side / 2 { 200 } else { 30 },
            if y < side / 2 { 200 } else { 30 },
            90,
        ])
    })
    .save(path)
    .unwrap();
    sha256(path)
}
