//! Encrypted sessions between our programs and Debian's uftp 4.10.2, both ways, each receiver
//! in its own network namespace, every received file checked by sha256 against the source:
//!
//! - a. `-e ecdh_ecdsa` (P-256) with AES-256-GCM and SHA-256;
//! - b. `-e ecdh_ecdsa:secp384r1` with a P-384 server key, AES-128-CCM and SHA-384;
//! - c. `-e ecdh_rsa` with an RSA-2048 server key and AES-256-GCM;
//! - d. `-e rsa` with AES-256-CBC and HMAC-SHA-256 (ours needs `--allow-weak` for CBC);
//! - e. a closed group with client authentication (`-c`, `-H @file` pinning `ID|fingerprint`):
//!   the pinned clients receive, a client holding another key than its pinned one gets nothing;
//! - f. a receiver's server list (`-S`, `ID|IP|fingerprint`): the listed server (same ID and
//!   address) holding another key is refused, with a log line saying so, and nothing arrives;
//!   holding the listed key, it is accepted.
//!
//! Every receiver runs with `-E` (encrypted sessions only), and the sender's first ANNOUNCE is
//! captured (tcpdump in the sender's namespace) and decoded: it must carry exactly the key
//! exchange, cipher, hash, signature type, server key (by fingerprint when given with `-k`) and
//! ECDH curve the test asked for, so a sender that ignored an option cannot pass. When Debian's
//! uftp sends, a Debian uftpd configured like ours is in the same group as a control: if it fails
//! too, the test's setup is wrong, not our receiver.
//!
//! Key rule (digest §5.2): a 4.10.2 client refuses a server unless it holds a key of the same
//! type and size (or curve) as the server's, so every receiver gets `-k` with a matching key,
//! generated here by Debian's `uftp_keymgt`.
//!
//! Needs root, `ip`, `nft`, `tcpdump` and the `uftp` package (`cargo xtask setup`).

use std::path::PathBuf;
use std::thread::sleep;
use std::time::{Duration, Instant};

use proto_core::crypto::{CurveId, KeyBlob, KeyBlobKind};
use proto_core::wire::{
    HashType, KeyExchange, KeyType, Message, Repr, SigType, ENC_FLAG_CLIENT_AUTH,
};
use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::tree::{listing, make_content, names};

/// Size of the big file of each transfer (the rest of the content is a small tree).
const SIZE: u64 = 3 << 20;
/// The sender's ID (`-U`), the same for every server of a test so that only keys differ.
const SERVER_ID: &str = "0x0E000001";
/// A sender that runs longer than this has failed (a transfer takes about a second, an
/// announcement phase nobody answers 3 s).
const SENDER_LIMIT: Duration = Duration::from_secs(20);

/// Which implementation runs a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Ours,
    Debian,
}

fn uid(i: usize) -> String {
    format!("0x0E0000{:02X}", 0x10 + i)
}

/// A private key file and its fingerprint, as `uftp_keymgt` prints it.
#[derive(Debug, Clone)]
struct Key {
    path: PathBuf,
    fingerprint: String,
}

impl Key {
    fn arg(&self) -> String {
        self.path.to_str().expect("utf-8 path").to_string()
    }
}

/// Generates a key with Debian's `uftp_keymgt -g spec` (`ec:prime256v1`, `rsa:2048`, …).
fn keygen(bed: &Testbed, name: &str, spec: &str) -> Key {
    let path = bed.path(&format!("{name}.pem"));
    let fingerprint = uftp_tests::peers::keygen(&path, spec);
    Key { path, fingerprint }
}

/// One receiver of a test.
#[derive(Debug)]
struct Receiver {
    imp: Imp,
    uid: String,
    dest: PathBuf,
    proc: Proc,
}

/// One run of a sender, with the capture of its first ANNOUNCE.
#[derive(Debug)]
struct Run {
    sender: Proc,
    tcpdump: Proc,
    pcap: PathBuf,
    number: usize,
}

