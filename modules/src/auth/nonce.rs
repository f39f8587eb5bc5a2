//! Nonces that any worker (and any node sharing the `secret`) can verify without shared state,
//! and the nonce-count table that refuses replays.
//!
//! A nonce is 48 characters of hex: the creation time (Unix seconds, 8 digits), a sequence
//! number (8 digits), and a 128-bit MAC of (time || sequence): SipHash-2-4-128 keyed with 128
//! bits derived from the `secret` (the first 16 bytes of SHA-256 of it, computed once). SipHash
//! is a keyed PRF made for short inputs: on these 8 bytes it costs a few hundred instructions,
//! where HMAC-SHA256 (two SHA-256 blocks plus the key pads) costs several thousand. Any worker,
//! and any node with the same `secret`, verifies a nonce. Checking one recomputes the MAC, then
//! compares the time with `nonce_expire` (and with `nonce_auth_max_drift` for times in the
//! future).
//!
//! [`NcTable`] tracks the highest `nc` seen per nonce, as Kamailio's `nc_array`: a fixed array
//! of atomics indexed by the sequence number, each holding (sequence, highest nc). A new nonce
//! takes its slot (overwriting the nonce issued `size` challenges earlier, which then counts as
//! stale); a response must carry an nc above the one recorded. No lock, bounded memory, and
//! entries "expire" with their nonce since the time check comes first.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use siphasher::sip128::SipHasher24;

/// Length of a nonce.
pub const NONCE_LEN: usize = 48;

/// What checking a nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh: its sequence number.
    Fresh(u32),
    /// Ours, but expired (or too far in the future).
    Stale,
    /// Not a nonce of ours (bad format or MAC).
    Invalid,
}

/// Makes and checks nonces.
pub struct Nonces {
    mac: SipHasher24,
    expire: u32,
    max_drift: u32,
    seq: AtomicU32,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Nonces")
            .field("expire", &self.expire)
            .field("max_drift", &self.max_drift)
            .finish_non_exhaustive()
    }
}

impl Nonces {
    /// Nonces keyed by `secret`, valid `expire` seconds, accepted up to `max_drift` seconds in
    /// the future. The sequence starts at `seq_start` (random in production).
    pub fn new(secret: &[u8], expire: u32, max_drift: u32, seq_start: u32) -> Nonces {
        let digest = Sha256::digest(secret);
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Nonces {
            mac: SipHasher24::new_with_key(&key),
            expire,
            max_drift,
            seq: AtomicU32::new(seq_start),
        }
    }

    fn mac(&self, ts: u32, seq: u32) -> [u8; 16] {
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&ts.to_be_bytes());
        input[4..].copy_from_slice(&seq.to_be_bytes());
        self.mac.hash(&input).as_bytes()
    }

    /// A new nonce for time `now` (Unix seconds) and its sequence number.
    pub fn make(&self, now: u32) -> (String, u32) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut out = [0u8; NONCE_LEN];
        hex_into(&now.to_be_bytes(), &mut out[..8]);
        hex_into(&seq.to_be_bytes(), &mut out[8..16]);
        hex_into(&self.mac(now, seq), &mut out[16..]);
        // Only ASCII hex digits were written: the conversion cannot fail.
        (String::from_utf8(out.to_vec()).unwrap_or_default(), seq)
    }

    /// Check `nonce` at time `now`.
    pub fn check(&self, nonce: &str, now: u32) -> NonceCheck {
        let b = nonce.as_bytes();
        if b.len() != NONCE_LEN {
            return NonceCheck::Invalid;
        }
        let mut raw = [0u8; NONCE_LEN / 2];
        for (out, pair) in raw.iter_mut().zip(b.chunks_exact(2)) {
            match (unhex(pair[0]), unhex(pair[1])) {
                (Some(h), Some(l)) => *out = h << 4 | l,
                _ => return NonceCheck::Invalid,
            }
        }
        let ts = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let seq = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let want = self.mac(ts, seq);
        // Constant time: the difference of every byte is folded in.
        let diff = raw[8..]
            .iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
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

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, o) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        o[0] = DIGITS[usize::from(b >> 4)];
        o[1] = DIGITS[usize::from(b & 15)];
    }
}

/// The value of a hex digit (either case).
fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
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
        // Upper-case hex is the same nonce; any changed MAC digit is not ours.
        assert_eq!(
            n.check(&nonce.to_ascii_uppercase(), 1000),
            NonceCheck::Fresh(7)
        );
        for i in 16..NONCE_LEN {
            let mut t = nonce.clone().into_bytes();
            t[i] = if t[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(t).unwrap();
            assert_eq!(n.check(&t, 1000), NonceCheck::Invalid, "{t}");
        }
        // The key never shows in debug output.
        assert!(!format!("{n:?}").contains("key"));
    }

    /// The MAC is SipHash-2-4-128 keyed with SHA-256(secret)[..16]: nodes of different
    /// versions with the same secret agree (a known answer, computed independently).
    #[test]
    fn nonce_mac_is_pinned() {
        let n = Nonces::new(b"secret", 300, 3, 0x0102_0304);
        let (nonce, _) = n.make(0x6000_0000);
        assert_eq!(nonce.get(..16), Some("6000000001020304"));
        // SipHash-2-4-128 of 60000000 01020304 under SHA-256("secret")[..16] (a Python
        // implementation checked against the reference vectors).
        assert_eq!(nonce.get(16..), Some("722c0cbacd4544cb1565635ef1e0cfa8"));
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
