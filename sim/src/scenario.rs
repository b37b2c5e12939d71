//! What a simulation run is: the files, the sender's settings, the receivers in classes with
//! their paths, and the events that befall them — built from command-line options or read from
//! a TOML scenario file.
//!
//! # Scenario files
//! Every key is optional; the values below are the defaults.
//!
//! ```toml
//! seed = 1                 # SIM_SEED, then this, then 1
//! receivers = 100          # spread over the classes by their shares
//! limit = "2h"             # virtual time after which the run is cut off
//!
//! [[file]]                 # one table per file (default: one "file.bin" of 1 MiB)
//! name = "file.bin"
//! size = "1MiB"
//!
//! [sender]
//! rate = "100Mbit"         # the sender's fixed rate, uftp -R ("none": unpaced; "auto": the
//!                           # adaptive default, uftp-rs without -R)
//! blocksize = 1300         # uftp -b
//! grtt = "500ms"           # uftp -r init:min:max
//! grtt_min = "10ms"
//! grtt_max = "15s"
//! robust = 20              # uftp -s
//! max_passes = 65535       # uftp -a
//! link_rate = "none"       # the sender's interface
//! link_queue = "none"      # bytes its queue holds
//!
//! [[class]]                # receivers sharing path properties (default: one class "all")
//! name = "all"
//! share = 1                # relative weight; or `count = N` receivers exactly
//! delay = "10ms"           # downstream one-way delay
//! loss = "0%"              # downstream independent loss (a percentage)
//! burst = 0                # > 0: the loss comes in Gilbert–Elliott bursts of this mean length
//! outage = "0%"            # chance per datagram of an outage of `outage_len`
//! outage_len = "50ms"
//! dup = "0%"
//! jitter = "0ms"           # uniform extra delay per datagram
//! reorder = "0%"           # chance per datagram of being held back by `reorder_delay`
//! reorder_delay = "5ms"
//! rate = "none"            # downstream bottleneck (shared by the class's datagrams)
//! queue = "none"
//! mtu = "none"             # datagrams larger than this (with 28 bytes of IP/UDP) are lost
//! up_delay = "10ms"        # the return path; each defaults to its downstream value
//! up_loss = "0%"
//! up_burst = 0
//! up_jitter = "0ms"
//!
//! [[event]]                # things that happen to receivers
//! at = "5s"                # after the start
//! action = "crash"         # crash: stops dead; leave: leaves the multicast group;
//!                          # join: is not in the group before `at`
//! class = "wan"            # whose receivers (default: every class)
//! count = 10               # the first `count` of them, or `fraction = "10%"` (default: all)
//! ```
//!
//! Sizes take `B`, `kB`/`MB`/`GB` (powers of 1000) and `K`/`M`/`G` or `KiB`/`MiB`/`GiB`
//! (powers of 1024). Rates are bits per second with `k`/`M`/`G` (powers of 1000) and an
//! optional `bit`, `bps` or `bit/s`, or bytes per second with `B/s`. Durations take `us`, `ms`,
//! `s`, `m` or `h` (a bare number is seconds). Percentages take an optional `%`.

use std::time::Duration;

use serde::Deserialize;

use crate::link::{ppm, GilbertElliott, LinkConfig};

/// The most receivers a run may have (the sender's client table).
pub const MAX_RECEIVERS: u32 = 65_000;

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The seed of every random choice.
    pub seed: u64,
    /// Number of receivers.
    pub receivers: u32,
    /// What is sent.
    pub files: Vec<FileSpec>,
    /// The sender's settings.
    pub sender: SenderSpec,
    /// Receiver classes (at least one).
    pub classes: Vec<ClassSpec>,
    /// Events, in any order.
    pub events: Vec<EventSpec>,
    /// Virtual time after which the run is cut off.
    pub limit: Duration,
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The sender's settings (uftp's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderSpec {
    /// Fixed rate in bytes per second (`None`: unpaced, or adaptive).
    pub rate: Option<u64>,
    /// The adaptive default rate (uftp-rs without `-R`): `rate` is `None`.
    pub adaptive: bool,
    /// Block size.
    pub blocksize: u16,
    /// Initial, smallest and largest GRTT.
    pub grtt: Duration,
    /// Smallest GRTT.
    pub grtt_min: Duration,
    /// Largest GRTT.
    pub grtt_max: Duration,
    /// Robustness factor.
    pub robust: u8,
    /// Passes after which incomplete receivers are dropped.
    pub max_passes: u16,
    /// The sender's interface rate, bytes per second.
    pub link_rate: Option<u64>,
    /// Its queue, bytes.
    pub link_queue: Option<u64>,
}

