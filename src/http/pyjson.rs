//! Where Python's `json.loads(body.decode('utf-8'))` fails, and its
//! message (CPython's `_json` scanner: `json.decoder.JSONDecodeError`,
//! "msg: line L column C (char P)", positions in characters). The scan
//! runs over the bytes (everything it looks at is ASCII) and counts
//! characters only for the message.

/// Nesting past this is left to serde_json, which refuses it (Python
/// would hit its recursion limit, not a ValueError).
const MAX_DEPTH: usize = 128;

pub fn check(body: &[u8]) -> Result<(), String> {
    let text = decode_utf8(body)?;
    let scanner = Scanner {
        s: text.as_bytes(),
        text,
    };
    if text.starts_with('\u{feff}') {
        return Err(scanner.error("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let start = scanner.skip_ws(0);
    let end = match scanner.value(start, 0) {
        Ok(end) => end,
        Err(Fail::Stop(at)) => return Err(scanner.error("Expecting value", at)),
        Err(Fail::Error(message)) => return Err(message),
        Err(Fail::TooDeep) => return Ok(()),
    };
    let end = scanner.skip_ws(end);
    if end != scanner.s.len() {
        return Err(scanner.error("Extra data", end));
    }
    Ok(())
}

/// Python's `bytes.decode('utf-8')` error text.
fn decode_utf8(body: &[u8]) -> Result<&str, String> {
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text),
        Err(error) => {
            let start = error.valid_up_to();
            let first = body[start];
            let (length, reason) = match error.error_len() {
                _ if !matches!(first, 0xC2..=0xF4) => (1, "invalid start byte"),
                None => (body.len() - start, "unexpected end of data"),
                Some(length) => (length, "invalid continuation byte"),
            };
            Err(if length == 1 {
                format!(
                    "'utf-8' codec can't decode byte 0x{first:02x} in position {start}: {reason}"
                )
            } else {
                format!(
                    "'utf-8' codec can't decode bytes in position {start}-{}: {reason}",
                    start + length - 1
                )
            })
        }
    }
}

enum Fail {
    /// `StopIteration(at)`: no value starts at byte `at`.
    Stop(usize),
    /// A `JSONDecodeError`, worded.
    Error(String),
    /// Nested deeper than `MAX_DEPTH`.
    TooDeep,
}

struct Scanner<'a> {
    s: &'a [u8],
    text: &'a str,
}

