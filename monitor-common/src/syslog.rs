//! Syslog line parser for the lines a syslog receiver meets in practice.
//!
//! Recognised, most likely first:
//!
//! 1. RFC 3164 as rsyslog forwards it (`RSYSLOG_TraditionalForwardFormat`)
//!    and `logger --rfc3164` sends it: `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`.
//!    The RFC 3339 timestamp that `RSYSLOG_ForwardFormat` puts in the same
//!    place is accepted too, and so is a missing `<PRI>` (journal and log
//!    file text such as `Nov 24 20:31:02 host kernel: MSG`).
//! 2. RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
//! 3. Bare kernel text without a syslog header: `[ 1234.567890] MSG` as
//!    `dmesg` prints it, the same after a `<PRI>` as `/dev/kmsg`-style raw
//!    output has it, or just `MSG`.
//!
//! A kernel uptime stamp at the start of MSG is split off into
//! [`Message::kernel_uptime`]: imklog forwards it or not depending on its
//! configuration, and downstream parsers should not have to care.
//!
//! The parser is one forward pass over the bytes, every field of the result
//! borrows from the input and nothing is allocated. It never panics: slices
//! are only taken right before or after an ASCII byte the parser has just
//! looked at, which is always a char boundary.

use core::fmt;

/// Longest line accepted, in bytes. Longer lines are [`SyslogError::TooLong`]:
/// no legitimate netfilter line comes close, and the cap bounds the work an
/// abusive sender can cause per datagram.
pub const MAX_LINE: usize = 8192;

/// Highest valid PRI: facility 23 (local7), severity 7 (debug).
const MAX_PRIORITY: u8 = 191;

/// The byte-order mark RFC 5424 allows in front of a UTF-8 MSG.
const BOM: char = '\u{FEFF}';

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Which header a line carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// BSD syslog: `Mmm dd hh:mm:ss` (or RFC 3339) timestamp, host, tag.
    Rfc3164,
    /// IETF syslog, version 1.
    Rfc5424,
    /// No syslog header: kernel text, possibly after a `<PRI>`.
    Bare,
}

/// One parsed syslog line. Every field borrows from the input line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub format: Format,
    /// PRI / 8, when the line had a PRI.
    pub facility: Option<u8>,
    /// PRI % 8, when the line had a PRI.
    pub severity: Option<u8>,
    /// As sent: `Nov  4 20:31:02` or `2026-11-24T20:31:02.123456+00:00`.
    pub timestamp: Option<&'a str>,
    pub hostname: Option<&'a str>,
    /// The RFC 3164 TAG without `[pid]:`, or the RFC 5424 APP-NAME.
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    /// RFC 5424 MSGID.
    pub msg_id: Option<&'a str>,
    /// RFC 5424 STRUCTURED-DATA, all elements verbatim (`[a x="1"][b]`).
    pub structured_data: Option<&'a str>,
    /// `1234.567890` of a leading `[ 1234.567890]` kernel stamp.
    pub kernel_uptime: Option<&'a str>,
    /// The message text: uptime stamp, BOM, leading spaces and trailing
    /// CR/LF removed; otherwise verbatim.
    pub msg: &'a str,
}

impl<'a> Message<'a> {
    fn new(format: Format, priority: Option<u8>) -> Self {
        Message {
            format,
            facility: priority.map(|p| p >> 3),
            severity: priority.map(|p| p & 7),
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: None,
            kernel_uptime: None,
            msg: "",
        }
    }

    /// Sets `msg` and `kernel_uptime` from the raw message text.
    fn with_text(mut self, text: &'a str) -> Self {
        let (uptime, msg) = split_kernel_uptime(text.trim_start_matches(' '));
        self.kernel_uptime = uptime;
        self.msg = msg;
        self
    }
}

/// Why a line was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyslogError {
    /// Nothing but whitespace and line terminators.
    Empty,
    /// Longer than [`MAX_LINE`] bytes.
    TooLong,
    /// A leading `<` that does not open a valid `<0>`..`<191>`.
    BadPriority,
    /// An RFC 5424 VERSION other than 1.
    UnsupportedVersion,
    /// No recognisable timestamp after the PRI, or a malformed one.
    BadTimestamp,
    /// A header field is missing or empty (the line is truncated).
    BadHeader,
    /// RFC 5424 STRUCTURED-DATA that is neither `-` nor well formed.
    BadStructuredData,
}

impl SyslogError {
    /// Every variant, for pre-registering per-reason counters.
    pub const ALL: [SyslogError; 7] = [
        SyslogError::Empty,
        SyslogError::TooLong,
        SyslogError::BadPriority,
        SyslogError::UnsupportedVersion,
        SyslogError::BadTimestamp,
        SyslogError::BadHeader,
        SyslogError::BadStructuredData,
    ];

