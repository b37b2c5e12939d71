//! The programs' command lines as data: one [`Page`] per program, next to its parser, from which
//! the man pages (roff) and the shell completions (bash, zsh) are rendered. Each parser's tests
//! check that it accepts exactly the options its page lists (a value where the page names one),
//! and `generated_files_are_current` below checks that the files under `std-host/packaging/`
//! are what the pages render now, so pages, parsers, man pages and completions cannot drift.
//! `cargo xtask man` rewrites those files.

use std::fmt::Write as _;

/// How a shell completes an option's value or an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complete {
    /// Nothing to offer (a number, an address, free text).
    Nothing,
    /// A file name.
    File,
    /// A directory name.
    Dir,
    /// A network interface name.
    Interface,
    /// One of these words.
    Words(&'static [&'static str]),
}

/// One option of a program.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The letter of `-x`, or `None` for a long-only option.
    pub short: Option<char>,
    /// The name of `--name`, if it has one.
    pub long: Option<&'static str>,
    /// The value's name (`None`: a flag).
    pub value: Option<&'static str>,
    /// How its value is completed.
    pub complete: Complete,
    /// What it does (plain text; paragraphs separated by blank lines).
    pub help: &'static str,
}

impl Opt {
    /// A flag `-c`.
    pub const fn flag(c: char, help: &'static str) -> Opt {
        Opt {
            short: Some(c),
            long: None,
            value: None,
            complete: Complete::Nothing,
            help,
        }
    }

    /// An option `-c value`.
    pub const fn value(
        c: char,
        value: &'static str,
        complete: Complete,
        help: &'static str,
    ) -> Opt {
        Opt {
            short: Some(c),
            long: None,
            value: Some(value),
            complete,
            help,
        }
    }

    /// A long flag `--name`.
    pub const fn long_flag(name: &'static str, help: &'static str) -> Opt {
        Opt {
            short: None,
            long: Some(name),
            value: None,
            complete: Complete::Nothing,
            help,
        }
    }

    /// A long option `--name value`.
    pub const fn long_value(
        name: &'static str,
        value: &'static str,
        complete: Complete,
        help: &'static str,
    ) -> Opt {
        Opt {
            short: None,
            long: Some(name),
            value: Some(value),
            complete,
            help,
        }
    }

    /// An option with a letter and a long name (`-c`, `--name`), with a value if `value` is
    /// given.
    pub const fn both(
        c: char,
        name: &'static str,
        value: Option<&'static str>,
        complete: Complete,
        help: &'static str,
    ) -> Opt {
        Opt {
            short: Some(c),
            long: Some(name),
            value,
            complete,
            help,
        }
    }

    /// How it is written: `-c` or `--name` (the letter when it has both).
    pub fn spelling(&self) -> String {
        self.spellings().remove(0)
    }

    /// Every way it is written: `-c`, `--name`.
    pub fn spellings(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(c) = self.short {
            v.push(format!("-{c}"));
        }
        if let Some(l) = self.long {
            v.push(format!("--{l}"));
        }
        v
    }
}

/// A program's manual: its options and the prose around them.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The program's name.
    pub name: &'static str,
    /// The NAME line's description.
    pub summary: &'static str,
    /// Operands after the options in the synopsis (empty: none).
    pub operands: &'static str,
    /// How operands are completed.
    pub complete_operands: Complete,
    /// Paragraphs of the DESCRIPTION.
    pub description: &'static [&'static str],
    /// The options, in the order of the page.
    pub options: &'static [Opt],
    /// Letters of which exactly one must be given (uftpproxyd's modes), shown as
    /// `{ -s dest | -c | -r }` ahead of the other options; empty for none.
    pub one_of: &'static [char],
    /// Options uftp 4.10.2 has that this program refuses by name, and why (shown on the page).
    pub refused: fn(char) -> Option<&'static str>,
    /// Further sections: title and paragraphs (EXIT STATUS, SIGNALS, FILES, EXAMPLES …).
    pub sections: &'static [(&'static str, &'static [&'static str])],
    /// SEE ALSO.
    pub see_also: &'static str,
}

impl Page {
    /// The option written `-c`, if the page has one.
    pub fn short(&self, c: char) -> Option<&Opt> {
        self.options.iter().find(|o| o.short == Some(c))
    }

    /// The option written `--name`, if the page has one.
    pub fn long(&self, name: &str) -> Option<&Opt> {
        self.options.iter().find(|o| o.long == Some(name))
    }

    /// Whether the program refuses this option by name (not carried out by this version).
    fn refuses(&self, o: &Opt) -> bool {
        o.short.and_then(self.refused).is_some()
    }
}

/// What `--version` says after the program's name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (uftp-rs, speaking the UFTP 4 protocol)"
);

/// `--help` and `--version`, the two options every program answers before doing anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Info {
    /// `--help`: the usage and a summary of the options, on standard output.
    Help,
    /// `--version`: one line, on standard output.
    Version,
}

/// The long options every page lists for [`Info`] (uftp's `-h` is its hash, uftpd's and
/// uftpproxyd's its heartbeat interval, so only the long forms).
pub const HELP: Opt = Opt::long_flag(
    "help",
    "Print the usage and a summary of the options, and exit.",
);
/// See [`HELP`].
pub const VERSION_OPT: Opt = Opt::long_flag("version", "Print the version, and exit.");

