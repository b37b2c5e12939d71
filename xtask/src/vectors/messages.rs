//! Picking one real packet per message kind out of the captures, decrypting the RSA session,
//! and writing `messages/*.bin` plus `MANIFEST.tsv`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::crypto;
use super::scenarios::SCENARIOS;
use testnet::pcap::{self, be16, Datagram};

const PX1: u32 = 0x0a63_00f1;
const PX2: u32 = 0x0a63_00f2;
const C1: u32 = 0x0a63_0002;

/// Message names by func code (digest §2.2).
pub const FUNC_NAMES: [&str; 22] = [
    "?",
    "announce",
    "register",
    "client_key",
    "reg_conf",
    "keyinfo",
    "keyinfo_ack",
    "fileinfo",
    "fileinfo_ack",
    "fileseg",
    "done",
    "status",
    "complete",
    "done_conf",
    "hb_req",
    "hb_resp",
    "key_req",
    "proxy_key",
    "encrypted",
    "abort",
    "cong_ctrl",
    "cc_ack",
];

/// One vector: file name, pcap (without `.pcap`), and which packet qualifies.
struct Pick {
    name: &'static str,
    pcap: &'static str,
    func: u8,
    what: fn(&Datagram) -> bool,
}

fn any(_: &Datagram) -> bool {
    true
}

/// Message body: byte `i` (0 if absent).
fn b(p: &Datagram, i: usize) -> u8 {
    p.body().get(i).copied().unwrap_or(0)
}

fn hlen_bytes(p: &Datagram) -> usize {
    usize::from(b(p, 1)) * 4
}

fn file_size(p: &Datagram) -> u64 {
    (u64::from(be16(p.body(), 10)) << 32) | u64::from(pcap::be32(p.body(), 12))
}

