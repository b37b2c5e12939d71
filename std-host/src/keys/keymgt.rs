//! `uftp_keymgt`'s options and manual (the program is `src/bin/uftp_keymgt.rs`, whose tests
//! check that its parser takes exactly these letters).

use crate::cli::{Complete, Opt, Page};

/// `uftp_keymgt`'s page (see [`crate::cli`]).
pub const PAGE: Page = Page {
    name: "uftp_keymgt",
    summary: "make and show the key files of UFTP senders, receivers and proxies (uftp-rs)",
    operands: "keyfile ...",
    complete_operands: Complete::File,
    description: &[
        "uftp_keymgt prints the type, size or curve and fingerprint of each key file given, or \
         with -g generates a key into a new file (created with mode 0600) and prints the same \
         line for it. Key files are PEM: RSA keys as PKCS#1, EC keys as SEC1, as uftp 4.10.2 \
         writes them; what it prints is what uftp 4.10.2's uftp_keymgt prints. The fingerprint \
         is what uftpd -S, uftp -H @file and uftpproxyd -C lists pin.",
    ],
    options: &[
        Opt::value('g', "rsa:bits|ec:curve", Complete::Words(&["rsa:2048", "ec:prime256v1", "ec:secp384r1"]), "Generate a key of this kind into the first key file, which must not exist: rsa:512 to rsa:2048, or ec: with a curve name."),
        Opt::flag('m', "Use the Windows machine key store (nothing to do with key files; accepted and ignored, as 4.10.2 does on other systems)."),
        Opt::flag('d', "Delete a Windows key container. Refused here: remove the key file itself."),
        crate::cli::HELP,
        crate::cli::VERSION_OPT,
    ],
    one_of: &[],
    refused: |_| None,
    sections: &[
        ("EXIT STATUS", &["0: done, including a key file that could not be read or written (reported, as 4.10.2 does). 1: an invalid -g spec, no key file named, or -d."]),
        ("EXAMPLES", &["  uftp_keymgt -g ec:prime256v1 /etc/uftp/uftpd.pem\n  uftp_keymgt /etc/uftp/*.pem"]),
    ],
    see_also: "uftp(1), uftpd(1), uftpproxyd(1)",
};
