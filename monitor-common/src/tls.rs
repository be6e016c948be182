//! TLS ClientHello fields from the first bytes of a TCP payload, and QUIC
//! Initial detection for UDP.
//!
//! An event's capture holds at most [`crate::event::PAYLOAD_CAPTURE`] bytes,
//! while a modern ClientHello is 500 to 2000 (the kernel then captures the
//! hello's whole segments and the daemon reassembles it, see
//! [`crate::tls_capture`]; a hello can still end early). The parser therefore tells apart two
//! ways of running out of bytes: a length field pointing past its enclosing
//! structure is [`TlsError::BadLength`] (the data is not TLS or is corrupt),
//! while a structure whose declared bytes were simply not captured ends the
//! parse early with what was found so far and `truncated` set. Every field
//! returned is exact; a field that was not completely captured is `None`.

use core::fmt;

/// Largest TLSPlaintext fragment (RFC 8446 §5.1).
const MAX_RECORD_LEN: usize = 1 << 14;

const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const RECORD_HEADER_LEN: usize = 5;
const HANDSHAKE_HEADER_LEN: usize = 4;
const RANDOM_LEN: usize = 32;
const MAX_SESSION_ID_LEN: usize = 32;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const SERVER_NAME_TYPE_HOST_NAME: u8 = 0;

/// Longest DNS name in text form, without the trailing dot.
const MAX_DNS_NAME_LEN: usize = 253;
const MAX_DNS_LABEL_LEN: usize = 63;

pub const SSL_3_0: u16 = 0x0300;
pub const TLS_1_0: u16 = 0x0301;
pub const TLS_1_1: u16 = 0x0302;
pub const TLS_1_2: u16 = 0x0303;
pub const TLS_1_3: u16 = 0x0304;

/// QUIC version 1 (RFC 9000).
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const QUIC_V2: u32 = 0x6b33_43cf;

/// What a ClientHello says about the connection it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// The version field of the hello itself; 0x0303 (TLS 1.2) for TLS 1.3
    /// clients, which put the real one in `supported_versions_max`.
    pub legacy_version: u16,
    /// Offered cipher suites, not counting GREASE values; 0 if the list was
    /// not completely captured (a valid hello offers at least one).
    pub cipher_suite_count: u16,
    /// The SNI host name, validated as a DNS name.
    pub server_name: Option<&'a str>,
    /// The first non-GREASE ALPN protocol, e.g. `b"h2"`.
    pub alpn: Option<&'a [u8]>,
    /// Highest non-GREASE version in the supported_versions extension.
    pub supported_versions_max: Option<u16>,
    /// The capture ended (or the record did, for a hello fragmented across
    /// records) before all extensions were read; absent fields may exist.
    pub truncated: bool,
}

impl ClientHello<'_> {
    /// The highest version the client offers: what the server will pick if
    /// it supports it.
    pub fn max_version(&self) -> u16 {
        self.supported_versions_max.unwrap_or(self.legacy_version)
    }
}

/// Why a payload is not (the start of) a usable ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsError {
    /// Not a TLS handshake record: most non-TLS traffic stops here.
    NotHandshake,
    /// A handshake record, but not carrying a ClientHello.
    NotClientHello,
    /// A length field disagrees with the structure containing it.
    BadLength,
    /// The capture (or, for a fragmented hello, the first record) ends
    /// before the end of the session id.
    Truncated,
    /// The SNI host name is not a DNS name.
    BadServerName,
}

impl TlsError {
    pub const fn reason(self) -> &'static str {
        match self {
            TlsError::NotHandshake => "not a TLS handshake record",
            TlsError::NotClientHello => "not a ClientHello",
            TlsError::BadLength => "inconsistent length field",
            TlsError::Truncated => "ClientHello truncated before the session id",
            TlsError::BadServerName => "server name is not a valid DNS name",
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for TlsError {}

/// Display name of a TLS/SSL protocol version number.
pub const fn version_name(v: u16) -> &'static str {
    match v {
        SSL_3_0 => "SSL 3.0",
        TLS_1_0 => "TLS 1.0",
        TLS_1_1 => "TLS 1.1",
        TLS_1_2 => "TLS 1.2",
        TLS_1_3 => "TLS 1.3",
        _ => "unknown",
    }
}

/// RFC 8701 GREASE values (0x0a0a, 0x1a1a, ... 0xfafa): random-looking
/// values clients add so servers stay tolerant of unknown ones. They carry
/// no information and must not be reported as real versions or suites.
pub const fn is_grease(v: u16) -> bool {
    let [high, low] = v.to_be_bytes();
    high == low && low & 0x0f == 0x0a
}

/// A bounded view of one length-delimited TLS structure.
///
/// `declared` is how many bytes its length field (and those around it)
/// promise are left; `data` is the part of them that was captured, so
/// `data.len() <= declared` always. Reading past `declared` is a
/// [`TlsError::BadLength`], past `data` a [`TlsError::Truncated`].
struct Reader<'a> {
    data: &'a [u8],
    declared: usize,
}

impl<'a> Reader<'a> {
    fn new(captured: &'a [u8], declared: usize) -> Self {
        let data = captured.get(..declared).unwrap_or(captured);
        Reader { data, declared }
    }

    fn is_complete(&self) -> bool {
        self.data.len() == self.declared
    }

