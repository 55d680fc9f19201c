//! Amanda's header writer (`build_header`, spec amanda-media.md §1.3–1.4): the exact bytes,
//! and every check Amanda makes before it writes — plus refusals where Amanda would write a
//! header that does not read back the same (a field over 255 bytes, a newline in a field,
//! a space in a host name or label).

use super::{quote, Header, Kind, FIELD_MAX};

/// Why a header cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Only TAPESTART, TAPEEND, FILE, CONT_FILE, SPLIT_FILE and NOOP can be written.
    NotWritable,
    /// A field that must be set is empty.
    Empty(&'static str),
    /// The datestamp is not `X`, `YYYYMMDD` or `YYYYMMDDhhmmss`.
    Datestamp(String),
    /// `part K/N` with K < 1, or K > N ≥ 0.
    Part { partnum: i32, totalparts: i32 },
    /// A value that must be one word contains a space.
    Space { field: &'static str, value: String },
    /// A value contains a newline, CR or NUL, or a first-line word a `"`: it would not read back.
    BadChar { field: &'static str, value: String },
    /// A value is longer than Amanda's 255-byte fields.
    TooLong { field: &'static str, len: usize },
    /// An uncompress or decrypt command does not end in `|`.
    NoPipe(&'static str),
    /// An uncompress or decrypt command without a recover command.
    NoRecoverCmd,
    /// Both the server and the client variant of an option are set.
    Both(&'static str),
    /// Encrypted with an empty or `N` suffix, or a suffix without encryption.
    EncryptSuffix,
    /// The text does not fit in the block.
    TooBig { len: usize, block: usize },
    /// Block sizes are whole KiB (`bs=<K>k`) and at least 32 KiB.
    BlockSize(usize),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::NotWritable => write!(f, "a WEIRD header cannot be written"),
            BuildError::Empty(k) => write!(f, "{k} must not be empty"),
            BuildError::Datestamp(d) => write!(f, "invalid datestamp '{d}': expected YYYYMMDD, YYYYMMDDhhmmss or X"),
            BuildError::Part { partnum, totalparts } => write!(f, "invalid part {partnum}/{totalparts}: parts count from 1 and cannot exceed the total"),
            BuildError::Space { field, value } => write!(f, "{field} '{value}' must not contain a space"),
            BuildError::BadChar { field, value } => write!(f, "{field} {value:?} contains a newline, control character or (on the first line) a double quote"),
            BuildError::TooLong { field, len } => write!(f, "{field} is {len} bytes; Amanda keeps at most {FIELD_MAX}"),
            BuildError::NoPipe(k) => write!(f, "{k} must end with '|'"),
            BuildError::NoRecoverCmd => write!(f, "an uncompress or decrypt command needs a recover command"),
            BuildError::Both(k) => write!(f, "both the server and the client {k} are set"),
            BuildError::EncryptSuffix => write!(f, "an encrypted dump needs an encrypt suffix other than 'N' (and only an encrypted one)"),
            BuildError::TooBig { len, block } => write!(f, "header text is {len} bytes and does not fit in a {block}-byte block"),
            BuildError::BlockSize(n) => write!(f, "block size {n} is not a whole number of KiB of at least 32 KiB"),
        }
    }
}

impl std::error::Error for BuildError {}

fn nonempty(k: &'static str, v: &str) -> Result<(), BuildError> {
    if v.is_empty() {
        Err(BuildError::Empty(k))
    } else {
        Ok(())
    }
}

fn one_word(k: &'static str, v: &str) -> Result<(), BuildError> {
    if v.contains(' ') {
        Err(BuildError::Space {
            field: k,
            value: v.to_string(),
        })
    } else {
        Ok(())
    }
}

fn datestamp_ok(d: &str) -> bool {
    d == "X" || ((d.len() == 8 || d.len() == 14) && d.bytes().all(|b| b.is_ascii_digit()))
}

impl Header {
    fn check(&self) -> Result<(), BuildError> {
        let one_line: [(&'static str, &str); 18] = [
            ("datestamp", &self.datestamp),
            ("name", &self.name),
            ("comp_suffix", &self.comp_suffix),
            ("encrypt_suffix", &self.encrypt_suffix),
            ("program", &self.program),
            ("application", &self.application),
            ("srvcompprog", &self.srvcompprog),
            ("clntcompprog", &self.clntcompprog),
            ("srv_encrypt", &self.srv_encrypt),
            ("clnt_encrypt", &self.clnt_encrypt),
            ("srv_decrypt_opt", &self.srv_decrypt_opt),
            ("clnt_decrypt_opt", &self.clnt_decrypt_opt),
            ("recover_cmd", &self.recover_cmd),
            ("uncompress_cmd", &self.uncompress_cmd),
            ("decrypt_cmd", &self.decrypt_cmd),
            ("cont_filename", &self.cont_filename),
            ("disk", &self.disk),
            ("dle_str", self.dle_str.as_deref().unwrap_or("")),
        ];
        for (k, v) in one_line {
            if k != "dle_str" && v.len() > FIELD_MAX {
                return Err(BuildError::TooLong {
                    field: k,
                    len: v.len(),
                });
            }
            // The disk is quoted (escapes newlines); the DLE is a here-document.
            let bad = if k == "disk" || k == "dle_str" {
                v.contains('\0')
            } else {
                v.bytes().any(|b| b == b'\n' || b == b'\0' || b == b'\r')
            };
            // A double quote in a first-line word would make the reader's quote-aware scan of
            // the first line run on into the next lines (found by fuzzing the round trip).
            const FIRST_LINE: [&str; 12] = [
                "datestamp",
                "name",
                "comp_suffix",
                "encrypt_suffix",
                "program",
                "srvcompprog",
                "clntcompprog",
                "srv_encrypt",
                "clnt_encrypt",
                "srv_decrypt_opt",
                "clnt_decrypt_opt",
                "application",
            ];
            let quote = FIRST_LINE.contains(&k) && k != "application" && v.contains('"')
                // Quoted, a disk ending in `\` ends in `\\"`, which Amanda's first-line scan
                // takes for an escaped quote: the header would not read back.
                || (k == "disk" && v.ends_with('\\'));
            if bad || quote {
                return Err(BuildError::BadChar {
                    field: k,
                    value: v.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The header text exactly as Amanda's `build_header` writes it (without NUL padding).
    pub fn to_text(&self) -> Result<String, BuildError> {
        self.check()?;
        let date = |d: &str| {
            if datestamp_ok(d) {
                Ok(())
            } else {
                Err(BuildError::Datestamp(d.to_string()))
            }
        };
        let mut s = String::new();
        match self.kind {
            Kind::Weird => return Err(BuildError::NotWritable),
            Kind::Noop => s.push_str("AMANDA: NOOP\n\x0c\n"),
            Kind::TapeEnd => {
                date(&self.datestamp)?;
                s.push_str(&format!("AMANDA: TAPEEND DATE {}\n\x0c\n", self.datestamp));
            }
            Kind::TapeStart => {
                nonempty("label", &self.name)?;
                one_word("label", &self.name)?;
                date(&self.datestamp)?;
                s.push_str(&format!(
                    "AMANDA: TAPESTART DATE {} TAPE {}\n\x0c\n",
                    self.datestamp, self.name
                ));
            }
            Kind::File | Kind::ContFile | Kind::SplitFile => self.dump_text(&mut s)?,
        }
        Ok(s)
    }

    fn dump_text(&self, s: &mut String) -> Result<(), BuildError> {
        let piped = |k: &'static str, v: &str| {
            if !v.is_empty() && !v.ends_with('|') {
                Err(BuildError::NoPipe(k))
            } else {
                Ok(())
            }
        };
        let split = if self.kind == Kind::SplitFile {
            if self.partnum < 1 || (self.totalparts >= 0 && self.partnum > self.totalparts) {
                return Err(BuildError::Part {
                    partnum: self.partnum,
                    totalparts: self.totalparts,
                });
            }
            format!(" part {}/{} ", self.partnum, self.totalparts)
        } else {
            String::new()
        };
        nonempty("host", &self.name)?;
        one_word("host", &self.name)?;
        if !datestamp_ok(&self.datestamp) {
            return Err(BuildError::Datestamp(self.datestamp.clone()));
        }
        nonempty("program", &self.program)?;
        one_word("program", &self.program)?;
        if self.compressed {
            nonempty("comp_suffix", &self.comp_suffix)?;
            one_word("comp_suffix", &self.comp_suffix)?;
        }
        if self.encrypted == (self.encrypt_suffix.is_empty() || self.encrypt_suffix == "N") {
            return Err(BuildError::EncryptSuffix);
        }
        one_word("encrypt_suffix", &self.encrypt_suffix)?;
        for (k, a, b) in [
            (
                "custom compress program",
                &self.srvcompprog,
                &self.clntcompprog,
            ),
            ("encrypt program", &self.srv_encrypt, &self.clnt_encrypt),
            (
                "decrypt option",
                &self.srv_decrypt_opt,
                &self.clnt_decrypt_opt,
            ),
        ] {
            if !a.is_empty() && !b.is_empty() {
                return Err(BuildError::Both(k));
            }
        }
        for (k, v) in [
            ("srvcompprog", &self.srvcompprog),
            ("clntcompprog", &self.clntcompprog),
            ("srv_encrypt", &self.srv_encrypt),
            ("clnt_encrypt", &self.clnt_encrypt),
            ("srv_decrypt_opt", &self.srv_decrypt_opt),
        ] {
            one_word(k, v)?;
        }
        piped("decrypt_cmd", &self.decrypt_cmd)?;
        piped("uncompress_cmd", &self.uncompress_cmd)?;
        if self.recover_cmd.is_empty()
            && (!self.uncompress_cmd.is_empty() || !self.decrypt_cmd.is_empty())
        {
            return Err(BuildError::NoRecoverCmd);
        }
        if self.blocksize != 0 && !self.blocksize.is_multiple_of(1024) {
            return Err(BuildError::BlockSize(self.blocksize));
        }
        // Amanda trims a trailing ".exe". Compare bytes: ".exe" is ASCII, so when it matches,
        // the cut is on a char boundary (found by fuzzing with a non-ASCII program name).
        let p = self.program.as_bytes();
        let program = match p.len().checked_sub(4) {
            Some(n) if n > 0 && p[n..].eq_ignore_ascii_case(b".exe") => &self.program[..n],
            _ => &self.program[..],
        };
        s.push_str(&format!(
            "AMANDA: {} {} {} {} {} lev {} comp {} program {}",
            self.kind.name(),
            self.datestamp,
            self.name,
            quote::quote(&self.disk),
            split,
            self.dumplevel,
            if self.compressed {
                &self.comp_suffix
            } else {
                "N"
            },
            program
        ));
        if self.encrypted {
            s.push_str(&format!(" crypt {}", self.encrypt_suffix));
        }
        let mut opt = |k: &str, server: &str, client: &str| {
            if !server.is_empty() {
                s.push_str(&format!(" server_{k} {server}"));
            } else if !client.is_empty() {
                s.push_str(&format!(" client_{k} {client}"));
            }
        };
        opt("custom_compress", &self.srvcompprog, &self.clntcompprog);
        opt("encrypt", &self.srv_encrypt, &self.clnt_encrypt);
        opt(
            "decrypt_option",
            &self.srv_decrypt_opt,
            &self.clnt_decrypt_opt,
        );
        s.push('\n');
        if !self.cont_filename.is_empty() {
            s.push_str(&format!("CONT_FILENAME={}\n", self.cont_filename));
        }
        if !self.application.is_empty() {
            s.push_str(&format!("APPLICATION={}\n", self.application));
        }
        if self.is_partial {
            s.push_str("PARTIAL=YES\n");
        }
        if self.orig_size > 0 {
            s.push_str(&format!("ORIGSIZE={}\n", self.orig_size));
        }
        for (k, c) in [
            ("NATIVE", self.native_crc),
            ("CLIENT", self.client_crc),
            ("SERVER", self.server_crc),
        ] {
            if c.crc > 0 {
                s.push_str(&format!("{k}-CRC={c}\n"));
            }
        }
        if let Some(dle) = &self.dle_str {
            // Amanda silently leaves out a DLE that would crowd the block.
            let max = if self.blocksize == 0 {
                super::HEADER_BLOCK
            } else {
                self.blocksize
            };
            if dle.len() < max.saturating_sub(2048) {
                s.push_str(&format!("DLE={}\n", quote::heredoc(dle, "ENDDLE")));
            }
        }
        s.push_str("To restore, position tape at start of file and run:\n\tdd if=<tape> ");
        if self.blocksize != 0 {
            s.push_str(&format!("bs={}k ", self.blocksize / 1024));
        }
        s.push_str("skip=1 | ");
        if !self.recover_cmd.is_empty() {
            for c in [&self.decrypt_cmd, &self.uncompress_cmd] {
                if !c.is_empty() {
                    s.push_str(c);
                    s.push(' ');
                }
            }
            s.push_str(&self.recover_cmd);
            s.push(' ');
        }
        s.push_str("\n\x0c\n");
        Ok(())
    }

    /// The header as one block of `block_size` bytes: the text, then NUL bytes.
    pub fn to_block(&self, block_size: usize) -> Result<Vec<u8>, BuildError> {
        let text = self.to_text()?;
        if text.len() > block_size {
            return Err(BuildError::TooBig {
                len: text.len(),
                block: block_size,
            });
        }
        let mut b = vec![0u8; block_size];
        b[..text.len()].copy_from_slice(text.as_bytes());
        Ok(b)
    }
}
