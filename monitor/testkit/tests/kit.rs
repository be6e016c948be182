//! The kit's own promises: a namespace and its veth pair are gone after a
//! panic unwinds past their guards, and a poll that times out says what it
//! waited for. Needs root (run by `cargo xtask test`).

use std::time::Duration;

use monitor_testkit::{cmd, netns, poll_until, Netns, Veth, VethEnd};

#[test]
fn namespace_and_pair_are_removed_after_a_panic() {
    cmd::require_root().expect("root");
    let pid = std::process::id();
    let (ns, host_if) = (format!("montest-{pid}-kit"), format!("mk{}", pid % 100_000));
    let (ns2, host_if2) = (ns.clone(), host_if.clone());
    let result = std::panic::catch_unwind(move || {
        let guard = Netns::create(&ns2).expect("namespace");
        let veth = Veth::create(VethEnd::root(&host_if2), VethEnd::inside(&guard, "mkin0")).expect("pair");
        veth.b.add_addr("198.18.251.2/24").expect("address");
        veth.b.up().expect("up");
        assert!(!guard.has_default_route().expect("routes"), "no default route unless asked");
        assert!(netns::exists(&ns2));
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert!(!netns::exists(&ns), "the namespace outlived the panic");
    assert!(cmd::run("ip", &["link", "show", "dev", &host_if]).is_err(), "the root-side end outlived the panic");
}

#[test]
fn a_timed_out_poll_says_what_it_waited_for() {
    let err = poll_until(Duration::from_millis(300), "the kettle to boil", || None::<()>).expect_err("a timeout");
    assert_eq!(err.to_string(), "timed out after 0.3 s waiting for the kettle to boil");
    assert_eq!(poll_until(Duration::from_secs(1), "a value", || Some(7)).expect("at once"), 7);
}

#[test]
fn a_daemon_that_exits_at_start_up_is_reported_with_its_log() {
    let log = std::env::temp_dir().join(format!("monitor-testkit-{}.log", std::process::id()));
    // A stand-in for a daemon that refuses its arguments: env(1) knows no --listen.
    let err = monitor_testkit::Daemon::builder("/usr/bin/env").log(&log).start().expect_err("it exits");
    let _ = std::fs::remove_file(&log);
    let text = format!("{err:#}");
    assert!(text.contains("exited at start-up") && text.contains("--listen"), "{text}");
}
