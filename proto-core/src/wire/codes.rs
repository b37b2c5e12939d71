//! Code spaces of the protocol (digest §2.2). Every enum keeps values it does not know as
//! `Unknown(n)`, so decoding a code never fails; whether an unknown value is acceptable is up to
//! the message parser or the state machine.

macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, $text:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this implementation does not know.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The protocol's name for this value (`"?"` when unknown).
            pub fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                    $name::Unknown(_) => "?",
                }
            }
        }
    };
}

enum_with_unknown! {
    /// Message type: the `func` byte of the header and of every message body.
    pub enum Func(u8) {
        /// Session announcement, server to public multicast.
        Announce = 1, "ANNOUNCE",
        /// Client registration.
        Register = 2, "REGISTER",
        /// Client's public key for client authentication.
        ClientKey = 3, "CLIENT_KEY",
        /// Server's registration confirmation.
        RegConf = 4, "REG_CONF",
        /// Group master key wrapped for each client.
        KeyInfo = 5, "KEYINFO",
        /// Client's key confirmation (always encrypted).
        KeyInfoAck = 6, "KEYINFO_ACK",
        /// File announcement.
        FileInfo = 7, "FILEINFO",
        /// Client's answer to FILEINFO.
        FileInfoAck = 8, "FILEINFO_ACK",
        /// One block of file data.
        FileSeg = 9, "FILESEG",
        /// End of a pass, or of the session when `file_id` is 0.
        Done = 10, "DONE",
        /// Client's NAKs for one section.
        Status = 11, "STATUS",
        /// Client has a file (or the session) complete.
        Complete = 12, "COMPLETE",
        /// Server confirms completion.
        DoneConf = 13, "DONE_CONF",
        /// Heartbeat request.
        HbReq = 14, "HB_REQ",
        /// Heartbeat response.
        HbResp = 15, "HB_RESP",
        /// Request for a response proxy's key.
        KeyReq = 16, "KEY_REQ",
        /// A response proxy's key.
        ProxyKey = 17, "PROXY_KEY",
        /// Encrypted envelope around another message.
        Encrypted = 18, "ENCRYPTED",
        /// Abort a session or a client.
        Abort = 19, "ABORT",
        /// TFMCC congestion control round.
        CongCtrl = 20, "CONG_CTRL",
        /// TFMCC feedback.
        CcAck = 21, "CC_ACK",
    }
}

enum_with_unknown! {
    /// FILEINFO item type.
    pub enum FileType(u8) {
        /// A regular file.
        Regular = 0, "file",
        /// A directory (sent only for empty directories).
        Directory = 1, "directory",
        /// A symbolic link.
        Symlink = 2, "symlink",
        /// A request to delete the named item (`@DELETE:`).
        Delete = 3, "delete",
        /// A free-space query (`@FREESPACE`).
        FreeSpace = 4, "freespace",
    }
}

enum_with_unknown! {
    /// COMPLETE status.
    pub enum CompleteStatus(u8) {
        /// Received normally.
        Normal = 0, "normal",
        /// Skipped (sync mode: existing copy is as new or newer; restart: already have it).
        Skipped = 1, "skipped",
        /// An existing copy was overwritten.
        Overwrite = 2, "overwrite",
        /// Rejected (bad name, no space, …).
        Rejected = 3, "rejected",
    }
}

enum_with_unknown! {
    /// Header extension type.
    pub enum ExtType(u8) {
        /// EXT_ENC_INFO, in ANNOUNCE.
        EncInfo = 1, "EXT_ENC_INFO",
        /// EXT_TFMCC_DATA_INFO, in FILESEG.
        TfmccDataInfo = 2, "EXT_TFMCC_DATA_INFO",
        /// EXT_TFMCC_ACK_INFO, in STATUS and CC_ACK.
        TfmccAckInfo = 3, "EXT_TFMCC_ACK_INFO",
        /// EXT_PGMCC_DATA_INFO: defined by UFTP 4, never sent.
        PgmccDataInfo = 4, "EXT_PGMCC_DATA_INFO",
        /// EXT_PGMCC_NAK_INFO: defined by UFTP 4, never sent.
        PgmccNakInfo = 5, "EXT_PGMCC_NAK_INFO",
        /// EXT_PGMCC_ACK_INFO: defined by UFTP 4, never sent.
        PgmccAckInfo = 6, "EXT_PGMCC_ACK_INFO",
        /// EXT_FREESPACE_INFO, in COMPLETE.
        FreeSpaceInfo = 7, "EXT_FREESPACE_INFO",
    }
}

enum_with_unknown! {
    /// Congestion control type announced in ANNOUNCE.
    pub enum CcType(u8) {
        /// Fixed rate (`-R`).
        None = 0, "none",
        /// UFTP 3's scheme (obsolete).
        Uftp3 = 1, "uftp3",
        /// TFMCC (RFC 4654).
        Tfmcc = 2, "tfmcc",
        /// PGMCC (never used).
        Pgmcc = 3, "pgmcc",
    }
}

