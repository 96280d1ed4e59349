//! Text output that never allocates: integers, durations with a unit chosen
//! per magnitude, and padded table cells, written to any `Sink`.
//!
//! The preload library writes dumps with these from a signal handler, where
//! `format!` (which allocates) is not allowed; the CLI uses the same code for
//! its tables, so a dump and a report print numbers alike.

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
/// so a hostile file name cannot forge lines in a dump.
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
}
