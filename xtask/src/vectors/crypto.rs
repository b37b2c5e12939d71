//! Re-deriving the keys of a captured RSA key-exchange session and opening its ENCRYPTED
//! packets (digest §5.4–§5.8), so that the messages only ever sent encrypted get vectors too.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use anyhow::{bail, ensure, Context, Result};
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey};
use sha2::Digest;

use testnet::pcap::{be16, be32, Datagram};

/// Hash types of EXT_ENC_INFO (digest §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashKind {
    pub fn from_wire(v: u8) -> Result<Self> {
        Ok(match v {
            2 => HashKind::Sha1,
            3 => HashKind::Sha256,
            4 => HashKind::Sha384,
            5 => HashKind::Sha512,
            _ => bail!("hash type {v} not handled"),
        })
    }
    pub fn len(self) -> usize {
        match self {
            HashKind::Md5 => 16,
            HashKind::Sha1 => 20,
            HashKind::Sha256 => 32,
            HashKind::Sha384 => 48,
            HashKind::Sha512 => 64,
        }
    }
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashKind::Md5 => md5::Md5::digest(data).to_vec(),
            HashKind::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashKind::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashKind::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashKind::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            HashKind::Md5 => mac::<Hmac<md5::Md5>>(key, data),
            HashKind::Sha1 => mac::<Hmac<sha1::Sha1>>(key, data),
            HashKind::Sha256 => mac::<Hmac<sha2::Sha256>>(key, data),
            HashKind::Sha384 => mac::<Hmac<sha2::Sha384>>(key, data),
            HashKind::Sha512 => mac::<Hmac<sha2::Sha512>>(key, data),
        }
    }
}

/// UFTP's P_hash: block 1 as TLS, each later block keyed off the previous output block.
fn p_hash(h: HashKind, secret: &[u8], x: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + h.len());
    let mut prev = h.hmac(secret, x);
    while out.len() < n {
        let block = h.hmac(secret, &[prev.as_slice(), x].concat());
        out.extend_from_slice(&block);
        prev = block;
    }
    out.truncate(n);
    out
}

/// The UFTP PRF (digest §5.4): P_H for SHA-2, MD5 ⊕ SHA-1 halves for SHA-1.
pub fn prf(h: HashKind, secret: &[u8], label: &str, seed: &[u8], n: usize) -> Vec<u8> {
    let x = [label.as_bytes(), seed].concat();
    if h == HashKind::Sha1 {
        let half = secret.len().div_ceil(2);
        let a = p_hash(HashKind::Md5, &secret[..half], &x, n);
        let b = p_hash(HashKind::Sha1, &secret[secret.len() - half..], &x, n);
        a.iter().zip(&b).map(|(x, y)| x ^ y).collect()
    } else {
        p_hash(h, secret, &x, n)
    }
}

fn aes_cbc_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>> {
    let mut buf = ct.to_vec();
    let len = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(|_| anyhow::anyhow!("bad CBC padding"))?
            .len(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(|_| anyhow::anyhow!("bad CBC padding"))?
            .len(),
        n => bail!("AES key length {n}"),
    };
    buf.truncate(len);
    Ok(buf)
}

/// One opened ENCRYPTED packet.
#[derive(Debug)]
pub struct Opened {
    pub number: usize,
    pub src_id: u32,
    /// The inner message body, starting with its own func byte.
    pub inner: Vec<u8>,
}

/// What the decryption established, step by step, for the report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub steps: Vec<String>,
    pub opened: Vec<Opened>,
    pub keyinfo_ack_verified: bool,
}

