//! The text primitives every writer and reader shares, each written once:
//! integers in decimal and hex, durations with a unit chosen per magnitude,
//! padded table cells, and the cleaning of untrusted names.
//!
//! The writers (`Sink`, `Cell`, the `put_*` functions) never allocate and
//! never panic: the preload library writes dumps and file names with them
//! from a signal handler, where `format!` is not allowed, and the CLI uses
//! the same code for its tables, so a dump and a report print numbers
//! alike. `hex_encode`, `hex_decode` and `clean` return owned text and are
//! for readers only.

/// Where text goes: a `Vec<u8>` in the CLI, a stack buffer flushed with
/// `write(2)` in the preload library.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_str(&mut self, text: &str) {
        self.put(text.as_bytes());
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A short piece of text built on the stack (a number, a duration, a name).
/// Text past its capacity is cut, never a panic.
#[derive(Clone, Copy)]
pub struct Cell {
    bytes: [u8; 128],
    len: usize,
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            bytes: [0; 128],
            len: 0,
        }
    }
}

impl Cell {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Width on a terminal: UTF-8 continuation bytes take no column.
    pub fn width(&self) -> usize {
        self.as_bytes()
            .iter()
            .filter(|&&byte| byte & 0xC0 != 0x80)
            .count()
    }

    pub fn text(text: &[u8]) -> Cell {
        let mut cell = Cell::default();
        cell.put(text);
        cell
    }

    pub fn number(value: u64) -> Cell {
        let mut cell = Cell::default();
        put_u64(&mut cell, value);
        cell
    }

    /// A duration in nanoseconds with three significant digits and a unit
    /// chosen by magnitude: `380ns`, `1.25µs`, `12.3ms`, `4.00s`.
    pub fn duration(ns: u64) -> Cell {
        let mut cell = Cell::default();
        if ns < 1_000 {
            put_u64(&mut cell, ns);
            cell.put(b"ns");
            return cell;
        }
        let (scale, unit): (u64, &[u8]) = match ns {
            0..=999_999 => (1_000, "µs".as_bytes()),
            1_000_000..=999_999_999 => (1_000_000, b"ms"),
            _ => (1_000_000_000, b"s"),
        };
        // Round to three significant digits in integer arithmetic.
        let whole = ns / scale;
        let decimals = if whole >= 100 {
            0
        } else if whole >= 10 {
            1
        } else {
            2
        };
        let step = scale / 10u64.pow(decimals);
        let rounded = (ns + step / 2) / step;
        let (integer, fraction) = (rounded / 10u64.pow(decimals), rounded % 10u64.pow(decimals));
        put_u64(&mut cell, integer);
        if decimals > 0 {
            cell.put(b".");
            if decimals == 2 && fraction < 10 {
                cell.put(b"0");
            }
            put_u64(&mut cell, fraction);
        }
        cell.put(unit);
        cell
    }
}

impl Sink for Cell {
    fn put(&mut self, bytes: &[u8]) {
        let room = self.bytes.len() - self.len;
        let take = bytes.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }
}

/// Writes `value` in decimal.
pub fn put_u64(sink: &mut impl Sink, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    sink.put(&digits[start..]);
}

/// Writes `value` in lower-case hex, with at least `min_digits` digits (at
/// most 16), zero-padded: `put_hex(sink, 0xab, 1)` writes `ab`,
/// `put_hex(sink, 10, 2)` writes `0a`.
pub fn put_hex(sink: &mut impl Sink, value: u64, min_digits: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 16];
    for (index, slot) in text.iter_mut().enumerate() {
        *slot = DIGITS[((value >> (60 - 4 * index)) & 15) as usize];
    }
    let significant = 16 - (value.leading_zeros() / 4) as usize;
    let digits = significant.max(min_digits.clamp(1, 16));
    sink.put(&text[16 - digits..]);
}

/// Writes `bytes` in lower-case hex, two digits each (a build id).
pub fn put_hex_bytes(sink: &mut impl Sink, bytes: &[u8]) {
    for &byte in bytes {
        put_hex(sink, u64::from(byte), 2);
    }
}

/// `bytes` in lower-case hex, as a reader keeps a build id.
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut text = Vec::with_capacity(bytes.len() * 2);
    put_hex_bytes(&mut text, bytes);
    text.into_iter().map(char::from).collect()
}

