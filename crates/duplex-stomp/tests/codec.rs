//! The frame codec against the STOMP 1.2 specification's own frame examples
//! and its escaping, line-end, body and limit rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::indexing_slicing, clippy::panic)]

use bytes::BytesMut;
use duplex_stomp::{Command, Decoded, Error, Frame, FrameDecoder, Limits, Version};

/// Spec examples write NUL as `^@`.
fn wire(text: &str) -> Vec<u8> {
    text.replace("^@", "\0").into_bytes()
}

fn decode_all(version: Version, limits: Limits, input: &[u8]) -> Result<Vec<Decoded>, Error> {
    let mut d = FrameDecoder::new(limits);
    d.set_version(version);
    d.receive(input);
    let mut out = Vec::new();
    while let Some(item) = d.decode()? {
        out.push(item);
    }
    Ok(out)
}

fn frames(version: Version, input: &[u8]) -> Vec<Frame> {
    decode_all(version, Limits::default(), input)
        .unwrap()
        .into_iter()
        .filter_map(|i| match i {
            Decoded::Frame(f) => Some(f),
            Decoded::HeartBeat => None,
        })
        .collect()
}

fn one(version: Version, text: &str) -> Frame {
    let mut f = frames(version, &wire(text));
    assert_eq!(f.len(), 1, "expected exactly one frame in {text:?}");
    f.remove(0)
}

fn headers(f: &Frame) -> Vec<(&str, &str)> {
    f.headers().iter().map(|h| (h.name(), h.value())).collect()
}

#[test]
fn spec_repeated_header_first_value_wins() {
    let f = one(Version::V1_2, "MESSAGE\nfoo:World\nfoo:Hello\n\n^@");
    assert_eq!(f.command(), Command::Message);
    assert_eq!(f.header("foo"), Some("World"));
    assert_eq!(headers(&f), vec![("foo", "World"), ("foo", "Hello")]);
}

#[test]
fn spec_connecting_examples() {
    let f = one(
        Version::V1_2,
        "CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n^@",
    );
    assert_eq!(f.command(), Command::Connect);
    assert_eq!(
        headers(&f),
        vec![("accept-version", "1.2"), ("host", "stomp.github.org")]
    );

    let f = one(Version::V1_2, "CONNECTED\nversion:1.2\n\n^@");
    assert_eq!(f.command(), Command::Connected);
    assert_eq!(f.header("version"), Some("1.2"));

    let f = one(
        Version::V1_2,
        "CONNECT\naccept-version:1.0,1.1,2.0\nhost:stomp.github.org\n\n^@",
    );
    assert_eq!(
        Version::negotiate(f.header("accept-version"), &Version::ALL),
        Some(Version::V1_1)
    );
    let f = one(Version::V1_2, "CONNECTED\nversion:1.1\n\n^@");
    assert_eq!(f.header("version"), Some("1.1"));

    let f = one(
        Version::V1_2,
        "ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1^@",
    );
    assert_eq!(f.command(), Command::Error);
    assert_eq!(f.header("version"), Some("1.2,2.1"));
    assert_eq!(
        f.body().as_ref(),
        b"Supported protocol versions are 1.2 2.1"
    );

    let f = one(Version::V1_2, "CONNECT\nheart-beat:10000,20000\n\n^@");
    assert_eq!(f.header("heart-beat"), Some("10000,20000"));
}