    fn is_empty(&self) -> bool {
        self.declared == 0
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if n > self.declared {
            return Err(TlsError::BadLength);
        }
        if n > self.data.len() {
            return Err(TlsError::Truncated);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        self.declared -= n;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TlsError> {
        let [b] = self.take_array::<1>()?;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, TlsError> {
        self.take_array::<2>().map(u16::from_be_bytes)
    }

    fn u24(&mut self) -> Result<usize, TlsError> {
        let [a, b, c] = self.take_array::<3>()?;
        Ok((usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c))
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], TlsError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| TlsError::BadLength)
    }

    /// Splits off the next `len` declared bytes as their own reader, however
    /// many of them were captured. Any shortfall moves to the new reader
    /// (this one then reads on as if it had been captured), so it is the
    /// new reader's `is_complete` that says whether the capture ended there.
    fn sub(&mut self, len: usize) -> Result<Reader<'a>, TlsError> {
        if len > self.declared {
            return Err(TlsError::BadLength);
        }
        let captured = len.min(self.data.len());
        let (head, tail) = self.data.split_at(captured);
        self.data = tail;
        self.declared -= len;
        Ok(Reader { data: head, declared: len })
    }

    /// A vector with a one-byte length prefix (`<0..2^8-1>` in RFC 8446).
    fn vec_u8(&mut self) -> Result<Reader<'a>, TlsError> {
        let len = self.u8()?;
        self.sub(usize::from(len))
    }

    /// A vector with a two-byte length prefix.
    fn vec_u16(&mut self) -> Result<Reader<'a>, TlsError> {
        let len = self.u16()?;
        self.sub(usize::from(len))
    }

    /// All remaining bytes, which must all have been captured.
    fn rest(&mut self) -> Result<&'a [u8], TlsError> {
        self.take(self.declared)
    }
}

/// Parses the ClientHello at the start of a TLS record stream.
///
/// Fails only on what rules the payload out as a ClientHello, or when not
/// even the fixed part up to the session id was captured; otherwise returns
/// what could be read, with `truncated` set if extensions may be missing.
/// A hello fragmented over several records is read as far as the first
/// record goes: records are not reassembled.
///
/// # Errors
///
/// [`TlsError::NotHandshake`] and [`TlsError::NotClientHello`] for other
/// traffic, [`TlsError::BadLength`] and [`TlsError::BadServerName`] for a
/// malformed hello, [`TlsError::Truncated`] if the capture ends before the
/// end of the session id.
pub fn parse_client_hello(payload: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    // Check each header byte as soon as it is available, so that a 1-byte
    // capture of non-TLS data is NotHandshake rather than Truncated.
    match payload {
        [] => return Err(TlsError::Truncated),
        [content_type, ..] if *content_type != CONTENT_TYPE_HANDSHAKE => return Err(TlsError::NotHandshake),
        [_, major, ..] if *major != 0x03 => return Err(TlsError::NotHandshake),
        [_, _, minor, ..] if !(0x01..=0x04).contains(minor) => return Err(TlsError::NotHandshake),
        _ => {}
    }
    let Some((&[_, _, _, len_high, len_low], after_header)) = payload.split_first_chunk::<RECORD_HEADER_LEN>() else {
        return Err(TlsError::Truncated);
    };
    let record_len = usize::from(u16::from_be_bytes([len_high, len_low]));
    if record_len == 0 || record_len > MAX_RECORD_LEN {
        return Err(TlsError::BadLength);
    }
    // Bytes after the record (the next record, or more data) are ignored.
    let mut record = Reader::new(after_header, record_len);

    if record.data.first().is_some_and(|&t| t != HANDSHAKE_CLIENT_HELLO) {
        return Err(TlsError::NotClientHello);
    }
    if record.declared < HANDSHAKE_HEADER_LEN {
        return Err(TlsError::BadLength);
    }
    record.u8()?; // The handshake type, checked above.
    let handshake_len = record.u24()?;
    // Not `record.sub()`: a hello longer than its record continues in the
    // next one, and all we can do is read the part in this one.
    let mut body = Reader::new(record.data, handshake_len);

    let mut hello = ClientHello {
        legacy_version: body.u16()?,
        cipher_suite_count: 0,
        server_name: None,
        alpn: None,
        supported_versions_max: None,
        truncated: false,
    };
    body.take(RANDOM_LEN)?;
    let session_id_len = body.u8()?;
    if usize::from(session_id_len) > MAX_SESSION_ID_LEN {
        return Err(TlsError::BadLength);
    }
    body.take(usize::from(session_id_len))?;

    match parse_variable_part(&mut body, &mut hello) {
        Ok(()) => Ok(hello),
        Err(TlsError::Truncated) => {
            hello.truncated = true;
            Ok(hello)
        }
        Err(error) => Err(error),
    }
}

