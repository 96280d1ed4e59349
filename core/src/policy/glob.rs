//! Our glob matcher for `exe` and `path` rules: `*` and `?` stop at `/`,
//! `**` as a whole path component crosses it, `{a,b}` (nested too), `[abc]`,
//! `[a-z]`, `[!abc]` or `[^abc]`, `[[:digit:]]`-style classes, and `\`
//! escapes — a shell's syntax, with globset's reading of `**` elsewhere
//! (`a**b` is `a*b`). As in a shell, braces are expanded first: `{,.1}` has
//! an empty alternative, and `{a,b/}**` is `a**` or `b/**`.
//!
//! It is ours rather than a regex engine's because the preload library is
//! mapped into every process on a host: regex machinery tripled the pages
//! the loader must relocate at each start-up, for globs most processes never
//! meet. Matching runs inside an intercepted call, so it allocates nothing
//! and takes time linear in the path: braces are expanded when the pattern
//! is read, and each alternative is matched by a small NFA whose state set
//! is a fixed bitset on the stack, so no pattern can make it backtrack.

use std::fmt;

/// Tokens per alternative; with the final "matched" state they fill
/// `STATE_WORDS` words. Longer patterns are refused when read.
const MAX_TOKENS: usize = 255;
const STATE_WORDS: usize = (MAX_TOKENS + 1).div_ceil(64);
/// Alternatives one pattern may expand to (`{a,b}{c,d}` is four).
const MAX_ALTERNATIVES: usize = 256;
/// Braces within braces: the expansion recurses once per level, and a
/// policy is read inside the host process, whose stack is not ours to spend.
const MAX_BRACE_DEPTH: usize = 16;
/// Tokens in all of a pattern's alternatives: matching costs at most this
/// many steps per character of the path (a few ms for the longest path).
const MAX_TOTAL_TOKENS: usize = 2048;

/// One compiled pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct Glob {
    alternatives: Vec<Vec<Token>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Char(char),
    /// `?`: any one character but `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` at the end (`/var/log/**`) or alone: anything.
    Anything,
    /// `**/` at the start or after `/`: zero or more whole directories.
    /// Its state means "at a directory boundary"; it is always followed by
    /// `InDirectory`, the state of being part-way through a directory name.
    Directories,
    InDirectory,
    Class(Class),
}

#[derive(Clone, Debug, PartialEq)]
struct Class {
    negated: bool,
    members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq)]
enum Member {
    Range(char, char),
    Named(NamedClass),
}

/// POSIX named classes, ASCII only (as globset and the C locale read them).
#[derive(Clone, Copy, Debug, PartialEq)]
enum NamedClass {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
}

/// Why a pattern was refused; displayed after "invalid glob: ".
#[derive(Clone, Debug, PartialEq)]
pub struct GlobError(String);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let alternatives = expand_braces(pattern)?;
        let alternatives = alternatives
            .iter()
            .map(|alternative| tokens(alternative))
            .collect::<Result<Vec<_>, _>>()?;
        if alternatives.iter().map(Vec::len).sum::<usize>() > MAX_TOTAL_TOKENS {
            return Err(GlobError(format!(
                "too long: braces expand to more than {MAX_TOTAL_TOKENS} characters in all"
            )));
        }
        Ok(Glob { alternatives })
    }

    /// Whether the whole of `text` (a path, or a file name) matches.
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.alternatives
            .iter()
            .any(|tokens| matches_tokens(tokens, text))
    }
}

// ---- reading a pattern -----------------------------------------------------

/// A pattern character, and whether a `\` made it literal.
type PatternChar = (char, bool);

/// A pattern's characters, with `\`-escaped ones marked as literal.
fn escaped_chars(pattern: &str) -> Result<Vec<PatternChar>, GlobError> {
    let mut chars = pattern.chars();
    let mut out = Vec::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push((next, true)),
                None => return Err(GlobError("dangling `\\` at the end".into())),
            }
        } else {
            out.push((c, false));
        }
    }
    Ok(out)
}