/// Whether the command line asks for `--help` or `--version` (the first of them wins), read as
/// the program's parser reads it ([`Getopt`]): a value of an option that takes one
/// (`-D --help`) is not an option, and `--` ends the options. The program answers it before
/// anything else, so neither starts a daemon nor does any work.
pub fn info_request<S: AsRef<str>>(page: &Page, args: &[S]) -> Option<Info> {
    let args = args.iter().map(|a| a.as_ref().to_string());
    for item in Getopt::new(page, args) {
        match item {
            Ok(Arg::Long("help", _)) => return Some(Info::Help),
            Ok(Arg::Long("version", _)) => return Some(Info::Version),
            _ => {}
        }
    }
    None
}

/// One item of a command line, as [`Getopt`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `-c` (with its value when the page gives it one).
    Short(char, Option<String>),
    /// `--name` (with its value when the page gives it one).
    Long(&'static str, Option<String>),
    /// An operand: a word that is not an option, or any word after `--`.
    Operand(String),
}

/// What is wrong with an option; the program adds its hint (its usage, `man uftp` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    /// `-c` or `--name` is not on the page.
    Unknown(String),
    /// `-c` or `--name` takes a value and none was given.
    NeedsValue(String),
    /// `--name=value` for a flag.
    TakesNoValue(String),
    /// The page lists the letter, but this version refuses it (see [`Page::refused`]), and why.
    Refused(char, &'static str),
}

impl std::fmt::Display for GetoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetoptError::Unknown(o) => write!(f, "unknown option {o}"),
            GetoptError::NeedsValue(o) => write!(f, "option {o} needs a value"),
            GetoptError::TakesNoValue(o) => write!(f, "{o} takes no value"),
            GetoptError::Refused(c, what) => write!(f, "-{c} ({what}) is not supported yet"),
        }
    }
}

impl std::error::Error for GetoptError {}

/// uftpd's and uftpproxyd's words for a [`GetoptError`]: an unknown option or a missing
/// value is followed by the usage (except `--json`'s, which says what it wants: `json_hint`).
pub fn daemon_getopt_error(page: &Page, e: GetoptError, json_hint: &str) -> String {
    match &e {
        GetoptError::NeedsValue(o) if o == "--json" => format!("{e} ({json_hint})"),
        GetoptError::Unknown(_) | GetoptError::NeedsValue(_) => format!("{e}\n{}", usage(page)),
        GetoptError::TakesNoValue(_) | GetoptError::Refused(..) => e.to_string(),
    }
}

/// The one getopt of the programs, driven by their [`Page`]: clustered flags (`-lq`), values
/// attached or in the next word (`-R1000`, `-R 1000`, `-R -1`: the next word is the value
/// whatever it looks like), long options (`--json FILE`, `--json=FILE`, `--allow-weak`), `--`
/// ending the options, operands anywhere (GNU order), and the letters the page refuses by
/// name. Items come in the order of the command line; after an error the reading goes on with
/// the next letter or word, so a caller may skip errors ([`info_request`]).
#[derive(Debug)]
pub struct Getopt<'p, I> {
    page: &'p Page,
    args: I,
    /// The letters of a cluster still to read (`-lq` after `l`: `q`).
    cluster: String,
    /// After `--`: every word is an operand.
    operands_only: bool,
    /// Flags that take a value after a colon in their own word (`-r:prime256v1`).
    colon_values: &'static str,
}

impl<'p, I: Iterator<Item = String>> Getopt<'p, I> {
    /// Reads `args` (without the program name) against `page`.
    pub fn new(page: &'p Page, args: impl IntoIterator<IntoIter = I>) -> Self {
        Getopt {
            page,
            args: args.into_iter(),
            cluster: String::new(),
            operands_only: false,
            colon_values: "",
        }
    }

    /// Lets these flags carry a value after a colon in their own word: uftpproxyd's
    /// `-r:curve` (the form of its man page; 4.10.2's getopt refuses it).
    pub fn colon_values(mut self, letters: &'static str) -> Self {
        self.colon_values = letters;
        self
    }

    fn short(&mut self) -> Result<Arg, GetoptError> {
        let c = self.cluster.remove(0);
        let Some(opt) = self.page.short(c) else {
            return Err(GetoptError::Unknown(format!("-{c}")));
        };
        if opt.value.is_none() {
            if self.colon_values.contains(c) {
                if let Some(v) = self.cluster.strip_prefix(':') {
                    let v = v.to_string();
                    self.cluster.clear();
                    return Ok(Arg::Short(c, Some(v)));
                }
            }
            return match (self.page.refused)(c) {
                Some(why) => Err(GetoptError::Refused(c, why)),
                None => Ok(Arg::Short(c, None)),
            };
        }
        let value = if self.cluster.is_empty() {
            self.args.next()
        } else {
            Some(std::mem::take(&mut self.cluster))
        };
        match ((self.page.refused)(c), value) {
            (Some(why), _) => Err(GetoptError::Refused(c, why)),
            (None, Some(v)) => Ok(Arg::Short(c, Some(v))),
            (None, None) => Err(GetoptError::NeedsValue(format!("-{c}"))),
        }
    }