#[test]
fn spec_client_frame_examples() {
    let f = one(
        Version::V1_2,
        "SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n^@",
    );
    assert_eq!(f.command(), Command::Send);
    assert_eq!(
        headers(&f),
        vec![("destination", "/queue/a"), ("content-type", "text/plain")]
    );
    assert_eq!(f.body().as_ref(), b"hello queue a\n");

    let f = one(
        Version::V1_2,
        "SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n^@",
    );
    assert_eq!(f.command(), Command::Subscribe);
    assert_eq!(
        headers(&f),
        vec![
            ("id", "0"),
            ("destination", "/queue/foo"),
            ("ack", "client")
        ]
    );

    let f = one(Version::V1_2, "UNSUBSCRIBE\nid:0\n\n^@");
    assert_eq!(
        (f.command(), f.header("id")),
        (Command::Unsubscribe, Some("0"))
    );

    let f = one(Version::V1_2, "ACK\nid:12345\ntransaction:tx1\n\n^@");
    assert_eq!(f.command(), Command::Ack);
    assert_eq!(headers(&f), vec![("id", "12345"), ("transaction", "tx1")]);

    for (text, command) in [
        ("BEGIN\ntransaction:tx1\n\n^@", Command::Begin),
        ("COMMIT\ntransaction:tx1\n\n^@", Command::Commit),
        ("ABORT\ntransaction:tx1\n\n^@", Command::Abort),
    ] {
        let f = one(Version::V1_2, text);
        assert_eq!(
            (f.command(), f.header("transaction")),
            (command, Some("tx1"))
        );
        assert!(f.body().is_empty());
    }

    // The DISCONNECT and RECEIPT examples put NUL straight after the header.
    let f = one(Version::V1_2, "DISCONNECT\nreceipt:77\n^@");
    assert_eq!(
        (f.command(), f.header("receipt")),
        (Command::Disconnect, Some("77"))
    );
    let f = one(Version::V1_2, "RECEIPT\nreceipt-id:77\n^@");
    assert_eq!(
        (f.command(), f.header("receipt-id")),
        (Command::Receipt, Some("77"))
    );

    let f = one(
        Version::V1_2,
        "SEND\ndestination:/queue/a\nreceipt:message-12345\n\nhello queue a^@",
    );
    assert_eq!(f.header("receipt"), Some("message-12345"));
    assert_eq!(f.body().as_ref(), b"hello queue a");
}

#[test]
fn spec_server_frame_examples() {
    let f = one(
        Version::V1_2,
        "MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a^@",
    );
    assert_eq!(f.command(), Command::Message);
    assert_eq!(
        headers(&f),
        vec![
            ("subscription", "0"),
            ("message-id", "007"),
            ("destination", "/queue/a"),
            ("content-type", "text/plain")
        ]
    );
    assert_eq!(f.body().as_ref(), b"hello queue a");

    let f = one(Version::V1_2, "RECEIPT\nreceipt-id:message-12345\n\n^@");
    assert_eq!(f.header("receipt-id"), Some("message-12345"));

    let body = "The message:\n-----\nMESSAGE\ndestined:/queue/a\nreceipt:message-12345\n\nHello queue a!\n-----\nDid not contain a destination header, which is REQUIRED\nfor message propagation.\n";
    assert_eq!(body.len(), 170, "the specification's content-length");
    let text = format!(
        "ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:170\nmessage:malformed frame received\n\n{body}^@"
    );
    let f = one(Version::V1_2, &text);
    assert_eq!(f.command(), Command::Error);
    assert_eq!(f.header("message"), Some("malformed frame received"));
    assert_eq!(f.header("receipt-id"), Some("message-12345"));
    assert_eq!(
        f.header("content-length"),
        None,
        "content-length only frames the body"
    );
    assert_eq!(f.body().as_ref(), body.as_bytes());
}

#[test]
fn spec_1_0_examples_keep_whitespace() {
    // STOMP 1.0's examples pad headers; values are never trimmed.
    let f = one(
        Version::V1_0,
        "CONNECT\nlogin: <username>\npasscode:<passcode>\n\n^@",
    );
    assert_eq!(f.header("login"), Some(" <username>"));
    let f = one(
        Version::V1_0,
        "SUBSCRIBE\ndestination: /queue/foo\nack: client\n\n^@",
    );
    assert_eq!(f.header("ack"), Some(" client"));
    let f = one(Version::V1_2, "SEND\n key : value \n\n^@");
    assert_eq!(headers(&f), vec![(" key ", " value ")]);
}

#[test]
fn content_length_bodies_may_contain_nul() {
    let f = one(
        Version::V1_2,
        "SEND\ndestination:/q\ncontent-length:5\n\na^@b^@c^@",
    );
    assert_eq!(f.body().as_ref(), b"a\0b\0c");
    // The octet after a content-length body must be NUL.
    let err = decode_all(
        Version::V1_2,
        Limits::default(),
        &wire("SEND\ncontent-length:2\n\nabc^@"),
    );
    assert_eq!(err, Err(Error::MissingNul));
    // The first content-length wins.
    let f = one(
        Version::V1_2,
        "SEND\ncontent-length:1\ncontent-length:3\n\nx^@",
    );
    assert_eq!(f.body().as_ref(), b"x");
    for bad in ["-1", "", "1x", " 1", "99999999999999999999"] {
        let text = format!("SEND\ncontent-length:{bad}\n\n^@");
        assert_eq!(
            decode_all(Version::V1_2, Limits::default(), &wire(&text)),
            Err(Error::InvalidContentLength),
            "{bad:?}"
        );
    }
}