    /// Stable snake_case name, used as a metrics label.
    pub const fn reason(&self) -> &'static str {
        match self {
            SyslogError::Empty => "empty",
            SyslogError::TooLong => "too_long",
            SyslogError::BadPriority => "bad_priority",
            SyslogError::UnsupportedVersion => "unsupported_version",
            SyslogError::BadTimestamp => "bad_timestamp",
            SyslogError::BadHeader => "bad_header",
            SyslogError::BadStructuredData => "bad_structured_data",
        }
    }
}

impl fmt::Display for SyslogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            SyslogError::Empty => "empty syslog line",
            SyslogError::TooLong => "syslog line longer than 8192 bytes",
            SyslogError::BadPriority => "syslog priority is not <0> to <191>",
            SyslogError::UnsupportedVersion => "unsupported RFC 5424 version",
            SyslogError::BadTimestamp => "missing or malformed syslog timestamp",
            SyslogError::BadHeader => "truncated or empty syslog header field",
            SyslogError::BadStructuredData => "malformed RFC 5424 structured data",
        };
        f.write_str(text)
    }
}

/// Parses one syslog line (one UDP datagram, or one de-framed TCP message).
pub fn parse(line: &str) -> Result<Message<'_>, SyslogError> {
    if line.len() > MAX_LINE {
        return Err(SyslogError::TooLong);
    }
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Err(SyslogError::Empty);
    }
    let Some(after_lt) = line.strip_prefix('<') else {
        return Ok(parse_without_priority(line));
    };
    let (priority, rest) = split_priority(after_lt)?;
    if let Some(rest) = strip_version(rest)? {
        return parse_rfc5424(priority, rest);
    }
    if let Some((timestamp, after)) = split_timestamp(rest) {
        return parse_rfc3164(Some(priority), timestamp, after);
    }
    // `<6>[ 1234.567890] msg`: raw kernel log, a PRI but no syslog header.
    match split_kernel_uptime(rest) {
        (Some(_), _) => Ok(Message::new(Format::Bare, Some(priority)).with_text(rest)),
        (None, _) => Err(SyslogError::BadTimestamp),
    }
}

/// Splits a leading kernel uptime stamp off a message:
/// `[ 1234.567890] text` gives `(Some("1234.567890"), "text")`. A printk
/// caller id following the stamp (`[ 1234.567890][ T42] text`) goes with
/// it. Anything else comes back unchanged with `None`.
pub fn split_kernel_uptime(msg: &str) -> (Option<&str>, &str) {
    let no_stamp = (None, msg);
    let Some(inside) = msg.strip_prefix('[') else {
        return no_stamp;
    };
    let Some((stamp, rest)) = inside.split_once(']') else {
        return no_stamp;
    };
    let stamp = stamp.trim_start_matches(' ');
    if !is_uptime(stamp) {
        return no_stamp;
    }
    let rest = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((caller, after)) if is_printk_caller(caller.trim_start_matches(' ')) => after,
        _ => rest,
    };
    (Some(stamp), rest.trim_start_matches(' '))
}

/// `1234.567890`: what printk prints as `%5lu.%06lu`.
fn is_uptime(stamp: &str) -> bool {
    match stamp.split_once('.') {
        Some((secs, frac)) => is_digits(secs) && is_digits(frac),
        None => false,
    }
}

/// `T42` or `C3`: CONFIG_PRINTK_CALLER's thread or CPU id.
fn is_printk_caller(caller: &str) -> bool {
    caller.strip_prefix(['T', 'C']).is_some_and(is_digits)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `13>rest` (the `<` already consumed) into the PRI value and `rest`.
fn split_priority(s: &str) -> Result<(u8, &str), SyslogError> {
    let (digits, rest) = s.split_once('>').ok_or(SyslogError::BadPriority)?;
    if digits.is_empty() || digits.len() > 3 || !is_digits(digits) {
        return Err(SyslogError::BadPriority);
    }
    let value = digits.bytes().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match u8::try_from(value) {
        Ok(priority) if priority <= MAX_PRIORITY => Ok((priority, rest)),
        _ => Err(SyslogError::BadPriority),
    }
}

/// After the PRI: `Some(rest)` past an RFC 5424 `1 `, `None` if there is no
/// version (an RFC 3164 timestamp such as `Nov` or `2026-11-24T...` follows).
fn strip_version(s: &str) -> Result<Option<&str>, SyslogError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return Ok(None);
    }
    let (version, rest) = s.split_at(digits);
    match rest.as_bytes().first() {
        Some(b' ') if version == "1" => Ok(Some(&rest[1..])),
        Some(b' ') => Err(SyslogError::UnsupportedVersion),
        // `<13>1` and nothing more: a truncated RFC 5424 header.
        None => Err(SyslogError::BadHeader),
        // The year of an RFC 3339 timestamp, or junk for the 3164 path.
        Some(_) => Ok(None),
    }
}