/// Expands `{a,b}` (nested, and side by side) into brace-free alternatives,
/// each still in escaped form. Braces and commas inside `[...]` are literal.
fn expand_braces(pattern: &str) -> Result<Vec<Vec<PatternChar>>, GlobError> {
    let chars = escaped_chars(pattern)?;
    let (alternatives, end) = expand_sequence(&chars, 0, 0)?;
    debug_assert_eq!(end, chars.len());
    Ok(alternatives)
}

/// Expands from `start` until the end, or (inside `depth` braces) until an
/// unbracketed `,` or `}`; returns the alternatives and where it stopped.
fn expand_sequence(
    chars: &[PatternChar],
    start: usize,
    depth: usize,
) -> Result<(Vec<Vec<PatternChar>>, usize), GlobError> {
    if depth > MAX_BRACE_DEPTH {
        return Err(GlobError(format!(
            "braces nested more than {MAX_BRACE_DEPTH} deep"
        )));
    }
    let in_braces = depth > 0;
    let mut alternatives = vec![Vec::new()];
    let mut at = start;
    while at < chars.len() {
        let (c, literal) = chars[at];
        if !literal && in_braces && (c == ',' || c == '}') {
            return Ok((alternatives, at));
        }
        if !literal && c == '[' {
            let end = class_end(chars, at)?;
            for alternative in &mut alternatives {
                alternative.extend_from_slice(&chars[at..end]);
            }
            at = end;
            continue;
        }
        if !literal && c == '{' {
            let mut choices = Vec::new();
            let mut next = at + 1;
            loop {
                let (mut inner, stop) = expand_sequence(chars, next, depth + 1)?;
                choices.append(&mut inner);
                match chars.get(stop) {
                    Some((',', false)) => next = stop + 1,
                    Some(('}', false)) => {
                        at = stop + 1;
                        break;
                    }
                    _ => return Err(GlobError("unclosed `{`".into())),
                }
            }
            if alternatives.len() * choices.len() > MAX_ALTERNATIVES {
                return Err(GlobError(format!(
                    "braces expand to more than {MAX_ALTERNATIVES} alternatives"
                )));
            }
            alternatives = alternatives
                .iter()
                .flat_map(|prefix| {
                    choices.iter().map(move |choice| {
                        let mut joined = prefix.clone();
                        joined.extend_from_slice(choice);
                        joined
                    })
                })
                .collect();
            continue;
        }
        if !literal && c == '}' && !in_braces {
            return Err(GlobError("`}` without `{`".into()));
        }
        for alternative in &mut alternatives {
            alternative.push((c, literal));
        }
        at += 1;
    }
    Ok((alternatives, at))
}

/// Where the class opening at `open` ends (one past its `]`). A `]` right
/// after `[`, `[!` or `[^` is a member, as in a shell.
fn class_end(chars: &[PatternChar], open: usize) -> Result<usize, GlobError> {
    let mut at = open + 1;
    if matches!(chars.get(at), Some(('!' | '^', false))) {
        at += 1;
    }
    if matches!(chars.get(at), Some((']', false))) {
        at += 1;
    }
    while let Some(&(c, literal)) = chars.get(at) {
        if let Some(close) = named_class_close(chars, at) {
            at = close + 2;
            continue;
        }
        if !literal && c == ']' {
            return Ok(at + 1);
        }
        at += 1;
    }
    Err(GlobError("unclosed character class `[`".into()))
}

/// One brace-free alternative as tokens.
fn tokens(chars: &[PatternChar]) -> Result<Vec<Token>, GlobError> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let (c, literal) = chars[at];
        if literal {
            tokens.push(Token::Char(c));
            at += 1;
            continue;
        }
        match c {
            '?' => tokens.push(Token::AnyChar),
            '[' => {
                let end = class_end(chars, at)?;
                tokens.push(Token::Class(class(&chars[at + 1..end - 1])?));
                at = end;
                continue;
            }
            '*' if chars.get(at + 1) == Some(&('*', false)) => {
                let whole_start = at == 0 || chars[at - 1] == ('/', false);
                let next = chars.get(at + 2);
                if whole_start && next == Some(&('/', false)) {
                    tokens.extend([Token::Directories, Token::InDirectory]);
                    at += 3;
                    continue;
                }
                // `**` at the end after `/` (or alone) is anything;
                // anywhere else it reads as `*`.
                tokens.push(if whole_start && next.is_none() {
                    Token::Anything
                } else {
                    Token::Star
                });
                at += 2;
                continue;
            }
            '*' => tokens.push(Token::Star),
            _ => tokens.push(Token::Char(c)),
        }
        at += 1;
    }
    if tokens.len() > MAX_TOKENS {
        return Err(GlobError(format!(
            "too long: at most {MAX_TOKENS} characters after expanding braces"
        )));
    }
    Ok(tokens)
}