impl Default for SenderSpec {
    fn default() -> Self {
        SenderSpec {
            rate: Some(100_000_000 / 8),
            adaptive: false,
            blocksize: 1300,
            grtt: Duration::from_millis(500),
            grtt_min: Duration::from_millis(10),
            grtt_max: Duration::from_secs(15),
            robust: 20,
            max_passes: 65535,
            link_rate: None,
            link_queue: None,
        }
    }
}

/// A class of receivers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSpec {
    /// Its name.
    pub name: String,
    /// How many receivers it gets: exactly `count`, or a `share` of the rest.
    pub count: Option<u32>,
    /// Relative weight among the classes without a count.
    pub share: f64,
    /// The path from the sender.
    pub down: LinkConfig,
    /// The path back.
    pub up: LinkConfig,
}

impl ClassSpec {
    /// One class of every receiver, `delay` each way and independent `loss_percent` both ways.
    pub fn uniform(loss_percent: f64, delay: Duration) -> ClassSpec {
        let link = LinkConfig::lossy(loss_percent, delay);
        ClassSpec {
            name: "all".into(),
            count: None,
            share: 1.0,
            down: link,
            up: link,
        }
    }
}

/// What happens to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It stops dead: hears and sends nothing more.
    Crash,
    /// It leaves the multicast group (and keeps running).
    Leave,
    /// It is not in the multicast group before the event.
    Join,
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// When, after the start.
    pub at: Duration,
    /// What.
    pub action: Action,
    /// The class whose receivers it concerns (`None`: every class).
    pub class: Option<String>,
    /// The first `count` of them (`None`: see `fraction`).
    pub count: Option<u32>,
    /// Or this fraction of them (`None` with no count: all).
    pub fraction: Option<f64>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            receivers: 100,
            files: vec![FileSpec {
                name: "file.bin".into(),
                size: 1 << 20,
            }],
            sender: SenderSpec::default(),
            classes: vec![ClassSpec::uniform(0.0, Duration::from_millis(10))],
            events: Vec::new(),
            limit: Duration::from_secs(7200),
        }
    }
}

impl Scenario {
    /// The receivers of each class, as index ranges `start..end` over `0..receivers`.
    pub fn class_ranges(&self) -> Vec<std::ops::Range<u32>> {
        let fixed: u32 = self.classes.iter().filter_map(|c| c.count).sum();
        let rest = self.receivers.saturating_sub(fixed);
        let weights: f64 = (self.classes.iter())
            .filter(|c| c.count.is_none())
            .map(|c| c.share.max(0.0))
            .sum();
        let mut ranges = Vec::new();
        let (mut start, mut acc_weight, mut given) = (0u32, 0.0f64, 0u32);
        for c in &self.classes {
            let n = match c.count {
                Some(n) => n,
                None => {
                    // Cumulative rounding, so the shares add up to `rest` exactly.
                    acc_weight += c.share.max(0.0);
                    let upto = if weights > 0.0 {
                        (f64::from(rest) * acc_weight / weights).round() as u32
                    } else {
                        0
                    };
                    let n = upto.saturating_sub(given);
                    given += n;
                    n
                }
            };
            ranges.push(start..start + n);
            start += n;
        }
        ranges
    }

    /// The receivers an event concerns.
    pub fn event_targets(&self, e: &EventSpec) -> Vec<u32> {
        let mut out = Vec::new();
        for (c, r) in self.classes.iter().zip(self.class_ranges()) {
            if e.class.as_ref().is_some_and(|n| *n != c.name) {
                continue;
            }
            let len = r.end - r.start;
            let n = match (e.count, e.fraction) {
                (Some(n), _) => n.min(len),
                (None, Some(f)) => (f64::from(len) * f.clamp(0.0, 1.0)).round() as u32,
                (None, None) => len,
            };
            out.extend(r.start..r.start + n);
        }
        out
    }

