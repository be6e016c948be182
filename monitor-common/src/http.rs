//! HTTP/1.x request and status lines from the first bytes of a TCP payload.
//!
//! The input is whatever the XDP program captured: at most the first
//! [`crate::event::PAYLOAD_CAPTURE`] bytes of one segment, so anything may be
//! cut off. Fields are returned only when they are either complete or flagged
//! `truncated`; nothing is ever guessed. The request parser runs on every
//! payload to an HTTP port, so it rejects TLS records and binary data within
//! the first byte or two.

/// Longest method accepted. RFC 9110 sets no limit, but real extension
/// methods (WebDAV's `VERSION-CONTROL`, 15 bytes) are short, and a bound
/// keeps random token soup from being taken for a request.
pub const MAX_METHOD_LEN: usize = 16;

/// The start of an HTTP/1.x request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// An RFC 9110 token, e.g. `GET`, or `PRI` for the HTTP/2 preface.
    pub method: &'a str,
    /// Visible ASCII, never empty; possibly cut short (see `truncated`).
    pub target: &'a str,
    /// `HTTP/1.1` etc.; `None` when the capture ends before it.
    pub version: Option<&'a str>,
    /// The first `Host` header's value, if its whole line was captured.
    pub host: Option<&'a str>,
    /// The capture ends inside the request line, so `target` may be
    /// incomplete and `version` is missing.
    pub truncated: bool,
}

/// The start of an HTTP/1.x response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// `HTTP/1.1` etc.
    pub version: &'a str,
    /// 100..=599.
    pub code: u16,
    /// Possibly empty; possibly cut short (see `truncated`).
    pub reason: &'a str,
    /// The capture ends inside the status line, so `reason` may be incomplete.
    pub truncated: bool,
}

/// RFC 9110 `tchar`: the characters of methods and header names.
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// RFC 5234 `VCHAR`: visible ASCII, excluding space.
const fn is_vchar(b: u8) -> bool {
    matches!(b, 0x21..=0x7e)
}

/// Converts bytes already checked to be ASCII. `from_utf8` cannot fail on
/// them, but going through it keeps the crate free of `unsafe`.
fn ascii_str(bytes: &[u8]) -> Option<&str> {
    core::str::from_utf8(bytes).ok()
}

/// Outcome of matching `HTTP/DIGIT.DIGIT` at the start of some bytes.
enum Version<'a> {
    /// The version, and the bytes after it.
    Complete(&'a str, &'a [u8]),
    /// The bytes are a proper prefix of a version.
    Cut,
    /// The bytes are not a version.
    Invalid,
}

const VERSION_LEN: usize = b"HTTP/1.1".len();

fn parse_version(bytes: &[u8]) -> Version<'_> {
    let matches_pattern = bytes.iter().take(VERSION_LEN).enumerate().all(|(i, &b)| match i {
        0..=4 => b == b"HTTP/"[i],
        6 => b == b'.',
        _ => b.is_ascii_digit(),
    });
    if !matches_pattern {
        return Version::Invalid;
    }
    if bytes.len() < VERSION_LEN {
        return Version::Cut;
    }
    let (version, rest) = bytes.split_at(VERSION_LEN);
    match ascii_str(version) {
        Some(version) => Version::Complete(version, rest),
        None => Version::Invalid,
    }
}

/// Skips the end of a line, accepting the bare LF that RFC 9112 §2.2 allows
/// recipients to accept. Returns the bytes after it (empty if the capture
/// ends at or inside the terminator), or `None` if the line goes on.
fn skip_line_end(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [] | [b'\r'] => Some(&[]),
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => Some(rest),
        _ => None,
    }
}