/// A testbed: host 0 sends, hosts 1.. receive.
#[derive(Debug)]
struct Net {
    bed: Testbed,
    receivers: Vec<Receiver>,
    runs: usize,
}

impl Net {
    fn new(receivers: usize) -> Net {
        Net {
            bed: Testbed::new(receivers + 1),
            receivers: Vec::new(),
            runs: 0,
        }
    }

    /// Starts a receiver on the next host with `extra` options (keys, `-E`, `-S`, …) and waits
    /// until it listens.
    fn start_receiver(&mut self, imp: Imp, extra: &[String]) {
        let i = self.receivers.len() + 1;
        let h = self.bed.host(i).clone();
        let dest = self.bed.path(&format!("dest{i}"));
        std::fs::create_dir_all(&dest).expect("dest dir");
        let (name, mut cmd) = match imp {
            Imp::Ours => {
                let mut c = h.command(our_binary("uftpd"));
                c.args(["-x", "3", "-B", "4194304"]);
                (format!("our uftpd{i}"), c)
            }
            Imp::Debian => {
                let mut c = h.command("uftpd");
                c.args(["-x", "2"]);
                (format!("debian uftpd{i}"), c)
            }
        };
        cmd.args(["-d", "-U", &uid(i), "-I", &h.ifname, "-D"])
            .arg(&dest)
            .args(extra);
        let mut proc = Proc::spawn(&name, cmd, &self.bed.path(&format!("uftpd{i}.log")));
        // Ours logs once its socket is bound; Debian's last start-up line (its key) follows its
        // bind.
        let ready = match imp {
            Imp::Ours => "listening on port",
            Imp::Debian => "Loaded",
        };
        proc.wait_for_line(ready, Duration::from_secs(10));
        self.receivers.push(Receiver {
            imp,
            uid: uid(i),
            dest,
            proc,
        });
    }

    /// Starts a sender on host 0 with `args` (crypto, `-H`, …) before the items, capturing its
    /// first datagram to port 1044 (the ANNOUNCE).
    fn sender(&mut self, imp: Imp, args: &[String], items: &[PathBuf]) -> Run {
        self.runs += 1;
        let number = self.runs;
        let h = self.bed.host(0).clone();
        let pcap = self.bed.path(&format!("announce-run{number}.pcap"));
        let mut dump = h.command("tcpdump");
        // -Z root: Debian's tcpdump otherwise drops to its own user, who cannot write here.
        dump.args(["-Z", "root", "-U", "-n", "-c", "1", "-i", &h.ifname, "-w"])
            .arg(&pcap)
            .args([
                "udp", "and", "dst", "port", "1044", "and", "src", "host", &h.ipv4,
            ]);
        let mut tcpdump = Proc::spawn(
            "tcpdump",
            dump,
            &self.bed.path(&format!("tcpdump-run{number}.log")),
        );
        tcpdump.wait_for_line("listening on", Duration::from_secs(10));
        let mut cmd = match imp {
            Imp::Ours => {
                let mut c = h.command(our_binary("uftp"));
                c.args(["-r", "0.05:0.01:1"]);
                c
            }
            Imp::Debian => {
                let mut c = h.command("uftp");
                c.args(["-r", "0.05"]);
                c
            }
        };
        cmd.args(["-U", SERVER_ID, "-I", &h.ifname, "-R", "100000", "-x", "2"])
            .args(args)
            .args(items);
        let name = match imp {
            Imp::Ours => "our uftp",
            Imp::Debian => "debian uftp",
        };
        let sender = Proc::spawn(name, cmd, &self.bed.path(&format!("uftp-run{number}.log")));
        Run {
            sender,
            tcpdump,
            pcap,
            number,
        }
    }

