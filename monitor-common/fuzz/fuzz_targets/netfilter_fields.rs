//! Feeds arbitrary text to the netfilter LOG field parser on its own (the
//! syslog target reaches it only through a valid syslog header): the
//! tokenizer, the field iterator and the packet parser, nested packets
//! included. None may panic, and every token must borrow from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_common::netfilter::{self, Token};

const PREFIXES: &[&str] = &["IPT_ICMP ", "IPT_ICMP6 ", "IPT_HTTP "];

fn check(text: &str) {
    for token in netfilter::tokens(text) {
        match token {
            Token::Field(key, value) => assert!(within(text, key) && within(text, value)),
            Token::Word(word) => assert!(within(text, word) && !word.is_empty()),
            Token::Bracketed(inner) => assert!(within(text, inner)),
        }
    }
    for (key, value) in netfilter::fields(text) {
        assert!(within(text, key));
        assert!(value.is_none_or(|v| within(text, v)));
    }
    if let Ok(packet) = netfilter::parse_packet(text) {
        if let Some(Ok(inner)) = packet.inner_packet() {
            let _ = inner.inner_packet();
        }
    }
    if let Ok(line) = netfilter::parse(text, PREFIXES) {
        assert!(within(text, line.prefix));
    }
}

/// True if `part` is a subslice of `whole`.
fn within(whole: &str, part: &str) -> bool {
    let start = whole.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + whole.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        check(text);
    }
    check(&String::from_utf8_lossy(data));
});
