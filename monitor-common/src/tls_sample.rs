//! Well-formed ClientHello records for tests and benchmarks: one builder
//! instead of one per test file.

use alloc::vec::Vec;

/// A TLS 1.2 record holding a ClientHello with one cipher suite and, in
/// this order, `pad` bytes of padding extension (none when 0) and the SNI
/// extension naming `sni`: the larger `pad`, the later the name.
pub fn client_hello(sni: &str, pad: usize) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut exts = Vec::new();
    if pad > 0 {
        exts.extend([0, 21]);
        exts.extend((pad as u16).to_be_bytes());
        exts.resize(exts.len() + pad, 0);
    }
    exts.extend([0, 0]);
    exts.extend(((name.len() + 5) as u16).to_be_bytes());
    exts.extend(((name.len() + 3) as u16).to_be_bytes());
    exts.push(0);
    exts.extend((name.len() as u16).to_be_bytes());
    exts.extend(name);
    let mut body = Vec::from([3, 3]);
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0, 2, 0x13, 0x01]); // one cipher suite
    body.extend([1, 0]); // null compression
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut record = Vec::from([22, 3, 1]);
    record.extend(((body.len() + 4) as u16).to_be_bytes());
    record.push(1); // ClientHello
    record.extend(&(body.len() as u32).to_be_bytes()[1..]);
    record.extend(body);
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_finds_the_name_with_and_without_padding() {
        for pad in [0, 1, 1600] {
            let record = client_hello("a.example.test", pad);
            let hello = crate::tls::parse_client_hello(&record).expect("a whole hello");
            assert_eq!(hello.server_name, Some("a.example.test"), "pad {pad}");
            assert!(record.len() > pad + 50);
        }
    }
}
