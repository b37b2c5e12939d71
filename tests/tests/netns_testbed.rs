//! The testbed itself: hosts on one bridge reach each other by unicast and multicast, the
//! nftables loss rule drops about the share it is set to, and everything is gone afterwards.

use std::time::Duration;

use testnet::Testbed;
use uftp_tests::fixture::serial;

#[test]
fn hosts_talk_and_loss_drops_the_set_share() {
    let _lock = serial();
    let names;
    {
        let bed = Testbed::new(2);
        names = bed.hosts.iter().map(|h| h.ns.clone()).collect::<Vec<_>>();
        let (a, b) = (bed.host(0), bed.host(1));
        b.set_loss(50);
        // 400 datagrams from a to b through python's sockets inside the namespaces.
        let recv = b
            .command("python3")
            .args([
                "-c",
                "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.bind(('0.0.0.0',40000));s.settimeout(2)\nn=0\n\
                 try:\n  while True: s.recv(100); n+=1\nexcept Exception: pass\nprint(n)",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        a.run(
            "python3",
            &[
                "-c",
                &format!(
                    "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                     [s.sendto(b'x',('{}',40000)) for _ in range(400)]",
                    b.ipv4
                ),
            ],
        );
        let out = recv.wait_with_output().unwrap();
        let got: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(
            (120..280).contains(&got),
            "about half of 400 arrive, got {got}"
        );
        assert!(
            b.dropped() >= 100,
            "the rule counted its drops: {}",
            b.dropped()
        );
        assert_eq!(a.dropped(), 0);
    }
    let list = testnet::sh("ip", &["netns", "list"]);
    for ns in names {
        assert!(!list.contains(&ns), "{ns} left behind");
    }
}
