//! Writing a number in decimal without a formatter: the length prefixes,
//! ids and `content-length` headers every encoder writes on its hot path.

use bytes::BufMut;

/// Appends `n` in ASCII decimal to `out` (a `BytesMut`, a `Vec<u8>`),
/// without allocating.
#[inline]
pub fn put_decimal<B: BufMut + ?Sized>(out: &mut B, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            // `n % 10` is below 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.put_slice(digits.get(i..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn writes_every_width_as_display_does() {
        for n in [0, 7, 10, 99, 1_000, 1 << 32, u64::MAX] {
            let mut out = BytesMut::from(&b"x"[..]);
            put_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes());
        }
    }
}