    /// The receivers' IDs, comma-separated (`-H`).
    fn ids(&self) -> String {
        self.receivers
            .iter()
            .map(|r| r.uid.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn logs(&self) -> String {
        self.receivers
            .iter()
            .map(|r| format!("--- {}:\n{}", r.proc.name, r.proc.log_text()))
            .collect()
    }

    /// Receiver `i` (0-based) holds exactly the tree at `src`: every file with its sha256, no
    /// temporaries, nothing else.
    fn check_received(&self, i: usize, run: &Run) {
        let r = &self.receivers[i];
        let got = listing(&r.dest);
        let want = listing(&self.bed.path("src"));
        assert_eq!(
            got,
            want,
            "{} ({:?}, {}) did not receive the content exactly in run {}\n--- {}:\n{}\n{}",
            r.proc.name,
            r.imp,
            r.dest.display(),
            run.number,
            run.sender.name,
            run.sender.log_text(),
            self.logs()
        );
    }

    /// Receiver `i` (0-based) holds nothing at all.
    fn check_nothing(&self, i: usize, run: &Run) {
        let r = &self.receivers[i];
        let got = names(&r.dest);
        assert!(
            got.is_empty(),
            "{} received {got:?} in run {} but should have nothing\n--- {}:\n{}\n{}",
            r.proc.name,
            run.number,
            run.sender.name,
            run.sender.log_text(),
            self.logs()
        );
    }

    fn check_running(&mut self) {
        let logs = self.logs();
        for r in &mut self.receivers {
            assert!(r.proc.running(), "{} died:\n{logs}", r.proc.name);
        }
    }
}

impl Run {
    /// Waits for the sender and returns its exit code and log, showing everything if it hangs.
    fn finish(&mut self, net: &Net) -> (i32, String) {
        let t0 = Instant::now();
        while self.sender.running() {
            if t0.elapsed() > SENDER_LIMIT {
                self.sender.signal("KILL");
                panic!(
                    "{} did not finish in {SENDER_LIMIT:?} (run {}):\n{}\n{}",
                    self.sender.name,
                    self.number,
                    self.sender.log_text(),
                    net.logs()
                );
            }
            sleep(Duration::from_millis(20));
        }
        let code = self.sender.wait(Duration::from_secs(1));
        let log = self.sender.log_text();
        eprintln!(
            "--- {} (run {}) exited {code} after {:?}:\n{log}",
            self.sender.name,
            self.number,
            t0.elapsed()
        );
        (code, log)
    }

    /// The UDP payload of the captured ANNOUNCE.
    fn announce(&mut self) -> Vec<u8> {
        let code = self.tcpdump.wait(Duration::from_secs(5));
        assert_eq!(code, 0, "tcpdump failed:\n{}", self.tcpdump.log_text());
        testnet::pcap::read(&self.pcap)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .next()
            .map(|d| d.payload)
            .unwrap_or_else(|| panic!("no UDP datagram in {}", self.pcap.display()))
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// A cipher suite of the matrix: the sender's options, the `uftp_keymgt` specs of the server's
/// key (`None`: the sender's default for its key exchange) and of the clients' keys, and what
/// the ANNOUNCE must then carry.
#[derive(Debug, Clone, Copy)]
struct Suite {
    options: &'static [&'static str],
    server_key: Option<&'static str>,
    client_key: &'static str,
    /// Whether our programs need `--allow-weak` for it (CBC).
    weak: bool,
    keyex: KeyExchange,
    sig: SigType,
    cipher: KeyType,
    hash: HashType,
    /// The curve of the ANNOUNCE's ephemeral ECDH key (`None`: RSA key exchange, no ECDH key).
    ecdh: Option<CurveId>,
}

impl Suite {
    /// The spec of the server key's type: the server's `-k` key, or (by the key-selection rule)
    /// the clients' when the server uses its default.
    fn server_key_spec(&self) -> &'static str {
        self.server_key.unwrap_or(self.client_key)
    }
}

const A_P256_GCM: Suite = Suite {
    options: &["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa"],
    server_key: None,
    client_key: "ec:prime256v1",
    weak: false,
    keyex: KeyExchange::EcdhEcdsa,
    sig: SigType::AuthEnc,
    cipher: KeyType::Aes256Gcm,
    hash: HashType::Sha256,
    ecdh: Some(CurveId::P256),
};

const B_P384_CCM: Suite = Suite {
    options: &[
        "-e",
        "ecdh_ecdsa:secp384r1",
        "-Y",
        "aes128-ccm",
        "-h",
        "sha384",
    ],
    server_key: Some("ec:secp384r1"),
    client_key: "ec:secp384r1",
    weak: false,
    keyex: KeyExchange::EcdhEcdsa,
    sig: SigType::AuthEnc,
    cipher: KeyType::Aes128Ccm,
    hash: HashType::Sha384,
    ecdh: Some(CurveId::P384),
};

const C_ECDH_RSA_GCM: Suite = Suite {
    options: &["-e", "ecdh_rsa", "-Y", "aes256-gcm", "-h", "sha256"],
    server_key: Some("rsa:2048"),
    client_key: "rsa:2048",
    weak: false,
    keyex: KeyExchange::EcdhRsa,
    sig: SigType::AuthEnc,
    cipher: KeyType::Aes256Gcm,
    hash: HashType::Sha256,
    ecdh: Some(CurveId::P256),
};

const D_RSA_CBC_HMAC: Suite = Suite {
    options: &[
        "-e",
        "rsa",
        "-Y",
        "aes256-cbc",
        "-h",
        "sha256",
        "-w",
        "hmac",
    ],
    server_key: Some("rsa:2048"),
    client_key: "rsa:2048",
    weak: true,
    keyex: KeyExchange::Rsa,
    sig: SigType::Hmac,
    cipher: KeyType::Aes256Cbc,
    hash: HashType::Sha256,
    ecdh: None,
};

/// Whether a key blob is of the type and size a `uftp_keymgt` spec names.
fn blob_is(blob: &KeyBlob<'_>, spec: &str) -> bool {
    match (blob.kind(), spec) {
        (KeyBlobKind::Ec(ec), "ec:prime256v1") => ec.curve == CurveId::P256,
        (KeyBlobKind::Ec(ec), "ec:secp384r1") => ec.curve == CurveId::P384,
        (KeyBlobKind::Rsa(rsa), _) => spec
            .strip_prefix("rsa:")
            .and_then(|b| b.parse::<usize>().ok())
            .is_some_and(|bits| rsa.modulus.len() * 8 == bits),
        _ => false,
    }
}

/// The captured ANNOUNCE carries exactly what `suite` asks for, the server key `server_key`
/// (by fingerprint) if one was given, and the client-authentication flag iff `client_auth`.
fn check_announce(
    net: &Net,
    run: &mut Run,
    suite: &Suite,
    server_key: Option<&Key>,
    client_auth: bool,
) {
    let bytes = run.announce();
    let what = format!("{}'s ANNOUNCE (run {})", run.sender.name, run.number);
    let logs = || {
        format!(
            "\n--- {}:\n{}\n{}",
            run.sender.name,
            run.sender.log_text(),
            net.logs()
        )
    };
    let repr = Repr::parse(&bytes)
        .unwrap_or_else(|e| panic!("{what} does not parse ({e:?}): {bytes:02x?}{}", logs()));
    let Message::Announce(announce) = repr.message else {
        panic!("{what} is not an ANNOUNCE: {:?}{}", repr.message, logs());
    };
    let Some(enc) = announce.enc_info else {
        panic!(
            "{what} has no EXT_ENC_INFO: the session is not encrypted{}",
            logs()
        );
    };
    assert_eq!(
        (enc.keyextype, enc.sigtype, enc.keytype, enc.hashtype),
        (suite.keyex, suite.sig, suite.cipher, suite.hash),
        "{what}: key exchange, signature, cipher and hash{}",
        logs()
    );
    assert_eq!(
        enc.flags & ENC_FLAG_CLIENT_AUTH != 0,
        client_auth,
        "{what}: client authentication flag{}",
        logs()
    );
    let blob = KeyBlob::parse(enc.key_blob)
        .unwrap_or_else(|e| panic!("{what}: server key blob ({e:?}){}", logs()));
    assert!(
        blob_is(&blob, suite.server_key_spec()),
        "{what}: the server key is {:?}, not {}{}",
        blob.kind(),
        suite.server_key_spec(),
        logs()
    );
    if let Some(key) = server_key {
        assert_eq!(
            blob.fingerprint().to_string(),
            key.fingerprint,
            "{what}: the server key is not the one in {}{}",
            key.path.display(),
            logs()
        );
    }
    match suite.ecdh {
        Some(curve) => {
            let dh = KeyBlob::parse(enc.dh_blob)
                .unwrap_or_else(|e| panic!("{what}: ECDH key blob ({e:?}){}", logs()));
            assert_eq!(
                dh.ec().map(|ec| ec.curve),
                Some(curve),
                "{what}: ECDH curve{}",
                logs()
            );
        }
        None => assert!(
            enc.dh_blob.is_empty(),
            "{what}: an ECDH key with -e rsa{}",
            logs()
        ),
    }
}

/// Options for a receiver of `imp` holding `key`, encrypted sessions only.
fn receiver_options(imp: Imp, suite: &Suite, key: &Key) -> Vec<String> {
    let mut v = strings(&["-E", "-k"]);
    v.push(key.arg());
    if imp == Imp::Ours && suite.weak {
        v.push("--allow-weak".into());
    }
    v
}

/// Options for a sender of `imp` using `suite` with server key `key`.
fn sender_options(imp: Imp, suite: &Suite, key: Option<&Key>) -> Vec<String> {
    let mut v = Vec::new();
    if imp == Imp::Ours && suite.weak {
        v.push("--allow-weak".to_string());
    }
    v.extend(strings(suite.options));
    if let Some(k) = key {
        v.push("-k".into());
        v.push(k.arg());
    }
    v
}

/// One transfer with `suite` from `sender` to `receivers` (each with its own client key); every
/// receiver must hold the content and the sender must exit 0.
fn suite_transfer(suite: Suite, sender: Imp, receivers: &[Imp]) {
    let _lock = serial();
    let mut net = Net::new(receivers.len());
    let items = make_content(&net.bed.dir, SIZE);
    let server_key = suite
        .server_key
        .map(|spec| keygen(&net.bed, "server", spec));
    for (i, &imp) in receivers.iter().enumerate() {
        let key = keygen(&net.bed, &format!("client{}", i + 1), suite.client_key);
        net.start_receiver(imp, &receiver_options(imp, &suite, &key));
    }
    let mut args = sender_options(sender, &suite, server_key.as_ref());
    args.extend(["-H".to_string(), net.ids()]);
    let mut run = net.sender(sender, &args, &items);
    let (code, log) = run.finish(&net);
    assert_eq!(
        code,
        0,
        "{} failed:\n{log}\n{}",
        run.sender.name,
        net.logs()
    );
    check_announce(&net, &mut run, &suite, server_key.as_ref(), false);
    for i in 0..receivers.len() {
        net.check_received(i, &run);
    }
    net.check_running();
}

// --- a. ECDH-ECDSA P-256, AES-256-GCM, SHA-256 ---

#[test]
fn a_p256_gcm_debian_to_debian_control_and_ours() {
    suite_transfer(A_P256_GCM, Imp::Debian, &[Imp::Debian, Imp::Ours]);
}

#[test]
fn a_p256_gcm_ours_to_debian() {
    suite_transfer(A_P256_GCM, Imp::Ours, &[Imp::Debian]);
}

// --- b. ECDH-ECDSA P-384, AES-128-CCM, SHA-384 ---

#[test]
fn b_p384_ccm_debian_to_debian_control_and_ours() {
    suite_transfer(B_P384_CCM, Imp::Debian, &[Imp::Debian, Imp::Ours]);
}

#[test]
fn b_p384_ccm_ours_to_debian() {
    suite_transfer(B_P384_CCM, Imp::Ours, &[Imp::Debian]);
}

// --- c. ECDH-RSA (RSA-2048 server key), AES-256-GCM ---

#[test]
fn c_ecdh_rsa_gcm_debian_to_debian_control_and_ours() {
    suite_transfer(C_ECDH_RSA_GCM, Imp::Debian, &[Imp::Debian, Imp::Ours]);
}

#[test]
fn c_ecdh_rsa_gcm_ours_to_debian() {
    suite_transfer(C_ECDH_RSA_GCM, Imp::Ours, &[Imp::Debian]);
}

// --- d. RSA key exchange, AES-256-CBC, HMAC-SHA-256 ---

#[test]
fn d_rsa_cbc_hmac_debian_to_debian_control_and_ours() {
    suite_transfer(D_RSA_CBC_HMAC, Imp::Debian, &[Imp::Debian, Imp::Ours]);
}

#[test]
fn d_rsa_cbc_hmac_ours_to_debian() {
    suite_transfer(D_RSA_CBC_HMAC, Imp::Ours, &[Imp::Debian]);
}

// --- e. closed group, client authentication, fingerprints pinned on the sender ---

/// A closed group with `-c` and `-H @file` (`ID|fingerprint` per client) under suite a:
/// `pinned` receivers hold the key their line names and must receive everything; `impostors`
/// are listed with the fingerprint of a key they do not hold and must receive nothing.
fn closed_group(sender: Imp, pinned: &[Imp], impostors: &[Imp]) {
    let _lock = serial();
    let suite = A_P256_GCM;
    let mut net = Net::new(pinned.len() + impostors.len());
    let items = make_content(&net.bed.dir, SIZE);
    let mut hostlist = String::new();
    for (i, &imp) in pinned.iter().chain(impostors).enumerate() {
        let n = i + 1;
        let key = keygen(&net.bed, &format!("client{n}"), suite.client_key);
        let listed = if i < pinned.len() {
            key.fingerprint.clone()
        } else {
            keygen(&net.bed, &format!("listed{n}"), suite.client_key).fingerprint
        };
        hostlist.push_str(&format!("{}|{listed}\n", uid(n)));
        net.start_receiver(imp, &receiver_options(imp, &suite, &key));
    }
    let list = net.bed.path("hostlist");
    std::fs::write(&list, &hostlist).expect("host list");
    let mut args = sender_options(sender, &suite, None);
    args.extend([
        "-c".to_string(),
        "-H".to_string(),
        format!("@{}", list.display()),
    ]);
    let mut run = net.sender(sender, &args, &items);
    let (code, log) = run.finish(&net);
    assert_eq!(
        code,
        0,
        "{} failed (host list:\n{hostlist}):\n{log}\n{}",
        run.sender.name,
        net.logs()
    );
    check_announce(&net, &mut run, &suite, None, true);
    for i in 0..pinned.len() {
        net.check_received(i, &run);
    }
    for i in pinned.len()..net.receivers.len() {
        net.check_nothing(i, &run);
        let id = net.receivers[i]
            .uid
            .trim_start_matches("0x")
            .to_ascii_lowercase();
        assert!(
            log.to_ascii_lowercase()
                .lines()
                .any(|l| l.contains(&id) && l.contains("fingerprint")),
            "{} does not say why it refused {id} (host list:\n{hostlist}):\n{log}",
            run.sender.name
        );
    }
    net.check_running();
}

#[test]
fn e_closed_group_client_auth_debian_to_debian_control_and_ours() {
    closed_group(Imp::Debian, &[Imp::Debian, Imp::Ours], &[Imp::Ours]);
}

#[test]
fn e_closed_group_client_auth_ours_to_debian() {
    closed_group(Imp::Ours, &[Imp::Debian], &[Imp::Debian]);
}

// --- f. the receiver's server list pins the server's key ---

/// Whether a receiver's log has a line saying it refused a server for its key's fingerprint.
fn refused_for_fingerprint(log: &str) -> bool {
    log.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("fingerprint")
            && [
                "fail",
                "mismatch",
                "refus",
                "reject",
                "not match",
                "does not",
                "denied",
            ]
            .iter()
            .any(|w| l.contains(w))
    })
}

