//! How guessable a secret is: an estimate of its entropy, in bits.
//!
//! The estimate is the length of the shortest description of the secret that a small
//! coder finds. A byte that no pattern explains costs what naming it in its alphabet
//! costs: log2 of the alphabet's size, where text's alphabet is each class of characters
//! it uses (26 lowercase letters, 26 uppercase, 10 digits) and each other character it
//! uses, and raw bytes' is the span of values they take. A stretch that repeats an earlier
//! one (`your-secret-key` twice), or that steps through values by a small constant (`abc`,
//! `00 01 02`, `aaaa`), costs a few bits for its kind, where it starts or its step, and its
//! length. Text that is hex or base64 is measured as the bytes it encodes as well, and the
//! lower count stands.
//!
//! Why a low count is a safe reason to refuse: counted this way, the bits describe the
//! secret completely (give or take a few dozen bits to say which alphabet and encoding),
//! so fewer than 2^(k+c) secrets can count under k bits. A secret drawn at random from
//! 2^256 (`openssl rand -base64 32`) counts under 128 with a probability under 2^(c-128):
//! none ever will.
//! Why it catches guessable secrets: people and placeholders draw from small alphabets,
//! repeat themselves and count up, and each of these shortens the description.
//!
//! What it misses: it has no dictionary, so English that repeats nothing costs about 4.75
//! bits a lowercase letter and a long sentence passes: it refuses placeholders, not every
//! weak passphrase. `zxcvbn` has one, but cannot judge this bar: its guesses stop at 2^64,
//! it reads text only (Rocket's `secret_key` is bytes), and it would bring two regex
//! engines and a megabyte of word lists into every build for one check at launch.

/// The least estimate a secret may have outside debug, in bits: the entropy of 16 random
/// bytes, which may fall either side of it; 32 (`openssl rand -base64 32`) give 256.
pub(crate) const MIN_BITS: f64 = 128.0;

/// How much of a secret is measured: a longer one is judged by its start, which keeps the
/// measure quadratic in at most this many bytes.
const MEASURED: usize = 256;
/// The shortest stretch that counts as a repeat of an earlier one.
const MIN_REPEAT: usize = 3;
/// The largest step between neighbouring bytes that makes a run, either way (0 repeats
/// one byte).
const MAX_STEP: u8 = 16;
/// What saying "a byte follows" costs, and saying "a repeat follows" or "a run follows":
/// a prefix code where each pattern has a chance of 1/32 (-log2(30/32) and 5 bits).
const BYTE_FLAG: f64 = 0.093;
const PATTERN_FLAG: f64 = 5.0;

/// The estimated entropy of `secret`, in bits: the least over reading it as it is and,
/// when it is hex or base64 text, as the bytes it encodes.
pub(crate) fn estimated_bits(secret: &[u8]) -> f64 {
    use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD, BASE64_NOPAD, HEXLOWER_PERMISSIVE};

    [
        &HEXLOWER_PERMISSIVE,
        &BASE64,
        &BASE64_NOPAD,
        &BASE64URL,
        &BASE64URL_NOPAD,
    ]
    .iter()
    .filter_map(|encoding| encoding.decode(secret).ok())
    .filter(|bytes| !bytes.is_empty())
    .map(|bytes| description_bits(&bytes))
    .fold(description_bits(secret), f64::min)
}

/// The fewest bits that describe `bytes` (their first [`MEASURED`]) as single bytes,
/// repeats and runs.
fn description_bits(bytes: &[u8]) -> f64 {
    let bytes = &bytes[..bytes.len().min(MEASURED)];
    let byte_bits = alphabet_size(bytes).log2() + BYTE_FLAG;
    let step_bits = f64::from(2 * MAX_STEP + 1).log2();
    let repeats = longest_repeats(bytes);

    // fewest[i]: the fewest bits that describe bytes[i..], found from the end.
    let mut fewest = vec![0.0; bytes.len() + 1];
    for i in (0..bytes.len()).rev() {
        let mut bits = byte_bits + fewest[i + 1];
        // A repeat names where it starts before `i` (one of i places) and its length.
        for len in MIN_REPEAT..=repeats[i] {
            let pattern = PATTERN_FLAG + (i as f64).log2() + gamma_bits(len - MIN_REPEAT + 1);
            bits = bits.min(pattern + fewest[i + len]);
        }
        // A run continues the step from the byte before `i`, for two bytes or more.
        for len in 2..=run_length(bytes, i) {
            let pattern = PATTERN_FLAG + step_bits + gamma_bits(len - 1);
            bits = bits.min(pattern + fewest[i + len]);
        }
        fewest[i] = bits;
    }
    fewest[0]
}

/// How many values each byte of `bytes` is taken to be drawn from. Printable ASCII is
/// text: every class of letters or digits it uses counts whole, each other character
/// once. Anything else is bytes: the span from the least value to the greatest.
fn alphabet_size(bytes: &[u8]) -> f64 {
    if bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        let uses = |class: fn(&u8) -> bool, size| if bytes.iter().any(class) { size } else { 0 };
        let letters_and_digits = uses(u8::is_ascii_lowercase, 26)
            + uses(u8::is_ascii_uppercase, 26)
            + uses(u8::is_ascii_digit, 10);
        let mut others = [false; 128];
        for b in bytes.iter().filter(|b| !b.is_ascii_alphanumeric()) {
            others[usize::from(*b & 0x7f)] = true;
        }
        let others = others.iter().filter(|seen| **seen).count() as u32;
        f64::from(letters_and_digits + others)
    } else {
        let least = bytes.iter().min().copied().unwrap_or(0);
        let greatest = bytes.iter().max().copied().unwrap_or(0);
        f64::from(greatest - least) + 1.0
    }
}

