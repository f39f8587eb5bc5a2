//! TCP stream framing (`sipd::transport::stream::StreamFramer`): the input is fed in segments
//! whose sizes come from the input itself, and the frames must be the same as when the whole
//! stream arrives at once (a peer's TCP segmentation must never change what sipd reads, nor
//! turn a good stream into a framing error). Every frame fits the limit.
//!
//! Input layout: byte 0 picks the size limit, byte 1 seeds the segment sizes, the rest is the
//! stream.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipd::transport::stream::StreamFramer;

/// What a framer made of a stream: its frames, and whether it ended in an error.
fn drain(framer: &mut StreamFramer, frames: &mut Vec<Bytes>) -> bool {
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let max = 16 + usize::from(*limit) * 32;

    let mut whole = StreamFramer::new(max);
    whole.push(stream);
    let mut whole_frames = Vec::new();
    let whole_err = drain(&mut whole, &mut whole_frames);

    let mut seg = StreamFramer::new(max);
    let mut seg_frames = Vec::new();
    let mut seg_err = false;
    let mut rest = stream;
    let mut state = u32::from(*seed) | 1;
    while !rest.is_empty() && !seg_err {
        // xorshift: segment sizes from 1 to 64 bytes.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = usize::try_from(state % 64).unwrap_or(0) + 1;
        let (now, later) = rest.split_at(n.min(rest.len()));
        rest = later;
        match seg.read_buf() {
            Some(buf) => buf.extend_from_slice(now),
            None => {
                seg_err = true;
                break;
            }
        }
        seg_err = drain(&mut seg, &mut seg_frames);
    }

    for f in whole_frames.iter().chain(&seg_frames) {
        assert!(
            f.len() <= max,
            "a frame of {} octets passed the {max} limit",
            f.len()
        );
    }
    let total: usize = whole_frames.iter().map(Bytes::len).sum();
    assert!(total + whole.pending() <= stream.len());
    // A full buffer (`read_buf` gives `None`) is the limit at work: the whole-stream framer
    // then fails too or frames what the segmented one had not yet.
    if seg_err {
        assert!(
            whole_frames.starts_with(&seg_frames),
            "segmented framing gave other frames before its error"
        );
    } else {
        assert_eq!(whole_frames, seg_frames, "segmentation changed the frames");
        assert_eq!(whole_err, seg_err, "segmentation changed the outcome");
    }
});
