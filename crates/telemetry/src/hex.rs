//! Lowercase hex for the trace and span ids written into headers and log lines on every call.
//!
//! `format!` through the ids' `Display` costs several times as many
//! instructions as writing the digits straight into a buffer (callgrind, see
//! docs/benchmarks.md), and these run on every request and every call.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` into `out`, which is twice as long.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn push_hex(bytes: &[u8], out: &mut String) {
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_lowercase_and_zero_padded() {
        let mut out = [0u8; 6];
        hex_into(&[0x00, 0x0a, 0xff], &mut out);
        assert_eq!(&out, b"000aff");
        let mut text = String::from("x-");
        push_hex(&[0x4b, 0xf9, 0x01], &mut text);
        assert_eq!(text, "x-4bf901");
    }
}
