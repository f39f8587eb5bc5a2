//! Small scalar header values: [`CSeq`] and the decimal numbers of Max-Forwards and friends.

use super::error::ValueError;
use super::method::Method;
use super::params::{is_lws, trim_lws, trim_lws_start};

/// The CSeq header: sequence number and method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (RFC 3261 allows up to 2^31 - 1; anything that fits 32 bits is kept).
    pub number: u32,
    /// Method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parse `number LWS method`; LWS may be folded and the number may have leading zeros.
    ///
    /// ```
    /// use kemi_runtime::sip::{CSeq, Method};
    /// assert_eq!(CSeq::parse("0009\r\n  INVITE").unwrap(), CSeq { number: 9, method: Method::Invite });
    /// assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
    /// ```
    pub fn parse(value: &'a str) -> Result<CSeq<'a>, ValueError> {
        let value = trim_lws(value);
        let split = value
            .bytes()
            .position(is_lws)
            .ok_or(ValueError::new("CSeq", "no method"))?;
        let (num, method) = value.split_at(split);
        let method = trim_lws_start(method);
        let number = parse_decimal(num).ok_or(ValueError::new("CSeq", "bad sequence number"))?;
        if method.is_empty() || !method.bytes().all(super::header::is_token_char) {
            return Err(ValueError::new("CSeq", "bad method"));
        }
        Ok(CSeq {
            number,
            method: Method::parse(method),
        })
    }
}

/// A decimal `u32`: digits only (leading zeros allowed), no sign, no overflow.
pub fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |n, d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}