#[rustfmt::skip]
const PICKS: &[Pick] = &[
    Pick { name: "announce-open", pcap: "open", func: 1, what: any },
    Pick { name: "announce-closed", pcap: "closed", func: 1,
           what: |p| p.body().len() > hlen_bytes(p) },
    Pick { name: "announce-sync", pcap: "sync", func: 1, what: |p| b(p, 2) == 0x01 },
    Pick { name: "announce-sync-preview", pcap: "sync", func: 1, what: |p| b(p, 2) == 0x03 },
    Pick { name: "announce-tfmcc", pcap: "tfmcc", func: 1, what: any },
    Pick { name: "announce-ipv6", pcap: "ipv6", func: 1, what: any },
    Pick { name: "announce-enc-ecdh-p256", pcap: "enc-gcm-p256", func: 1, what: any },
    Pick { name: "announce-enc-rsa", pcap: "enc-cbc-rsa", func: 1, what: any },
    Pick { name: "announce-enc-ecdh-p384", pcap: "enc-ccm-p384", func: 1, what: any },
    Pick { name: "announce-enc-rsa512", pcap: "proxy-response", func: 1, what: any },
    Pick { name: "announce-client-proxy", pcap: "proxy-chain-b", func: 1, what: any },
    Pick { name: "register-plain", pcap: "open", func: 2, what: any },
    Pick { name: "register-ipv6", pcap: "ipv6", func: 2, what: any },
    Pick { name: "register-ecdh", pcap: "enc-gcm-p256", func: 2, what: any },
    Pick { name: "register-ecdh-p384", pcap: "enc-ccm-p384", func: 2, what: any },
    Pick { name: "register-rsa", pcap: "enc-cbc-rsa", func: 2, what: any },
    Pick { name: "register-client-proxy", pcap: "proxy-chain", func: 2,
           what: |p| p.src_id() == PX2 },
    Pick { name: "register-response-proxy", pcap: "proxy-response", func: 2,
           what: |p| p.src_id() == PX1 },
    Pick { name: "register-via-response-proxy", pcap: "proxy-response", func: 2,
           what: |p| p.src_id() != PX1 },
    Pick { name: "client_key-rsa", pcap: "enc-cbc-rsa", func: 3, what: any },
    Pick { name: "reg_conf", pcap: "open", func: 4, what: any },
    Pick { name: "reg_conf-proxy", pcap: "proxy-response", func: 4, what: any },
    Pick { name: "keyinfo", pcap: "enc-cbc-rsa", func: 5, what: any },
    Pick { name: "keyinfo-ecdh-p256", pcap: "enc-gcm-p256", func: 5, what: any },
    Pick { name: "keyinfo-ecdh-p384", pcap: "enc-ccm-p384", func: 5, what: any },
    Pick { name: "keyinfo-response-proxy", pcap: "proxy-response", func: 5,
           what: |p| p.src.to_string() == "10.99.0.10" },
    Pick { name: "fileinfo-file", pcap: "open", func: 7,
           what: |p| b(p, 4) == 0 && file_size(p) > 0 },
    Pick { name: "fileinfo-empty-file", pcap: "open", func: 7,
           what: |p| b(p, 4) == 0 && file_size(p) == 0 },
    Pick { name: "fileinfo-dir", pcap: "open", func: 7, what: |p| b(p, 4) == 1 },
    Pick { name: "fileinfo-link", pcap: "open", func: 7, what: |p| b(p, 4) == 2 },
    Pick { name: "fileinfo-delete", pcap: "metafiles", func: 7, what: |p| b(p, 4) == 3 },
    Pick { name: "fileinfo-freespace", pcap: "metafiles", func: 7, what: |p| b(p, 4) == 4 },
    Pick { name: "fileinfo-restart", pcap: "restart", func: 7, what: |p| p.payload[12] == 1 },
    Pick { name: "fileinfo_ack", pcap: "open", func: 8, what: any },
    Pick { name: "fileinfo_ack-partial", pcap: "restart", func: 8, what: |p| b(p, 4) & 1 != 0 },
    Pick { name: "fileinfo_ack-proxy", pcap: "proxy-chain", func: 8,
           what: |p| p.src_id() == PX2 },
    Pick { name: "fileseg", pcap: "open", func: 9, what: |p| p.payload.len() == 16 + 8 + 1000 },
    Pick { name: "fileseg-last", pcap: "open", func: 9, what: |p| p.payload.len() == 16 + 8 + 500 },
    Pick { name: "fileseg-tfmcc", pcap: "tfmcc", func: 9, what: any },
    Pick { name: "done", pcap: "open", func: 10, what: |p| be16(p.body(), 2) != 0 },
    Pick { name: "done-file0", pcap: "open", func: 10, what: |p| be16(p.body(), 2) == 0 },
    Pick { name: "done-restart", pcap: "restart", func: 10,
           what: |p| p.payload[12] == 1 && be16(p.body(), 2) != 0 },
    Pick { name: "status", pcap: "loss", func: 11, what: any },
    Pick { name: "status-tfmcc", pcap: "tfmcc", func: 11, what: any },
    Pick { name: "complete", pcap: "open", func: 12,
           what: |p| be16(p.body(), 2) != 0 && b(p, 4) == 0 },
    Pick { name: "complete-file0", pcap: "open", func: 12, what: |p| be16(p.body(), 2) == 0 },
    Pick { name: "complete-skipped", pcap: "sync", func: 12, what: |p| b(p, 4) == 1 },
    Pick { name: "complete-overwrite", pcap: "sync", func: 12, what: |p| b(p, 4) == 2 },
    Pick { name: "complete-freespace", pcap: "metafiles", func: 12, what: |p| b(p, 1) == 5 },
    Pick { name: "complete-proxy", pcap: "proxy-chain", func: 12, what: |p| p.src_id() == PX2 },
    Pick { name: "done_conf", pcap: "open", func: 13, what: any },
    Pick { name: "hb_req-plain", pcap: "proxy-heartbeat", func: 14, what: any },
    Pick { name: "hb_req-auth", pcap: "proxy-chain", func: 14, what: |p| be16(p.body(), 4) > 0 },
    Pick { name: "hb_resp-ok", pcap: "proxy-heartbeat", func: 15, what: |p| b(p, 2) == 1 },
    Pick { name: "hb_resp-challenge", pcap: "proxy-chain", func: 15, what: |p| b(p, 2) == 2 },
    Pick { name: "key_req", pcap: "proxy-response", func: 16, what: any },
    Pick { name: "proxy_key", pcap: "proxy-response", func: 17, what: any },
    Pick { name: "encrypted-gcm", pcap: "enc-gcm-p256", func: 18, what: any },
    Pick { name: "encrypted-cbc-hmac", pcap: "enc-cbc-rsa", func: 18, what: any },
    Pick { name: "encrypted-ccm", pcap: "enc-ccm-p384", func: 18, what: any },
    Pick { name: "abort", pcap: "abort", func: 19, what: any },
    Pick { name: "abort-timeout", pcap: "restart", func: 19, what: any },
    Pick { name: "cong_ctrl", pcap: "tfmcc", func: 20, what: any },
    Pick { name: "cc_ack", pcap: "tfmcc", func: 21, what: any },
];