/// The inside of `[...]`.
fn class(chars: &[PatternChar]) -> Result<Class, GlobError> {
    let mut at = 0;
    let negated = matches!(chars.first(), Some(('!' | '^', false)));
    if negated {
        at += 1;
    }
    let mut members = Vec::new();
    while at < chars.len() {
        let c = chars[at].0;
        if let Some(close) = named_class_close(chars, at) {
            let name: String = chars[at + 2..close].iter().map(|&(c, _)| c).collect();
            members.push(Member::Named(named_class(&name)?));
            at = close + 2;
            continue;
        }
        let is_range = matches!(chars.get(at + 1), Some(('-', false))) && at + 2 < chars.len();
        if is_range {
            let end = chars[at + 2].0;
            if end < c {
                return Err(GlobError(format!("invalid range `{c}-{end}`")));
            }
            members.push(Member::Range(c, end));
            at += 3;
        } else {
            members.push(Member::Range(c, c));
            at += 1;
        }
    }
    if members.is_empty() {
        return Err(GlobError("empty character class `[]`".into()));
    }
    Ok(Class { negated, members })
}

/// Where the `:]` of a named class (`[:digit:]`) opening at `open` is, if
/// `open` starts one.
fn named_class_close(chars: &[PatternChar], open: usize) -> Option<usize> {
    if chars.get(open) != Some(&('[', false)) || chars.get(open + 1) != Some(&(':', false)) {
        return None;
    }
    (open + 2..chars.len().saturating_sub(1))
        .find(|&i| chars[i] == (':', false) && chars[i + 1] == (']', false))
}

fn named_class(name: &str) -> Result<NamedClass, GlobError> {
    Ok(match name {
        "alnum" => NamedClass::Alnum,
        "alpha" => NamedClass::Alpha,
        "blank" => NamedClass::Blank,
        "cntrl" => NamedClass::Cntrl,
        "digit" => NamedClass::Digit,
        "graph" => NamedClass::Graph,
        "lower" => NamedClass::Lower,
        "print" => NamedClass::Print,
        "punct" => NamedClass::Punct,
        "space" => NamedClass::Space,
        "upper" => NamedClass::Upper,
        "xdigit" => NamedClass::Xdigit,
        _ => return Err(GlobError(format!("unknown character class `[:{name}:]`"))),
    })
}

// ---- matching ----------------------------------------------------------------

/// A set of NFA states: state `i` means "tokens before `i` matched".
#[derive(Clone, Copy, PartialEq)]
struct States([u64; STATE_WORDS]);

impl States {
    const EMPTY: States = States([0; STATE_WORDS]);

    fn insert(&mut self, state: usize) {
        self.0[state / 64] |= 1 << (state % 64);
    }

    fn contains(&self, state: usize) -> bool {
        self.0[state / 64] & (1 << (state % 64)) != 0
    }
}

/// Runs one alternative's NFA over `text`, a character at a time. Bytes
/// that are not UTF-8 count as one character each, which only `?`, `*`,
/// `**` and negated classes match.
fn matches_tokens(tokens: &[Token], text: &[u8]) -> bool {
    let mut states = States::EMPTY;
    states.insert(0);
    follow_empty(tokens, &mut states);
    for chunk in text.utf8_chunks() {
        let valid = chunk.valid().chars().map(Some);
        let invalid = chunk.invalid().iter().map(|_| None);
        for c in valid.chain(invalid) {
            states = step(tokens, &states, c);
            if states == States::EMPTY {
                return false;
            }
        }
    }
    states.contains(tokens.len())
}