    fn long(&mut self, word: &str) -> Result<Arg, GetoptError> {
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (word, None),
        };
        let Some(name) = self.page.long(name).and_then(|o| o.long) else {
            return Err(GetoptError::Unknown(format!("--{name}")));
        };
        if self.page.long(name).is_some_and(|o| o.value.is_none()) {
            return match inline {
                Some(_) => Err(GetoptError::TakesNoValue(format!("--{name}"))),
                None => Ok(Arg::Long(name, None)),
            };
        }
        match inline.or_else(|| self.args.next()) {
            Some(v) if !v.is_empty() => Ok(Arg::Long(name, Some(v))),
            _ => Err(GetoptError::NeedsValue(format!("--{name}"))),
        }
    }
}

impl<I: Iterator<Item = String>> Iterator for Getopt<'_, I> {
    type Item = Result<Arg, GetoptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.cluster.is_empty() {
            return Some(self.short());
        }
        let word = self.args.next()?;
        if self.operands_only || word == "-" || !word.starts_with('-') {
            return Some(Ok(Arg::Operand(word)));
        }
        if word == "--" {
            self.operands_only = true;
            return self.next();
        }
        if let Some(long) = word.strip_prefix("--") {
            return Some(self.long(long));
        }
        self.cluster = word[1..].to_string();
        Some(self.short())
    }
}

/// One option as the usage line writes it: `[ -p port ]`.
fn usage_item(o: &Opt) -> String {
    match o.value {
        Some(v) => format!("[ {} {v} ]", o.spelling()),
        None => format!("[ {} ]", o.spelling()),
    }
}

/// Words laid out in lines of at most `width` columns (a longer word gets a line of its own),
/// the first line starting with `first`, the others with `indent`.
fn fill(
    first: &str,
    words: impl IntoIterator<Item = String>,
    width: usize,
    indent: &str,
) -> String {
    let mut out = first.to_string();
    let mut line = first.chars().count();
    let mut fresh = first.trim().is_empty();
    for w in words {
        let n = w.chars().count();
        if !fresh && line + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.chars().count();
            fresh = true;
        }
        if !fresh {
            out.push(' ');
            line += 1;
        }
        out.push_str(&w);
        line += n;
        fresh = false;
    }
    out
}

/// The usage: every option the program carries out (those it refuses by name are left out),
/// uftpproxyd's modes first as `{ -s dest | -c | -r }`, and the operands; lines of at most 79
/// columns, continued with an indent as uftp 4.10.2's are.
pub fn usage(p: &Page) -> String {
    let mut items = Vec::new();
    if !p.one_of.is_empty() {
        let alternatives: Vec<String> = p
            .one_of
            .iter()
            .filter_map(|&c| p.short(c))
            .map(|o| match o.value {
                Some(v) => format!("{} {v}", o.spelling()),
                None => o.spelling(),
            })
            .collect();
        items.push(format!("{{ {} }}", alternatives.join(" | ")));
    }
    for o in p.options {
        let in_group = o.short.is_some_and(|c| p.one_of.contains(&c));
        if !in_group && !p.refuses(o) {
            items.push(usage_item(o));
        }
    }
    if !p.operands.is_empty() {
        items.push(p.operands.to_string());
    }
    fill(&format!("usage: {}", p.name), items, 79, "    ")
}

/// The first sentence of an option's help and its default (`Default 1044.`), if its first
/// paragraph gives one, on one line.
fn summary_of(help: &str) -> String {
    let para = help.split("\n\n").next().unwrap_or("").replace('\n', " ");
    let mut sentences = para.split(". ").map(|s| s.trim_end_matches('.'));
    let mut out = sentences.next().unwrap_or("").to_string();
    out.push('.');
    if let Some(default) = sentences.find(|s| s.starts_with("Default")) {
        let _ = write!(out, " {default}.");
    }
    out
}

/// What `--help` prints: the usage, what the program does in one line, the first sentence of
/// each option's help (options refused by name marked so), and where the rest is.
pub fn help(p: &Page) -> String {
    const COLUMN: usize = 28;
    let mut out = usage(p);
    let what = format!("{} - {}", p.name, p.summary);
    let what = fill("", what.split_whitespace().map(String::from), 79, "    ");
    let _ = write!(out, "\n\n{what}\n\nOptions:\n");
    for o in p.options {
        let mut spec = format!("  {}", o.spellings().join(", "));
        if let Some(v) = o.value {
            let _ = write!(spec, " {v}");
        }
        let mut text = summary_of(o.help);
        if p.refuses(o) {
            text.push_str(" Not supported by this version.");
        }
        let indent = " ".repeat(COLUMN);
        let first = if spec.chars().count() + 2 <= COLUMN {
            format!("{spec:<COLUMN$}")
        } else {
            format!("{spec}\n{indent}")
        };
        let words = text.split_whitespace().map(String::from);
        let body = fill("", words, 79 - COLUMN, "");
        let body = body.replace('\n', &format!("\n{indent}"));
        let _ = writeln!(out, "{first}{body}");
    }
    let _ = writeln!(out, "\nThe manual page, man {}, has the details.", p.name);
    out
}