fn params(pcap: &str) -> &'static str {
    let scenario = pcap.strip_suffix("-b").unwrap_or(pcap);
    SCENARIOS
        .iter()
        .find(|s| s.name == scenario)
        .map_or("", |s| s.params)
}

fn flow(p: &Datagram) -> String {
    let side = |ip: std::net::IpAddr, port: u16| match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    format!("{}>{}", side(p.src, p.sport), side(p.dst, p.dport))
}

pub fn extract_all(out: &Path) -> Result<()> {
    let msg_dir = out.join("messages");
    // Stale vectors of an earlier layout must not linger.
    for e in fs::read_dir(&msg_dir)? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "bin") {
            fs::remove_file(path)?;
        }
    }
    let mut caps: BTreeMap<String, Vec<Datagram>> = BTreeMap::new();
    for e in fs::read_dir(out.join("pcap"))? {
        let path = e?.path();
        if let Some(stem) = path
            .file_stem()
            .filter(|_| path.extension().is_some_and(|x| x == "pcap"))
        {
            caps.insert(stem.to_string_lossy().into_owned(), pcap::read(&path)?);
        }
    }
    let mut manifest = String::from(
        "# name\tpcap\tpacket\tfunc\tfunc_name\tsrc_id\tlen\tudp_flow\tscenario_params\n",
    );
    let mut missing = Vec::new();
    for pick in PICKS {
        let Some(pkts) = caps.get(pick.pcap) else {
            missing.push(format!("{} (no {}.pcap)", pick.name, pick.pcap));
            continue;
        };
        let Some(p) = pkts
            .iter()
            .find(|p| p.func() == pick.func && (pick.what)(p))
        else {
            missing.push(format!(
                "{} (no such packet in {}.pcap)",
                pick.name, pick.pcap
            ));
            continue;
        };
        fs::write(msg_dir.join(format!("{}.bin", pick.name)), &p.payload)?;
        let _ = writeln!(
            manifest,
            "{}.bin\t{}\t{}\t{}\t{}\t0x{:08x}\t{}\t{}\t{}",
            pick.name,
            pick.pcap,
            p.number,
            pick.func,
            FUNC_NAMES[usize::from(pick.func)],
            p.src_id(),
            p.payload.len(),
            flow(p),
            params(pick.pcap)
        );
    }

    match decrypt_rsa(out, &caps) {
        Ok((lines, outcome)) => {
            for s in &outcome.steps {
                eprintln!("vectors: decrypt: {s}");
            }
            for (name, o) in lines {
                fs::write(msg_dir.join(format!("{name}.bin")), &o.inner)?;
                let f = o.inner[0];
                let _ = writeln!(
                    manifest,
                    "{name}.bin\tenc-cbc-rsa\t{}\t{f}\t{}\t0x{:08x}\t{}\t-\tdecrypted inner body \
                     (no UFTP header) of that ENCRYPTED packet; keys/srv_rsa1024.pem; {}",
                    o.number,
                    FUNC_NAMES.get(usize::from(f)).unwrap_or(&"?"),
                    o.src_id,
                    o.inner.len(),
                    params("enc-cbc-rsa")
                );
            }
        }
        Err(e) => missing.push(format!("inner-* (decryption failed: {e:#})")),
    }
    fs::write(msg_dir.join("MANIFEST.tsv"), manifest)?;

    let covered: Vec<u8> = PICKS.iter().map(|p| p.func).collect();
    for f in 1..=21u8 {
        let inner = msg_dir.join(format!("inner-{}.bin", FUNC_NAMES[usize::from(f)]));
        if !covered.contains(&f) && !inner.exists() {
            missing.push(format!(
                "func {f} ({}) has no vector",
                FUNC_NAMES[usize::from(f)]
            ));
        }
    }
    observations(&caps);
    if !missing.is_empty() {
        bail!("missing vectors:\n  {}", missing.join("\n  "));
    }
    eprintln!("vectors: wrote {} messages and MANIFEST.tsv", PICKS.len());
    Ok(())
}

