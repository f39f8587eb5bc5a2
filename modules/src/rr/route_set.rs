//! The Route values of a message, each with the header it sits in and its place there, so
//! that single values can be removed with header edits.

use kemi_runtime::sip::{HeaderEdit, HeaderKind, Message, NameAddr};

/// One Route value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// Index of the header holding it.
    pub header: usize,
    /// The value as written (`<sip:p;lr>;x=y`), trimmed.
    pub value: String,
    /// The URI inside it.
    pub uri: String,
}

impl RouteEntry {
    /// Whether the URI has the `lr` parameter (a loose router).
    pub fn is_loose(&self) -> bool {
        kemi_runtime::sip::Uri::parse(&self.uri).is_ok_and(|u| u.params.has("lr"))
    }

    /// The URI's parameters as written (after the host part), without the leading `;`.
    pub fn uri_params(&self) -> &str {
        match kemi_runtime::sip::Uri::parse(&self.uri) {
            Ok(u) => {
                let host_end = u.host.as_ptr() as usize - self.uri.as_ptr() as usize + u.host.len();
                let rest = self.uri.get(host_end..).unwrap_or("");
                rest.find(';').and_then(|i| rest.get(i + 1..)).unwrap_or("")
            }
            Err(_) => "",
        }
    }
}

/// Split a header value at commas outside `<...>` and quotes.
fn split_values(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0u32, false, 0usize);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                out.push(v.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v.get(start..).unwrap_or(""));
    out
}

/// Every Route value of `m`, top first. Values that do not parse as name-addr are skipped.
pub fn entries(m: &Message) -> Vec<RouteEntry> {
    let mut out = Vec::new();
    for h in m.find_kind(HeaderKind::Route) {
        for v in split_values(h.value) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            if let Ok(na) = NameAddr::parse(v, "Route") {
                out.push(RouteEntry {
                    header: h.index,
                    value: v.to_string(),
                    uri: na.uri.to_string(),
                });
            }
        }
    }
    out
}

/// Header edits removing `removed` (entries of `all`) and appending `append` (a full
/// `Route:` value) after the last Route header.
pub fn edits(
    all: &[RouteEntry],
    removed: &[usize],
    append: Option<&str>,
    m: &Message,
) -> Vec<HeaderEdit> {
    let mut out = Vec::new();
    let mut headers: Vec<usize> = all.iter().map(|e| e.header).collect();
    headers.dedup();
    for h in &headers {
        let in_h: Vec<(usize, &RouteEntry)> = all
            .iter()
            .enumerate()
            .filter(|(_, e)| e.header == *h)
            .collect();
        if !in_h.iter().any(|(i, _)| removed.contains(i)) {
            continue;
        }
        out.push(HeaderEdit::Remove(*h));
        let kept: Vec<&str> = in_h
            .iter()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, e)| e.value.as_str())
            .collect();
        if !kept.is_empty() {
            let name = m.header(*h).map_or("Route", |hr| hr.name);
            out.push(HeaderEdit::InsertBefore(
                *h,
                format!("{name}: {}\r\n", kept.join(", ")),
            ));
        }
    }
    if let Some(v) = append {
        let line = format!("Route: {v}\r\n");
        match headers.last() {
            Some(h) => out.push(HeaderEdit::AppendAfter(*h, line)),
            None => out.push(HeaderEdit::Append(line)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_edits() {
        let m = Message::parse(
            "BYE sip:b@h SIP/2.0\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3>\r\nl: 0\r\n\r\n"
                .as_bytes()
                .to_vec()
                .into(),
        )
        .unwrap();
        let e = entries(&m);
        assert_eq!(e.len(), 3);
        assert!(e[0].is_loose() && !e[2].is_loose());
        assert_eq!(e[0].uri_params(), "lr");
        let ed = edits(&e, &[0], None, &m);
        assert_eq!(
            ed,
            vec![
                HeaderEdit::Remove(0),
                HeaderEdit::InsertBefore(0, "Route: <sip:p2;lr>\r\n".into())
            ]
        );
    }
}