#[test]
fn crlf_line_ends_and_eols_between_frames_are_heart_beats() {
    let input =
        wire("\n\r\nSEND\r\ndestination:/q\r\n\r\nbody^@\r\n\nRECEIPT\nreceipt-id:1\n\n^@\n");
    let items = decode_all(Version::V1_2, Limits::default(), &input).unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| match i {
            Decoded::HeartBeat => "hb",
            Decoded::Frame(f) => f.command().as_str(),
        })
        .collect();
    assert_eq!(kinds, ["hb", "hb", "SEND", "hb", "hb", "RECEIPT", "hb"]);
    let Decoded::Frame(send) = &items[2] else {
        panic!()
    };
    assert_eq!(send.header("destination"), Some("/q"));
    assert_eq!(send.body().as_ref(), b"body");
}

#[test]
fn escaping_rules_per_version_in_the_decoder() {
    let text = r"MESSAGE
a\cb:c\nd\\e
";
    let input = wire(&format!("{text}\n^@"));
    // 1.0: nothing is unescaped.
    let f = frames(Version::V1_0, &input).remove(0);
    assert_eq!(headers(&f), vec![(r"a\cb", r"c\nd\\e")]);
    // 1.1 and 1.2 unescape \c \n \\.
    for v in [Version::V1_1, Version::V1_2] {
        let f = frames(v, &input).remove(0);
        assert_eq!(headers(&f), vec![("a:b", "c\nd\\e")]);
    }
    // \r is defined only in 1.2.
    let input = wire("MESSAGE\nk:a\\rb\n\n^@");
    assert_eq!(frames(Version::V1_2, &input)[0].header("k"), Some("a\rb"));
    assert_eq!(
        decode_all(Version::V1_1, Limits::default(), &input),
        Err(Error::InvalidEscape)
    );
    assert_eq!(frames(Version::V1_0, &input)[0].header("k"), Some("a\\rb"));
    // Undefined escapes are fatal in 1.1 and 1.2.
    for v in [Version::V1_1, Version::V1_2] {
        let input = wire("SEND\nk:a\\tb\n\n^@");
        assert_eq!(
            decode_all(v, Limits::default(), &input),
            Err(Error::InvalidEscape)
        );
    }
    // CONNECT and CONNECTED are never unescaped, in any version.
    for v in Version::ALL {
        let f = one(v, "CONNECT\nlogin:a\\cb\\t\n\n^@");
        assert_eq!(f.header("login"), Some("a\\cb\\t"));
        let f = one(v, "CONNECTED\nserver:x\\n\n\n^@");
        assert_eq!(f.header("server"), Some("x\\n"));
    }
}

#[test]
fn escaping_rules_per_version_in_the_encoder() {
    let f = Frame::new(Command::Message).with_header("a:b", "c\nd\\e");
    assert_eq!(
        f.to_bytes(Version::V1_1).unwrap().as_ref(),
        b"MESSAGE\na\\cb:c\\nd\\\\e\n\n\0"
    );
    assert_eq!(
        f.to_bytes(Version::V1_2).unwrap().as_ref(),
        b"MESSAGE\na\\cb:c\\nd\\\\e\n\n\0"
    );
    assert!(matches!(
        f.to_bytes(Version::V1_0),
        Err(Error::Unencodable { .. })
    ));
    let f = Frame::new(Command::Message).with_header("k", "a:b\\c");
    assert_eq!(
        f.to_bytes(Version::V1_0).unwrap().as_ref(),
        b"MESSAGE\nk:a:b\\c\n\n\0"
    );
    let f = Frame::new(Command::Message).with_header("k", "a\rb");
    assert_eq!(
        f.to_bytes(Version::V1_2).unwrap().as_ref(),
        b"MESSAGE\nk:a\\rb\n\n\0"
    );
    assert!(matches!(
        f.to_bytes(Version::V1_1),
        Err(Error::Unencodable { .. })
    ));
}