/// Adds the states reachable by matching nothing: past any `*`, `**`, or
/// `**/` at a directory boundary. Moves only forward, so one pass in order
/// suffices.
fn follow_empty(tokens: &[Token], states: &mut States) {
    for (i, token) in tokens.iter().enumerate() {
        if !states.contains(i) {
            continue;
        }
        match token {
            Token::Star | Token::Anything => states.insert(i + 1),
            Token::Directories => states.insert(i + 2),
            _ => {}
        }
    }
}

fn step(tokens: &[Token], states: &States, c: Option<char>) -> States {
    let mut next = States::EMPTY;
    let slash = c == Some('/');
    for (i, token) in tokens.iter().enumerate() {
        if !states.contains(i) {
            continue;
        }
        match token {
            Token::Char(expected) => {
                if c == Some(*expected) {
                    next.insert(i + 1);
                }
            }
            Token::AnyChar => {
                if !slash {
                    next.insert(i + 1);
                }
            }
            Token::Class(class) => {
                if !slash && class.matches(c) {
                    next.insert(i + 1);
                }
            }
            Token::Star => {
                if !slash {
                    next.insert(i);
                }
            }
            Token::Anything => next.insert(i),
            // Directory names, each ended by `/`.
            Token::Directories => next.insert(if slash { i } else { i + 1 }),
            Token::InDirectory => next.insert(if slash { i - 1 } else { i }),
        }
    }
    follow_empty(tokens, &mut next);
    next
}

impl Class {
    fn matches(&self, c: Option<char>) -> bool {
        let member = c.is_some_and(|c| self.members.iter().any(|member| member.contains(c)));
        member != self.negated
    }
}

impl Member {
    fn contains(&self, c: char) -> bool {
        match *self {
            Member::Range(low, high) => (low..=high).contains(&c),
            Member::Named(named) => c.is_ascii() && named.contains(c as u8),
        }
    }
}

impl NamedClass {
    fn contains(self, b: u8) -> bool {
        match self {
            NamedClass::Alnum => b.is_ascii_alphanumeric(),
            NamedClass::Alpha => b.is_ascii_alphabetic(),
            NamedClass::Blank => b == b' ' || b == b'\t',
            NamedClass::Cntrl => b.is_ascii_control(),
            NamedClass::Digit => b.is_ascii_digit(),
            NamedClass::Graph => b.is_ascii_graphic(),
            NamedClass::Lower => b.is_ascii_lowercase(),
            NamedClass::Print => b.is_ascii_graphic() || b == b' ',
            NamedClass::Punct => b.is_ascii_punctuation(),
            NamedClass::Space => b.is_ascii_whitespace() || b == 0x0b,
            NamedClass::Upper => b.is_ascii_uppercase(),
            NamedClass::Xdigit => b.is_ascii_hexdigit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).unwrap().is_match(text.as_bytes())
    }

    #[test]
    fn star_and_question_mark_stop_at_slash() {
        assert!(matches("/var/log/*", "/var/log/syslog"));
        assert!(!matches("/var/log/*", "/var/log/nginx/access"));
        assert!(matches("/tmp/?.log", "/tmp/a.log"));
        assert!(!matches("/tmp/?.log", "/tmp/ab.log"));
        assert!(!matches("/tmp?x", "/tmp/x"));
        assert!(matches("*falcon*", "falcon-server"));
        assert!(!matches("*falcon*", "/usr/bin/falcon"));
        assert!(matches("/a/*", "/a/"));
    }

    #[test]
    fn double_star_as_a_component_crosses_slashes() {
        assert!(matches("**/*.log", "/srv/app/deep/x.log"));
        assert!(matches("**/*.log", "/x.log"));
        assert!(!matches("**/*.log", "/srv/app/x.log.1"));
        assert!(matches("/var/log/**", "/var/log/a/b/c"));
        assert!(!matches("/var/log/**", "/var/logs/a"));
        assert!(matches("/a/**/b", "/a/b"));
        assert!(matches("/a/**/b", "/a/x/y/b"));
        assert!(!matches("/a/**/b", "/a/xb"));
        assert!(matches("**", "/anything/at/all"));
        assert!(matches("/x/**/**/y", "/x/y"));
        // Not a whole component: an ordinary `*`.
        assert!(matches("/var/log**", "/var/logs"));
        assert!(!matches("/var/log**", "/var/log/x"));
        assert!(matches("/a/b**/c", "/a/bz/c"));
    }