    /// Checks what the state machines or the network would refuse.
    pub fn validate(&self) -> Result<(), String> {
        if self.receivers == 0 || self.receivers > MAX_RECEIVERS {
            return Err(format!("receivers must be 1-{MAX_RECEIVERS}"));
        }
        if self.files.is_empty() {
            return Err("there must be at least one file".into());
        }
        if self.classes.is_empty() {
            return Err("there must be at least one class".into());
        }
        let total: u32 = self.class_ranges().iter().map(|r| r.end - r.start).sum();
        if total != self.receivers {
            return Err(format!(
                "the classes' counts add up to {total}, not to {} receivers",
                self.receivers
            ));
        }
        for e in &self.events {
            if let Some(n) = &e.class {
                if !self.classes.iter().any(|c| c.name == *n) {
                    return Err(format!("event for unknown class `{n}`"));
                }
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            if self.files[..i].iter().any(|g| g.name == f.name) {
                return Err(format!("file `{}` listed twice", f.name));
            }
        }
        Ok(())
    }

    /// Reads a TOML scenario (see the module documentation).
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.into_scenario()
    }

    /// A one-line description of the classes.
    pub fn describe_classes(&self) -> String {
        let ranges = self.class_ranges();
        let parts: Vec<String> = (self.classes.iter().zip(ranges))
            .map(|(c, r)| {
                let d = &c.down;
                let mut s = format!(
                    "{} ×{}: {} ms",
                    c.name,
                    r.end - r.start,
                    d.delay.as_secs_f64() * 1000.0
                );
                let loss = f64::from(d.loss_ppm) / 1e4;
                if let Some(g) = d.gilbert {
                    let mean = 1e6 / f64::from(g.leave_bad_ppm.max(1));
                    let avg = f64::from(g.enter_bad_ppm)
                        / f64::from(g.enter_bad_ppm + g.leave_bad_ppm).max(1.0)
                        * 100.0;
                    s += &format!(", loss {avg:.3}% in bursts of {mean:.1}");
                } else {
                    s += &format!(", loss {loss}%");
                }
                if let Some(r) = d.rate {
                    s += &format!(", {}", format_rate(r));
                }
                s
            })
            .collect();
        parts.join("; ")
    }
}

/// A number with a unit, as written in a scenario file or on the command line.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Quantity {
    Number(f64),
    Text(String),
}

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Number(n) => format!("{n}"),
            Quantity::Text(s) => s.clone(),
        }
    }
}

fn split_unit(s: &str) -> (f64, String) {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    // An exponent's `e` only when digits follow it.
    let (num, unit) = s.split_at(end);
    match num.parse::<f64>() {
        Ok(n) => (n, unit.trim().to_string()),
        Err(_) => (f64::NAN, s.to_string()),
    }
}

/// Parses a size: `64MiB`, `50MB`, `1300`, `4K`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (n, unit) = split_unit(s);
    let mult: f64 = match unit.as_str() {
        "" | "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("`{s}`: not a size (e.g. 64MiB, 50MB, 1300)")),
    };
    if n.is_nan() || n < 0.0 {
        return Err(format!("`{s}`: not a size (e.g. 64MiB, 50MB, 1300)"));
    }
    Ok((n * mult).round() as u64)
}

/// The sender's rate: a fixed rate or `none` (unpaced) as [`parse_rate`], or `auto`, the
/// adaptive default (the `bool`).
pub fn parse_sender_rate(s: &str) -> Result<(Option<u64>, bool), String> {
    if s.trim() == "auto" {
        return Ok((None, true));
    }
    parse_rate(s).map(|r| (r, false))
}