/// RFC 9110 optional whitespace around a field value.
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The first `Host` header in a header section. Gives up (rather than
/// guess) at a cut line, the blank line ending the section, or anything
/// that is not `token ":" value`.
fn find_host(mut headers: &[u8]) -> Option<&str> {
    loop {
        let line_len = headers.iter().position(|&b| b == b'\n')?;
        let (line, rest) = headers.split_at(line_len);
        headers = rest.get(1..)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        if name.eq_ignore_ascii_case(b"host") {
            let value = trim_ows(value.get(1..)?);
            if value.is_empty() || !value.iter().all(|&b| is_vchar(b)) {
                return None;
            }
            return ascii_str(value);
        }
    }
}

/// Parses `method SP target SP HTTP/x.y CRLF` at the start of `payload`, and
/// the `Host` header if it follows within the captured bytes.
///
/// Returns `None` for anything that is not a request line, including the
/// version-less HTTP/0.9 form: it has not been sent in decades, and
/// accepting it would let more non-HTTP text through. The HTTP/2
/// prior-knowledge preface (`PRI * HTTP/2.0`) parses as method `PRI`.
pub fn parse_request_line(payload: &[u8]) -> Option<RequestLine<'_>> {
    // A method is at most MAX_METHOD_LEN token bytes followed by a space; a
    // TLS record (0x16) or binary data fails on the first byte.
    let method_len = payload.iter().take(MAX_METHOD_LEN + 1).position(|&b| !is_tchar(b))?;
    if method_len == 0 {
        return None;
    }
    let (method, rest) = payload.split_at(method_len);
    let rest = rest.strip_prefix(b" ")?;

    let target_len = rest.iter().position(|&b| !is_vchar(b)).unwrap_or(rest.len());
    if target_len == 0 {
        return None;
    }
    let (target, rest) = rest.split_at(target_len);
    let mut line = RequestLine {
        method: ascii_str(method)?,
        target: ascii_str(target)?,
        version: None,
        host: None,
        truncated: true,
    };

    match rest {
        [] => return Some(line),
        [b' ', rest @ ..] => match parse_version(rest) {
            Version::Complete(version, rest) => {
                line.version = Some(version);
                line.truncated = false;
                line.host = find_host(skip_line_end(rest)?);
            }
            Version::Cut => {}
            Version::Invalid => return None,
        },
        // A control character or non-ASCII byte in the target.
        _ => return None,
    }
    Some(line)
}

