//! The proxies' routed testbed: unicast crosses the router both ways, multicast (even with a TTL
//! that would allow routing) stays on the network it was sent on, and everything is gone
//! afterwards.

use std::process::Stdio;
use std::time::Duration;

use testnet::routed::RoutedTestbed;
use testnet::{sh, Host};
use uftp_tests::fixture::serial;

/// Starts a receiver on `host` counting datagrams to `port` for 2 s, joined to `group` if given.
fn listen(host: &Host, port: u16, group: Option<&str>) -> std::process::Child {
    let join = group.map_or_else(String::new, |g| {
        format!(
            "s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,\
             socket.inet_aton('{g}')+socket.inet_aton('{}'))\n",
            host.ipv4
        )
    });
    host.command("python3")
        .args([
            "-c",
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.bind(('0.0.0.0',{port}))\n{join}s.settimeout(2)\nn=0\n\
                 try:\n  while True: s.recv(100); n+=1\nexcept Exception: pass\nprint(n)"
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3")
}

/// Sends 20 datagrams from `host` to `dest:port` with multicast TTL 8 (out of its interface).
fn send(host: &Host, dest: &str, port: u16) {
    host.run(
        "python3",
        &[
            "-c",
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                 s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,8)\n\
                 s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('{}'))\n\
                 [s.sendto(b'x',('{dest}',{port})) for _ in range(20)]",
                host.ipv4
            ),
        ],
    );
}

fn count(child: std::process::Child) -> u32 {
    let out = child.wait_with_output().expect("listener");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count")
}

#[test]
fn unicast_is_routed_multicast_stays_on_its_network() {
    let _lock = serial();
    let names;
    {
        let bed = RoutedTestbed::new(2, 2);
        names = bed.namespaces().to_vec();
        let (a1, a2, b1, b2) = (&bed.a[0], &bed.a[1], &bed.b[0], &bed.b[1]);
        // Unicast A → B and B → A.
        let rx = listen(b1, 40000, None);
        let back = listen(a2, 40001, None);
        std::thread::sleep(Duration::from_millis(300));
        send(a1, &b1.ipv4, 40000);
        send(b2, &a2.ipv4, 40001);
        assert_eq!(count(rx), 20, "unicast from A reaches B through the router");
        assert_eq!(
            count(back),
            20,
            "unicast from B reaches A through the router"
        );
        // Multicast from A: the A host hears it, the B hosts do not.
        let same = listen(a2, 40002, Some("230.4.4.1"));
        let far1 = listen(b1, 40002, Some("230.4.4.1"));
        let far2 = listen(b2, 40002, Some("230.4.4.1"));
        std::thread::sleep(Duration::from_millis(300));
        send(a1, "230.4.4.1", 40002);
        assert_eq!(count(same), 20, "multicast reaches its own network");
        assert_eq!(count(far1), 0, "multicast crossed the router");
        assert_eq!(count(far2), 0, "multicast crossed the router");
        let fwd = bed.router_run("sysctl", &["-n", "net.ipv4.ip_forward"]);
        assert_eq!(fwd.trim(), "1");
    }
    let list = sh("ip", &["netns", "list"]);
    for ns in names {
        assert!(!list.contains(&ns), "{ns} left behind");
    }
}