/// Splits a BSD (`Nov  4 20:31:02`) or RFC 3339 timestamp off the front.
fn split_timestamp(s: &str) -> Option<(&str, &str)> {
    let len = bsd_timestamp_len(s.as_bytes()).or_else(|| {
        let end = s.find(' ').unwrap_or(s.len());
        is_rfc3339(&s[..end]).then_some(end)
    })?;
    Some(s.split_at(len))
}

/// Length of a `Mmm dd hh:mm:ss` timestamp at the start of `b`. The day may
/// be space padded (`Nov  4`, the RFC), zero padded or not padded at all.
fn bsd_timestamp_len(b: &[u8]) -> Option<usize> {
    let month = b.get(..3)?;
    if !MONTHS.iter().any(|m| m.as_slice() == month) || b.get(3) != Some(&b' ') {
        return None;
    }
    let (day, time_at) = match (*b.get(4)?, *b.get(5)?) {
        (b' ', d) if d.is_ascii_digit() => (d - b'0', 7),
        (d, b' ') if d.is_ascii_digit() => (d - b'0', 6),
        (t, d) if t.is_ascii_digit() && d.is_ascii_digit() => ((t - b'0') * 10 + d - b'0', 7),
        _ => return None,
    };
    if !(1..=31).contains(&day) || b.get(time_at - 1) != Some(&b' ') {
        return None;
    }
    is_clock(b.get(time_at..time_at + 8)?).then_some(time_at + 8)
}

/// `hh:mm:ss`, with a leap second allowed.
fn is_clock(b: &[u8]) -> bool {
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && two_digits(&b[0..2]).is_some_and(|h| h < 24)
        && two_digits(&b[3..5]).is_some_and(|m| m < 60)
        && two_digits(&b[6..8]).is_some_and(|s| s <= 60)
}

fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [t, u] if t.is_ascii_digit() && u.is_ascii_digit() => Some((t - b'0') * 10 + (u - b'0')),
        _ => None,
    }
}

/// RFC 3339 as RFC 5424 restricts it: `YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm)`.
/// The fraction may have up to 9 digits (RFC 5424 says 6; senders disagree).
fn is_rfc3339(ts: &str) -> bool {
    let b = ts.as_bytes();
    let Some((date, rest)) = b.split_at_checked(10) else {
        return false;
    };
    let date_ok = date[4] == b'-'
        && date[7] == b'-'
        && date[..4].iter().all(u8::is_ascii_digit)
        && two_digits(&date[5..7]).is_some_and(|m| (1..=12).contains(&m))
        && two_digits(&date[8..10]).is_some_and(|d| (1..=31).contains(&d));
    let Some((&separator, rest)) = rest.split_first() else {
        return false;
    };
    let Some((clock, mut rest)) = rest.split_at_checked(8) else {
        return false;
    };
    if !date_ok || !matches!(separator, b'T' | b't') || !is_clock(clock) {
        return false;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', offset @ ..] => {
            offset.len() == 5
                && offset[2] == b':'
                && two_digits(&offset[..2]).is_some_and(|h| h < 24)
                && two_digits(&offset[3..]).is_some_and(|m| m < 60)
        }
        _ => false,
    }
}

/// The part after the timestamp: ` HOST TAG: MSG`, HOST optional.
fn parse_rfc3164<'a>(priority: Option<u8>, timestamp: &'a str, after: &'a str) -> Result<Message<'a>, SyslogError> {
    let Some(after) = after.strip_prefix(' ') else {
        return Err(if after.is_empty() { SyslogError::BadHeader } else { SyslogError::BadTimestamp });
    };
    let after = after.trim_start_matches(' ');
    if after.is_empty() {
        return Err(SyslogError::BadHeader);
    }
    let mut message = Message::new(Format::Rfc3164, priority);
    message.timestamp = Some(timestamp);
    // Local senders (`logger` to /dev/log) leave out HOST; a first word that
    // is already a well-formed TAG tells.
    let text = if let Some(tag) = Tag::parse(after, false) {
        message.app_name = Some(tag.app_name);
        message.proc_id = tag.proc_id;
        tag.rest
    } else {
        let (hostname, rest) = after.split_once(' ').unwrap_or(after.split_at(after.len()));
        message.hostname = Some(hostname);
        match Tag::parse(rest, true) {
            Some(tag) => {
                message.app_name = Some(tag.app_name);
                message.proc_id = tag.proc_id;
                tag.rest
            }
            None => rest,
        }
    };
    Ok(message.with_text(text))
}