#[test]
fn malformed_input_is_a_typed_error() {
    let cases: [(&str, Error); 6] = [
        ("FOO\n\n^@", Error::UnknownCommand),
        ("send\n\n^@", Error::UnknownCommand),
        ("SEND\nno-colon\n\n^@", Error::MalformedHeader),
        ("SEND\n:empty-name\n\n^@", Error::MalformedHeader),
        (
            "SUBSCRIBE\nid:1\n\nbody^@",
            Error::BodyNotAllowed {
                command: Command::Subscribe,
            },
        ),
        ("\rX", Error::UnknownCommand),
    ];
    for (text, expected) in cases {
        assert_eq!(
            decode_all(Version::V1_2, Limits::default(), &wire(text)),
            Err(expected),
            "{text:?}"
        );
    }
    let invalid_utf8 = b"SEND\nk:\xff\n\n\0";
    assert_eq!(
        decode_all(Version::V1_2, Limits::default(), invalid_utf8),
        Err(Error::InvalidUtf8)
    );
    // After an error the decoder keeps failing.
    let mut d = FrameDecoder::new(Limits::default());
    d.receive(b"BAD\n\n\0SEND\n\n\0");
    assert_eq!(d.decode(), Err(Error::UnknownCommand));
    assert_eq!(d.decode(), Err(Error::UnknownCommand));
}

#[test]
fn limits_give_typed_errors() {
    let limits = Limits {
        max_headers: 2,
        max_header_line: 16,
        max_body: 8,
        max_frame: 64,
    };
    let run = |text: &str| decode_all(Version::V1_2, limits, &wire(text));
    assert!(run("SEND\na:1\nb:2\n\n12345678^@").is_ok());
    assert_eq!(
        run("SEND\na:1\nb:2\nc:3\n\n^@"),
        Err(Error::TooManyHeaders { limit: 2 })
    );
    assert!(
        run("SEND\na:12345678901234\n\n^@").is_ok(),
        "exactly 16 octets"
    );
    assert_eq!(
        run("SEND\na:123456789012345\n\n^@"),
        Err(Error::HeaderLineTooLong { limit: 16 })
    );
    assert_eq!(
        run("SEND\na:12345678901234\r\n\n^@"),
        Err(Error::HeaderLineTooLong { limit: 16 })
    );
    assert_eq!(
        run("SEND\n\n123456789^@"),
        Err(Error::BodyTooLarge { limit: 8 })
    );
    assert_eq!(
        run("SEND\ncontent-length:9\n\n123456789^@"),
        Err(Error::BodyTooLarge { limit: 8 })
    );
    let limits = Limits {
        max_headers: 10,
        max_header_line: 16,
        max_body: 100,
        max_frame: 40,
    };
    let run = |text: &str| decode_all(Version::V1_2, limits, &wire(text));
    assert_eq!(
        run("SEND\na:1234567890\nb:1234567890\nc:1234567\n\n^@"),
        Err(Error::FrameTooLarge { limit: 40 })
    );
    assert_eq!(
        run("SEND\n\n123456789012345678901234567890123456^@"),
        Err(Error::FrameTooLarge { limit: 40 })
    );
    // Incomplete input is judged too, so a peer cannot make us buffer forever.
    let mut d = FrameDecoder::new(limits);
    d.receive(b"SEND\nkey:");
    assert_eq!(d.decode(), Ok(None));
    d.receive(&[b'v'; 20]);
    assert_eq!(d.decode(), Err(Error::HeaderLineTooLong { limit: 16 }));
    let mut d = FrameDecoder::new(limits);
    d.receive(b"SEND\n\n");
    d.receive(&[b'v'; 200]);
    assert_eq!(d.decode(), Err(Error::FrameTooLarge { limit: 40 }));
}

#[test]
fn decoded_bodies_and_headers_share_the_received_buffer() {
    let mut d = FrameDecoder::new(Limits::default());
    d.receive(b"SEND\ndestination:/q\n\nbody\0");
    let Some(Decoded::Frame(f)) = d.decode().unwrap() else {
        panic!()
    };
    let body_ptr = f.body().as_ptr() as usize;
    let name_ptr = f.headers()[0].name_bytes().as_ptr() as usize;
    // Both are slices of the same frame buffer: 16 bytes apart on the wire.
    assert_eq!(body_ptr - name_ptr, "destination:/q\n\n".len());
}

#[test]
fn encode_then_decode_round_trips_every_spec_example() {
    let examples = [
        "SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n^@",
        "SUBSCRIBE\nid:0\ndestination:/queue/foo\nack:client\n\n^@",
        "MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a^@",
        "ERROR\nversion:1.2,2.1\ncontent-type:text/plain\n\nSupported protocol versions are 1.2 2.1^@",
    ];
    for text in examples {
        for v in Version::ALL {
            let f = one(v, text);
            let mut out = BytesMut::new();
            f.encode(v, &mut out).unwrap();
            assert_eq!(frames(v, &out), vec![f]);
        }
    }
}