/// Cipher suites, compression methods and extensions, filling in `hello` as
/// it goes so that a `Truncated` return leaves what was found.
fn parse_variable_part<'a>(body: &mut Reader<'a>, hello: &mut ClientHello<'a>) -> Result<(), TlsError> {
    let mut suites = body.vec_u16()?;
    if suites.is_empty() || suites.declared % 2 != 0 {
        return Err(TlsError::BadLength);
    }
    let suites = suites.rest()?;
    let count = suites.chunks_exact(2).filter(|pair| !is_grease(u16::from_be_bytes([pair[0], pair[1]]))).count();
    // At most (2^16 - 1) / 2 suites fit the length field.
    hello.cipher_suite_count = u16::try_from(count).unwrap_or(u16::MAX);

    let compression_methods = body.vec_u8()?;
    if compression_methods.is_empty() {
        return Err(TlsError::BadLength);
    }
    if !compression_methods.is_complete() {
        return Err(TlsError::Truncated);
    }

    // Extensions are optional before TLS 1.3; a hello without them ends here.
    if body.is_empty() {
        return Ok(());
    }
    let mut extensions = body.vec_u16()?;
    if !body.is_empty() {
        return Err(TlsError::BadLength);
    }
    while !extensions.is_empty() {
        let extension_type = extensions.u16()?;
        let mut data = extensions.vec_u16()?;
        // Known now, before parsing consumes `data`: skipping an extension
        // skips its uncaptured bytes too, and a hello cut inside one must
        // not look complete.
        let captured_whole = data.is_complete();
        match extension_type {
            EXT_SERVER_NAME if hello.server_name.is_none() => {
                hello.server_name = parse_server_name(&mut data)?;
            }
            EXT_ALPN if hello.alpn.is_none() => hello.alpn = parse_alpn(&mut data)?,
            EXT_SUPPORTED_VERSIONS if hello.supported_versions_max.is_none() => {
                hello.supported_versions_max = parse_supported_versions(&mut data)?;
            }
            _ => {}
        }
        if !captured_whole {
            return Err(TlsError::Truncated);
        }
    }
    Ok(())
}

/// RFC 6066 §3: the host_name entry of a server_name_list.
fn parse_server_name<'a>(data: &mut Reader<'a>) -> Result<Option<&'a str>, TlsError> {
    // Empty extension data is what servers echo back; tolerate it here too.
    if data.is_empty() {
        return Ok(None);
    }
    let mut names = data.vec_u16()?;
    while !names.is_empty() {
        let name_type = names.u8()?;
        let mut name = names.vec_u16()?;
        if name_type == SERVER_NAME_TYPE_HOST_NAME {
            let name = name.rest()?;
            return match core::str::from_utf8(name) {
                Ok(name) if is_dns_name(name.as_bytes()) => Ok(Some(name)),
                _ => Err(TlsError::BadServerName),
            };
        }
    }
    Ok(None)
}

/// Letters, digits, hyphens and underscores (seen in real service names)
/// in non-empty labels of at most 63 bytes; no trailing dot (RFC 6066).
fn is_dns_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DNS_NAME_LEN
        && name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_DNS_LABEL_LEN
                && label.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// RFC 7301 §3.1: the first protocol of the list that is not GREASE.
fn parse_alpn<'a>(data: &mut Reader<'a>) -> Result<Option<&'a [u8]>, TlsError> {
    let mut protocols = data.vec_u16()?;
    while !protocols.is_empty() {
        let protocol = protocols.vec_u8()?.rest()?;
        match protocol {
            [] => return Err(TlsError::BadLength),
            &[high, low] if is_grease(u16::from_be_bytes([high, low])) => {}
            _ => return Ok(Some(protocol)),
        }
    }
    Ok(None)
}

/// RFC 8446 §4.2.1: the highest non-GREASE version, reported only if the
/// whole list was captured (a partial maximum would be a guess).
fn parse_supported_versions(data: &mut Reader<'_>) -> Result<Option<u16>, TlsError> {
    let mut versions = data.vec_u8()?;
    if versions.is_empty() || versions.declared % 2 != 0 {
        return Err(TlsError::BadLength);
    }
    let versions = versions.rest()?;
    Ok(versions.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).filter(|&v| !is_grease(v)).max())
}

