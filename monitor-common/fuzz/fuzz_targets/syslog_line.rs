//! Feeds arbitrary bytes through the syslog parser and then the netfilter
//! parser, the way the daemon does for every received datagram. Both must
//! return (`Ok` or `Err`) without panicking, and everything they hand back
//! must borrow from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_common::{netfilter, syslog};

const PREFIXES: &[&str] = &["IPT_ICMP ", "IPT_ICMP6 "];

fn check(line: &str) {
    let Ok(message) = syslog::parse(line) else {
        return;
    };
    assert!(within(line, message.msg));
    if let Ok(parsed) = netfilter::parse(message.msg, PREFIXES) {
        assert!(parsed.src.is_some() || parsed.dst.is_some());
        assert!(within(line, parsed.prefix));
        if let Some(inner) = parsed.inner {
            assert!(within(line, inner));
            let _ = netfilter::parse_packet(inner);
        }
    }
    let _ = netfilter::parse_packet(message.msg);
}

/// True if `part` is a subslice of `whole`.
fn within(whole: &str, part: &str) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = core::str::from_utf8(data) {
        check(line);
    }
    check(&String::from_utf8_lossy(data));
});
