//! UFTP's compact numeric encodings (protocol digest §2.3): the GRTT byte, the group-size
//! byte, the 16-bit rate and the seconds/microseconds timestamp.
//!
//! The encoded forms are kept as newtypes so that a parsed message re-emits byte-identical;
//! conversions to and from plain numbers use integer arithmetic only (no floating point in the
//! core, which also runs on FPU-less parts).

use super::field::Field;

/// Decoded value of every GRTT byte, in nanoseconds: `(q + 1)` µs for `q <= 31`, otherwise
/// `1000 / e^((255 - q) / 13)` seconds (the NORM / RFC 5401 scheme). Checked against that formula
/// in the tests.
const GRTT_NANOS: [u64; 256] = [
    1000,
    2000,
    3000,
    4000,
    5000,
    6000,
    7000,
    8000,
    9000,
    10000,
    11000,
    12000,
    13000,
    14000,
    15000,
    16000,
    17000,
    18000,
    19000,
    20000,
    21000,
    22000,
    23000,
    24000,
    25000,
    26000,
    27000,
    28000,
    29000,
    30000,
    31000,
    32000,
    35496,
    38334,
    41399,
    44710,
    48285,
    52145,
    56315,
    60818,
    65681,
    70932,
    76604,
    82729,
    89344,
    96488,
    104203,
    112535,
    121533,
    131251,
    141746,
    153080,
    165320,
    178539,
    192814,
    208232,
    224881,
    242863,
    262282,
    283254,
    305902,
    330362,
    356777,
    385305,
    416114,
    449386,
    485318,
    524124,
    566032,
    611291,
    660169,
    712956,
    769963,
    831529,
    898017,
    969821,
    1047367,
    1131114,
    1221557,
    1319231,
    1424715,
    1538634,
    1661662,
    1794527,
    1938015,
    2092977,
    2260329,
    2441063,
    2636248,
    2847040,
    3074686,
    3320535,
    3586042,
    3872778,
    4182442,
    4516865,
    4878029,
    5268072,
    5689301,
    6144212,
    6635497,
    7166065,
    7739057,
    8357864,
    9026150,
    9747872,
    10527302,
    11369055,
    12278113,
    13259859,
    14320104,
    15465125,
    16701701,
    18037152,
    19479385,
    21036937,
    22719029,
    24535620,
    26497464,
    28616174,
    30904295,
    33375372,
    36044033,
    38926078,
    42038568,
    45399930,
    49030063,
    52950457,
    57184323,
    61756724,
    66694730,
    72027574,
    77786827,
    84006584,
    90723666,
    97977840,
    105812050,
    114272675,
    123409804,
    133277529,
    143934266,
    155443106,
    167872182,
    181295073,
    195791246,
    211446518,
    228353570,
    246612493,
    266331381,
    287626972,
    310625337,
    335462628,
    362285884,
    391253901,
    422538171,
    456323901,
    492811103,
    532215786,
    574771228,
    620729360,
    670362258,
    723963754,
    781851171,
    844367208,
    911881966,
    984795135,
    1063538369,
    1148577833,
    1240416967,
    1339599466,
    1446712499,
    1562390183,
    1687317339,
    1822233545,
    1967937516,
    2125291831,
    2295228039,
    2478752177,
    2676950721,
    2890997022,
    3122158251,
    3371802901,
    3641408887,
    3932572298,
    4247016844,
    4586604062,
    4953344333,
    5349408790,
    5777142164,
    6239076671,
    6737946999,
    7276706499,
    7858544670,
    8486906039,
    9165510554,
    9898375607,
    10689839817,
    11544588713,
    12467682475,
    13464585891,
    14541200706,
    15703900565,
    16959568741,
    18315638889,
    19780139048,
    21361739175,
    23069802465,
    24914440788,
    26906574544,
    29057997323,
    31381445714,
    33890674714,
    36600539154,
    39527081644,
    42687627542,
    46100887528,
    49787068368,
    53767992539,
    58067227424,
    62710224828,
    67724471659,
    73139652650,
    78987826094,
    85303613636,
    92124405230,
    99490580495,
    107445747764,
    116037002248,
    125315204844,
    135335283237,
    146156557072,
    157843089135,
    170464064609,
    184094200653,
    198814188738,
    214711172342,
    231879262848,
    250420096694,
    270443437062,
    292067823691,
    315421274639,
    340642044157,
    367879441171,
    397294713198,
    429062000943,
    463369369231,
    500419920361,
    540432996487,
    583645478144,
    630313186597,
    680712398323,
    735141480592,
    793922657818,
    857403919160,
    925961078642,
    1000000000000,
];