/// An RFC 3164 TAG: `name:`, `name[pid]:` or `name[pid]`, followed by a
/// space or the end of the line.
struct Tag<'a> {
    app_name: &'a str,
    proc_id: Option<&'a str>,
    rest: &'a str,
}

impl<'a> Tag<'a> {
    /// `colonless_kernel` also accepts a bare `kernel`: some relays forward
    /// kernel messages as `HOST kernel MSG`. Any other colonless word is
    /// taken as the start of MSG (`IPT_ICMP IN=...` has no TAG).
    fn parse(s: &'a str, colonless_kernel: bool) -> Option<Tag<'a>> {
        let name_len = s.bytes().take_while(|b| !matches!(b, b':' | b'[' | b' ')).count();
        if name_len == 0 {
            return None;
        }
        let (app_name, after_name) = s.split_at(name_len);
        let (proc_id, after_tag) = match after_name.as_bytes().first() {
            Some(b':') => (None, &after_name[1..]),
            Some(b'[') => {
                let (pid, after_pid) = after_name[1..].split_once(']')?;
                if pid.is_empty() || pid.contains(' ') {
                    return None;
                }
                (Some(pid), after_pid.strip_prefix(':').unwrap_or(after_pid))
            }
            _ if colonless_kernel && app_name == "kernel" => (None, after_name),
            _ => return None,
        };
        if !(after_tag.is_empty() || after_tag.starts_with(' ')) {
            return None;
        }
        Some(Tag { app_name, proc_id, rest: after_tag })
    }
}

/// The part after `<PRI>1 `.
fn parse_rfc5424(priority: u8, rest: &str) -> Result<Message<'_>, SyslogError> {
    let mut message = Message::new(Format::Rfc5424, Some(priority));
    let (timestamp, rest) = header_field(rest)?;
    if timestamp.is_some_and(|ts| !is_rfc3339(ts)) {
        return Err(SyslogError::BadTimestamp);
    }
    message.timestamp = timestamp;
    let (hostname, rest) = header_field(rest)?;
    let (app_name, rest) = header_field(rest)?;
    let (proc_id, rest) = header_field(rest)?;
    let (msg_id, rest) = header_field(rest)?;
    message.hostname = hostname;
    message.app_name = app_name;
    message.proc_id = proc_id;
    message.msg_id = msg_id;

    let (structured_data, rest) = if let Some(rest) = rest.strip_prefix('-') {
        (None, rest)
    } else {
        let len = structured_data_len(rest.as_bytes()).ok_or(SyslogError::BadStructuredData)?;
        let (sd, rest) = rest.split_at(len);
        (Some(sd), rest)
    };
    message.structured_data = structured_data;
    let text = match rest.strip_prefix(' ') {
        Some(text) => text.strip_prefix(BOM).unwrap_or(text),
        None if rest.is_empty() => rest,
        None => return Err(SyslogError::BadStructuredData),
    };
    Ok(message.with_text(text))
}

/// One space-terminated RFC 5424 header field; `-` is nil.
fn header_field(s: &str) -> Result<(Option<&str>, &str), SyslogError> {
    match s.split_once(' ') {
        Some(("", _)) | None => Err(SyslogError::BadHeader),
        Some(("-", rest)) => Ok((None, rest)),
        Some((field, rest)) => Ok((Some(field), rest)),
    }
}

/// Length of the SD-ELEMENTs (`[id k="v" ...]...`) at the start of `b`, or
/// `None` if they are malformed or truncated. PARAM-VALUEs may contain any
/// byte; a backslash escapes the next one (`\"`, `\]`, `\\`).
fn structured_data_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    while b.get(at) == Some(&b'[') {
        at = sd_name_end(b, at + 1)?;
        loop {
            match *b.get(at)? {
                b']' => {
                    at += 1;
                    break;
                }
                b' ' => {
                    at = sd_name_end(b, at + 1)?;
                    if b.get(at..at + 2)? != b"=\"" {
                        return None;
                    }
                    at += 2;
                    loop {
                        match *b.get(at)? {
                            b'\\' => at += 2,
                            b'"' => break,
                            _ => at += 1,
                        }
                    }
                    at += 1;
                }
                _ => return None,
            }
        }
    }
    (at > 0).then_some(at)
}

/// End of an SD-NAME (1 to 32 printable ASCII bytes other than `= ]"`).
fn sd_name_end(b: &[u8], start: usize) -> Option<usize> {
    let len = b.get(start..)?.iter().take_while(|&&c| c.is_ascii_graphic() && !matches!(c, b'=' | b']' | b'"')).count();
    (1..=32).contains(&len).then_some(start + len)
}