/// Parses a rate into bytes per second (`None` for `none`): `100Mbit`, `1G`, `12.5MB/s`.
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if matches!(t, "none" | "unlimited" | "-1") {
        return Ok(None);
    }
    let err = || format!("`{s}`: not a rate (e.g. 100Mbit, 1G, 12.5MB/s, none)");
    let (n, unit) = split_unit(t);
    if n.is_nan() || n <= 0.0 {
        return Err(err());
    }
    let (prefix, bits) = if let Some(p) = unit.strip_suffix("B/s") {
        (p, false)
    } else if let Some(p) = unit.strip_suffix("Bps") {
        (p, false)
    } else {
        let p = ["bit/s", "bps", "bit", "b"]
            .iter()
            .find_map(|suf| unit.strip_suffix(suf))
            .unwrap_or(&unit);
        (p, true)
    };
    let mult = match prefix {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => return Err(err()),
    };
    let value = n * mult;
    let bytes = if bits { value / 8.0 } else { value };
    Ok(Some(bytes.round().max(1.0) as u64))
}

/// Parses a duration: `10ms`, `1.5s`, `200us`, `2m`, `1h`, `3` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = split_unit(s);
    let secs = match unit.as_str() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => f64::NAN,
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("`{s}`: not a duration (e.g. 10ms, 1.5s, 200us)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a percentage (`1%`, `1`, `0.5`) into a fraction.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix('%').unwrap_or(t).trim();
    match t.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!("`{s}`: not a percentage 0-100 (e.g. 1%, 0.5)")),
    }
}

