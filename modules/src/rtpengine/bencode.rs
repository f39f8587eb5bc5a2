//! Bencode, the encoding of rtpengine's ng control protocol: byte strings (`4:spam`),
//! integers (`i42e`), lists (`l...e`) and dictionaries with byte-string keys (`d...e`, keys
//! sorted when encoding). The decoder takes untrusted daemon replies: it never panics, bounds
//! the nesting depth and rejects trailing bytes.

use std::collections::BTreeMap;

/// One bencoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A byte string.
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A list.
    List(Vec<Value>),
    /// A dictionary (sorted by key, as bencode wants).
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Why a reply does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bencode: {0} at byte {1}")]
pub struct DecodeError(pub &'static str, pub usize);

/// Deepest nesting the decoder accepts (ng replies nest a handful of levels).
const MAX_DEPTH: usize = 32;

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// A list of strings.
    pub fn strs<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }

    /// The bytes of a string value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A string value as UTF-8 text.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Entry `key` of a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    /// The encoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Append the encoding of this value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    out.extend_from_slice(k.len().to_string().as_bytes());
                    out.push(b':');
                    out.extend_from_slice(k);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decode exactly one value filling `input`.
    pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
        let mut pos = 0;
        let v = decode_at(input, &mut pos, 0)?;
        if pos != input.len() {
            return Err(DecodeError("trailing bytes", pos));
        }
        Ok(v)
    }
}

fn decode_at(input: &[u8], pos: &mut usize, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError("nested too deeply", *pos));
    }
    let Some(&c) = input.get(*pos) else {
        return Err(DecodeError("unexpected end", *pos));
    };
    match c {
        b'i' => {
            *pos += 1;
            let end = find(input, *pos, b'e')?;
            let text = std::str::from_utf8(input.get(*pos..end).unwrap_or_default())
                .map_err(|_| DecodeError("bad integer", *pos))?;
            let n = text
                .parse::<i64>()
                .map_err(|_| DecodeError("bad integer", *pos))?;
            *pos = end + 1;
            Ok(Value::Int(n))
        }
        b'l' => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                match input.get(*pos) {
                    Some(b'e') => {
                        *pos += 1;
                        return Ok(Value::List(items));
                    }
                    Some(_) => items.push(decode_at(input, pos, depth + 1)?),
                    None => return Err(DecodeError("unterminated list", *pos)),
                }
            }
        }
        b'd' => {
            *pos += 1;
            let mut d = BTreeMap::new();
            loop {
                match input.get(*pos) {
                    Some(b'e') => {
                        *pos += 1;
                        return Ok(Value::Dict(d));
                    }
                    Some(b'0'..=b'9') => {
                        let k = string_at(input, pos)?;
                        let v = decode_at(input, pos, depth + 1)?;
                        d.insert(k, v);
                    }
                    Some(_) => return Err(DecodeError("dictionary key is not a string", *pos)),
                    None => return Err(DecodeError("unterminated dictionary", *pos)),
                }
            }
        }
        b'0'..=b'9' => string_at(input, pos).map(Value::Bytes),
        _ => Err(DecodeError("unexpected byte", *pos)),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, DecodeError> {
    input
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == byte))
        .map(|i| from + i)
        .ok_or(DecodeError("unexpected end", from))
}

fn string_at(input: &[u8], pos: &mut usize) -> Result<Vec<u8>, DecodeError> {
    let colon = find(input, *pos, b':')?;
    let len: usize = std::str::from_utf8(input.get(*pos..colon).unwrap_or_default())
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(DecodeError("bad string length", *pos))?;
    let start = colon + 1;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= input.len())
        .ok_or(DecodeError("string past the end", start))?;
    *pos = end;
    Ok(input.get(start..end).unwrap_or_default().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted_keys() {
        let mut d = BTreeMap::new();
        d.insert(b"sdp".to_vec(), Value::str("v=0"));
        d.insert(b"command".to_vec(), Value::str("offer"));
        d.insert(b"flags".to_vec(), Value::strs(&["trust-address"]));
        d.insert(b"n".to_vec(), Value::Int(-3));
        let v = Value::Dict(d);
        let e = v.encode();
        assert_eq!(
            e,
            b"d7:command5:offer5:flagsl13:trust-addresse1:ni-3e3:sdp3:v=0e".to_vec()
        );
        assert_eq!(Value::decode(&e).unwrap(), v);
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"d",
            b"l",
            b"i12",
            b"ixe",
            b"5:abc",
            b"99999999999999999999999:a",
            b"d3:keye",
            b"di1ei2ee",
            b"3:abcX",
            b"x",
            b"-1:a",
            b":a",
        ] {
            assert!(
                Value::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep: Vec<u8> = std::iter::repeat_n(b'l', 100)
            .chain(std::iter::repeat_n(b'e', 100))
            .collect();
        assert_eq!(Value::decode(&deep).unwrap_err().0, "nested too deeply");
    }
}
