//! The calls the script asked to trace (`sip_trace()` on a transaction, `sip_trace_mode("d")` on
//! a dialog), found again by Call-ID (and CSeq number for a transaction) in every message in and
//! out. A sharded map: no lock is shared by all messages, and none is taken while it is empty.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// How long a traced transaction stays traced: timer B/F (64 T1) and some.
pub const TRANSACTION: Duration = Duration::from_secs(40);
/// How long a traced dialog stays traced after its last message.
pub const DIALOG_IDLE: Duration = Duration::from_secs(2 * 3600);

/// One traced call: a transaction (`cseq` set) or a whole dialog.
type Key = (Box<[u8]>, Option<u32>);

/// The traced calls and when each stops being traced.
#[derive(Debug)]
pub struct Calls {
    shards: Vec<Mutex<HashMap<Key, Instant>>>,
    len: AtomicUsize,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            len: AtomicUsize::new(0),
        }
    }
}

fn shard_of(call_id: &[u8]) -> usize {
    // FNV-1a: cheap, and a skewed spread only costs contention on one shard.
    let h = call_id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (h % SHARDS as u64) as usize
}

impl Calls {
    /// Trace `call_id` (its transaction `cseq`, or the whole dialog when `None`) for `ttl`.
    pub fn add(&self, call_id: &[u8], cseq: Option<u32>, ttl: Duration) {
        let mut shard = self.shards[shard_of(call_id)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard
            .insert((call_id.into(), cseq), Instant::now() + ttl)
            .is_none()
        {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether nothing is traced (one atomic load).
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }

    /// Whether a message of `call_id` with CSeq number `cseq` is traced; a traced dialog's
    /// deadline moves on with each of its messages.
    pub fn contains(&self, call_id: &[u8], cseq: Option<u32>) -> bool {
        let now = Instant::now();
        let mut shard = self.shards[shard_of(call_id)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut found = false;
        if let Some(until) = shard.get_mut(&(call_id.into(), None)) {
            if *until > now {
                *until = now + DIALOG_IDLE;
                found = true;
            }
        }
        if !found && cseq.is_some() {
            found = shard
                .get(&(call_id.into(), cseq))
                .is_some_and(|until| *until > now);
        }
        found
    }

    /// Forget what is no longer traced (the module's periodic job).
    pub fn sweep(&self) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.len();
            shard.retain(|_, until| *until > now);
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
    }
}

/// The Call-ID and CSeq number of the SIP message `raw`, by a scan of its header lines (long and
/// compact names); empty/`None` when absent.
pub fn call_of(raw: &[u8]) -> (&[u8], Option<u32>) {
    let mut call_id: &[u8] = &[];
    let mut cseq = None;
    for line in raw.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            call_id = value;
        } else if name.eq_ignore_ascii_case(b"cseq") {
            let digits = value
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(value.len());
            cseq = std::str::from_utf8(&value[..digits])
                .ok()
                .and_then(|d| d.parse().ok());
        }
        if !call_id.is_empty() && cseq.is_some() {
            break;
        }
    }
    (call_id, cseq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_call_and_cseq() {
        let raw = b"SIP/2.0 200 OK\r\nVia: x\r\ni: abc@h\r\nCSeq: 12 INVITE\r\n\r\nbody";
        assert_eq!(call_of(raw), (&b"abc@h"[..], Some(12)));
        assert_eq!(call_of(b"garbage"), (&b""[..], None));
    }

    #[test]
    fn transaction_dialog_and_expiry() {
        let calls = Calls::default();
        assert!(calls.is_empty());
        calls.add(b"t", Some(1), TRANSACTION);
        calls.add(b"d", None, DIALOG_IDLE);
        calls.add(b"gone", Some(1), Duration::ZERO);
        assert!(calls.contains(b"t", Some(1)));
        assert!(!calls.contains(b"t", Some(2)));
        assert!(calls.contains(b"d", Some(7)));
        assert!(!calls.contains(b"gone", Some(1)));
        calls.sweep();
        assert!(!calls.is_empty());
        assert_eq!(calls.len.load(Ordering::Relaxed), 2);
    }
}
