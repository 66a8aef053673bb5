//! URL-safe base64 without padding: the text of cookie ids and tags, and of sealed values.
//!
//! Every request encodes or decodes here: its cookie's id and tag, and, on a store that
//! seals at rest, each value it opens or seals. data-encoding reads and writes any base64;
//! under callgrind its decoder cost about 520 instructions for a tag (these loops: 280)
//! and its encoder about 550 for a small sealed value (this one, two table lookups for
//! each three bytes: 330). So this module holds the two loops for the one alphabet the
//! crate writes, and property tests hold both to data-encoding's answers.

/// The URL-safe base64 alphabet.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Each byte's value in [`ALPHABET`]; `0xff` for a byte outside it.
const DECODE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Each 12-bit value's two characters: a group of three bytes is two lookups.
const PAIRS: [[u8; 2]; 4096] = {
    let mut table = [[0; 2]; 4096];
    let mut i = 0;
    while i < table.len() {
        table[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    table
};

/// How many characters `bytes` bytes encode to. (Whole groups first: `bytes * 4` would
/// overflow on a 32-bit target past a gigabyte.)
pub(crate) const fn encoded_len(bytes: usize) -> usize {
    bytes / 3 * 4 + (bytes % 3 * 4).div_ceil(3)
}

/// How many bytes a text of `chars` characters decodes to: `None` for a length no bytes
/// encode to.
pub(crate) fn decoded_len(chars: usize) -> Option<usize> {
    let bytes = chars / 4 * 3 + chars % 4 * 3 / 4;
    (encoded_len(bytes) == chars).then_some(bytes)
}

/// Appends `bytes` to `out` in URL-safe base64 without padding.
pub(crate) fn encode_append(bytes: &[u8], out: &mut String) {
    /// Bytes encoded at a time, through a buffer on the stack.
    const CHUNK: usize = 96;
    let symbol = |n: u32| ALPHABET[(n & 63) as usize];
    out.reserve(encoded_len(bytes.len()));
    for chunk in bytes.chunks(CHUNK) {
        let mut text = [0; encoded_len(CHUNK)];
        let (groups, rest) = chunk.as_chunks::<3>();
        let (quads, _) = text.as_chunks_mut::<4>();
        for ([a, b, c], quad) in groups.iter().zip(quads) {
            let n = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
            let ([w, x], [y, z]) = (PAIRS[n >> 12], PAIRS[n & 0xfff]);
            *quad = [w, x, y, z];
        }
        let done = groups.len() * 4;
        let end = match *rest {
            [a] => {
                let n = u32::from(a) << 16;
                text[done..done + 2].copy_from_slice(&[symbol(n >> 18), symbol(n >> 12)]);
                done + 2
            }
            [a, b] => {
                let n = u32::from(a) << 16 | u32::from(b) << 8;
                let last = [symbol(n >> 18), symbol(n >> 12), symbol(n >> 6)];
                text[done..done + 3].copy_from_slice(&last);
                done + 3
            }
            _ => done,
        };
        // Every byte written is of the alphabet, so this is never empty for want of UTF-8.
        out.push_str(std::str::from_utf8(&text[..end]).unwrap_or_default());
    }
}

/// `bytes` in URL-safe base64 without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    encode_append(bytes, &mut out);
    out
}

/// Decodes canonical URL-safe base64 without padding into exactly `out.len()` bytes:
/// `None` for another length, a character outside the alphabet, or a last character
/// whose bits past the last byte are not zero (so one value has one encoding).
pub(crate) fn decode_exact(text: &str, out: &mut [u8]) -> Option<()> {
    let text = text.as_bytes();
    if text.len() != encoded_len(out.len()) {
        return None;
    }
    let value = |c: &u8| DECODE[usize::from(*c)];
    // The values or-ed together: a character outside the alphabet sets the top bits.
    let mut bad = 0;
    let (quads, rest) = text.as_chunks::<4>();
    let (groups, last) = out.as_chunks_mut::<3>();
    for ([a, b, c, d], group) in quads.iter().zip(groups) {
        let [a, b, c, d] = [value(a), value(b), value(c), value(d)];
        bad |= a | b | c | d;
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        *group = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    }
    match (rest, last) {
        ([], []) => {}
        // Canonical only: the bits past the last byte are zero.
        ([a, b], [x]) => {
            let [a, b] = [value(a), value(b)];
            if b & 0x0f != 0 {
                return None;
            }
            bad |= a | b;
            *x = a << 2 | b >> 4;
        }
        ([a, b, c], [x, y]) => {
            let [a, b, c] = [value(a), value(b), value(c)];
            if c & 0x03 != 0 {
                return None;
            }
            bad |= a | b | c;
            let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6;
            (*x, *y) = ((n >> 16) as u8, (n >> 8) as u8);
        }
        _ => return None,
    }
    (bad & 0xc0 == 0).then_some(())
}

#[cfg(test)]
mod tests {
    use data_encoding::BASE64URL_NOPAD;

    use super::*;

    #[test]
    fn decoding_refuses_what_data_encoding_refuses_in_every_last_character() {
        // Every byte in the last place of every short length, against data-encoding:
        // the masks of the bits past the last byte, and the bytes outside the alphabet.
        for size in 1..=4 {
            let len = encoded_len(size);
            for last in 0..=255u8 {
                let mut text = vec![b'A'; len];
                text[len - 1] = last;
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                let mut out = vec![0; size];
                let ours = decode_exact(&text, &mut out).map(|()| out);
                let theirs = BASE64URL_NOPAD.decode(text.as_bytes()).ok();
                assert_eq!(ours, theirs, "{size} bytes, last {last:#x}");
            }
        }
        // A character of two bytes at a length that is right in bytes.
        let mut out = [0; 3];
        assert_eq!(decode_exact("Aé", &mut [0; 2][..]), None);
        assert_eq!(decode_exact("AAé", &mut out), None);
        assert_eq!(BASE64URL_NOPAD.decode("AAé".as_bytes()).ok(), None);
    }

    #[test]
    fn encoding_writes_what_data_encoding_writes_across_its_chunks() {
        // Every length around the stack buffer's edges, appended after text already there.
        for len in (0..=200).chain([287, 288, 289, 1000]) {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut ours = String::from("s2:");
            encode_append(&bytes, &mut ours);
            assert_eq!(
                ours,
                format!("s2:{}", BASE64URL_NOPAD.encode(&bytes)),
                "{len}"
            );
            assert_eq!(ours.len(), 3 + encoded_len(len));
        }
    }

    #[test]
    fn decoded_len_is_the_inverse_of_encoded_len() {
        for bytes in 0..100 {
            assert_eq!(decoded_len(encoded_len(bytes)), Some(bytes));
        }
        // No bytes encode to one character past a whole group.
        for chars in [1, 5, 9, 101] {
            assert_eq!(decoded_len(chars), None);
        }
        // Near the top of the range, where multiplying first would overflow.
        let most = usize::MAX / 4 * 3;
        assert_eq!(decoded_len(encoded_len(most)), Some(most));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Text of `len` characters of the alphabet, one of them sometimes replaced by any
        /// byte.
        fn text(len: usize) -> impl Strategy<Value = String> {
            let chars = proptest::collection::vec(proptest::sample::select(ALPHABET.to_vec()), len);
            let other = proptest::option::weighted(0.25, (any::<usize>(), any::<u8>()));
            (chars, other).prop_map(|(mut bytes, other)| {
                if let Some((at, byte)) = other.filter(|_| !bytes.is_empty()) {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        }

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            #[test]
            fn prop_decoding_agrees_with_data_encoding(
                bytes in proptest::collection::vec(any::<u8>(), 0..40),
                (size, text) in (0usize..40).prop_flat_map(|size| {
                    (Just(size), text(encoded_len(size) + usize::from(size % 7 == 0)))
                }),
            ) {
                // What data-encoding encodes decodes to the same bytes.
                let mut out = vec![0; bytes.len()];
                let encoded = BASE64URL_NOPAD.encode(&bytes);
                prop_assert_eq!(decode_exact(&encoded, &mut out), Some(()));
                prop_assert_eq!(&out, &bytes);
                // Anything else is refused exactly when data-encoding refuses it.
                let mut out = vec![0; size];
                let theirs = BASE64URL_NOPAD
                    .decode(text.as_bytes())
                    .ok()
                    .filter(|decoded| decoded.len() == size);
                let ours = decode_exact(&text, &mut out).map(|()| out);
                prop_assert_eq!(ours, theirs);
            }

            #[test]
            fn prop_encoding_agrees_with_data_encoding(
                bytes in proptest::collection::vec(any::<u8>(), 0..400),
            ) {
                let ours = encode(&bytes);
                prop_assert_eq!(&ours, &BASE64URL_NOPAD.encode(&bytes));
                let mut back = vec![0; bytes.len()];
                prop_assert_eq!(decoded_len(ours.len()), Some(bytes.len()));
                prop_assert_eq!(decode_exact(&ours, &mut back), Some(()));
                prop_assert_eq!(back, bytes);
            }
        }
    }
}