/// A rate for people: `100.0 Mbit/s`.
pub fn format_rate(bytes_per_sec: u64) -> String {
    let bits = bytes_per_sec as f64 * 8.0;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else if bits >= 1e6 {
        format!("{:.1} Mbit/s", bits / 1e6)
    } else {
        format!("{:.1} kbit/s", bits / 1e3)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    seed: Option<u64>,
    receivers: Option<u32>,
    limit: Option<Quantity>,
    #[serde(default)]
    file: Vec<RawFile>,
    sender: Option<RawSender>,
    #[serde(default)]
    class: Vec<RawClass>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    size: Quantity,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    rate: Option<Quantity>,
    blocksize: Option<u16>,
    grtt: Option<Quantity>,
    grtt_min: Option<Quantity>,
    grtt_max: Option<Quantity>,
    robust: Option<u8>,
    max_passes: Option<u16>,
    link_rate: Option<Quantity>,
    link_queue: Option<Quantity>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    name: Option<String>,
    share: Option<f64>,
    count: Option<u32>,
    delay: Option<Quantity>,
    loss: Option<Quantity>,
    burst: Option<f64>,
    outage: Option<Quantity>,
    outage_len: Option<Quantity>,
    dup: Option<Quantity>,
    jitter: Option<Quantity>,
    reorder: Option<Quantity>,
    reorder_delay: Option<Quantity>,
    rate: Option<Quantity>,
    queue: Option<Quantity>,
    mtu: Option<Quantity>,
    up_delay: Option<Quantity>,
    up_loss: Option<Quantity>,
    up_burst: Option<f64>,
    up_jitter: Option<Quantity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: Quantity,
    action: String,
    class: Option<String>,
    count: Option<u32>,
    fraction: Option<Quantity>,
}

fn opt<T>(
    q: &Option<Quantity>,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    q.as_ref()
        .map(|q| parse(&q.text()).map_err(|e| format!("{what}: {e}")))
        .transpose()
}

/// The loss part of a path: independent, or Gilbert–Elliott bursts of mean length `burst`.
pub fn set_loss(link: &mut LinkConfig, loss: f64, burst: f64) {
    if burst > 0.0 && loss > 0.0 {
        link.loss_ppm = 0;
        link.gilbert = Some(GilbertElliott::bursts(loss, burst));
    } else {
        link.loss_ppm = ppm(loss);
        link.gilbert = None;
    }
}

impl RawClass {
    fn into_class(self, i: usize) -> Result<ClassSpec, String> {
        let name = self.name.unwrap_or_else(|| {
            if i == 0 {
                "all".into()
            } else {
                format!("class{i}")
            }
        });
        let at = |what: &str| format!("class `{name}`, {what}");
        let delay =
            opt(&self.delay, &at("delay"), parse_duration)?.unwrap_or(Duration::from_millis(10));
        let loss = opt(&self.loss, &at("loss"), parse_percent)?.unwrap_or(0.0);
        let burst = self.burst.unwrap_or(0.0);
        let mut down = LinkConfig {
            delay,
            burst_start_ppm: ppm(opt(&self.outage, &at("outage"), parse_percent)?.unwrap_or(0.0)),
            burst: opt(&self.outage_len, &at("outage_len"), parse_duration)?
                .unwrap_or(Duration::from_millis(50)),
            dup_ppm: ppm(opt(&self.dup, &at("dup"), parse_percent)?.unwrap_or(0.0)),
            jitter: opt(&self.jitter, &at("jitter"), parse_duration)?.unwrap_or_default(),
            reorder_ppm: ppm(opt(&self.reorder, &at("reorder"), parse_percent)?.unwrap_or(0.0)),
            reorder_delay: opt(&self.reorder_delay, &at("reorder_delay"), parse_duration)?
                .unwrap_or(Duration::from_millis(5)),
            rate: opt(&self.rate, &at("rate"), parse_rate)?.flatten(),
            queue: opt(&self.queue, &at("queue"), |s| {
                if s.trim() == "none" {
                    Ok(None)
                } else {
                    parse_size(s).map(Some)
                }
            })?
            .flatten(),
            mtu: opt(&self.mtu, &at("mtu"), |s| {
                if s.trim() == "none" {
                    Ok(None)
                } else {
                    parse_size(s).map(|n| Some(n as u32))
                }
            })?
            .flatten(),
            ..LinkConfig::default()
        };
        set_loss(&mut down, loss, burst);
        let mut up = LinkConfig {
            delay: opt(&self.up_delay, &at("up_delay"), parse_duration)?.unwrap_or(delay),
            jitter: opt(&self.up_jitter, &at("up_jitter"), parse_duration)?.unwrap_or(down.jitter),
            ..LinkConfig::default()
        };
        let up_loss = opt(&self.up_loss, &at("up_loss"), parse_percent)?.unwrap_or(loss);
        set_loss(&mut up, up_loss, self.up_burst.unwrap_or(burst));
        Ok(ClassSpec {
            name,
            count: self.count,
            share: self.share.unwrap_or(1.0),
            down,
            up,
        })
    }
}

impl RawScenario {
    fn into_scenario(self) -> Result<Scenario, String> {
        let mut sc = Scenario::default();
        if let Some(s) = self.seed {
            sc.seed = s;
        }
        if let Some(l) = opt(&self.limit, "limit", parse_duration)? {
            sc.limit = l;
        }
        if !self.file.is_empty() {
            sc.files = (self.file.into_iter())
                .map(|f| {
                    let size = parse_size(&f.size.text())
                        .map_err(|e| format!("file `{}`: {e}", f.name))?;
                    Ok(FileSpec { name: f.name, size })
                })
                .collect::<Result<_, String>>()?;
        }
        if let Some(s) = self.sender {
            let d = &mut sc.sender;
            if let Some(r) = opt(&s.rate, "sender rate", parse_sender_rate)? {
                (d.rate, d.adaptive) = r;
            }
            d.blocksize = s.blocksize.unwrap_or(d.blocksize);
            d.grtt = opt(&s.grtt, "grtt", parse_duration)?.unwrap_or(d.grtt);
            d.grtt_min = opt(&s.grtt_min, "grtt_min", parse_duration)?.unwrap_or(d.grtt_min);
            d.grtt_max = opt(&s.grtt_max, "grtt_max", parse_duration)?.unwrap_or(d.grtt_max);
            d.robust = s.robust.unwrap_or(d.robust);
            d.max_passes = s.max_passes.unwrap_or(d.max_passes);
            if let Some(r) = opt(&s.link_rate, "link_rate", parse_rate)? {
                d.link_rate = r;
            }
            if let Some(q) = opt(&s.link_queue, "link_queue", |t| {
                if t.trim() == "none" {
                    Ok(None)
                } else {
                    parse_size(t).map(Some)
                }
            })? {
                d.link_queue = q;
            }
        }
        if !self.class.is_empty() {
            sc.classes = (self.class.into_iter().enumerate())
                .map(|(i, c)| c.into_class(i))
                .collect::<Result<_, String>>()?;
        }
        sc.receivers = match self.receivers {
            Some(n) => n,
            None if sc.classes.iter().all(|c| c.count.is_some()) => {
                sc.classes.iter().filter_map(|c| c.count).sum()
            }
            None => sc.receivers,
        };
        for e in self.event {
            let action = match e.action.as_str() {
                "crash" => Action::Crash,
                "leave" => Action::Leave,
                "join" => Action::Join,
                other => return Err(format!("event action `{other}`: use crash, leave or join")),
            };
            sc.events.push(EventSpec {
                at: parse_duration(&e.at.text()).map_err(|m| format!("event at: {m}"))?,
                action,
                class: e.class,
                count: e.count,
                fraction: opt(&e.fraction, "event fraction", parse_percent)?,
            });
        }
        sc.validate()?;
        Ok(sc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("1300"), Ok(1300));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_rate("100Mbit"), Ok(Some(12_500_000)));
        assert_eq!(parse_rate("100M"), Ok(Some(12_500_000)));
        assert_eq!(parse_rate("1Gbit/s"), Ok(Some(125_000_000)));
        assert_eq!(parse_rate("12.5MB/s"), Ok(Some(12_500_000)));
        assert_eq!(parse_rate("none"), Ok(None));
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("30"), Ok(0.3));
        assert!(parse_percent("101").is_err());
    }

    #[test]
    fn a_scenario_file_with_classes_and_events() {
        let sc = Scenario::from_toml(
            r#"
            seed = 42
            receivers = 1000
            [[file]]
            name = "image.bin"
            size = "50MiB"
            [sender]
            rate = "200Mbit"
            [[class]]
            name = "lan"
            share = 9
            delay = "1ms"
            loss = "0.1%"
            [[class]]
            name = "wan"
            share = 1
            delay = "40ms"
            loss = 5
            burst = 4
            up_loss = "1%"
            [[event]]
            at = "3s"
            action = "crash"
            class = "wan"
            count = 10
            [[event]]
            at = "1s"
            action = "join"
            fraction = "1%"
            "#,
        )
        .unwrap();
        assert_eq!(sc.seed, 42);
        assert_eq!(sc.files[0].size, 50 << 20);
        assert_eq!(sc.sender.rate, Some(25_000_000));
        assert_eq!(sc.class_ranges(), vec![0..900, 900..1000]);
        let wan = &sc.classes[1];
        assert_eq!(wan.down.delay, Duration::from_millis(40));
        assert!(wan.down.gilbert.is_some() && wan.down.loss_ppm == 0);
        // The return path takes the class's burstiness, with its own mean loss.
        let up = wan.up.gilbert.unwrap();
        let mean = f64::from(up.enter_bad_ppm) / f64::from(up.enter_bad_ppm + up.leave_bad_ppm);
        assert!((mean - 0.01).abs() < 1e-4, "{mean}");
        assert_eq!(wan.up.delay, Duration::from_millis(40));
        assert_eq!(
            sc.event_targets(&sc.events[0]),
            (900..910).collect::<Vec<_>>()
        );
        let joiners = sc.event_targets(&sc.events[1]);
        assert_eq!(joiners.len(), 10);
        assert_eq!(&joiners[..9], &(0..9).collect::<Vec<_>>()[..]);
        assert_eq!(joiners[9], 900);
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        let err = |t: &str| Scenario::from_toml(t).unwrap_err();
        assert!(err("receivers = 0").contains("receivers"));
        assert!(err("colour = 1").contains("colour"));
        assert!(err("[[class]]\nloss = \"lots\"").contains("loss"));
        assert!(err("[[event]]\nat = 1\naction = \"explode\"").contains("explode"));
        assert!(err("[[event]]\nat = 1\naction = \"crash\"\nclass = \"x\"").contains("`x`"));
        assert!(err("receivers = 10\n[[class]]\ncount = 3").contains("add up"));
    }
}