/// A line without `<PRI>`: journal or log file text with a 3164 header, or
/// bare kernel text.
fn parse_without_priority(line: &str) -> Message<'_> {
    if let Some(message) =
        split_timestamp(line).and_then(|(timestamp, after)| parse_rfc3164(None, timestamp, after).ok())
    {
        return message;
    }
    Message::new(Format::Bare, None).with_text(line.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(line: &str) -> Message<'_> {
        match parse(line) {
            Ok(m) => m,
            Err(e) => panic!("{line:?}: {e}"),
        }
    }

    const KERNEL_MSG: &str = "IPT_ICMP IN=veth0 OUT= MAC=aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:08:00 \
        SRC=10.0.0.2 DST=10.0.0.1 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=12345 DF PROTO=ICMP \
        TYPE=8 CODE=0 ID=4711 SEQ=1";

    #[test]
    fn rfc3164_rsyslog_traditional_forward_with_uptime() {
        let line = format!("<4>Nov 24 20:31:02 myhost kernel: [ 1234.567890] {KERNEL_MSG}");
        let m = ok(&line);
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!((m.facility, m.severity), (Some(0), Some(4)));
        assert_eq!(m.timestamp, Some("Nov 24 20:31:02"));
        assert_eq!(m.hostname, Some("myhost"));
        assert_eq!(m.app_name, Some("kernel"));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.kernel_uptime, Some("1234.567890"));
        assert_eq!(m.msg, KERNEL_MSG);
    }

    #[test]
    fn rfc3164_without_uptime_stamp() {
        let line = format!("<6>Nov 24 20:31:02 myhost kernel: {KERNEL_MSG}");
        let m = ok(&line);
        assert_eq!(m.kernel_uptime, None);
        assert_eq!(m.msg, KERNEL_MSG);
    }

    #[test]
    fn rfc3164_space_padded_day() {
        let m = ok("<13>Nov  4 01:02:03 host app: hello");
        assert_eq!(m.timestamp, Some("Nov  4 01:02:03"));
        assert_eq!(m.hostname, Some("host"));
        assert_eq!(m.msg, "hello");
        assert_eq!((m.facility, m.severity), (Some(1), Some(5)));
    }

    #[test]
    fn rfc3164_zero_padded_and_unpadded_day() {
        assert_eq!(ok("<13>Nov 04 01:02:03 h a: x").timestamp, Some("Nov 04 01:02:03"));
        assert_eq!(ok("<13>Nov 4 01:02:03 h a: x").timestamp, Some("Nov 4 01:02:03"));
    }

    #[test]
    fn rfc3164_tag_forms() {
        let m = ok("<30>Jan  1 00:00:00 h app[123]: started");
        assert_eq!((m.app_name, m.proc_id, m.msg), (Some("app"), Some("123"), "started"));
        let m = ok("<30>Jan  1 00:00:00 h app[123] started");
        assert_eq!((m.app_name, m.proc_id, m.msg), (Some("app"), Some("123"), "started"));
        let m = ok("<4>Jan  1 00:00:00 h kernel [ 5.000001] IPT_X IN=");
        assert_eq!((m.app_name, m.kernel_uptime, m.msg), (Some("kernel"), Some("5.000001"), "IPT_X IN="));
        let m = ok("<4>Jan  1 00:00:00 h kernel:");
        assert_eq!((m.app_name, m.msg), (Some("kernel"), ""));
    }

    #[test]
    fn rfc3164_without_tag_keeps_first_word_in_msg() {
        let m = ok("<4>Nov 24 20:31:02 myhost IPT_ICMP IN=ens3 SRC=1.2.3.4");
        assert_eq!(m.hostname, Some("myhost"));
        assert_eq!(m.app_name, None);
        assert_eq!(m.msg, "IPT_ICMP IN=ens3 SRC=1.2.3.4");
        // A colon glued to the next word is a netfilter prefix, not a TAG.
        let m = ok("<4>Nov 24 20:31:02 myhost IPT_DROP:IN=ens3 SRC=1.2.3.4");
        assert_eq!((m.app_name, m.msg), (None, "IPT_DROP:IN=ens3 SRC=1.2.3.4"));
    }

    #[test]
    fn rfc3164_without_hostname() {
        let m = ok("<13>Nov 24 20:31:02 root: hello world");
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, Some("root"));
        assert_eq!(m.msg, "hello world");
        let m = ok("<13>Nov 24 20:31:02 sshd[42]: hi");
        assert_eq!((m.hostname, m.app_name, m.proc_id), (None, Some("sshd"), Some("42")));
    }

    #[test]
    fn rfc3164_with_rfc3339_timestamp() {
        // RSYSLOG_ForwardFormat.
        let m = ok("<6>2026-11-24T20:31:02.123456+01:00 host kernel: [ 1.5] IPT_X SRC=1.1.1.1");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!(m.timestamp, Some("2026-11-24T20:31:02.123456+01:00"));
        assert_eq!((m.hostname, m.app_name), (Some("host"), Some("kernel")));
        assert_eq!((m.kernel_uptime, m.msg), (Some("1.5"), "IPT_X SRC=1.1.1.1"));
    }

    #[test]
    fn no_priority_journal_and_file_text() {
        let m = ok("Nov 24 20:31:02 vm kernel: IPT_ICMP IN=x");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!((m.facility, m.severity), (None, None));
        assert_eq!((m.hostname, m.app_name, m.msg), (Some("vm"), Some("kernel"), "IPT_ICMP IN=x"));
        let m = ok("2026-11-24T20:19:25.710744+00:00 vm kernel: [ 9340.263393] IPT_ICMP IN=x");
        assert_eq!(m.format, Format::Rfc3164);
        assert_eq!((m.kernel_uptime, m.msg), (Some("9340.263393"), "IPT_ICMP IN=x"));
    }

    #[test]
    fn rfc5424_full() {
        let line = "<165>1 2026-11-24T20:31:02.123456+00:00 host.example app 42 ID47 \
            [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event";
        let m = ok(line);
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!((m.facility, m.severity), (Some(20), Some(5)));
        assert_eq!(m.timestamp, Some("2026-11-24T20:31:02.123456+00:00"));
        assert_eq!(m.hostname, Some("host.example"));
        assert_eq!((m.app_name, m.proc_id, m.msg_id), (Some("app"), Some("42"), Some("ID47")));
        assert_eq!(m.structured_data, Some("[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"]"));
        assert_eq!(m.msg, "An application event");
    }

    #[test]
    fn rfc5424_all_nil() {
        let m = ok("<6>1 - - - - - -");
        assert_eq!(m.format, Format::Rfc5424);
        assert_eq!((m.timestamp, m.hostname, m.app_name), (None, None, None));
        assert_eq!((m.proc_id, m.msg_id, m.structured_data, m.msg), (None, None, None, ""));
        assert_eq!(ok("<6>1 - - - - - - x").msg, "x");
    }

    #[test]
    fn rfc5424_rsyslog_kernel_line() {
        let line = format!("<6>1 2026-11-24T20:19:25.710744+00:00 vm kernel - - - [ 9340.263393] {KERNEL_MSG} \n");
        let m = ok(&line);
        assert_eq!((m.hostname, m.app_name, m.proc_id), (Some("vm"), Some("kernel"), None));
        assert_eq!(m.kernel_uptime, Some("9340.263393"));
        assert_eq!(m.msg.strip_suffix(' '), Some(KERNEL_MSG));
    }

    #[test]
    fn rfc5424_several_sd_elements_with_escapes() {
        let sd = r#"[a@1 k="x\]y" q="say \"hi\""][b@2][c@3 p="[\\]"]"#;
        let line = format!("<14>1 2026-01-01T00:00:00Z h a - - {sd} msg ] \" end");
        let m = ok(&line);
        assert_eq!(m.structured_data, Some(sd));
        assert_eq!(m.msg, "msg ] \" end");
    }

    #[test]
    fn rfc5424_bom_and_crlf() {
        let m = ok("<14>1 2026-01-01T00:00:00Z h a - - - \u{FEFF}[ 12.000001] IPT_A SRC=::1\r\n");
        assert_eq!(m.kernel_uptime, Some("12.000001"));
        assert_eq!(m.msg, "IPT_A SRC=::1");
    }

    #[test]
    fn rfc5424_leading_space_in_msg() {
        // rsyslog with imklog's stamp parsing on: MSG keeps the kernel's space.
        let m = ok("<6>1 2026-11-24T20:22:40.223985+00:00 vm kernel - - -  IPT_ICMP IN=x");
        assert_eq!(m.msg, "IPT_ICMP IN=x");
    }

    #[test]
    fn rfc5424_errors() {
        use SyslogError::*;
        let cases: &[(&str, SyslogError)] = &[
            ("<14>2 2026-01-01T00:00:00Z h a - - - m", UnsupportedVersion),
            ("<14>1", BadHeader),
            ("<14>1 ", BadHeader),
            ("<14>1 2026-01-01T00:00:00Z", BadHeader),
            ("<14>1 2026-01-01T00:00:00Z h a - -", BadHeader),
            ("<14>1 2026-01-01T00:00:00Z  a - - - m", BadHeader),
            ("<14>1 2026-13-01T00:00:00Z h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01 00:00:00Z h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01T00:00:00 h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01T00:00:00.Z h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01T25:00:00Z h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01T00:00:00+0100 h a - - - m", BadTimestamp),
            ("<14>1 2026-01-01T00:00:00Z h a - - ", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - x", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - -x", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id k=\"v", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id k=\"v\\", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id k=\"v\"", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id k=v] m", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [] m", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id]x", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [id ] m", BadStructuredData),
            ("<14>1 2026-01-01T00:00:00Z h a - - [abcdefghijabcdefghijabcdefghijabc] m", BadStructuredData),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Err(*want), "{line:?}");
        }
    }

    #[test]
    fn bare_kernel_lines() {
        let stamped = format!("[ 1234.567890] {KERNEL_MSG}");
        let m = ok(&stamped);
        assert_eq!(m.format, Format::Bare);
        assert_eq!((m.facility, m.timestamp, m.hostname), (None, None, None));
        assert_eq!((m.kernel_uptime, m.msg), (Some("1234.567890"), KERNEL_MSG));

        let m = ok(KERNEL_MSG);
        assert_eq!((m.format, m.kernel_uptime, m.msg), (Format::Bare, None, KERNEL_MSG));

        let m = ok("[123456.000001][  T1234] IPT_X SRC=1.2.3.4\n");
        assert_eq!((m.kernel_uptime, m.msg), (Some("123456.000001"), "IPT_X SRC=1.2.3.4"));

        // dmesg -r / /dev/kmsg style: a PRI and then straight the kernel text.
        let m = ok("<4>[    0.000000] Linux version");
        assert_eq!(m.format, Format::Bare);
        assert_eq!((m.facility, m.severity), (Some(0), Some(4)));
        assert_eq!((m.kernel_uptime, m.msg), (Some("0.000000"), "Linux version"));
    }

    #[test]
    fn uptime_lookalikes_stay_in_msg() {
        for text in ["[abc] x", "[ 12] x", "[1.] x", "[.5] x", "[ 1.5 x", "[] x"] {
            let m = ok(text);
            assert_eq!((m.kernel_uptime, m.msg), (None, text), "{text:?}");
        }
        // A caller-id lookalike after a real stamp is left in the message.
        assert_eq!(split_kernel_uptime("[1.2][X9] y"), (Some("1.2"), "[X9] y"));
    }

    #[test]
    fn priority_bounds() {
        assert_eq!(ok("<0>Nov 24 20:31:02 h k: m").severity, Some(0));
        let m = ok("<191>Nov 24 20:31:02 h k: m");
        assert_eq!((m.facility, m.severity), (Some(23), Some(7)));
        assert_eq!(ok("<006>Nov 24 20:31:02 h k: m").severity, Some(6));
        for bad in ["<192>Nov", "<999>x", "<1000>x", "<>x", "<-1>x", "<1a>x", "<4", "<", "< 4>x", "<+4>x"] {
            assert_eq!(parse(bad), Err(SyslogError::BadPriority), "{bad:?}");
        }
    }

    #[test]
    fn rfc3164_truncations_and_bad_timestamps() {
        use SyslogError::*;
        let cases: &[(&str, SyslogError)] = &[
            ("<4>Nov 24 20:31:02", BadHeader),
            ("<4>Nov 24 20:31:02 ", BadHeader),
            ("<4>Nov 24 20:31:02   ", BadHeader),
            ("<4>Nov 24 20:31", BadTimestamp),
            ("<4>Nov 24", BadTimestamp),
            ("<4>Nov", BadTimestamp),
            ("<4>", BadTimestamp),
            ("<4>hello world", BadTimestamp),
            ("<4>Foo 24 20:31:02 h k: m", BadTimestamp),
            ("<4>Nov 32 20:31:02 h k: m", BadTimestamp),
            ("<4>Nov  0 20:31:02 h k: m", BadTimestamp),
            ("<4>Nov 24 24:00:00 h k: m", BadTimestamp),
            ("<4>Nov 24 20:61:00 h k: m", BadTimestamp),
            ("<4>Nov 24 20:31:02x h k: m", BadTimestamp),
            ("<4>Nov 24 20-31-02 h k: m", BadTimestamp),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Err(*want), "{line:?}");
        }
        // Truncated after the hostname or inside the tag: still a message.
        let m = ok("<4>Nov 24 20:31:02 myhost");
        assert_eq!((m.hostname, m.app_name, m.msg), (Some("myhost"), None, ""));
        let m = ok("<4>Nov 24 20:31:02 myhost kern");
        assert_eq!((m.hostname, m.app_name, m.msg), (Some("myhost"), None, "kern"));
        let m = ok("<4>Nov 24 20:31:02 myhost kernel: [ 12.5");
        assert_eq!((m.kernel_uptime, m.msg), (None, "[ 12.5"));
        let m = ok("<4>Nov 24 20:31:02 h app[12");
        assert_eq!((m.app_name, m.msg), (None, "app[12"));
    }

    #[test]
    fn empty_and_too_long() {
        for empty in ["", "\n", "\r\n", "   ", " \t\r\n"] {
            assert_eq!(parse(empty), Err(SyslogError::Empty), "{empty:?}");
        }
        let long = "x".repeat(MAX_LINE + 1);
        assert_eq!(parse(&long), Err(SyslogError::TooLong));
        let max = "x".repeat(MAX_LINE);
        assert_eq!(ok(&max).msg.len(), MAX_LINE);
    }

    #[test]
    fn crlf_is_stripped_everywhere() {
        assert_eq!(ok("<4>Nov 24 20:31:02 h kernel: m \r\n").msg, "m ");
        assert_eq!(ok("m\n").msg, "m");
        assert_eq!(ok("<14>1 - - - - - - m\r").msg, "m");
    }

    #[test]
    fn non_ascii_never_splits_a_char() {
        for line in [
            "<4>Nov 24 20:31:02 hôst kérnel: ünïcode",
            "<4>Növ 24 20:31:02 h k: m",
            "<4>Nov 2\u{e9} 20:31:02 h k: m",
            "<14>1 2026-01-01T00:00:00Z h\u{e9} a - - [i k=\"\\\u{e9}\"] \u{1F600}",
            "[\u{e9}1.5] x",
            "<14>1 \u{FEFF} - - - - -",
        ] {
            let _ = parse(line);
        }
        let m = ok("<14>1 2026-01-01T00:00:00Z h a - - [i k=\"\\\u{e9}\"] m");
        assert_eq!(m.structured_data, Some("[i k=\"\\\u{e9}\"]"));
    }

    #[test]
    fn reasons_are_distinct_snake_case() {
        for (i, a) in SyslogError::ALL.iter().enumerate() {
            assert!(a.reason().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!a.to_string().is_empty());
            for b in &SyslogError::ALL[i + 1..] {
                assert_ne!(a.reason(), b.reason());
            }
        }
    }

    /// Every `&str` a message hands out.
    fn borrowed<'a>(m: &Message<'a>) -> impl Iterator<Item = &'a str> {
        [m.timestamp, m.hostname, m.app_name, m.proc_id, m.msg_id, m.structured_data, m.kernel_uptime, Some(m.msg)]
            .into_iter()
            .flatten()
    }

    /// True if `part` is a subslice of `whole` (an empty one may sit at its end).
    fn is_within(whole: &str, part: &str) -> bool {
        let start = whole.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        at >= start && at + part.len() <= start + whole.len()
    }

    #[test]
    fn every_field_borrows_from_the_input() {
        // Found by the fuzzer: an empty MSG used to be a static "".
        for line in ["<6>Nov 24 20:22:47 PI", "<6>Nov 24 20:22:47 h k:", "<6>1 - - - - - -", "x"] {
            let m = ok(line);
            assert!(borrowed(&m).all(|part| is_within(line, part)), "{line:?}");
        }
    }

    fn syslogish() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(<[0-9]{0,4}>?)?(1 )?([A-Za-z0-9 :.+TZ\\[\\]\"\\\\=@-]|\u{FEFF}|é){0,120}")
            .expect("valid regex")
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_strings(line in any::<String>()) {
            let _ = parse(&line);
        }

        #[test]
        fn never_panics_on_syslog_shaped_strings(line in syslogish()) {
            if let Ok(m) = parse(&line) {
                for part in borrowed(&m) {
                    prop_assert!(is_within(&line, part), "{:?} not within {:?}", part, line);
                }
            }
        }

        #[test]
        fn truncations_of_valid_lines_never_panic(cut in 0usize..400, which in 0usize..4) {
            let lines = [
                "<4>Nov  4 20:31:02 myhost kernel: [ 1234.567890] IPT_ICMP IN=veth0 SRC=10.0.0.2",
                "<14>1 2026-11-24T20:31:02.123456+00:00 h app 12 ID [a b=\"c\\]\"][d] \u{FEFF}msg",
                "2026-11-24T20:19:25.710744+00:00 vm kernel: [ 9340.263393] IPT_ICMP IN=gold0",
                "[12345.678901][ T12] IPT_ICMP6 IN=x SRC=fd00::1",
            ];
            let line = lines[which];
            let mut end = cut.min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            let _ = parse(&line[..end]);
        }
    }
}