    #[test]
    fn braces_expand_nested_and_side_by_side() {
        assert!(matches("{/usr,/opt}/bin/*", "/opt/bin/db"));
        assert!(matches("/x/{a,b{c,d}}", "/x/bd"));
        assert!(!matches("/x/{a,b{c,d}}", "/x/b"));
        assert!(matches("/{a,b}/{c,d}", "/b/c"));
        assert!(matches("/x{,.bak}", "/x"));
        assert!(matches("/x{,.bak}", "/x.bak"));
        assert!(matches("/[{]a", "/{a"));
        assert!(matches("/a,b", "/a,b"));
    }

    #[test]
    fn classes_ranges_negation_and_names() {
        assert!(matches("/log.[0-9]", "/log.7"));
        assert!(!matches("/log.[0-9]", "/log.x"));
        assert!(matches("/log.[!0-9]", "/log.x"));
        assert!(matches("/log.[^0-9]", "/log.x"));
        assert!(!matches("/a[!x]b", "/a/b"));
        assert!(matches("/[]]", "/]"));
        assert!(matches("/[a-]", "/-"));
        assert!(matches("/v[[:digit:]]", "/v3"));
        assert!(matches("/v[[:digit:]a-f]", "/vc"));
        assert!(!matches("/v[[:upper:]]", "/vq"));
        assert!(matches("/[é]", "/é"));
        assert!(matches("/[*]", "/*"));
        assert!(!matches("/[*]", "/x"));
    }

    #[test]
    fn escapes_make_metacharacters_literal() {
        assert!(matches(r"/a\*b", "/a*b"));
        assert!(!matches(r"/a\*b", "/axb"));
        assert!(matches(r"/\{a,b\}", "/{a,b}"));
        assert!(matches(r"/\[x]", "/[x]"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_characters_of_their_own() {
        let text = b"/tmp/\xff.log";
        assert!(Glob::new("/tmp/?.log").unwrap().is_match(text));
        assert!(Glob::new("/tmp/*.log").unwrap().is_match(text));
        assert!(Glob::new("/tmp/[!a].log").unwrap().is_match(text));
        assert!(!Glob::new("/tmp/[a].log").unwrap().is_match(text));
    }

    #[test]
    fn refuses_malformed_patterns() {
        for (pattern, message) in [
            ("/var/[log", "unclosed character class"),
            ("/a/{b,c", "unclosed `{`"),
            ("/a/b}", "`}` without `{`"),
            ("/a\\", "dangling"),
            ("/[z-a]", "invalid range"),
            ("/[[:alphabet:]]", "unknown character class"),
            (
                "/{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}",
                "more than 256",
            ),
        ] {
            let error = Glob::new(pattern).unwrap_err().to_string();
            assert!(error.contains(message), "{pattern}: {error}");
        }
        let deep = format!("/{}{}", "{a,".repeat(17), "}".repeat(17));
        assert!(Glob::new(&deep).unwrap_err().to_string().contains("nested"));
        let nested = format!("/{}{}", "{a,".repeat(16), "}".repeat(16));
        assert!(Glob::new(&nested).is_ok());
        let long_choice = "b".repeat(200);
        let wide = format!(
            "/{{{}}}/{{{}}}",
            ["a"; 16].join(","),
            [long_choice.as_str(); 16].join(",")
        );
        assert!(Glob::new(&wide).unwrap_err().to_string().contains("in all"));
        let long = format!("/{}", "a".repeat(MAX_TOKENS));
        assert!(Glob::new(&long)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(Glob::new(&long[..MAX_TOKENS]).is_ok());
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let pattern = format!("/{}b", "*a".repeat(60));
        let text = format!("/{}", "a".repeat(4000));
        assert!(!matches(&pattern, &text));
        let pattern = format!("{}x", "**/".repeat(40));
        assert!(matches(&pattern, &format!("{}/x", "/d".repeat(1000))));
    }
}