/// Answers `--help` or `--version` on standard output, and returns the exit code (0). A closed
/// pipe (`uftp --help | head -1`) is not an error.
pub fn print_info(p: &Page, info: Info) -> i32 {
    use std::io::Write as _;
    let text = match info {
        Info::Help => help(p),
        Info::Version => format!("{} {VERSION}\n", p.name),
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    0
}

/// A node ID (`-U`, `-H`, server and client lists) as uftp 4.10.2 reads one, with C's
/// `strtoul(v, NULL, 16)`: hex digits, with or without `0x` (`12345678` is 0x12345678 in all
/// three programs); or, beyond 4.10.2 (whose strtoul reads `10.0.0.2` as 0x10), an IPv4
/// address (0x0A000002). 0 and 0xFFFFFFFF, which the protocol reserves, and anything else are
/// `None` (4.10.2 takes a `-U` it cannot read as 0, and then its default, unsaid).
pub fn parse_id(v: &str) -> Option<u32> {
    let v = v.trim();
    let id = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Ok(ip) = v.parse::<std::net::Ipv4Addr>() {
        u32::from(ip)
    } else {
        u32::from_str_radix(v, 16).ok()?
    };
    (id != 0 && id != u32::MAX).then_some(id)
}

/// A number as C's `strtol(v, NULL, 0)` reads it, as uftp 4.10.2 reads `-Q`: `0x` hex, a
/// leading `0` octal (`010` is 8), else decimal; all of `v` must be read (strtol would stop at
/// the first digit it cannot take, reading `080` as 0).
pub fn parse_c_number(v: &str) -> Option<u64> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if v.len() > 1 && v.starts_with('0') {
        return u64::from_str_radix(&v[1..], 8).ok();
    }
    v.parse().ok()
}

/// A UDP port to listen or send on (`-p`, uftpproxyd's `-q`): 1 to 65535 (4.10.2 refuses 0 in
/// the daemons; its uftp takes 0 and then fails on every send).
pub fn parse_port(v: &str) -> Option<u16> {
    v.parse().ok().filter(|&p| p != 0)
}

/// The heartbeat hosts of uftpd's and uftpproxyd's `-H hb_server[:port][,...]`, unresolved.
pub fn parse_hb_hosts(v: &str) -> Result<Vec<String>, String> {
    let hosts: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect();
    if hosts.is_empty() {
        return Err("-H needs at least one host".into());
    }
    Ok(hosts)
}

/// The heartbeat interval of uftpd's and uftpproxyd's `-h`: 1 to 3600 seconds, as 4.10.2's
/// ("Invalid heartbeat interval" above).
pub fn parse_hb_interval(v: &str) -> Result<std::time::Duration, String> {
    v.parse()
        .ok()
        .filter(|s| (1..=3600).contains(s))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("invalid heartbeat interval `{v}` for -h (1-3600 seconds)"))
}

/// Escapes text for roff: backslashes, hyphens as minus signs where they are options, and
/// lines that would start with a control character.
fn roff(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let esc = line.replace('\\', "\\e").replace('-', "\\-");
        if esc.starts_with('.') || esc.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&esc);
    }
    out
}

/// Paragraphs (blank-line separated) as roff: `.PP` between them; lines starting with two
/// spaces are kept as a literal block.
fn paragraphs(out: &mut String, text: &str) {
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str(".PP\n");
        }
        if para.starts_with("  ") {
            out.push_str(".nf\n.RS\n");
            for line in para.lines() {
                out.push_str(&roff(line.trim_start()));
                out.push('\n');
            }
            out.push_str(".RE\n.fi\n");
        } else {
            out.push_str(&roff(para));
            out.push('\n');
        }
    }
}

fn synopsis_item(o: &Opt) -> String {
    let name = format!("\\fB{}\\fR", roff(&o.spelling()));
    match o.value {
        Some(v) => format!("[{name} \\fI{}\\fR]", roff(v)),
        None => format!("[{name}]"),
    }
}