/// A round-trip time in the one-byte GRTT encoding (header `grtt`, CONG_CTRL item `rtt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Grtt(pub u8);

impl Grtt {
    /// The smallest encodable time, 1 µs.
    pub const MIN_MICROS: u64 = 1;
    /// The largest encodable time, 1000 s.
    pub const MAX_MICROS: u64 = 1_000_000_000;

    /// Encodes a time given in nanoseconds, clamped to 1 µs ..= 1000 s.
    ///
    /// The result is the smallest code whose decoded value is at least `nanos`, which is what
    /// `ceil(255 − 13·ln(1000 / rtt))` computes for times of 33 µs and up, and
    /// `floor(rtt / 1 µs) − 1` below.
    pub fn from_nanos(nanos: u64) -> Self {
        let nanos = nanos.clamp(Self::MIN_MICROS * 1000, Self::MAX_MICROS * 1000);
        if nanos < 33_000 {
            // Linear region: floor(rtt in µs) − 1.
            return Grtt(((nanos / 1000) as u8).saturating_sub(1));
        }
        let code = GRTT_NANOS[32..].partition_point(|&v| v < nanos) + 32;
        Grtt(code.min(255) as u8)
    }

    /// Encodes a time given in microseconds (see [`Grtt::from_nanos`]).
    pub fn from_micros(micros: u64) -> Self {
        Self::from_nanos(micros.saturating_mul(1000))
    }

    /// The decoded time in nanoseconds.
    pub fn as_nanos(self) -> u64 {
        GRTT_NANOS[usize::from(self.0)]
    }

    /// The decoded time in microseconds, rounded to nearest.
    pub fn as_micros(self) -> u64 {
        (self.as_nanos() + 500) / 1000
    }
}

/// A client count in the one-byte group-size encoding: a 5-bit mantissa `M` in the high bits and
/// a 3-bit exponent `E` in the low bits standing for `M × 10/32 × 10^E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GroupSize(pub u8);

impl GroupSize {
    /// Encodes a client count (the largest encodable is about 9.7 × 10^7).
    pub fn from_count(count: u64) -> Self {
        let mut exp: u32 = 0;
        let mut scale: u64 = 1;
        while count / scale >= 10 && exp < 7 {
            exp += 1;
            scale *= 10;
        }
        loop {
            // M = round(count / 10^E × 3.2)
            let mantissa =
                (u128::from(count) * 64 + 10 * u128::from(scale)) / (20 * u128::from(scale));
            if mantissa <= 31 || exp == 7 {
                return GroupSize(((mantissa.min(31) as u8) << 3) | exp as u8);
            }
            exp += 1;
            scale *= 10;
        }
    }

    /// The decoded count, rounded to nearest.
    pub fn count(self) -> u64 {
        let mantissa = u64::from(self.0 >> 3);
        let scale = 10u64.pow(u32::from(self.0 & 7));
        (mantissa * 10 * scale + 16) / 32
    }
}

/// A rate in bytes per second in UFTP's 16-bit encoding (TFMCC fields): a 12-bit mantissa `M` in
/// the high bits and a 4-bit exponent `E` in the low bits standing for `M × 10/4096 × 10^E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rate(pub u16);

impl Rate {
    /// The value uftp 4.10.2 advertises as "no limit" at the start of a feedback round.
    pub const UNLIMITED: Rate = Rate(0x481E);

    /// Encodes a rate in bytes per second.
    pub fn from_bytes_per_sec(rate: u64) -> Self {
        let mut exp: u32 = 0;
        let mut scale: u128 = 1;
        let rate = u128::from(rate);
        while rate / scale >= 10 && exp < 15 {
            exp += 1;
            scale *= 10;
        }
        loop {
            // M = round(rate / 10^E × 409.6)
            let mantissa = (rate * 8192 + 10 * scale) / (20 * scale);
            if mantissa <= 0xFFF || exp == 15 {
                return Rate(((mantissa.min(0xFFF) as u16) << 4) | exp as u16);
            }
            exp += 1;
            scale *= 10;
        }
    }

