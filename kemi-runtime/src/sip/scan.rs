//! Byte search for the short strings of a SIP message (a param list, a name-addr, a start
//! line): 16 bytes at a time with SSE2, inlined, so a search costs a few instructions per 16
//! bytes and no setup. `memchr` picks its AVX2 routine through a function pointer and pays
//! ~50–100 instructions of setup per call, more than a whole search over a 30-byte param list.

/// Position of the first `a`, `b` or `c` in `h`.
#[inline]
pub(crate) fn find3(h: &[u8], a: u8, b: u8, c: u8) -> Option<usize> {
    find_by(
        h,
        |x| x == a || x == b || x == c,
        |chunk| mask3(chunk, a, b, c),
    )
}

/// Position of the first `a` or `b` in `h`.
#[inline]
pub(crate) fn find2(h: &[u8], a: u8, b: u8) -> Option<usize> {
    find3(h, a, b, b)
}

/// Position of the first `a` in `h`.
#[inline]
pub(crate) fn find1(h: &[u8], a: u8) -> Option<usize> {
    find3(h, a, a, a)
}

/// The search: shorter than 16 bytes byte by byte; else whole 16-byte chunks by `mask`, and
/// the tail as the last 16 bytes (overlapping the chunk before, whose bytes are masked off).
#[inline(always)]
fn find_by(h: &[u8], is: impl Fn(u8) -> bool, mask: impl Fn(&[u8; 16]) -> u32) -> Option<usize> {
    if h.len() < 16 {
        return h.iter().position(|&x| is(x));
    }
    let mut at = 0;
    while let Some(chunk) = h.get(at..).and_then(<[u8]>::first_chunk::<16>) {
        let m = mask(chunk);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 16;
    }
    if at == h.len() {
        return None;
    }
    // 0 < at - last < 16: the bytes of the last chunk before `at` were searched already.
    let last = h.len() - 16;
    let m = mask(h.last_chunk::<16>()?) >> (at - last);
    (m != 0).then(|| at + m.trailing_zeros() as usize)
}

/// A bit per byte of `chunk` equal to `a`, `b` or `c`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn mask3(chunk: &[u8; 16], a: u8, b: u8, c: u8) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled at compile time (cfg above); the load reads the 16 bytes of
    // `chunk`, unaligned loads are allowed.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let m = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
            ),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8)),
        );
        _mm_movemask_epi8(m) as u32
    }
}

/// A bit per byte of `chunk` equal to `a`, `b` or `c`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn mask3(chunk: &[u8; 16], a: u8, b: u8, c: u8) -> u32 {
    let mut m = 0u32;
    for (i, &x) in chunk.iter().enumerate() {
        m |= u32::from(x == a || x == b || x == c) << i;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same answers as `memchr` for every length up to 70 and every needle position.
    #[test]
    fn agrees_with_memchr() {
        for len in 0..70 {
            for at in 0..=len {
                for needle in [b';', b'"', b'<'] {
                    let mut h = vec![b'x'; len];
                    if let Some(c) = h.get_mut(at) {
                        *c = needle;
                    }
                    // A second hit after the first must not be reported first.
                    if let Some(c) = h.get_mut(at + 3) {
                        *c = b'<';
                    }
                    assert_eq!(
                        find3(&h, b';', b'"', b'<'),
                        memchr::memchr3(b';', b'"', b'<', &h),
                        "{len} {at}"
                    );
                    assert_eq!(
                        find2(&h, b'"', b'<'),
                        memchr::memchr2(b'"', b'<', &h),
                        "{len} {at}"
                    );
                    assert_eq!(find1(&h, needle), memchr::memchr(needle, &h), "{len} {at}");
                }
            }
        }
        // High bytes (signed in SSE2 compares) are matched exactly too.
        let h = [0x80u8, 0xff, b'a', 0xfe];
        assert_eq!(find1(&h, 0xfe), Some(3));
        assert_eq!(find2(&h, 0xff, 0x7f), Some(1));
    }
}
