//! Big-endian field access shared by every message view.
//!
//! Every multi-byte UFTP field is big-endian (protocol digest §2.1). Views only call these with
//! offsets that their `check_len` has proven to lie inside the buffer.

/// A fixed-size field that a view can read and write at a byte offset.
pub(crate) trait Field: Sized {
    fn get(buf: &[u8], at: usize) -> Self;
    fn set(buf: &mut [u8], at: usize, value: Self);
}

impl Field for u8 {
    #[inline]
    fn get(buf: &[u8], at: usize) -> Self {
        buf[at]
    }
    #[inline]
    fn set(buf: &mut [u8], at: usize, value: Self) {
        buf[at] = value;
    }
}

macro_rules! be_field {
    ($ty:ty, $n:expr) => {
        impl Field for $ty {
            #[inline]
            fn get(buf: &[u8], at: usize) -> Self {
                let mut b = [0u8; $n];
                b.copy_from_slice(&buf[at..at + $n]);
                <$ty>::from_be_bytes(b)
            }
            #[inline]
            fn set(buf: &mut [u8], at: usize, value: Self) {
                buf[at..at + $n].copy_from_slice(&value.to_be_bytes());
            }
        }
    };
}
be_field!(u16, 2);
be_field!(u32, 4);
be_field!(u64, 8);

/// Reads a 48-bit size stored as a 16-bit high part followed by a 32-bit low part.
#[inline]
pub(crate) fn get_u48(buf: &[u8], at: usize) -> u64 {
    (u64::from(u16::get(buf, at)) << 32) | u64::from(u32::get(buf, at + 2))
}

/// Writes a 48-bit size as a 16-bit high part followed by a 32-bit low part.
#[inline]
pub(crate) fn set_u48(buf: &mut [u8], at: usize, value: u64) {
    u16::set(buf, at, (value >> 32) as u16);
    u32::set(buf, at + 2, value as u32);
}

/// Rounds a byte count up to whole 4-byte words.
#[inline]
pub(crate) const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// The bytes of a NUL-padded string field, up to its first NUL.
#[inline]
pub(crate) fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Declares a zero-copy view over one message body: `new_unchecked`, `new_checked`,
/// `into_inner`, and a getter/setter pair for each fixed field.
///
/// The generated `check_len` proves `buffer.len() >= $min`, `hlen * 4 >= $min` and
/// `hlen * 4 <= buffer.len()` (every message but ENCRYPTED starts `func(1) hlen(1)`, §2.4), so the
/// fixed-field accessors cannot panic afterwards. A message with more to check adds it in its
/// own `check_more`.
macro_rules! message_view {
    (
        $(#[$meta:meta])*
        $name:ident, min_len = $min:expr;
        $( $(#[$fmeta:meta])* $get:ident, $set:ident : $ty:ty = $off:expr; )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Length of the fixed part of this message, in bytes.
            pub const MIN_LEN: usize = $min;

            /// Wraps a buffer without checking it; accessors may panic on a short buffer.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps a buffer after [`Self::check_len`]; afterwards no accessor panics.
            pub fn new_checked(buffer: T) -> $crate::wire::Result<Self> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// Checks that the buffer holds the fixed part and that `hlen` is consistent.
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                let buf = self.buffer.as_ref();
                if buf.len() < Self::MIN_LEN {
                    return Err($crate::wire::Error::Truncated);
                }
                let hlen = usize::from(buf[1]) * 4;
                if hlen < Self::MIN_LEN || hlen > buf.len() {
                    return Err($crate::wire::Error::BadHeaderLength);
                }
                self.check_more()
            }

            /// Returns the underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The whole buffer.
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            /// The message type byte.
            #[inline]
            pub fn func(&self) -> u8 {
                self.buffer.as_ref()[0]
            }

            /// Length in 4-byte words of the fixed part, its variable fields and extensions.
            #[inline]
            pub fn hlen(&self) -> u8 {
                self.buffer.as_ref()[1]
            }

            /// The bytes after `hlen * 4`: the message's trailing list, bitmap or data.
            #[inline]
            pub fn trailer(&self) -> &[u8] {
                &self.buffer.as_ref()[usize::from(self.hlen()) * 4..]
            }

            /// The bytes between the fixed part and `hlen * 4`: variable fields and extensions.
            #[inline]
            pub fn header_tail(&self) -> &[u8] {
                &self.buffer.as_ref()[Self::MIN_LEN..usize::from(self.hlen()) * 4]
            }

            $(
                $(#[$fmeta])*
                #[inline]
                pub fn $get(&self) -> $ty {
                    <$ty as $crate::wire::field::Field>::get(self.buffer.as_ref(), $off)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// Sets the message type byte.
            #[inline]
            pub fn set_func(&mut self, value: u8) {
                self.buffer.as_mut()[0] = value;
            }

            /// Sets the header length in words.
            #[inline]
            pub fn set_hlen(&mut self, value: u8) {
                self.buffer.as_mut()[1] = value;
            }

            /// The bytes after `hlen * 4`, mutable.
            #[inline]
            pub fn trailer_mut(&mut self) -> &mut [u8] {
                let at = usize::from(self.hlen()) * 4;
                &mut self.buffer.as_mut()[at..]
            }

            $(
                #[doc = concat!("Sets the field read by [`Self::", stringify!($get), "`].")]
                #[inline]
                pub fn $set(&mut self, value: $ty) {
                    <$ty as $crate::wire::field::Field>::set(self.buffer.as_mut(), $off, value)
                }
            )*
        }
    };
}
pub(crate) use message_view;