impl Scanner<'_> {
    /// The message at byte offset `at`, in Python's characters.
    fn error(&self, message: &str, at: usize) -> String {
        let before = &self.text[..at.min(self.text.len())];
        let char_at = before.chars().count();
        let line = before.matches('\n').count() + 1;
        let column = match before.rfind('\n') {
            Some(newline) => before[newline..].chars().count(),
            None => char_at + 1,
        };
        format!("{message}: line {line} column {column} (char {char_at})")
    }

    fn fail(&self, message: &str, at: usize) -> Fail {
        Fail::Error(self.error(message, at))
    }

    fn at(&self, index: usize) -> Option<u8> {
        self.s.get(index).copied()
    }

    fn skip_ws(&self, mut index: usize) -> usize {
        while matches!(self.at(index), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            index += 1;
        }
        index
    }

    fn literal(&self, index: usize, word: &[u8]) -> bool {
        self.s.get(index..index + word.len()) == Some(word)
    }

    /// `scan_once`: the end of the value starting at `index`.
    fn value(&self, index: usize, depth: usize) -> Result<usize, Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail::TooDeep);
        }
        match self.at(index) {
            None => Err(Fail::Stop(index)),
            Some(b'"') => self.string(index + 1),
            Some(b'{') => self.object(index + 1, depth + 1),
            Some(b'[') => self.array(index + 1, depth + 1),
            Some(b'n') if self.literal(index, b"null") => Ok(index + 4),
            Some(b't') if self.literal(index, b"true") => Ok(index + 4),
            Some(b'f') if self.literal(index, b"false") => Ok(index + 5),
            Some(b'N') if self.literal(index, b"NaN") => Ok(index + 3),
            Some(b'I') if self.literal(index, b"Infinity") => Ok(index + 8),
            Some(b'-') if self.literal(index, b"-Infinity") => Ok(index + 9),
            Some(_) => self.number(index),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`
    fn number(&self, start: usize) -> Result<usize, Fail> {
        let digit = |index: usize| self.at(index).is_some_and(|c| c.is_ascii_digit());
        let mut index = start;
        if self.at(index) == Some(b'-') {
            index += 1;
        }
        match self.at(index) {
            Some(b'0') => index += 1,
            Some(b'1'..=b'9') => {
                while digit(index) {
                    index += 1;
                }
            }
            _ => return Err(Fail::Stop(start)),
        }
        if self.at(index) == Some(b'.') && digit(index + 1) {
            index += 1;
            while digit(index) {
                index += 1;
            }
        }
        if matches!(self.at(index), Some(b'e' | b'E')) {
            let mut exponent = index + 1;
            if matches!(self.at(exponent), Some(b'+' | b'-')) {
                exponent += 1;
            }
            if digit(exponent) {
                index = exponent;
                while digit(index) {
                    index += 1;
                }
            }
        }
        Ok(index)
    }

    /// `scanstring` from just after the opening quote.
    fn string(&self, after_quote: usize) -> Result<usize, Fail> {
        let begin = after_quote - 1;
        let mut index = after_quote;
        loop {
            let Some(c) = self.at(index) else {
                return Err(self.fail("Unterminated string starting at", begin));
            };
            match c {
                b'"' => return Ok(index + 1),
                b'\\' => {
                    let Some(escape) = self.at(index + 1) else {
                        return Err(self.fail("Unterminated string starting at", begin));
                    };
                    if escape == b'u' {
                        index = self.unicode_escape(index + 2)?;
                    } else if matches!(
                        escape,
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't'
                    ) {
                        index += 2;
                    } else {
                        return Err(self.fail("Invalid \\escape", index));
                    }
                }
                c if c < 0x20 => {
                    return Err(self.fail("Invalid control character at", index));
                }
                _ => index += 1,
            }
        }
    }

    /// Four hex digits at `index` (after `\u`), which must not end the
    /// text, and a low surrogate's `\uXXXX` after a high one; the index
    /// after them.
    fn unicode_escape(&self, index: usize) -> Result<usize, Fail> {
        let hex = |at: usize| -> Option<u32> {
            (0..4).try_fold(0u32, |value, offset| {
                Some(value * 16 + char::from(self.at(at + offset)?).to_digit(16)?)
            })
        };
        if index + 4 >= self.s.len() {
            return Err(self.fail("Invalid \\uXXXX escape", index - 1));
        }
        let Some(code) = hex(index) else {
            return Err(self.fail("Invalid \\uXXXX escape", index - 1));
        };
        let after = index + 4;
        if (0xD800..0xDC00).contains(&code)
            && self.at(after) == Some(b'\\')
            && self.at(after + 1) == Some(b'u')
        {
            if after + 6 >= self.s.len() {
                return Err(self.fail("Invalid \\uXXXX escape", after + 1));
            }
            let Some(low) = hex(after + 2) else {
                return Err(self.fail("Invalid \\uXXXX escape", after + 1));
            };
            if (0xDC00..0xE000).contains(&low) {
                return Ok(after + 6);
            }
        }
        Ok(after)
    }

    fn object(&self, after_brace: usize, depth: usize) -> Result<usize, Fail> {
        let mut index = self.skip_ws(after_brace);
        if self.at(index) == Some(b'}') {
            return Ok(index + 1);
        }
        loop {
            if self.at(index) != Some(b'"') {
                return Err(self.fail("Expecting property name enclosed in double quotes", index));
            }
            index = self.skip_ws(self.string(index + 1)?);
            if self.at(index) != Some(b':') {
                return Err(self.fail("Expecting ':' delimiter", index));
            }
            index = self.value(self.skip_ws(index + 1), depth)?;
            index = self.skip_ws(index);
            match self.at(index) {
                Some(b'}') => return Ok(index + 1),
                Some(b',') => index = self.skip_ws(index + 1),
                _ => return Err(self.fail("Expecting ',' delimiter", index)),
            }
        }
    }

    fn array(&self, after_bracket: usize, depth: usize) -> Result<usize, Fail> {
        let mut index = self.skip_ws(after_bracket);
        if self.at(index) == Some(b']') {
            return Ok(index + 1);
        }
        loop {
            index = self.skip_ws(self.value(index, depth)?);
            match self.at(index) {
                Some(b']') => return Ok(index + 1),
                Some(b',') => index = self.skip_ws(index + 1),
                _ => return Err(self.fail("Expecting ',' delimiter", index)),
            }
        }
    }
}
