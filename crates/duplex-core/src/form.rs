//! `application/x-www-form-urlencoded` decoding, as the Engine.IO
//! handshake query and the SockJS form bodies both need it.

/// Decodes form-encoded bytes: `+` is a space and `%XX` the byte `XX`; a
/// `%` not followed by two hex digits stays as it is, as Node's
/// `querystring` leaves it. The result is bytes: whether they must be UTF-8
/// (and what to do when they are not) is the caller's protocol's decision.
pub fn form_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |k: usize| input.get(k).and_then(|&c| (c as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    // Two hex digits: at most 0xff, so the cast keeps it all.
                    out.push((hi * 16 + lo) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_is_a_space_and_percent_escapes_are_bytes() {
        assert_eq!(form_decode(b"a+b%20c%2Bd"), b"a b c+d");
        assert_eq!(form_decode(b"%e2%82%AC"), "\u{20ac}".as_bytes());
        assert_eq!(form_decode(b""), b"");
    }

    #[test]
    fn a_percent_without_two_hex_digits_stays() {
        assert_eq!(form_decode(b"100%"), b"100%");
        assert_eq!(form_decode(b"%4"), b"%4");
        assert_eq!(form_decode(b"%zz%41"), b"%zzA");
    }
}
