//! Kamailio's rtpengine flag strings (`"replace-origin replace-session-connection ICE=remove
//! RTP/AVP direction=external"`) translated into ng dictionary entries, as Kamailio's module
//! does: list-valued families (`replace-*`, `direction=`, `rtcp-mux-*`, `SDES-*`,
//! `codec-<op>-*`), the transport protocol names, keys with values (`ICE=`, `DTLS=`, `label=`,
//! ...), the call selectors `call-id=`, `from-tag=`, `to-tag=`, `via-branch=`, and every other
//! word into the `flags` list, which rtpengine reads itself (`trust-address`, `symmetric`,
//! `asymmetric`, `SIP-source-address`, `record-call`, ...).

use std::collections::BTreeMap;

use super::bencode::Value;

/// Which Via's branch goes into `via-branch` (`via-branch=1|2|auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaChoice {
    /// The topmost Via.
    First,
    /// The second Via.
    Second,
    /// The first for requests, the second for replies.
    Auto,
}

/// A parsed flag string.
#[derive(Clone, Debug, Default)]
pub struct NgFlags {
    /// Extra dictionary entries.
    pub dict: BTreeMap<Vec<u8>, Value>,
    /// Words for the `flags` list.
    pub flags: Vec<String>,
    /// `replace` list.
    pub replace: Vec<String>,
    /// `direction` list.
    pub direction: Vec<String>,
    /// `rtcp-mux` list.
    pub rtcp_mux: Vec<String>,
    /// `SDES` list.
    pub sdes: Vec<String>,
    /// `codec` dictionary: operation to codecs.
    pub codec: BTreeMap<String, Vec<String>>,
    /// `call-id=` override.
    pub call_id: Option<String>,
    /// `from-tag=` override.
    pub from_tag: Option<String>,
    /// `to-tag=` override.
    pub to_tag: Option<String>,
    /// Bare `to-tag`: send the To tag with an offer too.
    pub to_tag_always: bool,
    /// `via-branch=`.
    pub via: Option<ViaChoice>,
}

/// Transport protocol names, sent as `transport-protocol`.
const TRANSPORTS: &[&str] = &[
    "RTP/AVP",
    "RTP/SAVP",
    "RTP/AVPF",
    "RTP/SAVPF",
    "UDP/TLS/RTP/SAVP",
    "UDP/TLS/RTP/SAVPF",
];

/// Codec operations of `codec-<op>-<codec>`.
const CODEC_OPS: &[&str] = &[
    "strip",
    "offer",
    "transcode",
    "mask",
    "set",
    "except",
    "accept",
    "consume",
];

impl NgFlags {
    /// Parse a flag string; never fails (unknown words go to `flags`, as Kamailio passes
    /// them on), except for an invalid `via-branch=` value.
    pub fn parse(s: &str) -> Result<NgFlags, String> {
        let mut f = NgFlags::default();
        for word in s.split_whitespace() {
            f.word(word)?;
        }
        Ok(f)
    }