enum_with_unknown! {
    /// Symmetric cipher (EXT_ENC_INFO `keytype`).
    pub enum KeyType(u8) {
        /// No encryption.
        None = 0, "none",
        /// DES-CBC.
        Des = 1, "des",
        /// 3DES EDE3-CBC.
        Des3 = 2, "3des",
        /// AES-128-CBC.
        Aes128Cbc = 3, "aes128-cbc",
        /// AES-256-CBC.
        Aes256Cbc = 4, "aes256-cbc",
        /// AES-128-GCM.
        Aes128Gcm = 5, "aes128-gcm",
        /// AES-256-GCM.
        Aes256Gcm = 6, "aes256-gcm",
        /// AES-128-CCM.
        Aes128Ccm = 7, "aes128-ccm",
        /// AES-256-CCM.
        Aes256Ccm = 8, "aes256-ccm",
    }
}

enum_with_unknown! {
    /// Hash (EXT_ENC_INFO `hashtype`), also the HMAC, PRF and signature digest.
    pub enum HashType(u8) {
        /// None.
        None = 0, "none",
        /// MD5 (internal to the SHA-1 PRF only).
        Md5 = 1, "md5",
        /// SHA-1.
        Sha1 = 2, "sha1",
        /// SHA-256.
        Sha256 = 3, "sha256",
        /// SHA-384.
        Sha384 = 4, "sha384",
        /// SHA-512.
        Sha512 = 5, "sha512",
    }
}

enum_with_unknown! {
    /// Signature type (low nibble of EXT_ENC_INFO byte 3).
    pub enum SigType(u8) {
        /// None.
        None = 0, "none",
        /// HMAC with the group HMAC key.
        Hmac = 1, "hmac",
        /// RSA or ECDSA with the sender's key.
        Keyex = 2, "keyex",
        /// The GCM/CCM tag.
        AuthEnc = 3, "authenc",
    }
}

enum_with_unknown! {
    /// Key exchange (high nibble of EXT_ENC_INFO byte 3).
    pub enum KeyExchange(u8) {
        /// None.
        None = 0, "none",
        /// RSA-encrypted premaster.
        Rsa = 1, "rsa",
        /// Ephemeral ECDH, ANNOUNCE signed with RSA.
        EcdhRsa = 2, "ecdh_rsa",
        /// Ephemeral ECDH, ANNOUNCE signed with ECDSA.
        EcdhEcdsa = 3, "ecdh_ecdsa",
    }
}

enum_with_unknown! {
    /// Type byte of a public key blob (digest §5.2).
    pub enum KeyBlobType(u8) {
        /// RSA.
        Rsa = 1, "rsa",
        /// Elliptic curve.
        Ec = 2, "ec",
    }
}

enum_with_unknown! {
    /// HB_RESP result.
    pub enum HbResult(u8) {
        /// Authentication failed.
        Failed = 0, "failed",
        /// Accepted.
        Ok = 1, "ok",
        /// Sign the nonce and send again.
        Challenge = 2, "challenge",
    }
}

enum_with_unknown! {
    /// Named curve of an EC key blob.
    pub enum Curve(u8) {
        /// sect163k1.
        Sect163k1 = 1, "sect163k1",
        /// sect163r1.
        Sect163r1 = 2, "sect163r1",
        /// sect163r2.
        Sect163r2 = 3, "sect163r2",
        /// sect193r1.
        Sect193r1 = 4, "sect193r1",
        /// sect193r2.
        Sect193r2 = 5, "sect193r2",
        /// sect233k1.
        Sect233k1 = 6, "sect233k1",
        /// sect233r1.
        Sect233r1 = 7, "sect233r1",
        /// sect239k1.
        Sect239k1 = 8, "sect239k1",
        /// sect283k1.
        Sect283k1 = 9, "sect283k1",
        /// sect283r1.
        Sect283r1 = 10, "sect283r1",
        /// sect409k1.
        Sect409k1 = 11, "sect409k1",
        /// sect409r1.
        Sect409r1 = 12, "sect409r1",
        /// sect571k1.
        Sect571k1 = 13, "sect571k1",
        /// sect571r1.
        Sect571r1 = 14, "sect571r1",
        /// secp160k1.
        Secp160k1 = 15, "secp160k1",
        /// secp160r1.
        Secp160r1 = 16, "secp160r1",
        /// secp160r2.
        Secp160r2 = 17, "secp160r2",
        /// secp192k1.
        Secp192k1 = 18, "secp192k1",
        /// secp192r1 (prime192v1).
        Secp192r1 = 19, "secp192r1",
        /// secp224k1.
        Secp224k1 = 20, "secp224k1",
        /// secp224r1.
        Secp224r1 = 21, "secp224r1",
        /// secp256k1.
        Secp256k1 = 22, "secp256k1",
        /// secp256r1 (prime256v1, P-256): the default.
        Secp256r1 = 23, "prime256v1",
        /// secp384r1 (P-384).
        Secp384r1 = 24, "secp384r1",
        /// secp521r1 (P-521).
        Secp521r1 = 25, "secp521r1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_every_byte() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Func::from(v)), v);
            assert_eq!(u8::from(KeyType::from(v)), v);
            assert_eq!(u8::from(Curve::from(v)), v);
        }
        assert_eq!(Func::from(18), Func::Encrypted);
        assert_eq!(Func::from(22), Func::Unknown(22));
        assert_eq!(Func::CcAck.name(), "CC_ACK");
    }
}