/// Opens the RSA session and names one inner body per (func, variant).
fn decrypt_rsa(
    out: &Path,
    caps: &BTreeMap<String, Vec<Datagram>>,
) -> Result<(Vec<(String, crypto::Opened)>, crypto::Outcome)> {
    let pkts = caps.get("enc-cbc-rsa").context("no enc-cbc-rsa.pcap")?;
    let key = fs::read_to_string(out.join("keys/srv_rsa1024.pem"))
        .context("reading tests/vectors/keys/srv_rsa1024.pem")?;
    let mut outcome = crypto::open_rsa_session(pkts, &key, C1)?;
    if !outcome.keyinfo_ack_verified {
        bail!("keys derived but KEYINFO_ACK verify_data does not match");
    }
    let mut named: Vec<(String, crypto::Opened)> = Vec::new();
    for o in std::mem::take(&mut outcome.opened) {
        let f = o.inner[0];
        let base = format!(
            "inner-{}",
            FUNC_NAMES.get(usize::from(f)).unwrap_or(&"unknown")
        );
        let file_id = be16(&o.inner, 2);
        let name = match f {
            10 | 12 if file_id == 0 => format!("{base}-file0"),
            9 if o.inner.len() < 8 + 1000 => format!("{base}-last"),
            7 => match o.inner.get(4) {
                Some(0) => base,
                _ => format!("{base}-type{}", o.inner[4]),
            },
            _ => base,
        };
        if !named.iter().any(|(n, _)| *n == name) {
            named.push((name, o));
        }
    }
    outcome
        .steps
        .push(format!("{} distinct inner bodies kept", named.len()));
    Ok((named, outcome))
}

/// Prints what a byte-exact codec must know about the real traffic.
fn observations(caps: &BTreeMap<String, Vec<Datagram>>) {
    let mut notes: BTreeMap<String, usize> = BTreeMap::new();
    let mut note = |s: String| *notes.entry(s).or_default() += 1;
    for (name, pkts) in caps {
        for p in pkts {
            let f = p.func();
            let fname = FUNC_NAMES.get(usize::from(f)).unwrap_or(&"?");
            if p.payload.len() < 16 {
                note(format!("{name}: packet shorter than a header"));
                continue;
            }
            if p.payload[0] != 0x40 {
                note(format!("version byte {:#04x}", p.payload[0]));
            }
            if p.payload[15] != 0 {
                note(format!("{fname}: header reserved byte non-zero"));
            }
            if f != 18 && hlen_bytes(p) > p.body().len() {
                note(format!("{fname}: hlen*4 beyond the datagram"));
            }
            if !p.payload.len().is_multiple_of(4) {
                note(format!("{fname}: UDP payload length not a multiple of 4"));
            }
            // ID lists follow hlen*4 in many messages; they must be whole IDs.
            if ![9, 11, 18].contains(&f)
                && (p.body().len() - hlen_bytes(p).min(p.body().len())) % 4 != 0
            {
                note(format!(
                    "{fname}: trailing bytes after hlen*4 not whole IDs ({name})"
                ));
            }
            if [7, 10, 13, 4].contains(&f) && p.body().len() > hlen_bytes(p) {
                note(format!("{fname}: carries an ID list after hlen*4"));
            }
            if [2, 3, 6, 8, 11, 12, 14, 16, 19, 21].contains(&f)
                && (p.payload[13] | p.payload[14]) != 0
            {
                note(format!("{fname}: non-zero grtt/gsize from a client"));
            }
        }
    }
    for (n, count) in notes {
        eprintln!("vectors: observed: {n} [{count} packets]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed RSA capture still opens with the committed server key.
    #[test]
    fn committed_rsa_session_decrypts() {
        let out = crate::vectors::workspace_root().join("tests/vectors");
        let mut caps = BTreeMap::new();
        let path = out.join("pcap/enc-cbc-rsa.pcap");
        caps.insert("enc-cbc-rsa".to_owned(), pcap::read(&path).unwrap());
        let (named, _) = decrypt_rsa(&out, &caps).unwrap();
        for n in [
            "inner-keyinfo_ack",
            "inner-fileinfo",
            "inner-fileseg",
            "inner-complete",
        ] {
            assert!(named.iter().any(|(name, _)| name == n), "{n} missing");
        }
    }
}