/// The man page (section 1) in roff.
pub fn man_page(p: &Page) -> String {
    let mut out = String::new();
    let upper = p.name.to_uppercase();
    let _ = writeln!(
        out,
        ".TH {} 1 \"\" \"uftp-rs {}\" \"User Commands\"",
        roff(&upper),
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(
        ".\\\" Generated from the option table in std-host; `cargo xtask man` rewrites it.\n",
    );
    let _ = writeln!(out, ".SH NAME\n{} \\- {}", roff(p.name), roff(p.summary));
    out.push_str(".SH SYNOPSIS\n.nh\n.ad l\n");
    let _ = write!(out, "\\fB{}\\fR", roff(p.name));
    if !p.one_of.is_empty() {
        let alternatives: Vec<String> = p
            .one_of
            .iter()
            .filter_map(|&c| p.short(c))
            .map(|o| {
                let name = format!("\\fB{}\\fR", roff(&o.spelling()));
                match o.value {
                    Some(v) => format!("{name} \\fI{}\\fR", roff(v)),
                    None => name,
                }
            })
            .collect();
        let _ = write!(out, "\n{{ {} }}", alternatives.join(" | "));
    }
    for o in p.options {
        if o.short.is_some_and(|c| p.one_of.contains(&c)) {
            continue;
        }
        let _ = write!(out, "\n{}", synopsis_item(o));
    }
    if !p.operands.is_empty() {
        let _ = write!(out, "\n\\fI{}\\fR", roff(p.operands));
    }
    out.push_str("\n.ad\n.hy\n.SH DESCRIPTION\n");
    for d in p.description {
        out.push_str(".PP\n");
        paragraphs(&mut out, d);
    }
    out.push_str(".SH OPTIONS\n");
    for o in p.options {
        let mut tag = o
            .spellings()
            .iter()
            .map(|s| format!("\\fB{}\\fR", roff(s)))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(v) = o.value {
            let _ = write!(tag, " \\fI{}\\fR", roff(v));
        }
        let _ = writeln!(out, ".TP\n{tag}");
        paragraphs(&mut out, o.help);
        if let Some(why) = o.short.and_then(p.refused) {
            let _ = writeln!(out, ".IP\nNot supported by this version: {}.", roff(why));
        }
    }
    for (title, paras) in p.sections {
        let _ = writeln!(out, ".SH {}", roff(title));
        for para in *paras {
            out.push_str(".PP\n");
            paragraphs(&mut out, para);
        }
    }
    let _ = writeln!(out, ".SH SEE ALSO\n{}", roff(p.see_also));
    out
}

fn bash_words(c: Complete, cur: &str) -> String {
    match c {
        Complete::Nothing => "return 0".to_string(),
        Complete::File => {
            format!("compopt -o filenames; COMPREPLY=( $(compgen -f -- {cur}) ); return 0")
        }
        Complete::Dir => {
            format!("compopt -o filenames; COMPREPLY=( $(compgen -d -- {cur}) ); return 0")
        }
        Complete::Interface => format!(
            "COMPREPLY=( $(compgen -W \"$(ls /sys/class/net 2>/dev/null)\" -- {cur}) ); return 0"
        ),
        Complete::Words(w) => {
            format!(
                "COMPREPLY=( $(compgen -W \"{}\" -- {cur}) ); return 0",
                w.join(" ")
            )
        }
    }
}

/// The bash completion script.
pub fn bash_completion(p: &Page) -> String {
    let func = format!("_{}", p.name.replace('-', "_"));
    let mut out = format!(
        "# bash completion for {name} (uftp-rs; generated from its option table)\n\
         {func}() {{\n    local cur prev\n    cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n    \
         prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n    case \"$prev\" in\n",
        name = p.name
    );
    for o in p.options.iter().filter(|o| o.value.is_some()) {
        let _ = writeln!(
            out,
            "        {})\n            {}\n            ;;",
            o.spellings().join("|"),
            bash_words(o.complete, "\"$cur\"")
        );
    }
    let all: Vec<String> = p.options.iter().flat_map(Opt::spellings).collect();
    let _ = write!(
        out,
        "    esac\n    if [[ \"$cur\" == -* ]]; then\n        \
         COMPREPLY=( $(compgen -W \"{}\" -- \"$cur\") )\n        return 0\n    fi\n",
        all.join(" ")
    );
    match p.complete_operands {
        Complete::Nothing => out.push_str("    COMPREPLY=()\n"),
        c => {
            let _ = writeln!(out, "    {}", bash_words(c, "\"$cur\""));
        }
    }
    let _ = writeln!(out, "}}\ncomplete -F {func} {}", p.name);
    out
}

fn zsh_action(c: Complete) -> String {
    match c {
        Complete::Nothing => " ".to_string(),
        Complete::File => "_files".to_string(),
        Complete::Dir => "_files -/".to_string(),
        Complete::Interface => "_net_interfaces".to_string(),
        Complete::Words(w) => format!("({})", w.join(" ")),
    }
}

/// A zsh completion function (`_name`, for a directory in `$fpath`).
pub fn zsh_completion(p: &Page) -> String {
    let mut out = format!(
        "#compdef {}\n# zsh completion for {} (uftp-rs; generated from its option table)\n\n_arguments -s -S \\\n",
        p.name, p.name
    );
    for o in p
        .options
        .iter()
        .flat_map(|o| o.spellings().into_iter().map(move |s| (s, o)))
    {
        let (spelling, o) = o;
        // The first sentence of the help, without characters that _arguments treats specially.
        let first = o
            .help
            .split(". ")
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        let desc: String = first
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | ':' | '\'' | '\\' | '`' | '$'))
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        let spec = match o.value {
            Some(v) => format!(
                "'{spelling}[{desc}]:{}:{}'",
                v.replace([':', '\''], " "),
                zsh_action(o.complete)
            ),
            None => format!("'{spelling}[{desc}]'"),
        };
        let _ = writeln!(out, "  {spec} \\");
    }
    match p.complete_operands {
        Complete::Nothing => out.push_str("  && return 0\n"),
        c => {
            let _ = writeln!(
                out,
                "  '*:{}:{}' && return 0",
                p.operands.replace([':', '\''], " "),
                zsh_action(c)
            );
        }
    }
    out
}

/// Every program's page.
pub fn pages() -> [&'static Page; 5] {
    [
        &crate::sender::options::PAGE,
        &crate::receiver::options::PAGE,
        &crate::proxy::options::PAGE,
        &crate::keys::keymgt::PAGE,
        &crate::dump::PAGE,
    ]
}