/// Recognises the long header of a QUIC Initial packet (RFC 9000 §17.2.2,
/// RFC 9369 §3.2) and returns its version.
///
/// Initials are encrypted with keys derived from the connection id, so
/// there is nothing to read without implementing QUIC's crypto; knowing the
/// flow is QUIC is what the UI needs. The connection id lengths are checked
/// too, because "top two bits set" alone matches a quarter of random bytes.
pub fn is_quic_initial(payload: &[u8]) -> Option<u32> {
    const LONG_HEADER_AND_FIXED_BIT: u8 = 0xc0;
    const MAX_CONNECTION_ID_LEN: usize = 20;

    let (&first, rest) = payload.split_first()?;
    if first & LONG_HEADER_AND_FIXED_BIT != LONG_HEADER_AND_FIXED_BIT {
        return None;
    }
    let (version, rest) = rest.split_first_chunk::<4>()?;
    let version = u32::from_be_bytes(*version);
    // v2 renumbered the packet types so middleboxes cannot ossify on them.
    let initial_type = match version {
        QUIC_V1 => 0b00,
        QUIC_V2 => 0b01,
        _ => return None,
    };
    if (first >> 4) & 0b11 != initial_type {
        return None;
    }
    let (&dcid_len, rest) = rest.split_first()?;
    let dcid_len = usize::from(dcid_len);
    if dcid_len > MAX_CONNECTION_ID_LEN {
        return None;
    }
    let (&scid_len, rest) = rest.get(dcid_len..)?.split_first()?;
    let scid_len = usize::from(scid_len);
    if scid_len > MAX_CONNECTION_ID_LEN || rest.len() < scid_len {
        return None;
    }
    Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- A ClientHello builder with correct lengths at every level. ----

    fn with_u8_len(body: &[u8]) -> Vec<u8> {
        let len = u8::try_from(body.len()).expect("u8 length");
        [&[len][..], body].concat()
    }

    fn with_u16_len(body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len()).expect("u16 length");
        [&len.to_be_bytes()[..], body].concat()
    }

    fn with_u24_len(body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).expect("u24 length");
        assert!(len < 1 << 24);
        [&len.to_be_bytes()[1..], body].concat()
    }

    fn u16s(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn extension(extension_type: u16, data: &[u8]) -> Vec<u8> {
        [&extension_type.to_be_bytes()[..], &with_u16_len(data)].concat()
    }

    fn sni_extension(name: &[u8]) -> Vec<u8> {
        let entry = [&[SERVER_NAME_TYPE_HOST_NAME][..], &with_u16_len(name)].concat();
        extension(EXT_SERVER_NAME, &with_u16_len(&entry))
    }

    fn alpn_extension(protocols: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = protocols.iter().flat_map(|p| with_u8_len(p)).collect();
        extension(EXT_ALPN, &with_u16_len(&list))
    }

    fn versions_extension(versions: &[u16]) -> Vec<u8> {
        extension(EXT_SUPPORTED_VERSIONS, &with_u8_len(&u16s(versions)))
    }

    #[derive(Clone, Debug)]
    struct Hello {
        record_version: u16,
        legacy_version: u16,
        session_id: Vec<u8>,
        cipher_suites: Vec<u16>,
        /// Already-encoded extensions; `None` for a hello without the block.
        extensions: Option<Vec<Vec<u8>>>,
    }

    impl Hello {
        fn new(extensions: Vec<Vec<u8>>) -> Self {
            Hello {
                record_version: TLS_1_0,
                legacy_version: TLS_1_2,
                session_id: vec![0x55; 32],
                cipher_suites: vec![0x1301, 0x1302, 0xc02f],
                extensions: Some(extensions),
            }
        }

        /// Offset just past the session id: the shortest prefix that parses.
        fn fixed_len(&self) -> usize {
            RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN + 2 + RANDOM_LEN + 1 + self.session_id.len()
        }

        fn body(&self) -> Vec<u8> {
            let mut body = self.legacy_version.to_be_bytes().to_vec();
            body.extend(0..RANDOM_LEN as u8);
            body.extend(with_u8_len(&self.session_id));
            body.extend(with_u16_len(&u16s(&self.cipher_suites)));
            body.extend(with_u8_len(&[0]));
            if let Some(extensions) = &self.extensions {
                body.extend(with_u16_len(&extensions.concat()));
            }
            body
        }

        fn bytes(&self) -> Vec<u8> {
            let handshake = [&[HANDSHAKE_CLIENT_HELLO][..], &with_u24_len(&self.body())].concat();
            record(self.record_version, &handshake)
        }
    }

    fn record(version: u16, fragment: &[u8]) -> Vec<u8> {
        [&[CONTENT_TYPE_HANDSHAKE][..], &version.to_be_bytes(), &with_u16_len(fragment)].concat()
    }

    fn typical() -> Hello {
        Hello::new(vec![
            extension(0x0a0a, &[]),
            sni_extension(b"www.example.com"),
            extension(0x0017, &[]),
            alpn_extension(&[b"h2", b"http/1.1"]),
            versions_extension(&[0x7a7a, TLS_1_3, TLS_1_2]),
        ])
    }

    #[test]
    fn typical_hello() {
        let hello = typical();
        assert_eq!(
            parse_client_hello(&hello.bytes()),
            Ok(ClientHello {
                legacy_version: TLS_1_2,
                cipher_suite_count: 3,
                server_name: Some("www.example.com"),
                alpn: Some(b"h2"),
                supported_versions_max: Some(TLS_1_3),
                truncated: false,
            })
        );
    }

    #[test]
    fn record_versions() {
        for record_version in [TLS_1_0, TLS_1_1, TLS_1_2, TLS_1_3] {
            let hello = Hello { record_version, ..typical() };
            assert!(parse_client_hello(&hello.bytes()).is_ok());
        }
        for record_version in [SSL_3_0, 0x0305, 0x0201, 0x0303 ^ 0x0100] {
            let hello = Hello { record_version, ..typical() };
            assert_eq!(parse_client_hello(&hello.bytes()), Err(TlsError::NotHandshake));
        }
    }

    #[test]
    fn not_tls() {
        assert_eq!(parse_client_hello(b"GET / HTTP/1.1\r\n"), Err(TlsError::NotHandshake));
        assert_eq!(parse_client_hello(b"\x17\x03\x03\x00\x20"), Err(TlsError::NotHandshake));
        assert_eq!(parse_client_hello(b"\x80\x2e\x01\x03\x01"), Err(TlsError::NotHandshake));
        // Decided on the first bytes, however short the capture.
        assert_eq!(parse_client_hello(b"G"), Err(TlsError::NotHandshake));
        assert_eq!(parse_client_hello(b"\x16\x02"), Err(TlsError::NotHandshake));
        assert_eq!(parse_client_hello(b"\x16\x03\x00"), Err(TlsError::NotHandshake));
        assert_eq!(parse_client_hello(b""), Err(TlsError::Truncated));
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x02"), Err(TlsError::Truncated));
    }

    #[test]
    fn not_client_hello() {
        // A ServerHello (type 2) and a Finished-sized handshake (type 20).
        for handshake_type in [2u8, 20] {
            let mut bytes = typical().bytes();
            bytes[RECORD_HEADER_LEN] = handshake_type;
            assert_eq!(parse_client_hello(&bytes), Err(TlsError::NotClientHello));
            assert_eq!(parse_client_hello(&bytes[..RECORD_HEADER_LEN + 1]), Err(TlsError::NotClientHello));
        }
    }

    #[test]
    fn bad_record_lengths() {
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x00\x00"), Err(TlsError::BadLength));
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x40\x01\x01"), Err(TlsError::BadLength));
        // Too short for a handshake header.
        assert_eq!(parse_client_hello(b"\x16\x03\x01\x00\x03\x01\x00\x00"), Err(TlsError::BadLength));
    }

    #[test]
    fn bad_inner_lengths() {
        // Handshake length too small for the fixed part.
        let hello = typical().bytes();
        let mut short = hello.clone();
        short[6..9].copy_from_slice(&[0, 0, 20]);
        assert_eq!(parse_client_hello(&short), Err(TlsError::BadLength));

        // Session id longer than 32.
        let hello = Hello { session_id: vec![1; 33], ..typical() };
        assert_eq!(parse_client_hello(&hello.bytes()), Err(TlsError::BadLength));

        // Odd and empty cipher suite lists.
        for cipher_suites in [vec![], vec![0x1301]] {
            let mut hello = typical();
            hello.cipher_suites = cipher_suites;
            let mut bytes = hello.bytes();
            if hello.cipher_suites.len() == 1 {
                // Declare 3 bytes: one suite and a half.
                let at = hello.fixed_len();
                bytes[at..at + 2].copy_from_slice(&[0, 3]);
            }
            assert_eq!(parse_client_hello(&bytes), Err(TlsError::BadLength));
        }

        // Extensions block longer, or shorter, than what is left.
        let mut hello = typical();
        hello.extensions = Some(vec![sni_extension(b"a.example")]);
        let bytes = hello.bytes();
        let at = bytes.len() - sni_extension(b"a.example").len() - 2;
        for delta in [1i32, -1] {
            let mut bytes = bytes.clone();
            let len = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as i32 + delta;
            bytes[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
            assert_eq!(parse_client_hello(&bytes), Err(TlsError::BadLength), "delta {delta}");
        }

        // An extension claiming more than the block holds.
        let mut hello = typical();
        hello.extensions = Some(vec![[0xff, 0x01, 0x00, 0x09, 0, 0].to_vec()]);
        assert_eq!(parse_client_hello(&hello.bytes()), Err(TlsError::BadLength));

        // A zero-length ALPN protocol; odd supported_versions.
        let hello = Hello::new(vec![alpn_extension(&[b""])]);
        assert_eq!(parse_client_hello(&hello.bytes()), Err(TlsError::BadLength));
        let hello = Hello::new(vec![extension(EXT_SUPPORTED_VERSIONS, &[3, 3, 4, 3])]);
        assert_eq!(parse_client_hello(&hello.bytes()), Err(TlsError::BadLength));
    }

    #[test]
    fn server_names() {
        let parse = |name: &[u8]| {
            let bytes = Hello::new(vec![sni_extension(name)]).bytes();
            parse_client_hello(&bytes).map(|h| h.server_name.map(str::to_owned))
        };
        let found = |name: &[u8]| Ok(Some(String::from_utf8(name.to_vec()).expect("ascii")));
        for name in [&b"localhost"[..], b"_dmarc.EXAMPLE-1.org", b"192.0.2.1", b"a"] {
            assert_eq!(parse(name), found(name));
        }
        let longest = [&[b'a'; 63][..], b".", &[b'b'; 63], b".", &[b'c'; 63], b".", &[b'd'; 61]].concat();
        assert_eq!(longest.len(), 253);
        assert_eq!(parse(&longest), found(&longest));
        let too_long = [&longest[..], b"d"].concat();
        assert_eq!(parse(&too_long), Err(TlsError::BadServerName));
        let long_label = [&[b'a'; 64][..], b".com"].concat();
        assert_eq!(parse(&long_label), Err(TlsError::BadServerName));
        for bad in
            [&b""[..], b"example.com.", b".example.com", b"a..b", b"a b", b"a/b", b"caf\xc3\xa9", b"\x00", b"a:443"]
        {
            assert_eq!(parse(bad), Err(TlsError::BadServerName), "{bad:?}");
        }
    }

    #[test]
    fn server_name_list_edge_cases() {
        // Empty extension: no name, not an error.
        let hello = Hello::new(vec![extension(EXT_SERVER_NAME, &[])]);
        assert_eq!(parse_client_hello(&hello.bytes()).map(|h| h.server_name), Ok(None));
        // An unknown name type before the host_name entry is skipped.
        let entries = [&[7u8][..], &with_u16_len(b"xx"), &[0], &with_u16_len(b"b.example")].concat();
        let hello = Hello::new(vec![extension(EXT_SERVER_NAME, &with_u16_len(&entries))]);
        assert_eq!(parse_client_hello(&hello.bytes()).map(|h| h.server_name), Ok(Some("b.example")));
        // A duplicate extension does not replace the first.
        let hello = Hello::new(vec![sni_extension(b"first.example"), sni_extension(b"second.example")]);
        assert_eq!(parse_client_hello(&hello.bytes()).map(|h| h.server_name), Ok(Some("first.example")));
    }

    #[test]
    fn alpn_and_versions() {
        let alpn = |protocols: &[&[u8]]| {
            let bytes = Hello::new(vec![alpn_extension(protocols)]).bytes();
            parse_client_hello(&bytes).expect("valid").alpn.map(<[u8]>::to_vec)
        };
        assert_eq!(alpn(&[&[0x3a, 0x3a], b"http/1.1", b"h2"]), Some(b"http/1.1".to_vec()));
        assert_eq!(alpn(&[&[0x3a, 0x3a]]), None);
        assert_eq!(alpn(&[b"h3"]), Some(b"h3".to_vec()));

        let max_versions = |versions: &[u16]| {
            let bytes = Hello::new(vec![versions_extension(versions)]).bytes();
            let hello = parse_client_hello(&bytes).expect("valid");
            (hello.supported_versions_max, hello.max_version())
        };
        assert_eq!(max_versions(&[TLS_1_2, 0xfafa, TLS_1_3, TLS_1_1]), (Some(TLS_1_3), TLS_1_3));
        assert_eq!(max_versions(&[0x2a2a]), (None, TLS_1_2));
    }

    #[test]
    fn grease_is_ignored_everywhere() {
        let mut hello = typical();
        hello.cipher_suites = vec![0xdada, 0x1301, 0x1a1a, 0xc02b];
        let bytes = hello.bytes();
        assert_eq!(parse_client_hello(&bytes).map(|h| h.cipher_suite_count), Ok(2));
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x5a5a));
        // The "0x?a?a" shorthand is stricter in the RFC: both bytes equal.
        assert!(!is_grease(0x1a2a) && !is_grease(0x0a0b) && !is_grease(0x0303));
    }

    #[test]
    fn hello_without_extensions() {
        let mut hello = typical();
        hello.extensions = None;
        hello.legacy_version = TLS_1_0;
        hello.session_id = vec![];
        assert_eq!(
            parse_client_hello(&hello.bytes()),
            Ok(ClientHello {
                legacy_version: TLS_1_0,
                cipher_suite_count: 3,
                server_name: None,
                alpn: None,
                supported_versions_max: None,
                truncated: false,
            })
        );
    }

    /// Bytes after the first record (a second record, or anything) are not
    /// part of the hello.
    #[test]
    fn trailing_records_are_ignored() {
        let bytes = typical().bytes();
        let with_more = [&bytes[..], &record(TLS_1_2, &[1, 2, 3])].concat();
        assert_eq!(parse_client_hello(&with_more), parse_client_hello(&bytes));
    }

    /// A hello longer than its record (some clients fragment large hellos)
    /// is read up to the record's end and reported as truncated.
    #[test]
    fn hello_fragmented_across_records() {
        let hello = typical();
        let handshake = [&[HANDSHAKE_CLIENT_HELLO][..], &with_u24_len(&hello.body())].concat();
        let split = hello.fixed_len() - RECORD_HEADER_LEN + 60;
        let bytes = [record(TLS_1_0, &handshake[..split]), record(TLS_1_0, &handshake[split..])].concat();
        let parsed = parse_client_hello(&bytes).expect("first fragment holds the fixed part");
        assert!(parsed.truncated);
        assert_eq!(parsed.server_name, Some("www.example.com"));
        assert_eq!(parsed.supported_versions_max, None);
    }

    /// The parser must neither panic nor misreport on any prefix: short of
    /// the session id it is `Truncated`, after it `Ok` with `truncated` set
    /// and every field either absent or exactly right.
    fn check_every_prefix(bytes: &[u8], fixed_len: usize, full: &ClientHello<'_>) {
        for cut in 0..bytes.len() {
            let parsed = parse_client_hello(&bytes[..cut]);
            if cut < fixed_len {
                assert_eq!(parsed, Err(TlsError::Truncated), "cut {cut}");
                continue;
            }
            let parsed = parsed.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert!(parsed.truncated, "cut {cut}");
            assert_eq!(parsed.legacy_version, full.legacy_version);
            for (found, expected) in
                [(parsed.server_name.map(str::as_bytes), full.server_name.map(str::as_bytes)), (parsed.alpn, full.alpn)]
            {
                assert!(found.is_none() || found == expected, "cut {cut}: {found:?}");
            }
            assert!(
                parsed.supported_versions_max.is_none() || parsed.supported_versions_max == full.supported_versions_max
            );
            assert!(parsed.cipher_suite_count == 0 || parsed.cipher_suite_count == full.cipher_suite_count);
        }
        assert_eq!(parse_client_hello(bytes).as_ref(), Ok(full));
    }

    #[test]
    fn every_prefix_of_typical_hello() {
        let hello = typical();
        let bytes = hello.bytes();
        let full = parse_client_hello(&bytes).expect("valid");
        check_every_prefix(&bytes, hello.fixed_len(), &full);
    }

    /// The first bytes curl 7.88.1 (OpenSSL 3.0.19) sent to a plain TCP
    /// listener on 127.0.0.1 for `https://example.test:PORT/`, resolved with
    /// `--resolve`: a 517-byte record padded by the padding extension.
    const CURL_HELLO_HEX: &[&str] = &[
        "1603010200010001fc0303e1f2315c2292bc6e71163aaaa216ebb6fe0a2709be",
        "62883d0220572d5e5f2ccf209f705ffe3c8a0e336dee1ea2ac4762be2dd8bf23",
        "ccd5394055d44f14e0430bff003e130213031301c02cc030009fcca9cca8ccaa",
        "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d",
        "009c003d003c0035002f00ff0100017500000011000f00000c6578616d706c65",
        "2e74657374000b000403000102000a00160014001d0017001e00190018010001",
        "010102010301040010000e000c02683208687474702f312e3100160000001700",
        "0000310000000d002a0028040305030603080708080809080a080b0804080508",
        "06040105010601030303010302040205020602002b0009080304030303020301",
        "002d00020101003300260024001d0020fd98fdbffb6ff317e2a1625e4856ea2e",
        "3fc2c819c00fe6b088b1160734f6dd66001500b1000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000",
    ];

    fn curl_hello() -> Vec<u8> {
        let hex = CURL_HELLO_HEX.concat();
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
    }

    const CURL_PARSED: ClientHello<'static> = ClientHello {
        legacy_version: TLS_1_2,
        cipher_suite_count: 31,
        server_name: Some("example.test"),
        alpn: Some(b"h2"),
        supported_versions_max: Some(TLS_1_3),
        truncated: false,
    };

    #[test]
    fn real_curl_hello() {
        let bytes = curl_hello();
        assert_eq!(bytes.len(), 517);
        assert_eq!(parse_client_hello(&bytes), Ok(CURL_PARSED));
        assert_eq!(version_name(CURL_PARSED.max_version()), "TLS 1.3");
    }

    /// What the daemon actually sees: the XDP program's 256-byte capture,
    /// possibly one byte short. SNI and ALPN come early enough to survive;
    /// supported_versions does not.
    #[test]
    fn real_curl_hello_as_captured() {
        let bytes = curl_hello();
        for len in [crate::event::PAYLOAD_CAPTURE, crate::event::PAYLOAD_CAPTURE - 1] {
            assert_eq!(
                parse_client_hello(&bytes[..len]),
                Ok(ClientHello { supported_versions_max: None, truncated: true, ..CURL_PARSED }),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn every_prefix_of_real_curl_hello() {
        let bytes = curl_hello();
        // 5 record + 4 handshake + 2 version + 32 random + 1 + 32 session id.
        check_every_prefix(&bytes, 76, &CURL_PARSED);
    }

    #[test]
    fn errors_display_their_reason() {
        for error in [
            TlsError::NotHandshake,
            TlsError::NotClientHello,
            TlsError::BadLength,
            TlsError::Truncated,
            TlsError::BadServerName,
        ] {
            assert!(!error.reason().is_empty());
            assert_eq!(error.to_string(), error.reason());
        }
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(0x0300), "SSL 3.0");
        assert_eq!(version_name(0x0301), "TLS 1.0");
        assert_eq!(version_name(0x0302), "TLS 1.1");
        assert_eq!(version_name(0x0303), "TLS 1.2");
        assert_eq!(version_name(0x0304), "TLS 1.3");
        assert_eq!(version_name(0x0a0a), "unknown");
        assert_eq!(version_name(0x7f1c), "unknown");
    }

    // ---- QUIC ----

    fn quic_long_header(first: u8, version: u32, dcid: &[u8], scid: &[u8]) -> Vec<u8> {
        let mut packet = vec![first];
        packet.extend(version.to_be_bytes());
        packet.extend(with_u8_len(dcid));
        packet.extend(with_u8_len(scid));
        // Token length 0, a 2-byte length varint, then "encrypted" bytes.
        packet.extend([0x00, 0x44, 0xe6]);
        packet.extend([0xa5; 64]);
        packet
    }

    #[test]
    fn quic_initials() {
        // v1: packet type 0b00; low bits are protected, so any value.
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, QUIC_V1, &[1; 8], &[])), Some(QUIC_V1));
        assert_eq!(is_quic_initial(&quic_long_header(0xc0, QUIC_V1, &[1; 20], &[2; 20])), Some(QUIC_V1));
        // v2: packet type 0b01 is Initial; 0b00 is 0-RTT.
        assert_eq!(is_quic_initial(&quic_long_header(0xd3, QUIC_V2, &[1; 8], &[2; 4])), Some(QUIC_V2));
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, QUIC_V2, &[1; 8], &[2; 4])), None);
        // v1 0-RTT, Handshake and Retry.
        for first in [0xd3, 0xe3, 0xf3] {
            assert_eq!(is_quic_initial(&quic_long_header(first, QUIC_V1, &[1; 8], &[])), None);
        }
        // Short header, missing fixed bit, version negotiation, unknown version.
        assert_eq!(is_quic_initial(&quic_long_header(0x43, QUIC_V1, &[1; 8], &[])), None);
        assert_eq!(is_quic_initial(&quic_long_header(0x83, QUIC_V1, &[1; 8], &[])), None);
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, 0, &[1; 8], &[])), None);
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, 0xff00_001d, &[1; 8], &[])), None);
        // Connection ids longer than 20.
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, QUIC_V1, &[1; 21], &[])), None);
        assert_eq!(is_quic_initial(&quic_long_header(0xc3, QUIC_V1, &[1; 8], &[2; 21])), None);
        // Cut before the end of the source connection id.
        let packet = quic_long_header(0xc3, QUIC_V1, &[1; 8], &[2; 4]);
        let header_len = 1 + 4 + 1 + 8 + 1 + 4;
        for cut in 0..header_len {
            assert_eq!(is_quic_initial(&packet[..cut]), None, "cut {cut}");
        }
        assert_eq!(is_quic_initial(&packet[..header_len]), Some(QUIC_V1));
        // A TLS record is not QUIC.
        assert_eq!(is_quic_initial(&curl_hello()), None);
    }

    // ---- Properties ----

    fn dns_name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,30}(\\.[A-Za-z0-9_-]{1,30}){0,4}"
    }

    fn protocol_name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(vec![&b"h2"[..], b"http/1.1", b"h3", b"acme-tls/1"]).prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 1..20),
        ]
    }

    fn grease() -> impl Strategy<Value = u16> {
        (0u16..16).prop_map(|n| (n << 12) | 0x0a00 | (n << 4) | 0x0a)
    }

    /// A hello from random parts, and what parsing it must give.
    #[derive(Clone, Debug)]
    struct GeneratedHello {
        hello: Hello,
        server_name: Option<String>,
        alpn: Option<Vec<u8>>,
        versions_max: Option<u16>,
        cipher_suite_count: u16,
    }

    fn generated_hello() -> impl Strategy<Value = GeneratedHello> {
        (
            prop::sample::select(vec![TLS_1_0, TLS_1_1, TLS_1_2, TLS_1_3]),
            prop::sample::select(vec![TLS_1_0, TLS_1_1, TLS_1_2]),
            prop::collection::vec(any::<u8>(), 0..=32),
            prop::collection::vec(prop_oneof![any::<u16>(), grease()], 1..60),
            prop::option::of(dns_name()),
            prop::option::of((prop::option::of(grease()), prop::collection::vec(protocol_name(), 1..4))),
            prop::option::of(prop::collection::vec(prop_oneof![0x0300u16..=0x0304, grease()], 1..8)),
            prop::collection::vec((any::<u16>(), prop::collection::vec(any::<u8>(), 0..40)), 0..5),
        )
            .prop_flat_map(
                |(record_version, legacy_version, session_id, cipher_suites, server_name, alpn, versions, others)| {
                    let mut extensions = vec![];
                    if let Some(name) = &server_name {
                        extensions.push(sni_extension(name.as_bytes()));
                    }
                    let mut first_alpn = None;
                    if let Some((grease, names)) = alpn {
                        let mut list: Vec<Vec<u8>> = grease.map(|g| g.to_be_bytes().to_vec()).into_iter().collect();
                        list.extend(names);
                        let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
                        extensions.push(alpn_extension(&refs));
                        first_alpn =
                            list.into_iter().find(|n| !(n.len() == 2 && is_grease(u16::from_be_bytes([n[0], n[1]]))));
                    }
                    let mut versions_max = None;
                    if let Some(versions) = versions {
                        extensions.push(versions_extension(&versions));
                        versions_max = versions.into_iter().filter(|&v| !is_grease(v)).max();
                    }
                    for (extension_type, data) in others {
                        if ![EXT_SERVER_NAME, EXT_ALPN, EXT_SUPPORTED_VERSIONS].contains(&extension_type) {
                            extensions.push(extension(extension_type, &data));
                        }
                    }
                    let cipher_suite_count = cipher_suites.iter().filter(|&&s| !is_grease(s)).count() as u16;
                    let generated = GeneratedHello {
                        hello: Hello { record_version, legacy_version, session_id, cipher_suites, extensions: None },
                        server_name,
                        alpn: first_alpn,
                        versions_max,
                        cipher_suite_count,
                    };
                    // Extension order is the client's choice; the parser must not care.
                    (Just(generated), Just(extensions).prop_shuffle())
                },
            )
            .prop_map(|(mut generated, extensions)| {
                generated.hello.extensions = Some(extensions);
                generated
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_client_hello(&bytes);
            let _ = is_quic_initial(&bytes);
        }

        /// Random bytes behind a valid record and handshake header get past
        /// the first checks and exercise the length handling.
        #[test]
        fn arbitrary_bodies_never_panic(
            record_len in any::<u16>(),
            handshake_len in 0u32..1 << 24,
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut bytes = vec![CONTENT_TYPE_HANDSHAKE, 3, 1];
            bytes.extend(record_len.to_be_bytes());
            bytes.push(HANDSHAKE_CLIENT_HELLO);
            bytes.extend(&handshake_len.to_be_bytes()[1..]);
            bytes.extend(body);
            let _ = parse_client_hello(&bytes);
        }

        /// Corrupting bytes of a valid hello never panics, and whatever is
        /// still reported as a server name is a valid DNS name.
        #[test]
        fn corrupted_hellos_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = curl_hello();
            for (index, value) in edits {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(hello) = parse_client_hello(&bytes) {
                if let Some(name) = hello.server_name {
                    prop_assert!(is_dns_name(name.as_bytes()));
                }
            }
        }

        #[test]
        fn generated_hellos_round_trip(generated in generated_hello()) {
            let bytes = generated.hello.bytes();
            let expected = ClientHello {
                legacy_version: generated.hello.legacy_version,
                cipher_suite_count: generated.cipher_suite_count,
                server_name: generated.server_name.as_deref(),
                alpn: generated.alpn.as_deref(),
                supported_versions_max: generated.versions_max,
                truncated: false,
            };
            prop_assert_eq!(parse_client_hello(&bytes), Ok(expected));
            check_every_prefix(&bytes, generated.hello.fixed_len(), &expected);
        }
    }
}