/// Parses `HTTP/x.y SP code SP reason CRLF` at the start of `payload`.
///
/// Returns `None` unless at least the version and the whole status code were
/// captured, and for reason phrases with non-ASCII (`obs-text`) bytes, which
/// RFC 9110 deprecates and which could not be returned as `&str` anyway.
pub fn parse_status_line(payload: &[u8]) -> Option<StatusLine<'_>> {
    let Version::Complete(version, rest) = parse_version(payload) else {
        return None;
    };
    let rest = rest.strip_prefix(b" ")?;
    let (digits, rest) = rest.split_first_chunk::<3>()?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits.iter().fold(0u16, |code, &d| code * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&code) {
        return None;
    }

    // RFC 9112 requires the space even before an empty reason, but servers
    // that omit it are common enough to tolerate.
    let reason_and_rest = match rest {
        [] => &[],
        [b' ', reason @ ..] => reason,
        [b'\r' | b'\n', ..] => rest,
        _ => return None,
    };
    let reason_len = reason_and_rest
        .iter()
        .position(|&b| !(is_vchar(b) || b == b' ' || b == b'\t'))
        .unwrap_or(reason_and_rest.len());
    let (reason, rest) = reason_and_rest.split_at(reason_len);
    // Validates the terminator; the headers after it are of no interest.
    skip_line_end(rest)?;
    Some(StatusLine { version, code, reason: ascii_str(reason)?, truncated: rest.is_empty() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(
        method: &'static str,
        target: &'static str,
        version: Option<&'static str>,
        host: Option<&'static str>,
        truncated: bool,
    ) -> Option<RequestLine<'static>> {
        Some(RequestLine { method, target, version, host, truncated })
    }

    #[test]
    fn standard_methods() {
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] {
            let payload = format!("{method} /x HTTP/1.1\r\nHost: a\r\n\r\n");
            let line = parse_request_line(payload.as_bytes()).expect(method);
            assert_eq!(line.method, method);
            assert_eq!(line.target, "/x");
            assert_eq!(line.version, Some("HTTP/1.1"));
            assert_eq!(line.host, Some("a"));
            assert!(!line.truncated);
        }
    }

    #[test]
    fn typical_get() {
        let payload =
            b"GET /index.html?q=1 HTTP/1.1\r\nUser-Agent: curl/8.0\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            parse_request_line(payload),
            request("GET", "/index.html?q=1", Some("HTTP/1.1"), Some("example.com:8080"), false)
        );
    }

    #[test]
    fn request_target_forms() {
        assert_eq!(
            parse_request_line(b"CONNECT example.com:443 HTTP/1.1\r\n"),
            request("CONNECT", "example.com:443", Some("HTTP/1.1"), None, false)
        );
        assert_eq!(
            parse_request_line(b"OPTIONS * HTTP/1.0\r\n"),
            request("OPTIONS", "*", Some("HTTP/1.0"), None, false)
        );
        assert_eq!(
            parse_request_line(b"GET http://a.example/x HTTP/1.1\r\n"),
            request("GET", "http://a.example/x", Some("HTTP/1.1"), None, false)
        );
    }

    #[test]
    fn extension_methods() {
        assert_eq!(parse_request_line(b"PROPFIND / HTTP/1.1\r\n").map(|l| l.method), Some("PROPFIND"));
        assert_eq!(parse_request_line(b"VERSION-CONTROL / HTTP/1.1\r\n").map(|l| l.method), Some("VERSION-CONTROL"));
        let sixteen = b"ABCDEFGHIJKLMNOP / HTTP/1.1\r\n";
        assert_eq!(parse_request_line(sixteen).map(|l| l.method), Some("ABCDEFGHIJKLMNOP"));
        let seventeen = b"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n";
        assert_eq!(parse_request_line(seventeen), None);
    }

    #[test]
    fn http2_preface() {
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        assert_eq!(parse_request_line(preface), request("PRI", "*", Some("HTTP/2.0"), None, false));
    }

    #[test]
    fn host_header_variants() {
        let host = |payload: &'static [u8]| parse_request_line(payload).and_then(|l| l.host);
        assert_eq!(host(b"GET / HTTP/1.1\r\nhOsT:a.b\r\n\r\n"), Some("a.b"));
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: \t a.b \t\r\n\r\n"), Some("a.b"));
        assert_eq!(host(b"GET / HTTP/1.1\nHost: a.b\n\n"), Some("a.b"));
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n"), Some("[::1]:80"));
        // The first one wins.
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n"), Some("a"));
        // A cut Host line is not reported: a partial name would mislead.
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: exam"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: example.com\r"), None);
        // Not after the end of the header section (that is the body).
        assert_eq!(host(b"GET / HTTP/1.1\r\n\r\nHost: a\r\n"), None);
        // Empty or with inner whitespace.
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost:\r\n\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), None);
        // Similar names are not Host.
        assert_eq!(host(b"GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n"), None);
        // Garbage ends the search.
        assert_eq!(host(b"GET / HTTP/1.1\r\nno colon here\r\nHost: a\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\n : x\r\nHost: a\r\n"), None);
        assert_eq!(host(b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n"), None);
    }

    #[test]
    fn cut_inside_target_or_version() {
        assert_eq!(parse_request_line(b"GET /very/long/pa"), request("GET", "/very/long/pa", None, None, true));
        assert_eq!(parse_request_line(b"GET /x "), request("GET", "/x", None, None, true));
        assert_eq!(parse_request_line(b"GET /x HTTP/1."), request("GET", "/x", None, None, true));
        assert_eq!(parse_request_line(b"GET /x H"), request("GET", "/x", None, None, true));
        // Version complete, terminator not captured: nothing is missing.
        assert_eq!(parse_request_line(b"GET /x HTTP/1.1"), request("GET", "/x", Some("HTTP/1.1"), None, false));
        assert_eq!(parse_request_line(b"GET /x HTTP/1.1\r"), request("GET", "/x", Some("HTTP/1.1"), None, false));
    }

    #[test]
    fn cut_before_target() {
        assert_eq!(parse_request_line(b""), None);
        assert_eq!(parse_request_line(b"G"), None);
        assert_eq!(parse_request_line(b"GET"), None);
        assert_eq!(parse_request_line(b"GET "), None);
    }

    /// A full-size capture of a request with a long target, as the XDP
    /// program delivers it.
    #[test]
    fn cut_at_capture_limit() {
        let mut payload = b"GET /".to_vec();
        payload.resize(crate::event::PAYLOAD_CAPTURE, b'a');
        let line = parse_request_line(&payload).expect("request");
        assert_eq!(line.target.len(), crate::event::PAYLOAD_CAPTURE - 4);
        assert!(line.truncated);
        assert_eq!(line.version, None);
    }

    #[test]
    fn rejects_non_requests() {
        let cases: &[&[u8]] = &[
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x00\x00\x00\x00",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b" GET / HTTP/1.1\r\n",
            b"GET  / HTTP/1.1\r\n",
            b"GET\t/ HTTP/1.1\r\n",
            b"GET / HTTP/1.1 \r\n",
            b"GET / HTTP/1.1x\r\n",
            b"GET / HTTP/11\r\n",
            b"GET / FTP/1.0\r\n",
            b"GET / http/1.1\r\n",
            b"GET /\r\n",
            b"GET /\x00 HTTP/1.1\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n",
            b"G\xc3\x89T / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\rX",
        ];
        for case in cases {
            assert_eq!(parse_request_line(case), None, "{:?}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn status_lines() {
        let status = |code, reason, truncated| Some(StatusLine { version: "HTTP/1.1", code, reason, truncated });
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), status(200, "OK", false));
        assert_eq!(parse_status_line(b"HTTP/1.1 404 Not Found\n"), status(404, "Not Found", false));
        assert_eq!(parse_status_line(b"HTTP/1.1 204 \r\n"), status(204, "", false));
        assert_eq!(parse_status_line(b"HTTP/1.1 204\r\n"), status(204, "", false));
        assert_eq!(parse_status_line(b"HTTP/1.1 101 Switching Protocols\r"), status(101, "Switching Protocols", false));
        assert_eq!(parse_status_line(b"HTTP/1.1 100 Continue"), status(100, "Continue", true));
        assert_eq!(parse_status_line(b"HTTP/1.1 500 Internal Serv"), status(500, "Internal Serv", true));
        assert_eq!(parse_status_line(b"HTTP/1.1 599"), status(599, "", true));
        assert_eq!(parse_status_line(b"HTTP/1.1 302 "), status(302, "", true));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503 Slow\tDown\r\n"),
            Some(StatusLine { version: "HTTP/1.0", code: 503, reason: "Slow\tDown", truncated: false })
        );
    }

    #[test]
    fn rejects_non_status_lines() {
        let cases: &[&[u8]] = &[
            b"",
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 099 Low\r\n",
            b"HTTP/1.1 600 High\r\n",
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1  200 OK\r\n",
            b"HTTP/1.1 200 Caf\xc3\xa9\r\n",
            b"HTTP/1.1 200 OK\x00\r\n",
            b"HTTP/1.1 200 OK\rX",
            b"HTTP/2 200\r\n",
            b"GET / HTTP/1.1\r\n",
            b"\x16\x03\x03\x00\x10",
        ];
        for case in cases {
            assert_eq!(parse_status_line(case), None, "{:?}", String::from_utf8_lossy(case));
        }
    }

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",])
                .prop_map(String::from),
            "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        ]
    }

    fn target() -> impl Strategy<Value = String> {
        prop_oneof![Just("*".to_owned()), "/[!-~]{0,120}", "[a-z0-9.-]{1,30}:[0-9]{1,5}"]
    }

    /// A request as a client would send it, and the byte offsets where its
    /// parts end, to predict what each prefix of it parses to.
    #[derive(Debug)]
    struct Generated {
        method: String,
        target: String,
        version: String,
        host: String,
        bytes: Vec<u8>,
        /// Just past the Host header's LF.
        host_line_end: usize,
    }

    fn generated_request() -> impl Strategy<Value = Generated> {
        (
            method(),
            target(),
            0u8..=2,
            "[a-z0-9]([a-z0-9.-]{0,40})(:[0-9]{1,5})?",
            "[ \t]{0,2}",
            "[ \t]{0,2}",
            prop::collection::vec(("[A-Za-z0-9-]{1,20}", "[ -~]{0,30}"), 0..4),
            any::<bool>(),
        )
            .prop_map(|(method, target, minor, host, ows1, ows2, headers, bare_lf)| {
                let eol = if bare_lf { "\n" } else { "\r\n" };
                let version = format!("HTTP/1.{minor}");
                let mut text = format!("{method} {target} {version}{eol}");
                for (name, value) in headers {
                    // Keep generated headers from accidentally being Host.
                    let name = if name.eq_ignore_ascii_case("host") { "X-Host".to_owned() } else { name };
                    text.push_str(&format!("{name}: {value}{eol}"));
                }
                text.push_str(&format!("Host:{ows1}{host}{ows2}{eol}"));
                let host_line_end = text.len();
                text.push_str(&format!("Accept: */*{eol}{eol}"));
                Generated { method, target, version, host, bytes: text.into_bytes(), host_line_end }
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_request_line(&bytes);
            let _ = parse_status_line(&bytes);
        }

        /// Random bytes after a plausible start reach the deeper code paths.
        #[test]
        fn arbitrary_tails_never_panic(
            start in prop::sample::select(vec![&b"GET /"[..], b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost:", b"HTTP/1.1 200"]),
            tail in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let bytes = [start, &tail].concat();
            if let Some(line) = parse_request_line(&bytes) {
                prop_assert!(!line.target.is_empty());
                prop_assert!(line.version.is_some() != line.truncated);
                prop_assert!(line.host.is_none() || line.version.is_some());
            }
            if let Some(status) = parse_status_line(&bytes) {
                prop_assert!((100..=599).contains(&status.code));
            }
        }

        #[test]
        fn generated_requests_round_trip(request in generated_request()) {
            let line = parse_request_line(&request.bytes);
            prop_assert_eq!(line, Some(RequestLine {
                method: &request.method,
                target: &request.target,
                version: Some(request.version.as_str()),
                host: Some(request.host.as_str()),
                truncated: false,
            }));
        }

        /// Every cut of a valid request parses to a consistent prefix of it.
        #[test]
        fn generated_requests_cut_anywhere(request in generated_request()) {
            let target_start = request.method.len() + 1;
            let target_end = target_start + request.target.len();
            let version_end = target_end + 1 + request.version.len();
            for cut in 0..=request.bytes.len() {
                let line = parse_request_line(&request.bytes[..cut]);
                if cut <= target_start {
                    prop_assert_eq!(line, None);
                    continue;
                }
                let line = line.expect("a prefix with a target byte parses");
                prop_assert_eq!(line.method, request.method.as_str());
                prop_assert_eq!(line.target, &request.target[..(cut.min(target_end) - target_start)]);
                prop_assert_eq!(line.truncated, cut < version_end);
                prop_assert_eq!(line.version, (cut >= version_end).then_some(request.version.as_str()));
                prop_assert_eq!(line.host, (cut >= request.host_line_end).then_some(request.host.as_str()));
            }
        }

        #[test]
        fn generated_status_lines_round_trip(
            minor in 0u8..=1,
            code in 100u16..=599,
            reason in "[ -~]{0,40}",
        ) {
            let reason = reason.trim_end();
            let text = format!("HTTP/1.{minor} {code} {reason}\r\nServer: x\r\n\r\n");
            let version = format!("HTTP/1.{minor}");
            prop_assert_eq!(
                parse_status_line(text.as_bytes()),
                Some(StatusLine { version: &version, code, reason, truncated: false })
            );
        }
    }
}
