//! Nonces that any worker (and any node sharing the `secret`) can verify without shared state,
//! and the nonce-count table that refuses replays.
//!
//! A nonce is 48 characters of hex: the creation time (Unix seconds, 8 digits), a sequence
//! number (8 digits), and the first 16 bytes of HMAC-SHA256(secret, time || sequence). Checking
//! one recomputes the HMAC, then compares the time with `nonce_expire` (and with
//! `nonce_auth_max_drift` for times in the future).
//!
//! [`NcTable`] tracks the highest `nc` seen per nonce, as Kamailio's `nc_array`: a fixed array
//! of atomics indexed by the sequence number, each holding (sequence, highest nc). A new nonce
//! takes its slot (overwriting the nonce issued `size` challenges earlier, which then counts as
//! stale); a response must carry an nc above the one recorded. No lock, bounded memory, and
//! entries "expire" with their nonce since the time check comes first.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::digest::hex;

/// Length of a nonce.
pub const NONCE_LEN: usize = 48;

/// What checking a nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh: its sequence number.
    Fresh(u32),
    /// Ours, but expired (or too far in the future).
    Stale,
    /// Not a nonce of ours (bad format or HMAC).
    Invalid,
}

/// Makes and checks nonces.
#[derive(Debug)]
pub struct Nonces {
    key: Vec<u8>,
    expire: u32,
    max_drift: u32,
    seq: AtomicU32,
}

impl Nonces {
    /// Nonces keyed by `secret`, valid `expire` seconds, accepted up to `max_drift` seconds in
    /// the future. The sequence starts at `seq_start` (random in production).
    pub fn new(secret: &[u8], expire: u32, max_drift: u32, seq_start: u32) -> Nonces {
        Nonces {
            key: secret.to_vec(),
            expire,
            max_drift,
            seq: AtomicU32::new(seq_start),
        }
    }

    fn mac(&self, ts: u32, seq: u32) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => return String::new(),
        };
        mac.update(&ts.to_be_bytes());
        mac.update(&seq.to_be_bytes());
        let out = mac.finalize().into_bytes();
        hex(out.get(..16).unwrap_or(&out))
    }

    /// A new nonce for time `now` (Unix seconds) and its sequence number.
    pub fn make(&self, now: u32) -> (String, u32) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut s = format!("{now:08x}{seq:08x}");
        s.push_str(&self.mac(now, seq));
        (s, seq)
    }

    /// Check `nonce` at time `now`.
    pub fn check(&self, nonce: &str, now: u32) -> NonceCheck {
        if nonce.len() != NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return NonceCheck::Invalid;
        }
        let field =
            |r: std::ops::Range<usize>| nonce.get(r).and_then(|s| u32::from_str_radix(s, 16).ok());
        let (Some(ts), Some(seq)) = (field(0..8), field(8..16)) else {
            return NonceCheck::Invalid;
        };
        let want = self.mac(ts, seq);
        let got = nonce.get(16..).unwrap_or("");
        if !super::digest::response_matches(got, &want) {
            return NonceCheck::Invalid;
        }
        if now > ts && now - ts > self.expire {
            return NonceCheck::Stale;
        }
        if ts > now && ts - now > self.max_drift {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh(seq)
    }
}

/// What the nonce-count table says about a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NcCheck {
    /// nc is above every nc seen for this nonce: recorded.
    Ok,
    /// nc is not above the highest seen: a replay.
    Reused,
    /// The nonce's slot went to a newer nonce (or it was never issued here).
    Unknown,
}

/// Highest nonce-count per nonce, in a fixed array of atomics (see the module doc).
#[derive(Debug)]
pub struct NcTable {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

/// Marks a slot that holds no nonce.
const EMPTY: u64 = u64::MAX;

impl NcTable {
    /// A table of `size` slots, rounded up to a power of two (at least 64).
    pub fn new(size: usize) -> NcTable {
        let size = size.clamp(64, 1 << 26).next_power_of_two();
        NcTable {
            slots: (0..size).map(|_| AtomicU64::new(EMPTY)).collect(),
            mask: size - 1,
        }
    }

    fn slot(&self, seq: u32) -> Option<&AtomicU64> {
        self.slots.get(seq as usize & self.mask)
    }

    /// Record a new nonce `seq` (no nc seen yet).
    pub fn issue(&self, seq: u32) {
        if let Some(s) = self.slot(seq) {
            s.store(u64::from(seq) << 32, Ordering::Relaxed);
        }
    }

    /// Check and record nc `nc` for nonce `seq`.
    pub fn check(&self, seq: u32, nc: u32) -> NcCheck {
        let Some(slot) = self.slot(seq) else {
            return NcCheck::Unknown;
        };
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            if cur == EMPTY || (cur >> 32) as u32 != seq {
                return NcCheck::Unknown;
            }
            if nc <= cur as u32 {
                return NcCheck::Reused;
            }
            let new = (u64::from(seq) << 32) | u64::from(nc);
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return NcCheck::Ok,
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_verify_and_expire() {
        let n = Nonces::new(b"k", 300, 3, 7);
        let (nonce, seq) = n.make(1000);
        assert_eq!(seq, 7);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(n.check(&nonce, 1000), NonceCheck::Fresh(7));
        assert_eq!(n.check(&nonce, 1300), NonceCheck::Fresh(7));
        assert_eq!(n.check(&nonce, 1301), NonceCheck::Stale);
        assert_eq!(n.check(&nonce, 997), NonceCheck::Fresh(7));
        assert_eq!(n.check(&nonce, 996), NonceCheck::Stale);
        // Another server with the same secret accepts it; another secret does not.
        assert_eq!(
            Nonces::new(b"k", 300, 3, 0).check(&nonce, 1001),
            NonceCheck::Fresh(7)
        );
        assert_eq!(
            Nonces::new(b"other", 300, 3, 0).check(&nonce, 1001),
            NonceCheck::Invalid
        );
        // Tampered time, bad characters, bad length.
        let mut forged = format!("{:08x}", 5000);
        forged.push_str(nonce.get(8..).unwrap());
        assert_eq!(n.check(&forged, 5000), NonceCheck::Invalid);
        assert_eq!(n.check("zz", 0), NonceCheck::Invalid);
        assert_eq!(n.check(&"é".repeat(24), 0), NonceCheck::Invalid);
        assert_eq!(n.make(1000).1, 8);
    }

    #[test]
    fn nc_table_refuses_replays() {
        let t = NcTable::new(64);
        assert_eq!(t.check(5, 1), NcCheck::Unknown);
        t.issue(5);
        assert_eq!(t.check(5, 1), NcCheck::Ok);
        assert_eq!(t.check(5, 1), NcCheck::Reused);
        assert_eq!(t.check(5, 3), NcCheck::Ok);
        assert_eq!(t.check(5, 2), NcCheck::Reused);
        // A nonce 64 challenges later takes the slot.
        t.issue(5 + 64);
        assert_eq!(t.check(5, 4), NcCheck::Unknown);
        assert_eq!(t.check(69, 1), NcCheck::Ok);
        assert_eq!(t.check(u32::MAX, 0), NcCheck::Unknown);
    }
}
