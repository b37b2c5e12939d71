//! A whole datagram: the common header and one message body.

use super::*;

/// One message body, of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is documented on its Repr
pub enum Message<'a> {
    Announce(AnnounceRepr<'a>),
    Register(RegisterRepr<'a>),
    ClientKey(ClientKeyRepr<'a>),
    RegConf(RegConfRepr<'a>),
    KeyInfo(KeyInfoRepr<'a>),
    KeyInfoAck(KeyInfoAckRepr),
    FileInfo(FileInfoRepr<'a>),
    FileInfoAck(FileInfoAckRepr<'a>),
    FileSeg(FileSegRepr<'a>),
    Done(DoneRepr<'a>),
    Status(StatusRepr<'a>),
    Complete(CompleteRepr<'a>),
    DoneConf(DoneConfRepr<'a>),
    HbReq(HbReqRepr<'a>),
    HbResp(HbRespRepr),
    KeyReq(KeyReqRepr),
    ProxyKey(ProxyKeyRepr<'a>),
    Encrypted(EncryptedRepr<'a>),
    Abort(AbortRepr<'a>),
    CongCtrl(CongCtrlRepr<'a>),
    CcAck(CcAckRepr),
    /// A message type this implementation does not know, kept as raw bytes.
    Unknown {
        /// The type byte from the header.
        func: u8,
        /// The body after the header.
        body: &'a [u8],
    },
}

macro_rules! each_message {
    ($self:expr, $repr:ident => $e:expr, unknown $body:ident => $u:expr) => {
        match $self {
            Message::Announce($repr) => $e,
            Message::Register($repr) => $e,
            Message::ClientKey($repr) => $e,
            Message::RegConf($repr) => $e,
            Message::KeyInfo($repr) => $e,
            Message::KeyInfoAck($repr) => $e,
            Message::FileInfo($repr) => $e,
            Message::FileInfoAck($repr) => $e,
            Message::FileSeg($repr) => $e,
            Message::Done($repr) => $e,
            Message::Status($repr) => $e,
            Message::Complete($repr) => $e,
            Message::DoneConf($repr) => $e,
            Message::HbReq($repr) => $e,
            Message::HbResp($repr) => $e,
            Message::KeyReq($repr) => $e,
            Message::ProxyKey($repr) => $e,
            Message::Encrypted($repr) => $e,
            Message::Abort($repr) => $e,
            Message::CongCtrl($repr) => $e,
            Message::CcAck($repr) => $e,
            Message::Unknown { body: $body, .. } => $u,
        }
    };
}

impl<'a> Message<'a> {
    /// Parses a message body whose type the header gave as `func`.
    ///
    /// For every type but ENCRYPTED the body starts with its own type byte, which must agree.
    // Inlined: the receiver parses every FILESEG, and a call returns the 168-byte enum by copy.
    #[inline]
    pub fn parse(func: u8, body: &'a [u8]) -> Result<Self> {
        let kind = Func::from(func);
        if !matches!(kind, Func::Encrypted | Func::Unknown(_)) {
            match body.first() {
                None => return Err(Error::Truncated),
                Some(&b) if b != func => {
                    return Err(Error::FuncMismatch {
                        header: func,
                        body: b,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(match kind {
            Func::Announce => {
                Message::Announce(AnnounceRepr::parse(&AnnouncePacket::new_checked(body)?)?)
            }
            Func::Register => {
                Message::Register(RegisterRepr::parse(&RegisterPacket::new_checked(body)?)?)
            }
            Func::ClientKey => {
                Message::ClientKey(ClientKeyRepr::parse(&ClientKeyPacket::new_checked(body)?)?)
            }
            Func::RegConf => {
                Message::RegConf(RegConfRepr::parse(&RegConfPacket::new_checked(body)?)?)
            }
            Func::KeyInfo => {
                Message::KeyInfo(KeyInfoRepr::parse(&KeyInfoPacket::new_checked(body)?)?)
            }
            Func::KeyInfoAck => Message::KeyInfoAck(KeyInfoAckRepr::parse(
                &KeyInfoAckPacket::new_checked(body)?,
            )?),
            Func::FileInfo => {
                Message::FileInfo(FileInfoRepr::parse(&FileInfoPacket::new_checked(body)?)?)
            }
            Func::FileInfoAck => Message::FileInfoAck(FileInfoAckRepr::parse(
                &FileInfoAckPacket::new_checked(body)?,
            )?),
            Func::FileSeg => {
                Message::FileSeg(FileSegRepr::parse(&FileSegPacket::new_checked(body)?)?)
            }
            Func::Done => Message::Done(DoneRepr::parse(&DonePacket::new_checked(body)?)?),
            Func::Status => Message::Status(StatusRepr::parse(&StatusPacket::new_checked(body)?)?),
            Func::Complete => {
                Message::Complete(CompleteRepr::parse(&CompletePacket::new_checked(body)?)?)
            }
            Func::DoneConf => {
                Message::DoneConf(DoneConfRepr::parse(&DoneConfPacket::new_checked(body)?)?)
            }
            Func::HbReq => Message::HbReq(HbReqRepr::parse(&HbReqPacket::new_checked(body)?)?),
            Func::HbResp => Message::HbResp(HbRespRepr::parse(&HbRespPacket::new_checked(body)?)?),
            Func::KeyReq => Message::KeyReq(KeyReqRepr::parse(&KeyReqPacket::new_checked(body)?)?),
            Func::ProxyKey => {
                Message::ProxyKey(ProxyKeyRepr::parse(&ProxyKeyPacket::new_checked(body)?)?)
            }
            Func::Encrypted => {
                Message::Encrypted(EncryptedRepr::parse(&EncryptedPacket::new_checked(body)?)?)
            }
            Func::Abort => Message::Abort(AbortRepr::parse(&AbortPacket::new_checked(body)?)?),
            Func::CongCtrl => {
                Message::CongCtrl(CongCtrlRepr::parse(&CongCtrlPacket::new_checked(body)?)?)
            }
            Func::CcAck => Message::CcAck(CcAckRepr::parse(&CcAckPacket::new_checked(body)?)?),
            Func::Unknown(func) => Message::Unknown { func, body },
        })
    }

    /// Parses the plaintext of an ENCRYPTED envelope: a body that starts with its own type byte.
    /// An ENCRYPTED envelope inside another is rejected.
    pub fn parse_inner(body: &'a [u8]) -> Result<Self> {
        let func = *body.first().ok_or(Error::Truncated)?;
        if Func::from(func) == Func::Encrypted {
            return Err(Error::Malformed("nested ENCRYPTED"));
        }
        match Func::from(func) {
            Func::Unknown(_) => Err(Error::Malformed("unknown message type inside ENCRYPTED")),
            _ => Self::parse(func, body),
        }
    }

    /// The message type.
    pub fn kind(&self) -> Func {
        match self {
            Message::Announce(_) => Func::Announce,
            Message::Register(_) => Func::Register,
            Message::ClientKey(_) => Func::ClientKey,
            Message::RegConf(_) => Func::RegConf,
            Message::KeyInfo(_) => Func::KeyInfo,
            Message::KeyInfoAck(_) => Func::KeyInfoAck,
            Message::FileInfo(_) => Func::FileInfo,
            Message::FileInfoAck(_) => Func::FileInfoAck,
            Message::FileSeg(_) => Func::FileSeg,
            Message::Done(_) => Func::Done,
            Message::Status(_) => Func::Status,
            Message::Complete(_) => Func::Complete,
            Message::DoneConf(_) => Func::DoneConf,
            Message::HbReq(_) => Func::HbReq,
            Message::HbResp(_) => Func::HbResp,
            Message::KeyReq(_) => Func::KeyReq,
            Message::ProxyKey(_) => Func::ProxyKey,
            Message::Encrypted(_) => Func::Encrypted,
            Message::Abort(_) => Func::Abort,
            Message::CongCtrl(_) => Func::CongCtrl,
            Message::CcAck(_) => Func::CcAck,
            Message::Unknown { func, .. } => Func::Unknown(*func),
        }
    }

    /// The message type byte.
    pub fn func(&self) -> u8 {
        self.kind().into()
    }

    /// The protocol's name for the message type (`"UNKNOWN"` for unknown types).
    pub fn name(&self) -> &'static str {
        match self.kind() {
            Func::Unknown(_) => "UNKNOWN",
            kind => kind.name(),
        }
    }

    /// The file ID, for the messages that carry one.
    pub fn file_id(&self) -> Option<u16> {
        match self {
            Message::FileInfo(r) => Some(r.file_id),
            Message::FileInfoAck(r) => Some(r.file_id),
            Message::FileSeg(r) => Some(r.file_id),
            Message::Done(r) => Some(r.file_id),
            Message::Status(r) => Some(r.file_id),
            Message::Complete(r) => Some(r.file_id),
            _ => None,
        }
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        each_message!(self, r => r.buffer_len(), unknown body => body.len())
    }

    /// Writes the body into the start of `buf`, returning the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        each_message!(self, r => r.emit(buf), unknown body => {
            need(buf, body.len())?;
            buf[..body.len()].copy_from_slice(body);
            Ok(body.len())
        })
    }
}

/// A whole UFTP datagram: the common header and its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// The common header (its type byte comes from `message`).
    pub header: HeaderRepr,
    /// The message body.
    pub message: Message<'a>,
}

impl<'a> Repr<'a> {
    /// Parses a UDP payload. Nothing panics on any input.
    // Inlined, as `Message::parse`.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let packet = HeaderPacket::new_checked(bytes)?;
        let header = HeaderRepr::parse(&packet)?;
        let message = Message::parse(packet.func(), &bytes[HEADER_LEN..])?;
        Ok(Repr { header, message })
    }

    /// Parses a UDP payload whose type byte says FILESEG, the bulk of all traffic, without
    /// building a [`Message`]: gives exactly what [`Repr::parse`] gives for it (the same errors
    /// included), and [`Error::Malformed`] for any other type.
    #[inline]
    pub fn parse_fileseg(bytes: &'a [u8]) -> Result<(HeaderRepr, FileSegRepr<'a>)> {
        // The usual datagram: version 4, FILESEG twice, the 8-byte FILESEG header with no
        // extension. Read it in one go; anything else takes the general path below.
        const FIXED: usize = HEADER_LEN + 8;
        let func = u8::from(Func::FileSeg);
        if let Some(head) = bytes.first_chunk::<FIXED>() {
            if head[0] == VERSION && head[1] == func && head[16] == func && head[17] == 2 {
                let be16 = |at: usize| u16::from_be_bytes([head[at], head[at + 1]]);
                let be32 = |at: usize| {
                    u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]])
                };
                let header = HeaderRepr {
                    seq: be16(2),
                    src_id: be32(4),
                    group_id: be32(8),
                    group_inst: head[12],
                    grtt: Grtt(head[13]),
                    gsize: GroupSize(head[14]),
                };
                let seg = FileSegRepr {
                    file_id: be16(18),
                    section: be16(20),
                    sec_block: be16(22),
                    tfmcc: None,
                    data: &bytes[FIXED..],
                };
                return Ok((header, seg));
            }
        }
        let packet = HeaderPacket::new_checked(bytes)?;
        let header = HeaderRepr::parse(&packet)?;
        let func = packet.func();
        if Func::from(func) != Func::FileSeg {
            return Err(Error::Malformed("not a FILESEG"));
        }
        let body = &bytes[HEADER_LEN..];
        match body.first() {
            None => return Err(Error::Truncated),
            Some(&b) if b != func => {
                return Err(Error::FuncMismatch {
                    header: func,
                    body: b,
                })
            }
            Some(_) => {}
        }
        let seg = FileSegRepr::parse(&FileSegPacket::new_checked(body)?)?;
        Ok((header, seg))
    }

    /// Bytes the datagram takes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.message.buffer_len()
    }

    /// Writes the datagram into the start of `buf`, returning its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, self.buffer_len())?;
        self.header.emit(self.message.func(), buf)?;
        Ok(HEADER_LEN + self.message.emit(&mut buf[HEADER_LEN..])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FILESEG datagram, with TFMCC information or without.
    fn fileseg(tfmcc: bool, data: &[u8]) -> heapless::Vec<u8, 256> {
        let repr = Repr {
            header: HeaderRepr {
                seq: 0x1234,
                src_id: 0x0a00_0001,
                group_id: 0xdead_beef,
                group_inst: 2,
                grtt: Grtt(0x40),
                gsize: GroupSize(0x21),
            },
            message: Message::FileSeg(FileSegRepr {
                file_id: 7,
                section: 3,
                sec_block: 9,
                tfmcc: tfmcc.then_some(TfmccDataInfoRepr {
                    send_rate: Rate(0x1234),
                    cc_seq: 5,
                    cc_rate: Rate(0x0101),
                }),
                data,
            }),
        };
        let mut buf = [0u8; 256];
        let len = repr.emit(&mut buf).unwrap();
        heapless::Vec::from_slice(&buf[..len]).unwrap()
    }

    fn same_as_parse(bytes: &[u8]) {
        let fast = Repr::parse_fileseg(bytes);
        match Repr::parse(bytes) {
            Ok(Repr {
                header,
                message: Message::FileSeg(seg),
            }) => assert_eq!(fast, Ok((header, seg)), "{bytes:02x?}"),
            Ok(_) => assert!(fast.is_err(), "{bytes:02x?}"),
            // Only a FILESEG type byte promises the same error.
            Err(e) if bytes.get(1) == Some(&u8::from(Func::FileSeg)) => {
                assert_eq!(fast, Err(e), "{bytes:02x?}")
            }
            Err(_) => assert!(fast.is_err(), "{bytes:02x?}"),
        }
    }

    #[test]
    fn parse_fileseg_agrees_with_parse_on_every_mutation() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for tfmcc in [false, true] {
            let good = fileseg(tfmcc, b"block data of some length");
            same_as_parse(&good);
            assert!(Repr::parse_fileseg(&good).is_ok());
            for cut in 0..good.len() {
                same_as_parse(&good[..cut]);
            }
            for i in 0..good.len() {
                for v in [0u8, 1, 2, 9, 0x10, 0x3f, 0x40, 0x41, 0x80, 0xff] {
                    let mut b = good.clone();
                    b[i] = v;
                    same_as_parse(&b);
                }
            }
            for _ in 0..20_000 {
                let mut b = good.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % b.len() as u64) as usize;
                    b[i] = next() as u8;
                }
                let cut = b.len() - (next() % 4) as usize;
                same_as_parse(&b[..cut]);
            }
        }
        // Other types are refused.
        let mut other = fileseg(false, b"x");
        other[1] = u8::from(Func::Done);
        assert!(Repr::parse_fileseg(&other).is_err());
    }
}