/// The bytes of a hex string (a build id); what is not hex is skipped.
pub fn hex_decode(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Writes a non-negative number with up to three decimals (`300`, `0.5`,
/// `12.125`); negative, NaN and infinite values are written as 0.
pub fn put_decimal(sink: &mut impl Sink, value: f64) {
    let thousandths = if value.is_finite() && value > 0.0 {
        (value * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    };
    put_u64(sink, thousandths / 1000);
    let mut fraction = thousandths % 1000;
    if fraction != 0 {
        sink.put(b".");
        let mut divisor = 100;
        while fraction != 0 {
            put_u64(sink, fraction / divisor);
            fraction %= divisor;
            divisor /= 10;
        }
    }
}

/// Writes `cell` right-aligned in `width` columns (left-aligned if `left`).
pub fn put_cell(sink: &mut impl Sink, cell: &Cell, width: usize, left: bool) {
    let pad = width.saturating_sub(cell.width());
    if left {
        sink.put(cell.as_bytes());
    }
    for _ in 0..pad {
        sink.put(b" ");
    }
    if !left {
        sink.put(cell.as_bytes());
    }
}

/// Writes `bytes` with line breaks and other control bytes replaced by `?`,
/// so a hostile file name cannot forge lines in a dump. Bytes, not
/// characters: what a writer is given need not be UTF-8.
pub fn put_sanitized(sink: &mut impl Sink, bytes: &[u8]) {
    for chunk in bytes.split_inclusive(|byte| byte.is_ascii_control()) {
        match chunk.split_last() {
            Some((last, head)) if last.is_ascii_control() => {
                sink.put(head);
                sink.put(b"?");
            }
            _ => sink.put(chunk),
        }
    }
}

/// `text` with every control character (C0, DEL and C1, which a terminal
/// may take for an escape sequence) replaced by `replacement`, then cut to
/// at most `limit` bytes at a character boundary: how readers show or
/// export names a hostile process chose.
pub fn clean(text: &str, replacement: char, limit: usize) -> String {
    let mut clean = String::new();
    for character in text
        .chars()
        .map(|c| if c.is_control() { replacement } else { c })
    {
        if clean.len() + character.len_utf8() > limit {
            break;
        }
        clean.push(character);
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration(ns: u64) -> String {
        String::from_utf8(Cell::duration(ns).as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn durations_pick_a_unit_per_magnitude() {
        assert_eq!(duration(0), "0ns");
        assert_eq!(duration(383), "383ns");
        assert_eq!(duration(1_000), "1.00µs");
        assert_eq!(duration(1_254), "1.25µs");
        assert_eq!(duration(1_005), "1.01µs");
        assert_eq!(duration(12_345_678), "12.3ms");
        assert_eq!(duration(999_999), "1000µs");
        assert_eq!(duration(123_456_789_000), "123s");
        assert_eq!(duration(4_000_000_000), "4.00s");
    }

    #[test]
    fn cells_align_by_columns_not_bytes() {
        let mut out = Vec::new();
        put_cell(&mut out, &Cell::duration(1_500), 8, false);
        assert_eq!(String::from_utf8(out).unwrap(), "  1.50µs");
        assert_eq!(Cell::number(u64::MAX).width(), 20);
    }

    #[test]
    fn decimals_drop_trailing_zeros() {
        for (value, text) in [
            (300.0, "300"),
            (0.5, "0.5"),
            (12.125, "12.125"),
            (1.05, "1.05"),
            (-1.0, "0"),
        ] {
            let mut out = Vec::new();
            put_decimal(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }

    #[test]
    fn control_bytes_are_replaced() {
        let mut out = Vec::new();
        put_sanitized(&mut out, b"a\nb\tc");
        assert_eq!(out, b"a?b?c");
    }

    #[test]
    fn hex_is_padded_to_the_digits_asked_for() {
        for (value, min_digits, text) in [
            (0, 1, "0"),
            (0xab, 1, "ab"),
            (10, 2, "0a"),
            (0x7f00_1234, 1, "7f001234"),
            (0xfeed, 16, "000000000000feed"),
            (u64::MAX, 1, "ffffffffffffffff"),
            (1, 99, "0000000000000001"),
        ] {
            let mut out = Vec::new();
            put_hex(&mut out, value, min_digits);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        assert_eq!(hex_encode(&[0xab, 0x01]), "ab01");
        assert_eq!(hex_decode("ab01"), [0xab, 0x01]);
    }

    #[test]
    fn cleaning_replaces_controls_and_caps_at_a_character_boundary() {
        assert_eq!(
            clean("a\x1b[31mb\u{9b}2J\x7f\n", '?', usize::MAX),
            "a?[31mb?2J??"
        );
        assert_eq!(clean("postgres-ü", '?', usize::MAX), "postgres-ü");
        assert_eq!(clean("a\nü", '_', 3), "a_");
        assert_eq!(clean("\u{85}xy", '?', 2), "?x");
    }
}