/// The generated files, relative to `std-host/packaging/`, and their contents.
pub fn generated_files() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for p in pages() {
        v.push((format!("man/{}.1", p.name), man_page(p)));
        v.push((format!("completions/bash/{}", p.name), bash_completion(p)));
        v.push((format!("completions/zsh/_{}", p.name), zsh_completion(p)));
    }
    v
}

/// Checks a parser against its page: every letter the page lists is known to the parser (with
/// a value where the page names one, which `parse(["-c"])` must then ask for), and every other
/// letter is refused as unknown; the usage names every option the parser carries out, and none
/// it refuses by name. `--help` and `--version` are answered before the parser sees them
/// ([`info_request`]). `parse` gets the arguments; `unknown` tells whether its error says the
/// option is unknown; `wants_value` whether it says a value is missing.
#[cfg(test)]
pub fn check_parser(
    page: &Page,
    parse: impl Fn(&[&str]) -> Result<(), String>,
    unknown: impl Fn(&str) -> bool,
    wants_value: impl Fn(&str) -> bool,
) {
    let usage = usage(page);
    let in_usage = |spelling: &str| {
        usage
            .split_whitespace()
            .any(|w| w.trim_matches(|c| matches!(c, '{' | '}')) == spelling)
    };
    for c in ('a'..='z').chain('A'..='Z') {
        let arg = format!("-{c}");
        let r = parse(&[&arg]);
        match page.short(c) {
            None => {
                assert!(
                    matches!(&r, Err(e) if unknown(e)),
                    "{}: {arg} is not on the page but the parser knows it: {r:?}",
                    page.name
                );
                assert!(!in_usage(&arg), "{}: the usage names {arg}", page.name);
            }
            Some(o) => {
                assert!(
                    !matches!(&r, Err(e) if unknown(e)),
                    "{}: {arg} is on the page but the parser refuses it as unknown",
                    page.name
                );
                if (page.refused)(c).is_some() {
                    // Refused by name, perhaps before its value is looked for.
                    assert!(
                        !in_usage(&arg),
                        "{}: the usage names {arg}, which is refused",
                        page.name
                    );
                    continue;
                }
                assert!(
                    in_usage(&arg),
                    "{}: the parser takes {arg} but the usage does not name it",
                    page.name
                );
                let asks = matches!(&r, Err(e) if wants_value(e));
                assert_eq!(
                    asks,
                    o.value.is_some(),
                    "{}: {arg}: the page says value {:?}, the parser says {r:?}",
                    page.name,
                    o.value
                );
            }
        }
    }
    for o in page.options.iter().filter(|o| o.short.is_none()) {
        let arg = o.spelling();
        assert!(
            in_usage(&arg),
            "{}: the usage does not name {arg}",
            page.name
        );
        if matches!(o.long, Some("help" | "version")) {
            assert!(
                info_request(page, &[arg.as_str()]).is_some(),
                "{}: {arg} is not answered",
                page.name
            );
            continue;
        }
        let r = parse(&[&arg]);
        assert!(
            !matches!(&r, Err(e) if unknown(e)),
            "{}: {arg} is on the page but the parser refuses it",
            page.name
        );
    }
    assert!(
        page.long("help").is_some() && page.long("version").is_some(),
        "{}: --help and --version are not on the page",
        page.name
    );
    let r = parse(&["--no-such-option"]);
    assert!(matches!(&r, Err(e) if unknown(e)), "{}: {r:?}", page.name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn packaging() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging")
    }

    #[test]
    fn getopt_reads_as_uftps_getopt() {
        let read = |page: &Page, line: &str| -> Vec<Result<Arg, GetoptError>> {
            Getopt::new(page, line.split_whitespace().map(String::from))
                .colon_values("r")
                .collect()
        };
        let s = |c, v: Option<&str>| Ok(Arg::Short(c, v.map(String::from)));
        let uftp = crate::sender::options::PAGE;
        assert_eq!(
            read(&uftp, "-lq -R1000 f -R -1 --json=j --allow-weak -- -z"),
            [
                s('l', None),
                s('q', None),
                s('R', Some("1000")),
                Ok(Arg::Operand("f".into())),
                s('R', Some("-1")),
                Ok(Arg::Long("json", Some("j".into()))),
                Ok(Arg::Long("allow-weak", None)),
                Ok(Arg::Operand("-z".into())),
            ]
        );
        assert_eq!(
            read(&uftp, "-y% --nope --allow-weak=1 -Q 8 --json -R"),
            [
                Err(GetoptError::Refused('y', "Windows system key store")),
                Err(GetoptError::Unknown("-%".into())),
                Err(GetoptError::Unknown("--nope".into())),
                Err(GetoptError::TakesNoValue("--allow-weak".into())),
                Err(GetoptError::Refused('Q', "DSCP")),
                Ok(Arg::Long("json", Some("-R".into()))),
            ]
        );
        assert_eq!(
            read(&uftp, "-R"),
            [Err(GetoptError::NeedsValue("-R".into()))]
        );
        let proxy = crate::proxy::options::PAGE;
        assert_eq!(
            read(&proxy, "-dr:secp384r1 -rd"),
            [
                s('d', None),
                s('r', Some("secp384r1")),
                s('r', None),
                s('d', None),
            ]
        );
    }

    #[test]
    fn generated_files_are_current() {
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
        let mut stale = Vec::new();
        for (rel, text) in generated_files() {
            let path = packaging().join(&rel);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(rel);
            }
        }
        assert!(
            stale.is_empty(),
            "out of date (run `cargo xtask man`): {stale:?}"
        );
    }

    #[test]
    fn every_option_is_on_its_man_page_and_in_its_completions() {
        for p in pages() {
            let man = man_page(p);
            let bash = bash_completion(p);
            let zsh = zsh_completion(p);
            for o in p.options {
                let s = o.spelling();
                assert!(
                    man.contains(&format!(".TP\n\\fB{}\\fR", roff(&s))),
                    "{}: {s}",
                    p.name
                );
                for s in o.spellings() {
                    let words = format!(" {s} ");
                    let listed = bash.lines().any(|l| {
                        l.contains("compgen -W \"-")
                            && format!(" {} ", l.replace('"', " ")).contains(&words)
                    });
                    assert!(listed, "{}: {s} not offered by bash", p.name);
                    assert!(zsh.contains(&format!("'{s}[")), "{}: {s}", p.name);
                }
            }
            let letters: Vec<_> = p.options.iter().filter_map(|o| o.short).collect();
            let mut dedup = letters.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(
                dedup.len(),
                letters.len(),
                "{}: a letter listed twice",
                p.name
            );
        }
    }

    #[test]
    fn help_and_version_are_found_where_the_parser_would_see_options() {
        let uftp = &crate::sender::options::PAGE;
        let yes = [
            &["--help"][..],
            &["-R", "1000", "--help", "f"],
            &["f", "--version"],
            &["-lq", "--version", "--help"],
            &["--json=-", "--help"],
        ];
        for args in yes {
            assert!(info_request(uftp, args).is_some(), "{args:?}");
        }
        assert_eq!(
            info_request(uftp, &["--help", "--version"]),
            Some(Info::Help)
        );
        assert_eq!(
            info_request(uftp, &["--version", "--help"]),
            Some(Info::Version)
        );
        let no = [
            &[][..],
            &["f"],
            // Values and operands, not options.
            &["-D", "--help", "f"],
            &["-D--help", "f"],
            &["--json", "--help", "f"],
            &["--", "--help"],
            &["--help=yes"],
            &["-h", "sha256", "f"],
        ];
        for args in no {
            assert_eq!(info_request(uftp, args), None, "{args:?}");
        }
        let proxy = &crate::proxy::options::PAGE;
        assert_eq!(
            info_request(proxy, &["-r:secp384r1", "--version"]),
            Some(Info::Version)
        );
        assert_eq!(info_request(proxy, &["-h", "--help"]), None);
    }

    #[test]
    fn usage_lines_fit_a_terminal_and_name_every_option_once() {
        for p in pages() {
            let u = usage(p);
            assert!(u.starts_with(&format!("usage: {} ", p.name)), "{u}");
            for line in u.lines() {
                assert!(line.chars().count() <= 79, "{}: {line}", p.name);
            }
            for o in p.options.iter().filter(|o| !p.refuses(o)) {
                let s = o.spelling();
                let n = u
                    .split_whitespace()
                    .filter(|w| w.trim_matches(|c| matches!(c, '{' | '}')) == s)
                    .count();
                assert_eq!(n, 1, "{}: {s} in {u}", p.name);
            }
            let h = help(p);
            assert!(h.starts_with(&u), "{}", p.name);
            let summary: Vec<&str> = p.summary.split_whitespace().collect();
            let words: Vec<&str> = h.split_whitespace().collect();
            assert!(
                words.windows(summary.len()).any(|w| w == summary),
                "{}",
                p.name
            );
            for line in h.lines() {
                // Only a first sentence with a word too long to wrap may pass 79 columns.
                assert!(line.chars().count() <= 100, "{}: {line}", p.name);
            }
            for o in p.options {
                for s in o.spellings() {
                    let listed = h
                        .lines()
                        .any(|l| l.starts_with("  -") && l.split([' ', ',']).any(|w| w == s));
                    assert!(listed, "{}: --help does not describe {s}", p.name);
                }
            }
        }
        let proxy = usage(&crate::proxy::options::PAGE);
        assert!(
            proxy.starts_with("usage: uftpproxyd { -s dest|fp=fingerprint | -c | -r } [ -d ]"),
            "{proxy}"
        );
        let uftpd = usage(&crate::receiver::options::PAGE);
        for refused in ["-c", "-m"] {
            assert!(!uftpd.split_whitespace().any(|w| w == refused), "{uftpd}");
        }
        for carried_out in ["-A", "-i", "-H", "-h"] {
            assert!(
                uftpd.split_whitespace().any(|w| w == carried_out),
                "{uftpd}"
            );
        }
        let uftpd = help(&crate::receiver::options::PAGE);
        assert!(uftpd.contains("Default 1044."), "{uftpd}");
        let flat = uftpd.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("-c cache_size Bytes of received data to cache before writing. Not supported by this version. -k"),
            "{uftpd}"
        );
    }

    #[test]
    fn ids_read_as_uftp_4_10_2_reads_them() {
        // uftp, uftpd and uftpproxyd 4.10.2 all read -U with strtoul(v, NULL, 16): a server run
        // with -U 12345678 announces itself as 12345678, and uftpd -U 12345678 and uftpproxyd
        // -U 12345678 register as 0x12345678.
        assert_eq!(parse_id("12345678"), Some(0x1234_5678));
        assert_eq!(parse_id("0x12345678"), Some(0x1234_5678));
        assert_eq!(parse_id("0X0a000002"), Some(0x0A00_0002));
        assert_eq!(parse_id("12345"), Some(0x0001_2345));
        assert_eq!(parse_id("10.0.0.2"), Some(0x0A00_0002));
        for bad in [
            "0",
            "0x0",
            "ffffffff",
            "0xFFFFFFFF",
            "zz",
            "",
            "123456789",
            "10.0.0",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_read_as_strtol_base_0() {
        assert_eq!(parse_c_number("46"), Some(46));
        assert_eq!(parse_c_number("0x2e"), Some(46));
        assert_eq!(parse_c_number("0X2E"), Some(46));
        assert_eq!(parse_c_number("010"), Some(8));
        assert_eq!(parse_c_number("0"), Some(0));
        for bad in ["080", "0x", "", "-1", "4 6", "1e3"] {
            assert_eq!(parse_c_number(bad), None, "{bad}");
        }
        assert_eq!(parse_port("1044"), Some(1044));
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("65536"), None);
    }

    /// The letters the three programs share mean the same in each where uftp 4.10.2's do, and
    /// read their values alike.
    #[test]
    fn shared_letters_read_alike_in_the_three_parsers() {
        let uftp = |args: &str| {
            let mut v: Vec<String> = args.split_whitespace().map(String::from).collect();
            v.push("file".into());
            crate::sender::options::parse(v).map_err(|e| e.0)
        };
        let uftpd = |args: &str| {
            crate::receiver::options::Options::parse(args.split_whitespace().map(String::from))
                .map(|o| o.daemon)
        };
        let proxy = |args: &str| {
            let mut v = vec!["-c".to_string()];
            v.extend(args.split_whitespace().map(String::from));
            crate::proxy::options::Options::parse(v).map(|o| o.daemon)
        };
        for (arg, want) in [
            ("12345678", 0x1234_5678),
            ("0x12345678", 0x1234_5678),
            ("abcdef", 0x00AB_CDEF),
            ("10.0.0.2", 0x0A00_0002),
        ] {
            let args = format!("-U {arg}");
            assert_eq!(uftp(&args).unwrap().uid, Some(want), "uftp {args}");
            assert_eq!(uftpd(&args).unwrap().uid, Some(want), "uftpd {args}");
            assert_eq!(proxy(&args).unwrap().uid, Some(want), "uftpproxyd {args}");
        }
        for bad in [
            "-U 0",
            "-U zz",
            "-U ffffffff",
            "-p 0",
            "-p x",
            "-B 1000",
            "-x 6",
        ] {
            assert!(uftp(bad).is_err(), "uftp {bad}");
            assert!(uftpd(bad).is_err(), "uftpd {bad}");
            assert!(proxy(bad).is_err(), "uftpproxyd {bad}");
        }
        for (arg, want) in [("46", 46), ("0x2e", 46), ("010", 8)] {
            let args = format!("-Q {arg}");
            assert_eq!(uftpd(&args).unwrap().dscp, want, "uftpd {args}");
            assert_eq!(proxy(&args).unwrap().dscp, want, "uftpproxyd {args}");
        }
        let args = "-p 2000 -B 65536 -x 5";
        let (s, r, x) = (
            uftp(args).unwrap(),
            uftpd(args).unwrap(),
            proxy(args).unwrap(),
        );
        let want = (2000, 65_536, 5);
        assert_eq!((s.port, s.bufsize, s.log_level), want);
        assert_eq!((r.port, r.bufsize, r.log_level), want);
        assert_eq!((x.port, x.bufsize, x.log_level), want);
        // -g and -n roll the log alike.
        let args = "-L /l -g 10 -n 3";
        for (max_mb, keep) in [
            (uftp(args).unwrap().log_max_mb, uftp(args).unwrap().log_keep),
            (
                uftpd(args).unwrap().log_max_mb,
                uftpd(args).unwrap().log_keep,
            ),
            (
                proxy(args).unwrap().log_max_mb,
                proxy(args).unwrap().log_keep,
            ),
        ] {
            assert_eq!((max_mb, keep), (Some(10), 3));
        }
    }

    #[test]
    fn roff_escapes_what_roff_would_eat() {
        assert_eq!(roff("a-b \\n"), "a\\-b \\en");
        assert_eq!(roff(".x\n'y"), "\\&.x\n\\&'y");
    }

    /// groff finds nothing to warn about in any page (when groff is installed, as on Debian with
    /// man-db).
    #[test]
    fn man_pages_render_without_warnings() {
        for p in pages() {
            let mut child = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("groff (Debian's groff-base, which man needs)");
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(man_page(p).as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.is_empty(), "{}: {err}", p.name);
        }
    }
}
