//! A lone receiver behind a site firewall, reached through a server proxy that learns its
//! address from the receiver's signed heartbeats: the topology uftp 4.10.2's man pages describe
//! for `uftpd -H` and `uftpproxyd -s fp=`.
//!
//! Network A holds the sender and a server proxy; network B one receiver; the router between
//! them forwards unicast only, and into B only replies to what B sent (nftables, conntrack
//! established/related: a stateful firewall or NAT at the receiver's site). The receiver
//! (`uftpd -H proxy -k key`, heartbeats at the default interval) sends HB_REQ to the server
//! proxy, which pins the receiver key's fingerprint (`-s fp=FP`): it challenges the heartbeat,
//! checks the signed answer, and adopts the heartbeat's source as its downstream address. The
//! sender's multicast reaches the proxy on A, which forwards the session by unicast through the
//! pinhole the heartbeats keep open; the receiver answers the proxy.
//!
//! A control shows the firewall is real: a unicast session straight to the receiver (no proxy,
//! no heartbeat) gets no registration, and the firewall counts the drops.
//!
//! The casts: Debian's programs in every position first, then ours in each position in turn,
//! then ours everywhere. The sender runs at its defaults (open group, no timing options); the
//! content is a 1 MiB file and a small tree (a few seconds at uftp 4.10.2's default 1 Mbit/s).
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::time::Duration;

use testnet::routed::RoutedTestbed;
use testnet::Proc;
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::peers::{keygen, Imp};
use uftp_tests::tree::{listing, make_content};

fn run(sender: Imp, proxy: Imp, receiver: Imp) {
    let _lock = serial();
    let bed = RoutedTestbed::new(2, 1);
    bed.shield_b();
    let items = make_content(&bed.dir, 1 << 20);
    let (s_host, p_host, r_host) = (bed.a[0].clone(), bed.a[1].clone(), bed.b[0].clone());
    let key = bed.path("receiver.pem");
    let fp = keygen(&key, "ec:prime256v1");

    let mut cmd = p_host.command(proxy.program("uftpproxyd"));
    cmd.args(["-d", "-s", &format!("fp={fp}"), "-I", &p_host.ifname]);
    let mut p = Proc::spawn(
        &format!("{proxy:?} server proxy"),
        cmd,
        &bed.path("proxy.log"),
    );
    // Listening once its socket is bound (and, for 4.10.2, its key made).
    std::thread::sleep(Duration::from_millis(500));
    assert!(p.running(), "{}", p.log_text());

    let dst = bed.path("dst");
    std::fs::create_dir_all(&dst).expect("destination");
    let mut cmd = r_host.command(receiver.program("uftpd"));
    cmd.args(["-d", "-I", &r_host.ifname, "-D"])
        .arg(&dst)
        .arg("-k")
        .arg(&key)
        .args(["-H", &p_host.ipv4]);
    let r = Proc::spawn(&format!("{receiver:?} uftpd"), cmd, &bed.path("uftpd.log"));
    // Both proxies log the adoption in uftpproxyd 4.10.2's words; the first heartbeat goes out
    // as the receiver starts.
    p.wait_for_line(
        &format!("Using {}:1044 as downstream address", r_host.ipv4),
        Duration::from_secs(10),
    );

    let mut cmd = s_host.command(sender.program("uftp"));
    cmd.args(["-I", &s_host.ifname]).args(&items);
    let mut s = Proc::spawn(&format!("{sender:?} uftp"), cmd, &bed.path("uftp.log"));
    let code = s.wait(Duration::from_secs(120));
    let slog = s.log_text();
    let logs = Proc::stop_all(&mut [p, r]);
    assert_eq!(code, 0, "sender exit code:\n{slog}\n{logs}");
    assert_eq!(
        listing(&dst),
        listing(&bed.path("src")),
        "the receiver's copy differs:\n{slog}\n{logs}"
    );
    let rlog = logs.to_ascii_lowercase();
    assert!(
        rlog.contains("hb_req") || rlog.contains("heartbeat"),
        "no heartbeat in the receiver's log:\n{logs}"
    );
}

/// The control: the site firewall stops a session sent straight to the receiver.
#[test]
fn the_site_firewall_drops_what_the_receiver_did_not_ask_for() {
    let _lock = serial();
    let bed = RoutedTestbed::new(1, 1);
    bed.shield_b();
    let (s_host, r_host) = (bed.a[0].clone(), bed.b[0].clone());
    let dst = bed.path("dst");
    std::fs::create_dir_all(&dst).expect("destination");
    let mut cmd = r_host.command(our_binary("uftpd"));
    cmd.args(["-d", "-I", &r_host.ifname, "-D"]).arg(&dst);
    let _r = Proc::spawn("uftpd", cmd, &bed.path("uftpd.log"));
    std::thread::sleep(Duration::from_millis(300));
    let f = bed.path("f.bin");
    std::fs::write(&f, b"nothing gets through").expect("file");
    // Unicast to the receiver's own address (-M); a short announce phase, as this only shows
    // that nothing arrives.
    let mut cmd = s_host.command(our_binary("uftp"));
    cmd.args([
        "-I",
        &s_host.ifname,
        "-M",
        &r_host.ipv4,
        "-r",
        "0.05",
        "-s",
        "10",
    ])
    .arg(&f);
    let mut s = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = s.wait(Duration::from_secs(60));
    assert_eq!(code, 7, "no client registered:\n{}", s.log_text());
    assert!(bed.shield_dropped() > 0, "the firewall dropped nothing");
}

#[test]
fn debian_everywhere() {
    run(Imp::Debian, Imp::Debian, Imp::Debian);
}

#[test]
fn our_sender_debian_proxy_and_receiver() {
    run(Imp::Ours, Imp::Debian, Imp::Debian);
}

#[test]
fn our_server_proxy_between_debian_ends() {
    run(Imp::Debian, Imp::Ours, Imp::Debian);
}

#[test]
fn our_receiver_behind_debian_sender_and_proxy() {
    run(Imp::Debian, Imp::Debian, Imp::Ours);
}

#[test]
fn ours_everywhere() {
    run(Imp::Ours, Imp::Ours, Imp::Ours);
}