/// Receivers with `-S` listing this test's server (ID and address) with fingerprint X, in SSM
/// groups (Debian's uftpd takes only those with `-S`). The server first holds key Y: every
/// receiver refuses it and says so, nothing arrives, the sender ends with exit 7 (nobody
/// registered). Then it holds X: every receiver gets everything.
fn server_list(sender: Imp, receivers: &[Imp]) {
    let _lock = serial();
    let suite = A_P256_GCM;
    let mut net = Net::new(receivers.len());
    let items = make_content(&net.bed.dir, SIZE);
    let x = keygen(&net.bed, "server-x", suite.client_key);
    let y = keygen(&net.bed, "server-y", suite.client_key);
    let list = net.bed.path("serverlist");
    let line = format!("{SERVER_ID}|{}|{}\n", net.bed.host(0).ipv4, x.fingerprint);
    std::fs::write(&list, &line).expect("server list");
    for (i, &imp) in receivers.iter().enumerate() {
        let key = keygen(&net.bed, &format!("client{}", i + 1), suite.client_key);
        let mut opts = receiver_options(imp, &suite, &key);
        opts.extend(strings(&["-M", "232.4.4.1", "-S"]));
        opts.push(list.to_str().expect("utf-8 path").to_string());
        net.start_receiver(imp, &opts);
    }
    for (server_key, accepted) in [(&y, false), (&x, true)] {
        let mut args = sender_options(sender, &suite, Some(server_key));
        args.extend(strings(&["-M", "232.4.4.1", "-P", "232.5.5.1", "-H"]));
        args.push(net.ids());
        let mut run = net.sender(sender, &args, &items);
        let (code, log) = run.finish(&net);
        check_announce(&net, &mut run, &suite, Some(server_key), false);
        if accepted {
            assert_eq!(
                code,
                0,
                "{} with the listed key failed (server list: {line}):\n{log}\n{}",
                run.sender.name,
                net.logs()
            );
            for i in 0..receivers.len() {
                net.check_received(i, &run);
            }
        } else {
            for (i, r) in net.receivers.iter().enumerate() {
                net.check_nothing(i, &run);
                assert!(
                    refused_for_fingerprint(&r.proc.log_text()),
                    "{} does not say it refused the server's key {} (server list: {line}):\n{}",
                    r.proc.name,
                    server_key.fingerprint,
                    r.proc.log_text()
                );
            }
            assert_eq!(
                code,
                7,
                "{} with an unlisted key should have found no client (server list: {line}):\n\
                 {log}\n{}",
                run.sender.name,
                net.logs()
            );
        }
    }
    net.check_running();
}

#[test]
fn f_server_list_debian_sender_to_debian_control_and_our_uftpd() {
    server_list(Imp::Debian, &[Imp::Debian, Imp::Ours]);
}

#[test]
fn f_server_list_our_sender_to_our_uftpd() {
    server_list(Imp::Ours, &[Imp::Ours]);
}

#[test]
fn f_server_list_our_sender_to_debian_uftpd() {
    server_list(Imp::Ours, &[Imp::Debian]);
}
