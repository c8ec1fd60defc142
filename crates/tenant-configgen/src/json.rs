//! A streaming JSON writer, byte-identical to `serde_json::to_string` (compact) or
//! `serde_json::to_string_pretty` (pretty).
//!
//! The tenant part of a document is written straight into one pre-sized `String`, never through a
//! `serde_json::Value` tree, so rendering scales linearly. Keys are written in the order the caller
//! gives; the renderer gives them sorted, which makes every document canonical.
//!
//! Strings from tenants go through [`Writer::literal`], which also protects them from the gateway's
//! `${VAR}` substitution (see [`push_gateway_literal`]).

use serde_json::Value;

/// A newline and the indentation of up to 64 levels: one copy per line.
const NL_INDENT: &str = "\n                                                                                                                                ";

/// What a byte turns into inside a JSON string: 0 = itself, `u` = `\u00XX`, `$` = maybe an env
/// reference, anything else = a backslash and that byte.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'$' as usize] = b'$';
    t
};

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` does. With `gateway_literal`
/// the gateway will read back exactly `s`: every `${NAME}` (NAME matching `[A-Z_][A-Z0-9_]*`) gets
/// the extra `$` that the gateway's substitution removes instead of substituting.
pub(crate) fn push_str(out: &mut String, s: &str, gateway_literal: bool) {
    out.push('"');
    push_escaped(out, s, gateway_literal);
    out.push('"');
}

/// [`push_str`] without the surrounding quotes.
pub(crate) fn push_escaped(out: &mut String, s: &str, gateway_literal: bool) {
    let bytes = s.as_bytes();
    // Fast path for the common case (ids, tokens, plain names): nothing to escape, one copy.
    if !needs_escape(bytes) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        // Every escaped byte is ASCII, so `i` is a char boundary.
        if esc == b'$' {
            if gateway_literal && env_reference_len(&bytes[i..]).is_some() {
                out.push_str(&s[start..i]);
                out.push('$');
                start = i;
            }
            continue;
        }
        out.push_str(&s[start..i]);
        out.push('\\');
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(esc));
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Whether any byte of `bytes` is escaped or may start an env reference: a control character,
/// `"`, `\\` or `$`. Eight bytes at a time (SWAR): the per-byte comparisons were the largest
/// single cost of rendering names and credentials.
fn needs_escape(bytes: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Exact tests for "some byte is zero" and "some byte is below 0x20" (bytes of 0x80 and up,
    // UTF-8 sequences, never count).
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI != 0;
    let control = |v: u64| v.wrapping_sub(LO * 0x20) & !v & HI != 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        let v = u64::from_le_bytes(b);
        if control(v)
            | zero(v ^ (LO * u64::from(b'"')))
            | zero(v ^ (LO * u64::from(b'\\')))
            | zero(v ^ (LO * u64::from(b'$')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\' || b == b'$')
}

/// The length of a `${NAME}` reference at the start of `b`, as the gateway recognises one: `${`,
/// then up to the first `}` a name matching `[A-Z_][A-Z0-9_]*`.
pub(crate) fn env_reference_len(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(b"${")?;
    let end = rest.iter().position(|&c| c == b'}')?;
    let name = &rest[..end];
    let ok = name
        .first()
        .is_some_and(|c| c.is_ascii_uppercase() || *c == b'_')
        && name
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
    ok.then_some(end + 3)
}

/// What starts a member at `depth` after the container's first: a comma, then in the pretty
/// layout a newline and the indentation (exactly what [`Writer::member`] writes there).
pub(crate) fn separator(depth: usize, pretty: bool) -> String {
    let mut w = Writer::resume(String::new(), depth, pretty);
    w.mark_member();
    w.member();
    w.into_inner()
}

/// Writes one JSON document: compact (no whitespace), or pretty (two-space indentation, `": "`
/// after keys).
pub(crate) struct Writer {
    out: String,
    pretty: bool,
    depth: usize,
    /// Whether the innermost open container has no member yet.
    first: bool,
}

impl Writer {
    #[cfg(test)]
    pub(crate) fn with_capacity(capacity: usize, pretty: bool) -> Self {
        Self::into(String::with_capacity(capacity), pretty)
    }

    /// A writer that appends a document to `out` (which it does not clear).
    pub(crate) fn into(out: String, pretty: bool) -> Self {
        Self {
            out,
            pretty,
            depth: 0,
            first: true,
        }
    }

    /// A writer that appends to `out` as if it were inside `depth` open containers, for
    /// rendering a fragment to be copied into a document later with [`Writer::raw`].
    pub(crate) fn resume(out: String, depth: usize, pretty: bool) -> Self {
        Self {
            out,
            pretty,
            depth,
            first: true,
        }
    }

    /// The text written so far, without the final newline of [`Writer::finish`].
    pub(crate) fn into_inner(self) -> String {
        self.out
    }

    pub(crate) fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }

    /// Reserves room for `additional` more bytes.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.out.reserve(additional);
    }

    /// How much has been written.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    #[inline]
    fn newline(&mut self) {
        if self.pretty {
            self.indent();
        }
    }

    #[inline(never)]
    fn indent(&mut self) {
        let mut n = self.depth * 2 + 1;
        let mut line = NL_INDENT;
        while n > 0 {
            let k = n.min(line.len());
            self.out.push_str(&line[..k]);
            n -= k;
            line = &NL_INDENT[1..];
        }
    }

    /// Starts a member of the innermost container: a comma unless it is the first, then (pretty)
    /// a newline and the indentation. Pre-rendered items (see `sections.rs`) follow it with
    /// [`Writer::raw`].
    #[inline]
    pub(crate) fn member(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.newline();
    }

    pub(crate) fn begin_object(&mut self) {
        self.out.push('{');
        self.depth += 1;
        self.first = true;
    }

    pub(crate) fn end_object(&mut self) {
        self.close('}');
    }

    pub(crate) fn begin_array(&mut self) {
        self.out.push('[');
        self.depth += 1;
        self.first = true;
    }

    pub(crate) fn end_array(&mut self) {
        self.close(']');
    }

    fn close(&mut self, c: char) {
        self.depth = self.depth.saturating_sub(1);
        if !self.first {
            self.newline();
        }
        self.first = false;
        self.out.push(c);
    }

    /// Whether the innermost open container has no member yet.
    pub(crate) fn is_first(&self) -> bool {
        self.first
    }

    /// Records that the innermost container has members written elsewhere (the sections of an
    /// incrementally assembled document), so what follows gets its comma and the container its
    /// closing newline.
    pub(crate) fn mark_member(&mut self) {
        self.first = false;
    }

    /// A key as the start of a pre-rendered item: no separator before it (the sections add
    /// those); the value must follow.
    pub(crate) fn item_key(&mut self, k: &str) {
        self.out.push('"');
        push_escaped(&mut self.out, k, false);
        self.colon();
    }

    /// [`Writer::item_key`] for a key that needs no escaping (a canonical gateway id).
    pub(crate) fn item_key_raw(&mut self, k: &str) {
        debug_assert!(!k.bytes().any(|b| ESCAPE[usize::from(b)] != 0), "{k}");
        self.out.push('"');
        self.out.push_str(k);
        self.colon();
    }

    /// Starts an object member; the value must follow.
    pub(crate) fn key(&mut self, k: &str) {
        self.member();
        self.out.push('"');
        push_escaped(&mut self.out, k, false);
        self.colon();
    }

    /// Starts an object member whose key needs no escaping (a fixed word or a canonical gateway
    /// id: `[a-z0-9_-]`); the value must follow.
    pub(crate) fn key_raw(&mut self, k: &str) {
        debug_assert!(!k.bytes().any(|b| ESCAPE[usize::from(b)] != 0), "{k}");
        self.member();
        self.out.push('"');
        self.out.push_str(k);
        self.colon();
    }

    /// The closing quote of a key and what follows it.
    #[inline]
    fn colon(&mut self) {
        self.out.push_str(if self.pretty { "\": " } else { "\":" });
    }

    /// Appends text already rendered as JSON at the current depth (see [`Writer::resume`]).
    pub(crate) fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// `"key": "value"` where neither needs escaping (fixed words, canonical gateway ids).
    pub(crate) fn field_plain(&mut self, k: &str, v: &str) {
        debug_assert!(!v.bytes().any(|b| ESCAPE[usize::from(b)] != 0), "{v}");
        self.key_raw(k);
        self.out.push('"');
        self.out.push_str(v);
        self.out.push('"');
    }

    /// Starts an array element; the value must follow.
    pub(crate) fn element(&mut self) {
        self.member();
    }

    /// A string the gateway must read back unchanged (names, paths, inline credentials).
    pub(crate) fn literal(&mut self, s: &str) {
        push_str(&mut self.out, s, true);
    }

    /// A string written as is: ids, fixed words and `${VAR}` references meant for substitution.
    pub(crate) fn raw_str(&mut self, s: &str) {
        push_str(&mut self.out, s, false);
    }

    /// A `"${NAME}"` reference string.
    pub(crate) fn env_reference(&mut self, name: &str) {
        self.out.push_str("\"${");
        self.out.push_str(name);
        self.out.push_str("}\"");
    }

    /// Appends raw text that is a literal's content, e.g. part of a path (used to build one string
    /// from pieces without allocating). Call between [`Writer::open_quote`] and
    /// [`Writer::close_quote`].
    pub(crate) fn literal_part(&mut self, s: &str) {
        push_escaped(&mut self.out, s, true);
    }

    pub(crate) fn open_quote(&mut self) {
        self.out.push('"');
    }

    pub(crate) fn close_quote(&mut self) {
        self.out.push('"');
    }

    /// Any operator-authored value, written as serde_json would at the current depth.
    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                self.begin_object();
                for (k, v) in map {
                    self.key(k);
                    self.value(v);
                }
                self.end_object();
            }
            Value::Array(items) => {
                self.begin_array();
                for v in items {
                    self.element();
                    self.value(v);
                }
                self.end_array();
            }
            Value::String(s) => self.raw_str(s),
            scalar => self.out.push_str(&scalar.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn quoted(s: &str, literal: bool) -> String {
        let mut out = String::new();
        push_str(&mut out, s, literal);
        out
    }

    /// What the gateway's substitution makes of a string, when every variable is unset and
    /// escapes are honoured: `$${NAME}` → `${NAME}`; `${NAME}` is reported as a reference.
    fn gateway_read(s: &str) -> (String, usize) {
        let b = s.as_bytes();
        let (mut out, mut refs, mut i) = (String::new(), 0, 0);
        while i < b.len() {
            if b[i] == b'$' {
                if b.get(i + 1) == Some(&b'$')
                    && let Some(n) = env_reference_len(&b[i + 1..])
                {
                    out.push_str(&s[i + 1..i + 1 + n]);
                    i += 1 + n;
                    continue;
                }
                if let Some(n) = env_reference_len(&b[i..]) {
                    refs += 1;
                    out.push_str(&s[i..i + n]);
                    i += n;
                    continue;
                }
            }
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
        (out, refs)
    }

    #[test]
    fn escaping_matches_serde_json() {
        let mut samples: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        samples.extend(
            [
                "",
                "plain",
                "Ünïcödé — 日本語 🦀",
                "quote\" back\\slash / slash",
                "\u{7f}\u{80}\u{2028}\u{2029}\u{feff}",
                "tab\tnl\ncr\rff\u{c}bs\u{8}nul\u{0}",
            ]
            .map(str::to_owned),
        );
        for s in &samples {
            assert_eq!(quoted(s, false), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_escape_test_finds_every_byte_that_needs_it() {
        for b in 0u8..=255 {
            let expected = b < 0x20 || b == b'"' || b == b'\\' || b == b'$';
            for at in 0..17 {
                let mut v = vec![b'a'; 17];
                v[at] = b;
                // Neighbours that could disturb the word arithmetic: high bytes and 0x20/0x21.
                if at > 0 {
                    v[at - 1] = 0xc3;
                }
                if at + 1 < v.len() {
                    v[at + 1] = 0x20;
                }
                assert_eq!(needs_escape(&v), expected, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn gateway_literals_survive_substitution() {
        let cases = [
            ("Price ${FOO}", "Price $${FOO}"),
            ("$${BAR}", "$$${BAR}"),
            ("${lower} ${9X} ${} ${A-B}", "${lower} ${9X} ${} ${A-B}"),
            ("${A}${B_2}", "$${A}$${B_2}"),
            ("$$", "$$"),
            ("end $", "end $"),
            ("${UNCLOSED", "${UNCLOSED"),
            ("${_}", "$${_}"),
        ];
        for (input, escaped) in cases {
            let json = quoted(input, true);
            let text: String = serde_json::from_str(&json).unwrap();
            assert_eq!(text, escaped, "{input}");
            assert_eq!(gateway_read(&text), (input.to_owned(), 0), "{input}");
        }
        assert_eq!(
            gateway_read("${FOO}").1,
            1,
            "the model recognises references"
        );
    }

    #[test]
    fn writer_output_is_serde_pretty() {
        let doc = json!({
            "a": {}, "b": [], "c": [1, {"d": null, "e": [true, "x\ny"]}],
            "f": {"g": {"h": 1.5, "i": -3, "j": "${KEEP}"}}
        });
        let mut w = Writer::with_capacity(0, true);
        w.value(&doc);
        assert_eq!(
            w.finish(),
            serde_json::to_string_pretty(&doc).unwrap() + "\n"
        );
        let mut w = Writer::with_capacity(0, false);
        w.value(&doc);
        assert_eq!(w.finish(), serde_json::to_string(&doc).unwrap() + "\n");
    }

    #[test]
    fn literal_parts_build_one_string() {
        let mut w = Writer::with_capacity(0, false);
        w.begin_object();
        w.key("p");
        w.open_quote();
        w.literal_part("/srv/\"q\"");
        w.literal_part("/${X}");
        w.close_quote();
        w.end_object();
        let v: Value = serde_json::from_str(&w.finish()).unwrap();
        assert_eq!(v["p"], "/srv/\"q\"/$${X}");
    }
}