/// For each place in `bytes`, the longest stretch starting there that also starts at an
/// earlier place (the two may overlap, as in `aaaa`).
fn longest_repeats(bytes: &[u8]) -> Vec<usize> {
    let n = bytes.len();
    let mut longest = vec![0; n];
    // common[j]: how long bytes[i..] and bytes[j..] agree, for the row `i` at hand;
    // row i is made from row i + 1.
    let mut common = vec![0; n + 1];
    let mut next = vec![0; n + 1];
    for i in (0..n).rev() {
        for j in 0..n {
            next[j] = if bytes[i] == bytes[j] {
                common[j + 1] + 1
            } else {
                0
            };
        }
        std::mem::swap(&mut common, &mut next);
        longest[i] = common[..i].iter().copied().max().unwrap_or(0);
    }
    longest
}

/// How many bytes from `i` on continue the step from `bytes[i - 1]` to `bytes[i]`, when
/// that step is at most [`MAX_STEP`] either way; 0 otherwise.
fn run_length(bytes: &[u8], i: usize) -> usize {
    let Some(before) = i.checked_sub(1).and_then(|b| bytes.get(b)) else {
        return 0;
    };
    let step = bytes[i].wrapping_sub(*before);
    if step > MAX_STEP && step.wrapping_neg() > MAX_STEP {
        return 0;
    }
    1 + bytes[i..]
        .windows(2)
        .take_while(|pair| pair[1].wrapping_sub(pair[0]) == step)
        .count()
}

/// The length of the Elias gamma code of `n` (at least 1): how a length is written.
fn gamma_bits(n: usize) -> f64 {
    f64::from(2 * n.max(1).ilog2() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};

    /// The placeholder of the finding: launched in release before.
    const PHRASE: &str = "your-secret-key-here-your-secret-key";

    fn sequential() -> Vec<u8> {
        (0..32).collect()
    }

    #[test]
    fn the_placeholder_phrase_and_sequential_bytes_are_guessable() {
        let bits = estimated_bits(PHRASE.as_bytes());
        assert!(bits < MIN_BITS, "{PHRASE}: {bits}");
        let counting = sequential();
        for form in [
            counting.clone(),
            HEXLOWER.encode(&counting).into_bytes(),
            HEXUPPER.encode(&counting).into_bytes(),
            BASE64.encode(&counting).into_bytes(),
            BASE64URL_NOPAD.encode(&counting).into_bytes(),
        ] {
            let bits = estimated_bits(&form);
            assert!(bits < 40.0, "{form:?}: {bits}");
        }
    }

    #[test]
    fn patterns_and_small_alphabets_are_guessable() {
        let mut bytes = vec![
            "a".repeat(32).into_bytes(),
            "ab".repeat(20).into_bytes(),
            "0123456789".repeat(4).into_bytes(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".into(),
            "password1234password1234password".into(),
            "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA".into(),
            vec![1; 32],
            (0..64).map(|i| i * 4).collect(),
            (0..32).rev().collect(),
        ];
        // 32 random digits hold 106 bits; 32 random bytes below 8, 96.
        bytes.push((0..32).map(|_| b'0' + rand::random::<u8>() % 10).collect());
        bytes.push((0..32).map(|_| rand::random::<u8>() % 8).collect());
        for secret in bytes {
            let bits = estimated_bits(&secret);
            assert!(bits < MIN_BITS, "{secret:?}: {bits}");
        }
    }

    #[test]
    fn random_keys_pass_as_bytes_hex_and_base64() {
        for _ in 0..1000 {
            let key: [u8; 32] = rand::random();
            let text = BASE64.encode(&key);
            for (form, secret) in [
                ("base64", text.as_bytes()),
                ("raw", &key[..]),
                ("hex", HEXLOWER.encode(&key).as_bytes()),
                ("base64url", BASE64URL_NOPAD.encode(&key).as_bytes()),
            ] {
                let bits = estimated_bits(secret);
                assert!(bits >= 200.0, "{form} {text}: {bits}");
            }
        }
        let key: [u8; 64] = std::array::from_fn(|_| rand::random());
        assert!(estimated_bits(&key) > 400.0);
    }

    #[test]
    fn the_estimate_is_near_the_entropy_of_random_text() {
        let near = |secret: &[u8], bits: f64| {
            let estimate = estimated_bits(secret);
            assert!(
                (estimate - bits).abs() < 12.0,
                "{secret:?}: {estimate}, not about {bits}"
            );
        };
        near(b"hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=", 256.0);
        // 26 letters drawn from 26: 122 bits.
        near(b"qmzfjwuxkbvtlrhdypcsnoaegi", 26.0 * 26f64.log2());
    }

    #[test]
    fn only_the_start_of_a_long_secret_is_measured() {
        let mut secret = "a".repeat(MEASURED).into_bytes();
        secret.extend((0..1000).map(|_| rand::random::<u8>()));
        assert!(estimated_bits(&secret) < MIN_BITS);
    }
}
