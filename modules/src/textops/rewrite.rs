//! Turning byte-level replacements inside the header section into header lumps.
//!
//! Kamailio's textops deletes and inserts bytes anywhere in the message. sipd records header
//! edits only ([`HeaderEdit`]), so a replacement is expressed by removing every header line it
//! touches and inserting the rewritten lines in their place. Replacements in the start line or
//! the body cannot be expressed and are refused as a whole ([`RewriteError`]), before any edit
//! is recorded. Two rewrites of the same header both start from the received text: the later
//! one does not see the earlier one (lumps are not visible to reads).

use std::ops::Range;

use kemi_runtime::sip::{HeaderEdit, Message};
use kemi_runtime::SipMsg;

use super::subst::{splice_bytes, Splice};

/// Why a set of replacements cannot be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The message has no headers.
    #[error("the message has no headers")]
    NoHeaders,
    /// A replacement touches the start line.
    #[error("cannot change the start line")]
    StartLine,
    /// A replacement touches the blank line or the body.
    #[error("cannot change the message body: body rewriting is not supported")]
    Body,
}

/// Offset of `sub`, a slice of the message's buffer, from the buffer's start.
pub fn offset_in(m: &Message, sub: &str) -> usize {
    m.offset_of(sub).unwrap_or(0)
}

/// Byte ranges of every header line (name to CRLF) in the received buffer.
pub fn header_lines(m: &Message) -> Vec<Range<usize>> {
    m.headers()
        .map(|h| {
            let start = offset_in(m, h.line);
            start..start + h.line.len()
        })
        .collect()
}

/// From the first header to the end of the last header line.
pub fn header_section(lines: &[Range<usize>]) -> Option<Range<usize>> {
    Some(lines.first()?.start..lines.last()?.end)
}

/// Record `splices` (message offsets, sorted, non-overlapping) as header edits.
pub fn apply(msg: &mut SipMsg, splices: &[Splice]) -> Result<(), RewriteError> {
    let lines = header_lines(&msg.message);
    let section = header_section(&lines).ok_or(RewriteError::NoHeaders)?;
    let mut groups: Vec<(usize, usize, Vec<&Splice>)> = Vec::new();
    for s in splices {
        if s.range.start < section.start {
            return Err(RewriteError::StartLine);
        }
        let inside = s.range.end < section.end
            || (s.range.end == section.end && s.range.start < section.end)
            || (s.range.is_empty() && s.range.start == section.end);
        if !inside {
            return Err(RewriteError::Body);
        }
        let last = lines.len().saturating_sub(1);
        let first = lines
            .iter()
            .position(|l| l.end > s.range.start)
            .unwrap_or(last);
        let end_line = if s.range.is_empty() {
            first
        } else {
            lines
                .iter()
                .rposition(|l| l.start < s.range.end)
                .unwrap_or(first)
                .max(first)
        };
        match groups.last_mut() {
            Some((_, j, members)) if first <= *j => {
                *j = (*j).max(end_line);
                members.push(s);
            }
            _ => groups.push((first, end_line, vec![s])),
        }
    }
    let buf = msg.message.as_bytes();
    let mut edits = Vec::new();
    for (i, j, members) in groups {
        let (Some(first), Some(last)) = (lines.get(i), lines.get(j)) else {
            continue;
        };
        let base = first.start;
        let local: Vec<Splice> = members
            .iter()
            .map(|s| Splice {
                range: s.range.start.saturating_sub(base)..s.range.end.saturating_sub(base),
                text: s.text.clone(),
            })
            .collect();
        let original = buf.get(base..last.end).unwrap_or_default();
        let text = splice_bytes(original, &local);
        edits.extend((i..=j).map(HeaderEdit::Remove));
        if !text.is_empty() {
            edits.push(HeaderEdit::InsertBefore(
                i,
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
    }
    msg.route.edits.extend(edits);
    Ok(())
}