/// Decrypts a captured session that used `-e rsa` with AES-CBC and HMAC signatures.
///
/// `server_key_pem` is the server's `-k` key; `client_id` is the client whose key exchange is
/// replayed (every client ends up with the same group keys, so one is enough).
pub fn open_rsa_session(
    pkts: &[Datagram],
    server_key_pem: &str,
    client_id: u32,
) -> Result<Outcome> {
    let mut o = Outcome::default();
    let ann = pkts
        .iter()
        .find(|p| p.func() == 1)
        .context("no ANNOUNCE in capture")?;
    let server_id = ann.src_id();
    let b = ann.body();
    let v6 = b[2] & 0x04 != 0;
    let addr_len = if v6 { 16 } else { 4 };
    let priv_addr = b[16 + addr_len..16 + 2 * addr_len].to_vec();
    let ext = &b[16 + 2 * addr_len..];
    ensure!(ext[0] == 1, "ANNOUNCE has no EXT_ENC_INFO");
    let client_auth = ext[2] & 0x01 != 0;
    let keyex = ext[3] >> 4;
    let keytype = ext[4];
    let hash = HashKind::from_wire(ext[5])?;
    ensure!(keyex == 1, "key exchange {keyex} is not RSA");
    let kl = match keytype {
        3 => 16,
        4 => 32,
        t => bail!("key type {t} is not AES-CBC"),
    };
    let rand1 = ext[12..44].to_vec();
    o.steps.push(format!(
        "ANNOUNCE #{}: rand1, keytype {keytype}, hash {hash:?}, client_auth {client_auth}",
        ann.number
    ));

    let reg = pkts
        .iter()
        .find(|p| p.func() == 2 && p.src_id() == client_id)
        .context("no REGISTER from the client")?;
    let rb = reg.body();
    let klen = usize::from(be16(rb, 2));
    let rand2 = rb[12..44].to_vec();
    let enc_pm = &rb[44..44 + klen];
    let key = RsaPrivateKey::from_pkcs1_pem(server_key_pem).context("parsing server RSA key")?;
    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
    let premaster = if bits < 768 {
        key.decrypt(Pkcs1v15Encrypt, enc_pm)
    } else {
        key.decrypt(Oaep::new::<sha1::Sha1>(), enc_pm)
    }
    .context("RSA-decrypting the premaster from REGISTER")?;
    o.steps.push(format!(
        "REGISTER #{}: rand2, premaster ({} bytes) decrypted with the {bits}-bit server key",
        reg.number,
        premaster.len()
    ));

    let seed = [rand1.as_slice(), &rand2].concat();
    let master = prf(hash, &premaster, "master secret", &seed, 48);
    let hl = hash.len();
    let kb = prf(hash, &master, "key expansion", &seed, hl + kl + 4);
    let (ckey, csalt) = (&kb[hl..hl + kl], &kb[hl + kl..hl + kl + 4]);

    let ki = pkts
        .iter()
        .find(|p| p.func() == 5 && p.body()[12..].chunks(52).any(|e| be32(e, 0) == client_id))
        .context("no KEYINFO entry for the client")?;
    let kb_ = ki.body();
    let entry = kb_[12..]
        .chunks(52)
        .find(|e| be32(e, 0) == client_id)
        .expect("found above");
    let iv = [csalt, &ki.payload[4..8], &kb_[4..12]].concat();
    let gm_tail = aes_cbc_decrypt(ckey, &iv, &entry[4..52])
        .context("decrypting the KEYINFO entry (wrong premaster or PRF?)")?;
    ensure!(
        gm_tail.len() == 47,
        "group master is {} bytes, not 47",
        gm_tail.len()
    );
    let mut groupmaster = vec![ki.payload[0]];
    groupmaster.extend_from_slice(&gm_tail);
    o.steps.push(format!(
        "KEYINFO #{}: group master decrypted (PKCS#7 padding valid)",
        ki.number
    ));

    let gkb = prf(hash, &groupmaster, "key expansion", &rand1, hl + kl + 4);
    let (ghmac, gkey, gsalt) = (&gkb[..hl], &gkb[hl..hl + kl], &gkb[hl + kl..hl + kl + 4]);

    for p in pkts.iter().filter(|p| p.func() == 18) {
        let b = p.body();
        let siglen = usize::from(be16(b, 8));
        let paylen = usize::from(be16(b, 10));
        ensure!(
            p.payload.len() == 16 + 12 + siglen + paylen,
            "packet #{}: ENCRYPTED length mismatch",
            p.number
        );
        ensure!(
            siglen == hl,
            "packet #{}: sig_len {siglen} is not an HMAC",
            p.number
        );
        let mut zeroed = p.payload.clone();
        zeroed[28..28 + siglen].fill(0);
        ensure!(
            hash.hmac(ghmac, &zeroed) == b[12..12 + siglen],
            "packet #{}: HMAC does not verify",
            p.number
        );
        let iv = [gsalt, &p.payload[4..8], &b[0..8]].concat();
        let inner = aes_cbc_decrypt(gkey, &iv, &b[12 + siglen..])
            .with_context(|| format!("packet #{}: decrypting", p.number))?;
        o.opened.push(Opened {
            number: p.number,
            src_id: p.src_id(),
            inner,
        });
    }
    o.steps.push(format!(
        "ENCRYPTED: {} packets, every HMAC verified and every body decrypted",
        o.opened.len()
    ));

    // KEYINFO_ACK's verify_data (§5.5) closes the loop on the whole derivation.
    if let Some(ack) = o
        .opened
        .iter()
        .find(|x| x.inner[0] == 6 && x.src_id == client_id)
    {
        let mut vd = Vec::new();
        vd.extend_from_slice(&ann.payload[8..12]);
        vd.extend_from_slice(&priv_addr);
        vd.extend_from_slice(&rand1);
        vd.extend_from_slice(&rand2);
        vd.extend_from_slice(&premaster);
        if client_auth {
            let ck = pkts
                .iter()
                .find(|p| p.func() == 3 && p.src_id() == client_id)
                .context("CLIENT_AUTH set but no CLIENT_KEY")?;
            let bloblen = usize::from(be16(ck.body(), 4));
            vd.extend_from_slice(&ck.body()[8..8 + bloblen]);
        }
        vd.extend_from_slice(&groupmaster);
        let want = prf(hash, &groupmaster, "client finished", &hash.digest(&vd), 12);
        o.keyinfo_ack_verified = ack.inner[4..16] == want[..];
        o.steps.push(format!(
            "KEYINFO_ACK #{}: verify_data {}",
            ack.number,
            if o.keyinfo_ack_verified {
                "matches"
            } else {
                "DOES NOT match"
            }
        ));
    }
    let _ = server_id;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn inputs() -> (Vec<u8>, Vec<u8>) {
        ((1..=0x30).collect(), (0x40..=0x7f).collect())
    }

    #[test]
    fn prf_sha256_matches_digest_vector() {
        let (secret, seed) = inputs();
        let want = hex(
            "006b50cfaa32525eb687a68ddb48ff9ecde081178d5c556be3af98229290e5b3
             68121137569834a293c18d4de1dcd5dbb741d10d12c08c434187a69002a98944
             89dc6a436e79aeed27e7721cedfd0151",
        );
        assert_eq!(
            prf(HashKind::Sha256, &secret, "master secret", &seed, 80),
            want
        );
    }

    #[test]
    fn prf_sha1_matches_digest_vector() {
        let (secret, seed) = inputs();
        let want = hex(
            "4c0cb3fe3c6619c0e9df94b016578f78c5612bb6207fa668a9057f5d32034f58
             670a6dace3ca3b299c382174fe5d10361e45bcf6a70e47da064859f4f1b90832
             557f9177e2f64a2c340243ecaf69d730",
        );
        assert_eq!(
            prf(HashKind::Sha1, &secret, "master secret", &seed, 80),
            want
        );
    }
}