    fn word(&mut self, word: &str) -> Result<(), String> {
        if TRANSPORTS.contains(&word) {
            self.dict
                .insert(b"transport-protocol".to_vec(), Value::str(word));
            return Ok(());
        }
        if let Some((key, val)) = word.split_once('=') {
            match key {
                "direction" => self.direction.push(val.to_string()),
                "call-id" => self.call_id = Some(val.to_string()),
                "from-tag" => self.from_tag = Some(val.to_string()),
                "to-tag" => self.to_tag = Some(val.to_string()),
                "via-branch" => {
                    self.via = Some(match val {
                        "1" => ViaChoice::First,
                        "2" => ViaChoice::Second,
                        "auto" => ViaChoice::Auto,
                        _ => return Err(format!("unsupported via-branch value `{val}`")),
                    })
                }
                "delete-delay" | "TOS" | "repacketize" | "volume" | "delay-buffer"
                    if val.parse::<i64>().is_ok() =>
                {
                    let n = val.parse::<i64>().unwrap_or_default();
                    self.dict.insert(key.as_bytes().to_vec(), Value::Int(n));
                }
                _ => {
                    self.dict.insert(key.as_bytes().to_vec(), Value::str(val));
                }
            }
            return Ok(());
        }
        match word {
            "internal" | "external" => self.direction.push(word.to_string()),
            "to-tag" => self.to_tag_always = true,
            _ => {
                if let Some(x) = word.strip_prefix("replace-") {
                    self.replace.push(x.to_string());
                } else if let Some(x) = word.strip_prefix("rtcp-mux-") {
                    self.rtcp_mux.push(x.to_string());
                } else if let Some(x) = word.strip_prefix("SDES-") {
                    self.sdes.push(x.to_string());
                } else if let Some((op, codec)) = word
                    .strip_prefix("codec-")
                    .and_then(|r| r.split_once('-'))
                    .filter(|(op, c)| CODEC_OPS.contains(op) && !c.is_empty())
                {
                    self.codec
                        .entry(op.to_string())
                        .or_default()
                        .push(codec.to_string());
                } else if let Some(c) = word.strip_prefix("transcode-") {
                    self.codec
                        .entry("transcode".into())
                        .or_default()
                        .push(c.to_string());
                } else {
                    self.flags.push(word.to_string());
                }
            }
        }
        Ok(())
    }

    /// Put the parsed entries into `dict`.
    pub fn fill(&self, dict: &mut BTreeMap<Vec<u8>, Value>) {
        for (k, v) in &self.dict {
            dict.insert(k.clone(), v.clone());
        }
        for (key, list) in [
            ("flags", &self.flags),
            ("replace", &self.replace),
            ("direction", &self.direction),
            ("rtcp-mux", &self.rtcp_mux),
            ("SDES", &self.sdes),
        ] {
            if !list.is_empty() {
                dict.insert(key.as_bytes().to_vec(), Value::strs(list));
            }
        }
        if !self.codec.is_empty() {
            let c = self
                .codec
                .iter()
                .map(|(op, l)| (op.as_bytes().to_vec(), Value::strs(l)))
                .collect();
            dict.insert(b"codec".to_vec(), Value::Dict(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailio_flag_strings_translate() {
        let f = NgFlags::parse(
            "replace-origin replace-session-connection ICE=remove RTP/AVP direction=external \
             direction=internal via-branch=auto trust-address symmetric SIP-source-address \
             codec-strip-PCMA codec-offer-opus rtcp-mux-demux SDES-off to-tag call-id=c1 \
             from-tag=f1 label=callee delete-delay=0",
        )
        .unwrap();
        let mut d = BTreeMap::new();
        f.fill(&mut d);
        let v = Value::Dict(d);
        assert_eq!(
            v.get("replace"),
            Some(&Value::strs(&["origin", "session-connection"]))
        );
        assert_eq!(v.get("ICE").and_then(Value::as_str), Some("remove"));
        assert_eq!(
            v.get("transport-protocol").and_then(Value::as_str),
            Some("RTP/AVP")
        );
        assert_eq!(
            v.get("direction"),
            Some(&Value::strs(&["external", "internal"]))
        );
        assert_eq!(
            v.get("flags"),
            Some(&Value::strs(&[
                "trust-address",
                "symmetric",
                "SIP-source-address"
            ]))
        );
        assert_eq!(
            v.get("codec").and_then(|c| c.get("strip")),
            Some(&Value::strs(&["PCMA"]))
        );
        assert_eq!(v.get("rtcp-mux"), Some(&Value::strs(&["demux"])));
        assert_eq!(v.get("SDES"), Some(&Value::strs(&["off"])));
        assert_eq!(v.get("label").and_then(Value::as_str), Some("callee"));
        assert_eq!(v.get("delete-delay"), Some(&Value::Int(0)));
        assert_eq!(f.via, Some(ViaChoice::Auto));
        assert!(f.to_tag_always);
        assert_eq!(f.call_id.as_deref(), Some("c1"));
        assert_eq!(f.from_tag.as_deref(), Some("f1"));
        assert!(NgFlags::parse("via-branch=9").is_err());
        assert!(NgFlags::parse("").unwrap().flags.is_empty());
    }
}