    /// The decoded rate in bytes per second, rounded to nearest and saturating.
    pub fn bytes_per_sec(self) -> u64 {
        let mantissa = u128::from(self.0 >> 4);
        let scale = 10u128.pow(u32::from(self.0 & 0xF));
        let value = (mantissa * 10 * scale + 2048) / 4096;
        u64::try_from(value).unwrap_or(u64::MAX)
    }
}

/// A time as UFTP sends it: whole seconds and microseconds, each 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds (UNIX time on the server's clock; peers only echo it).
    pub secs: u32,
    /// Microseconds within the second.
    pub usecs: u32,
}

impl Timestamp {
    /// Length on the wire.
    pub const LEN: usize = 8;

    /// Builds a timestamp from microseconds since an epoch chosen by the caller.
    pub fn from_micros(micros: u64) -> Self {
        Timestamp {
            secs: (micros / 1_000_000) as u32,
            usecs: (micros % 1_000_000) as u32,
        }
    }

    /// This timestamp in microseconds.
    pub fn as_micros(self) -> u64 {
        u64::from(self.secs) * 1_000_000 + u64::from(self.usecs)
    }

    pub(crate) fn read(buf: &[u8], at: usize) -> Self {
        Timestamp {
            secs: u32::get(buf, at),
            usecs: u32::get(buf, at + 4),
        }
    }

    pub(crate) fn write(self, buf: &mut [u8], at: usize) {
        u32::set(buf, at, self.secs);
        u32::set(buf, at + 4, self.usecs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grtt_table_matches_formula() {
        for q in 0..=255u8 {
            let want = if q <= 31 {
                (f64::from(q) + 1.0) * 1e3
            } else {
                1000.0 / ((255.0 - f64::from(q)) / 13.0).exp() * 1e9
            };
            let got = Grtt(q).as_nanos() as f64;
            assert!(
                (got - want).abs() <= want * 1e-9 + 1.0,
                "q={q} got={got} want={want}"
            );
        }
    }

    #[test]
    fn grtt_examples_from_captures() {
        assert_eq!(Grtt::from_micros(500_000), Grtt(0x9D));
        assert_eq!(Grtt::from_micros(100_000), Grtt(0x88));
        assert_eq!(Grtt::from_micros(10_000), Grtt(0x6A));
        assert_eq!(Grtt(0x9D).as_micros(), 532_216);
        assert_eq!(Grtt::from_micros(0), Grtt(0));
        assert_eq!(Grtt::from_micros(u64::MAX), Grtt(255));
        assert_eq!(Grtt::from_micros(5), Grtt(4));
    }

    #[test]
    fn grtt_encoder_agrees_with_formula() {
        // ceil(255 − 13·ln(1000/rtt)), rtt in seconds, over a spread of times.
        let mut micros = 33u64;
        while micros < 1_000_000_000 {
            let rtt = micros as f64 / 1e6;
            let want = (255.0 - 13.0 * (1000.0 / rtt).ln()).ceil() as u8;
            assert_eq!(Grtt::from_micros(micros).0, want, "rtt={micros}us");
            micros = micros * 11 / 10 + 1;
        }
    }

    #[test]
    fn grtt_decode_encode_is_identity() {
        for q in 0..=255u8 {
            assert_eq!(Grtt::from_nanos(Grtt(q).as_nanos()), Grtt(q));
        }
    }

    #[test]
    fn group_size_examples() {
        assert_eq!(GroupSize::from_count(1), GroupSize(0x18));
        assert_eq!(GroupSize::from_count(2), GroupSize(0x30));
        assert_eq!(GroupSize(0x18).count(), 1);
        assert_eq!(GroupSize(0x30).count(), 2);
        for n in [3u64, 9, 10, 31, 100, 1000, 5000, 12345] {
            let back = GroupSize::from_count(n).count();
            assert!(back.abs_diff(n) * 10 <= n + 5, "n={n} back={back}");
        }
    }

    #[test]
    fn rate_examples() {
        assert_eq!(Rate::from_bytes_per_sec(512_000), Rate(0x8315));
        assert_eq!(Rate(0x8315).bytes_per_sec(), 511_963); // 2097 × 10/4096 × 10^5
        assert!(Rate::UNLIMITED.bytes_per_sec() > 280_000_000_000_000);
        for r in [1u64, 9, 10, 999, 128_000, 1_280_000, 125_000_000] {
            let back = Rate::from_bytes_per_sec(r).bytes_per_sec();
            assert!(back.abs_diff(r) * 1000 <= r + 1000, "r={r} back={back}");
        }
    }
}
